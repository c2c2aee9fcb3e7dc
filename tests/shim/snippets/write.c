/* write: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(lseek(fd, 1048576 - 10, SEEK_SET) >= 0);
	CHECK(write(fd, "span-the-cluster-edge", 21) == 21); say("pos %lld", (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(lseek(fd, -1024, SEEK_END) >= 0); char *b = xbuf(4096, 0x77); CHECK(write(fd, b, 4096) == 4096);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("grown to %lld", (long long)st.st_size);
	int r = open(P, O_RDONLY); errno = 0; say("write on O_RDONLY: %zd errno %d", write(r, "x", 1), errno); close(r); close(fd);
}
