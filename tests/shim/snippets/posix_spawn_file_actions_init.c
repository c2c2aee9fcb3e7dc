/* posix_spawn_file_actions_init: see ../snip.h.  A list destroyed and made
 * anew at the same address starts empty: the child gets no image fd. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; errno = 0; ssize_t n = pread(3, b, 4, 0); say("child read %zd errno %d", n, errno); }

static void snippet(void)
{
	posix_spawn_file_actions_t fa; CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 3, P, O_RDWR, 0) == 0);
	char *av[] = {"snip", (char *)P, "child", NULL}; pid_t pid; int st; fflush(stdout);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(posix_spawn_file_actions_destroy(&fa) == 0); CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); CHECK(waitpid(pid, &st, 0) == pid);
	say("child status %d", WEXITSTATUS(st)); CHECK(posix_spawn_file_actions_destroy(&fa) == 0);
}
