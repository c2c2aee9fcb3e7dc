/*
 * init.c - resolution of the real libc functions, constructor, destructor.
 *
 * Owns: the real_* pointers generated from syms.def.  Each starts out
 * pointing at a stub that resolves its own row with dlsym(RTLD_NEXT) and then
 * calls the real function, so a wrapper called from another library's
 * constructor (before ours ran) works, the fast path needs no "resolved
 * yet?" test, and a process pays one lookup per function it actually uses
 * (resolving all rows up front was a third of a short process's user time).
 * A row libc lacks points at a stub failing with ENOSYS.  The first call of
 * a row is a dlsym, as the first call through a lazily bound PLT entry is a
 * symbol lookup: glibc's fork re-initialises the loader's lock in the child.
 * dlsym is the shim's own (wrap_dl.c); its RTLD_NEXT lookups jump on to
 * glibc's with this file's return address, so they answer as glibc's would.
 * Never: call a wrapper from here (only real_*), print without policy.c.
 */
#include "shim.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>


__thread int shim_depth __attribute__((tls_model("initial-exec")));
SHIM_HOT atomic_bool shim_ready;
__thread int shim_quiet __attribute__((tls_model("initial-exec")));
bool shim_exiting;

/* Row numbers, in syms.def order (row() below). */
enum {
#define SYM(name, ret, params, args) ROW_##name,
#define SYMV(name, params, args) ROW_##name,
#include "syms.def"
#undef SYM
#undef SYMV
	NROWS
};

static void resolve_row(size_t i);

/* Stubs: the first call resolves its own row, then forwards. */
#define SYM(name, ret, params, args)                                           \
	static ret stub_##name params                                          \
	{                                                                      \
		resolve_row(ROW_##name);                                       \
		return real_##name args;                                       \
	}                                                                      \
	static ret enosys_##name params                                        \
	{                                                                      \
		errno = ENOSYS;                                                \
		return (ret)-1;                                                \
	}                                                                      \
	ret(*real_##name) params = stub_##name;
#define SYMV(name, params, args)                                               \
	static void stub_##name params                                         \
	{                                                                      \
		resolve_row(ROW_##name);                                       \
		real_##name args;                                              \
	}                                                                      \
	static void enosys_##name params                                       \
	{                                                                      \
		abort();                                                       \
	}                                                                      \
	void(*real_##name) params = stub_##name;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "syms.def"
#pragma GCC diagnostic pop
#undef SYM
#undef SYMV

struct sym_row {
	const char *name;
	void **real;
	void *fallback;
	void *self;
	bool other; /* SYMU: another library's entry point (liburing) */
};

/* Row i of the table, made by code rather than kept as data: a table of
 * pointers would be 460 relocations and a page written in every process. */
static struct sym_row row(size_t i)
{
	switch (i) {
#define SYM(name, ret, params, args)                                           \
	case ROW_##name:                                                       \
		return (struct sym_row){#name, (void **)&real_##name, (void *)enosys_##name, (void *)name, false};
#define SYMV(name, params, args) SYM(name, , , )
#if !SHIM_GLIBC /* musl: a *64 name is its base function; neither kind is exported */
#define SYM64(name, base, ret, params, args)                                   \
	case ROW_##name:                                                       \
		return (struct sym_row){#base, (void **)&real_##name, (void *)enosys_##name, NULL, false};
#define SYMG(name, ret, params, args)                                          \
	case ROW_##name:                                                       \
		return (struct sym_row){#name, (void **)&real_##name, (void *)enosys_##name, NULL, false};
#define SYMVG(name, params, args) SYMG(name, , , )
#define SYMU(name, ret, params, args) SYMG(name, ret, params, args)
#else
#define SYMU(name, ret, params, args)                                          \
	case ROW_##name:                                                       \
		return (struct sym_row){#name, (void **)&real_##name, (void *)enosys_##name, (void *)name, true};
#endif
#include "syms.def"
#undef SYM
#undef SYMV
#undef SYM64
#undef SYMG
#undef SYMVG
#undef SYMU
	}
	abort();
}

/* Row i's real function (two threads racing store the same pointer). */
static void resolve_row(size_t i)
{
	struct sym_row r = row(i);
	void *p = dlsym(RTLD_NEXT, r.name);
	if (p && p == r.self) {
		/* Two copies of the shim, or a broken link: resolving to
		 * ourselves would recurse forever. */
		fprintf(stderr, "qcowshim: %s resolves to the shim itself\n", r.name);
		abort();
	}
	if (!p)
		p = r.fallback;
	__atomic_store_n(r.real, p, __ATOMIC_RELEASE);
}

static atomic_int resolved;

/* Every row at once (QCOWSHIM_DEBUG=resolve lists them). */
void shim_init(void)
{
	if (atomic_load_explicit(&resolved, memory_order_acquire))
		return;
	for (size_t i = 0; i < NROWS; i++)
		resolve_row(i);
	atomic_store_explicit(&resolved, 1, memory_order_release);
}

void *shim_sym_wrapper(const char *name, void *p)
{
	for (size_t i = 0; i < NROWS; i++) {
		struct sym_row r = row(i);
		if (!r.self || strcmp(name, r.name))
			continue;
		resolve_row(i); /* real_* may still be its stub */
		if (p == *r.real)
			return r.self;
		/* liburing looked up in its own handle (dlopen): the wrapper,
		 * which calls this definition when it does not refuse */
		if (r.other && p != r.self) {
			if (*r.real == r.fallback)
				__atomic_store_n(r.real, p, __ATOMIC_RELEASE);
			return r.self;
		}
		return p;
	}
	return p;
}

/* QCOWSHIM_DEBUG=resolve: one line per table row naming the object its
 * real_* pointer resolved into (the export test reads these). */
static void dump_resolution(void)
{
	for (size_t i = 0; i < NROWS; i++) {
		Dl_info di;
		struct sym_row r = row(i);
		void *p = *r.real;
		const char *obj = "?";
		if (p == r.fallback)
			obj = "(missing)";
		else if (dladdr(p, &di) && di.dli_fname)
			obj = di.dli_fname;
		shim_msg("resolve %s %s", r.name, obj);
	}
}

static void atfork_prepare(void)
{
	img_atfork_prepare();
}
static void atfork_parent(void)
{
	img_atfork_parent();
}
static void atfork_child(void)
{
	img_atfork_child();
}

/*
 * The fork handlers are registered when the first image is (img_register):
 * before that there is nothing to flush or lock.  A process that never
 * meets an image thus never runs, nor pages in, any of it; start-up cost
 * here is mostly pages touched (each first touch a page fault), so setup
 * calls as little as it can.
 */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static SHIM_HOT atomic_bool images_used;

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	shim_fork_watch(); /* children made without the handlers (wrap_signal.c) */
	atomic_store(&images_used, true);
}

void shim_images_used(void)
{
	if (!atomic_load_explicit(&images_used, memory_order_acquire))
		pthread_once(&atfork_once, atfork_register);
}

bool shim_images_were_used(void)
{
	return atomic_load_explicit(&images_used, memory_order_acquire);
}

/* Not pthread_once: glibc's wakes waiters with a futex call every time.
 * 0: not started, 1: running, 2: done (shim_ready). */
static SHIM_HOT atomic_int setup_state;
static __thread bool in_setup __attribute__((tls_model("initial-exec")));

static void setup_once_fn(void)
{
	int saved = errno;
	policy_init();
	if (policy_debug_resolve()) {
		shim_init();
		dump_resolution();
	}
	if (policy_env_enabled()) { /* (whether the program is a qemu tool is
				      * read when an inherited fd is an image) */
		fd_adopt_inherited();
		if (fd_any_images())
			stdio_adopt_std();
	}
	atomic_store(&shim_ready, true);
	errno = saved;
}

void shim_setup(void)
{
	if (atomic_load_explicit(&shim_ready, memory_order_acquire) || in_setup)
		return;
	shim_depth++;
	in_setup = true;
	int st = 0;
	if (atomic_compare_exchange_strong(&setup_state, &st, 1)) {
		setup_once_fn();
		atomic_store(&setup_state, 2);
	} else {
		while (!atomic_load_explicit(&shim_ready, memory_order_acquire))
			sched_yield(); /* another thread is setting up */
	}
	in_setup = false;
	shim_depth--;
}

__attribute__((constructor)) static void shim_ctor(void)
{
	shim_setup();
}

__attribute__((destructor)) static void shim_dtor(void)
{
	int saved = errno;
	if (!atomic_load(&shim_ready) || !policy_env_enabled() || !shim_images_were_used())
		return; /* (a disabled qemu tool never registered an image) */
	stdio_flush_all();
	shim_exiting = true;
	img_release_all();
	errno = saved;
}
