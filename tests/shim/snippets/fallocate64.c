/* fallocate64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"
#include <linux/falloc.h>

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); struct stat st; char b[8192];
	CHECK(fallocate64(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1048576 + 4096, 8192) == 0);
	CHECK(pread(fd, b, 8192, 1048576 + 4096) == 8192); say("punched %016" PRIx64, h64(b, 8192));
	CHECK(fallocate64(fd, FALLOC_FL_ZERO_RANGE, 1048576 + 32768, 4096) == 0);
	CHECK(pread(fd, b, 4096, 1048576 + 32768) == 4096); say("zeroed %016" PRIx64, h64(b, 4096));
	CHECK(fallocate64(fd, 0, 4194304 - 4096, 1048576) == 0); CHECK(fstat(fd, &st) == 0); say("grown %lld", (long long)st.st_size);
	CHECK(fallocate64(fd, FALLOC_FL_KEEP_SIZE, 8388608, 4096) == 0); CHECK(fstat(fd, &st) == 0); say("keep %lld", (long long)st.st_size);
	CHECK(fallocate64(fd, FALLOC_FL_ZERO_RANGE, 5242880 - 512, 1024) == 0); CHECK(fstat(fd, &st) == 0); say("zero-grow %lld", (long long)st.st_size); close(fd);
}
