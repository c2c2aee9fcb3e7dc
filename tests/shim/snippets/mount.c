/* mount: see ../snip.h.  A file-backed mount of the image would make the
 * kernel read the host bytes: refused with ENOTBLK; the twin (no file
 * system in it) fails too. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/mount.h>

static void child(void) {}

static void snippet(void)
{
	char dir[4200]; snprintf(dir, sizeof dir, "%s.mnt", P); mkdir(dir, 0700);
	errno = 0; int r = mount(P, dir, "erofs", MS_RDONLY, NULL);
	EXPECT(r < 0 && errno == ENOTBLK);
	if (r == 0) umount(dir);
	CHECK(r < 0); say("mount refused"); rmdir(dir);
}
