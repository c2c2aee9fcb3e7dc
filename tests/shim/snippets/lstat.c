/* lstat: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	struct stat st; memset(&st, 0, sizeof st); CHECK(lstat(P, &st) == 0);
	say("reg %d size %lld blocks>0 %d", S_ISREG(st.st_mode), (long long)st.st_size, st.st_blocks > 0);
	const char *l = sibling("link"); unlink(l); CHECK(symlink(P, l) == 0); CHECK(lstat(l, &st) == 0); say("link is link %d", S_ISLNK(st.st_mode));
	CHECK(stat(l, &st) == 0); unlink(l);
}
