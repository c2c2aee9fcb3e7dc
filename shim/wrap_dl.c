/*
 * wrap_dl.c - lookups and loads that would skip the preload.
 *
 *   dlsym/dlvsym through a handle (dlopen("libc.so.6"), ctypes.CDLL): the
 *   handle's own scope answers, so an interposed name would be libc's own
 *   function.  When the answer is exactly the function a syms.def row
 *   wraps (its real_* pointer), the row's wrapper is returned instead
 *   (init.c: shim_sym_wrapper).  No loop can follow: only libc's own
 *   function is replaced, and the shim's real_* is libc's only when no
 *   other interposer follows the shim (one that does is what real_* is,
 *   and stays what a handle lookup gives).  RTLD_NEXT and
 *   RTLD_DEFAULT lookups are answered relative to the caller's object
 *   (glibc reads the return address), so they jump to glibc's dlsym with
 *   the caller's frame untouched: another preloaded library (fakeroot)
 *   asking for the next "open" still gets what follows it.
 *   dlopen with RTLD_DEEPBIND: the library would bind to its own scope,
 *   libc included, before the global one, so its calls would skip the
 *   shim.  The flag is dropped while the shim is active: symbol
 *   precedence is all it changes, and the global scope is what every
 *   other library of the program binds to.
 *   dlmopen into a new namespace: a second libc without the shim, which
 *   the shim cannot join; refused with one line while the shim is active
 *   (LM_ID_BASE is plain dlopen).
 * The pass-through needs glibc's functions without asking the dynamic
 * linker for them, which would answer with the shim's: dl_libc finds them
 * in libc.so.6's dynamic symbol table (the default version).
 * glibc on x86-64 (SYMG rows; the pass-through is a few instructions).
 */
#include "shim.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#if SHIM_GLIBC

/* ---- glibc's dlsym, dlvsym, dlopen, dlmopen, from libc.so.6's GNU hash
 * table.  This runs when another library's start-up (a sanitizer runtime
 * resolving its interceptors with dlsym(RTLD_NEXT)) enters the shim's
 * dlsym before anything is initialised: so it calls nothing (no libc
 * function, which a sanitizer may intercept; no instrumentation) and
 * finds libc through the dynamic linker's list of loaded objects. */
#define NO_SAN __attribute__((no_sanitize("address", "thread", "undefined"), noinline))

enum { DL_SYM, DL_VSYM, DL_OPEN, DL_MOPEN, DL_N };
static const char *const dl_names[DL_N] = {"dlsym", "dlvsym", "dlopen", "dlmopen"};
static void *dl_addr[DL_N];

NO_SAN static bool dl_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

NO_SAN static void dl_fail(void)
{
	static const char m[] = "qcowshim: dlsym/dlopen not found in libc.so.6\n";
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(1L), "D"(2L), "S"(m), "d"(sizeof m - 1)
			 : "rcx", "r11", "memory");
	__builtin_trap();
}

NO_SAN static void dl_find(void)
{
	const struct link_map *l;
	for (l = _r_debug.r_map; l; l = l->l_next) {
		const char *n = l->l_name, *b = n;
		for (; n && *n; n++)
			if (*n == '/')
				b = n + 1;
		if (b && b[0] == 'l' && b[1] == 'i' && b[2] == 'b' && b[3] == 'c' && b[4] == '.' &&
		    b[5] == 's' && b[6] == 'o' && b[7] == '.')
			break;
	}
	if (!l)
		dl_fail();
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const uint32_t *gh = NULL;
	const ElfW(Half) *ver = NULL;
	for (const ElfW(Dyn) *d = l->l_ld; d && d->d_tag != DT_NULL; d++) {
		ElfW(Addr) p = d->d_un.d_ptr;
		if (p < l->l_addr) /* not relocated in place */
			p += l->l_addr;
		switch (d->d_tag) {
		case DT_SYMTAB: sym = (const ElfW(Sym) *)p; break;
		case DT_STRTAB: str = (const char *)p; break;
		case DT_GNU_HASH: gh = (const uint32_t *)p; break;
		case DT_VERSYM: ver = (const ElfW(Half) *)p; break;
		}
	}
	if (!sym || !str || !gh)
		dl_fail();
	uint32_t nb = gh[0], off = gh[1], nbloom = gh[2];
	const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + nbloom);
	const uint32_t *chain = buckets + nb;
	for (int k = 0; k < DL_N; k++) {
		uint32_t h = 5381;
		for (const char *c = dl_names[k]; *c; c++)
			h = h * 33 + (unsigned char)*c;
		void *a = NULL;
		for (uint32_t i = buckets[h % nb]; i >= off && i != 0; i++) {
			uint32_t c = chain[i - off];
			/* the default version: not hidden (bit 15 of its versym) */
			if ((c | 1) == (h | 1) && dl_streq(str + sym[i].st_name, dl_names[k]) &&
			    sym[i].st_shndx != SHN_UNDEF && (!ver || !(ver[i] & 0x8000))) {
				a = (void *)(l->l_addr + sym[i].st_value);
				break;
			}
			if (c & 1)
				break;
		}
		if (!a)
			dl_fail();
		__atomic_store_n(&dl_addr[k], a, __ATOMIC_RELEASE);
	}
}

/* glibc's function number k (DL_*): found once, then one load. */
SHIM_HIDDEN void *dl_libc(int k);
NO_SAN void *dl_libc(int k)
{
	void *a = __atomic_load_n(&dl_addr[k], __ATOMIC_ACQUIRE);
	if (a)
		return a;
	dl_find(); /* idempotent: concurrent finders store the same values */
	return __atomic_load_n(&dl_addr[k], __ATOMIC_ACQUIRE);
}

typedef void *(*dlsym_fn)(void *, const char *);

/* ---- the wrappers.  dlsym and dlvsym are entered here (assembly below):
 * RTLD_NEXT/RTLD_DEFAULT jump on to glibc with the caller's return
 * address in place; other handles come to dl_handle_sym/dl_handle_vsym.
 * dlvsym(RTLD_DEFAULT) comes there too: a lookup of an exact version never
 * accepts the shim's unversioned definitions, so it would find libc's
 * (the caller only decides the namespace, and there is one: dlmopen is
 * refused).  dlvsym(RTLD_NEXT) of an interposed name is left alone: which
 * object follows the caller is glibc's to say (a documented limit). */
SHIM_HIDDEN void *dl_handle_sym(void *h, const char *name);
SHIM_HIDDEN void *dl_handle_vsym(void *h, const char *name, const char *v);

static void *substitute(const char *name, void *p)
{
	if (!p || !name || !policy_enabled())
		return p;
	int saved = errno;
	void *w = shim_sym_wrapper(name, p);
	errno = saved;
	return w;
}

void *dl_handle_sym(void *h, const char *name)
{
	return substitute(name, ((dlsym_fn)dl_libc(DL_SYM))(h, name));
}

void *dl_handle_vsym(void *h, const char *name, const char *v)
{
	void *(*fn)(void *, const char *, const char *) = dl_libc(DL_VSYM);
	return substitute(name, fn(h, name, v));
}

#if defined(__x86_64__)
/* RTLD_NEXT (-1) and RTLD_DEFAULT (0) jump to glibc's dlsym/dlvsym, found
 * by dl_libc (rdi, rsi, rdx kept across it; the stack 16-byte aligned at
 * the call); other handles go to dl_handle_*. */
__asm__(".text\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	"dlsym:\n"
	"	cmpq $-1, %rdi\n"
	"	je 1f\n"
	"	testq %rdi, %rdi\n"
	"	je 1f\n"
	"	jmp dl_handle_sym\n"
	"1:	pushq %rdi\n"
	"	pushq %rsi\n"
	"	subq $8, %rsp\n"
	"	movl $0, %edi\n" /* DL_SYM */
	"	call dl_libc\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	jmp *%rax\n"
	".size dlsym, .-dlsym\n"
	".globl dlvsym\n"
	".type dlvsym, @function\n"
	"dlvsym:\n"
	"	cmpq $-1, %rdi\n"
	"	je 1f\n"
	"	jmp dl_handle_vsym\n"
	"1:	pushq %rdi\n"
	"	pushq %rsi\n"
	"	pushq %rdx\n"
	"	movl $1, %edi\n" /* DL_VSYM */
	"	call dl_libc\n"
	"	popq %rdx\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	jmp *%rax\n"
	".size dlvsym, .-dlvsym\n");
#else
#error "wrap_dl.c: the dlsym pass-through is written for x86-64"
#endif

/* dlopen and dlmopen also read the caller's return address (the namespace
 * to load into, the caller's RPATH/RUNPATH and $ORIGIN), so they too jump
 * on to glibc; these decide the flags first (no shim_init: policy_enabled
 * is false until the shim's constructor ran). */
SHIM_HIDDEN int dl_open_flags(int flags);
SHIM_HIDDEN long dl_mopen_flags(long lmid, const char *file, int flags);

int dl_open_flags(int flags)
{
	if (unlikely(flags & RTLD_DEEPBIND) && policy_enabled())
		flags &= ~RTLD_DEEPBIND; /* bind to the global scope: the shim first */
	return flags;
}

/* The flags to load with, or -1: refused. */
long dl_mopen_flags(long lmid, const char *file, int flags)
{
	if (likely(lmid == LM_ID_BASE) || !policy_enabled())
		return dl_open_flags(flags);
	shim_msg("%s: refusing dlmopen into a new namespace: its own C library would not load the "
		 "shim and would see the raw QCOW2 bytes; use dlopen",
		 file ? file : "(main program)");
	return -1;
}

__asm__(".text\n"
	".globl dlopen\n"
	".type dlopen, @function\n"
	"dlopen:\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	subq $8, %rsp\n"
	"	movl 8(%rsp), %edi\n"
	"	call dl_open_flags\n"
	"	movl %eax, 8(%rsp)\n" /* the flags to pass on */
	"	movl $2, %edi\n" /* DL_OPEN */
	"	call dl_libc\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	jmp *%rax\n"
	".size dlopen, .-dlopen\n"
	".globl dlmopen\n"
	".type dlmopen, @function\n"
	"dlmopen:\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	pushq %rdx\n"
	"	movq 16(%rsp), %rdi\n"
	"	movq 8(%rsp), %rsi\n"
	"	movl (%rsp), %edx\n"
	"	call dl_mopen_flags\n"
	"	cmpq $-1, %rax\n"
	"	je 2f\n"
	"	movl %eax, (%rsp)\n" /* the flags to pass on */
	"	movl $3, %edi\n" /* DL_MOPEN */
	"	call dl_libc\n"
	"	popq %rdx\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	jmp *%rax\n"
	"2:	addq $24, %rsp\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	".size dlmopen, .-dlmopen\n");

#endif /* SHIM_GLIBC */
