/* posix_spawn_file_actions_addfchdir_np: see ../snip.h.  An open action after the
 * change of directory names the disk by a relative name: the child gets it
 * as an image (read-only to the kernel, the access mode asked for in the
 * table), never the host bytes. */
#define _GNU_SOURCE
#include "../snip.h"
#include <libgen.h>

static void child(void) { char b[4]; ssize_t w = pwrite(3, "cdir", 4, 16384); ssize_t n = pread(3, b, 4, 16384);
	say("child wrote %zd read %zd: %.4s acc %d", w, n, n == 4 ? b : "????", fcntl(3, F_GETFL) & O_ACCMODE); }

static void snippet(void)
{
	char d[4096], f[4096]; snprintf(d, sizeof d, "%s", P); snprintf(f, sizeof f, "%s", P);
	posix_spawn_file_actions_t fa; CHECK(posix_spawn_file_actions_init(&fa) == 0);
	char *dir = dirname(d); int dfd = open(dir, O_RDONLY | O_DIRECTORY); CHECK(dfd >= 0); (void)dfd;
	CHECK(posix_spawn_file_actions_addfchdir_np(&fa, dfd) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 3, basename(f), O_RDWR, 0) == 0);
	char *av[] = {"snip", (char *)P, "child", NULL}; pid_t pid; fflush(stdout);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); int st; CHECK(waitpid(pid, &st, 0) == pid);
	say("child status %d", WEXITSTATUS(st)); posix_spawn_file_actions_destroy(&fa); close(dfd);
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); char b[4]; CHECK(pread(fd, b, 4, 16384) == 4); say("parent reads %.4s", b); close(fd);
}
