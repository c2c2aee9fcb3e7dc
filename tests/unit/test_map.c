/*
 * test_map.c - qcow_map extents against known content: holes, data,
 * zero clusters (v3 zero flag), discarded clusters, coalescing, limits.
 */
#include <criterion/criterion.h>

#include "qt.h"

static void expect_extent(struct qcow *q, uint64_t voff, uint64_t n, enum qcow_extent_kind kind,
			  uint64_t len, int allocated, const char *what)
{
	struct qcow_extent e = { 0 };
	int r = qcow_map(q, voff, n, &e);
	cr_expect_eq(r, 0, "%s: qcow_map = %d", what, r);
	if (kind) /* 0: any kind (an empty extent has none) */
		cr_expect_eq(e.kind, kind, "%s: kind %d, want %d", what, e.kind, kind);
	cr_expect_eq(e.len, len, "%s: len %llu, want %llu", what, (unsigned long long)e.len,
		     (unsigned long long)len);
	if (allocated >= 0)
		cr_expect_eq(e.allocated, (bool)allocated, "%s: allocated %d, want %d", what,
			     e.allocated, allocated);
}

static void map_layout(unsigned version, unsigned cb)
{
	uint64_t cs = 1ull << cb, size = 64 * cs;
	struct qcow_create_opts c = { .size = size, .cluster_bits = cb, .version = version };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	expect_extent(q, 0, size, QCOW_EXT_ZERO, size, 0, "empty image");
	expect_extent(q, 0, 100, QCOW_EXT_ZERO, 100, 0, "limited by n");
	expect_extent(q, 5 * cs + 3, 100, QCOW_EXT_ZERO, 100, 0, "unaligned start");

	uint8_t *buf = malloc(4 * cs);
	memset(buf, 0xcd, 4 * cs);
	cr_assert_eq(qcow_write(q, buf, 4 * cs, 8 * cs), (ssize_t)(4 * cs));
	cr_assert_eq(qcow_write(q, buf, 1, 20 * cs + 7), 1);
	expect_extent(q, 0, size, QCOW_EXT_ZERO, 8 * cs, 0, "hole before data");
	expect_extent(q, 8 * cs, size, QCOW_EXT_DATA, 4 * cs, 1, "4 data clusters");
	expect_extent(q, 9 * cs + 17, size, QCOW_EXT_DATA, 3 * cs - 17, 1, "inside data");
	expect_extent(q, 12 * cs, size, QCOW_EXT_ZERO, 8 * cs, 0, "hole after data");
	expect_extent(q, 20 * cs, size, QCOW_EXT_DATA, cs, 1, "partial cluster write");
	expect_extent(q, 21 * cs, size, QCOW_EXT_ZERO, size - 21 * cs, 0, "tail hole");
	expect_extent(q, size, cs, 0, 0, -1, "at the end");

	/* discard one cluster in the middle of the data run */
	cr_assert_eq(qcow_zero(q, 9 * cs, cs, QCOW_ZERO_UNMAP), 0);
	expect_extent(q, 8 * cs, size, QCOW_EXT_DATA, cs, 1, "data before discard");
	struct qcow_extent e;
	cr_assert_eq(qcow_map(q, 9 * cs, size, &e), 0);
	cr_expect_eq(e.kind, QCOW_EXT_ZERO, "discarded cluster kind %d", e.kind);
	cr_expect(!e.allocated, "discarded cluster still allocated");
	cr_expect_eq(e.len, cs, "discarded extent len %llu", (unsigned long long)e.len);
	expect_extent(q, 10 * cs, size, QCOW_EXT_DATA, 2 * cs, 1, "data after discard");

	if (version == 3) {
		/* write-zeroes without unmap: reads as zero, known to be zero */
		cr_assert_eq(qcow_zero(q, 10 * cs, cs, 0), 0);
		cr_assert_eq(qcow_map(q, 10 * cs, size, &e), 0);
		cr_expect_eq(e.kind, QCOW_EXT_ZERO, "zero cluster kind %d", e.kind);
		cr_expect_eq(e.len, cs);
	}
	/* sub-cluster zeroing keeps the cluster as data */
	cr_assert_eq(qcow_zero(q, 11 * cs + 1, cs - 2, QCOW_ZERO_UNMAP), 0);
	cr_assert_eq(qcow_read(q, buf, cs, 11 * cs), (ssize_t)cs);
	cr_expect(buf[0] == 0xcd && buf[cs - 1] == 0xcd && buf[1] == 0 && buf[cs - 2] == 0);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	free(buf);
	qcow_close(q);
}

Test(map, layout_v3_64k) { map_layout(3, 16); }
Test(map, layout_v3_512) { map_layout(3, 9); }
Test(map, layout_v3_2m) { map_layout(3, 21); }
Test(map, layout_v2_4k) { map_layout(2, 12); }

/* Extents across L2 table boundaries (512 B clusters: 64 entries per L2). */
Test(map, across_l2_tables)
{
	uint64_t cs = 512, size = 1000 * cs;
	struct qcow_create_opts c = { .size = size, .cluster_bits = 9 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t *buf = malloc(300 * cs);
	memset(buf, 1, 300 * cs);
	cr_assert_eq(qcow_write(q, buf, 300 * cs, 50 * cs), (ssize_t)(300 * cs));
	expect_extent(q, 0, size, QCOW_EXT_ZERO, 50 * cs, 0, "before");
	/* data runs may be split at L2 boundaries, but must be contiguous data */
	uint64_t off = 50 * cs;
	while (off < 350 * cs) {
		struct qcow_extent e;
		cr_assert_eq(qcow_map(q, off, size - off, &e), 0);
		cr_assert_eq(e.kind, QCOW_EXT_DATA, "at cluster %llu", (unsigned long long)off / cs);
		cr_assert(e.len > 0 && off + e.len <= 350 * cs, "extent overruns the data");
		off += e.len;
	}
	expect_extent(q, 350 * cs, size, QCOW_EXT_ZERO, size - 350 * cs, 0, "after");
	free(buf);
	qcow_close(q);
}

/* Random content: whole-image extent map agrees with a flat mirror. */
Test(map, random_against_mirror)
{
	for (unsigned cb = 9; cb <= 17; cb += 4) {
		struct qcow_create_opts c = { .size = 200ull << cb, .cluster_bits = cb };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem(&c, &be);
		cr_assert(q);
		struct qt_mirror m;
		qt_mirror_init(&m, q, be, c.size, c.size, cb);
		for (int i = 0; i < 400; i++) {
			cr_assert(!qt_mirror_step(&m), "%s", m.err);
			if (i % 50 == 0)
				cr_assert(!qt_mirror_check_map(&m), "%s", m.err);
		}
		cr_assert(!qt_mirror_verify(&m), "%s", m.err);
		qt_mirror_fini(&m);
		qcow_close(q);
	}
}
