/* updwtmpx: see ../snip.h.  Appending a wtmp record to an image (glibc
 * would write it into the host bytes) is refused with one line and writes
 * nothing; errno is kept.  Not called on the raw twin (it would grow the
 * disk by a record): both disks end as they started. */
#define _GNU_SOURCE
#include "../snip.h"
#include <utmpx.h>

static void child(void) {}

static void snippet(void)
{
	struct utmpx u; memset(&u, 0, sizeof u);
	u.ut_type = DEAD_PROCESS; snprintf(u.ut_line, sizeof u.ut_line, "qcs");
	if (IMG) { errno = 4321; updwtmpx(P, &u); EXPECT(errno == 4321); }
	say("updwtmpx checked");
}
