/* pwritev2: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char *b = xbuf(3068, 0x99); struct iovec v[2] = {{"head", 4}, {b, 3068}};
	say("pwritev2 %zd", pwritev2(fd, v, 2, 1048576 + 65536 - 100, 0)); say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR));
	say("grow %zd", pwritev2(fd, v, 2, 4194304 - 1024, 0));
	CHECK(lseek(fd, 200, SEEK_SET) >= 0); say("at pos %zd", pwritev2(fd, v, 1, -1, 0)); say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR));
	close(fd);
}
