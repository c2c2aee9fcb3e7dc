/* _aio.h - shared by the POSIX AIO snippets (aio_*.c, lio_listio*.c): the
 * same steps on the image under the shim (served at submission) and on the
 * raw twin (glibc's helper threads).  Every wait is for completion itself
 * (aio_suspend, sigwaitinfo on a blocked signal, a semaphore posted by the
 * SIGEV_THREAD function), never for time.  AIO64=1 before including: the
 * *64 functions and struct aiocb64. */
#include <aio.h>
#include <semaphore.h>
#include <signal.h>

#if AIO64
typedef struct aiocb64 acb;
#define A_READ aio_read64
#define A_WRITE aio_write64
#define A_FSYNC aio_fsync64
#define A_LIO lio_listio64
#define A_ERROR aio_error64
#define A_RETURN aio_return64
#define A_SUSPEND aio_suspend64
#define A_CANCEL aio_cancel64
#else
typedef struct aiocb acb;
#define A_READ aio_read
#define A_WRITE aio_write
#define A_FSYNC aio_fsync
#define A_LIO lio_listio
#define A_ERROR aio_error
#define A_RETURN aio_return
#define A_SUSPEND aio_suspend
#define A_CANCEL aio_cancel
#endif

static void acb_set(acb *c, int fd, void *buf, size_t n, long long off)
{
	memset(c, 0, sizeof *c);
	c->aio_fildes = fd;
	c->aio_buf = buf;
	c->aio_nbytes = n;
	c->aio_offset = off;
	c->aio_sigevent.sigev_notify = SIGEV_NONE;
}

/* Waits for c and says how it ended (aio_error, aio_return). */
static void acb_done(const char *what, acb *c)
{
	const acb *l[1] = {c};
	while (A_ERROR(c) == EINPROGRESS)
		CHECK(A_SUSPEND(l, 1, NULL) == 0 || errno == EINTR);
	int e = A_ERROR(c);
	say("%s: error %d return %zd", what, e, A_RETURN(c));
}

/* A queued signal from a blocked SIGRTMIN+1, fetched with sigwaitinfo. */
static void acb_siginit(acb *c, int v)
{
	c->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	c->aio_sigevent.sigev_signo = SIGRTMIN + 1;
	c->aio_sigevent.sigev_value.sival_int = v;
}

static void block_sig(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	CHECK(sigprocmask(SIG_BLOCK, &s, NULL) == 0);
}

static void wait_sig(const char *what)
{
	sigset_t s;
	siginfo_t si;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	int r;
	while ((r = sigwaitinfo(&s, &si)) < 0 && errno == EINTR)
		;
	CHECK(r == SIGRTMIN + 1);
	say("%s: signal, code %s, value %d", what, si.si_code == SI_ASYNCIO ? "SI_ASYNCIO" : "other",
	    si.si_value.sival_int);
}

static sem_t thr_sem;
static int thr_val;
static void thr_fn(union sigval v)
{
	thr_val = v.sival_int;
	sem_post(&thr_sem);
}

static void acb_thrinit(acb *c, int v)
{
	c->aio_sigevent.sigev_notify = SIGEV_THREAD;
	c->aio_sigevent.sigev_notify_function = thr_fn;
	c->aio_sigevent.sigev_value.sival_int = v;
}

static void wait_thr(const char *what)
{
	while (sem_wait(&thr_sem) < 0)
		CHECK(errno == EINTR);
	say("%s: thread notified, value %d", what, thr_val);
}

/* The flat disk's bytes [off, off+n) through plain pread: a hash. */
static void show(const char *what, int fd, size_t n, long long off)
{
	char *b = xbuf(n, 0);
	CHECK(pread(fd, b, n, off) == (ssize_t)n);
	say("%s: %016" PRIx64, what, h64(b, n));
	free(b);
}
