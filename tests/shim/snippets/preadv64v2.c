/* preadv64v2: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char a[300], b[5000]; struct iovec v[2] = {{a, 300}, {b, 5000}};
	say("preadv64v2 %zd", preadv64v2(fd, v, 2, 1048576 - 200, 0)); say("%016" PRIx64 " %016" PRIx64, h64(a, 300), h64(b, 5000));
	say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(lseek(fd, 1048576, SEEK_SET) >= 0); say("at pos %zd", preadv64v2(fd, v, 1, -1, 0)); say("%016" PRIx64 " pos %lld", h64(a, 300), (long long)lseek(fd, 0, SEEK_CUR));
	close(fd);
}
