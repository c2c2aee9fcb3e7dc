/* dup3: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); CHECK(dup3(fd, 41, O_CLOEXEC) == 41);
	say("cloexec %d", (fcntl(41, F_GETFD) & FD_CLOEXEC) != 0); char b[4]; CHECK(pread(41, b, 4, 1048576) == 4); say("%02x", (unsigned char)b[0]);
	errno = 0; say("same fd: %d errno %d", dup3(41, 41, 0), errno); close(41); close(fd);
}
