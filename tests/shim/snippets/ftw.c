/* ftw: see ../snip.h and _walk.h.  The struct stat ftw hands its callback
 * for the image and for a symbolic link to it (followed) shows the
 * virtual size. */
#define _GNU_SOURCE
#include "../snip.h"
#include <ftw.h>
#include "_walk.h"

static void child(void) {}

static int cb(const char *p, const struct stat *sb, int type)
{
	(void)type;
	const char *name = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
	walk_saw("ftw", name, strncmp(name, "link", 4) ? 0 : 1, sb);
	return 0;
}

static void snippet(void)
{
	walk_setup();
	errno = 4321; CHECK(ftw(walk_dir, cb, 4) == 0); CHECK(errno == 4321);
	walk_flush(); walk_cleanup();
}
