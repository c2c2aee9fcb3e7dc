/* euidaccess: see ../snip.h; IMAGE/pN answers for the image file. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	part_access_checks(euidaccess);
}
