/* posix_fallocate64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"
#include <linux/falloc.h>

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); struct stat st;
	say("rc %d", posix_fallocate64(fd, 4194304, 1048576)); CHECK(fstat(fd, &st) == 0); say("size %lld", (long long)st.st_size);
	say("inside rc %d", posix_fallocate64(fd, 0, 4096)); say("bad rc %d", posix_fallocate64(fd, -1, 4096)); close(fd);
}
