/* open64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open64(P, O_RDWR); CHECK(fd >= 0);
	char b[16]; CHECK(pread64(fd, b, 16, 1048576 + 65536 - 8) == 16); say("open64: %016" PRIx64, h64(b, 16));
	CHECK(pwrite64(fd, "open64", 6, 300) == 6); close(fd);
}
