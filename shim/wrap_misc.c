/*
 * wrap_misc.c - kernel-side consumers that would touch the host bytes.
 *   mmap of an image: ENODEV (what a non-mappable file gives; tools fall
 *   back to read).  copy_file_range, sendfile, splice with an image on
 *   either side: emulated with translated reads and writes (at most 1 MiB a
 *   call, short counts allowed by their contracts).  syscall(): the fd
 *   system calls tools issue directly are routed to the wrappers when the fd
 *   is an image (open/openat/openat2 when the path is one); io_uring_setup and io_setup fail with ENOSYS while the shim
 *   is active (their I/O would bypass it), which every user falls back from.
 *   execveat, name_to_handle_at, open_by_handle_at, swapon and mount get
 *   reach.c's refusals on images.
 */
#include "shim.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#define COPY_MAX (1 << 20)

void *mmap(void *a, size_t n, int pr, int fl, int fd, off_t o)
{
	if (likely((fl & MAP_ANONYMOUS) || SHIM_PASS(fd) || fd_is_private(fd)))
		return real_mmap(a, n, pr, fl, fd, o);
	errno = ENODEV;
	return MAP_FAILED;
}

void *mmap64(void *a, size_t n, int pr, int fl, int fd, off64_t o)
{
	if (likely((fl & MAP_ANONYMOUS) || SHIM_PASS(fd) || fd_is_private(fd)))
		return real_mmap64(a, n, pr, fl, fd, o);
	errno = ENODEV;
	return MAP_FAILED;
}

static ssize_t xread(int fd, void *b, size_t n, int64_t *off)
{
	if (off)
		return SHIM_PASS(fd) ? real_pread64(fd, b, n, *off) : shim_pread(fd, b, n, *off);
	return SHIM_PASS(fd) ? real_read(fd, b, n) : shim_read(fd, b, n);
}

static ssize_t xwrite(int fd, const void *b, size_t n, int64_t *off)
{
	if (off)
		return SHIM_PASS(fd) ? real_pwrite64(fd, b, n, *off) : shim_pwrite(fd, b, n, *off);
	return SHIM_PASS(fd) ? real_write(fd, b, n) : shim_write(fd, b, n);
}

/* Copy up to n bytes through user space; offsets (if given) advance. */
static ssize_t copy_emulated(int in, int64_t *inoff, int out, int64_t *outoff, size_t n)
{
	size_t chunk = n < 65536 ? n : 65536, total = 0;
	if (n > COPY_MAX)
		n = COPY_MAX;
	if (n == 0)
		return 0;
	char *buf = malloc(chunk);
	if (!buf)
		return shim_ret(-ENOMEM);
	while (total < n) {
		size_t want = n - total < chunk ? n - total : chunk;
		ssize_t r = xread(in, buf, want, inoff);
		if (r <= 0) {
			if (r < 0 && total == 0) {
				free(buf);
				return -1;
			}
			break;
		}
		size_t done = 0;
		while (done < (size_t)r) {
			ssize_t w = xwrite(out, buf + done, (size_t)r - done, outoff);
			if (w <= 0) {
				int e = errno;
				free(buf);
				if (total + done == 0) {
					errno = e;
					return -1;
				}
				return (ssize_t)(total + done);
			}
			done += (size_t)w;
			if (outoff)
				*outoff += w;
		}
		if (inoff)
			*inoff += r;
		total += (size_t)r;
		if ((size_t)r < want)
			break;
	}
	free(buf);
	return (ssize_t)total;
}

ssize_t copy_file_range(int i, off64_t *io, int o, off64_t *oo, size_t n, unsigned fl)
{
	if (likely(SHIM_PASS(i) && SHIM_PASS(o)))
		return real_copy_file_range(i, io, o, oo, n, fl);
	if (fl != 0 || fd_is_private(i) || fd_is_private(o))
		return shim_ret(-EINVAL);
	int saved = errno;
	ssize_t r = copy_emulated(i, (int64_t *)io, o, (int64_t *)oo, n);
	if (r >= 0)
		errno = saved;
	return r;
}

static ssize_t sendfile_any(int o, int i, int64_t *io, size_t n)
{
	if (fd_is_private(i) || fd_is_private(o))
		return shim_ret(-EBADF);
	int saved = errno;
	ssize_t r = copy_emulated(i, io, o, NULL, n);
	if (r >= 0)
		errno = saved;
	return r;
}

ssize_t sendfile(int o, int i, off_t *io, size_t n)
{
	if (likely(SHIM_PASS(i) && SHIM_PASS(o)))
		return real_sendfile(o, i, io, n);
	return sendfile_any(o, i, (int64_t *)io, n);
}

ssize_t sendfile64(int o, int i, off64_t *io, size_t n)
{
	if (likely(SHIM_PASS(i) && SHIM_PASS(o)))
		return real_sendfile64(o, i, io, n);
	return sendfile_any(o, i, (int64_t *)io, n);
}

ssize_t splice(int i, off64_t *io, int o, off64_t *oo, size_t n, unsigned fl)
{
	if (likely(SHIM_PASS(i) && SHIM_PASS(o)))
		return real_splice(i, io, o, oo, n, fl);
	if (fd_is_private(i) || fd_is_private(o))
		return shim_ret(-EBADF);
	int saved = errno;
	ssize_t r = copy_emulated(i, (int64_t *)io, o, (int64_t *)oo, n);
	if (r >= 0)
		errno = saved;
	return r;
}

int close_range(unsigned lo, unsigned hi, int flags);

long syscall(long nr, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int k = 0; k < 6; k++)
		a[k] = va_arg(ap, long);
	va_end(ap);
	int fd = (int)a[0], ref;
	switch (nr) {
	case SYS_open:
	case SYS_openat:
	case SYS_openat2: {
		/* raw open system calls on an image path get the open wrapper */
		int dirfd = nr == SYS_open ? AT_FDCWD : (int)a[0];
		const char *p = (const char *)(nr == SYS_open ? a[0] : a[1]);
		int fl = (int)(nr == SYS_open ? a[1] : a[2]);
		mode_t m = (mode_t)(nr == SYS_open ? a[2] : a[3]);
		if (nr == SYS_openat2) {
			const struct open_how *how = (const struct open_how *)a[2];
			if (!how || (size_t)a[3] < sizeof *how)
				break;
			fl = (int)how->flags;
			m = (mode_t)how->mode;
		}
		if (!atomic_load(&shim_ready) || shim_depth || (fl & O_DIRECTORY) ||
		    (policy_classify(p, &ref) == SHIM_PATH_NO && !fd_any_images()))
			break;
		return shim_open(dirfd, p, fl, m, true);
	}
	case SYS_execveat: /* the exec guard of the wrappers (wrap_proc.c) */
		return execveat(fd, (const char *)a[1], (char *const *)a[2], (char *const *)a[3],
				(int)a[4]);
	case SYS_execve:
		return execve((const char *)a[0], (char *const *)a[1], (char *const *)a[2]);
	case SYS_name_to_handle_at:
		return name_to_handle_at(fd, (const char *)a[1], (struct file_handle *)a[2],
					 (int *)a[3], (int)a[4]);
	case SYS_open_by_handle_at:
		return open_by_handle_at(fd, (struct file_handle *)a[1], (int)a[2]);
	case SYS_pidfd_getfd:
		return pidfd_getfd(fd, (int)a[1], (unsigned)a[2]);
	case SYS_recvmsg:
		return recvmsg(fd, (struct msghdr *)a[1], (int)a[2]);
	case SYS_swapon:
		return swapon((const char *)a[0], (int)a[1]);
	case SYS_mount:
		return mount((const char *)a[0], (const char *)a[1], (const char *)a[2],
			     (unsigned long)a[3], (const void *)a[4]);
	case SYS_io_uring_setup:
	case SYS_io_setup:
		if (policy_enabled())
			return shim_ret(-ENOSYS);
		break;
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	case SYS_read:
	case SYS_write:
	case SYS_pread64:
	case SYS_pwrite64:
	case SYS_lseek:
	case SYS_close:
	case SYS_fsync:
	case SYS_fdatasync:
	case SYS_ftruncate:
	case SYS_fstat:
	case SYS_fallocate:
	case SYS_copy_file_range:
	case SYS_sendfile:
		if (SHIM_PASS(fd) && (nr != SYS_copy_file_range || SHIM_PASS((int)a[2])) &&
		    (nr != SYS_sendfile || SHIM_PASS((int)a[1])))
			break;
		switch (nr) {
		case SYS_read:
			return read(fd, (void *)a[1], (size_t)a[2]);
		case SYS_write:
			return write(fd, (const void *)a[1], (size_t)a[2]);
		case SYS_pread64:
			return pread64(fd, (void *)a[1], (size_t)a[2], a[3]);
		case SYS_pwrite64:
			return pwrite64(fd, (const void *)a[1], (size_t)a[2], a[3]);
		case SYS_lseek:
			return lseek64(fd, a[1], (int)a[2]);
		case SYS_close:
			return close(fd);
		case SYS_fsync:
			return fsync(fd);
		case SYS_fdatasync:
			return fdatasync(fd);
		case SYS_ftruncate:
			return ftruncate64(fd, a[1]);
		case SYS_fstat:
			return fstat(fd, (struct stat *)a[1]);
		case SYS_fallocate:
			return fallocate64(fd, (int)a[1], a[2], a[3]);
		case SYS_copy_file_range:
			return copy_file_range(fd, (off64_t *)a[1], (int)a[2], (off64_t *)a[3],
					       (size_t)a[4], (unsigned)a[5]);
		case SYS_sendfile:
			return sendfile64(fd, (int)a[1], (off64_t *)a[2], (size_t)a[3]);
		}
	}
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
