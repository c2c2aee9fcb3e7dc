/* faccessat: see ../snip.h.  On IMAGE/pN (only a file under the shim) it
 * answers for the image file; a missing partition is ENOENT. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	CHECK(faccessat(AT_FDCWD, P, R_OK | W_OK, AT_EACCESS) == 0);
	say("disk rw ok");
	errno = 1234;
	int r = faccessat(AT_FDCWD, part_path(1), R_OK, AT_SYMLINK_NOFOLLOW);
	EXPECT(r == 0 && errno == 1234);
	r = faccessat(AT_FDCWD, part_path(9), F_OK, 0);
	EXPECT(r < 0 && errno == ENOENT);
}
