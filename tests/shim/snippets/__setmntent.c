/* __setmntent: setmntent's second name. See ../snip.h.  A mount table read from an image (glibc
 * would fopen it itself, past the wrapper) is the flat disk's text:
 * getmntent parses the same entries as on the raw twin. */
#define _GNU_SOURCE
#include "../snip.h"
#include <mntent.h>
FILE *__setmntent(const char *, const char *);

static void child(void) {}

static void snippet(void)
{
	/* a small table at the start of the disk, padded to a sector */
	char t[512]; memset(t, '\n', sizeof t);
	const char *s = "/dev/sda1 / ext4 rw,relatime 0 1\nproc /proc proc rw 0 0\n";
	memcpy(t, s, strlen(s));
	int fd = open(P, O_WRONLY); CHECK(fd >= 0 && pwrite(fd, t, 512, 0) == 512 && close(fd) == 0);
	errno = 4321; FILE *f = __setmntent(P, "r"); CHECK(f); CHECK(errno == 4321);
	struct mntent *m; int n = 0;
	while ((m = getmntent(f)) && n < 4)
		say("entry %d: %s on %s type %s opts %s", n++, m->mnt_fsname, m->mnt_dir, m->mnt_type, m->mnt_opts);
	CHECK(endmntent(f) == 1);
}
