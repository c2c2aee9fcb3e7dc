/*
 * fuzz_qcow.c - libFuzzer harness: qcow_open + a random operation sequence
 * on the memory backend, the image bytes taken from the input.
 *
 * Input layout (so that a plain qemu-made image with a 4-byte prefix is a
 * good seed):
 *   byte 0      mode: bit 0 read-only, bit 1 minimal caches (else 64 KiB), bit 2 the image is
 *               its own backing file (loops end at the chain-depth cap),
 *               bit 3 run qcow_invalidate mid-sequence
 *   byte 1      number of operations (0..63), 8 bytes each, taken from the
 *               END of the input (they survive mutations of the image)
 *   byte 2..3   reserved (seed for written data)
 *   rest        the image file, minus the trailing operation bytes
 *
 * Checks beyond the sanitizers: every failure is a negative errno value
 * that the library documents or a backend passes through; a read-only
 * open never changes a byte of the file; reads never return more than
 * asked; a write inside one cluster reads back as written, and a range
 * zeroed or discarded reads back as zeros, whatever the image claimed
 * (so metadata the image lies about is never overwritten by data or
 * handed out twice within the operation); the file never grows beyond a
 * cap (the backend refuses, so a hostile resize cannot exhaust memory).
 *
 * After a writable input, a full refcount walk (tests/unit/qt_check.c)
 * judges every operation, writes spanning many clusters included: an input
 * may already be inconsistent, so the image before and after are compared,
 * and the operations must not have made it worse:
 *   - no cluster may have more references beyond its stored refcount
 *     than it had in the input (a reference to a cluster past the end of
 *     the input file counts as one beyond its refcount there);
 *   - a cluster whose tables and data clusters (the references that are
 *     not compressed data, which only compressed data may share) were
 *     covered by its refcount in the input still are: a damaged
 *     compressed descriptor overlapping a data cluster must not lead to
 *     that cluster being released and handed out again;
 *   - every reference the operations created (an active L1 or L2 entry
 *     whose host cluster changed) names a cluster inside the file with a
 *     refcount of at least 1, so no later allocation can hand it out.
 * The walk is bounded: at most WALK_BUDGET L2 entries (an input needing
 * more is not judged), and only the clusters of the file after the
 * operations (at most FILE_CAP) are compared.
 *
 * Also built without libFuzzer (-DFUZZ_REPLAY) as a plain program that
 * replays the files named on its command line (tests/fuzz/regress).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow.h"
#include "qt.h"

#define FILE_CAP (64u << 20) /* the memory backend refuses to grow past this */
#define MAX_IO (256u << 10)  /* largest single read/write */
#define WALK_BUDGET (1u << 20) /* L2 entries one refcount walk may visit */

static void die(const char *what, long v)
{
	fprintf(stderr, "fuzz_qcow: %s (%ld)\n", what, v);
	abort();
}

/* ---- a capped view of the memory backend ---- */
struct capped {
	struct qcow_backend mem;
};

static ssize_t cap_pread(void *h, void *b, size_t n, uint64_t o)
{
	struct capped *c = h;
	return c->mem.ops->pread(c->mem.h, b, n, o);
}
static ssize_t cap_pwrite(void *h, const void *b, size_t n, uint64_t o)
{
	struct capped *c = h;
	if (o > FILE_CAP || n > FILE_CAP - o)
		return -ENOSPC;
	return c->mem.ops->pwrite(c->mem.h, b, n, o);
}
static int cap_flush(void *h)
{
	struct capped *c = h;
	return c->mem.ops->flush(c->mem.h);
}
static int cap_getsize(void *h, uint64_t *s)
{
	struct capped *c = h;
	return c->mem.ops->getsize(c->mem.h, s);
}
static int cap_truncate(void *h, uint64_t s)
{
	struct capped *c = h;
	if (s > FILE_CAP)
		return -ENOSPC;
	return c->mem.ops->truncate(c->mem.h, s);
}
static int cap_punch(void *h, uint64_t o, uint64_t n)
{
	struct capped *c = h;
	return c->mem.ops->punch(c->mem.h, o, n);
}
static void cap_close(void *h)
{
	struct capped *c = h;
	c->mem.ops->close(c->mem.h);
	free(c);
}
static const struct qcow_backend_ops cap_ops = {
	cap_pread, cap_pwrite, cap_flush, cap_getsize, cap_truncate, cap_punch, cap_close, NULL,
};

static int capped_new(struct qcow_backend *be, const uint8_t *d, size_t n)
{
	struct capped *c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	int r = qcow_backend_mem(&c->mem, d, n);
	if (r < 0) {
		free(c);
		return r;
	}
	*be = (struct qcow_backend){&cap_ops, c};
	return 0;
}

/* ---- the harness ---- */
struct ctx {
	const uint8_t *img;
	size_t img_len;
	bool self_backing;
};

static void log_line(void *arg, const char *msg)
{
	(void)arg;
	if (!msg[0] || strlen(msg) > 511)
		die("bad log line", 0);
}

static int open_side(void *arg, const char *name, enum qcow_file_kind kind, bool w,
		     struct qcow_backend *out)
{
	struct ctx *c = arg;
	(void)name, (void)w;
	if (kind != QCOW_FILE_BACKING || !c->self_backing)
		return -ENOENT;
	return capped_new(out, c->img, c->img_len);
}

static bool known_errno(long r)
{
	switch (-r) {
	case EINVAL: case EIO: case ENOTSUP: case EACCES: case EROFS: case EFBIG:
	case ENOSPC: case ENOMEM: case ENOENT: case ELOOP: case EPERM:
		return true;
	}
	return false;
}

static void check(long r, const char *what)
{
	if (r < 0 && !known_errno(r))
		die(what, r);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* An offset near the interesting places: start, cluster edges, the end. */
static uint64_t pick_off(uint64_t r, uint64_t size)
{
	uint64_t base;
	switch (r & 3) {
	case 0: base = size ? (r >> 8) % size : 0; break;
	case 1: base = ((r >> 8) & 0xffff) << 9; break;
	case 2: base = size > ((r >> 8) & 0xffff) ? size - ((r >> 8) & 0xffff) : 0; break;
	default: base = (r >> 8) & 0xfffff; break;
	}
	return base;
}

/*
 * What was just written must read back (unless the read itself reports an
 * error).  Writes spanning clusters are judged by the refcount walk
 * instead: two L2 entries of an image may name one host cluster with a
 * refcount of 1, and qemu writes such a cluster in place too, so what
 * reads back is the image's damage, not ours.  want == NULL: zeros.
 */
static void read_back(struct qcow *q, const uint8_t *want, size_t n, uint64_t off,
		      const char *what)
{
	static uint8_t *got;
	if (!got && !(got = malloc(MAX_IO)))
		return;
	if (n > MAX_IO)
		n = MAX_IO;
	ssize_t r = qcow_read(q, got, n, off);
	check(r, "read back");
	if (r != (ssize_t)n)
		return;
	for (size_t i = 0; i < n; i++)
		if (got[i] != (want ? want[i] : 0))
			die(what, (long)i);
}

static bool one_cluster(struct qcow *q, uint64_t off, size_t n)
{
	struct qcow_info in;
	return qcow_info(q, &in) == 0 && off >> in.cluster_bits == (off + n - 1) >> in.cluster_bits;
}

static void run_ops(struct qcow *q, const uint8_t *ops, unsigned nops, bool inval, uint8_t fill,
		    uint8_t *buf)
{
	for (unsigned i = 0; i < nops; i++) {
		uint64_t r = get64(ops + 8 * i);
		uint64_t size = qcow_size(q);
		uint64_t off = pick_off(r >> 8, size);
		/* mostly small requests; one in 16 up to MAX_IO */
		size_t len = (size_t)((r >> 40) % (r >> 60 ? 8192 : MAX_IO)) + 1;
		struct qcow_extent e;
		ssize_t n;
		switch (r & 15) {
		case 0: case 1: case 2: case 3:
			n = qcow_read(q, buf, len, off);
			check(n, "read");
			if (n > (ssize_t)len)
				die("read returned more than asked", n);
			break;
		case 4: case 5: case 6:
			memset(buf, fill + (int)i, len);
			n = qcow_write(q, buf, len, off);
			check(n, "write");
			if (n >= 0 && n != (ssize_t)len)
				die("short write", n);
			if (n > 0 && one_cluster(q, off, len))
				read_back(q, buf, len, off, "a write did not read back");
			break;
		case 7:
			n = qcow_zero(q, off, len, 0);
			check(n, "zero");
			if (n == 0)
				read_back(q, NULL, len, off, "a zeroed range did not read as zeros");
			break;
		case 8: {
			uint64_t dlen = len + ((r >> 20) & 0xfffff) * 512;
			n = qcow_zero(q, off, dlen, QCOW_ZERO_UNMAP);
			check(n, "discard");
			if (n == 0)
				read_back(q, NULL, dlen, off, "a discarded range did not read as zeros");
			break;
		}
		case 9: {
			/* grow or shrink around the current size, within the file cap */
			uint64_t d = ((r >> 12) & 0xffff) << 9;
			uint64_t ns = r & 0x10 ? size + d : (size > d ? size - d : 0);
			check(qcow_resize(q, ns), "resize");
			break;
		}
		case 10:
			check(qcow_flush(q), "flush");
			break;
		case 11:
			if (inval)
				check(qcow_invalidate(q), "invalidate");
			break;
		default:
			check(qcow_map(q, off, len, &e), "map");
			if (e.len > len)
				die("map longer than asked", (long)e.len);
			break;
		}
	}
}

/* ---- the refcount-walk oracle ---- */
static unsigned cluster_bits_of(const uint8_t *img, size_t len)
{
	if (len < 104)
		return 0;
	unsigned cb = (unsigned)get64(img + 16) & 0xffffffffu;
	return cb >= 9 && cb <= 21 ? cb : 0;
}

/* Clusters past `limit` (the end of the file after the operations) are
 * not compared: nothing there can be allocated. */
static bool walk(const uint8_t *img, size_t len, uint64_t limit, struct qt_counts *c)
{
	return qt_walk_counts(img, len, limit, WALK_BUDGET, c) == 0;
}

/* A cluster past the end of the file has no refcount, whatever is stored;
 * one past c->n is neither in the file nor referenced. */
static uint64_t stored(const struct qt_counts *c, uint64_t i)
{
	return i < c->file_clusters && i < c->n ? c->stored[i] : 0;
}

static uint64_t refs(const struct qt_counts *c, uint64_t i)
{
	return i < c->n ? c->refs[i] : 0;
}

static uint64_t whole(const struct qt_counts *c, uint64_t i)
{
	return i < c->n ? c->whole[i] : 0;
}

static uint64_t deficit(const struct qt_counts *c, uint64_t i)
{
	return refs(c, i) > stored(c, i) ? refs(c, i) - stored(c, i) : 0;
}

/* Entry i of the table at off (n entries of esz bytes), 0 outside the file. */
static uint64_t entry(const uint8_t *img, size_t len, uint64_t off, uint64_t n, uint64_t i,
		      unsigned esz)
{
	if (i >= n || off > len || (i + 1) * esz > len - off)
		return 0;
	return get64(img + off + i * esz);
}

struct side {
	const uint8_t *img;
	size_t len;
	uint64_t l1, l1_size;
	unsigned esz;
};

static uint64_t incompat_of(const uint8_t *img)
{
	return (get64(img) & 0xffffffffu) >= 3 ? get64(img + 72) : 0; /* v2: none */
}

static struct side side_of(const uint8_t *img, size_t len)
{
	struct side s = {img, len, get64(img + 40), get64(img + 32) & 0xffffffffu,
			 incompat_of(img) & 16 ? 16 : 8};
	return s;
}

/* A reference the operations created must name an in-use cluster. */
static void new_ref(const struct qt_counts *a, uint64_t hoff, const char *what)
{
	uint64_t c = hoff >> a->cb;
	if (c >= a->file_clusters || stored(a, c) == 0)
		die(what, (long)c);
}

#define OFF_MASK 0x00fffffffffffe00ull

static void judge_new_refs(const struct side *b, const struct side *a, const struct qt_counts *ac)
{
	uint64_t cs = 1ull << ac->cb, per_l2 = cs / a->esz, budget = WALK_BUDGET;
	for (uint64_t i = 0; i < a->l1_size && budget >= per_l2; i++) {
		uint64_t la = entry(a->img, a->len, a->l1, a->l1_size, i, 8) & OFF_MASK;
		uint64_t lb = entry(b->img, b->len, b->l1, b->l1_size, i, 8) & OFF_MASK;
		if (!la || (la & (cs - 1)))
			continue;
		if (la != lb)
			new_ref(ac, la, "a new L1 entry names a free cluster or one past EOF");
		budget -= per_l2;
		for (uint64_t j = 0; j < per_l2; j++) {
			uint64_t ea = entry(a->img, a->len, la, per_l2, j, a->esz);
			uint64_t eb = lb && !(lb & (cs - 1)) ? entry(b->img, b->len, lb, per_l2, j, b->esz) : 0;
			if (ea >> 62 & 1)
				continue; /* compressed: never written by the library */
			uint64_t oa = ea & OFF_MASK, ob = eb >> 62 & 1 ? 0 : eb & OFF_MASK;
			if (oa && oa != ob && !(oa & (cs - 1)))
				new_ref(ac, oa, "a new L2 entry names a free cluster or one past EOF");
		}
	}
}

/* The image after the operations, compared with the input (see the top). */
static void judge(const uint8_t *before, size_t blen, const uint8_t *after, size_t alen,
		  unsigned cb)
{
	struct qt_counts ac, bc;
	uint64_t limit = ((alen + (1ull << cb) - 1) >> cb) + 1;
	if (cluster_bits_of(after, alen) != cb || !walk(after, alen, limit, &ac))
		return;
	if (!walk(before, blen, limit, &bc)) {
		qt_counts_free(&ac);
		return;
	}
	for (uint64_t i = 0; i < ac.n; i++) {
		if (deficit(&ac, i) > deficit(&bc, i))
			die("a cluster has more references than its refcount than before", (long)i);
		if (whole(&bc, i) <= stored(&bc, i) && whole(&ac, i) > stored(&ac, i))
			die("a cluster's tables and data outnumber its refcount, unlike before", (long)i);
	}
	qt_counts_free(&bc);
	if (!(incompat_of(after) & 4)) { /* an external data file is not refcounted */
		struct side b = side_of(before, blen), a = side_of(after, alen);
		judge_new_refs(&b, &a, &ac);
	}
	qt_counts_free(&ac);
}

#ifdef FUZZ_REPLAY
/* FUZZ_DUMP=prefix: the replay writes prefix.before and prefix.after, the
 * image as given and as the operations left it, for qemu-img check. */
static void dump_one(const char *prefix, const char *sfx, const uint8_t *d, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s.%s", prefix, sfx);
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return;
	}
	bool ok = fwrite(d, 1, n, f) == n;
	if (fclose(f) || !ok)
		perror(path);
}

static void dump(const uint8_t *b, size_t bn, const uint8_t *a, size_t an)
{
	const char *p = getenv("FUZZ_DUMP");
	if (p && *p) {
		dump_one(p, "before", b, bn);
		dump_one(p, "after", a, an);
	}
}
#else
static void dump(const uint8_t *b, size_t bn, const uint8_t *a, size_t an)
{
	(void)b, (void)bn, (void)a, (void)an;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	if (size < 4)
		return 0;
	if (!buf && !(buf = malloc(MAX_IO)))
		return 0;
	unsigned mode = data[0], nops = data[1] & 63;
	uint8_t fill = data[2];
	size -= 4;
	data += 4;
	if ((size_t)nops * 8 > size)
		nops = (unsigned)(size / 8);
	const uint8_t *ops = data + size - (size_t)nops * 8;
	struct ctx c = {data, size - (size_t)nops * 8, mode & 4};
	struct qcow_opts o = {.flags = mode & 1 ? QCOW_RDONLY : 0, .path = "fuzz.qcow2",
			      .open_file = open_side, .log = log_line, .arg = &c};
	/* small caches: eviction paths run, and setting up a default-sized
	 * cache would cost more than the whole operation sequence */
	o.l2_cache_bytes = o.refblock_cache_bytes = mode & 2 ? 1 : 64u << 10;
	struct qcow_backend be;
	struct qcow *q;
	if (capped_new(&be, c.img, c.img_len) < 0)
		return 0;
	struct qcow_backend mem = ((struct capped *)be.h)->mem;
	int r = qcow_open(&q, be, &o);
	check(r, "open");
	if (r < 0) {
		size_t n;
		const void *d = qcow_backend_mem_data(mem, &n);
		if (n != c.img_len || (n && memcmp(d, c.img, n)))
			die("a failed open changed the file", 0);
		be.ops->close(be.h);
		return 0;
	}
	run_ops(q, ops, nops, mode & 8, fill, buf);
	/* the input (c.img: the backend works on a copy) against the result */
	unsigned cb = mode & 1 ? 0 : cluster_bits_of(c.img, c.img_len);
	if (cb) {
		size_t n;
		(void)qcow_flush(q); /* the deferred releases too; a failure leaves the file as is */
		const uint8_t *d = qcow_backend_mem_data(mem, &n);
		dump(c.img, c.img_len, d, n);
		judge(c.img, c.img_len, d, n, cb);
	}
	if (mode & 1) {
		size_t n;
		const void *d = qcow_backend_mem_data(mem, &n);
		if (n != c.img_len || (n && memcmp(d, c.img, n)))
			die("a read-only open changed the file", 0);
	}
	check(qcow_close(q), "close");
	return 0;
}

#ifdef FUZZ_REPLAY
/* Replay each file named on the command line once. */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		uint8_t *d = NULL;
		size_t n = 0, cap = 0, got;
		do {
			if (n == cap && !(d = realloc(d, cap = cap ? 2 * cap : 65536)))
				return 1;
			got = fread(d + n, 1, cap - n, f);
			n += got;
		} while (got);
		fclose(f);
		LLVMFuzzerTestOneInput(d, n);
		free(d);
		printf("replayed %s (%zu bytes)\n", argv[i], n);
	}
	return 0;
}
#endif
