/* __pwrite64: see ../snip.h.  glibc's exported second name of pwrite64, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's pwrite64, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

ssize_t __pwrite64(int, const void *, size_t, off64_t);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char *b = xbuf(8192, 0x77);
	errno = 4321; CHECK(__pwrite64(fd, b, 8192, 2097152 - 100) == 8192); CHECK(errno == 4321);
	say("written; position %lld", (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
