/*
 * reentry.c - the shim's own re-entrancy (issue 24, point 5), run on an
 * image under the shim and on its raw twin without it; the outputs must be
 * the same (t_shim_reentry.sh).  Every ordering is forced, none is timed.
 *
 *   reentry sigxfsz DISK LIMIT  a SIGXFSZ handler (sigaction, SA_SIGINFO)
 *                               pwrite()s DISK while the main thread's own
 *                               pwrite of DISK runs into RLIMIT_FSIZE=LIMIT:
 *                               on the image the signal is raised inside the
 *                               shim, with the image lock held
 *   reentry signal DISK LIMIT   the same with a signal() handler
 *   reentry cancel DISK         a thread with a cancel pending calls fstat
 *                               (no cancellation point; the shim opens the
 *                               image inside, calling open) and then pwrite
 *                               (a cancellation point: cancelled before it
 *                               writes); the main thread writes afterwards
 *   reentry fork DISK HOW       the parent writes, a child made by HOW
 *                               (_Fork, clone, sysfork: syscall(SYS_fork))
 *                               writes and exits, the parent writes again
 *   reentry forkread DISK HOW   the same, but the parent only read before
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			printf("CHECK FAILED %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #c,   \
			       errno, strerror(errno));                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static int fd;
static volatile sig_atomic_t handled, handler_wrote = -2, handler_signo;

static void on_xfsz(int sig)
{
	handled++;
	handler_signo = sig;
	handler_wrote = (int)pwrite(fd, "HANDLER!", 8, 512);
}

static void on_xfsz_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	on_xfsz(si->si_signo == sig ? sig : -1);
}

static void xfsz(const char *disk, long long limit, bool info)
{
	static char buf[65536];
	memset(buf, 0x77, sizeof buf);
	CHECK((fd = open(disk, O_RDWR)) >= 0);
	if (info) {
		struct sigaction sa, old;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_xfsz_info;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		CHECK(sigaction(SIGXFSZ, &sa, NULL) == 0);
		CHECK(sigaction(SIGXFSZ, NULL, &old) == 0);
		printf("sigaction reports the program's handler: %d\n",
		       old.sa_sigaction == on_xfsz_info && (old.sa_flags & SA_SIGINFO));
	} else {
		CHECK(signal(SIGXFSZ, on_xfsz) != SIG_ERR);
		printf("signal reports the program's handler: %d\n", signal(SIGXFSZ, on_xfsz) == on_xfsz);
	}
	struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
	CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
	/* 2 MiB: a hole on the image (a new cluster past the host file's end),
	 * at the raw twin's limit */
	errno = 0;
	ssize_t n = pwrite(fd, buf, sizeof buf, 2 << 20);
	int e = errno;
	printf("pwrite past the limit: %zd %s\n", n, n < 0 ? strerror(e) : "");
	printf("handler ran %d time(s) for signal %d, its pwrite returned %d\n", (int)handled,
	       (int)handler_signo, (int)handler_wrote);
	char b[8];
	CHECK(pread(fd, b, 8, 512) == 8);
	printf("handler's bytes read back: %d\n", !memcmp(b, "HANDLER!", 8));
	CHECK(close(fd) == 0);
}

static pthread_barrier_t bar;
static volatile int after_pwrite;
static long long fstat_size = -1;

static void *canceled(void *arg)
{
	(void)arg;
	int old;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	pthread_barrier_wait(&bar); /* not a cancellation point */
	pthread_barrier_wait(&bar); /* the main thread has called pthread_cancel */
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old); /* deferred: nothing yet */
	struct stat st;
	CHECK(fstat(fd, &st) == 0); /* no cancellation point */
	fstat_size = (long long)st.st_size;
	static char buf[65536];
	memset(buf, 0x55, sizeof buf);
	ssize_t n = pwrite(fd, buf, sizeof buf, 1 << 20); /* cancelled here */
	after_pwrite = n > 0 ? 1 : 2;
	return NULL;
}

static void cancel(const char *disk)
{
	pthread_t t;
	void *res;
	static char buf[4096];
	CHECK((fd = open(disk, O_RDWR)) >= 0);
	CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
	CHECK(pthread_create(&t, NULL, canceled, NULL) == 0);
	pthread_barrier_wait(&bar);
	CHECK(pthread_cancel(t) == 0);
	pthread_barrier_wait(&bar);
	CHECK(pthread_join(t, &res) == 0);
	printf("thread cancelled: %d, fstat size %lld, code after pwrite ran: %d\n",
	       res == PTHREAD_CANCELED, fstat_size, (int)after_pwrite);
	memset(buf, 0x66, sizeof buf);
	printf("main thread's pwrite: %zd\n", pwrite(fd, buf, sizeof buf, 3 << 20));
	char b[4];
	CHECK(pread(fd, b, 4, 1 << 20) == 4);
	printf("the cancelled write left 1 MiB as it was: %02x\n", (unsigned char)b[0]);
	CHECK(close(fd) == 0);
}

static int child_write(void *arg)
{
	(void)arg;
	static char buf[65536];
	memset(buf, 0xc4, sizeof buf);
	errno = 0;
	ssize_t n = pwrite(fd, buf, sizeof buf, 1 << 20);
	printf("child pwrite: %zd %s\n", n, n < 0 ? strerror(errno) : "");
	fflush(stdout);
	return n == (ssize_t)sizeof buf ? 0 : 3;
}

static void forked(const char *disk, const char *how, bool parent_writes)
{
	static char buf[65536], stack[1 << 16];
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK((fd = open(disk, O_RDWR)) >= 0);
	memset(buf, 0xa1, sizeof buf);
	if (parent_writes)
		CHECK(pwrite(fd, buf, sizeof buf, 0) == (ssize_t)sizeof buf);
	else
		CHECK(pread(fd, buf, 4096, 0) == 4096);
	pid_t pid;
	if (!strcmp(how, "clone")) {
		pid = clone(child_write, stack + sizeof stack, SIGCHLD, NULL);
	} else {
		pid = !strcmp(how, "_Fork") ? _Fork() : (pid_t)syscall(SYS_fork);
		if (pid == 0)
			_exit(child_write(NULL));
	}
	CHECK(pid > 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	printf("child exit status %d\n", WEXITSTATUS(st));
	char b[4];
	CHECK(pread(fd, b, 4, 1 << 20) == 4);
	printf("parent reads the child's block: %02x\n", (unsigned char)b[0]);
	memset(buf, 0xb2, sizeof buf);
	CHECK(pwrite(fd, buf, sizeof buf, 2 << 20) == (ssize_t)sizeof buf);
	CHECK(pwrite(fd, buf, 4096, 3 << 20) == 4096);
	CHECK(close(fd) == 0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "sigxfsz"))
		xfsz(argv[2], atoll(argv[3]), true);
	else if (argc == 4 && !strcmp(argv[1], "signal"))
		xfsz(argv[2], atoll(argv[3]), false);
	else if (argc == 3 && !strcmp(argv[1], "cancel"))
		cancel(argv[2]);
	else if (argc == 4 && !strcmp(argv[1], "fork"))
		forked(argv[2], argv[3], true);
	else if (argc == 4 && !strcmp(argv[1], "forkread"))
		forked(argv[2], argv[3], false);
	else {
		fprintf(stderr, "usage: see reentry.c\n");
		return 2;
	}
	return 0;
}
