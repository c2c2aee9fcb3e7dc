/* faccessat: see ../snip.h; IMAGE/pN answers for the image file. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static int at_eaccess(const char *p, int m)
{
	return faccessat(AT_FDCWD, p, m, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
}

static void snippet(void)
{
	part_access_checks(at_eaccess);
}
