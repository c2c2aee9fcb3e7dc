/*
 * wrap_name.c - names that would replace an image: rename, renameat,
 * renameat2; and shm_open, whose glibc open bypasses the open wrappers.
 *
 * A rename of a file that is not an image over a name whose file is one
 * (by inode: an image this process has open, under any name; or a name
 * matching the globs whose file starts with the QCOW2 magic) fails with
 * EXDEV, as a rename across file systems does, and one line says why (the
 * program's own message alone, "Invalid cross-device link", would not): `mv` then copies
 * the file into the image through the shim (its contents become the
 * virtual disk), `sed -i`, `perl -pi` and `ln -f` fail with their own
 * message, and rsync copies into it; the image stays a valid QCOW2 file in
 * every case, never silently replaced by the flat bytes written for it.
 * Renaming an image (over anything, or over another image) is a file
 * operation on QCOW2 files and goes through.  RENAME_EXCHANGE of an image
 * with a file that is not one is refused the same way.  link/linkat never
 * replace an existing name (EEXIST), so they need nothing here.
 * shm_open(NAME) opens /dev/shm/NAME (glibc's rules for NAME) through the
 * open wrapper: an image there is served like any other image path.
 */
#include "shim.h"

#include <limits.h>
#include <string.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Is the file at (dirfd, path), itself and not a symlink's target, an
 * image?  by_name: its name must match the globs (unless this process has
 * its inode open); otherwise the QCOW2 magic decides whatever the name. */
static bool name_is_image(int dirfd, const char *path, bool by_name)
{
	struct stat st;
	int ref, saved = errno;
	bool img = false;
	if (real_fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		img = img_known(st.st_dev, st.st_ino, NULL);
		if (!img && (!by_name || policy_classify(path, &ref) == SHIM_PATH_MATCH)) {
			int fd = real_openat(dirfd, path,
					     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0);
			if (fd >= 0) {
				img = shim_probe_magic(fd);
				real_close(fd);
			}
		}
	}
	errno = saved;
	return img;
}

/* Would renaming (od, op) to (nd, np) replace an image by a file that is
 * not one?  Cheap when nothing is an image: a string match, no system
 * call, unless this process has images open. */
static bool replaces_image(int od, const char *op, int nd, const char *np, unsigned flags)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || !policy_enabled() || !op || !np)
		return false;
	bool cand = fd_any_images() || policy_classify(np, &ref) != SHIM_PATH_NO ||
		    ((flags & RENAME_EXCHANGE) && policy_classify(op, &ref) != SHIM_PATH_NO);
	if (likely(!cand))
		return false;
	struct stat st;
	int saved = errno;
	bool exists = real_fstatat(od, op, &st, AT_SYMLINK_NOFOLLOW) == 0;
	errno = saved;
	if (!exists) /* the kernel's error (ENOENT ...) */
		return false;
	bool new_img = name_is_image(nd, np, true);
	if (flags & RENAME_EXCHANGE) {
		bool old_img = name_is_image(od, op, true);
		return new_img != old_img;
	}
	return new_img && !name_is_image(od, op, false);
}

static int refuse_replace(const char *op, const char *np)
{
	/* one line per rename: mv tries renameat2 and then rename */
	static _Atomic unsigned long long last;
	unsigned long long h = 1469598103934665603ULL;
	for (const char *p = op; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = np; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	if (atomic_exchange(&last, h) == h)
		return (int)shim_ret(-EXDEV);
	shim_msg("%s: refusing to rename %s over an image: it would replace the QCOW2 file by "
		 "the raw bytes written for it (EXDEV); write into the image instead (mv and "
		 "rsync then do, or cp, dd conv=notrunc)",
		 np, op);
	return (int)shim_ret(-EXDEV);
}

int rename(const char *op, const char *np)
{
	if (likely(!replaces_image(AT_FDCWD, op, AT_FDCWD, np, 0)))
		return real_rename(op, np);
	return refuse_replace(op, np);
}

int renameat(int od, const char *op, int nd, const char *np)
{
	if (likely(!replaces_image(od, op, nd, np, 0)))
		return real_renameat(od, op, nd, np);
	return refuse_replace(op, np);
}

int renameat2(int od, const char *op, int nd, const char *np, unsigned flags)
{
	if (likely(!replaces_image(od, op, nd, np, flags)))
		return real_renameat2(od, op, nd, np, flags);
	return refuse_replace(op, np);
}

/* glibc 2.36 (sysdeps/pthread/shm-directory.c): leading slashes skipped,
 * no other slash, not empty, ".", ".."; shorter than NAME_MAX. */
static int shm_path(const char *name, char *buf, size_t len)
{
	while (name[0] == '/')
		name++;
	size_t n = strlen(name);
	if (n == 0 || n >= NAME_MAX || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	snprintf(buf, len, "/dev/shm/%s", name);
	return 0;
}

int shm_open(const char *name, int oflag, mode_t mode)
{
	char path[PATH_MAX];
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	if (shim_depth || !policy_enabled() || shm_path(name, path, sizeof path) < 0 ||
	    (!fd_any_images() && policy_classify(path, &ref) == SHIM_PATH_NO))
		return real_shm_open(name, oflag, mode);
	/* what glibc's shm_open passes to its own open */
	int fd = shim_open(AT_FDCWD, path, oflag | O_NOFOLLOW | O_CLOEXEC, mode, true);
	if (fd < 0 && errno == EISDIR)
		errno = EINVAL;
	return fd;
}
