/* signal: see ../snip.h.  As sigaction: the program's handler is reported
 * back and a handler writing the disk works. */
#define _GNU_SOURCE
#include "../snip.h"
#include <signal.h>

static void child(void) {}
static int fd; static volatile ssize_t hw = -2;
static void on_usr2(int sig) { hw = sig == SIGUSR2 ? pwrite(fd, "sig2", 4, 8192) : -3; }

static void snippet(void)
{
	fd = open(P, O_RDWR); CHECK(fd >= 0);
	say("old was default %d", signal(SIGUSR2, on_usr2) == SIG_DFL);
	say("reported: ours %d", signal(SIGUSR2, on_usr2) == on_usr2);
	CHECK(raise(SIGUSR2) == 0); CHECK(raise(SIGUSR2) == 0); say("handler pwrite %zd", hw);
	say("ignored: previous ours %d", signal(SIGUSR2, SIG_IGN) == on_usr2); CHECK(raise(SIGUSR2) == 0);
	say("back to default: previous ignored %d", signal(SIGUSR2, SIG_DFL) == SIG_IGN);
	char b[4]; CHECK(pread(fd, b, 4, 8192) == 4); say("read back %d", !memcmp(b, "sig2", 4)); close(fd);
}
