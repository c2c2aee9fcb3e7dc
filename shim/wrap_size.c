/*
 * wrap_size.c - ftruncate/truncate (resize the virtual disk), fallocate and
 * posix_fallocate (PUNCH_HOLE -> discard, ZERO_RANGE -> zero, plain -> grow),
 * fsync/fdatasync/sync_file_range (translator flush), posix_fadvise and
 * readahead (hints about host bytes: accepted, ignored).
 */
#include "shim.h"

#include <linux/falloc.h>

/* Runs fn on fd's image with its lock held; *handled=false if not an image. */
#define WITH_IMAGE(fd, handled, expr)                                          \
	({                                                                     \
		struct shim_ofd *o_ = fd_get(fd);                              \
		long r_ = 0;                                                   \
		*(handled) = o_ != NULL;                                       \
		if (o_) {                                                      \
			struct shim_ofd *o = o_;                               \
			struct shim_image *img = o->img;                       \
			(void)o;                                               \
			img_lock(img);                                         \
			r_ = (expr);                                           \
			img_op_done(img);                                      \
			img_unlock(img);                                       \
			fd_put(o_);                                            \
		}                                                              \
		r_;                                                            \
	})

int shim_ftruncate(int fd, int64_t len)
{
	bool h;
	int saved = errno;
	if (len < 0)
		return (int)shim_ret(-EINVAL);
	long r = WITH_IMAGE(fd, &h, o->accmode == O_RDONLY ? -EINVAL : ofd_resize(o, (uint64_t)len));
	if (!h)
		return real_ftruncate64(fd, len);
	errno = saved;
	return (int)shim_ret(r);
}

int ftruncate(int fd, off_t len)
{
	if (SHIM_PASS(fd))
		return real_ftruncate(fd, len);
	return shim_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
	if (SHIM_PASS(fd))
		return real_ftruncate64(fd, len);
	return shim_ftruncate(fd, len);
}

/* Another name (a hard link) of an image this process has open: truncate
 * would cut its QCOW2 structure; it resizes the virtual disk instead. */
static bool open_image_inode(const char *p)
{
	struct stat st;
	int saved = errno;
	bool r = fd_any_images() && real_stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		 img_known(st.st_dev, st.st_ino, NULL);
	errno = saved;
	return r;
}

static int truncate_path(const char *p, int64_t len, bool is64)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || (policy_classify(p, &ref) == SHIM_PATH_NO && !open_image_inode(p)))
		return is64 ? real_truncate64(p, len) : real_truncate(p, len);
	int saved = errno;
	int fd = shim_open(AT_FDCWD, p, O_WRONLY | O_CLOEXEC, 0, true);
	if (fd < 0)
		return -1;
	int r = shim_fd_special(fd) ? shim_ftruncate(fd, len) : real_ftruncate64(fd, len);
	int e = errno;
	close(fd);
	errno = r < 0 ? e : saved;
	return r;
}

int truncate(const char *p, off_t len)
{
	return truncate_path(p, len, false);
}

int truncate64(const char *p, off64_t len)
{
	return truncate_path(p, len, true);
}

static long falloc_locked(struct shim_ofd *o, struct shim_image *img, int mode, int64_t off,
			  int64_t len)
{
	int64_t end;
	int r;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (__builtin_add_overflow(off, len, &end))
		return -EFBIG;
	if (o->accmode == O_RDONLY)
		return -EBADF;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if ((r = img_ready(img, true)) < 0)
		return r;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && (uint64_t)end > ofd_size(o) &&
	    (r = ofd_resize(o, (uint64_t)end)) < 0)
		return r;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		return ofd_zero(o, (uint64_t)off, (uint64_t)len, true);
	if (mode & FALLOC_FL_ZERO_RANGE)
		return ofd_zero(o, (uint64_t)off, (uint64_t)len, false);
	return 0;
}

static int shim_fallocate(int fd, int mode, int64_t off, int64_t len)
{
	bool h;
	int saved = errno;
	long r = WITH_IMAGE(fd, &h, falloc_locked(o, img, mode, off, len));
	if (!h)
		return real_fallocate64(fd, mode, off, len);
	errno = saved;
	return (int)shim_ret(r);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	if (SHIM_PASS(fd))
		return real_fallocate(fd, mode, off, len);
	return shim_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	if (SHIM_PASS(fd))
		return real_fallocate64(fd, mode, off, len);
	return shim_fallocate(fd, mode, off, len);
}

/* posix_fallocate returns an error number instead of setting errno. */
static int shim_posix_fallocate(int fd, int64_t off, int64_t len)
{
	bool h;
	long r = WITH_IMAGE(fd, &h, falloc_locked(o, img, 0, off, len));
	if (!h)
		return real_posix_fallocate64(fd, off, len);
	return r < 0 ? (int)-r : 0;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	if (SHIM_PASS(fd))
		return real_posix_fallocate(fd, off, len);
	return shim_posix_fallocate(fd, off, len);
}

int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	if (SHIM_PASS(fd))
		return real_posix_fallocate64(fd, off, len);
	return shim_posix_fallocate(fd, off, len);
}

static int shim_sync(int fd, int (*realfn)(int))
{
	bool h;
	int saved = errno;
	long r = WITH_IMAGE(fd, &h, img_flush(img));
	if (!h)
		return realfn(fd);
	errno = saved;
	return (int)shim_ret(r);
}

int fsync(int fd)
{
	if (SHIM_PASS(fd))
		return real_fsync(fd);
	return shim_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
	if (SHIM_PASS(fd))
		return real_fdatasync(fd);
	return shim_sync(fd, real_fdatasync);
}

int sync_file_range(int fd, off64_t o, off64_t n, unsigned fl)
{
	if (SHIM_PASS(fd) || fd_is_private(fd))
		return real_sync_file_range(fd, o, n, fl);
	if (o < 0 || n < 0)
		return (int)shim_ret(-EINVAL);
	return shim_sync(fd, real_fdatasync);
}

/* Hints about the host file's bytes at virtual offsets would be wrong;
 * they are only hints, so accept them. */
int posix_fadvise(int fd, off_t o, off_t l, int a)
{
	if (SHIM_PASS(fd) || fd_is_private(fd))
		return real_posix_fadvise(fd, o, l, a);
	return (o < 0 || l < 0 || a < 0 || a > 5) ? EINVAL : 0;
}

int posix_fadvise64(int fd, off64_t o, off64_t l, int a)
{
	if (SHIM_PASS(fd) || fd_is_private(fd))
		return real_posix_fadvise64(fd, o, l, a);
	return (o < 0 || l < 0 || a < 0 || a > 5) ? EINVAL : 0;
}

ssize_t readahead(int fd, off64_t o, size_t n)
{
	if (SHIM_PASS(fd) || fd_is_private(fd))
		return real_readahead(fd, o, n);
	return 0;
}
