/* clone: see ../snip.h.  clone without CLONE_VM is a fork that runs no
 * atfork handlers; the shim's run anyway, and the child's translator is
 * flushed when its function returns (its bare exit runs no destructor). */
#define _GNU_SOURCE
#include "../snip.h"
#include <sched.h>

static void child(void) {}
static int fd; static char *b;
static int child_fn(void *a) { (void)a; memset(b, 0x82, 65536); return pwrite(fd, b, 65536, 2097152) == 65536 ? 0 : 1; }

static void snippet(void)
{
	static char stack[65536];
	fd = open(P, O_RDWR); CHECK(fd >= 0); b = xbuf(65536, 0x81);
	CHECK(pwrite(fd, b, 65536, 0) == 65536); pid_t pid = clone(child_fn, stack + sizeof stack, SIGCHLD, NULL); CHECK(pid > 0);
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("child status %d", WEXITSTATUS(st));
	char c[2]; CHECK(pread(fd, c, 1, 2097152) == 1); say("parent sees the child's write %02x", (unsigned char)c[0]);
	memset(b, 0x83, 65536); CHECK(pwrite(fd, b, 65536, 3 * 1048576) == 65536); close(fd); free(b);
}
