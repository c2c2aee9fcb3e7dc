/*
 * wrap_rw.c - read/write/pread/pwrite/readv/writev/preadv(2)/pwritev(2)
 * (+64, _chk) on image fds.
 *
 * read/write: position from the fd's kernel offset (or the fd entry when it
 * lies beyond the host filesystem's s_maxbytes), translated I/O, position
 * stored back.  Writes past the virtual end grow the image, like a regular
 * file; O_APPEND writes at the virtual end (pwrite too, as Linux does).
 */
#include "shim.h"

#include <limits.h>

extern void __chk_fail(void) __attribute__((noreturn));

int64_t ofd_getpos(int fd, struct shim_ofd *o)
{
	if (o->upos)
		return (int64_t)o->pos;
	off64_t r = real_lseek64(fd, 0, SEEK_CUR);
	return r < 0 ? -errno : r;
}

int ofd_setpos(int fd, struct shim_ofd *o, uint64_t pos)
{
	if (pos > INT64_MAX)
		return -EINVAL;
	if (!o->upos) {
		if (real_lseek64(fd, (off64_t)pos, SEEK_SET) >= 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
		/* Beyond the host filesystem's maximum file size (ext4: 16 TiB):
		 * keep the position here; it is no longer shared with dups made
		 * by other processes. */
		o->upos = true;
	}
	o->pos = pos;
	return 0;
}

/* Gather/scatter over one image; pos < 0: the fd's position (advanced). */
static ssize_t rw_locked(int fd, struct shim_ofd *o, const struct iovec *v, int c, int64_t pos,
			 bool write, bool append)
{
	struct shim_image *img = o->img;
	int r;
	if (c < 0 || c > IOV_MAX)
		return -EINVAL;
	if (write ? o->accmode == O_RDONLY : o->accmode == O_WRONLY)
		return -EBADF;
	bool advance = pos < 0;
	if (write && (append || (o->eflags & O_APPEND))) {
		if ((r = img_ready(img, true)) < 0)
			return r;
		pos = (int64_t)ofd_size(o);
	} else if (advance) {
		pos = ofd_getpos(fd, o);
		if (pos < 0)
			return pos;
	}
	size_t total = 0;
	for (int i = 0; i < c; i++) {
		size_t len = v[i].iov_len;
		if (len > (size_t)SSIZE_MAX - total)
			len = (size_t)SSIZE_MAX - total;
		if (len == 0)
			continue;
		ssize_t n = write ? ofd_pwrite(o, v[i].iov_base, len, (uint64_t)pos + total)
				  : ofd_pread(o, v[i].iov_base, len, (uint64_t)pos + total);
		if (n < 0) {
			if (total == 0)
				return n;
			break;
		}
		total += (size_t)n;
		if ((size_t)n < len)
			break;
	}
	if (advance)
		if ((r = ofd_setpos(fd, o, (uint64_t)pos + total)) < 0 && total == 0)
			return r;
	return (ssize_t)total;
}

static ssize_t rw(int fd, const struct iovec *v, int c, int64_t pos, bool write, bool append,
		  bool *handled)
{
	shim_cancel_point(); /* (read, write and their kin are cancellation points) */
	struct shim_ofd *o = fd_get(fd);
	if (!o) {
		*handled = false;
		return 0;
	}
	*handled = true;
	img_lock(o->img);
	ssize_t r = rw_locked(fd, o, v, c, pos, write, append);
	img_op_done(o->img);
	img_unlock(o->img);
	fd_put(o);
	return r;
}

/* The fd-level operations (also used by stdio cookies and emulations). */
ssize_t shim_read(int fd, void *buf, size_t n)
{
	bool h;
	int saved = errno;
	struct iovec v = {buf, n};
	ssize_t r = rw(fd, &v, 1, -1, false, false, &h);
	if (!h)
		return real_read(fd, buf, n);
	errno = saved;
	return shim_ret(r);
}

ssize_t shim_write(int fd, const void *buf, size_t n)
{
	bool h;
	int saved = errno;
	struct iovec v = {(void *)buf, n};
	ssize_t r = rw(fd, &v, 1, -1, true, false, &h);
	if (!h)
		return real_write(fd, buf, n);
	errno = saved;
	return shim_ret(r);
}

ssize_t shim_pread(int fd, void *buf, size_t n, int64_t off)
{
	bool h;
	int saved = errno;
	if (off < 0)
		return shim_ret(-EINVAL);
	struct iovec v = {buf, n};
	ssize_t r = rw(fd, &v, 1, off, false, false, &h);
	if (!h)
		return real_pread64(fd, buf, n, off);
	errno = saved;
	return shim_ret(r);
}

ssize_t shim_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	bool h;
	int saved = errno;
	if (off < 0)
		return shim_ret(-EINVAL);
	struct iovec v = {(void *)buf, n};
	ssize_t r = rw(fd, &v, 1, off, true, false, &h);
	if (!h)
		return real_pwrite64(fd, buf, n, off);
	errno = saved;
	return shim_ret(r);
}

/* off == -1: current position (preadv2 semantics); flags: RWF_*. */
ssize_t shim_preadv(int fd, const struct iovec *v, int c, int64_t off, int flags)
{
	bool h;
	int saved = errno;
	if (off < -1)
		return shim_ret(-EINVAL);
	ssize_t r = rw(fd, v, c, off, false, false, &h);
	if (!h)
		return real_preadv64v2(fd, v, c, off, flags);
	errno = saved;
	return shim_ret(r);
}

ssize_t shim_pwritev(int fd, const struct iovec *v, int c, int64_t off, int flags)
{
	bool h;
	int saved = errno;
	if (off < -1)
		return shim_ret(-EINVAL);
	ssize_t r = rw(fd, v, c, off, true, (flags & RWF_APPEND) != 0, &h);
	if (!h)
		return real_pwritev64v2(fd, v, c, off, flags);
	errno = saved;
	return shim_ret(r);
}

ssize_t read(int fd, void *b, size_t n)
{
	if (SHIM_PASS(fd))
		return real_read(fd, b, n);
	return shim_read(fd, b, n);
}

ssize_t write(int fd, const void *b, size_t n)
{
	if (SHIM_PASS(fd))
		return real_write(fd, b, n);
	return shim_write(fd, b, n);
}

ssize_t pread(int fd, void *b, size_t n, off_t o)
{
	if (SHIM_PASS(fd))
		return real_pread(fd, b, n, o);
	return shim_pread(fd, b, n, o);
}

ssize_t pread64(int fd, void *b, size_t n, off64_t o)
{
	if (SHIM_PASS(fd))
		return real_pread64(fd, b, n, o);
	return shim_pread(fd, b, n, o);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{
	if (SHIM_PASS(fd))
		return real_pwrite(fd, b, n, o);
	return shim_pwrite(fd, b, n, o);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o)
{
	if (SHIM_PASS(fd))
		return real_pwrite64(fd, b, n, o);
	return shim_pwrite(fd, b, n, o);
}

ssize_t readv(int fd, const struct iovec *v, int c)
{
	if (SHIM_PASS(fd))
		return real_readv(fd, v, c);
	return shim_preadv(fd, v, c, -1, 0);
}

ssize_t writev(int fd, const struct iovec *v, int c)
{
	if (SHIM_PASS(fd))
		return real_writev(fd, v, c);
	return shim_pwritev(fd, v, c, -1, 0);
}

ssize_t preadv(int fd, const struct iovec *v, int c, off_t o)
{
	if (SHIM_PASS(fd))
		return real_preadv(fd, v, c, o);
	return o < 0 ? shim_ret(-EINVAL) : shim_preadv(fd, v, c, o, 0);
}

ssize_t preadv64(int fd, const struct iovec *v, int c, off64_t o)
{
	if (SHIM_PASS(fd))
		return real_preadv64(fd, v, c, o);
	return o < 0 ? shim_ret(-EINVAL) : shim_preadv(fd, v, c, o, 0);
}

ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	if (SHIM_PASS(fd))
		return real_pwritev(fd, v, c, o);
	return o < 0 ? shim_ret(-EINVAL) : shim_pwritev(fd, v, c, o, 0);
}

ssize_t pwritev64(int fd, const struct iovec *v, int c, off64_t o)
{
	if (SHIM_PASS(fd))
		return real_pwritev64(fd, v, c, o);
	return o < 0 ? shim_ret(-EINVAL) : shim_pwritev(fd, v, c, o, 0);
}

ssize_t preadv2(int fd, const struct iovec *v, int c, off_t o, int f)
{
	if (SHIM_PASS(fd))
		return real_preadv2(fd, v, c, o, f);
	return shim_preadv(fd, v, c, o, f);
}

ssize_t preadv64v2(int fd, const struct iovec *v, int c, off64_t o, int f)
{
	if (SHIM_PASS(fd))
		return real_preadv64v2(fd, v, c, o, f);
	return shim_preadv(fd, v, c, o, f);
}

ssize_t pwritev2(int fd, const struct iovec *v, int c, off_t o, int f)
{
	if (SHIM_PASS(fd))
		return real_pwritev2(fd, v, c, o, f);
	return shim_pwritev(fd, v, c, o, f);
}

ssize_t pwritev64v2(int fd, const struct iovec *v, int c, off64_t o, int f)
{
	if (SHIM_PASS(fd))
		return real_pwritev64v2(fd, v, c, o, f);
	return shim_pwritev(fd, v, c, o, f);
}

ssize_t __read_chk(int fd, void *b, size_t n, size_t bl)
{
	if (SHIM_PASS(fd))
		return real___read_chk(fd, b, n, bl);
	if (n > bl)
		__chk_fail();
	return shim_read(fd, b, n);
}

ssize_t __pread_chk(int fd, void *b, size_t n, off_t o, size_t bl)
{
	if (SHIM_PASS(fd))
		return real___pread_chk(fd, b, n, o, bl);
	if (n > bl)
		__chk_fail();
	return shim_pread(fd, b, n, o);
}

ssize_t __pread64_chk(int fd, void *b, size_t n, off64_t o, size_t bl)
{
	if (SHIM_PASS(fd))
		return real___pread64_chk(fd, b, n, o, bl);
	if (n > bl)
		__chk_fail();
	return shim_pread(fd, b, n, o);
}
