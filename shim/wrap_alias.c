/*
 * wrap_alias.c - glibc's exported second names of interposed functions
 * (__open is open, __read is read, ...; glibc's own code calls internal
 * ones, never these).  A program or library that names one directly would
 * skip the wrapper, so each forwards to the wrapper of the public name.
 * glibc only (SYMG rows).
 */
#include "shim.h"

#if SHIM_GLIBC
#include <stdarg.h>

/* open's mode argument: present with O_CREAT or O_TMPFILE */
#define MODE(flags)                                                            \
	({                                                                     \
		mode_t m_ = 0;                                                 \
		if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
			va_list ap_;                                           \
			va_start(ap_, flags);                                  \
			m_ = (mode_t)va_arg(ap_, int);                         \
			va_end(ap_);                                           \
		}                                                              \
		m_;                                                            \
	})

int __open(const char *p, int fl, ...)
{
	return open(p, fl, MODE(fl));
}

int __open64(const char *p, int fl, ...)
{
	return open64(p, fl, MODE(fl));
}

ssize_t __read(int fd, void *b, size_t n)
{
	return read(fd, b, n);
}

ssize_t __write(int fd, const void *b, size_t n)
{
	return write(fd, b, n);
}

int __close(int fd)
{
	return close(fd);
}

ssize_t __pread64(int fd, void *b, size_t n, off64_t o)
{
	return pread64(fd, b, n, o);
}

ssize_t __pwrite64(int fd, const void *b, size_t n, off64_t o)
{
	return pwrite64(fd, b, n, o);
}

off_t __lseek(int fd, off_t o, int wh)
{
	return lseek(fd, o, wh);
}

int __fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}

int __dup2(int fd, int nfd)
{
	return dup2(fd, nfd);
}

#endif /* SHIM_GLIBC */
