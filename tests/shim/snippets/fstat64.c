/* fstat64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);struct stat64 st; memset(&st, 0, sizeof st); CHECK(fstat64(fd, &st) == 0);
	say("reg %d size %lld blocks>0 %d", S_ISREG(st.st_mode), (long long)st.st_size, st.st_blocks > 0); close(fd);
}
