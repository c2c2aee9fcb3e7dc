/*
 * wrap_stat.c - the stat family by path and by fd, and glibc's old
 * __xstat entry points.  For an image: st_size = virtual size, st_blocks =
 * clusters allocated in the image file for the virtual disk (qcow_map), in
 * 512-byte units.  Everything else is the host file's.  A matching path that
 * is not a (readable) image keeps the host file's stat.
 */
#include "shim.h"

#include <limits.h>
#include <string.h>
#include <sys/sysmacros.h>


_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat64 layout");

/* Virtual size/blocks (and partition number) for fd, or false (not an
 * image / still empty). */
static bool fd_view(int fd, uint64_t *size, uint64_t *blocks, unsigned *part, int *err)
{
	int r = img_fd_stat(fd, size, blocks, part);
	*err = r == -ENOENT ? 0 : r;
	return r == 0;
}

/* The same for a path (dirfd-relative, AT_* flags). */
static bool path_view(int dirfd, const char *path, int atflags, uint64_t *size, uint64_t *blocks,
		      unsigned *part, int *err)
{
	int ref;
	*err = 0;
	*part = 0;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || !path)
		return false;
	if ((atflags & AT_EMPTY_PATH) && path[0] == 0)
		return dirfd >= 0 && shim_fd_special(dirfd) && fd_view(dirfd, size, blocks, part, err);
	switch (policy_classify(path, &ref)) {
	case SHIM_PATH_FDREF:
		return fd_view(ref, size, blocks, part, err);
	case SHIM_PATH_MATCH:
	case SHIM_PATH_MAPFILE: /* stats as the image; opening it is refused */
		return img_path_stat(dirfd, path, atflags, size, blocks) == 0;
	default: /* SHIM_PATH_PART that exists: a real file in a directory */
		return false;
	}
}

/* Not named as an image, but another name (a hard link) of an image this
 * process has open: the image's view too. */
static bool inode_view(int dirfd, const char *path, int atflags, dev_t dev, ino_t ino,
		       uint64_t *size, uint64_t *blocks)
{
	if (likely(!fd_any_images()) || shim_depth || !path || !img_known(dev, ino, NULL))
		return false;
	if ((atflags & AT_EMPTY_PATH) && !path[0])
		return false; /* an fd the shim does not know: left as it is */
	return img_path_stat(dirfd, path, atflags, size, blocks) == 0;
}

static int fix(int r, struct stat *st, bool ok, uint64_t size, uint64_t blocks, unsigned part,
	       int err, int saved)
{
	if (err) {
		errno = -err;
		return -1;
	}
	if (ok) {
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)blocks;
		st->st_ino = (ino_t)part_ino(st->st_ino, part);
	}
	errno = saved;
	return r;
}

int shim_fstat(int fd, struct stat *st)
{
	int saved = errno, err;
	uint64_t size, blocks;
	unsigned part = 0;
	int r = real_fstat(fd, st);
	if (r < 0 || !S_ISREG(st->st_mode))
		return r;
	bool ok = fd_view(fd, &size, &blocks, &part, &err);
	return fix(r, st, ok, size, blocks, part, err, saved);
}

/* r: the real call's result; saved: errno before it. */
static int statat_r(int dirfd, const char *p, struct stat *st, int fl, int r, int saved)
{
	int err;
	uint64_t size, blocks;
	unsigned part;
	if (unlikely(r < 0) && errno == ENOTDIR) /* maybe IMAGE/pN */
		return part_statat(dirfd, p, fl, st, saved);
	if (r < 0 || !S_ISREG(st->st_mode))
		return r;
	bool ok = path_view(dirfd, p, fl, &size, &blocks, &part, &err);
	if (!ok && !err)
		ok = inode_view(dirfd, p, fl, st->st_dev, st->st_ino, &size, &blocks);
	return fix(r, st, ok, size, blocks, part, err, saved);
}

#define statat(d, p, st, fl, call)                                             \
	({                                                                     \
		int e_ = errno, r_ = (call);                                   \
		statat_r(d, p, st, fl, r_, e_);                                \
	})

int stat(const char *p, struct stat *st)
{
	return statat(AT_FDCWD, p, st, 0, real_stat(p, st));
}

int stat64(const char *p, struct stat64 *st)
{
	return statat(AT_FDCWD, p, (struct stat *)st, 0, real_stat64(p, st));
}

int lstat(const char *p, struct stat *st)
{
	return statat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW, real_lstat(p, st));
}

int lstat64(const char *p, struct stat64 *st)
{
	return statat(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW, real_lstat64(p, st));
}

int fstat(int fd, struct stat *st)
{
	if (SHIM_PASS(fd))
		return real_fstat(fd, st);
	return shim_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
	if (SHIM_PASS(fd))
		return real_fstat64(fd, st);
	return shim_fstat(fd, (struct stat *)st);
}

int fstatat(int d, const char *p, struct stat *st, int fl)
{
	return statat(d, p, st, fl, real_fstatat(d, p, st, fl));
}

int fstatat64(int d, const char *p, struct stat64 *st, int fl)
{
	return statat(d, p, (struct stat *)st, fl, real_fstatat64(d, p, st, fl));
}

int statx(int d, const char *p, int fl, unsigned mask, struct statx *sx)
{
	int saved = errno, r = real_statx(d, p, fl, mask, sx), err;
	uint64_t size, blocks;
	unsigned part;
	if (r < 0 && errno == ENOTDIR) /* maybe IMAGE/pN */
		return part_statx(d, p, fl, mask, sx, saved);
	if (r < 0 || !(sx->stx_mask & STATX_TYPE) || !S_ISREG(sx->stx_mode))
		return r;
	if (!path_view(d, p, fl, &size, &blocks, &part, &err)) {
		if (err) {
			errno = -err;
			return -1;
		}
		if (!inode_view(d, p, fl, makedev(sx->stx_dev_major, sx->stx_dev_minor),
				(ino_t)sx->stx_ino, &size, &blocks))
			return r;
	}
	sx->stx_size = size;
	sx->stx_blocks = blocks;
	sx->stx_ino = part_ino(sx->stx_ino, part);
	errno = saved;
	return r;
}

int __xstat(int v, const char *p, struct stat *st)
{
	return statat(AT_FDCWD, p, st, 0, real___xstat(v, p, st));
}

int __xstat64(int v, const char *p, struct stat64 *st)
{
	return statat(AT_FDCWD, p, (struct stat *)st, 0, real___xstat64(v, p, st));
}

int __lxstat(int v, const char *p, struct stat *st)
{
	return statat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW, real___lxstat(v, p, st));
}

int __lxstat64(int v, const char *p, struct stat64 *st)
{
	return statat(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW, real___lxstat64(v, p, st));
}

int __fxstat(int v, int fd, struct stat *st)
{
	int r = real___fxstat(v, fd, st);
	if (SHIM_PASS(fd) || r < 0)
		return r;
	return shim_fstat(fd, st);
}

int __fxstat64(int v, int fd, struct stat64 *st)
{
	int r = real___fxstat64(v, fd, st);
	if (SHIM_PASS(fd) || r < 0)
		return r;
	return shim_fstat(fd, (struct stat *)st);
}

int __fxstatat(int v, int d, const char *p, struct stat *st, int fl)
{
	return statat(d, p, st, fl, real___fxstatat(v, d, p, st, fl));
}

int __fxstatat64(int v, int d, const char *p, struct stat64 *st, int fl)
{
	return statat(d, p, (struct stat *)st, fl, real___fxstatat64(v, d, p, st, fl));
}

/* ---- access and attributes: only IMAGE/pN needs help (the real call said
 * ENOTDIR); then the image file answers for its partitions. */

#define PART_RETRY(r, dirfd, p, call_on_image)                                 \
	({                                                                     \
		int e_ = errno;                                                \
		__typeof__(r) r_ = (r);                                        \
		char image[PATH_MAX];                                          \
		if (unlikely(r_ < 0) && errno == ENOTDIR && part_image(dirfd, p, image) && \
		    (r_ = (call_on_image)) >= 0)                               \
			errno = e_;                                            \
		r_;                                                            \
	})

int access(const char *p, int m)
{
	return PART_RETRY(real_access(p, m), AT_FDCWD, p, real_access(image, m));
}

int faccessat(int d, const char *p, int m, int fl)
{
	return PART_RETRY(real_faccessat(d, p, m, fl), d, p,
			  real_faccessat(d, image, m, fl & ~AT_SYMLINK_NOFOLLOW));
}

int euidaccess(const char *p, int m)
{
	return PART_RETRY(real_euidaccess(p, m), AT_FDCWD, p, real_euidaccess(image, m));
}

int eaccess(const char *p, int m)
{
	return PART_RETRY(real_eaccess(p, m), AT_FDCWD, p, real_eaccess(image, m));
}

ssize_t getxattr(const char *p, const char *n, void *v, size_t s)
{
	return PART_RETRY(real_getxattr(p, n, v, s), AT_FDCWD, p, real_getxattr(image, n, v, s));
}

ssize_t lgetxattr(const char *p, const char *n, void *v, size_t s)
{
	return PART_RETRY(real_lgetxattr(p, n, v, s), AT_FDCWD, p, real_getxattr(image, n, v, s));
}
