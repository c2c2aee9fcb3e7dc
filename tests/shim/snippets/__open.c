/* __open: see ../snip.h.  glibc's exported second name of open, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's open, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

int __open(const char *, int, ...);

static void child(void) {}

static void snippet(void)
{
	errno = 4321; int fd = __open(P, O_RDWR); CHECK(fd >= 0); CHECK(errno == 4321);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("size %lld", (long long)st.st_size);
	char *b = xbuf(65536, 0); CHECK(read(fd, b, 512) == 512); say("sector 0 %016" PRIx64, h64(b, 512));
	CHECK(pwrite(fd, "opened", 6, 100) == 6); close(fd);
	int r = __open(sibling("none"), O_RDONLY); say("missing: %d errno %d", r, errno);
}
