/* lockf64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(pwrite(fd, "locked", 6, 4096) == 6); CHECK(lseek(fd, 0, SEEK_SET) == 0);
	say("lockf64 F_LOCK %d", lockf64(fd, F_LOCK, 0)); CHECK(pwrite(fd, "still-writable", 14, 8192) == 14);
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { int c = open(P, O_RDWR); errno = 0; int r = lockf64(c, F_TEST, 100); say("child F_TEST %d errno %d", r, errno);
		errno = 0; r = lockf64(c, F_TLOCK, 100); say("child F_TLOCK %d errno %d", r, errno); _exit(0); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); say("F_ULOCK %d", lockf64(fd, F_ULOCK, 0));
	pid = fork(); if (pid == 0) { int c = open(P, O_RDWR); say("child after unlock F_TEST %d", lockf64(c, F_TEST, 100)); _exit(0); }
	CHECK(waitpid(pid, &st, 0) == pid); close(fd);
}
