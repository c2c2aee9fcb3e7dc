/* execl: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; ssize_t n = read(3, b, 4); say("child read %zd: %02x pos %lld", n, n > 0 ? (unsigned char)b[0] : 0, (long long)lseek(3, 0, SEEK_CUR));}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); CHECK(dup2(fd, 3) == 3); if (fd != 3) close(fd);
	CHECK(lseek(3, 1048576 - 2, SEEK_SET) >= 0); pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { execl("/proc/self/exe", "snip", P, "child", (char *)NULL); _exit(127); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("child status %d", WEXITSTATUS(st)); say("parent pos %lld", (long long)lseek(3, 0, SEEK_CUR)); close(3);
}
