/*
 * wrap_signal.c - the shim's critical sections, and the program's signal
 * handlers (sigaction, signal) deferred out of them.
 *
 * While a thread holds one of the shim's locks (an image's mu, the
 * registry's, the fd table's) the translator state may be half-changed and
 * the lock is not recursive.  A signal handler that then reads or writes an
 * image (pread/pwrite of a raw file are async-signal-safe) would deadlock on
 * it; a cancellation acted upon at one of the cancellation points the shim
 * calls (pwrite, fdatasync, open, close, nanosleep ...) would unwind the
 * thread with the lock held, hanging every later user and leaking the
 * clusters it had reserved.
 *
 * So a section (shim_crit_enter/leave, nested by a thread-local counter)
 * disables cancellation (two atomic operations, no system call; none while
 * the process has one thread), and the
 * program's handlers are installed behind a trampoline: a signal arriving
 * while its thread is inside a section is not run then but queued again to
 * the same thread, with the same siginfo (rt_tgsigqueueinfo), and blocked in
 * the interrupted context's mask; the end of the outermost section unblocks
 * it, and the handler runs there, with no lock held.  Outside sections the
 * trampoline calls the handler at once.  The fast path costs nothing: no
 * sigprocmask per call (blocking all signals around each section cost
 * 1.3 us per 4 KiB pwrite/pread measured here, more than the rest of the
 * shim).  sigaction and signal report the program's own handler back.
 * _Fork and clone (without CLONE_VM) run the fork handlers the way fork
 * does; children made any other way are noticed (shim_fork_watch).
 * Not deferred: the synchronous signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGSYS: a fault must run its handler at once, a blocked one
 * kills the process) and handlers installed without these wrappers (raw
 * rt_sigaction, before the shim loaded).
 */
#include "shim.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>

static __thread int crit_depth __attribute__((tls_model("initial-exec")));
static __thread int crit_cancel __attribute__((tls_model("initial-exec")));
static __thread bool crit_deferred __attribute__((tls_model("initial-exec")));
static __thread sigset_t crit_defset __attribute__((tls_model("initial-exec")));

/*
 * A child made without the atfork handlers (glibc's _Fork called by a
 * library, a raw fork/clone system call) inherits the parent's translators
 * and locks.  A page marked MADV_WIPEONFORK reads 0 in any such child (also
 * when the handlers did run): the first section of the new process sees it
 * and drops the inherited state (img_forked_child).  One load per outermost
 * section, no getpid.  Without MADV_WIPEONFORK (Linux < 4.14) only fork,
 * vfork, _Fork and clone through libc are handled.
 */
static volatile int *fork_page;
/* getpid() of this process as of setup, the atfork child handler or
 * fork_check: a child sharing our memory (raw vfork, clone with CLONE_VM)
 * sees its parent's value. */
static pid_t self_pid;

/* Is this a child running in its parent's memory?  One getpid: for the
 * rare paths only (exit, exec), where such a child must leave the parent's
 * translators alone. */
bool shim_vm_child(void)
{
	return self_pid && getpid() != self_pid;
}

void shim_fork_watch(void)
{
	self_pid = getpid();
	void *p = real_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (madvise(p, 4096, MADV_WIPEONFORK) < 0) {
		munmap(p, 4096);
		return;
	}
	*(volatile int *)p = 1;
	fork_page = p;
}

static void fork_check(void)
{
	if (likely(!fork_page || *fork_page))
		return;
	*fork_page = 1;
	self_pid = getpid();
	crit_depth = 0;
	crit_deferred = false;
	sigemptyset(&crit_defset);
	img_forked_child();
	crit_depth = 1;
}

void shim_crit_enter(void)
{
	if (crit_depth++)
		return;
	fork_check();
	/* One thread: nothing can cancel it inside the section (a pending
	 * self-cancel acts at the wrappers' shim_cancel_point, and a handler
	 * that would cancel is deferred), so skip the two atomic operations. */
	if (SHIM_SINGLE_THREADED())
		crit_cancel = -1;
	else
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &crit_cancel);
}

/* After the atfork child handler: the page of this process is marked. */
static void fork_page_mark(void)
{
	if (fork_page)
		*fork_page = 1;
	if (self_pid)
		self_pid = getpid();
}

void shim_crit_leave(void)
{
	if (--crit_depth)
		return;
	int old;
	if (crit_cancel >= 0)
		pthread_setcancelstate(crit_cancel, &old);
	if (unlikely(crit_deferred)) {
		/* the handlers of the signals queued meanwhile run now, with the
		 * thread's state restored (one may siglongjmp away) */
		int saved = errno;
		sigset_t set = crit_defset;
		crit_deferred = false;
		sigemptyset(&crit_defset);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		errno = saved;
	}
}

void shim_crit_child(void)
{
	fork_page_mark();
	crit_depth = crit_depth ? 1 : 0;
	if (crit_depth)
		shim_crit_leave();
}

/* A cancellation point of the program's (read, write, fsync ...) on an
 * image: a cancel already pending is acted upon before the shim takes any
 * lock, as libc acts on it before the system call; one arriving during the
 * call waits for the next cancellation point, as one arriving during a
 * regular file's write does. */
void shim_cancel_point(void)
{
	if (!crit_depth)
		pthread_testcancel();
}

/* ---- the program's handlers */

#define NSIGS 65
struct prog_act {
	_Atomic(void *) fn; /* the program's handler; NULL: not ours */
	atomic_int flags;  /* its sa_flags */
};
static struct prog_act acts[NSIGS];
static pthread_mutex_t act_mu __attribute__((unused)) = PTHREAD_MUTEX_INITIALIZER;

static bool synchronous(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP ||
	       sig == SIGSYS;
}

__attribute__((unused)) static void trampoline(int sig, siginfo_t *info, void *uc)
{
	void *fn = atomic_load(&acts[sig].fn);
	int flags = atomic_load(&acts[sig].flags);
	if (unlikely(crit_depth) && !synchronous(sig) && uc) {
		/* inside a section: again after it, with the same siginfo */
		int saved = errno;
		sigaddset(&((ucontext_t *)uc)->uc_sigmask, sig);
		sigaddset(&crit_defset, sig);
		crit_deferred = true;
		long tid = real_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
		real_syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, (long)info, 0, 0);
		errno = saved;
		return;
	}
	if (!fn)
		return;
	if (flags & SA_RESETHAND) { /* emulated: the kernel's reset would hit the re-queue */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		atomic_store(&acts[sig].fn, NULL);
		real_sigaction(sig, &dfl, NULL);
	}
	if (flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, info, uc);
	else
		((void (*)(int))fn)(sig);
}

/* sigaction with the program's action act (or none); old gets the
 * program's previous action.  0 or -1/errno. */
/* The ThreadSanitizer runtime installs its own handlers through these
 * wrappers while it initializes, before any instrumented code may run: the
 * TSan build of the shim (make stress) passes them through, uninstrumented
 * (no deferral there; its threads test installs no handler). */
#ifdef __SANITIZE_THREAD__
/* glibc's own name for sigaction: no lookup (dlsym is interposed too, and
 * instrumented), nothing instrumented on the way. */
int __sigaction(int, const struct sigaction *, struct sigaction *);
#define NO_TSAN __attribute__((no_sanitize("thread")))
NO_TSAN int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return __sigaction(sig, act, old);
}
NO_TSAN sighandler_t signal(int sig, sighandler_t h)
{
	struct sigaction act, old;
	__builtin_memset(&act, 0, sizeof act);
	act.sa_handler = h;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaddset(&act.sa_mask, sig);
	return __sigaction(sig, &act, &old) < 0 ? SIG_ERR : old.sa_handler;
}
#else
static int do_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (sig <= 0 || sig >= NSIGS || synchronous(sig) || !policy_enabled())
		return real_sigaction(sig, act, old);
	pthread_mutex_lock(&act_mu); /* (a handler never takes it) */
	void *prev = atomic_load(&acts[sig].fn);
	int prevfl = atomic_load(&acts[sig].flags), r;
	struct sigaction k;
	bool wrap = act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
	if (wrap) {
		k = *act;
		k.sa_sigaction = trampoline;
		k.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
		atomic_store(&acts[sig].flags, act->sa_flags);
		atomic_store(&acts[sig].fn, (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
									  : (void *)act->sa_handler);
	}
	r = real_sigaction(sig, act ? (wrap ? &k : act) : NULL, old);
	if (r < 0) {
		if (wrap) {
			atomic_store(&acts[sig].fn, prev);
			atomic_store(&acts[sig].flags, prevfl);
		}
	} else {
		if (act && !wrap)
			atomic_store(&acts[sig].fn, NULL);
		if (old && prev && old->sa_sigaction == trampoline) {
			old->sa_flags = prevfl;
			if (prevfl & SA_SIGINFO)
				old->sa_sigaction = (void (*)(int, siginfo_t *, void *))prev;
			else
				old->sa_handler = (void (*)(int))prev;
		}
	}
	pthread_mutex_unlock(&act_mu);
	return r;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return do_sigaction(sig, act, old);
}

/* glibc's signal() is BSD semantics: SA_RESTART, not reset, not deferred. */
sighandler_t signal(int sig, sighandler_t h)
{
	struct sigaction act, old;
	memset(&act, 0, sizeof act);
	act.sa_handler = h;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaddset(&act.sa_mask, sig);
	if (do_sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}
#endif

/* ---- processes made without the atfork handlers */

/* glibc's _Fork (2.34) skips the handlers: run the ones fork runs (the
 * child starts with no translator, the parent's are flushed and closed).
 * fork itself does not come through here. */
pid_t _Fork(void)
{
	if (!atomic_load(&shim_ready) || !policy_enabled())
		return real__Fork();
	img_atfork_prepare();
	pid_t p = real__Fork();
	int e = errno;
	if (p == 0)
		img_atfork_child();
	else
		img_atfork_parent();
	errno = e;
	return p;
}

struct clone_call {
	int (*fn)(void *);
	void *arg;
};

/* The child's copy of the parent's clone_call (no CLONE_VM: its own memory). */
static int clone_child(void *p)
{
	struct clone_call c = *(struct clone_call *)p;
	img_atfork_child();
	int r = c.fn(c.arg);
	/* the child ends with a bare exit system call: no destructor runs */
	img_release_all();
	return r;
}

bool shim_raw_threads;

/* clone without CLONE_VM is a fork; with it (threads, posix_spawn's vfork
 * child) memory is shared and nothing is done, except that a child that
 * runs beside us (no CLONE_VFORK) makes the shim take its locks. */
int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t *ptid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if ((flags & CLONE_VM) && !(flags & CLONE_VFORK))
		shim_raw_threads = true;
	if ((flags & CLONE_VM) || !atomic_load(&shim_ready) || !policy_enabled())
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	struct clone_call c = {fn, arg};
	img_atfork_prepare();
	int r = real_clone(clone_child, stack, flags, &c, ptid, tls, ctid);
	int e = errno;
	img_atfork_parent();
	errno = e;
	return r;
}
