/* __dup2: see ../snip.h.  glibc's exported second name of dup2, which a
 * program may name directly (no header declares it): on the image it is
 * the shim's dup2, not glibc's own. */
#define _GNU_SOURCE
#include "../snip.h"

int __dup2(int, int);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	errno = 4321; CHECK(__dup2(fd, 33) == 33); CHECK(errno == 4321);
	char *b = xbuf(65536, 0); CHECK(pread(33, b, 65536, 1048576) == 65536); say("dup2 reads %016" PRIx64, h64(b, 65536));
	struct stat st; CHECK(fstat(33, &st) == 0); say("size %lld", (long long)st.st_size);
	CHECK(pwrite(33, "via-dup2", 8, 3000) == 8); close(33); close(fd);
}
