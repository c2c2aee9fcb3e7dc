/* close: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char b[4]; CHECK(read(fd, b, 4) == 4);
	say("close %d", close(fd)); errno = 0; say("read closed %zd errno %d", read(fd, b, 4), errno);
	/* a tool closing "every" fd must not break the disk */
	fd = open(P, O_RDONLY); CHECK(pread(fd, b, 4, 1048576) == 4); for (int i = 3; i < 1024; i++) if (i != fd) close(i);
	CHECK(pread(fd, b, 4, 1048576) == 4); say("after close-all %02x", (unsigned char)b[0]); close(fd);
}
