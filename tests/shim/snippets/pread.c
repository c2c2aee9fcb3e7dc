/* pread: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char b[8192];
	say("pread %zd", pread(fd, b, 8192, 1048576 - 4096)); say("h %016" PRIx64, h64(b, 8192));
	say("tail %zd", pread(fd, b, 8192, 4194304 - 100)); say("past %zd", pread(fd, b, 10, 5000000));
	errno = 0; say("neg %zd errno %d", pread(fd, b, 10, -1), errno); say("pos unchanged %lld", (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
