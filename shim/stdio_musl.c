/*
 * stdio_musl.c - the standard streams on images, musl flavour (the glibc
 * version is in wrap_stdio.c).
 *
 * musl's stdin/stdout/stderr are constant pointers to FILEs whose reads and
 * writes are system calls made inside libc: no wrapper sees them, and they
 * cannot be swapped for a cookie FILE as under glibc.  So when fd 0/1/2
 * becomes an image, the shim points that FILE's read/write/seek/close
 * operations at its own, which go through the fd-level shim functions
 * (the same contract as musl's __stdio_read/__stdio_write: the FILE's
 * buffer pointers and error/EOF flags), and puts musl's back when the fd
 * stops being an image.  fopen/fdopen of an image give an fopencookie FILE,
 * as under glibc (wrap_stdio.c).
 */
#include "shim.h"

#if !SHIM_GLIBC
#include <stdio_ext.h>

/* The beginning of musl's struct _IO_FILE (src/internal/stdio_impl.h),
 * stable since musl 1.0; checked on the three standard streams (their
 * descriptors must be 0, 1, 2) before the first use. */
struct mfile {
	unsigned flags;
	unsigned char *rpos, *rend;
	int (*close)(FILE *);
	unsigned char *wend, *wpos;
	unsigned char *mustbezero_1;
	unsigned char *wbase;
	size_t (*read)(FILE *, unsigned char *, size_t);
	size_t (*write)(FILE *, const unsigned char *, size_t);
	off_t (*seek)(FILE *, off_t, int);
	unsigned char *buf;
	size_t buf_size;
	FILE *prev, *next;
	int fd;
};
#define MF_PERM 1
#define MF_NORD 4
#define MF_NOWR 8
#define MF_EOF 16
#define MF_ERR 32
#define MF_APP 128

static struct mfile saved[3]; /* musl's own operations, while hooked */
static bool hooked[3];

static struct mfile *mf(FILE *f)
{
	return (struct mfile *)(void *)f;
}

static FILE *std_file(int fd)
{
	return fd == 0 ? stdin : fd == 1 ? stdout : stderr;
}

static bool layout_ok(void)
{
	static int ok = -1;
	if (ok < 0)
		ok = mf(stdin)->fd == 0 && mf(stdout)->fd == 1 && mf(stderr)->fd == 2 &&
		     mf(stdout)->write && mf(stdin)->read;
	return ok;
}

static ssize_t write_all(int fd, const unsigned char *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = shim_write(fd, p + done, n - done);
		if (w <= 0)
			return w < 0 ? -1 : (ssize_t)done;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Buffered bytes first, then s; on failure the FILE is in error. */
static size_t img_write(FILE *f, const unsigned char *s, size_t len)
{
	struct mfile *m = mf(f);
	size_t pend = (size_t)(m->wpos - m->wbase);
	ssize_t w = 0;
	if (pend && write_all(m->fd, m->wbase, pend) != (ssize_t)pend)
		goto fail;
	if (len && (w = write_all(m->fd, s, len)) != (ssize_t)len)
		goto fail;
	m->wend = m->buf + m->buf_size;
	m->wpos = m->wbase = m->buf;
	return len;
fail:
	m->wpos = m->wbase = m->wend = NULL;
	m->flags |= MF_ERR;
	return w > 0 ? (size_t)w : 0;
}

/* Fills dst (all but its last byte when the FILE has a buffer) and then
 * the buffer in one read; the buffer's first byte completes dst. */
static size_t img_read(FILE *f, unsigned char *dst, size_t len)
{
	struct mfile *m = mf(f);
	struct iovec v[2] = {{dst, len - (m->buf_size != 0)}, {m->buf, m->buf_size}};
	ssize_t n = v[0].iov_len ? shim_preadv(m->fd, v, 2, -1, 0) : shim_preadv(m->fd, v + 1, 1, -1, 0);
	if (n <= 0) {
		m->flags |= n < 0 ? MF_ERR : MF_EOF;
		return 0;
	}
	if ((size_t)n <= v[0].iov_len)
		return (size_t)n;
	m->rpos = m->buf;
	m->rend = m->buf + ((size_t)n - v[0].iov_len);
	if (m->buf_size)
		dst[len - 1] = *m->rpos++;
	return len;
}

static off_t img_seek(FILE *f, off_t off, int whence)
{
	return (off_t)shim_lseek(mf(f)->fd, off, whence);
}

/* Caller holds f's lock: put musl's operations back here (re-locking
 * from stdio_std_after would release musl's own hold), then close. */
static void set_hooks(int fd, bool on);
static int img_close(FILE *f)
{
	int fd = mf(f)->fd;
	set_hooks(fd, false);
	return shim_close(fd);
}

/* fd's standard FILE does its I/O through the shim (on) or musl (off). */
static void set_hooks(int fd, bool on)
{
	struct mfile *m = mf(std_file(fd));
	if (fd == 0)
		__fpurge(std_file(0)); /* input read ahead from the previous file */
	if (on) {
		saved[fd] = *m;
		m->read = img_read;
		m->write = img_write;
		m->seek = img_seek;
		m->close = img_close;
	} else {
		m->read = saved[fd].read;
		m->write = saved[fd].write;
		m->seek = saved[fd].seek;
		m->close = saved[fd].close;
	}
	hooked[fd] = on;
}

void stdio_std_before(int fd)
{
	if (fd > 0)
		fflush(std_file(fd)); /* still through the hooks if hooked */
}

void stdio_std_after(int fd)
{
	bool img = shim_fd_special(fd) && !fd_is_private(fd);
	FILE *f = std_file(fd);
	if (img == hooked[fd])
		return;
	if (!layout_ok()) {
		shim_msg("fd %d is an image but musl's standard FILE for it has an unknown layout: "
			 "do not use stdio on it",
			 fd);
		return;
	}
	flockfile(f);
	set_hooks(fd, img);
	funlockfile(f);
}

/* Exit: output still buffered in a hooked stream goes to its image before
 * the destructor closes the translators. */
void stdio_std_flush(void)
{
	for (int fd = 1; fd < 3; fd++)
		if (hooked[fd])
			fflush(std_file(fd));
}

/*
 * freopen(p, m, a standard stream) when p is a candidate image path or the
 * stream is now on an image: the new file's fd is moved onto the stream's
 * descriptor with the dup2 wrapper (which hooks or unhooks the FILE, above;
 * musl's freopen would use an internal dup3 no wrapper sees) and the FILE
 * takes the new mode, as musl's freopen does it.  Otherwise musl's freopen.
 */
FILE *stdio_std_reopen(const char *p, const char *m, int oflags, bool cand, FILE *f,
		       FILE *(*realfn)(const char *, const char *, FILE *))
{
	int sfd = f == stdin ? 0 : f == stdout ? 1 : 2, acc = oflags & O_ACCMODE;
	if (!cand && !hooked[sfd])
		return realfn(p, m, f);
	fflush(f);
	int fd = open(p, oflags, 0666);
	if (fd < 0)
		return NULL;
	bool img = shim_fd_special(fd) && !fd_is_private(fd);
	if (!img && !hooked[sfd]) { /* a matching path that is no image */
		close(fd);
		return realfn(p, m, f);
	}
	if (fd != sfd) {
		int r = dup2(fd, sfd), e = errno;
		close(fd);
		if (r != sfd) {
			errno = e;
			return NULL;
		}
	}
	if (img != hooked[sfd]) {
		errno = ENOTSUP; /* unknown FILE layout (said by stdio_std_after) */
		return NULL;
	}
	flockfile(f);
	__fpurge(f);
	struct mfile *mm = mf(f);
	mm->flags = (mm->flags & MF_PERM) | (acc == O_RDONLY ? MF_NOWR : 0) |
		    (acc == O_WRONLY ? MF_NORD : 0) | ((oflags & O_APPEND) ? MF_APP : 0);
	funlockfile(f);
	return f;
}

/* Standard streams never reach reopen()'s replacement step under musl. */
bool stdio_std_replace(FILE *f, FILE *nf)
{
	(void)f;
	(void)nf;
	return false;
}
/* musl's streams: not walked (see wrap_stdio.c). */
bool stdio_stream_on(int fd)
{
	(void)fd;
	return false;
}
#endif
