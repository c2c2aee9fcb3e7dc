/*
 * wrap_seek.c - lseek(64) on image fds.
 *
 * SEEK_SET/SEEK_CUR land in the kernel offset (shared across dup/fork/exec);
 * SEEK_END, SEEK_DATA and SEEK_HOLE are answered from the virtual size and
 * the allocation map (qcow_map), never from the host file.
 */
#include "shim.h"

/* First offset >= off whose extent is (data ? data : a hole). */
static int64_t seek_extent(struct shim_ofd *o, int64_t off, bool data)
{
	uint64_t size = ofd_size(o);
	if (off < 0 || (uint64_t)off >= size)
		return -ENXIO;
	uint64_t pos = (uint64_t)off;
	while (pos < size) {
		struct qcow_extent e;
		int r = ofd_map(o, pos, &e);
		if (r < 0)
			return r;
		if (e.len == 0)
			break;
		if ((e.kind == QCOW_EXT_DATA) == data)
			return (int64_t)pos;
		pos += e.len;
	}
	return data ? -ENXIO : (int64_t)size; /* the end is a hole */
}

static int64_t seek_locked(int fd, struct shim_ofd *o, int64_t off, int whence)
{
	struct shim_image *img = o->img;
	int64_t cur, pos;
	int r;
	switch (whence) {
	case SEEK_SET:
		pos = off;
		break;
	case SEEK_CUR:
		if ((cur = ofd_getpos(fd, o)) < 0)
			return cur;
		if (__builtin_add_overflow(cur, off, &pos))
			return -EOVERFLOW;
		break;
	case SEEK_END:
		if ((r = img_ready(img, false)) < 0)
			return r;
		if (__builtin_add_overflow((int64_t)ofd_size(o), off, &pos))
			return -EOVERFLOW;
		break;
	case SEEK_DATA:
	case SEEK_HOLE:
		if ((r = img_ready(img, false)) < 0)
			return r;
		pos = seek_extent(o, off, whence == SEEK_DATA);
		if (pos < 0)
			return pos;
		break;
	default:
		return -EINVAL;
	}
	if (pos < 0)
		return -EINVAL;
	if ((r = ofd_setpos(fd, o, (uint64_t)pos)) < 0)
		return r;
	return pos;
}

int64_t shim_lseek(int fd, int64_t off, int whence)
{
	struct shim_ofd *o = fd_get(fd);
	if (!o)
		return real_lseek64(fd, off, whence);
	int saved = errno;
	img_lock(o->img);
	int64_t r = seek_locked(fd, o, off, whence);
	img_op_done(o->img);
	img_unlock(o->img);
	fd_put(o);
	errno = saved;
	return shim_ret(r);
}

off_t lseek(int fd, off_t off, int whence)
{
	if (SHIM_PASS(fd))
		return real_lseek(fd, off, whence);
	return shim_lseek(fd, off, whence);
}

off64_t lseek64(int fd, off64_t off, int whence)
{
	if (SHIM_PASS(fd))
		return real_lseek64(fd, off, whence);
	return shim_lseek(fd, off, whence);
}
