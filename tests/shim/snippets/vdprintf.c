/* vdprintf: see ../snip.h.  Formatted text written to an image fd lands in
 * the flat disk at the fd's position (glibc would write it with its own
 * write), and the position moves. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}
static int vd(int fd, const char *f, ...) { va_list ap; va_start(ap, f); int r = vdprintf(fd, f, ap); va_end(ap); return r; }

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	CHECK(lseek(fd, 1048576 + 10, SEEK_SET) >= 0);
	errno = 4321; int n = vd(fd, "line %d of %s: %08x\n", 1, "dprintf", 0xabcdef); CHECK(errno == 4321);
	say("vdprintf %d, position %lld", n, (long long)lseek(fd, 0, SEEK_CUR));
	char b[64]; CHECK(pread(fd, b, 64, 1048576) == 64); say("around it %016" PRIx64, h64(b, 64));
	int ro = open(P, O_RDONLY); CHECK(ro >= 0); errno = 0; n = vd(ro, "x"); say("read-only fd: %d errno %d", n, errno);
	close(ro); close(fd);
}
