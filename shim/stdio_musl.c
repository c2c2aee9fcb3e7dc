/*
 * stdio_musl.c - the standard streams on images, musl flavour (the glibc
 * version is in wrap_stdio.c).
 *
 * musl's stdin/stdout/stderr are constant pointers to FILEs whose reads and
 * writes are system calls made inside libc: no wrapper sees them, and they
 * cannot be swapped for a cookie FILE as under glibc.  So when fd 0/1/2
 * becomes an image, its standard FILE is detached (its descriptor field set
 * to -1): stdio on it fails with EBADF instead of writing raw bytes into the
 * QCOW2 file, while read(2)/write(2) on the fd go through the shim.  It is
 * attached again when the fd stops being an image.  fopen/fdopen of an
 * image give an fopencookie FILE, as under glibc (wrap_stdio.c).
 */
#include "shim.h"

#if !SHIM_GLIBC
#include <stdio_ext.h>

/* musl's struct _IO_FILE (src/internal/stdio_impl.h) begins with
 * `unsigned flags` and 14 pointer-sized fields (the 6th is wpos, the
 * write position), then `int fd`.  Checked on the three standard streams
 * before the first use. */
#define FILE_WPOS_OFF (5 * sizeof(void *))
#define FILE_FD_OFF (15 * sizeof(void *))

static bool detached[3];

static int *file_fd(FILE *f)
{
	return (int *)((char *)f + FILE_FD_OFF);
}

static FILE *std_file(int fd)
{
	return fd == 0 ? stdin : fd == 1 ? stdout : stderr;
}

static bool layout_ok(void)
{
	static int ok = -1; /* decided before any stream is detached */
	if (ok < 0)
		ok = *file_fd(stdin) == 0 && *file_fd(stdout) == 1 && *file_fd(stderr) == 2;
	return ok;
}

void stdio_std_before(int fd)
{
	if (fd > 0 && !detached[fd])
		fflush(std_file(fd));
}

void stdio_std_after(int fd)
{
	bool img = shim_fd_special(fd) && !fd_is_private(fd);
	FILE *f = std_file(fd);
	if (img == detached[fd])
		return;
	if (!layout_ok()) {
		shim_msg("fd %d is an image but musl's standard FILE for it has an unknown layout: "
			 "do not use stdio on it",
			 fd);
		return;
	}
	flockfile(f);
	if (img) {
		/* Output still buffered for this fd number goes where a raw
		 * file would have put it, through the translation. */
		size_t n = fd > 0 ? __fpending(f) : 0;
		if (n)
			shim_write(fd, *(unsigned char **)((char *)f + FILE_WPOS_OFF) - n, n);
		__fpurge(f);
		*file_fd(f) = -1;
		shim_debug("std%s detached from image fd %d (musl: use read/write on it)",
			   fd == 0 ? "in" : fd == 1 ? "out" : "err", fd);
	} else {
		*file_fd(f) = fd;
	}
	detached[fd] = img;
	funlockfile(f);
}

/* reopen() refuses standard streams under musl before it gets here. */
bool stdio_std_replace(FILE *f, FILE *nf)
{
	(void)f;
	(void)nf;
	return false;
}
#endif
