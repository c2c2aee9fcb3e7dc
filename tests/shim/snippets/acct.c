/* acct: see ../snip.h.  Process accounting into an image (the kernel would
 * append records to its host bytes) is refused with one line (EACCES).
 * Not called on the raw twin: it would start accounting into it. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	if (IMG) {
		errno = 0; int r = acct(P);
		if (r == 0) acct(NULL);
		EXPECT(r < 0 && errno == EACCES);
	}
	say("acct checked");
}
