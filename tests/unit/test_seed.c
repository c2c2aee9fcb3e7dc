/*
 * test_seed.c - one named regression test per defect of the seed (9front
 * qcowfs, and OpenBSD vioqcow2 it came from), issue 4:
 *   1. the v3 zero flag must not be read as data at host offset 0;
 *   2. clusters shared with an internal snapshot must not be written in place;
 *   3. an L2 entry never reaches the file before the data and the refcount
 *      of the cluster it points to;
 *   4. L1 sizes near the limits must not overflow 32-bit arithmetic;
 *   5. a compressed cluster is not a fatal error (read, and copy-out on write);
 *   6. every cluster size and refcount width, not only 64 KiB / 16 bits.
 */
#include <criterion/criterion.h>
#include <zlib.h>

#include "qt.h"

#define CS (1u << 16)

static void set_rc16(uint8_t *img, uint64_t cluster, uint16_t v)
{
	qt_put16(img + 2 * CS + 2 * cluster, v);
}

static uint8_t *grow_img(uint8_t *img, size_t *len, unsigned extra)
{
	img = realloc(img, *len + (size_t)extra * CS);
	cr_assert(img);
	memset(img + *len, 0, (size_t)extra * CS);
	*len += (size_t)extra * CS;
	return img;
}

static void expect_byte(struct qcow *q, uint64_t voff, uint64_t n, uint8_t want, const char *what)
{
	uint8_t *buf = malloc(n);
	cr_assert_eq(qcow_read(q, buf, n, voff), (ssize_t)n, "%s: read", what);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(buf[i], want, "%s: byte %#llx is %#x, want %#x", what,
			     (unsigned long long)(voff + i), buf[i], want);
	free(buf);
}

Test(seed, zero_flag_is_not_data_at_offset_0)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 3};
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	cr_assert(img);
	qt_put64(img + 4 * CS + 8, 1);                            /* zero, no offset */
	set_rc16(img, 6, 0);                                      /* (cluster 6 unused now) */
	qt_put64(img + 4 * CS + 16, (7ull * CS) | 1ull << 63 | 1); /* zero, preallocated */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	expect_byte(q, 0, CS, 0x40, "normal cluster");
	expect_byte(q, CS, CS, 0, "zero cluster (header bytes would show 'QFI')");
	expect_byte(q, 2 * CS, CS, 0, "preallocated zero cluster");
	uint8_t w[100];
	memset(w, 0x77, sizeof w);
	cr_assert_eq(qcow_write(q, w, sizeof w, CS + 1000), (ssize_t)sizeof w);
	cr_assert_eq(qcow_write(q, w, sizeof w, 2 * CS + 1000), (ssize_t)sizeof w);
	expect_byte(q, CS, 1000, 0, "zero cluster head after a partial write");
	expect_byte(q, CS + 1000, sizeof w, 0x77, "partial write into a zero cluster");
	expect_byte(q, CS + 1100, CS - 1100, 0, "zero cluster tail after a partial write");
	expect_byte(q, 2 * CS + 1100, CS - 1100, 0, "preallocated zero cluster tail");
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "after writes: %s", m);
	qcow_close(q);
	free(img);

	/* v2 has no zero flag: the bit is corruption, never data from offset 0 */
	s.version = 2;
	img = qt_build_image(&s, &len);
	qt_put64(img + 4 * CS + 8, 1);
	q = qt_open_mem(img, len, QCOW_RDONLY, NULL, &err);
	cr_assert(q, "v2 open = %d", err);
	uint8_t buf[512];
	cr_expect_eq(qcow_read(q, buf, sizeof buf, CS), -EIO, "v2 zero flag must read as -EIO");
	qcow_close(q);
	free(img);
}

/*
 * A handcrafted internal snapshot: its L1 (cluster 7) shares the L2 table
 * (cluster 4) and both data clusters (5, 6) with the active L1, so they all
 * have refcount 2 and no COPIED flag.
 */
static uint8_t *snapshot_image(size_t *len)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 2};
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img && *len == 7 * CS);
	img = grow_img(img, len, 2);
	qt_put64(img + 3 * CS, 4ull * CS);         /* active L1[0], shared: no COPIED */
	qt_put64(img + 4 * CS, 5ull * CS);         /* L2 entries, shared */
	qt_put64(img + 4 * CS + 8, 6ull * CS);
	qt_put64(img + 7 * CS, 4ull * CS);         /* snapshot L1 */
	uint8_t *e = img + 8 * CS;                 /* snapshot table entry */
	qt_put64(e, 7ull * CS);
	qt_put32(e + 8, 1);
	qt_put16(e + 12, 1);
	qt_put16(e + 14, 1);
	qt_put32(e + 36, 16);
	qt_put64(e + 48, 1 << 20); /* extra data: virtual disk size */
	e[56] = '1';
	e[57] = 's';
	qt_put32(img + QH_NB_SNAP, 1);
	qt_put64(img + QH_SNAP_OFF, 8ull * CS);
	for (unsigned c = 4; c <= 6; c++)
		set_rc16(img, c, 2);
	set_rc16(img, 7, 1);
	set_rc16(img, 8, 1);
	return img;
}

Test(seed, snapshot_clusters_are_copied_not_written_in_place)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(img, len, &chk), 0, "%s", chk.msg);
	cr_assert(chk.errors == 0 && chk.leaks == 0, "handcrafted snapshot image: %s", chk.msg);
	uint8_t *before = malloc(len);
	memcpy(before, img, len);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	uint8_t w[4096];
	memset(w, 0x99, sizeof w);
	cr_assert_eq(qcow_write(q, w, sizeof w, 0), (ssize_t)sizeof w);
	cr_assert_eq(qcow_write(q, w, sizeof w, CS + 100), (ssize_t)sizeof w);
	cr_assert_eq(qcow_flush(q), 0);
	size_t n;
	uint8_t *after = qt_mem_copy(be, &n);
	/* the snapshot's L1, L2 and data clusters are byte for byte unchanged */
	for (unsigned c = 4; c <= 8; c++)
		cr_expect(!memcmp(before + (size_t)c * CS, after + (size_t)c * CS, CS),
			  "cluster %u (shared with the snapshot) was modified", c);
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_assert_eq(qt_check_image_resv(after, n, info.reserved_offset, info.reserved_bytes, &chk),
		     0, "%s", chk.msg);
	cr_expect(chk.errors == 0 && chk.leaks == 0, "after copy-on-write: %s", chk.msg);
	expect_byte(q, 0, sizeof w, 0x99, "new data");
	expect_byte(q, sizeof w, CS - sizeof w, 0x40, "rest of the copied cluster");
	expect_byte(q, CS, 100, 0x41, "head of the second copied cluster");
	qcow_close(q);
	free(after);
	free(before);
	free(img);
}

/* Backing file for the ordering test, served from memory. */
static uint8_t *base_bytes;
static size_t base_len;

static int open_base(void *arg, const char *name, enum qcow_file_kind kind, bool writable,
		     struct qcow_backend *out)
{
	(void)arg, (void)name, (void)kind, (void)writable;
	return qcow_backend_mem(out, base_bytes, base_len);
}

/* Overlay partial writes: copy-on-write from a patterned base, then flush. */
static int ordering_workload(struct qcow *q)
{
	uint8_t w[3000];
	memset(w, 0xee, sizeof w);
	for (unsigned i = 0; i < 6; i++)
		if (qcow_write(q, w, sizeof w, (uint64_t)i * 3 * 4096 + 777) != (ssize_t)sizeof w)
			return -1;
	return qcow_flush(q);
}

Test(seed, l2_entry_never_before_data_and_refcount)
{
	struct qcow_create_opts bc = {.size = 1 << 20, .cluster_bits = 12};
	struct qcow_backend bbe;
	struct qcow *b = qt_create_mem(&bc, &bbe);
	uint8_t *pat = malloc(1 << 20);
	memset(pat, 0xb5, 1 << 20);
	cr_assert_eq(qcow_write(b, pat, 1 << 20, 0), 1 << 20);
	cr_assert_eq(qcow_flush(b), 0);
	base_bytes = qt_mem_copy(bbe, &base_len);
	qcow_close(b);

	struct qcow_opts o = {.open_file = open_base};
	struct qcow_create_opts oc = {.size = 1 << 20, .cluster_bits = 12, .backing_file = "base",
				      .backing_fmt = "qcow2"};
	struct qcow_backend obe;
	struct qcow *ov = qt_create_mem_opts(&oc, &o, &obe);
	cr_assert(ov);
	/* make the L2 table exist and be reachable, so that only the data ->
	 * refcount -> L2 ordering (not the L1 one) protects the new entries */
	cr_assert_eq(qcow_write(ov, "\xee", 1, (1 << 20) - 1), 1);
	cr_assert_eq(qcow_flush(ov), 0);
	size_t olen;
	uint8_t *overlay = qt_mem_copy(obe, &olen);
	qcow_close(ov);

	struct qt_crash *c = qt_crash_new(overlay, olen);
	struct qcow *q;
	cr_assert_eq(qcow_open(&q, qt_crash_backend(c), &o), 0);
	cr_assert_eq(ordering_workload(q), 0);
	qcow_close(q);
	unsigned long calls = qt_crash_calls(c);
	qt_crash_free(c);
	cr_assert_gt(calls, 3);
	for (unsigned long t = 0; t < calls * 16; t++) { /* 16 random subsets per cut point */
		unsigned long n = t / 16 + 1;
		c = qt_crash_new(overlay, olen);
		qt_crash_arm(c, n, t * 7919 + 1);
		if (qcow_open(&q, qt_crash_backend(c), &o) == 0) {
			(void)ordering_workload(q);
			qcow_close(q);
		}
		size_t len;
		uint8_t *img = qt_crash_result(c, &len);
		qt_crash_free(c);
		if (!img)
			continue;
		struct qt_check chk;
		cr_assert_eq(qt_check_image(img, len, &chk), 0, "cut %lu: %s", n, chk.msg);
		cr_expect_eq(chk.errors, 0, "cut before call %lu: corruption: %s", n, chk.msg);
		int err;
		struct qcow *r = qt_open_mem(img, len, QCOW_RDONLY, NULL, &err);
		if (!r) { /* the open needs the backing opener */
			struct qcow_backend mbe;
			cr_assert_eq(qcow_backend_mem(&mbe, img, len), 0);
			struct qcow_opts ro = {.flags = QCOW_RDONLY, .open_file = open_base};
			cr_assert_eq(qcow_open(&r, mbe, &ro), 0, "cut %lu: reopen", n);
		}
		/* every byte is the base's or the new data's: never a hole that an
		 * L2 entry written before its data would expose as zeros */
		uint8_t *buf = malloc(1 << 20);
		cr_assert_eq(qcow_read(r, buf, 1 << 20, 0), 1 << 20);
		for (size_t i = 0; i < (1u << 20); i++)
			cr_assert(buf[i] == 0xb5 || buf[i] == 0xee, "cut %lu: byte %#zx is %#x", n, i,
				  buf[i]);
		free(buf);
		qcow_close(r);
		free(img);
	}
	free(overlay);
	free(base_bytes);
	free(pat);
}

Test(seed, l1_size_near_limits_does_not_overflow)
{
	static const struct {
		uint32_t l1_size;
		uint64_t size;
	} cases[] = {
		{0x20000000u, 1 << 20},  /* l1_size * 8 == 2^32: 0 in 32-bit arithmetic */
		{0xffffffffu, 1 << 20},
		{0x00400001u, 1 << 20},  /* one entry past qemu's 32 MiB limit */
		{1, 1ull << 62},         /* virtual size needing a huge L1 */
		{0x20000000u, 1ull << 62},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
					.size = 1 << 20, .data_clusters = 1};
		size_t len;
		uint8_t *img = qt_build_image(&s, &len);
		qt_put32(img + QH_L1_SIZE, cases[i].l1_size);
		qt_put64(img + QH_SIZE, cases[i].size);
		int err = 0;
		struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
		cr_expect(!q, "case %zu: opened", i);
		if (q)
			qcow_close(q);
		cr_expect(err == -EFBIG || err == -EINVAL, "case %zu: error %d", i, err);
		free(img);
	}
}

Test(seed, compressed_cluster_is_not_fatal)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 1};
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	cr_assert(img && len == 6 * CS);
	uint8_t *plain = malloc(CS), *z = malloc(2 * CS);
	for (unsigned i = 0; i < CS; i++)
		plain[i] = "compressible text, "[i % 19];
	z_stream zs = {0};
	cr_assert_eq(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY),
		     Z_OK);
	zs.next_in = plain;
	zs.avail_in = CS;
	zs.next_out = z;
	zs.avail_out = 2 * CS;
	cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t zlen = zs.total_out;
	deflateEnd(&zs);
	img = grow_img(img, &len, 1);
	memcpy(img + 6 * CS, z, zlen);
	set_rc16(img, 6, 1);
	uint64_t sectors = (zlen + 511) / 512 - 1, x = 62 - (16 - 8);
	qt_put64(img + 4 * CS + 8, 1ull << 62 | sectors << x | 6ull * CS);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(img, len, &chk), 0, "%s", chk.msg);
	cr_assert(chk.errors == 0 && chk.leaks == 0, "handcrafted compressed image: %s", chk.msg);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	uint8_t *buf = malloc(CS);
	cr_assert_eq(qcow_read(q, buf, CS, CS), CS);
	cr_expect(!memcmp(buf, plain, CS), "compressed cluster reads back");
	memcpy(plain + 5000, "PATCHED", 7);
	cr_assert_eq(qcow_write(q, "PATCHED", 7, CS + 5000), 7);
	cr_assert_eq(qcow_read(q, buf, CS, CS), CS);
	cr_expect(!memcmp(buf, plain, CS), "written compressed cluster reads back");
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "after copy-out: %s", m);
	qcow_close(q);
	free(buf);
	free(plain);
	free(z);
	free(img);
}

Test(seed, every_cluster_size_and_refcount_width)
{
	for (unsigned cb = 9; cb <= 21; cb += 3) {
		for (unsigned rb = 1; rb <= 64; rb *= 2) {
			for (unsigned ver = 2; ver <= 3; ver++) {
				if (ver == 2 && rb != 16)
					continue;
				struct qcow_create_opts c = {.size = 6 << 20, .cluster_bits = cb,
							     .refcount_bits = rb, .version = ver};
				struct qcow_backend be;
				struct qcow *q = qt_create_mem(&c, &be);
				cr_assert(q, "cb %u rb %u v%u: create", cb, rb, ver);
				uint8_t w[5000];
				for (unsigned i = 0; i < 3; i++) {
					memset(w, 0x10 + i, sizeof w);
					uint64_t off = (uint64_t)i * (2 << 20) + 4321;
					cr_assert_eq(qcow_write(q, w, sizeof w, off), (ssize_t)sizeof w);
				}
				for (unsigned i = 0; i < 3; i++)
					expect_byte(q, (uint64_t)i * (2 << 20) + 4321, sizeof w, 0x10 + i,
						    "pattern");
				const char *m = qt_check_open(q, be, false);
				cr_expect(!m, "cb %u rb %u v%u: %s", cb, rb, ver, m);
				qcow_close(q);
			}
		}
	}
}
