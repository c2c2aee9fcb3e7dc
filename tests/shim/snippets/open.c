/* open: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	char b[8]; CHECK(pread(fd, b, 8, 1048576 - 4) == 8); say("open: %016" PRIx64, h64(b, 8));
	int w = open(P, O_WRONLY | O_APPEND); CHECK(w >= 0); char *ap = xbuf(512, 0x61); CHECK(write(w, ap, 512) == 512);
	CHECK((fcntl(w, F_GETFL) & O_APPEND) != 0); close(w); close(fd);
	int t = open(sibling("t"), O_RDWR | O_CREAT | O_TRUNC, 0644); CHECK(t >= 0);
	CHECK(write(t, "0123456789", 10) == 10); close(t);
	t = open(sibling("t"), O_RDWR | O_TRUNC); CHECK(t >= 0); struct stat st; CHECK(fstat(t, &st) == 0);
	say("truncated size %lld", (long long)st.st_size); CHECK(write(t, "ab", 2) == 2); close(t); unlink(sibling("t"));
	errno = 0; say("missing: %d errno %d", open(sibling("missing"), O_RDONLY), errno);
}
