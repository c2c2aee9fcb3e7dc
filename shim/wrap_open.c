/*
 * wrap_open.c - open/openat/creat (+64, fortified _2 forms).
 *
 * An image is opened as a real fd on the host file whose kernel offset holds
 * the virtual position.  O_TRUNC, O_APPEND and O_DIRECT never reach the real
 * open: O_TRUNC empties the virtual disk, O_APPEND/O_DIRECT are emulated per
 * fd.  O_CREAT on an empty *.qcow2 creates a QCOW2 image of virtual size 0.
 * A matching file that is not QCOW2 (and not an empty one opened for
 * writing) gets its flags back and is never touched again.
 */
#include "shim.h"

#include <stdlib.h>

#define STRIPPED (O_TRUNC | O_APPEND | O_DIRECT)

static bool open_candidate(const char *path, int flags)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || (flags & (O_PATH | O_DIRECTORY)))
		return false;
	return policy_classify(path, &ref) != SHIM_PATH_NO;
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

/* open(2) for a path policy_classify() flagged.  Returns fd or -1/errno. */
int shim_open(int dirfd, const char *path, int flags, mode_t mode, bool is64)
{
	int saved = errno, r = 0, err = 0, ref;
	struct stat st;
	if (policy_classify(path, &ref) == SHIM_PATH_PART) {
		/* IMAGE/pN: a real path (IMAGE a directory) wins */
		int fd = real_openat_any(dirfd, path, flags, mode, is64);
		if (fd >= 0 || errno != ENOTDIR)
			return fd;
		errno = saved;
		return part_open(dirfd, path, flags, mode, is64);
	}
	int fd = real_openat_any(dirfd, path, flags & ~STRIPPED, mode, is64);
	if (fd < 0)
		return fd;
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		/* Not a regular file: it never was ours; open it as asked. */
		real_close(fd);
		errno = saved;
		return real_openat_any(dirfd, path, flags & ~O_EXCL, mode, is64);
	}
	int acc = flags & O_ACCMODE;
	bool writable = acc != O_RDONLY, pending = false;
	if (!shim_probe_magic(fd)) {
		if ((flags & O_TRUNC) && writable && st.st_size > 0 && real_ftruncate(fd, 0) == 0)
			st.st_size = 0;
		if (st.st_size != 0 || !writable) {
			errno = saved;
			return plain_fd(fd, flags);
		}
		pending = true; /* empty: becomes an image when written */
	}
	if (fd >= SHIM_FD_MAX) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	struct shim_image *img = img_register(fd, path, pending, &err);
	if (!img) {
		real_close(fd);
		errno = -err;
		return -1;
	}
	/* /dev/fd/N of a partition fd: that partition again (O_TRUNC ignored) */
	struct shim_ofd win = {.img = img};
	part_copy_window(&win, path);
	img_lock(img);
	if (pending && (flags & O_CREAT))
		r = img_ready(img, true); /* creates the QCOW2 structure */
	else
		r = img_validate(img, path, writable);
	if (r == 0 && (flags & O_TRUNC) && writable && !pending && !win.part)
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
	fd_attach(fd, o);
	if (fd < 3)
		stdio_std_after(fd);
	errno = saved;
	return fd;
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
	if (likely(!open_candidate(path, flags)))
		return real_open(path, flags, m);
	return shim_open(AT_FDCWD, path, flags, m, false);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags)))
		return real_open64(path, flags, m);
	return shim_open(AT_FDCWD, path, flags, m, true);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags)))
		return real_openat(dirfd, path, flags, m);
	return shim_open(dirfd, path, flags, m, false);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	if (likely(!open_candidate(path, flags)))
		return real_openat64(dirfd, path, flags, m);
	return shim_open(dirfd, path, flags, m, true);
}

int creat(const char *path, mode_t m)
{
	if (likely(!open_candidate(path, O_CREAT | O_WRONLY | O_TRUNC)))
		return real_creat(path, m);
	return shim_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, false);
}

int creat64(const char *path, mode_t m)
{
	if (likely(!open_candidate(path, O_CREAT | O_WRONLY | O_TRUNC)))
		return real_creat64(path, m);
	return shim_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m, true);
}

/* Fortified forms: like open without a mode (glibc aborts on O_CREAT). */
int __open_2(const char *path, int flags)
{
	if (likely(!open_candidate(path, flags)) || (flags & O_CREAT))
		return real___open_2(path, flags);
	return shim_open(AT_FDCWD, path, flags, 0, false);
}

int __open64_2(const char *path, int flags)
{
	if (likely(!open_candidate(path, flags)) || (flags & O_CREAT))
		return real___open64_2(path, flags);
	return shim_open(AT_FDCWD, path, flags, 0, true);
}

int __openat_2(int dirfd, const char *path, int flags)
{
	if (likely(!open_candidate(path, flags)) || (flags & O_CREAT))
		return real___openat_2(dirfd, path, flags);
	return shim_open(dirfd, path, flags, 0, false);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	if (likely(!open_candidate(path, flags)) || (flags & O_CREAT))
		return real___openat64_2(dirfd, path, flags);
	return shim_open(dirfd, path, flags, 0, true);
}
