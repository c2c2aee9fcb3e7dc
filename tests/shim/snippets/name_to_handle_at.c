/* name_to_handle_at: see ../snip.h.  A file handle of an image is refused
 * (EOPNOTSUPP, as a filesystem without handles); the twin may get one. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	struct { struct file_handle h; unsigned char b[128]; } fh = {.h.handle_bytes = 128};
	int mnt; errno = 0;
	int r = name_to_handle_at(AT_FDCWD, P, &fh.h, &mnt, 0);
	EXPECT(r < 0 && errno == EOPNOTSUPP);
	if (!IMG) CHECK(r == 0 || errno == EOPNOTSUPP || errno == EPERM);
	int fd = open(P, O_PATH); CHECK(fd >= 0); errno = 0;
	r = name_to_handle_at(fd, "", &fh.h, &mnt, AT_EMPTY_PATH); /* by its O_PATH fd */
	EXPECT(r < 0 && errno == EOPNOTSUPP); close(fd);
	struct stat st; CHECK(stat(P, &st) == 0); say("size %lld", (long long)st.st_size);
}
