/* sigaction: see ../snip.h.  The program's handler is the one reported back
 * (the shim installs a trampoline that defers it out of its critical
 * sections); a handler writing the disk works. */
#define _GNU_SOURCE
#include "../snip.h"
#include <signal.h>

static void child(void) {}
static int fd; static volatile ssize_t hw = -2;
static void on_usr1(int sig, siginfo_t *si, void *uc) { (void)uc; hw = si->si_signo == sig ? pwrite(fd, "sig!", 4, 8192) : -3; }

static void snippet(void)
{
	fd = open(P, O_RDWR); CHECK(fd >= 0);
	struct sigaction sa, old; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_usr1; sa.sa_flags = SA_SIGINFO | SA_RESETHAND; sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, &old) == 0); say("old was default %d", old.sa_handler == SIG_DFL);
	CHECK(sigaction(SIGUSR1, NULL, &old) == 0); say("reported: ours %d flags %d", old.sa_sigaction == on_usr1, (old.sa_flags & (SA_SIGINFO | SA_RESETHAND)) == (SA_SIGINFO | SA_RESETHAND));
	CHECK(raise(SIGUSR1) == 0); say("handler pwrite %zd", hw);
	CHECK(sigaction(SIGUSR1, NULL, &old) == 0); say("reset to default %d", old.sa_handler == SIG_DFL);
	char b[4]; CHECK(pread(fd, b, 4, 8192) == 4); say("read back %d", !memcmp(b, "sig!", 4)); close(fd);
	errno = 0; say("SIGKILL: %d errno %d", sigaction(SIGKILL, &sa, NULL), errno);
}
