/* utmpname: see ../snip.h.  Naming an image as the utmp file (glibc would
 * read and write records in its host bytes) is refused with one line
 * (-1, EACCES); on the raw twin it is accepted.  The default is restored. */
#define _GNU_SOURCE
#include "../snip.h"
#include <utmp.h>

static void child(void) {}

static void snippet(void)
{
	errno = 0; int r = utmpname(P);
	EXPECT(r < 0 && errno == EACCES);
	if (!IMG) CHECK(r == 0);
	CHECK(utmpname(_PATH_UTMP) == 0);
	say("utmpname checked");
}
