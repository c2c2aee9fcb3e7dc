/* closefrom: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "cf", 2, 100) == 2);
	closefrom(fd + 1); char b[4]; CHECK(pread(fd, b, 4, 1048576) == 4); CHECK(pwrite(fd, "CF", 2, 200000) == 2);
	say("closefrom %02x", (unsigned char)b[0]); closefrom(fd); errno = 0; say("gone %zd errno %d", read(fd, b, 1), errno);
}
