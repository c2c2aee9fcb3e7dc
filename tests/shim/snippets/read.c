/* read: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char b[600];
	CHECK(read(fd, b, 600) == 600); say("read1 %016" PRIx64, h64(b, 600));
	CHECK(lseek(fd, -100, SEEK_END) >= 0); say("tail read %zd", read(fd, b, 600)); say("eof read %zd", read(fd, b, 600));
	int w = open(P, O_WRONLY); errno = 0; say("read on O_WRONLY: %zd errno %d", read(w, b, 1), errno); close(w); close(fd);
}
