/* __pread_chk: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char b[700];
	ssize_t n = __pread_chk(fd, b, 700, 1048576 - 300, sizeof b); say("__pread_chk %zd %016" PRIx64, n, h64(b, 700)); close(fd);
}
