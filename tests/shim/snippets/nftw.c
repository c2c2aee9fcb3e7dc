/* nftw: see ../snip.h and _walk.h.  The struct stat nftw hands its
 * callback for the image (and for a symbolic link to it, followed) shows
 * the virtual size, with and without FTW_CHDIR; with FTW_PHYS the link is
 * reported as a link. */
#define _GNU_SOURCE
#include "../snip.h"
#include <ftw.h>
#include "_walk.h"

static void child(void) {}
static const char *how;

static int cb(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	(void)type;
	walk_saw(how, p + f->base, f->level, sb);
	return 0;
}

static void snippet(void)
{
	walk_setup();
	how = "plain"; errno = 4321; CHECK(nftw(walk_dir, cb, 4, 0) == 0); CHECK(errno == 4321);
	how = "phys"; CHECK(nftw(walk_dir, cb, 4, FTW_PHYS) == 0);
	how = "chdir"; CHECK(nftw(walk_dir, cb, 4, FTW_CHDIR | FTW_MOUNT) == 0);
	walk_flush(); walk_cleanup();
}
