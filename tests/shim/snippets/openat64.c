/* openat64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = openat64(AT_FDCWD, P, O_RDONLY); CHECK(fd >= 0);
	CHECK(lseek64(fd, 1048576, SEEK_SET) == 1048576); char b[4]; CHECK(read(fd, b, 4) == 4);
	say("openat64: %02x", (unsigned char)b[0]); close(fd);
}
