/* fstat: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);struct stat st; memset(&st, 0, sizeof st); CHECK(fstat(fd, &st) == 0);
	say("reg %d size %lld blocks>0 %d", S_ISREG(st.st_mode), (long long)st.st_size, st.st_blocks > 0);
	int w = open(P, O_RDWR); CHECK(pwrite(w, "x", 1, 4194304 + 4095) == 1); CHECK(fstat(fd, &st) == 0); say("after growth %lld", (long long)st.st_size); close(w); close(fd);
}
