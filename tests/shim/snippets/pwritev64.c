/* pwritev64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char *b = xbuf(3068, 0x99); struct iovec v[2] = {{"head", 4}, {b, 3068}};
	say("pwritev64 %zd", pwritev64(fd, v, 2, 1048576 + 65536 - 100)); say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR));
	say("grow %zd", pwritev64(fd, v, 2, 4194304 - 1024));
	close(fd);
}
