/* posix_spawn_file_actions_addclose: see ../snip.h.  A closed image fd is
 * not the child's. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; errno = 0; ssize_t n = read(3, b, 4); say("child read %zd errno %d", n, errno); }

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(dup2(fd, 3) == 3); if (fd != 3) close(fd);
	posix_spawn_file_actions_t fa; CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_addclose(&fa, 3) == 0);
	char *av[] = {"snip", (char *)P, "child", NULL}; pid_t pid; fflush(stdout);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); int st; CHECK(waitpid(pid, &st, 0) == pid);
	say("child status %d", WEXITSTATUS(st)); posix_spawn_file_actions_destroy(&fa); close(3);
}
