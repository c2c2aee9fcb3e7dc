/* __write: see ../snip.h.  glibc's exported second name of write, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's write, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

ssize_t __write(int, const void *, size_t);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	CHECK(lseek(fd, 700, SEEK_SET) == 700); errno = 4321; CHECK(__write(fd, "second-name write", 17) == 17); CHECK(errno == 4321);
	say("position %lld", (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
