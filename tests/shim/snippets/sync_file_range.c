/* sync_file_range: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "sfr", 3, 3000) == 3);
	say("sync_file_range %d", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)); close(fd);
}
