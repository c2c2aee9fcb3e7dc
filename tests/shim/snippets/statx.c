/* statx: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	struct statx sx; CHECK(statx(AT_FDCWD, P, 0, STATX_BASIC_STATS, &sx) == 0);
	say("reg %d size %llu blocks>0 %d", S_ISREG(sx.stx_mode), (unsigned long long)sx.stx_size, sx.stx_blocks > 0);
	int fd = open(P, O_RDONLY); CHECK(statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx) == 0); say("fd size %llu", (unsigned long long)sx.stx_size); close(fd);
}
