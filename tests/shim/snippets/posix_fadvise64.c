/* posix_fadvise64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); say("posix_fadvise64 %d %d", posix_fadvise64(fd, 0, 0, POSIX_FADV_SEQUENTIAL), posix_fadvise64(fd, 0, 0, 99));
	char b[4]; CHECK(pread(fd, b, 4, 1048576) == 4); say("%02x", (unsigned char)b[0]); close(fd);
}
