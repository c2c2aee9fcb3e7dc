/* swapon: see ../snip.h.  The kernel would swap onto the host file: refused
 * with EINVAL on the image; the twin (no swap signature) fails too. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/swap.h>

static void child(void) {}

static void snippet(void)
{
	errno = 0; int r = swapon(P, 0);
	EXPECT(r < 0 && errno == EINVAL);
	if (r == 0) swapoff(P);
	CHECK(r < 0); say("swapon refused");
}
