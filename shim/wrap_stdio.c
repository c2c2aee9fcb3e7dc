/*
 * wrap_stdio.c - stdio on images.  glibc's FILE reads and writes through
 * internal system calls no wrapper sees, so an image gets an fopencookie
 * FILE whose operations go through the same fd-level functions as
 * read/write/lseek/close.  fileno() on such a FILE returns the image fd.
 * fopen/fopen64/freopen/fdopen produce them, and so does the constructor
 * for stdin/stdout/stderr when fd 0/1/2 is an inherited image.
 */
#include "shim.h"

#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

atomic_int shim_ncookies;
static pthread_mutex_t ck_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ck {
	struct ck *next;
	FILE *fp;
	int fd; /* -1: detached (a standard stream whose fd is no image now) */
} *cookies;
static struct ck *std_ck[3];  /* cookie standing in for stdin/stdout/stderr */

static ssize_t ck_read(void *c, char *buf, size_t n)
{
	int fd = ((struct ck *)c)->fd;
	return fd < 0 ? 0 : shim_read(fd, buf, n);
}

static ssize_t ck_write(void *c, const char *buf, size_t n)
{
	size_t done = 0;
	while (done < n && ((struct ck *)c)->fd >= 0) {
		ssize_t w = shim_write(((struct ck *)c)->fd, buf + done, n - done);
		if (w <= 0)
			return (ssize_t)done; /* glibc: 0 means error */
		done += (size_t)w;
	}
	return (ssize_t)done;
}

static int ck_seek(void *c, off64_t *pos, int whence)
{
	if (((struct ck *)c)->fd < 0)
		return -1;
	int64_t r = shim_lseek(((struct ck *)c)->fd, *pos, whence);
	if (r < 0)
		return -1;
	*pos = r;
	return 0;
}

static int ck_close(void *c)
{
	struct ck *k = c;
	pthread_mutex_lock(&ck_mu);
	for (struct ck **p = &cookies; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			atomic_fetch_sub(&shim_ncookies, 1);
			break;
		}
	for (int i = 0; i < 3; i++)
		if (std_ck[i] == k)
			std_ck[i] = NULL;
	pthread_mutex_unlock(&ck_mu);
	int fd = k->fd;
	free(k);
	return fd < 0 ? 0 : shim_close(fd);
}

FILE *stdio_cookie(int fd, const char *mode)
{
	static const cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
	struct ck *k = calloc(1, sizeof *k);
	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	k->fd = fd;
	FILE *fp = fopencookie(k, mode, io);
	if (!fp) {
		free(k);
		return NULL;
	}
	k->fp = fp;
	pthread_mutex_lock(&ck_mu);
	k->next = cookies;
	cookies = k;
	atomic_fetch_add(&shim_ncookies, 1);
	pthread_mutex_unlock(&ck_mu);
	return fp;
}

static int cookie_fd(FILE *fp)
{
	int fd = -1;
	pthread_mutex_lock(&ck_mu);
	for (struct ck *k = cookies; k; k = k->next)
		if (k->fp == fp)
			fd = k->fd;
	pthread_mutex_unlock(&ck_mu);
	return fd;
}

void stdio_flush_all(void)
{
	FILE *fps[64];
	int n = 0;
	pthread_mutex_lock(&ck_mu);
	for (struct ck *k = cookies; k && n < 64; k = k->next)
		fps[n++] = k->fp;
	pthread_mutex_unlock(&ck_mu);
	for (int i = 0; i < n; i++)
		fflush(fps[i]);
#if !SHIM_GLIBC
	stdio_std_flush(); /* musl: standard streams hooked onto images */
#endif
}

static int mode_flags(const char *m)
{
	int fl;
	switch (m[0]) {
	case 'r':
		fl = O_RDONLY;
		break;
	case 'w':
		fl = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		fl = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (const char *c = m + 1; *c && *c != ','; c++) {
		if (*c == '+')
			fl = (fl & ~O_ACCMODE) | O_RDWR;
		else if (*c == 'e')
			fl |= O_CLOEXEC;
		else if (*c == 'x')
			fl |= O_EXCL;
	}
	return fl;
}

static bool path_candidate(const char *p)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	/* while images are open, any path may lead to one's inode */
	return !shim_depth && p && (policy_classify(p, &ref) != SHIM_PATH_NO || fd_any_images());
}

/* Open path for stdio; an image gets a cookie FILE, anything else a plain
 * one on the same descriptor. */
static FILE *open_stream(const char *p, const char *m)
{
	int fl = mode_flags(m);
	if (fl < 0) {
		errno = EINVAL;
		return NULL;
	}
	int fd = shim_open(AT_FDCWD, p, fl, 0666, true);
	if (fd < 0)
		return NULL;
	FILE *fp = shim_fd_special(fd) ? stdio_cookie(fd, m) : real_fdopen(fd, m);
	if (!fp) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return fp;
}

FILE *fopen(const char *p, const char *m)
{
	if (likely(!path_candidate(p)))
		return real_fopen(p, m);
	return open_stream(p, m);
}

FILE *fopen64(const char *p, const char *m)
{
	if (likely(!path_candidate(p)))
		return real_fopen64(p, m);
	return open_stream(p, m);
}

static FILE *reopen(const char *p, const char *m, FILE *f, bool is64)
{
	FILE *(*realfn)(const char *, const char *, FILE *) = is64 ? real_freopen64 : real_freopen;
	if (!p) { /* mode change only: a cookie stays as it is */
		if (atomic_load(&shim_ncookies) && cookie_fd(f) >= 0)
			return f;
		return realfn(p, m, f);
	}
#if !SHIM_GLIBC /* musl's standard streams cannot be replaced: stdio_musl.c */
	if (f == stdin || f == stdout || f == stderr) {
		int fl = mode_flags(m);
		if (fl < 0) {
			errno = EINVAL;
			return NULL;
		}
		return stdio_std_reopen(p, m, fl, path_candidate(p), f, realfn);
	}
#endif
	if (likely(!path_candidate(p)))
		return realfn(p, m, f);
	/* The new stream takes over the old one's descriptor number, as
	 * freopen does, and the standard stream variables are redirected. */
	int oldfd = fileno(f);
	fflush(f);
	FILE *nf = open_stream(p, m);
	if (!nf)
		return NULL;
	int nfd = fileno(nf);
	if (cookie_fd(nf) < 0) { /* not an image after all */
		fclose(nf);
		return realfn(p, m, f);
	}
	if (oldfd >= 0 && nfd != oldfd && dup2(nfd, oldfd) == oldfd) {
		pthread_mutex_lock(&ck_mu);
		for (struct ck *k = cookies; k; k = k->next)
			if (k->fp == nf)
				k->fd = oldfd;
		pthread_mutex_unlock(&ck_mu);
		close(nfd);
	}
	if (!stdio_std_replace(f, nf) && cookie_fd(f) >= 0)
		fclose(f);
	return nf;
}

FILE *freopen(const char *p, const char *m, FILE *f)
{
	return reopen(p, m, f, false);
}

FILE *freopen64(const char *p, const char *m, FILE *f)
{
	return reopen(p, m, f, true);
}

FILE *fdopen(int fd, const char *m)
{
	if (SHIM_PASS(fd) || fd_is_private(fd))
		return real_fdopen(fd, m);
	return stdio_cookie(fd, m);
}

int fileno(FILE *f)
{
	if (likely(atomic_load_explicit(&shim_ncookies, memory_order_relaxed) == 0))
		return real_fileno(f);
	int fd = cookie_fd(f);
	return fd >= 0 ? fd : real_fileno(f);
}

int fileno_unlocked(FILE *f)
{
	if (likely(atomic_load_explicit(&shim_ncookies, memory_order_relaxed) == 0))
		return real_fileno_unlocked(f);
	int fd = cookie_fd(f);
	return fd >= 0 ? fd : real_fileno_unlocked(f);
}

#if SHIM_GLIBC /* glibc's FILE internals; musl: stdio_musl.c */
static FILE *std_saved[3]; /* the FILE std_ck[fd] replaced */

/* f is stdin/stdout/stderr: nf takes its place (true), else false. */
bool stdio_std_replace(FILE *f, FILE *nf)
{
	if (f == stdin)
		stdin = nf;
	else if (f == stdout)
		stdout = nf;
	else if (f == stderr)
		stderr = nf;
	else
		return false;
	return true;
}

/*
 * Standard streams: when fd 0/1/2 is an image (inherited, or made one by
 * dup2/open, as a shell does for `builtin > disk.qcow2`), stdin/stdout/
 * stderr are swapped for a cookie FILE on it, and swapped back when the fd
 * stops being an image.  Output is flushed before the fd changes, so
 * buffered bytes land where they were meant to.
 */
static FILE **std_var(int fd)
{
	return fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
}

void stdio_std_before(int fd)
{
	FILE *f = *std_var(fd);
	if (fd > 0 && f)
		fflush(f);
}

void stdio_std_after(int fd)
{
	bool img = shim_fd_special(fd) && !fd_is_private(fd);
	FILE **var = std_var(fd);
	if (img && !std_ck[fd]) {
		int acc = real_fcntl(fd, F_GETFL, NULL) & O_ACCMODE;
		const char *m = fd == 0 ? (acc == O_RDWR ? "r+" : "r") : (acc == O_RDWR ? "r+" : "w");
		FILE *fp = stdio_cookie(fd, m);
		if (!fp)
			return;
		if (fd == 2)
			setvbuf(fp, NULL, _IONBF, 0);
		FILE *old = *var;
		if (old && old->_fileno == fd) {
			/* Output still buffered for this fd number goes where a raw
			 * file would have put it, through the translation... */
			size_t n = fd > 0 ? __fpending(old) : 0;
			if (n)
				ck_write(cookies, old->_IO_write_base, n);
			__fpurge(old);
			/* ...and the old FILE (which someone may still hold, e.g.
			 * C++ streams) can no longer reach the host bytes: its I/O
			 * fails with EBADF until the fd stops being an image. */
			old->_fileno = -1;
		}
		pthread_mutex_lock(&ck_mu);
		std_ck[fd] = cookies; /* stdio_cookie pushed it first */
		std_saved[fd] = old;
		pthread_mutex_unlock(&ck_mu);
		*var = fp;
	} else if (!img && std_ck[fd]) {
		pthread_mutex_lock(&ck_mu);
		std_ck[fd]->fd = -1;
		std_ck[fd] = NULL;
		pthread_mutex_unlock(&ck_mu);
		if (std_saved[fd] && std_saved[fd]->_fileno == -1)
			std_saved[fd]->_fileno = fd;
		*var = std_saved[fd];
	}
}

/*
 * Is fd (>= 3) the descriptor of an open stdio stream?  glibc's streams
 * write through its internal write, past every wrapper: a stream whose fd
 * became an image would only get EBADF (fdtab.c fd_seal), so dup2 of an
 * image onto it is refused (wrap_fd.c).  Walks glibc's list of streams
 * (_IO_list_all, exported with its lock since glibc 2.2.5).
 */
extern FILE *_IO_list_all;
void _IO_list_lock(void);
void _IO_list_unlock(void);

bool stdio_stream_on(int fd)
{
	bool on = false;
	_IO_list_lock();
	for (FILE *f = _IO_list_all; f && !on; f = f->_chain)
		on = f->_fileno == fd && f != stdin && f != stdout && f != stderr;
	_IO_list_unlock();
	return on;
}

#endif

/* Constructor: standard streams on inherited images. */
void stdio_adopt_std(void)
{
	for (int fd = 0; fd < 3; fd++)
		stdio_std_after(fd);
}
