/* dlvsym: see ../snip.h.  pread/pwrite looked up by version through a
 * handle of libc or RTLD_DEFAULT are the shim's wrappers: the image reads and writes as
 * the flat disk. */
#define _GNU_SOURCE
#include "../snip.h"
#include <dlfcn.h>

static void child(void) {}

static void snippet(void)
{
	void *h = dlopen("libc.so.6", RTLD_NOW); CHECK(h);
	errno = 4321;
	ssize_t (*rd)(int, void *, size_t, off_t) = (ssize_t (*)(int, void *, size_t, off_t))dlvsym(h, "pread", "GLIBC_2.2.5");
	ssize_t (*wr)(int, const void *, size_t, off_t) = (ssize_t (*)(int, const void *, size_t, off_t))dlvsym(h, "pwrite", "GLIBC_2.2.5");
	CHECK(rd && wr && errno == 4321);
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	char *b = xbuf(65536, 0);
	CHECK(rd(fd, b, 65536, 1048576) == 65536); say("versioned pread 64k at 1M: %016" PRIx64, h64(b, 65536));
	CHECK(wr(fd, "versioned", 9, 600) == 9); CHECK(rd(fd, b, 1024, 0) == 1024); say("after pwrite: %016" PRIx64, h64(b, 1024));
	rd = (ssize_t (*)(int, void *, size_t, off_t))dlvsym(RTLD_DEFAULT, "pread", "GLIBC_2.2.5"); CHECK(rd);
	CHECK(rd(fd, b, 32, 4190208) == 32); say("default pread: %016" PRIx64, h64(b, 32));
	say("missing version: %s", dlvsym(h, "pread", "QCOWSHIM_0") == NULL ? "NULL" : "found?");
	close(fd); dlclose(h);
}
