/* dlsym: see ../snip.h.  pread/pwrite looked up through a handle of libc
 * (what ctypes.CDLL("libc.so.6") does) are the shim's wrappers: the image
 * reads and writes as the flat disk; RTLD_DEFAULT and RTLD_NEXT lookups,
 * a name the shim does not wrap and a missing name behave as without it. */
#define _GNU_SOURCE
#include "../snip.h"
#include <dlfcn.h>

static void child(void) {}

static void snippet(void)
{
	void *h = dlopen("libc.so.6", RTLD_NOW); CHECK(h);
	errno = 4321;
	ssize_t (*rd)(int, void *, size_t, off_t) = (ssize_t (*)(int, void *, size_t, off_t))dlsym(h, "pread");
	ssize_t (*wr)(int, const void *, size_t, off_t) = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(h, "pwrite");
	CHECK(rd && wr && errno == 4321);
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	char *b = xbuf(65536, 0);
	CHECK(rd(fd, b, 65536, 1048576) == 65536); say("handle pread 64k at 1M: %016" PRIx64, h64(b, 65536));
	CHECK(rd(fd, b, 4, 0) == 4); say("first bytes %02x %02x %02x %02x", (unsigned char)b[0], (unsigned char)b[1], (unsigned char)b[2], (unsigned char)b[3]);
	CHECK(wr(fd, "handle-write", 12, 8) == 12); say("handle pwrite at 8 done");
	rd = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_DEFAULT, "pread"); CHECK(rd);
	CHECK(rd(fd, b, 32, 0) == 32); say("default pread: %016" PRIx64, h64(b, 32));
	rd = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread"); CHECK(rd);
	CHECK(rd(fd, b, 32, 4190208) == 32); say("next pread: %016" PRIx64, h64(b, 32));
	pid_t (*gp)(void) = (pid_t (*)(void))dlsym(h, "getpid"); CHECK(gp && gp() == getpid());
	say("missing: %s", dlsym(h, "qcowshim_no_such_function") == NULL && dlerror() != NULL ? "NULL, dlerror set" : "found?");
	close(fd); dlclose(h);
}
