/* system: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); CHECK(dup2(fd, 3) == 3); if (fd != 3) close(fd);
	CHECK(lseek(3, 1048576 - 2, SEEK_SET) >= 0); fflush(stdout);
	int r = system("od -An -tx1 -N4 <&3; head -c 2 <&3 | od -An -tx1; cat /dev/fd/3 | wc -c");
	say("system %d pos %lld", r, (long long)lseek(3, 0, SEEK_CUR)); close(3);
}
