/*
 * test_snapshot.c - struct qcow_opts.snapshot: an internal snapshot opened
 * read-only by name or id reads the snapshot's clusters (unallocated ones
 * as zeros), keeps the active virtual size like qemu's temporary snapshot
 * load, and a writable open or an unknown name is refused without writing.
 *
 * The image: qt_build_image with 2 data clusters (active: host 5, 6 filled
 * with 0x40, 0x41); cluster 7 is the snapshot's L1, 8 its L2 (guest
 * cluster 0 -> host 9, filled with 0x99), 10 the snapshot table.
 */
#include <criterion/criterion.h>

#include "qt.h"

#define CS (1u << 16)

static uint8_t *snapshot_image(size_t *len)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 2};
	size_t n;
	uint8_t *img = qt_build_image(&s, &n);
	cr_assert(img && n == 7 * CS);
	img = realloc(img, 11 * CS);
	cr_assert(img);
	memset(img + 7 * CS, 0, 4 * CS);
	for (unsigned c = 7; c < 11; c++)
		qt_put16(img + 2 * CS + 2 * c, 1);
	qt_put64(img + 7 * CS, 8ull * CS);
	qt_put64(img + 8 * CS, 9ull * CS);
	memset(img + 9 * CS, 0x99, CS);
	uint8_t *e = img + 10 * CS;
	qt_put64(e, 7ull * CS);
	qt_put32(e + 8, 1);
	qt_put16(e + 12, 1);
	qt_put16(e + 14, 4);
	qt_put32(e + 36, 16);
	qt_put64(e + 48, 1 << 20); /* extra data: disk size */
	memcpy(e + 56, "1snap", 5);
	qt_put32(img + QH_NB_SNAP, 1);
	qt_put64(img + QH_SNAP_OFF, 10ull * CS);
	*len = 11 * CS;
	return img;
}

static int open_snap(const uint8_t *img, size_t len, const char *name, unsigned flags,
		     struct qcow **q)
{
	struct qcow_backend be;
	cr_assert_eq(qcow_backend_mem(&be, img, len), 0);
	struct qcow_opts o = {.flags = flags, .snapshot = name};
	int r = qcow_open(q, be, &o);
	if (r < 0) {
		size_t n;
		const void *d = qcow_backend_mem_data(be, &n);
		cr_expect(n == len && !memcmp(d, img, len), "a refused open wrote");
		be.ops->close(be.h);
	}
	return r;
}

static void expect_cluster(struct qcow *q, unsigned c, uint8_t want)
{
	static uint8_t buf[CS];
	cr_assert_eq(qcow_read(q, buf, CS, (uint64_t)c * CS), (ssize_t)CS);
	for (unsigned i = 0; i < CS; i++)
		cr_assert_eq(buf[i], want, "cluster %u byte %u: %#x, want %#x", c, i, buf[i], want);
}

Test(snapshot, opened_by_name_and_by_id)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	const char *sel[] = {"snap", "1"};
	for (int k = 0; k < 2; k++) {
		struct qcow *q;
		cr_assert_eq(open_snap(img, len, sel[k], QCOW_RDONLY, &q), 0, "open %s", sel[k]);
		cr_expect_eq(qcow_size(q), 1u << 20);
		expect_cluster(q, 0, 0x99);
		expect_cluster(q, 1, 0);
		uint8_t b = 1;
		cr_expect_lt(qcow_write(q, &b, 1, 0), 0, "a snapshot accepted a write");
		qcow_close(q);
	}
	struct qcow *q;
	cr_assert_eq(open_snap(img, len, NULL, QCOW_RDONLY, &q), 0);
	expect_cluster(q, 0, 0x40);
	expect_cluster(q, 1, 0x41);
	qcow_close(q);
	free(img);
}

Test(snapshot, writable_open_and_unknown_name_refused)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	struct qcow *q;
	cr_expect_eq(open_snap(img, len, "snap", 0, &q), -EROFS);
	cr_expect_eq(open_snap(img, len, "nope", QCOW_RDONLY, &q), -ENOENT);
	free(img);
}

/* The active image grew after the snapshot: qemu keeps the current size,
 * clusters beyond the snapshot's L1 read as zeros. */
Test(snapshot, active_size_kept_beyond_the_snapshot_l1)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	uint64_t big = 3ull << 29; /* 1.5 GiB: 3 L1 entries of 512 MiB */
	qt_put64(img + QH_SIZE, big);
	qt_put32(img + QH_L1_SIZE, 3);
	struct qcow *q;
	cr_assert_eq(open_snap(img, len, "snap", QCOW_RDONLY, &q), 0);
	cr_expect_eq(qcow_size(q), big);
	expect_cluster(q, 0, 0x99);
	expect_cluster(q, (unsigned)(big / CS - 1), 0);
	qcow_close(q);
	free(img);
}

/*
 * Found by the fuzzer: an active L2 entry (not COPIED) naming the
 * snapshot's L2 table, whose refcount (1) counts the snapshot's reference.
 * Dropping the entry freed the table; the next allocation (the L1 table
 * moved by a resize) overwrote it and the snapshot was lost.  A writable
 * handle knows the snapshots' L2 tables as metadata: the discard is
 * refused, a write is not made through the entry, and the table is intact.
 */
Test(snapshot, active_entry_naming_snapshot_l2_refused)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	qt_put64(img + 4ull * CS + 8, 8ull * CS); /* guest cluster 1 -> the snapshot's L2 */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	cr_expect_eq(qcow_zero(q, CS, CS, QCOW_ZERO_UNMAP), -EIO, "discard through the entry");
	qcow_close(q);
	q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	uint8_t b[512];
	memset(b, 0x5e, sizeof b);
	cr_expect_eq(qcow_write(q, b, sizeof b, CS), -EIO, "write through the entry");
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect(!memcmp(d + 8ull * CS, img + 8ull * CS, CS), "the snapshot's L2 table changed");
	qcow_close(q);
	free(img);
}

/*
 * A snapshot's L1 entry naming an L2 table past the end of the file (the
 * fuzzer's inputs had such entries).  The file grows as the active image
 * allocates: data written into that cluster would become the snapshot's L2
 * table, its bytes read as references to any cluster.  The cluster stays
 * metadata to a writable handle: the allocating write that would land there
 * fails with EIO and the cluster is never written.
 */
Test(snapshot, snapshot_l2_past_eof_not_written_over)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	qt_put64(img + 7 * CS, 11ull * CS); /* the first cluster past the end */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	static uint8_t b[CS];
	memset(b, 0x5e, sizeof b);
	ssize_t r = 0;
	for (unsigned c = 2; c < 16 && r >= 0; c++) /* fresh guest clusters: allocations */
		r = qcow_write(q, b, CS, (uint64_t)c * CS);
	cr_expect_eq(r, -EIO, "the allocating writes never reached the snapshot's L2 cluster");
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	for (uint64_t i = 11ull * CS; i < 12ull * CS && i < n; i++)
		cr_assert_eq(d[i], 0, "byte %#llx of the snapshot's L2 cluster was written",
			     (unsigned long long)i);
	qcow_close(q);
	free(img);
}

/*
 * Found by the fuzzer: a snapshot's L1 entry naming the refcount block
 * (cluster 2).  Every refcount a write changed read as a new entry of the
 * snapshot's "L2 table", naming clusters the refcounts did not count.  A
 * snapshot L2 table on other metadata is damage `qemu-img check` reports:
 * the writable open is refused and writes nothing; a read-only open and
 * the snapshot's own clusters stay readable.  A table the active L1 shares
 * (as after `qemu-img snapshot -c`) is no overlap.
 */
Test(snapshot, snapshot_l2_on_other_metadata_refused)
{
	static const struct {
		uint64_t cluster;
		int want;
	} cases[] = {
		{1, -EINVAL}, /* refcount table */
		{2, -EINVAL}, /* refcount block */
		{3, -EINVAL}, /* active L1 */
		{7, -EINVAL}, /* the snapshot's own L1 */
		{10, -EINVAL}, /* snapshot table */
		{4, 0},        /* the active L2 table, shared */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *img = snapshot_image(&len);
		qt_put64(img + 7 * CS, cases[i].cluster * CS);
		struct qcow *q;
		int r = open_snap(img, len, NULL, 0, &q);
		cr_expect_eq(r, cases[i].want, "snapshot L2 on cluster %llu: writable open = %d",
			     (unsigned long long)cases[i].cluster, r);
		if (r == 0)
			qcow_close(q);
		cr_assert_eq(open_snap(img, len, NULL, QCOW_RDONLY, &q), 0);
		expect_cluster(q, 0, 0x40);
		qcow_close(q);
		free(img);
	}
}

/* 1000 snapshots naming one L1 table: the writable open reads it once,
 * not once per snapshot (65536 snapshots on a 32 MiB table would be 2 TiB
 * of reads). */
Test(snapshot, shared_snapshot_l1_read_once)
{
	unsigned long reads[2];
	for (int k = 0; k < 2; k++) {
		size_t len;
		uint8_t *img = snapshot_image(&len);
		unsigned n = k ? 1000 : 1;
		uint8_t *e = img + 10 * CS;
		memset(e, 0, CS);
		for (unsigned i = 0; i < n; i++, e += 64) {
			qt_put64(e, 7ull * CS);
			qt_put32(e + 8, 1);
			qt_put16(e + 12, 3);
			qt_put16(e + 14, 4);
			qt_put32(e + 36, 16);
			qt_put64(e + 48, 1 << 20);
			char id[8];
			snprintf(id, sizeof id, "%03u", i);
			memcpy(e + 56, id, 3);
			memcpy(e + 59, "snap", 4);
		}
		qt_put32(img + QH_NB_SNAP, n);
		struct qt_fault f = {0};
		cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
		f.close_inner = true;
		struct qcow *q = NULL;
		cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0, "%u snapshots", n);
		reads[k] = f.count[QT_PREAD];
		expect_cluster(q, 0, 0x40);
		qcow_close(q);
		free(img);
	}
	cr_expect_leq(reads[1], reads[0] + 2, "open read %lu times with 1000 snapshots, %lu with one",
		      reads[1], reads[0]);
}

/* A snapshot L1 naming more than 2^20 distinct L2 tables past the end of
 * the file: guarding them all would cost memory the file does not justify;
 * the writable open is refused, the read-only one still works. */
Test(snapshot, too_many_snapshot_l2_past_eof_refused)
{
	size_t len;
	uint8_t *img = snapshot_image(&len);
	uint64_t n = (1u << 20) + 1, l1_clusters = (n * 8 + CS - 1) / CS;
	size_t big = len + l1_clusters * CS;
	img = realloc(img, big);
	cr_assert(img);
	memset(img + len, 0, big - len);
	for (uint64_t i = 0; i < n; i++) /* distinct clusters, all past the end */
		qt_put64(img + len + 8 * i, (uint64_t)big + i * CS);
	qt_put64(img + 10 * CS, (uint64_t)len); /* the snapshot's L1 */
	qt_put32(img + 10 * CS + 8, (uint32_t)n);
	qt_put64(img + 10 * CS + 48, n << 29); /* disk size the L1 covers */
	struct qcow *q;
	cr_expect_eq(open_snap(img, big, NULL, 0, &q), -EINVAL);
	cr_assert_eq(open_snap(img, big, NULL, QCOW_RDONLY, &q), 0);
	expect_cluster(q, 0, 0x40);
	qcow_close(q);
	qt_put32(img + 10 * CS + 8, (uint32_t)n - 1); /* 2^20: guarded */
	cr_assert_eq(open_snap(img, big, NULL, 0, &q), 0);
	qcow_close(q);
	free(img);
}
