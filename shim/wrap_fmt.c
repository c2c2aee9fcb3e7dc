/*
 * wrap_fmt.c - dprintf/vdprintf (and the fortified __dprintf_chk/
 * __vdprintf_chk): glibc formats into a stream on the fd and writes it
 * with its internal write, which no wrapper sees.  On an image fd the text
 * is formatted here and written with the shim's write (the fd's position,
 * O_APPEND); other fds go to glibc.  eventfd_read is glibc's internal
 * read of 8 bytes: on an image fd (not an eventfd) it reads them through
 * the shim, as read(2) would give them.  glibc only (SYMG rows).
 */
#include "shim.h"

#if SHIM_GLIBC

static int fmt_image(int fd, const char *f, va_list ap)
{
	char *s = NULL;
	int n = vasprintf(&s, f, ap);
	if (n < 0)
		return -1;
	size_t done = 0;
	while (done < (size_t)n) {
		ssize_t w = write(fd, s + done, (size_t)n - done);
		if (w <= 0) {
			int e = errno;
			free(s);
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	free(s);
	return n;
}

int vdprintf(int fd, const char *f, va_list ap)
{
	if (SHIM_PASS(fd))
		return real_vdprintf(fd, f, ap);
	return fmt_image(fd, f, ap);
}

int dprintf(int fd, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int r = SHIM_PASS(fd) ? real_vdprintf(fd, f, ap) : fmt_image(fd, f, ap);
	va_end(ap);
	return r;
}

int __vdprintf_chk(int fd, int fl, const char *f, va_list ap)
{
	if (SHIM_PASS(fd))
		return real___vdprintf_chk(fd, fl, f, ap);
	return fmt_image(fd, f, ap);
}

int __dprintf_chk(int fd, int fl, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int r = SHIM_PASS(fd) ? real___vdprintf_chk(fd, fl, f, ap) : fmt_image(fd, f, ap);
	va_end(ap);
	return r;
}

int eventfd_read(int fd, eventfd_t *v)
{
	if (SHIM_PASS(fd))
		return real_eventfd_read(fd, v);
	return read(fd, v, sizeof *v) == (ssize_t)sizeof *v ? 0 : -1;
}

#endif /* SHIM_GLIBC */
