/*
 * init.c - resolution of the real libc functions, constructor, destructor.
 *
 * Owns: the real_* pointers generated from syms.def.  Each starts out
 * pointing at a stub that resolves every row with dlsym(RTLD_NEXT) and then
 * calls the real function, so a wrapper called from another library's
 * constructor (before ours ran) works, and the fast path needs no "resolved
 * yet?" test.  A row libc lacks points at a stub failing with ENOSYS.
 * Never: call a wrapper from here (only real_*), print without policy.c.
 */
#include "shim.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>


__thread int shim_depth __attribute__((tls_model("initial-exec")));
atomic_bool shim_ready;
__thread int shim_quiet;
bool shim_exiting;

/* Stubs: first call resolves everything, then forwards. */
#define SYM(name, ret, params, args)                                           \
	static ret stub_##name params                                          \
	{                                                                      \
		shim_init();                                                   \
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
		shim_init();                                                   \
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

static const struct sym_row sym_rows[] = {
#define SYM(name, ret, params, args)                                           \
	{#name, (void **)&real_##name, (void *)enosys_##name, (void *)name, false},
#define SYMV(name, params, args)                                               \
	{#name, (void **)&real_##name, (void *)enosys_##name, (void *)name, false},
#if !SHIM_GLIBC /* musl: a *64 name is its base function; neither kind is exported */
#define SYM64(name, base, ret, params, args)                                   \
	{#base, (void **)&real_##name, (void *)enosys_##name, NULL, false},
#define SYMG(name, ret, params, args)                                          \
	{#name, (void **)&real_##name, (void *)enosys_##name, NULL, false},
#define SYMVG(name, params, args) SYMG(name, , , )
#endif
#if SHIM_GLIBC
#define SYMU(name, ret, params, args)                                          \
	{#name, (void **)&real_##name, (void *)enosys_##name, (void *)name, true},
#else
#define SYMU(name, ret, params, args) SYMG(name, ret, params, args)
#endif
#include "syms.def"
#undef SYM
#undef SYMV
#undef SYM64
#undef SYMG
#undef SYMVG
#undef SYMU
};

static atomic_int resolved;

void shim_init(void)
{
	if (atomic_load_explicit(&resolved, memory_order_acquire))
		return;
	for (size_t i = 0; i < sizeof sym_rows / sizeof sym_rows[0]; i++) {
#if SHIM_GLIBC /* dlsym is the shim's own (wrap_dl.c) */
		void *p = shim_libc_dlsym()(RTLD_NEXT, sym_rows[i].name);
#else
		void *p = dlsym(RTLD_NEXT, sym_rows[i].name);
#endif
		if (p && p == sym_rows[i].self) {
			/* Two copies of the shim, or a broken link: resolving to
			 * ourselves would recurse forever. */
			fprintf(stderr, "qcowshim: %s resolves to the shim itself\n",
				sym_rows[i].name);
			abort();
		}
		if (!p)
			p = sym_rows[i].fallback;
		__atomic_store_n(sym_rows[i].real, p, __ATOMIC_RELEASE);
	}
	atomic_store_explicit(&resolved, 1, memory_order_release);
}

void *shim_sym_wrapper(const char *name, void *p)
{
	shim_init();
	for (size_t i = 0; i < sizeof sym_rows / sizeof sym_rows[0]; i++) {
		const struct sym_row *r = &sym_rows[i];
		if (!r->self || strcmp(name, r->name))
			continue;
		if (p == *r->real)
			return r->self;
		/* liburing looked up in its own handle (dlopen): the wrapper,
		 * which calls this definition when it does not refuse */
		if (r->other && p != r->self) {
			if (*r->real == r->fallback)
				__atomic_store_n(r->real, p, __ATOMIC_RELEASE);
			return r->self;
		}
	}
	return p;
}

/* QCOWSHIM_DEBUG=resolve: one line per table row naming the object its
 * real_* pointer resolved into (the export test reads these). */
static void dump_resolution(void)
{
	for (size_t i = 0; i < sizeof sym_rows / sizeof sym_rows[0]; i++) {
		Dl_info di;
		void *p = *sym_rows[i].real;
		const char *obj = "?";
		if (p == sym_rows[i].fallback)
			obj = "(missing)";
		else if (dladdr(p, &di) && di.dli_fname)
			obj = di.dli_fname;
		shim_msg("resolve %s %s", sym_rows[i].name, obj);
	}
}

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

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

static void setup_once_fn(void)
{
	int saved = errno;
	shim_init();
	policy_init();
	if (policy_debug_resolve())
		dump_resolution();
	if (policy_enabled()) {
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		fd_adopt_inherited();
		stdio_adopt_std();
	}
	atomic_store(&shim_ready, true);
	errno = saved;
}

void shim_setup(void)
{
	if (atomic_load_explicit(&shim_ready, memory_order_acquire))
		return;
	shim_depth++;
	pthread_once(&setup_once, setup_once_fn);
	shim_depth--;
}

__attribute__((constructor)) static void shim_ctor(void)
{
	shim_setup();
}

__attribute__((destructor)) static void shim_dtor(void)
{
	int saved = errno;
	if (!atomic_load(&shim_ready) || !policy_enabled())
		return;
	stdio_flush_all();
	shim_exiting = true;
	img_release_all();
	errno = saved;
}
