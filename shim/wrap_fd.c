/*
 * wrap_fd.c - dup/dup2/dup3/fcntl/close/close_range/closefrom.
 *
 * Dups share the image entry (and, through the kernel, the position).
 * The shim's private fds survive the program: close() on one is pretended,
 * dup2/dup3 onto one first moves it, close_range/closefrom skip them.
 * lockf goes through the same lock translation as fcntl.
 * fcntl: O_APPEND/O_DIRECT are emulated in F_GETFL/F_SETFL; record locks on
 * an image fd are moved to a far range of the host file so they can never
 * collide with qemu's lock bytes, and POSIX locks are held as OFD locks of
 * the program's fd (a POSIX lock would be dropped whenever the shim closes
 * its own descriptor on the file).  Known difference: such a lock is then
 * shared with dups and forked children of that fd, like flock.  The locks
 * are held on a private descriptor opened with the program's access mode
 * (ofd_lockfd), since the program's own is read-only to the kernel; a
 * lock therefore ends when the last process holding that descriptor
 * closes the image or execs (the private descriptor is close-on-exec).
 */
#include "shim.h"

#include <linux/close_range.h>

#define USER_LOCK_BASE (1LL << 61)

int dup(int fd)
{
	int r = real_dup(fd);
	if (likely(SHIM_PASS(fd)) || r < 0 || fd_is_private(fd))
		return r;
	int saved = errno;
	if (fd_dup_entry(fd, r) < 0) {
		real_close(r);
		errno = EMFILE;
		return -1;
	}
	if (r < 3)
		stdio_std_after(r);
	errno = saved;
	return r;
}

static int dup_to(int fd, int nfd, int flags, bool three)
{
	if (likely(!shim_fd_special(fd) && !shim_fd_special(nfd)))
		return three ? real_dup3(fd, nfd, flags) : real_dup2(fd, nfd);
	int saved = errno, r;
	if (fd == nfd && !three)
		return real_dup2(fd, nfd);
	if (fd_is_private(fd)) { /* the program cannot see our fds */
		errno = EBADF;
		return -1;
	}
	if (nfd >= 3 && nfd != fd && shim_fd_special(fd) && stdio_stream_on(nfd)) {
		struct shim_ofd *o = fd_get_any(fd);
		if (o) {
			shim_msg("%s: refusing to dup the image onto fd %d: a stdio stream uses that fd and "
				 "writes through glibc's internal calls, which reach only the host file; "
				 "fdopen() the image's own fd instead",
				 img_path(o->img), nfd);
			fd_put(o);
			errno = EBUSY;
			return -1;
		}
	}
	if ((r = fd_evacuate(nfd)) < 0) {
		errno = -r;
		return -1;
	}
	bool std = nfd >= 0 && nfd < 3;
	if (std)
		stdio_std_before(nfd);
	r = three ? real_dup3(fd, nfd, flags) : real_dup2(fd, nfd);
	if (r < 0)
		return r;
	if (fd_dup_entry(fd, nfd) < 0) {
		real_close(nfd);
		errno = EMFILE;
		r = -1;
	}
	if (std)
		stdio_std_after(nfd);
	if (r >= 0)
		errno = saved;
	return r;
}

int dup2(int fd, int nfd)
{
	return dup_to(fd, nfd, 0, false);
}

int dup3(int fd, int nfd, int fl)
{
	return dup_to(fd, nfd, fl, true);
}

/* Record locks at virtual offsets, moved to USER_LOCK_BASE + offset. */
static int lock_cmd(int fd, struct shim_ofd *o, int cmd, struct flock *ufl)
{
	struct flock fl = *ufl;
	int64_t base = 0;
	if (fl.l_whence == SEEK_CUR) {
		base = ofd_getpos(fd, o);
	} else if (fl.l_whence == SEEK_END) {
		img_lock(o->img);
		int r = img_ready(o->img, false);
		base = r < 0 ? r : (int64_t)ofd_size(o);
		img_unlock(o->img);
	}
	if (base < 0)
		return (int)shim_ret(base);
	int64_t start = base + fl.l_start;
	if (start < 0 || start >= USER_LOCK_BASE)
		return (int)shim_ret(-EINVAL);
	fl.l_whence = SEEK_SET;
	fl.l_start = start + USER_LOCK_BASE + (int64_t)o->base; /* a partition's: in the disk */
	/* Process-owned (POSIX) locks would vanish whenever the shim closes
	 * one of its own descriptors on the file (every fork, exec, reopen):
	 * hold them as locks of the open file description instead. */
	if (cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK) {
		cmd = cmd == F_SETLK ? F_OFD_SETLK : cmd == F_SETLKW ? F_OFD_SETLKW : F_OFD_GETLK;
		fl.l_pid = 0;
	}
	int lfd = ofd_lockfd(fd, o);
	if (lfd < 0)
		return (int)shim_ret(lfd);
	int r = real_fcntl(lfd, cmd, &fl);
	if (r < 0)
		return r;
	if (cmd == F_OFD_GETLK) {
		if (fl.l_start >= USER_LOCK_BASE)
			fl.l_start -= USER_LOCK_BASE + (int64_t)o->base;
		*ufl = fl;
	}
	return r;
}

int shim_fcntl(int fd, int cmd, void *arg, bool is64)
{
	int (*realfn)(int, int, void *) = is64 ? real_fcntl64 : real_fcntl;
	struct shim_ofd *o = fd_get_any(fd);
	if (o && o->opath && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) {
		fd_put(o); /* an O_PATH image fd: only its dups need the table */
		o = NULL;
	}
	if (!o)
		return realfn(fd, cmd, arg);
	int saved = errno, r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		r = realfn(fd, cmd, arg);
		if (r >= 0 && fd_dup_entry(fd, r) < 0) {
			real_close(r);
			r = (int)shim_ret(-EMFILE);
		}
		if (r >= 0 && r < 3)
			stdio_std_after(r);
		break;
	case F_GETFL: /* the kernel's mode is O_RDONLY (fd_seal): show the program's */
		r = realfn(fd, cmd, arg);
		if (r >= 0)
			r = (r & ~O_ACCMODE) | o->accmode | o->eflags;
		break;
	case F_SETFL:
		o->eflags = (int)(long)arg & (O_APPEND | O_DIRECT);
		r = realfn(fd, cmd, (void *)((long)arg & ~(long)(O_APPEND | O_DIRECT)));
		break;
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		r = arg ? lock_cmd(fd, o, cmd, arg) : realfn(fd, cmd, arg);
		break;
	default:
		r = realfn(fd, cmd, arg);
	}
	fd_put(o);
	if (r >= 0)
		errno = saved;
	return r;
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (SHIM_PASS(fd))
		return real_fcntl(fd, cmd, arg);
	return shim_fcntl(fd, cmd, arg, false);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (SHIM_PASS(fd))
		return real_fcntl64(fd, cmd, arg);
	return shim_fcntl(fd, cmd, arg, true);
}

/* lockf: glibc implements it with its internal fcntl, which would lock
 * the host file's bytes at virtual offsets (qemu's lock bytes among them).
 * On an image it goes through the same moved range as fcntl locks. */
static int shim_lockf(int fd, int cmd, int64_t len)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 0, .l_len = len};
	int saved = errno, r;
	switch (cmd) {
	case F_TEST:
		fl.l_type = F_RDLCK;
		if ((r = shim_fcntl(fd, F_GETLK, &fl, true)) < 0)
			return r;
		if (fl.l_type == F_UNLCK || fl.l_pid == getpid()) {
			errno = saved;
			return 0;
		}
		errno = EACCES;
		return -1;
	case F_ULOCK:
		fl.l_type = F_UNLCK;
		return shim_fcntl(fd, F_SETLK, &fl, true);
	case F_LOCK:
		return shim_fcntl(fd, F_SETLKW, &fl, true);
	case F_TLOCK:
		return shim_fcntl(fd, F_SETLK, &fl, true);
	}
	errno = EINVAL;
	return -1;
}

int lockf(int fd, int cmd, off_t len)
{
	if (SHIM_PASS(fd))
		return real_lockf(fd, cmd, len);
	return shim_lockf(fd, cmd, len);
}

int lockf64(int fd, int cmd, off64_t len)
{
	if (SHIM_PASS(fd))
		return real_lockf64(fd, cmd, len);
	return shim_lockf(fd, cmd, len);
}

int shim_close(int fd)
{
	if (fd_is_private(fd))
		return 0; /* ours: the program only thinks it closed it */
	if (fd < 3)
		stdio_std_before(fd);
	img_release_err = 0;
	/* The entry stays until the kernel closed fd (a racing read still sees
	 * the image), and only this entry goes: an open in another thread may
	 * get the number back between the two steps. */
	struct shim_ofd *o = fd_get_any(fd);
	int r = real_close(fd);
	int e = errno;
	if (o) { /* Linux frees the fd even when close fails */
		fd_forget_closed(fd, o);
		fd_put(o); /* the last close: img_release may set img_release_err */
	}
	if (r == 0 && img_release_err) { /* the last close: the flush failed */
		r = -1;
		e = -img_release_err;
	}
	if (fd < 3)
		stdio_std_after(fd);
	errno = e;
	return r;
}

int close(int fd)
{
	if (SHIM_PASS(fd))
		return real_close(fd);
	return shim_close(fd);
}

static int shim_close_range(unsigned lo, unsigned hi, int flags)
{
	if (flags & CLOSE_RANGE_CLOEXEC)
		return real_close_range(lo, hi, flags);
	unsigned start = lo;
	int r = 0;
	for (unsigned fd = lo; fd <= hi && fd < SHIM_FD_MAX; fd++) {
		if (!shim_fd_special((int)fd))
			continue;
		if (fd_is_private((int)fd)) {
			if (fd > start && (r = real_close_range(start, fd - 1, flags)) < 0)
				return r;
			start = fd + 1;
		} else {
			fd_forget((int)fd);
		}
	}
	if (start <= hi && start >= lo)
		r = real_close_range(start, hi, flags);
	return r;
}

int close_range(unsigned lo, unsigned hi, int flags)
{
	if (hi < lo)
		return real_close_range(lo, hi, flags);
	return shim_close_range(lo, hi, flags);
}

void closefrom(int lo)
{
	if (lo < 0)
		lo = 0;
	if (shim_close_range((unsigned)lo, ~0U, 0) < 0)
		real_closefrom(lo); /* no close_range: let libc do it its way */
}
