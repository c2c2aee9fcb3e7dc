/*
 * nextlib.c - a preload library of its own, as fakeroot is one: it wraps
 * read() and finds the next read with dlsym(RTLD_NEXT), which glibc answers
 * relative to the caller.  Preloaded before the shim, its "next" must be
 * the shim's read (t_shim_around.sh), so the shim's dlsym may not change
 * whose caller glibc sees.  NEXTLIB_LIBC=1: it asks a handle of libc for
 * read instead, as some interposers do; preloaded after the shim, it must
 * get libc's (the shim's read, whose next is this one, would loop).
 * NEXTLIB_OUT=FILE: the number of calls is written there at exit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static ssize_t (*next_read)(int, void *, size_t);
static unsigned long calls;

ssize_t read(int fd, void *b, size_t n)
{
	if (!next_read)
		next_read = (ssize_t (*)(int, void *, size_t))dlsym(
			getenv("NEXTLIB_LIBC") ? dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD) : RTLD_NEXT,
			"read");
	calls++;
	return next_read(fd, b, n);
}

__attribute__((destructor)) static void done(void)
{
	const char *p = getenv("NEXTLIB_OUT");
	FILE *f;
	if (p && calls && (f = fopen(p, "w"))) {
		fprintf(f, "%lu\n", calls);
		fclose(f);
	}
}
