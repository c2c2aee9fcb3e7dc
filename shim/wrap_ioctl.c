/*
 * wrap_ioctl.c - ioctls on image fds.  A small table answers the block
 * device queries from the virtual disk; FIEMAP/FIBMAP (which would expose
 * the host layout) are refused; a few fd-level requests pass through; every
 * other request fails with ENOTTY, as it does on a file whose filesystem
 * does not know it, so nothing reaches the host file's raw bytes.
 * A loop device given an image as its backing file (LOOP_SET_FD,
 * LOOP_CHANGE_FD, LOOP_CONFIGURE: losetup, mount -o loop, systemd) would
 * make the kernel serve the QCOW2 bytes as the disk: refused before the
 * kernel is asked, with EOPNOTSUPP.
 */
#include "shim.h"

#include <limits.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>

static long ioctl_locked(struct shim_ofd *o, unsigned long req, void *arg)
{
	struct shim_image *img = o->img;
	uint64_t *range = arg;
	int r;
	switch (req) {
	case BLKGETSIZE64:
		if ((r = img_ready(img, false)) < 0)
			return r;
		*(uint64_t *)arg = ofd_size(o);
		return 0;
	case BLKGETSIZE:
		if ((r = img_ready(img, false)) < 0)
			return r;
		*(unsigned long *)arg = (unsigned long)(ofd_size(o) >> 9);
		return 0;
	case BLKSSZGET:
		*(int *)arg = 512;
		return 0;
	case BLKPBSZGET:
		*(unsigned int *)arg = 512;
		return 0;
	case BLKROGET:
		*(int *)arg = 0;
		return 0;
	case BLKFLSBUF:
		return img_flush(img);
	case BLKDISCARD:
	case BLKSECDISCARD:
	case BLKZEROOUT:
		if (o->accmode == O_RDONLY)
			return -EBADF;
		if ((range[0] | range[1]) & 511)
			return -EINVAL;
		if ((r = img_ready(img, true)) < 0)
			return r;
		if (range[0] + range[1] > ofd_size(o) || range[0] + range[1] < range[0])
			return -EINVAL;
		return ofd_zero(o, range[0], range[1], req != BLKZEROOUT);
	case FS_IOC_FIEMAP:
		return -EOPNOTSUPP;
	case FIBMAP:
		return -EINVAL;
	default:
		return -ENOTTY;
	}
}

/* The backing fd a loop request would hand the kernel, or -1. */
static int loop_backing(unsigned long req, void *arg)
{
	switch (req) {
	case LOOP_SET_FD:
	case LOOP_CHANGE_FD:
		return (int)(long)arg;
	case LOOP_CONFIGURE:
		return arg ? (int)((struct loop_config *)arg)->fd : -1;
	}
	return -1;
}

/* Tools retry a refused LOOP_CONFIGURE with LOOP_SET_FD (systemd): one
 * message per image and process is enough. */
static bool loop_reported(int fd)
{
	static _Atomic dev_t dev;
	static _Atomic ino_t ino;
	struct stat st;
	if (real_fstat(fd, &st) < 0)
		return false;
	if (atomic_load(&dev) == st.st_dev && atomic_load(&ino) == st.st_ino)
		return true;
	atomic_store(&dev, st.st_dev);
	atomic_store(&ino, st.st_ino);
	return false;
}

static int refuse_loop(unsigned long req, const char *path, int fd)
{
	if (loop_reported(fd))
		return -EOPNOTSUPP;
	const char *name = req == LOOP_CONFIGURE ? "LOOP_CONFIGURE" :
			   req == LOOP_SET_FD	 ? "LOOP_SET_FD" : "LOOP_CHANGE_FD";
	char what[64];
	snprintf(what, sizeof what, "a loop device (%s)", name);
	return reach_refuse(path, what,
			    "use its partitions as files (IMAGE/pN), or qemu-nbd --connect for a block device",
			    EOPNOTSUPP);
}

int ioctl(int fd, SHIM_IOCTL_REQ rq, ...)
{
	va_list ap;
	va_start(ap, rq);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	unsigned long req = (unsigned)rq; /* the kernel's cmd is 32 bits */
	if (unlikely(req == FICLONE || req == FICLONERANGE)) {
		/* Reflinking an image's host extents would copy raw QCOW2
		 * bytes: refuse like a cross-filesystem clone (cp falls back). */
		int src = req == FICLONE ? (int)(long)arg : (int)((struct file_clone_range *)arg)->src_fd;
		if (shim_fd_special(src) || shim_fd_special(fd)) {
			errno = EXDEV;
			return -1;
		}
	}
	if (unlikely(req == LOOP_SET_FD || req == LOOP_CHANGE_FD || req == LOOP_CONFIGURE)) {
		char path[PATH_MAX];
		if (reach_fd_is_image(loop_backing(req, arg), path))
			return (int)shim_ret(refuse_loop(req, path, loop_backing(req, arg)));
	}
	if (SHIM_PASS(fd))
		return real_ioctl(fd, rq, arg);
	switch (req) { /* about the descriptor, not the bytes */
	case FIOCLEX:
	case FIONCLEX:
	case FIONBIO:
	case FIOASYNC:
	case FIGETBSZ:
		return real_ioctl(fd, rq, arg);
	}
	struct shim_ofd *o = fd_get(fd);
	if (!o)
		return real_ioctl(fd, rq, arg);
	int saved = errno;
	img_lock(o->img);
	long r = ioctl_locked(o, req, arg);
	img_op_done(o->img);
	img_unlock(o->img);
	fd_put(o);
	errno = saved;
	return (int)shim_ret(r);
}
