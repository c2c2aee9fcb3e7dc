/* __fcntl: see ../snip.h.  glibc's exported second name of fcntl, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's fcntl, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

int __fcntl(int, int, ...);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR | O_APPEND); CHECK(fd >= 0);
	errno = 4321; int fl = __fcntl(fd, F_GETFL); CHECK(errno == 4321);
	say("F_GETFL access %d append %d", fl & O_ACCMODE, !!(fl & O_APPEND));
	CHECK(__fcntl(fd, F_SETFL, fl & ~O_APPEND) == 0); say("append now %d", !!(__fcntl(fd, F_GETFL) & O_APPEND));
	int d = __fcntl(fd, F_DUPFD_CLOEXEC, 30); CHECK(d >= 30); char b[16]; CHECK(pread(d, b, 16, 1048576) == 16);
	say("dup reads %016" PRIx64, h64(b, 16)); close(d); close(fd);
}
