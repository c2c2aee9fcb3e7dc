/* dlopen: see ../snip.h.  zlib loaded with RTLD_DEEPBIND (which would bind
 * its open/read to libc's own, past the preload) reads the image as the
 * flat disk through gzopen/gzread (a file that is not gzip reads as is). */
#define _GNU_SOURCE
#include "../snip.h"
#include <dlfcn.h>

static void child(void) {}

static void snippet(void)
{
	errno = 4321;
	void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND); CHECK(h); CHECK(errno == 4321);
	void *(*gzopen)(const char *, const char *) = (void *(*)(const char *, const char *))dlsym(h, "gzopen");
	long (*gzseek)(void *, long, int) = (long (*)(void *, long, int))dlsym(h, "gzseek");
	int (*gzread)(void *, void *, unsigned) = (int (*)(void *, void *, unsigned))dlsym(h, "gzread");
	int (*gzclose)(void *) = (int (*)(void *))dlsym(h, "gzclose");
	CHECK(gzopen && gzseek && gzread && gzclose);
	void *z = gzopen(P, "rb"); CHECK(z);
	char *b = xbuf(65536, 0);
	CHECK(gzread(z, b, 4) == 4); say("first bytes %02x %02x %02x %02x", (unsigned char)b[0], (unsigned char)b[1], (unsigned char)b[2], (unsigned char)b[3]);
	CHECK(gzseek(z, 1048576, SEEK_SET) == 1048576);
	CHECK(gzread(z, b, 65536) == 65536); say("deepbind zlib 64k at 1M: %016" PRIx64, h64(b, 65536));
	CHECK(gzclose(z) == 0); dlclose(h);
}
