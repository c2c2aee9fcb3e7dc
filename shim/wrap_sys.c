/*
 * wrap_sys.c - more system call numbers that syscall() hands to the
 * wrapper of the same call (wrap_misc.c asks sys_route after its own
 * cases): the fd calls whose raw form on an image would read the QCOW2
 * bytes or give the host size (readv/preadv/preadv2, mmap, the stat
 * calls, splice...), the ones that would miss the shim's bookkeeping
 * (dup*, fcntl, ioctl, recvmmsg) and the path calls it serves or refuses
 * (truncate, access, getxattr: IMAGE/pN; rename over an image; acct).  Each wrapper passes non-image arguments
 * straight to libc, so a number routed here behaves as the raw call on
 * every other file.  Numbers are x86-64's (asm/unistd_64.h): preadv's
 * offset is one register there.
 */
#include "shim.h"

#include <sys/syscall.h>

/* -1/errno from a call that returns an error number (posix_fadvise). */
static long errnum(int e)
{
	return e ? shim_ret(-e) : 0;
}

bool sys_route(long nr, const long *a, long *ret)
{
	int fd = (int)a[0];
	switch (nr) {
	case SYS_readv:
		*ret = readv(fd, (const struct iovec *)a[1], (int)a[2]);
		return true;
	case SYS_writev:
		*ret = writev(fd, (const struct iovec *)a[1], (int)a[2]);
		return true;
	case SYS_preadv:
		*ret = preadv64(fd, (const struct iovec *)a[1], (int)a[2], a[3]);
		return true;
	case SYS_pwritev:
		*ret = pwritev64(fd, (const struct iovec *)a[1], (int)a[2], a[3]);
		return true;
	case SYS_preadv2:
		*ret = preadv64v2(fd, (const struct iovec *)a[1], (int)a[2], a[3], (int)a[5]);
		return true;
	case SYS_pwritev2:
		*ret = pwritev64v2(fd, (const struct iovec *)a[1], (int)a[2], a[3], (int)a[5]);
		return true;
	case SYS_dup:
		*ret = dup(fd);
		return true;
	case SYS_dup2:
		*ret = dup2(fd, (int)a[1]);
		return true;
	case SYS_dup3:
		*ret = dup3(fd, (int)a[1], (int)a[2]);
		return true;
	case SYS_fcntl:
		*ret = fcntl(fd, (int)a[1], (void *)a[2]);
		return true;
	case SYS_ioctl:
		*ret = ioctl(fd, (unsigned long)a[1], (void *)a[2]);
		return true;
	case SYS_stat:
		*ret = stat((const char *)a[0], (struct stat *)a[1]);
		return true;
	case SYS_lstat:
		*ret = lstat((const char *)a[0], (struct stat *)a[1]);
		return true;
	case SYS_newfstatat:
		*ret = fstatat(fd, (const char *)a[1], (struct stat *)a[2], (int)a[3]);
		return true;
	case SYS_statx:
		*ret = statx(fd, (const char *)a[1], (int)a[2], (unsigned)a[3], (struct statx *)a[4]);
		return true;
	case SYS_mmap:
		*ret = (long)mmap((void *)a[0], (size_t)a[1], (int)a[2], (int)a[3], (int)a[4], a[5]);
		return true;
	case SYS_fadvise64:
		*ret = errnum(posix_fadvise(fd, a[1], a[2], (int)a[3])); /* off_t: 64 bits */
		return true;
	case SYS_readahead:
		*ret = readahead(fd, a[1], (size_t)a[2]);
		return true;
	case SYS_sync_file_range:
		*ret = sync_file_range(fd, a[1], a[2], (unsigned)a[3]);
		return true;
	case SYS_splice:
		*ret = splice(fd, (off64_t *)a[1], (int)a[2], (off64_t *)a[3], (size_t)a[4],
			      (unsigned)a[5]);
		return true;
	case SYS_creat:
		*ret = creat((const char *)a[0], (mode_t)a[1]);
		return true;
	case SYS_access:
		*ret = access((const char *)a[0], (int)a[1]);
		return true;
	case SYS_faccessat: /* the system call has no flags */
		*ret = faccessat(fd, (const char *)a[1], (int)a[2], 0);
		return true;
	case SYS_faccessat2:
		*ret = faccessat(fd, (const char *)a[1], (int)a[2], (int)a[3]);
		return true;
	case SYS_getxattr:
		*ret = getxattr((const char *)a[0], (const char *)a[1], (void *)a[2], (size_t)a[3]);
		return true;
	case SYS_lgetxattr:
		*ret = lgetxattr((const char *)a[0], (const char *)a[1], (void *)a[2], (size_t)a[3]);
		return true;
	case SYS_truncate:
		*ret = truncate((const char *)a[0], a[1]);
		return true;
	case SYS_rename:
		*ret = rename((const char *)a[0], (const char *)a[1]);
		return true;
	case SYS_renameat:
		*ret = renameat(fd, (const char *)a[1], (int)a[2], (const char *)a[3]);
		return true;
#if SHIM_GLIBC /* musl 1.2.3 declares no renameat2 */
	case SYS_renameat2:
		*ret = renameat2(fd, (const char *)a[1], (int)a[2], (const char *)a[3], (unsigned)a[4]);
		return true;
#endif
	case SYS_acct:
		*ret = acct((const char *)a[0]);
		return true;
	case SYS_recvmmsg:
		*ret = recvmmsg(fd, (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3],
				(struct timespec *)a[4]);
		return true;
	}
	return false;
}
