/* pwrite: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char *b = xbuf(70000, 0x42);
	CHECK(pwrite(fd, b, 70000, 1000) == 70000); CHECK(pwrite(fd, b, 512, 4194304 + 512) == 512);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("size %lld pos %lld", (long long)st.st_size, (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
