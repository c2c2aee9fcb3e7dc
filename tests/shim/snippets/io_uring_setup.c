/* io_uring_setup: see ../snip.h.  liburing's system call wrapper fails
 * with -ENOSYS under the shim (one line on stderr: an image is open); the
 * image is untouched and reads as the flat disk. */
/* LDLIBS: -luring */
#define _GNU_SOURCE
#include "../snip.h"
#include <liburing.h>

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	struct io_uring_params pa; memset(&pa, 0, sizeof pa); errno = 4321;
	int r = io_uring_setup(4, &pa);
	EXPECT(r == -ENOSYS && errno == 4321);
	if (!IMG) CHECK(r >= 0);
	if (r >= 0) close(r);
	char *b = xbuf(65536, 0); CHECK(pread(fd, b, 65536, 1048576) == 65536);
	say("setup checked; 64k at 1M %016" PRIx64, h64(b, 65536)); close(fd);
}
