/* io_uring_queue_init: see ../snip.h and _uring.h.  Under the shim ring
 * setup fails with -ENOSYS (one line on stderr: an image is open) and the
 * program falls back; the image gets the twin's write and reads as the
 * flat disk. */
/* LDLIBS: -luring */
#define _GNU_SOURCE
#include "../snip.h"
#include "_uring.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	struct io_uring ring; errno = 4321;
	int r = io_uring_queue_init(8, &ring, 0);
	EXPECT(r == -ENOSYS && errno == 4321);
	if (!IMG) CHECK(r == 0);
	uring_io(&ring, r == 0, fd); close(fd);
}
