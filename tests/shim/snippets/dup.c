/* dup: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); int d = dup(fd); CHECK(d >= 0);
	CHECK(lseek(fd, 1048576 - 2, SEEK_SET) >= 0); char b[4]; CHECK(read(d, b, 4) == 4);
	say("shared pos: %02x %02x %02x %02x pos %lld", (unsigned char)b[0], (unsigned char)b[1], (unsigned char)b[2], (unsigned char)b[3], (long long)lseek(fd, 0, SEEK_CUR));
	close(fd); CHECK(read(d, b, 4) == 4); say("after close %02x", (unsigned char)b[0]); close(d);
}
