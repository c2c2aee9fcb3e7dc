/* close_range: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "cr", 2, 100) == 2);
	say("close_range %d", close_range((unsigned)fd + 1, ~0U, 0)); char b[4]; CHECK(pread(fd, b, 4, 1048576) == 4);
	CHECK(pwrite(fd, "CR", 2, 1048576 + 70000) == 2); say("%02x", (unsigned char)b[0]);
	int d = dup(fd); say("close_range dup %d", close_range((unsigned)d, (unsigned)d, 0)); errno = 0; say("gone %zd errno %d", read(d, b, 1), errno); close(fd);
}
