/* open_by_handle_at: see ../snip.h.  A handle taken through a hard link
 * with another name still leads to the image's inode: refused
 * (EOPNOTSUPP) once the image is open here; the twin opens it (as root). */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	char lnk[4200]; snprintf(lnk, sizeof lnk, "%s.hardlink", P); unlink(lnk);
	CHECK(link(P, lnk) == 0);
	int img = open(P, O_RDONLY); CHECK(img >= 0);
	struct { struct file_handle h; unsigned char b[128]; } fh = {.h.handle_bytes = 128};
	int mnt;
	if (name_to_handle_at(AT_FDCWD, lnk, &fh.h, &mnt, 0) == 0) {
		int dir = open(".", O_RDONLY | O_DIRECTORY); CHECK(dir >= 0); errno = 0;
		int fd = open_by_handle_at(dir, &fh.h, O_RDONLY);
		if (fd < 0 && errno == EPERM) { /* not root: no handle opens at all */
		} else {
			EXPECT(fd < 0 && errno == EOPNOTSUPP);
			if (!IMG) { CHECK(fd >= 0); close(fd); }
		}
		close(dir);
	}
	char b[512]; CHECK(pread(img, b, 512, 0) == 512); say("sector 0 %016" PRIx64, h64(b, 512));
	close(img); CHECK(unlink(lnk) == 0);
}
