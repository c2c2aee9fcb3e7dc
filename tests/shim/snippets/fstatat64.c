/* fstatat64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	struct stat64 st; memset(&st, 0, sizeof st); CHECK(fstatat64(AT_FDCWD, P, &st, 0) == 0);
	say("reg %d size %lld blocks>0 %d", S_ISREG(st.st_mode), (long long)st.st_size, st.st_blocks > 0);
}
