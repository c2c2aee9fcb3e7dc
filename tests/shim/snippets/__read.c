/* __read: see ../snip.h.  glibc's exported second name of read, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's read, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

ssize_t __read(int, void *, size_t);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char *b = xbuf(65536, 0);
	CHECK(lseek(fd, 1048576, SEEK_SET) == 1048576); errno = 4321; CHECK(__read(fd, b, 65536) == 65536); CHECK(errno == 4321);
	say("__read 64k at 1M: %016" PRIx64 ", position %lld", h64(b, 65536), (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(lseek(fd, 0, SEEK_SET) == 0 && __read(fd, b, 4) == 4);
	say("first bytes %02x %02x %02x %02x", (unsigned char)b[0], (unsigned char)b[1], (unsigned char)b[2], (unsigned char)b[3]);
	close(fd);
}
