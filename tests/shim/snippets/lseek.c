/* lseek: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	say("end %lld", (long long)lseek(fd, 0, SEEK_END)); say("end-10 %lld", (long long)lseek(fd, -10, SEEK_END));
	say("cur+5 %lld", (long long)lseek(fd, 5, SEEK_CUR)); say("set %lld", (long long)lseek(fd, 4096, SEEK_SET));
	errno = 0; say("neg %lld errno %d", (long long)lseek(fd, -1, SEEK_SET), errno);
	say("data from 512K: %lld", (long long)lseek(fd, 524288, SEEK_DATA)); say("hole from 1M: %lld", (long long)lseek(fd, 1048576, SEEK_HOLE));
	errno = 0; say("data past end: %lld errno %d", (long long)lseek(fd, 4194304, SEEK_DATA), errno);
	/* cp --sparse style: the data segments, holes as zeros, rebuild the disk */
	off_t size = lseek(fd, 0, SEEK_END), pos = 0; char *img = calloc(1, (size_t)size); CHECK(img);
	while (pos < size) { off_t d = lseek(fd, pos, SEEK_DATA); if (d < 0) break; off_t h = lseek(fd, d, SEEK_HOLE); CHECK(h > d);
	  CHECK(pread(fd, img + d, (size_t)(h - d), d) == h - d); pos = h; }
	say("rebuilt %016" PRIx64, h64(img, (size_t)size)); close(fd);
}
