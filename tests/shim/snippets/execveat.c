/* execveat: see ../snip.h.  The exec guard runs for execveat as for execve:
 * the inherited image fd keeps its access mode and position in the child. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; ssize_t w = pwrite(3, "eat!", 4, 4096); ssize_t n = pread(3, b, 4, 4096);
	say("child wrote %zd read %zd: %.4s acc %d pos %lld", w, n, n == 4 ? b : "????", fcntl(3, F_GETFL) & O_ACCMODE, (long long)lseek(3, 0, SEEK_CUR)); }

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(dup2(fd, 3) == 3); if (fd != 3) close(fd);
	CHECK(lseek(3, 12345, SEEK_SET) == 12345); pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { char *av[] = {"snip", (char *)P, "child", NULL}; syscall(SYS_execveat, AT_FDCWD, "/proc/self/exe", av, environ, 0);
		execveat(AT_FDCWD, "/proc/self/exe", av, environ, 0); _exit(127); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("child status %d", WEXITSTATUS(st));
	char b[4]; CHECK(pread(3, b, 4, 4096) == 4); say("parent reads %.4s pos %lld", b, (long long)lseek(3, 0, SEEK_CUR)); close(3);
}
