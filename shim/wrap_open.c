/*
 * wrap_open.c - open/openat/creat (+64, fortified _2 forms).
 *
 * An image is opened as a real fd on the host file whose kernel offset holds
 * the virtual position.  O_TRUNC, O_APPEND and O_DIRECT never reach the real
 * open: O_TRUNC empties the virtual disk, O_APPEND/O_DIRECT are emulated per
 * fd.  O_CREAT on an empty *.qcow2 creates a QCOW2 image of virtual size 0.
 * A read-only O_CREAT that makes the file does the same.  A matching file
 * that is not QCOW2 (and not an empty one opened for writing or created)
 * gets its flags back and is never touched again.
 * Every way of naming the file leads to the image: O_PATH descriptors are
 * image entries (stat, dup, reopen through /proc/self/fd/N; no I/O), a
 * /proc/P/fd/N or /dev/fd/N link is decided by where it leads (policy.c),
 * and while this process has images open, any other open whose inode is
 * one of theirs (a hard link, a bind mount) is that image too.
 */
#include "shim.h"

#include <stdlib.h>

#define STRIPPED (O_TRUNC | O_APPEND | O_DIRECT)

static bool open_candidate(const char *path, int flags)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || (flags & O_DIRECTORY))
		return false;
	return policy_classify(path, &ref) != SHIM_PATH_NO;
}

/* Not named as an image, but this process has images open: the new fd may
 * still lead to one of their inodes (a hard link, a bind mount, a rename). */
static inline bool inode_watch(int flags)
{
	return unlikely(fd_any_images()) && !shim_depth && !(flags & O_DIRECTORY);
}

static int real_openat_any(int dirfd, const char *path, int flags, mode_t mode, bool is64)
{
	return is64 ? real_openat64(dirfd, path, flags, mode) : real_openat(dirfd, path, flags, mode);
}

/* Not an image after all: give the fd its stripped flags back. */
static int plain_fd(int fd, int flags)
{
	if (flags & (O_APPEND | O_DIRECT)) {
		int fl = real_fcntl(fd, F_GETFL, NULL);
		if (fl >= 0)
			real_fcntl(fd, F_SETFL, (void *)(long)(fl | (flags & (O_APPEND | O_DIRECT))));
	}
	return fd;
}

/* The real open of a candidate, O_TRUNC/O_APPEND/O_DIRECT stripped.  A
 * read-only O_CREAT is tried with O_EXCL first: *created tells whether
 * this call made the file (then it becomes an image, like any create). */
static int candidate_open(int dirfd, const char *path, int flags, mode_t mode, bool is64,
			  bool *created)
{
	int fl = flags & ~STRIPPED, saved = errno;
	*created = false;
	if ((fl & O_CREAT) && (fl & O_ACCMODE) == O_RDONLY && !(fl & (O_EXCL | O_PATH))) {
		int fd = real_openat_any(dirfd, path, fl | O_EXCL, mode, is64);
		if (fd >= 0 || errno != EEXIST) {
			*created = fd >= 0;
			return fd;
		}
		errno = saved;
	}
	int fd = real_openat_any(dirfd, path, fl, mode, is64);
	*created = fd >= 0 && (fl & O_CREAT) && (fl & O_EXCL);
	return fd;
}

/* fd (regular, opened as the image `path`) joins the table; pending: still
 * empty.  Returns fd, or -1/errno with fd closed. */
static int image_fd(int fd, const struct stat *st, const char *path, int flags, bool pending,
		    int saved)
{
	int r = 0, err = 0, acc = flags & O_ACCMODE;
	bool writable = acc != O_RDONLY, opath = (flags & O_PATH) != 0;
	if (fd >= SHIM_FD_MAX) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	struct shim_image *img = img_register(fd, st, path, pending, &err);
	if (!img) {
		real_close(fd);
		errno = -err;
		return -1;
	}
	/* /dev/fd/N of a partition fd: that partition again (O_TRUNC ignored) */
	struct shim_ofd win = {.img = img};
	part_copy_window(&win, path);
	part_inherited_window(&win, path, fd);
	img_lock(img);
	if (opath)
		r = 0; /* names the file only: nothing to read or check yet */
	else if (pending && (flags & O_CREAT))
		r = img_ready(img, true); /* creates the QCOW2 structure */
	else
		r = img_validate(img, path, writable);
	if (r == 0 && (flags & O_TRUNC) && writable && !pending && !win.part && !opath)
		r = img_resize(img, 0);
	img_op_done(img);
	img_unlock(img);
	struct shim_ofd *o = r < 0 ? NULL : ofd_new(img, acc, flags & (O_APPEND | O_DIRECT));
	if (!o) {
		img_unref(img);
		real_close(fd);
		errno = r < 0 ? -r : ENOMEM;
		return -1;
	}
	o->part = win.part;
	o->base = win.base;
	o->len = win.len;
	o->opath = opath;
	if ((r = fd_attach_opened(fd, o, flags)) < 0) {
		errno = -r;
		return -1;
	}
	if (fd < 3)
		stdio_std_after(fd);
	errno = saved;
	return fd;
}

/* /proc/P/map_files/X of an image: the kernel would hand out the host
 * file's bytes, and the shim never maps an image, so refuse. */
static int refuse_mapfile(int fd, const char *path, int saved)
{
	struct stat st;
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !shim_probe_magic(fd)) {
		errno = saved;
		return fd;
	}
	real_close(fd);
	return (int)shim_ret(reach_refuse(path, "to open a mapping of an image", "open the image itself",
					  EACCES));
}

/* Any other open while this process has images: the new descriptor is an
 * image if it leads to one's inode, whatever the name.  O_TRUNC waits until
 * that is known (it would empty the host file). */
static int open_by_inode(int dirfd, const char *path, int flags, mode_t mode, bool is64)
{
	int saved = errno;
	struct stat st;
	int fd = real_openat_any(dirfd, path, flags & ~O_TRUNC, mode, is64);
	if (fd < 0 || real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return fd;
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	/* no name: only an inode this process has open makes it an image */
	if (img_file_is_image(fd, &st, NULL, writable && !(flags & O_PATH))) {
		if (flags & (O_APPEND | O_DIRECT)) { /* emulated on images */
			int fl = real_fcntl(fd, F_GETFL, NULL);
			if (fl >= 0)
				real_fcntl(fd, F_SETFL, (void *)(long)(fl & ~(O_APPEND | O_DIRECT)));
		}
		return image_fd(fd, &st, path, flags, st.st_size == 0, saved);
	}
	if ((flags & O_TRUNC) && writable && st.st_size > 0 && real_ftruncate(fd, 0) < 0) {
		int e = errno;
		real_close(fd);
		errno = e;
		return -1;
	}
	errno = saved;
	return fd;
}

/* open(2) for a path policy_classify() flagged (or, from stdio and spawn,
 * any path).  Returns fd or -1/errno. */
int shim_open(int dirfd, const char *path, int flags, mode_t mode, bool is64)
{
	int saved = errno, ref;
	struct stat st;
	bool created;
	enum shim_path_kind kind = policy_classify(path, &ref);
	if (kind == SHIM_PATH_NO) /* stdio and spawn callers: only the inode can tell */
		return open_by_inode(dirfd, path, flags, mode, is64);
	if (kind == SHIM_PATH_PART) {
		/* IMAGE/pN: a real path (IMAGE a directory) wins */
		int fd = real_openat_any(dirfd, path, flags, mode, is64);
		if (fd >= 0 || errno != ENOTDIR)
			return fd;
		errno = saved;
		return part_open(dirfd, path, flags, mode, is64);
	}
	int fd = candidate_open(dirfd, path, flags, mode, is64, &created);
	if (fd < 0)
		return fd;
	if (kind == SHIM_PATH_MAPFILE)
		return refuse_mapfile(fd, path, saved);
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		/* Not a regular file: it never was ours; open it as asked. */
		if (flags & O_PATH)
			return fd;
		real_close(fd);
		errno = saved;
		return real_openat_any(dirfd, path, flags & ~O_EXCL, mode, is64);
	}
	bool writable = (flags & O_ACCMODE) != O_RDONLY, pending = false;
	if (!shim_probe_magic(fd)) { /* (an O_PATH fd is read through /proc) */
		if ((flags & O_TRUNC) && writable && st.st_size > 0 && real_ftruncate(fd, 0) == 0)
			st.st_size = 0;
		/* empty: becomes an image when written, or now when created */
		if (st.st_size != 0 || (flags & O_PATH) || !(writable || created)) {
			errno = saved;
			return plain_fd(fd, flags);
		}
		pending = true;
	}
	return image_fd(fd, &st, path, flags, pending, saved);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real_open(path, flags, m);
		return open_by_inode(AT_FDCWD, path, flags, m, false);
	}
	return shim_open(AT_FDCWD, path, flags, m, false);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real_open64(path, flags, m);
		return open_by_inode(AT_FDCWD, path, flags, m, true);
	}
	return shim_open(AT_FDCWD, path, flags, m, true);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real_openat(dirfd, path, flags, m);
		return open_by_inode(dirfd, path, flags, m, false);
	}
	return shim_open(dirfd, path, flags, m, false);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real_openat64(dirfd, path, flags, m);
		return open_by_inode(dirfd, path, flags, m, true);
	}
	return shim_open(dirfd, path, flags, m, true);
}

int creat(const char *path, mode_t m)
{
	if (likely(!open_candidate(path, O_CREAT | O_WRONLY | O_TRUNC))) {
		if (likely(!inode_watch(0)))
			return real_creat(path, m);
		return open_by_inode(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, false);
	}
	return shim_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, false);
}

int creat64(const char *path, mode_t m)
{
	if (likely(!open_candidate(path, O_CREAT | O_WRONLY | O_TRUNC))) {
		if (likely(!inode_watch(0)))
			return real_creat64(path, m);
		return open_by_inode(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, true);
	}
	return shim_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, true);
}

/* Fortified forms: like open without a mode (glibc aborts on O_CREAT). */
int __open_2(const char *path, int flags)
{
	if (flags & O_CREAT)
		return real___open_2(path, flags);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real___open_2(path, flags);
		return open_by_inode(AT_FDCWD, path, flags, 0, false);
	}
	return shim_open(AT_FDCWD, path, flags, 0, false);
}

int __open64_2(const char *path, int flags)
{
	if (flags & O_CREAT)
		return real___open64_2(path, flags);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real___open64_2(path, flags);
		return open_by_inode(AT_FDCWD, path, flags, 0, true);
	}
	return shim_open(AT_FDCWD, path, flags, 0, true);
}

int __openat_2(int dirfd, const char *path, int flags)
{
	if (flags & O_CREAT)
		return real___openat_2(dirfd, path, flags);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real___openat_2(dirfd, path, flags);
		return open_by_inode(dirfd, path, flags, 0, false);
	}
	return shim_open(dirfd, path, flags, 0, false);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	if (flags & O_CREAT)
		return real___openat64_2(dirfd, path, flags);
	if (likely(!open_candidate(path, flags))) {
		if (likely(!inode_watch(flags)))
			return real___openat64_2(dirfd, path, flags);
		return open_by_inode(dirfd, path, flags, 0, true);
	}
	return shim_open(dirfd, path, flags, 0, true);
}
