/* getxattr: see ../snip.h; IMAGE/pN has the image file's attributes. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/xattr.h>

static void child(void) {}

static void snippet(void)
{
	part_xattr_checks(getxattr);
}
