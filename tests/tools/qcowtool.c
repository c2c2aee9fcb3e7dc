/*
 * qcowtool - a small command-line front end over libqcow for the
 * integration tests (qemu-img is the oracle they compare against).
 *
 *   qcowtool info IMG
 *   qcowtool cat IMG                       flat contents to stdout
 *   qcowtool create IMG SIZE [--cluster-bits N] [--version V]
 *                  [--refcount-bits R] [--extended-l2] [--lazy-refcounts]
 *   qcowtool map IMG                       "OFFSET LENGTH data|zero alloc|-"
 *   qcowtool verify IMG RAW                contents == RAW; ZERO extents are zero
 *   qcowtool write IMG OFF LEN BYTE        fill a range with BYTE
 *   qcowtool zero IMG OFF LEN [--unmap]
 *   qcowtool resize IMG SIZE
 *   qcowtool scatter IMG N SEED            N random 4 KiB writes; prints peak RSS (KiB)
 *   qcowtool mirror IMG RAW --seed S --ops N [--max-len L] [--max-size M]
 *                  [--no-resize]
 *       applies N random reads/writes/zero-writes/discards/resizes/flushes to
 *       IMG through the library and the same to the raw twin RAW (pwrite,
 *       fallocate, ftruncate), comparing every read and, periodically and
 *       at the end, the whole contents.  Exits 1 on the first mismatch.
 *
 * Sizes take K/M/G/T suffixes.  QCOWTOOL_TINY_CACHE=1 in the environment opens
 * images with minimal L2/refblock caches.  Exit status: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow.h"

static const char *prog_img;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "qcowtool: %s: ", prog_img ? prog_img : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: qcowtool info|cat|map IMG | verify IMG RAW\n"
			"       qcowtool create IMG SIZE [--cluster-bits N] [--version V] "
			"[--refcount-bits R] [--extended-l2] [--lazy-refcounts]\n"
			"       qcowtool write IMG OFF LEN BYTE | zero IMG OFF LEN [--unmap] | "
			"resize IMG SIZE | scatter IMG N SEED\n"
			"       qcowtool mirror IMG RAW --seed S --ops N [--max-len L] "
			"[--max-size M] [--no-resize]\n");
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage();
	int shift = 0;
	switch (*end) {
	case 'T': case 't': shift = 40; break;
	case 'G': case 'g': shift = 30; break;
	case 'M': case 'm': shift = 20; break;
	case 'K': case 'k': shift = 10; break;
	case 0: break;
	default: usage();
	}
	if (*end && end[1])
		usage();
	return (uint64_t)v << shift;
}

static void log_line(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "qcow: %s\n", msg);
}

/* Backing and data files named by the image: opened as plain host files. */
static int open_side_file(void *arg, const char *name, enum qcow_file_kind kind, bool writable,
			  struct qcow_backend *out)
{
	(void)arg;
	(void)kind;
	int fd = open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = qcow_backend_fd(out, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0)
		close(fd);
	return r;
}

static struct qcow *open_image(const char *path, bool rw)
{
	int fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		die("open: %s", strerror(errno));
	struct qcow_backend be;
	int r = qcow_backend_fd(&be, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0)
		die("qcow_backend_fd: %s", strerror(-r));
	struct qcow_opts o = { .flags = rw ? 0 : QCOW_RDONLY, .path = path, .log = log_line,
			       .open_file = open_side_file };
	if (getenv("QCOWTOOL_TINY_CACHE")) /* the library's minimum: constant eviction */
		o.l2_cache_bytes = o.refblock_cache_bytes = 1;
	struct qcow *q;
	r = qcow_open(&q, be, &o);
	if (r < 0)
		die("qcow_open: %s", strerror(-r));
	return q;
}

static void close_image(struct qcow *q)
{
	int r = qcow_close(q);
	if (r < 0)
		die("qcow_close: %s", strerror(-r));
}

static int cmd_info(struct qcow *q)
{
	struct qcow_info i;
	int r = qcow_info(q, &i);
	if (r < 0)
		die("qcow_info: %s", strerror(-r));
	printf("size %" PRIu64 "\nversion %u\ncluster_bits %u\nrefcount_bits %u\n"
	       "extended_l2 %d\nread_only %d\ncorrupt %d\ndirty %d\ncompression_type %u\n"
	       "snapshots %u\nbacking_file %s\nbacking_fmt %s\n",
	       i.size, i.version, i.cluster_bits, i.refcount_bits, i.extended_l2, i.read_only,
	       i.corrupt, i.dirty, i.compression_type, i.nb_snapshots, i.backing_file,
	       i.backing_fmt);
	return 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to stdout: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static int cmd_cat(struct qcow *q)
{
	size_t chunk = 4 << 20;
	char *buf = malloc(chunk);
	uint64_t size = qcow_size(q), off = 0;
	while (off < size) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		ssize_t r = qcow_read(q, buf, n, off);
		if (r < 0)
			die("qcow_read(%" PRIu64 ", %zu): %s", off, n, strerror((int)-r));
		if ((size_t)r != n)
			die("qcow_read(%" PRIu64 ", %zu): short read %zd", off, n, r);
		write_all(1, buf, n);
		off += n;
	}
	free(buf);
	return 0;
}

static int cmd_map(struct qcow *q)
{
	uint64_t size = qcow_size(q), off = 0;
	while (off < size) {
		struct qcow_extent e;
		int r = qcow_map(q, off, size - off, &e);
		if (r < 0)
			die("qcow_map(%" PRIu64 "): %s", off, strerror(-r));
		if (e.len == 0 || e.len > size - off)
			die("qcow_map(%" PRIu64 "): bad length %" PRIu64, off, e.len);
		printf("%" PRIu64 " %" PRIu64 " %s %s\n", off, e.len,
		       e.kind == QCOW_EXT_ZERO ? "zero" : "data", e.allocated ? "alloc" : "-");
		off += e.len;
	}
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	if (argc < 4)
		usage();
	struct qcow_create_opts c = { .size = parse_size(argv[3]) };
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--cluster-bits") && i + 1 < argc)
			c.cluster_bits = (unsigned)parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--version") && i + 1 < argc)
			c.version = (unsigned)parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--refcount-bits") && i + 1 < argc)
			c.refcount_bits = (unsigned)parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--extended-l2"))
			c.extended_l2 = true;
		else if (!strcmp(argv[i], "--lazy-refcounts"))
			c.lazy_refcounts = true;
		else
			usage();
	}
	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("create: %s", strerror(errno));
	struct qcow_backend be;
	int r = qcow_backend_fd(&be, fd, qcow_sysio_default(), QCOW_FD_OWN);
	if (r < 0)
		die("qcow_backend_fd: %s", strerror(-r));
	struct qcow_opts o = { .path = argv[2], .log = log_line };
	struct qcow *q;
	r = qcow_create(&q, be, &c, &o);
	if (r < 0)
		die("qcow_create: %s", strerror(-r));
	close_image(q);
	return 0;
}

/* ---- mirror ------------------------------------------------------------- */

struct mirror {
	struct qcow *q;
	int raw;
	uint64_t size, max_size, max_len, rng, op;
	unsigned cs;
	bool resize;
	uint8_t *buf, *buf2;
};

static uint64_t rnd(struct mirror *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(struct mirror *m, uint64_t n) { return n ? rnd(m) % n : 0; }

static void raw_pread(struct mirror *m, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(m->raw, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("raw pread: %s", strerror(errno));
		if (r == 0) { /* past the twin's end: zeros */
			memset((char *)buf + done, 0, n - done);
			break;
		}
		done += (size_t)r;
	}
}

static void raw_pwrite(struct mirror *m, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(m->raw, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("raw pwrite: %s", strerror(errno));
		done += (size_t)r;
	}
}

static void raw_zero(struct mirror *m, uint64_t off, uint64_t n, bool punch)
{
	int mode = punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
			 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	if (fallocate(m->raw, mode, (off_t)off, (off_t)n) == 0)
		return;
	memset(m->buf2, 0, n);
	raw_pwrite(m, m->buf2, n, off);
}

static uint64_t pick_off(struct mirror *m, uint64_t limit)
{
	uint64_t r = below(m, 10), cs = m->cs;
	if (!limit)
		return 0;
	if (r < 5)
		return below(m, limit);
	if (r < 8)
		return below(m, (limit + cs - 1) / cs) * cs % limit;
	uint64_t o = (below(m, limit / cs + 1) + 1) * cs - 1 - below(m, 700);
	if (r == 9)
		o = limit - 1 - below(m, limit < 3000 ? limit : 3000);
	return o < limit ? o : limit - 1;
}

static uint64_t pick_len(struct mirror *m)
{
	uint64_t r = below(m, 4);
	if (r < 2)
		return 1 + below(m, m->max_len);
	if (r == 2) {
		uint64_t n = (1 + below(m, 4)) * m->cs;
		return n < m->max_len ? n : m->max_len;
	}
	return 1 + below(m, 600 < m->max_len ? 600 : m->max_len);
}

static void compare(struct mirror *m, uint64_t off, uint64_t len, const char *what)
{
	uint64_t want = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
	memset(m->buf, 0xa5, len);
	ssize_t r = qcow_read(m->q, m->buf, len, off);
	if (r < 0 || (uint64_t)r != want)
		die("op %" PRIu64 " (%s): qcow_read(%#" PRIx64 ", %" PRIu64 ") = %zd, want %" PRIu64
		    " (size %" PRIu64 ")", m->op, what, off, len, r, want, m->size);
	raw_pread(m, m->buf2, want, off);
	for (uint64_t i = 0; i < want; i++)
		if (m->buf[i] != m->buf2[i])
			die("op %" PRIu64 " (%s): mismatch at %#" PRIx64 ": image %#x, raw %#x "
			    "(read %#" PRIx64 "+%" PRIu64 ")", m->op, what, off + i, m->buf[i],
			    m->buf2[i], off, len);
}

static void compare_all(struct mirror *m)
{
	if (qcow_size(m->q) != m->size)
		die("op %" PRIu64 ": qcow_size %" PRIu64 ", want %" PRIu64, m->op, qcow_size(m->q),
		    m->size);
	for (uint64_t off = 0; off < m->size; off += m->max_len)
		compare(m, off, m->max_len, "full compare");
	/* extents claiming zero must hold zeros in the twin */
	for (uint64_t off = 0; off < m->size;) {
		struct qcow_extent e;
		int r = qcow_map(m->q, off, m->size - off, &e);
		if (r < 0 || e.len == 0 || e.len > m->size - off)
			die("op %" PRIu64 ": qcow_map(%#" PRIx64 ") = %d, len %" PRIu64, m->op, off,
			    r, e.len);
		if (e.kind == QCOW_EXT_ZERO)
			for (uint64_t o = off; o < off + e.len; o += m->max_len) {
				uint64_t n = off + e.len - o < m->max_len ? off + e.len - o : m->max_len;
				raw_pread(m, m->buf2, n, o);
				for (uint64_t i = 0; i < n; i++)
					if (m->buf2[i])
						die("op %" PRIu64 ": qcow_map: [%#" PRIx64 "+%" PRIu64
						    ") is ZERO but raw byte %#" PRIx64 " is %#x",
						    m->op, off, e.len, o + i, m->buf2[i]);
			}
		off += e.len;
	}
}

/* QT_TRACE=1: print every mutating op to stderr (to cut down repros). */
static void trace(struct mirror *m, const char *op, uint64_t a, uint64_t b)
{
	static int on = -1;
	if (on < 0)
		on = getenv("QT_TRACE") != NULL;
	if (on)
		fprintf(stderr, "op %" PRIu64 ": %s %" PRIu64 " %" PRIu64 "\n", m->op, op, a, b);
}

static void mirror_step(struct mirror *m)
{
	uint64_t k = below(m, 100), off, len;
	int r;
	if (k < 35 && m->size) {
		off = pick_off(m, m->size);
		len = pick_len(m);
		if (len > m->size - off)
			len = m->size - off;
		uint64_t f = below(m, 5), seed = rnd(m);
		for (uint64_t i = 0; i < len; i++)
			m->buf[i] = f == 0 ? 0 : f == 1 ? (uint8_t)seed : (uint8_t)((seed >> (i % 7 * 8)) + i * 131);
		trace(m, "write", off, len);
		ssize_t w = qcow_write(m->q, m->buf, len, off);
		if (w != (ssize_t)len)
			die("op %" PRIu64 ": qcow_write(%#" PRIx64 ", %" PRIu64 ") = %zd", m->op, off,
			    len, w);
		raw_pwrite(m, m->buf, len, off);
		if (below(m, 4) == 0)
			compare(m, off, len, "read back a write");
	} else if (k < 55) {
		off = pick_off(m, m->size + 1);
		compare(m, off, pick_len(m), "read");
	} else if (k < 75 && m->size) {
		off = pick_off(m, m->size);
		len = pick_len(m);
		if (below(m, 3) == 0) {
			off -= off % m->cs;
			len = (len + m->cs - 1) / m->cs * m->cs;
		}
		if (len > m->size - off)
			len = m->size - off;
		unsigned flags = k < 65 ? 0 : QCOW_ZERO_UNMAP;
		trace(m, flags ? "discard" : "zero", off, len);
		r = qcow_zero(m->q, off, len, flags);
		if (r < 0)
			die("op %" PRIu64 ": qcow_zero(%#" PRIx64 ", %" PRIu64 ", %u) = %s", m->op, off,
			    len, flags, strerror(-r));
		raw_zero(m, off, len, flags);
		if (below(m, 3) == 0)
			compare(m, off > 100 ? off - 100 : 0, len + 200 < m->max_len ? len + 200 : m->max_len,
				"read around a zero-write");
	} else if (k < 79 && m->resize) {
		uint64_t ns = (1 + below(m, m->max_size / 512)) * 512;
		trace(m, "resize", ns, 0);
		r = qcow_resize(m->q, ns);
		if (r < 0)
			die("op %" PRIu64 ": qcow_resize(%" PRIu64 " -> %" PRIu64 ") = %s", m->op,
			    m->size, ns, strerror(-r));
		if (ftruncate(m->raw, (off_t)ns) < 0)
			die("raw ftruncate: %s", strerror(errno));
		m->size = ns;
		compare(m, ns > 5000 ? ns - 5000 : 0, 10000 < m->max_len ? 10000 : m->max_len,
			"read around the new end");
	} else if (k < 85) {
		r = qcow_flush(m->q);
		if (r < 0)
			die("op %" PRIu64 ": qcow_flush = %s", m->op, strerror(-r));
	} else if (k < 88 && m->size) {
		off = m->size - below(m, m->size < 300 ? m->size : 300);
		memset(m->buf, 0x77, 700);
		ssize_t w = qcow_write(m->q, m->buf, 700, off);
		if (w != -ENOSPC)
			die("op %" PRIu64 ": qcow_write(%#" PRIx64 ", 700) past the end (size %" PRIu64
			    ") = %zd, want -ENOSPC", m->op, off, m->size, w);
		compare(m, off > 700 ? off - 700 : 0, 1400, "read after a refused write");
	}
	if (m->op % 500 == 499)
		compare_all(m);
}

static int cmd_mirror(int argc, char **argv)
{
	if (argc < 4)
		usage();
	struct mirror m = { .resize = true };
	uint64_t ops = 1000, seed = 1;
	m.max_len = 0;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--max-len") && i + 1 < argc)
			m.max_len = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--max-size") && i + 1 < argc)
			m.max_size = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--no-resize"))
			m.resize = false;
		else
			usage();
	}
	m.q = open_image(argv[2], true);
	m.raw = open(argv[3], O_RDWR | O_CLOEXEC);
	if (m.raw < 0)
		die("open %s: %s", argv[3], strerror(errno));
	struct qcow_info info;
	if (qcow_info(m.q, &info) < 0)
		die("qcow_info failed");
	m.cs = 1u << info.cluster_bits;
	m.size = qcow_size(m.q);
	struct stat st;
	if (fstat(m.raw, &st) < 0 || (uint64_t)st.st_size != m.size)
		die("raw twin %s is %lld bytes, image is %" PRIu64, argv[3], (long long)st.st_size,
		    m.size);
	if (!m.max_len)
		m.max_len = 4ull * m.cs + 1000;
	if (m.max_len < 10000)
		m.max_len = 10000;
	if (!m.max_size)
		m.max_size = 2 * m.size;
	if (m.max_size < 512)
		m.max_size = 512;
	m.rng = seed * 0x2545f4914f6cdd1dull + 7;
	m.buf = malloc(m.max_len);
	m.buf2 = malloc(m.max_len);
	for (m.op = 0; m.op < ops; m.op++)
		mirror_step(&m);
	compare_all(&m);
	close_image(m.q);
	free(m.buf);
	free(m.buf2);
	close(m.raw);
	return 0;
}

/* verify IMG RAW: contents equal RAW, and every ZERO extent is zero in RAW. */
static int cmd_verify(struct qcow *q, const char *rawpath)
{
	struct mirror m = { .q = q };
	m.raw = open(rawpath, O_RDONLY | O_CLOEXEC);
	if (m.raw < 0)
		die("open %s: %s", rawpath, strerror(errno));
	struct stat st;
	m.size = qcow_size(q);
	if (fstat(m.raw, &st) < 0 || (uint64_t)st.st_size != m.size)
		die("%s is %lld bytes, image is %" PRIu64, rawpath, (long long)st.st_size, m.size);
	m.max_len = 1 << 20;
	m.buf = malloc(m.max_len);
	m.buf2 = malloc(m.max_len);
	compare_all(&m);
	free(m.buf);
	free(m.buf2);
	close(m.raw);
	return 0;
}

/* Peak resident set size of this process in KiB (VmHWM). */
static long peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* scatter IMG N SEED: N 4 KiB writes at random offsets over the whole
 * virtual size, each read back; prints the peak RSS in KiB. */
static int cmd_scatter(struct qcow *q, uint64_t n, uint64_t seed)
{
	struct mirror m = { .q = q, .rng = seed };
	uint64_t size = qcow_size(q);
	char buf[4096], rd[4096];
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = below(&m, size / 4096) * 4096;
		memset(buf, (int)(i % 251 + 1), sizeof buf);
		ssize_t w = qcow_write(q, buf, sizeof buf, off);
		if (w != (ssize_t)sizeof buf)
			die("scatter write %" PRIu64 " at %#" PRIx64 " = %zd", i, off, w);
		if (qcow_read(q, rd, sizeof rd, off) != (ssize_t)sizeof rd || memcmp(buf, rd, sizeof rd))
			die("scatter read back %" PRIu64 " at %#" PRIx64, i, off);
	}
	int r = qcow_flush(q);
	if (r < 0)
		die("qcow_flush: %s", strerror(-r));
	printf("%ld\n", peak_rss_kib());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	const char *cmd = argv[1];
	prog_img = argv[2];
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "mirror"))
		return cmd_mirror(argc, argv);
	if (!strcmp(cmd, "verify") && argc == 4) {
		struct qcow *q = open_image(argv[2], false);
		cmd_verify(q, argv[3]);
		close_image(q);
		return 0;
	}
	if (!strcmp(cmd, "info") || !strcmp(cmd, "cat") || !strcmp(cmd, "map")) {
		struct qcow *q = open_image(argv[2], false);
		int r = !strcmp(cmd, "info") ? cmd_info(q) : !strcmp(cmd, "cat") ? cmd_cat(q) : cmd_map(q);
		close_image(q);
		return r;
	}
	struct qcow *q = NULL;
	int r = 0;
	if (!strcmp(cmd, "write") && argc == 6) {
		uint64_t off = parse_size(argv[3]), len = parse_size(argv[4]);
		char *buf = malloc(len ? len : 1);
		memset(buf, (int)parse_size(argv[5]), len);
		q = open_image(argv[2], true);
		ssize_t w = qcow_write(q, buf, len, off);
		if (w != (ssize_t)len)
			die("qcow_write = %zd", w);
		free(buf);
	} else if (!strcmp(cmd, "zero") && (argc == 5 || argc == 6)) {
		q = open_image(argv[2], true);
		r = qcow_zero(q, parse_size(argv[3]), parse_size(argv[4]),
			      argc == 6 && !strcmp(argv[5], "--unmap") ? QCOW_ZERO_UNMAP : 0);
		if (r < 0)
			die("qcow_zero: %s", strerror(-r));
	} else if (!strcmp(cmd, "scatter") && argc == 5) {
		q = open_image(argv[2], true);
		cmd_scatter(q, parse_size(argv[3]), parse_size(argv[4]));
	} else if (!strcmp(cmd, "resize") && argc == 4) {
		q = open_image(argv[2], true);
		r = qcow_resize(q, parse_size(argv[3]));
		if (r < 0)
			die("qcow_resize: %s", strerror(-r));
	} else {
		usage();
	}
	close_image(q);
	return 0;
}
