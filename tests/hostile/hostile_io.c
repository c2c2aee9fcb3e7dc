/*
 * hostile_io - drives one (possibly malformed) image for t_hostile.sh and
 * prints what happened as "key=value" words on one line.
 *
 *   hostile_io shim ro|rw IMG RAW   plain open/pread/pwrite/fsync on IMG: run
 *                                   it under the shim (LD_PRELOAD)
 *   hostile_io lib  ro|rw IMG RAW   the same through libqcow directly
 *   hostile_io setbit IN OUT        OUT = IN with the corrupt bit set (what
 *                                   a deliberate corrupt marking looks like)
 *
 * RAW is the flat disk qemu-img convert made from the same image, or "-"
 * when qemu refused it.  ro: open read-only, read the first 4 MiB (or all)
 * and compare with RAW.  rw: open read-write, write 4 KiB at 0 and at
 * 64 KiB (where the bases keep plain and compressed data), fsync, then
 * 4 KiB at 128 KiB (unallocated in the bases: a new cluster, which would
 * be one the first writes wrongly released), fsync, read the first 4 MiB
 * back and compare with RAW plus the three writes: a write must land
 * where it was aimed and nowhere else, and stay there.
 *
 * Words: open=OK|<ERRNO>  size=N  read=OK|<ERRNO>  cmp=same|diff@OFF|-
 *        write0=OK|<ERRNO> write1=...  sync=OK|<ERRNO>  write2=... sync2=...
 *        after=same|diff@OFF|-
 * Exit 0 whatever the image did; 2 on usage or host errors.  Signals and
 * hangs are the caller's to catch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow.h"

#define SPAN (4u << 20) /* bytes compared */
#define WLEN 4096u

static const char *img_path;

static const char *ename(int e)
{
	static char b[16];
	switch (e) {
	case EINVAL: return "EINVAL";
	case EIO: return "EIO";
	case ENOTSUP: return "ENOTSUP";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	case ELOOP: return "ELOOP";
	case EPERM: return "EPERM";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case EOVERFLOW: return "EOVERFLOW";
	}
	snprintf(b, sizeof b, "E%d", e);
	return b;
}

/* ---- two ways to reach the image ---- */
struct dev {
	int fd;        /* shim */
	struct qcow *q; /* lib */
};

static void lib_log(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "hostile_io: %s: %s\n", img_path, msg);
}

static int lib_side(void *arg, const char *name, enum qcow_file_kind kind, bool w,
		    struct qcow_backend *out)
{
	struct stat st;
	(void)arg, (void)kind;
	int fd = open(name, (w ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EPERM;
	}
	int r = qcow_backend_fd(out, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0)
		close(fd);
	return r;
}

static int dev_open(struct dev *d, bool lib, bool rw, uint64_t *size)
{
	int fd = open(img_path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!lib) {
		off_t end = lseek(fd, 0, SEEK_END);
		if (end < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		d->fd = fd;
		*size = (uint64_t)end;
		return 0;
	}
	struct qcow_backend be;
	int r = qcow_backend_fd(&be, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0) {
		close(fd);
		return r;
	}
	struct qcow_opts o = {.flags = rw ? 0 : QCOW_RDONLY, .path = img_path, .log = lib_log,
			      .open_file = lib_side};
	if ((r = qcow_open(&d->q, be, &o)) < 0) {
		be.ops->close(be.h);
		return r;
	}
	*size = qcow_size(d->q);
	return 0;
}

static long dev_pread(struct dev *d, void *b, size_t n, uint64_t off)
{
	if (d->q)
		return qcow_read(d->q, b, n, off);
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(d->fd, (char *)b + done, n - done, (off_t)(off + done));
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (long)done;
}

static long dev_pwrite(struct dev *d, const void *b, size_t n, uint64_t off)
{
	if (d->q)
		return qcow_write(d->q, b, n, off);
	ssize_t r = pwrite(d->fd, b, n, (off_t)off);
	return r < 0 ? -errno : r;
}

static int dev_sync(struct dev *d)
{
	if (d->q)
		return qcow_flush(d->q);
	return fsync(d->fd) < 0 ? -errno : 0;
}

static int dev_close(struct dev *d)
{
	if (d->q)
		return qcow_close(d->q);
	return close(d->fd) < 0 ? -errno : 0;
}

/* ---- the checks ---- */
static uint8_t *load_raw(const char *path, size_t *n)
{
	if (!strcmp(path, "-"))
		return NULL;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	uint8_t *b = calloc(1, SPAN);
	ssize_t r = b ? pread(fd, b, SPAN, 0) : -1;
	close(fd);
	if (r < 0) {
		free(b);
		return NULL;
	}
	*n = (size_t)r;
	return b;
}

/* Read the first min(size, SPAN) bytes and compare with want (if any). */
static void read_and_compare(struct dev *d, uint64_t size, const uint8_t *want, size_t want_n,
			     const char *key)
{
	size_t n = size < SPAN ? (size_t)size : SPAN;
	uint8_t *b = malloc(n ? n : 1);
	long r = b ? dev_pread(d, b, n, 0) : -ENOMEM;
	if (r < 0) {
		printf(" %s=%s", !strcmp(key, "cmp") ? "read" : "reread", ename((int)-r));
	} else if (!want) {
		printf(" %s=-", key);
	} else if ((size_t)r != n || want_n < n) {
		printf(" %s=short(%ld/%zu)", key, r, want_n);
	} else {
		size_t i = 0;
		while (i < n && b[i] == want[i])
			i++;
		if (i == n)
			printf(" %s=same", key);
		else
			printf(" %s=diff@%zu", key, i);
	}
	free(b);
}

/* Write i: 4 KiB of 0xc5 + i at 0, 64 KiB or 128 KiB; want follows. */
static int put(struct dev *d, int i, uint64_t size, uint8_t *want, size_t want_n)
{
	static const uint64_t offs[3] = {0, 65536, 131072};
	static uint8_t pat[WLEN];
	if (offs[i] + WLEN > size)
		return 0;
	memset(pat, 0xc5 + i, sizeof pat);
	long w = dev_pwrite(d, pat, WLEN, offs[i]);
	int wr = w < 0 ? (int)w : w != WLEN ? -EIO : 0;
	printf(" write%d=%s", i, wr ? ename(-wr) : "OK");
	if (!wr && want && offs[i] + WLEN <= want_n)
		memcpy(want + offs[i], pat, WLEN);
	return wr;
}

static int run(bool lib, bool rw, const char *rawpath)
{
	struct dev d = {.fd = -1};
	uint64_t size = 0;
	size_t want_n = 0;
	uint8_t *want = load_raw(rawpath, &want_n);
	int r = dev_open(&d, lib, rw, &size);
	if (r < 0) {
		printf("open=%s\n", ename(-r));
		free(want);
		return 0;
	}
	printf("open=OK size=%llu", (unsigned long long)size);
	if (!rw) {
		read_and_compare(&d, size, want, want_n, "cmp");
	} else {
		int wr = 0;
		for (int i = 0; i < 2 && !wr; i++)
			wr = put(&d, i, size, want, want_n);
		int s = dev_sync(&d);
		printf(" sync=%s", s ? ename(-s) : "OK");
		/* a new cluster now: one the writes above wrongly released
		 * would be handed out again, and their data overwritten */
		if (!wr && !s) {
			wr = put(&d, 2, size, want, want_n);
			s = dev_sync(&d);
			printf(" sync2=%s", s ? ename(-s) : "OK");
		}
		if (!wr && !s)
			read_and_compare(&d, size, want, want_n, "after");
	}
	r = dev_close(&d);
	printf(" close=%s\n", r ? ename(-r) : "OK");
	free(want);
	return 0;
}

/* OUT = IN with incompatible feature bit 1 (corrupt) set. */
static int setbit(const char *in, const char *out)
{
	FILE *f = fopen(in, "rb"), *g = fopen(out, "wb");
	int c;
	long pos = 0;
	if (!f || !g)
		return 2;
	while ((c = getc(f)) != EOF) {
		if (pos == 79)
			c |= 2;
		putc(c, g);
		pos++;
	}
	fclose(f);
	return fclose(g) ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "setbit"))
		return setbit(argv[2], argv[3]);
	if (argc != 5 || (strcmp(argv[1], "shim") && strcmp(argv[1], "lib")) ||
	    (strcmp(argv[2], "ro") && strcmp(argv[2], "rw"))) {
		fprintf(stderr, "usage: hostile_io shim|lib ro|rw IMG RAW|- | setbit IN OUT\n");
		return 2;
	}
	img_path = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(!strcmp(argv[1], "lib"), !strcmp(argv[2], "rw"), argv[4]);
}
