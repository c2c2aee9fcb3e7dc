/* failsync.so - preloaded AFTER libqcowshim.so, it is what the shim finds as
 * the "real" fsync/fdatasync: both fail with EIO, as on a dying disk, and so
 * does a durable write (pwritev2 with RWF_DSYNC, what the translator's
 * reservation uses); other writes go through.  Used by
 * tests/integration/t_tools_fulldisk.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

int fsync(int fd);
int fdatasync(int fd);
ssize_t pwritev2(int fd, const struct iovec *v, int cnt, off_t off, int flags);

int fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

int fdatasync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

ssize_t pwritev2(int fd, const struct iovec *v, int cnt, off_t off, int flags)
{
	static ssize_t (*next)(int, const struct iovec *, int, off_t, int);
	if (flags & (RWF_DSYNC | RWF_SYNC)) {
		errno = EIO;
		return -1;
	}
	if (!next && !(next = (ssize_t (*)(int, const struct iovec *, int, off_t, int))dlsym(RTLD_NEXT, "pwritev2"))) {
		errno = ENOSYS;
		return -1;
	}
	return next(fd, v, cnt, off, flags);
}
