/* fork: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(lseek(fd, 1048576 - 2, SEEK_SET) >= 0); char b[4];
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { CHECK(read(fd, b, 4) == 4); say("child %02x %02x", (unsigned char)b[1], (unsigned char)b[2]); CHECK(pwrite(fd, "from-child", 10, 8192) == 10); exit(0); }
	int st; CHECK(waitpid(pid, &st, 0) == pid); CHECK(read(fd, b, 4) == 4); say("parent after child %02x pos %lld", (unsigned char)b[0], (long long)lseek(fd, 0, SEEK_CUR));
	char c[10]; CHECK(pread(fd, c, 10, 8192) == 10); say("sees child write %d", !memcmp(c, "from-child", 10));
	CHECK(pwrite(fd, "from-parent", 11, 8200) == 11); pid = fork(); if (pid == 0) { CHECK(pread(fd, c, 10, 8200) == 10); say("child sees parent %d", !memcmp(c, "from-paren", 10)); _exit(0); }
	CHECK(waitpid(pid, &st, 0) == pid); close(fd);
}
