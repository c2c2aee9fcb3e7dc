/* rename: see ../snip.h.  A file that is not an image renamed over the image
 * fails with EXDEV (the image is never replaced); the copy a program such
 * as mv falls back to is served.  Renaming the image itself goes through. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void replace_by_copy(int r, const char *tmp)
{
	if (r < 0 && errno == EXDEV) { /* mv's fallback: copy, then remove */
		int fd = open(P, O_WRONLY | O_TRUNC); CHECK(fd >= 0); char *b = xbuf(1024, 0x42);
		CHECK(write(fd, b, 1024) == 1024); CHECK(close(fd) == 0); CHECK(unlink(tmp) == 0); free(b);
	}
}

static void snippet(void)
{
	const char *m = sibling("moved"); unlink(m);
	CHECK(rename(P, m) == 0); CHECK(rename(m, P) == 0); say("image renamed away and back");
	char tmp[4200]; snprintf(tmp, sizeof tmp, "%s.tmp-rename", P);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644); CHECK(fd >= 0); char *b = xbuf(1024, 0x42);
	CHECK(write(fd, b, 1024) == 1024); CHECK(close(fd) == 0); free(b);
	errno = 0; int r = rename(tmp, P); EXPECT(r < 0 && errno == EXDEV);
	replace_by_copy(r, tmp); say("replaced: tmp gone %d", access(tmp, F_OK) < 0);
	errno = 0; say("missing source: %d errno %d", rename("no-such-file", P), errno);
}
