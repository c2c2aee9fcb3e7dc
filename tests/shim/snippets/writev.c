/* writev: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); struct iovec v[3] = {{"alpha", 5}, {"", 0}, {"beta", 4}};
	CHECK(lseek(fd, 65530, SEEK_SET) >= 0); say("writev %zd", writev(fd, v, 3)); say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
