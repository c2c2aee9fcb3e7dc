/*
 * reach.c - the calls that would hand the kernel an image's host file
 * itself, where no translation is possible: the kernel, not this process,
 * would then read or write the QCOW2 bytes as if they were the disk.
 *
 *   name_to_handle_at / open_by_handle_at of an image: EOPNOTSUPP (what a
 *   filesystem without handles answers; callers fall back to paths).
 *   swapon of an image: EINVAL (what a file the kernel cannot swap on gives).
 *   mount with an image as its source: ENOTBLK (a file-backed mount would
 *   read the host bytes).
 * The loop ioctls (wrap_ioctl.c), fexecve/execveat (wrap_proc.c,
 * wrap_misc.c) and /proc/P/map_files (wrap_open.c) use the checks here.
 * Each refusal prints one "qcowshim: PATH: refusing ..." line naming what
 * to use instead; the image is never touched.
 * Descriptors that arrive from another process (recvmsg SCM_RIGHTS,
 * pidfd_getfd) become image entries when they lead to an image, as
 * inherited ones do at start-up (fdtab.c).
 */
#include "shim.h"

#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/mount.h> /* MS_BIND etc. */

int reach_refuse(const char *path, const char *what, const char *instead, int err)
{
	char target[PATH_MAX];
	ssize_t n = -1;
	/* /proc/self/fd/N, /dev/fd/N, map_files: name the file they lead to */
	if (!strncmp(path, "/proc/", 6) || !strncmp(path, "/dev/fd/", 8))
		n = readlink(path, target, sizeof target - 1);
	if (n > 0 && target[0] == '/') {
		target[n] = 0;
		path = target;
	}
	shim_msg("%s: refusing %s: the kernel would see the raw QCOW2 bytes; %s", path, what,
		 instead);
	return -err;
}

/* Where fd leads, as /proc/self/fd shows it. */
static void fd_target(int fd, char *path)
{
	char link[40];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, PATH_MAX - 1);
	path[n > 0 ? n : 0] = 0;
}

static bool fd_is_image(int fd, char *path);

/* Both checks keep errno: the caller's call may still succeed. */
bool reach_fd_is_image(int fd, char *path)
{
	int saved = errno;
	bool r = fd_is_image(fd, path);
	errno = saved;
	return r;
}

static bool path_is_image(int dirfd, const char *path, int atflags);

bool reach_path_is_image(int dirfd, const char *path, int atflags)
{
	int saved = errno;
	bool r = path_is_image(dirfd, path, atflags);
	errno = saved;
	return r;
}

static bool fd_is_image(int fd, char *path)
{
	struct stat st;
	if (!atomic_load(&shim_ready) || !policy_enabled() || fd < 0)
		return false;
	if (fd_is_private(fd) || real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	struct shim_ofd *o = fd_get_any(fd);
	if (o) {
		snprintf(path, PATH_MAX, "%s", img_path(o->img));
		fd_put(o);
		return true;
	}
	/* An fd the shim never saw (received, or opened before it was
	 * active): decided by its inode, or by its name and content. */
	if (img_known(st.st_dev, st.st_ino, path))
		return true;
	fd_target(fd, path);
	img_strip_deleted(path);
	return img_file_is_image(fd, &st, path[0] == '/' ? path : NULL, false);
}

static bool path_is_image(int dirfd, const char *path, int atflags)
{
	int ref;
	if (!atomic_load(&shim_ready) || shim_depth || !path)
		return false;
	if ((atflags & AT_EMPTY_PATH) && !path[0]) {
		char p[PATH_MAX];
		return reach_fd_is_image(dirfd, p);
	}
	switch (policy_classify(path, &ref)) {
	case SHIM_PATH_FDREF:
		return true;
	case SHIM_PATH_MATCH:
	case SHIM_PATH_MAPFILE:
		break;
	default:
		return false;
	}
	int fl = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	int fd = real_openat(dirfd, path, fl | ((atflags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
	if (fd < 0)
		return false;
	struct stat st;
	bool img = real_fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		   (shim_probe_magic(fd) || img_known(st.st_dev, st.st_ino, NULL));
	real_close(fd);
	return img;
}

int name_to_handle_at(int d, const char *p, struct file_handle *h, int *mnt, int fl)
{
	if (likely(!reach_path_is_image(d, p, fl)))
		return real_name_to_handle_at(d, p, h, mnt, fl);
	return (int)shim_ret(reach_refuse(
		p[0] ? p : "(fd)", "a file handle for an image",
		"open it by its path (a handle reopens the host file behind the shim)",
		EOPNOTSUPP));
}

int open_by_handle_at(int mnt, struct file_handle *h, int fl)
{
	int fd = real_open_by_handle_at(mnt, h, fl), saved = errno;
	char path[PATH_MAX];
	if (fd < 0 || !reach_fd_is_image(fd, path))
		return fd;
	real_close(fd);
	errno = saved;
	return (int)shim_ret(reach_refuse(path, "to open an image by file handle",
					  "open it by its path", EOPNOTSUPP));
}

int swapon(const char *p, int fl)
{
	if (likely(!reach_path_is_image(AT_FDCWD, p, 0)))
		return real_swapon(p, fl);
	return (int)shim_ret(reach_refuse(p, "swapon", "swap on a partition of a disk that qemu-nbd "
					  "or a VM attaches, or on a raw file", EINVAL));
}

int mount(const char *src, const char *dst, const char *type, unsigned long fl, const void *data)
{
	if (likely(!src || (fl & (MS_BIND | MS_MOVE | MS_REMOUNT)) ||
		   !reach_path_is_image(AT_FDCWD, src, 0)))
		return real_mount(src, dst, type, fl, data);
	return (int)shim_ret(reach_refuse(src, "to mount an image file",
					  "attach it with qemu-nbd --connect and mount /dev/nbdNpM", ENOTBLK));
}

ssize_t recvmsg(int fd, struct msghdr *m, int fl)
{
	ssize_t r = real_recvmsg(fd, m, fl);
	if (likely(r < 0 || !m || m->msg_controllen == 0) || !atomic_load(&shim_ready) ||
	    !policy_enabled())
		return r;
	int saved = errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int rfd;
			memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof rfd);
			fd_adopt_received(rfd);
		}
	}
	errno = saved;
	return r;
}

int pidfd_getfd(int pidfd, int fd, unsigned fl)
{
	int r = real_pidfd_getfd(pidfd, fd, fl), saved = errno;
	if (r >= 0 && atomic_load(&shim_ready) && policy_enabled()) {
		fd_adopt_received(r);
		errno = saved;
	}
	return r;
}
