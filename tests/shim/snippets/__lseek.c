/* __lseek: see ../snip.h.  glibc's exported second name of lseek, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's lseek, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

off_t __lseek(int, off_t, int);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	errno = 4321; off_t e = __lseek(fd, 0, SEEK_END); CHECK(errno == 4321); say("SEEK_END %lld", (long long)e);
	off_t s = __lseek(fd, 12345, SEEK_SET), c = __lseek(fd, 5, SEEK_CUR);
	say("SEEK_SET %lld SEEK_CUR %lld", (long long)s, (long long)c); close(fd);
}
