/* _Exit: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { int fd = open(P, O_RDWR); char *b = xbuf(200000, 0x3c); if (pwrite(fd, b, 200000, 2000000) != 200000) _Exit(3); _Exit(0); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("status %d", WEXITSTATUS(st));
}
