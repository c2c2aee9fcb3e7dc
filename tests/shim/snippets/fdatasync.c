/* fdatasync: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "durable", 7, 2097152) == 7);
	say("fdatasync %d", fdatasync(fd)); int r = open(P, O_RDONLY); say("ro fdatasync %d", fdatasync(r)); close(r); close(fd);
}
