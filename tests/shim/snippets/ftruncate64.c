/* ftruncate64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); struct stat st;
	CHECK(ftruncate64(fd, 8388608) == 0); CHECK(fstat(fd, &st) == 0); say("grown %lld", (long long)st.st_size);
	char b[16]; say("read beyond old end %zd", pread(fd, b, 16, 6000000)); say("%016" PRIx64, h64(b, 16));
	CHECK(ftruncate64(fd, 1048576 + 32768) == 0); CHECK(fstat(fd, &st) == 0); say("shrunk %lld", (long long)st.st_size);
	CHECK(ftruncate64(fd, 2097152) == 0); say("regrown tail %zd", pread(fd, b, 16, 1048576 + 40000)); say("%016" PRIx64, h64(b, 16));
	int r = open(P, O_RDONLY); errno = 0; say("ro: %d errno %d", ftruncate64(r, 0), errno); close(r); close(fd);
}
