/* euidaccess: see ../snip.h.  On IMAGE/pN (only a file under the shim) it answers
 * for the image file; a missing partition is ENOENT; errno kept on success. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	CHECK(euidaccess(P, R_OK | W_OK) == 0);
	say("disk rw %d", euidaccess(P, R_OK | W_OK));
	errno = 1234;
	int r = euidaccess(part_path(1), R_OK | W_OK);
	EXPECT(r == 0 && errno == 1234);
	r = euidaccess(part_path(9), F_OK);
	EXPECT(r < 0 && errno == ENOENT);
}
