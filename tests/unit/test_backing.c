/*
 * test_backing.c - backing chains through the caller's open_file callback
 * (in memory), qcow_as_backend, and qcow_invalidate.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "qt.h"

#define BSIZE (1u << 20)

static uint8_t *base_bytes;  /* base image file (qcow2 or raw) */
static size_t base_len;
static struct qcow_backend base_be; /* the backend handed to the library */
static int opens, open_result;
static char opened_name[1100];
static enum qcow_file_kind opened_kind;
static bool opened_writable;

static int open_base(void *arg, const char *name, enum qcow_file_kind kind, bool writable,
		     struct qcow_backend *out)
{
	(void)arg;
	opens++;
	snprintf(opened_name, sizeof opened_name, "%s", name);
	opened_kind = kind;
	opened_writable = writable;
	if (open_result)
		return open_result;
	int r = qcow_backend_mem(out, base_bytes, base_len);
	base_be = *out;
	return r;
}

static void make_qcow2_base(void)
{
	struct qcow_create_opts c = { .size = BSIZE, .cluster_bits = 12 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t *buf = malloc(BSIZE);
	qt_fill_pattern(buf, BSIZE, 31337);
	memset(buf + 300000, 0, 100000); /* a zero stretch in the base */
	cr_assert_eq(qcow_write(q, buf, BSIZE, 0), BSIZE);
	cr_assert_eq(qcow_zero(q, 300000, 100000, QCOW_ZERO_UNMAP), 0);
	cr_assert_eq(qcow_checkpoint(q), 0);
	free(base_bytes);
	base_bytes = qt_mem_copy(be, &base_len);
	qcow_close(q);
	free(buf);
}

static void make_raw_base(void)
{
	free(base_bytes);
	base_len = BSIZE;
	base_bytes = malloc(BSIZE);
	qt_fill_pattern(base_bytes, BSIZE, 31337);
	memset(base_bytes + 300000, 0, 100000);
}

static struct qcow *make_overlay(const char *fmt, unsigned cb, unsigned version,
				 struct qcow_backend *be)
{
	struct qcow_create_opts c = { .size = BSIZE, .cluster_bits = cb, .version = version,
				      .backing_file = "base.img", .backing_fmt = fmt };
	struct qcow_opts o = { .open_file = open_base };
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(be, NULL, 0), 0);
	opens = 0;
	int r = qcow_create(&q, *be, &c, &o);
	cr_assert_eq(r, 0, "create overlay (%s) = %d", fmt, r);
	return q;
}

static void overlay_case(const char *fmt, unsigned cb, unsigned version)
{
	if (!strcmp(fmt, "raw"))
		make_raw_base();
	else
		make_qcow2_base();
	uint8_t *orig = malloc(base_len);
	memcpy(orig, base_bytes, base_len);
	struct qcow_backend be;
	struct qcow *q = make_overlay(fmt, cb, version, &be);
	cr_expect_eq(opens, 1, "open_file called %d times", opens);
	cr_expect(strstr(opened_name, "base.img"), "open_file got '%s'", opened_name);
	cr_expect_eq(opened_kind, QCOW_FILE_BACKING);
	cr_expect(!opened_writable, "backing file opened writable");
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_expect_str_eq(info.backing_file, "base.img");
	cr_expect_str_eq(info.backing_fmt, fmt);

	/* flat = what the overlay must read */
	uint8_t *flat = malloc(BSIZE);
	qt_fill_pattern(flat, BSIZE, 31337);
	memset(flat + 300000, 0, 100000);
	struct qt_mirror m;
	qt_mirror_init(&m, q, be, BSIZE, 2 * BSIZE, 5);
	memcpy(m.flat, flat, BSIZE);
	cr_assert(!qt_mirror_verify(&m), "overlay (%s) before writes: %s", fmt, m.err);
	struct qcow_extent e;
	cr_assert_eq(qcow_map(q, 0, BSIZE, &e), 0);
	cr_expect_eq(e.kind, QCOW_EXT_DATA, "backing data mapped as %d", e.kind);
	cr_expect(!e.allocated, "backing data counted as allocated in the overlay");

	/* write-zeroes and discards read as zeros, never as backing data */
	cr_assert_eq(qcow_zero(q, 4096, 8192, 0), 0);
	cr_assert_eq(qcow_zero(q, 20000, 30000, QCOW_ZERO_UNMAP), 0);
	memset(m.flat + 4096, 0, 8192);
	memset(m.flat + 20000, 0, 30000);
	cr_assert(!qt_mirror_verify(&m), "overlay (%s) zero/discard: %s", fmt, m.err);
	m.resize = true;
	m.check_every = true;
	for (int i = 0; i < 1500; i++)
		cr_assert(!qt_mirror_step(&m), "overlay (%s, cb %u, v%u): %s", fmt, cb, version,
			  m.err);
	cr_assert(!qt_mirror_verify(&m), "overlay (%s): %s", fmt, m.err);
	const char *msg = qt_check_open(q, be, false);
	cr_expect(!msg, "overlay: %s", msg);
	size_t n;
	const void *d = qcow_backend_mem_data(base_be, &n);
	cr_expect(n == base_len && !memcmp(d, orig, n), "backing file modified");
	qt_mirror_fini(&m);
	qcow_close(q);
	free(orig);
	free(flat);
}

Test(backing, qcow2_base_64k) { overlay_case("qcow2", 16, 3); }
Test(backing, qcow2_base_4k) { overlay_case("qcow2", 12, 3); }
Test(backing, qcow2_base_512_v2) { overlay_case("qcow2", 9, 2); }
Test(backing, raw_base_4k) { overlay_case("raw", 12, 3); }
Test(backing, raw_base_64k_v2) { overlay_case("raw", 16, 2); }

/* Shrinking and growing an overlay must not uncover backing data. */
static void resize_case(unsigned version)
{
	make_qcow2_base();
	struct qcow_backend be;
	struct qcow *q = make_overlay("qcow2", 12, version, &be);
	cr_assert_eq(qcow_resize(q, BSIZE / 2 + 512), 0);
	cr_assert_eq(qcow_resize(q, BSIZE), 0);
	uint8_t *buf = malloc(BSIZE);
	cr_assert_eq(qcow_read(q, buf, BSIZE, 0), BSIZE);
	uint8_t *want = malloc(BSIZE);
	qt_fill_pattern(want, BSIZE, 31337);
	memset(want + 300000, 0, 100000);
	memset(want + BSIZE / 2 + 512, 0, BSIZE / 2 - 512);
	for (size_t i = 0; i < BSIZE; i++)
		cr_assert_eq(buf[i], want[i], "v%u overlay shrunk and regrown: byte %zu: %#x want %#x",
			     version, i, buf[i], want[i]);
	free(buf);
	free(want);
	qcow_close(q);
}

Test(backing, resize_does_not_expose_backing_v3) { resize_case(3); }
Test(backing, resize_does_not_expose_backing_v2) { resize_case(2); }

static uint8_t *overlay_bytes(size_t *len)
{
	make_qcow2_base();
	struct qcow_backend be;
	struct qcow *q = make_overlay("qcow2", 16, 3, &be);
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *b = qt_mem_copy(be, len);
	qcow_close(q);
	return b;
}

Test(backing, refusals)
{
	size_t len;
	uint8_t *img = overlay_bytes(&len);
	struct qcow_backend be;
	struct qcow *q = NULL;
	/* no opener: refused */
	cr_assert_eq(qcow_backend_mem(&be, img, len), 0);
	int r = qcow_open(&q, be, NULL);
	cr_expect_lt(r, 0, "overlay opened without an open_file callback");
	if (r == 0)
		qcow_close(q);
	else
		be.ops->close(be.h);
	/* QCOW_NO_BACKING: refused without asking */
	struct qcow_opts o = { .flags = QCOW_NO_BACKING, .open_file = open_base };
	cr_assert_eq(qcow_backend_mem(&be, img, len), 0);
	opens = 0;
	r = qcow_open(&q, be, &o);
	cr_expect_lt(r, 0, "QCOW_NO_BACKING opened an overlay");
	cr_expect_eq(opens, 0, "QCOW_NO_BACKING still called open_file");
	if (r == 0)
		qcow_close(q);
	else
		be.ops->close(be.h);
	/* the caller's refusal is passed through */
	o.flags = 0;
	open_result = -EPERM;
	cr_assert_eq(qcow_backend_mem(&be, img, len), 0);
	r = qcow_open(&q, be, &o);
	cr_expect_eq(r, -EPERM, "open_file refusal became %d", r);
	if (r == 0)
		qcow_close(q);
	else
		be.ops->close(be.h);
	open_result = 0;
	free(img);
}

/* A backing chain that loops back on itself must not recurse forever. */
static int open_self(void *arg, const char *name, enum qcow_file_kind kind, bool writable,
		     struct qcow_backend *out)
{
	(void)name, (void)kind, (void)writable;
	struct { uint8_t *b; size_t n; } *self = arg;
	opens++;
	return qcow_backend_mem(out, self->b, self->n);
}

Test(backing, loop_is_refused)
{
	size_t len;
	uint8_t *img = overlay_bytes(&len);
	struct { uint8_t *b; size_t n; } self = { img, len };
	struct qcow_opts o = { .open_file = open_self, .arg = &self };
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, img, len), 0);
	opens = 0;
	int r = qcow_open(&q, be, &o);
	cr_expect_lt(r, 0, "self-referencing chain opened");
	cr_expect_lt(opens, 100, "open_file called %d times", opens);
	if (r == 0)
		qcow_close(q);
	else
		be.ops->close(be.h);
	free(img);
}

Test(backing, as_backend_view)
{
	struct qcow_create_opts c = { .size = 3000000, .cluster_bits = 12 };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	uint8_t buf[10000];
	qt_fill_pattern(buf, sizeof buf, 3);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 123456), (ssize_t)sizeof buf);
	struct qcow_backend v = qcow_as_backend(q);
	cr_assert(v.ops && v.ops->pread && v.ops->getsize && v.ops->close);
	uint64_t size = 0;
	cr_assert_eq(v.ops->getsize(v.h, &size), 0);
	cr_expect_eq(size, 3000000);
	uint8_t rd[10000];
	cr_assert_eq(v.ops->pread(v.h, rd, sizeof rd, 123456), (ssize_t)sizeof rd);
	cr_expect(!memcmp(rd, buf, sizeof rd));
	cr_expect_eq(v.ops->pread(v.h, rd, 100, 3000000 - 40), 40, "short read at the end");
	cr_expect_eq(v.ops->pread(v.h, rd, 100, 3000000), 0);
	cr_expect_lt(v.ops->pwrite(v.h, buf, 10, 0), 0, "write through a read-only view");
	v.ops->close(v.h); /* closes the image (ASan reports a leak otherwise) */
}

/* ---- qcow_invalidate: two images on one shared buffer ------------------ */

struct shared {
	uint8_t *b;
	size_t n;
	pthread_mutex_t mu;
};

static ssize_t s_pread(void *h, void *buf, size_t n, uint64_t off)
{
	struct shared *s = h;
	if (off >= s->n)
		return 0;
	size_t k = s->n - off < n ? s->n - off : n;
	memcpy(buf, s->b + off, k);
	return (ssize_t)k;
}

static ssize_t s_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	struct shared *s = h;
	if (off + n > s->n) {
		s->b = realloc(s->b, off + n);
		memset(s->b + s->n, 0, off + n - s->n);
		s->n = off + n;
	}
	memcpy(s->b + off, buf, n);
	return (ssize_t)n;
}

static int s_flush(void *h) { (void)h; return 0; }
static int s_getsize(void *h, uint64_t *size) { *size = ((struct shared *)h)->n; return 0; }
static int s_truncate(void *h, uint64_t size)
{
	struct shared *s = h;
	if (size > s->n) {
		s->b = realloc(s->b, size);
		memset(s->b + s->n, 0, size - s->n);
	}
	s->n = size;
	return 0;
}
static void s_close(void *h) { (void)h; }
static const struct qcow_backend_ops shared_ops = {
	s_pread, s_pwrite, s_flush, s_getsize, s_truncate, NULL, s_close, NULL,
};

Test(invalidate, sees_other_writer)
{
	struct qcow_create_opts c = { .size = 4 << 20, .cluster_bits = 12 };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	cr_assert_eq(qcow_checkpoint(q), 0);
	struct shared s = { 0 };
	s.b = qt_mem_copy(mbe, &s.n);
	qcow_close(q);
	struct qcow_backend be = { &shared_ops, &s };
	struct qcow *w = NULL, *r = NULL;
	struct qcow_opts ro = { .flags = QCOW_RDONLY };
	cr_assert_eq(qcow_open(&w, be, NULL), 0);
	cr_assert_eq(qcow_open(&r, be, &ro), 0);
	uint8_t buf[8192], rd[8192];
	cr_assert_eq(qcow_read(r, rd, sizeof rd, 1 << 20), (ssize_t)sizeof rd); /* caches L2 */
	qt_fill_pattern(buf, sizeof buf, 8);
	cr_assert_eq(qcow_write(w, buf, sizeof buf, 1 << 20), (ssize_t)sizeof buf);
	cr_assert_eq(qcow_resize(w, 8 << 20), 0);
	cr_assert_eq(qcow_flush(w), 0);
	cr_assert_eq(qcow_invalidate(r), 0);
	cr_expect_eq(qcow_size(r), 8 << 20, "size not re-read");
	cr_assert_eq(qcow_read(r, rd, sizeof rd, 1 << 20), (ssize_t)sizeof rd);
	cr_expect(!memcmp(rd, buf, sizeof rd), "stale data after qcow_invalidate");
	qcow_close(r);
	qcow_close(w);
	free(s.b);
}

/* Minimal repro found by the overlay mirror (v2, 512 B clusters): grow past
 * the base, shrink, grow again; the regrown area must read as zeros. */
static void regrow_case(unsigned version, unsigned cb)
{
	make_qcow2_base();
	struct qcow_backend be;
	struct qcow *q = make_overlay("qcow2", cb, version, &be);
	cr_assert_eq(qcow_resize(q, 0x1c7e00), 0);
	cr_assert_eq(qcow_resize(q, 0x47600), 0);
	cr_assert_eq(qcow_resize(q, 0xa4a00), 0);
	uint8_t buf[4096];
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 0xa3000), (ssize_t)sizeof buf);
	for (size_t i = 0; i < sizeof buf; i++)
		cr_assert_eq(buf[i], 0, "v%u cb %u: byte %#zx after grow/shrink/grow is %#x", version,
			     cb, 0xa3000 + i, buf[i]);
	qcow_close(q);
}

Test(backing, regrow_past_base_v2_512) { regrow_case(2, 9); }
Test(backing, regrow_past_base_v3_512) { regrow_case(3, 9); }
Test(backing, regrow_past_base_v2_4k) { regrow_case(2, 12); }

/* A backing file shorter than the overlay and not cluster aligned (raw,
 * 1000003 bytes): past its end the overlay reads zeros, also inside the
 * cluster that straddles the end and after copy-on-write of that cluster. */
static void short_base_case(unsigned cb, bool ext)
{
	free(base_bytes);
	base_len = 1000003;
	base_bytes = malloc(base_len);
	qt_fill_pattern(base_bytes, base_len, 4040);
	struct qcow_create_opts c = { .size = 2 * BSIZE, .cluster_bits = cb, .extended_l2 = ext,
				      .backing_file = "base.img", .backing_fmt = "raw" };
	struct qcow_opts o = { .open_file = open_base };
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, NULL, 0), 0);
	int r = qcow_create(&q, be, &c, &o);
	cr_assert_eq(r, 0, "create = %d", r);
	struct qt_mirror m;
	qt_mirror_init(&m, q, be, 2 * BSIZE, 2 * BSIZE, 17);
	memcpy(m.flat, base_bytes, base_len);
	cr_assert(!qt_mirror_verify(&m), "short base cb %u%s: %s", cb, ext ? " ext" : "", m.err);
	uint8_t b[10];
	memset(b, 0x71, sizeof b);
	cr_assert_eq(qcow_write(q, b, sizeof b, 999990), 10); /* COW of the straddling cluster */
	memcpy(m.flat + 999990, b, sizeof b);
	cr_assert(!qt_mirror_verify(&m), "short base cb %u%s after COW: %s", cb, ext ? " ext" : "",
		  m.err);
	m.check_every = true;
	for (int i = 0; i < 800; i++)
		cr_assert(!qt_mirror_step(&m), "short base cb %u%s: %s", cb, ext ? " ext" : "", m.err);
	cr_assert(!qt_mirror_verify(&m), "short base: %s", m.err);
	qt_mirror_fini(&m);
	qcow_close(q);
}

Test(backing, short_unaligned_raw_base_64k) { short_base_case(16, false); }
Test(backing, short_unaligned_raw_base_512) { short_base_case(9, false); }
Test(backing, short_unaligned_raw_base_ext_l2) { short_base_case(16, true); }
Test(backing, qcow2_base_ext_l2_overlay)
{
	make_qcow2_base();
	struct qcow_create_opts c = { .size = BSIZE, .cluster_bits = 14, .extended_l2 = true,
				      .backing_file = "base.img", .backing_fmt = "qcow2" };
	struct qcow_opts o = { .open_file = open_base };
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, NULL, 0), 0);
	cr_assert_eq(qcow_create(&q, be, &c, &o), 0);
	struct qt_mirror m;
	qt_mirror_init(&m, q, be, BSIZE, 2 * BSIZE, 23);
	qt_fill_pattern(m.flat, BSIZE, 31337);
	memset(m.flat + 300000, 0, 100000);
	m.resize = true;
	m.check_every = true;
	cr_assert(!qt_mirror_verify(&m), "ext L2 overlay: %s", m.err);
	for (int i = 0; i < 1500; i++)
		cr_assert(!qt_mirror_step(&m), "ext L2 overlay: %s", m.err);
	cr_assert(!qt_mirror_verify(&m), "ext L2 overlay: %s", m.err);
	qt_mirror_fini(&m);
	qcow_close(q);
}
