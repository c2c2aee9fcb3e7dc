/*
 * wrap_aio.c - POSIX AIO (aio_read/aio_write/aio_fsync/lio_listio, +64)
 * on image fds.
 *
 * glibc's AIO runs each request on a helper thread that calls its internal
 * pread/pwrite/fsync, which no wrapper sees: on an image that would read
 * the QCOW2 bytes (or write them).  So a request on an image fd is served
 * here, synchronously, at submission, through the shim's own pread/pwrite/
 * fsync wrappers; the aiocb's __error_code/__return_value get the result
 * and the request's notification (SIGEV_SIGNAL, SIGEV_THREAD) fires, as
 * glibc's helper thread does when one completes.  glibc's unmodified
 * completion functions then work on it (checked against glibc 2.36,
 * rt/aio_*.c): aio_error and aio_return read those two fields, aio_suspend
 * returns at once when an entry is no longer EINPROGRESS, and aio_cancel
 * answers AIO_ALLDONE for a request not in its queue.  Requests on other
 * fds go to glibc untouched; lio_listio hands glibc the list with the
 * image entries replaced by NULL (which it skips), so a mixed list's
 * LIO_NOWAIT notification still comes once, after the rest completed.
 * glibc only (SYMG rows): musl's aiocb spells its fields differently.
 */
#include "shim.h"

#include <aio.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

#if SHIM_GLIBC

/* An fd whose requests the shim serves: an image (or a private fd, which a
 * program cannot name: EBADF). */
static bool aio_ours(const struct aiocb *cb)
{
	return cb && !SHIM_PASS(cb->aio_fildes);
}

struct aio_thread_arg {
	void (*fn)(union sigval);
	union sigval v;
};

static void *aio_thread(void *p)
{
	struct aio_thread_arg a = *(struct aio_thread_arg *)p;
	free(p);
	a.fn(a.v);
	return NULL;
}

/* The notification of a completed request or list, as glibc gives it
 * (aio_notify.c): a queued signal with si_code SI_ASYNCIO, or a detached
 * thread running the function. */
static void aio_notify(const struct sigevent *ev)
{
	if (!ev)
		return;
	if (ev->sigev_notify == SIGEV_SIGNAL) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = ev->sigev_signo;
		si.si_code = SI_ASYNCIO;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value = ev->sigev_value;
		real_syscall(SYS_rt_sigqueueinfo, (long)si.si_pid, (long)ev->sigev_signo, (long)&si,
			     0, 0, 0);
	} else if (ev->sigev_notify == SIGEV_THREAD && ev->sigev_notify_function) {
		struct aio_thread_arg *a = malloc(sizeof *a);
		pthread_attr_t def, *at = ev->sigev_notify_attributes;
		pthread_t t;
		if (!a)
			return;
		a->fn = ev->sigev_notify_function;
		a->v = ev->sigev_value;
		if (!at) {
			pthread_attr_init(&def);
			pthread_attr_setdetachstate(&def, PTHREAD_CREATE_DETACHED);
			at = &def;
		}
		if (pthread_create(&t, at, aio_thread, a) != 0)
			free(a);
		else if (at != &def)
			pthread_detach(t);
		if (at == &def)
			pthread_attr_destroy(&def);
	}
}

/* Serves one request on an image fd; fills the aiocb.  op: LIO_READ,
 * LIO_WRITE, LIO_NOP, or O_SYNC/O_DSYNC + 100 for aio_fsync. */
#define AIO_FSYNC 100
static void aio_serve(struct aiocb *cb, int op)
{
	int saved = errno;
	long r;
	switch (op) {
	case LIO_READ:
		r = pread64(cb->aio_fildes, (void *)cb->aio_buf, cb->aio_nbytes, cb->aio_offset);
		break;
	case LIO_WRITE:
		r = pwrite64(cb->aio_fildes, (const void *)cb->aio_buf, cb->aio_nbytes,
			     cb->aio_offset);
		break;
	case AIO_FSYNC + O_SYNC:
		r = fsync(cb->aio_fildes);
		break;
	case AIO_FSYNC + O_DSYNC:
		r = fdatasync(cb->aio_fildes);
		break;
	default:
		r = 0;
	}
	cb->__return_value = r;
	cb->__error_code = r < 0 ? errno : 0;
	errno = saved;
}

static int aio_rw(struct aiocb *cb, int op, int (*realfn)(struct aiocb *))
{
	if (likely(!aio_ours(cb)))
		return realfn(cb);
	if (cb->aio_reqprio < 0 || cb->aio_reqprio > AIO_PRIO_DELTA_MAX) { /* glibc: EINVAL now */
		cb->__error_code = EINVAL;
		cb->__return_value = -1;
		return (int)shim_ret(-EINVAL);
	}
	aio_serve(cb, op);
	aio_notify(&cb->aio_sigevent);
	return 0;
}

int aio_read(struct aiocb *cb)
{
	return aio_rw(cb, LIO_READ, real_aio_read);
}

int aio_read64(struct aiocb64 *cb)
{
	return aio_rw((struct aiocb *)cb, LIO_READ, real_aio_read64);
}

int aio_write(struct aiocb *cb)
{
	return aio_rw(cb, LIO_WRITE, real_aio_write);
}

int aio_write64(struct aiocb64 *cb)
{
	return aio_rw((struct aiocb *)cb, LIO_WRITE, real_aio_write64);
}

static int aio_sync(int op, struct aiocb *cb, int (*realfn)(int, struct aiocb *))
{
	if (likely(!aio_ours(cb)))
		return realfn(op, cb);
	if (op != O_SYNC && op != O_DSYNC)
		return (int)shim_ret(-EINVAL);
	aio_serve(cb, AIO_FSYNC + op);
	aio_notify(&cb->aio_sigevent);
	return 0;
}

int aio_fsync(int op, struct aiocb *cb)
{
	return aio_sync(op, cb, real_aio_fsync);
}

int aio_fsync64(int op, struct aiocb64 *cb)
{
	return aio_sync(op, (struct aiocb *)cb, real_aio_fsync64);
}

static int lio(int mode, struct aiocb *const *list, int n, struct sigevent *sig,
	       int (*realfn)(int, struct aiocb *const *, int, struct sigevent *))
{
	int mine = 0, others = 0;
	if (mode != LIO_WAIT && mode != LIO_NOWAIT)
		return realfn(mode, list, n, sig); /* EINVAL from glibc */
	for (int i = 0; i < n; i++) {
		if (!list[i] || list[i]->aio_lio_opcode == LIO_NOP)
			continue;
		if (aio_ours(list[i]))
			mine++;
		else
			others++;
	}
	if (likely(mine == 0))
		return realfn(mode, list, n, sig);
	struct aiocb **rest = NULL;
	if (others) {
		rest = malloc((size_t)n * sizeof *rest);
		if (!rest)
			return (int)shim_ret(-EAGAIN); /* resources: as glibc says */
	}
	bool failed = false, bad = false;
	for (int i = 0; i < n; i++) {
		struct aiocb *cb = list[i];
		if (rest)
			rest[i] = cb && !aio_ours(cb) ? cb : NULL;
		if (!cb || !aio_ours(cb) || cb->aio_lio_opcode == LIO_NOP)
			continue;
		if (cb->aio_lio_opcode != LIO_READ && cb->aio_lio_opcode != LIO_WRITE) {
			cb->__error_code = EINVAL;
			cb->__return_value = -1;
			bad = true;
			continue;
		}
		aio_serve(cb, cb->aio_lio_opcode);
		failed |= cb->__error_code != 0;
		aio_notify(&cb->aio_sigevent); /* glibc: each request's own, either mode */
	}
	int r = 0, saved = errno;
	if (rest) {
		/* glibc runs the rest (and, LIO_NOWAIT, the list's notification
		 * once they are done; ours are done already). */
		r = realfn(mode, rest, n, sig);
		saved = errno;
		free(rest);
	} else if (mode == LIO_NOWAIT) {
		aio_notify(sig);
	}
	if (r < 0) {
		errno = saved;
		return r;
	}
	/* EIO: a request could not be queued (both modes), or, LIO_WAIT, one
	 * failed; each request's own error is in its aiocb. */
	if (bad || (failed && mode == LIO_WAIT))
		return (int)shim_ret(-EIO);
	return 0;
}

int lio_listio(int mode, struct aiocb *const list[], int n, struct sigevent *sig)
{
	return lio(mode, list, n, sig, real_lio_listio);
}

int lio_listio64(int mode, struct aiocb64 *const list[], int n, struct sigevent *sig)
{
	return lio(mode, (struct aiocb *const *)list, n, sig, real_lio_listio64);
}

#endif /* SHIM_GLIBC */
