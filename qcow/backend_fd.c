/*
 * backend_fd.c - the host-file backend.
 *
 * Every system call goes through a struct qcow_sysio so that the shim can
 * pass its real libc functions (a plain call would bind to the shim's own
 * exported wrappers) and tests can inject faults.  Short reads happen only
 * at end of file; short writes and EINTR are retried.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qcow_int.h"

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x2 /* linux/fs.h; older libc headers lack it */
#endif

struct fd_backend {
	int fd;
	unsigned flags;
	const struct qcow_sysio *sys;
};

static ssize_t fd_pread(void *h, void *buf, size_t n, uint64_t off)
{
	struct fd_backend *b = h;
	size_t done = 0;
	if (off > INT64_MAX || n > INT64_MAX - off)
		return -EINVAL;
	while (done < n) {
		ssize_t r = b->sys->pread(b->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static ssize_t fd_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	struct fd_backend *b = h;
	size_t done = 0;
	if (off > INT64_MAX || n > INT64_MAX - off)
		return -EFBIG;
	while (done < n) {
		ssize_t r = b->sys->pwrite(b->fd, (const char *)buf + done, n - done,
					   (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* RWF_DSYNC: this write (and the size it implies) is durable on return,
 * the rest of the file's dirty data is left to the page cache. */
static ssize_t fd_pwrite_sync(void *h, const void *buf, size_t n, uint64_t off)
{
	struct fd_backend *b = h;
	size_t done = 0;
	if (!b->sys->pwritev2)
		return -EOPNOTSUPP;
	if (off > INT64_MAX || n > INT64_MAX - off)
		return -EFBIG;
	while (done < n) {
		struct iovec v = {(char *)buf + done, n - done};
		ssize_t r = b->sys->pwritev2(b->fd, &v, 1, (off_t)(off + done), RWF_DSYNC);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == ENOSYS || errno == EINVAL ? -EOPNOTSUPP : -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int fd_flush(void *h)
{
	struct fd_backend *b = h;
	return b->sys->fdatasync(b->fd) < 0 ? -errno : 0;
}

static int fd_getsize(void *h, uint64_t *size)
{
	struct fd_backend *b = h;
	struct stat st;
	if (b->sys->fstat(b->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int fd_truncate(void *h, uint64_t size)
{
	struct fd_backend *b = h;
	if (size > INT64_MAX)
		return -EFBIG;
	return b->sys->ftruncate(b->fd, (off_t)size) < 0 ? -errno : 0;
}

static int fd_punch(void *h, uint64_t off, uint64_t n)
{
	struct fd_backend *b = h;
	if (!b->sys->fallocate)
		return -EOPNOTSUPP;
	if (off > INT64_MAX || n > INT64_MAX - off)
		return -EINVAL;
	if (b->sys->fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)n) < 0)
		return -errno;
	return 0;
}

static void fd_close(void *h)
{
	struct fd_backend *b = h;
	if (b->flags & QCOW_FD_OWN)
		b->sys->close(b->fd);
	free(b);
}

static const struct qcow_backend_ops fd_ops = {
	.pread = fd_pread,
	.pwrite = fd_pwrite,
	.flush = fd_flush,
	.getsize = fd_getsize,
	.truncate = fd_truncate,
	.punch = fd_punch,
	.close = fd_close,
	.pwrite_sync = fd_pwrite_sync,
};

static int libc_fallocate(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

/* The system call itself: not every libc has pwritev2 (musl 1.2.3). */
static ssize_t libc_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return syscall(SYS_pwritev2, fd, iov, cnt, (long)off, (long)((uint64_t)off >> 32), flags);
}

static const struct qcow_sysio libc_sysio = {
	.pread = pread,
	.pwrite = pwrite,
	.fdatasync = fdatasync,
	.fstat = fstat,
	.ftruncate = ftruncate,
	.fallocate = libc_fallocate,
	.close = close,
	.pwritev2 = libc_pwritev2,
};

const struct qcow_sysio *qcow_sysio_default(void)
{
	return &libc_sysio;
}

int qcow_backend_fd(struct qcow_backend *be, int fd, const struct qcow_sysio *sys, unsigned flags)
{
	struct fd_backend *b;
	if (fd < 0 || !be)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = fd;
	b->flags = flags;
	b->sys = sys ? sys : &libc_sysio;
	be->ops = &fd_ops;
	be->h = b;
	return 0;
}
