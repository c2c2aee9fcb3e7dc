/* eventfd_read: see ../snip.h.  On a descriptor that is not an eventfd it
 * is a read of 8 bytes at the position (glibc's own read): on the image
 * they are the flat disk's, not the QCOW2 header. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/eventfd.h>

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	eventfd_t v = 0; errno = 4321; CHECK(eventfd_read(fd, &v) == 0); CHECK(errno == 4321);
	say("first 8 bytes %016llx, position %lld", (unsigned long long)v, (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(lseek(fd, 1048576, SEEK_SET) == 1048576 && eventfd_read(fd, &v) == 0); say("at 1M %016llx", (unsigned long long)v);
	CHECK(lseek(fd, 0, SEEK_END) >= 0); errno = 0; int r = eventfd_read(fd, &v); say("at the end: %d", r);
	int e = eventfd(5, 0); CHECK(e >= 0 && eventfd_read(e, &v) == 0); say("eventfd %llu", (unsigned long long)v); close(e);
	close(fd);
}
