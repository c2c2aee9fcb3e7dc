/*
 * wrap_dl.c - lookups and loads that would skip the preload.
 *
 *   dlsym/dlvsym through a handle (dlopen("libc.so.6"), ctypes.CDLL): the
 *   handle's own scope answers, so an interposed name would be libc's own
 *   function.  When the answer is exactly the function a syms.def row
 *   wraps (its real_* pointer), the row's wrapper is returned instead
 *   (init.c: shim_sym_wrapper).  RTLD_NEXT and RTLD_DEFAULT lookups are
 *   answered relative to the caller's object (glibc reads the return
 *   address), so they jump to glibc's dlsym with the caller's frame
 *   untouched: another preloaded library (fakeroot) asking for the next
 *   "open" still gets what follows it.
 *   dlopen with RTLD_DEEPBIND: the library would bind to its own scope,
 *   libc included, before the global one, so its calls would skip the
 *   shim.  The flag is dropped while the shim is active: symbol
 *   precedence is all it changes, and the global scope is what every
 *   other library of the program binds to.
 *   dlmopen into a new namespace: a second libc without the shim, which
 *   the shim cannot join; refused with one line while the shim is active
 *   (LM_ID_BASE is plain dlopen).
 * The shim's own lookups (init.c) need glibc's dlsym without asking the
 * dynamic linker for "dlsym", which is the shim's: shim_libc_dlsym finds it
 * in libc.so.6's dynamic symbol table (the default version).
 * glibc on x86-64 (SYMG rows; the pass-through is a few instructions).
 */
#include "shim.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#if SHIM_GLIBC

/* ---- glibc's dlsym, from libc.so.6's GNU hash table */
struct libc_find {
	const char *name;
	void *addr;
};

static uint32_t gnu_hash(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct libc_find *f = arg;
	const char *b = strrchr(info->dlpi_name, '/');
	(void)size;
	b = b ? b + 1 : info->dlpi_name;
	if (strncmp(b, "libc.so.", 8))
		return 0;
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const uint32_t *gh = NULL;
	const ElfW(Half) *ver = NULL;
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		ElfW(Addr) p = dyn->d_un.d_ptr;
		if (p < info->dlpi_addr) /* not relocated in place */
			p += info->dlpi_addr;
		switch (dyn->d_tag) {
		case DT_SYMTAB: sym = (const ElfW(Sym) *)p; break;
		case DT_STRTAB: str = (const char *)p; break;
		case DT_GNU_HASH: gh = (const uint32_t *)p; break;
		case DT_VERSYM: ver = (const ElfW(Half) *)p; break;
		}
	}
	if (!sym || !str || !gh)
		return 1;
	uint32_t nb = gh[0], off = gh[1], nbloom = gh[2];
	const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + nbloom);
	const uint32_t *chain = buckets + nb;
	uint32_t h = gnu_hash(f->name);
	for (uint32_t i = buckets[h % nb]; i >= off && i != 0; i++) {
		uint32_t c = chain[i - off];
		/* the default version: not hidden (bit 15 of its versym) */
		if ((c | 1) == (h | 1) && !strcmp(str + sym[i].st_name, f->name) &&
		    sym[i].st_shndx != SHN_UNDEF && (!ver || !(ver[i] & 0x8000))) {
			f->addr = (void *)(info->dlpi_addr + sym[i].st_value);
			break;
		}
		if (c & 1)
			break;
	}
	return 1;
}

typedef void *(*dlsym_fn)(void *, const char *);

dlsym_fn shim_libc_dlsym(void)
{
	static dlsym_fn fn;
	dlsym_fn r = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
	if (r)
		return r;
	struct libc_find f = {"dlsym", NULL};
	dl_iterate_phdr(find_cb, &f);
	if (!f.addr) {
		static const char m[] = "qcowshim: dlsym not found in libc.so.6\n";
		if (write(2, m, sizeof m - 1) < 0)
			abort();
		abort();
	}
	r = (dlsym_fn)f.addr;
	__atomic_store_n(&fn, r, __ATOMIC_RELEASE);
	return r;
}

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

void *dl_handle_sym(void *h, const char *name)
{
	void *p = real_dlsym(h, name);
	if (p && name && policy_enabled()) {
		int saved = errno;
		p = shim_sym_wrapper(name, p);
		errno = saved;
	}
	return p;
}

void *dl_handle_vsym(void *h, const char *name, const char *v)
{
	void *p = real_dlvsym(h, name, v);
	if (p && name && policy_enabled()) {
		int saved = errno;
		p = shim_sym_wrapper(name, p);
		errno = saved;
	}
	return p;
}

#if defined(__x86_64__)
/* shim_init() resolves real_* (once; after that one load); rdi, rsi, rdx
 * are the arguments, kept across it; the stack stays 16-byte aligned. */
__asm__(".text\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	"dlsym:\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	subq $8, %rsp\n"
	"	call shim_init\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	cmpq $-1, %rdi\n" /* RTLD_NEXT */
	"	je 1f\n"
	"	testq %rdi, %rdi\n" /* RTLD_DEFAULT */
	"	je 1f\n"
	"	jmp dl_handle_sym\n"
	"1:	jmp *real_dlsym(%rip)\n"
	".size dlsym, .-dlsym\n"
	".globl dlvsym\n"
	".type dlvsym, @function\n"
	"dlvsym:\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	pushq %rdx\n"
	"	call shim_init\n"
	"	popq %rdx\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	cmpq $-1, %rdi\n"
	"	je 1f\n"
	"	jmp dl_handle_vsym\n"
	"1:	jmp *real_dlvsym(%rip)\n"
	".size dlvsym, .-dlvsym\n");
#else
#error "wrap_dl.c: the dlsym pass-through is written for x86-64"
#endif

/* dlopen and dlmopen also read the caller's return address (the namespace
 * to load into, the caller's RPATH/RUNPATH and $ORIGIN), so they too jump
 * on to glibc; these decide the flags first. */
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
	"	call shim_init\n"
	"	movl 8(%rsp), %edi\n"
	"	call dl_open_flags\n"
	"	addq $8, %rsp\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	movl %eax, %esi\n"
	"	jmp *real_dlopen(%rip)\n"
	".size dlopen, .-dlopen\n"
	".globl dlmopen\n"
	".type dlmopen, @function\n"
	"dlmopen:\n"
	"	pushq %rdi\n"
	"	pushq %rsi\n"
	"	pushq %rdx\n"
	"	call shim_init\n"
	"	movq 16(%rsp), %rdi\n"
	"	movq 8(%rsp), %rsi\n"
	"	movl (%rsp), %edx\n"
	"	call dl_mopen_flags\n"
	"	popq %rdx\n"
	"	popq %rsi\n"
	"	popq %rdi\n"
	"	cmpq $-1, %rax\n"
	"	je 1f\n"
	"	movl %eax, %edx\n"
	"	jmp *real_dlmopen(%rip)\n"
	"1:	xorl %eax, %eax\n"
	"	ret\n"
	".size dlmopen, .-dlmopen\n");

#endif /* SHIM_GLIBC */
