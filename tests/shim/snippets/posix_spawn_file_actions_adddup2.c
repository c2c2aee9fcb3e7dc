/* posix_spawn_file_actions_adddup2: see ../snip.h.  An image fd dup'ed
 * into the child by the action is an image there, writable as opened. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; ssize_t w = pwrite(3, "dup2", 4, 8192); ssize_t n = pread(3, b, 4, 8192);
	say("child wrote %zd read %zd: %.4s acc %d", w, n, n == 4 ? b : "????", fcntl(3, F_GETFL) & O_ACCMODE); }

static void snippet(void)
{
	int o = open(P, O_RDWR); CHECK(o >= 0); int fd = fcntl(o, F_DUPFD_CLOEXEC, 10); CHECK(fd >= 10); close(o);
	posix_spawn_file_actions_t fa; CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_adddup2(&fa, fd, 3) == 0);
	char *av[] = {"snip", (char *)P, "child", NULL}; pid_t pid; fflush(stdout);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); int st; CHECK(waitpid(pid, &st, 0) == pid);
	say("child status %d", WEXITSTATUS(st)); CHECK(posix_spawn_file_actions_destroy(&fa) == 0);
	char b[4]; CHECK(pread(fd, b, 4, 8192) == 4); say("parent reads %.4s", b); close(fd);
}
