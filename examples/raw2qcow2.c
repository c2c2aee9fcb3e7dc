/*
 * raw2qcow2.c - use qcow/ as a library: convert a raw disk image into a new
 * QCOW2 image, without qemu and without the shim.
 *
 *   raw2qcow2 [-c CLUSTER_BITS] [-2] RAW OUT.qcow2
 *
 * Creates OUT.qcow2 with RAW's size as its virtual size, copies RAW into it
 * 1 MiB at a time and skips chunks that are all zeros (they stay
 * unallocated, so the image is sparse), flushes, then prints the image's
 * header facts and how much of it is allocated.  -c picks the cluster size
 * (9..21, default 16 = 64 KiB), -2 makes a version 2 (compat 0.10) image.
 *
 * Build and try it (from the source tree):
 *   make examples                     # build/examples/raw2qcow2
 *   build/examples/raw2qcow2 disk.raw disk.qcow2
 *   qemu-img compare disk.raw disk.qcow2 && qemu-img check disk.qcow2
 * or by hand: cc -Iqcow -o raw2qcow2 examples/raw2qcow2.c build/libqcow.a -lz -lzstd -lpthread
 *
 * Everything the program needs is in qcow/qcow.h: a backend (here a host
 * file through libc), qcow_create, qcow_write, qcow_flush, qcow_info,
 * qcow_map and qcow_close.  Every call returns 0/a count or -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow.h"

#define CHUNK (1u << 20)

static int fail(const char *what, const char *path, int err)
{
	fprintf(stderr, "raw2qcow2: %s %s: %s\n", what, path, strerror(err));
	return 1;
}

/* The library reports why an open or create failed through this callback. */
static void log_line(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "raw2qcow2: %s\n", msg);
}

static int all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Copy every non-zero chunk of raw_fd into the image. */
static int copy_in(struct qcow *q, int raw_fd, uint64_t size, const char *raw)
{
	unsigned char *buf = malloc(CHUNK);
	if (!buf)
		return fail("copying", raw, ENOMEM);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t got = pread(raw_fd, buf, n, (off_t)off);
		if (got <= 0) {
			free(buf);
			return fail("reading", raw, got < 0 ? errno : EIO);
		}
		if (!all_zero(buf, (size_t)got)) {
			ssize_t w = qcow_write(q, buf, (size_t)got, off);
			if (w < 0) {
				free(buf);
				return fail("writing into the image for", raw, (int)-w);
			}
		}
		off += (uint64_t)got;
	}
	free(buf);
	return 0;
}

/* Print the header facts and the allocated share of the virtual disk. */
static void report(struct qcow *q, const char *out)
{
	struct qcow_info i;
	uint64_t alloc = 0, size = qcow_size(q);
	struct qcow_extent e;
	for (uint64_t off = 0; off < size && qcow_map(q, off, size - off, &e) == 0 && e.len;
	     off += e.len)
		if (e.allocated)
			alloc += e.len;
	if (qcow_info(q, &i) == 0)
		printf("%s: QCOW2 v%u, %llu bytes virtual, %u-byte clusters, "
		       "%llu bytes allocated\n",
		       out, i.version, (unsigned long long)i.size, 1u << i.cluster_bits,
		       (unsigned long long)alloc);
}

int main(int argc, char **argv)
{
	struct qcow_create_opts c = {0};
	int opt;
	while ((opt = getopt(argc, argv, "c:2")) != -1) {
		if (opt == 'c')
			c.cluster_bits = (unsigned)atoi(optarg);
		else if (opt == '2')
			c.version = 2;
		else
			optind = argc + 1;
	}
	if (optind != argc - 2) {
		fprintf(stderr, "usage: raw2qcow2 [-c CLUSTER_BITS] [-2] RAW OUT.qcow2\n");
		return 2;
	}
	const char *raw = argv[optind], *out = argv[optind + 1];

	int raw_fd = open(raw, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (raw_fd < 0 || fstat(raw_fd, &st) < 0)
		return fail("opening", raw, errno);
	c.size = (uint64_t)st.st_size;

	/* The image file: a host-file backend that owns (closes) the fd. */
	int fd = open(out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("creating", out, errno);
	struct qcow_backend be;
	int r = qcow_backend_fd(&be, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0) {
		close(fd);
		return fail("using", out, -r);
	}
	struct qcow_opts o = {.path = out, .log = log_line};
	struct qcow *q;
	r = qcow_create(&q, be, &c, &o);
	if (r < 0) {
		be.ops->close(be.h); /* on failure the backend stays ours */
		unlink(out);
		return fail("formatting", out, -r);
	}

	int rc = copy_in(q, raw_fd, c.size, raw);
	close(raw_fd);
	if (rc == 0 && (r = qcow_flush(q)) < 0)
		rc = fail("flushing", out, -r);
	if (rc == 0)
		report(q, out);
	r = qcow_close(q);
	if (rc == 0 && r < 0)
		rc = fail("closing", out, -r);
	return rc;
}
