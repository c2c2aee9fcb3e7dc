/* _Fork: see ../snip.h.  glibc's _Fork runs no atfork handlers; the shim's
 * run anyway, so a child writing the disk and the parent writing after it
 * both land. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char *b = xbuf(65536, 0x71);
	CHECK(pwrite(fd, b, 65536, 0) == 65536); pid_t pid = _Fork(); CHECK(pid >= 0);
	if (pid == 0) { memset(b, 0x72, 65536); _exit(pwrite(fd, b, 65536, 2097152) == 65536 ? 0 : 1); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("child status %d", WEXITSTATUS(st));
	char c[2]; CHECK(pread(fd, c, 1, 2097152) == 1); say("parent sees the child's write %02x", (unsigned char)c[0]);
	memset(b, 0x73, 65536); CHECK(pwrite(fd, b, 65536, 3 * 1048576) == 65536); close(fd); free(b);
}
