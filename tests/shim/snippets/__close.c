/* __close: see ../snip.h.  glibc's exported second name of close, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's close, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

int __close(int);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "closing", 7, 4096) == 7);
	errno = 4321; CHECK(__close(fd) == 0); CHECK(errno == 4321);
	int r = __close(fd); say("closed; again: %d errno %d", r, errno);
}
