/* lgetxattr: see ../snip.h.  IMAGE/pN (only a file under the shim) has the image
 * file's attributes. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/xattr.h>

static void child(void) {}

static void snippet(void)
{
	char v[64];
	errno = 0;
	ssize_t r = lgetxattr(P, "user.qcowshim.none", v, sizeof v);
	int e = errno;
	say("disk: %zd errno %d", r, e);
	errno = 0;
	ssize_t rp = lgetxattr(part_path(1), "user.qcowshim.none", v, sizeof v);
	EXPECT(rp == r && errno == e);
}
