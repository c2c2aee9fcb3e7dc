/* renameat2: see ../snip.h.  A file that is not an image renamed over the image
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
	CHECK(renameat2(AT_FDCWD, P, AT_FDCWD, m, 0) == 0); CHECK(renameat2(AT_FDCWD, m, AT_FDCWD, P, 0) == 0); say("image renamed away and back");
	char tmp[4200]; snprintf(tmp, sizeof tmp, "%s.tmp-renameat2", P);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644); CHECK(fd >= 0); char *b = xbuf(1024, 0x42);
	CHECK(write(fd, b, 1024) == 1024); CHECK(close(fd) == 0); free(b);
	int r; errno = 0; say("noreplace: %d errno %d", renameat2(AT_FDCWD, tmp, AT_FDCWD, P, RENAME_NOREPLACE), errno); errno = 0; r = renameat2(AT_FDCWD, tmp, AT_FDCWD, P, RENAME_EXCHANGE); EXPECT(r < 0 && errno == EXDEV); if (r == 0) CHECK(renameat2(AT_FDCWD, tmp, AT_FDCWD, P, RENAME_EXCHANGE) == 0); errno = 0; r = renameat2(AT_FDCWD, tmp, AT_FDCWD, P, 0); EXPECT(r < 0 && errno == EXDEV);
	replace_by_copy(r, tmp); say("replaced: tmp gone %d", access(tmp, F_OK) < 0);
	errno = 0; say("missing source: %d errno %d", renameat2(AT_FDCWD, "no-such-file", AT_FDCWD, P, 0), errno);
}
