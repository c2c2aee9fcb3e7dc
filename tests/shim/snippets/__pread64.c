/* __pread64: see ../snip.h.  glibc's exported second name of pread64, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's pread64, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

ssize_t __pread64(int, void *, size_t, off64_t);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char *b = xbuf(65536, 0);
	errno = 4321; CHECK(__pread64(fd, b, 65536, 1048576) == 65536); CHECK(errno == 4321);
	say("__pread64 64k at 1M: %016" PRIx64, h64(b, 65536)); CHECK(__pread64(fd, b, 512, 0) == 512);
	say("sector 0: %016" PRIx64, h64(b, 512)); say("past the end: %zd", __pread64(fd, b, 4096, 4194304 - 100)); close(fd);
}
