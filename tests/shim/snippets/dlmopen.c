/* dlmopen: see ../snip.h.  Into the base namespace it is dlopen (zlib
 * reads the image as the flat disk); into a new namespace, whose own libc
 * would not load the shim, it is refused with one line under the shim. */
#define _GNU_SOURCE
#include "../snip.h"
#include <dlfcn.h>

static void child(void) {}

static void snippet(void)
{
	void *h = dlmopen(LM_ID_BASE, "libz.so.1", RTLD_NOW); CHECK(h);
	void *(*gzopen)(const char *, const char *) = (void *(*)(const char *, const char *))dlsym(h, "gzopen");
	long (*gzseek)(void *, long, int) = (long (*)(void *, long, int))dlsym(h, "gzseek");
	int (*gzread)(void *, void *, unsigned) = (int (*)(void *, void *, unsigned))dlsym(h, "gzread");
	int (*gzclose)(void *) = (int (*)(void *))dlsym(h, "gzclose");
	CHECK(gzopen && gzseek && gzread && gzclose);
	void *z = gzopen(P, "rb"); CHECK(z);
	char *b = xbuf(65536, 0);
	CHECK(gzseek(z, 1048576, SEEK_SET) == 1048576);
	CHECK(gzread(z, b, 65536) == 65536); say("base namespace zlib 64k at 1M: %016" PRIx64, h64(b, 65536));
	CHECK(gzclose(z) == 0); dlclose(h);
	void *n = dlmopen(LM_ID_NEWLM, "libz.so.1", RTLD_NOW);
	EXPECT(n == NULL);
	if (!IMG) CHECK(n != NULL);
	if (n) dlclose(n);
	say("new namespace: %s", "done");
}
