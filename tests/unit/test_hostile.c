/*
 * test_hostile.c - regression tests for bugs found by the hostile-image
 * tests and the libFuzzer harness (tests/fuzz, tests/hostile).  Each test
 * says which input found it.
 */
#include <criterion/criterion.h>

#include "qt.h"

/* Overwrite the memory backend's bytes [off, off+n) behind the image's back. */
static void poke(struct qcow_backend be, uint64_t off, const void *p, size_t n)
{
	cr_assert_eq(be.ops->pwrite(be.h, p, n, off), (ssize_t)n);
}

/*
 * Found by fuzz_qcow: qcow_invalidate re-reads the metadata; when the file
 * has become invalid the load fails, and the next read or map dereferenced
 * the freed (NULL) L1 table.  Every I/O must fail with -EIO instead.
 */
Test(hostile, io_after_failed_invalidate)
{
	struct qcow_create_opts c = {.size = 1 << 20, .cluster_bits = 12};
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	uint8_t buf[4096];
	struct qcow_extent e;
	memset(buf, 0x5a, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 8192), (ssize_t)sizeof buf);
	cr_assert_eq(qcow_flush(q), 0);
	uint8_t bad[4] = {0, 0, 0, 7}; /* version 7 */
	poke(be, 4, bad, 4);
	cr_assert_eq(qcow_invalidate(q), -ENOTSUP);
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 8192), -EIO);
	cr_assert_eq(qcow_map(q, 0, 1 << 20, &e), -EIO);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), -EIO);
	cr_assert_eq(qcow_zero(q, 0, 4096, 0), -EIO);
	cr_assert_eq(qcow_resize(q, 2 << 20), -EIO);
	/* everything written was flushed before the reload: nothing is lost */
	cr_assert_eq(qcow_close(q), 0);
}

/* A 1 MiB v3 image, 4 KiB clusters, clusters 0 and 1 written with 0xa1/0xb2. */
static uint8_t *two_clusters(size_t *len)
{
	struct qcow_create_opts c = {.size = 1 << 20, .cluster_bits = 12};
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	uint8_t buf[4096];
	memset(buf, 0xa1, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	memset(buf, 0xb2, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 4096), (ssize_t)sizeof buf);
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *img = qt_mem_copy(be, len);
	qcow_close(q);
	return img;
}

/* Byte offset of the L2 entry of guest cluster 0. */
static uint64_t l2e0(const uint8_t *img)
{
	uint64_t l1 = qt_be64(img + QH_L1_OFF);
	return qt_be64(img + l1) & 0x00fffffffffffe00ull;
}

/* two_clusters() with guest cluster 0's L2 entry changed to
 * (entry + add) | bits, opened with flags; *img keeps the original bytes. */
static struct qcow *open_bad_l2e0(uint8_t **img, uint64_t add, uint64_t bits, unsigned flags,
				  struct qcow_backend *be)
{
	size_t len;
	int err;
	*img = two_clusters(&len);
	uint64_t p = l2e0(*img);
	qt_put64(*img + p, (qt_be64(*img + p) + add) | bits);
	struct qcow *q = qt_open_mem(*img, len, flags, be, &err);
	cr_assert(q, "open: %d", err);
	return q;
}

/*
 * Found by t_hostile.sh (case l2_entry_misaligned): a COPIED L2 entry whose
 * host offset is not cluster aligned was written in place by a full-cluster
 * write, spilling into the next host cluster (another guest cluster's
 * data).  The write must fail with -EIO and leave cluster 1 intact.
 */
Test(hostile, misaligned_l2_entry_not_written_through)
{
	uint8_t *img;
	struct qcow_backend be;
	struct qcow *q = open_bad_l2e0(&img, 512, 0, 0, &be);
	uint64_t p = l2e0(img);
	uint8_t buf[4096];
	memset(buf, 0xcc, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), -EIO);
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 4096), (ssize_t)sizeof buf);
	for (size_t i = 0; i < sizeof buf; i++)
		cr_assert_eq(buf[i], 0xb2, "cluster 1 byte %zu changed", i);
	/* and the host bytes of cluster 1 are untouched too */
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	uint64_t h1 = qt_be64(img + p + 8) & 0x00fffffffffffe00ull;
	for (size_t i = 0; i < 4096; i++)
		cr_assert_eq(d[h1 + i], 0xb2);
	qcow_close(q);
	free(img);
}

/* The same for an entry with reserved bits: refused, not silently cleared. */
Test(hostile, reserved_bits_l2_entry_not_written_through)
{
	uint8_t *img;
	struct qcow *q = open_bad_l2e0(&img, 0, 0x0200000000000000ull, 0, NULL);
	uint8_t buf[4096] = {0};
	buf[0] = 1;
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), -EIO);
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 0), -EIO);
	qcow_close(q);
	free(img);
}

/*
 * Found by t_hostile.sh: after a read of corrupt metadata, closing a
 * read-only image returned -EIO (the shim printed a second, misleading
 * "flushing the image failed" line).  A read-only image has nothing to
 * flush.
 */
Test(hostile, read_only_close_after_read_error)
{
	uint8_t *img;
	struct qcow *q = open_bad_l2e0(&img, 512, 0, QCOW_RDONLY, NULL);
	uint8_t buf[4096];
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 0), -EIO);
	cr_assert_eq(qcow_flush(q), 0);
	cr_assert_eq(qcow_close(q), 0);
	free(img);
}

/* ---- never make a damaged image worse (issue 14) ---- */

#define HB 16
#define HS (1u << HB)

/*
 * A handcrafted image (qt_build_image: header, reftable, refblock, L1, L2
 * at cluster 4, guest clusters 0 and 1 at host clusters 5 and 6, 7 clusters
 * in all) whose guest cluster 1 is a deflate-compressed cluster at host
 * offset 6*HS + 300 with `sectors` additional sectors.
 */
static uint8_t *compressed_at_end(uint64_t sectors, size_t *len, uint8_t *plain)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = HB, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 2};
	uint8_t *img = qt_build_image(&s, len), *z = malloc(2 * HS);
	cr_assert(img && z);
	for (size_t i = 0; i < HS; i++)
		plain[i] = (uint8_t)("compressible text "[i % 18]);
	size_t zl = qt_deflate_raw(plain, HS, z, 2 * HS, 6, -12, 0);
	cr_assert(zl > 0 && zl < HS - 300);
	memset(img + 6ull * HS, 0, HS);
	memcpy(img + 6ull * HS + 300, z, zl);
	unsigned x = 62 - (HB - 8);
	qt_put64(img + 4ull * HS + 8, 1ull << 62 | sectors << x | (6ull * HS + 300));
	free(z);
	return img;
}

/*
 * Issue 14: an L2 entry describing a compressed cluster whose sector count
 * runs past the end of the file.  A write into it copies the cluster out
 * to a fresh cluster (the first free one: just past the end of the file),
 * then released the whole described range -- which included the fresh
 * cluster.  After the flush it had refcount 0 while guest cluster 1 used
 * it, and the next allocation handed it out again: the data written first
 * was lost ("cluster 7 refcount=0 reference=1").  The write must fail with
 * -EIO instead, the image latched, nothing released.
 */
Test(hostile, compressed_past_eof_copy_out)
{
	size_t len;
	uint8_t *plain = malloc(HS), buf[4096];
	uint8_t *img = compressed_at_end((1ull << (HB - 8)) - 1, &len, plain);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open: %d", err);
	memset(buf, 0x5c, sizeof buf);
	ssize_t w = qcow_write(q, buf, sizeof buf, HS + 100);
	cr_expect_eq(w, -EIO, "write over a compressed cluster past EOF = %zd", w);
	if (w > 0) { /* the bug: show the data loss it leads to */
		cr_assert_eq(qcow_flush(q), 0);
		uint8_t other[4096];
		memset(other, 0x6d, sizeof other);
		cr_assert_eq(qcow_write(q, other, sizeof other, 5 * HS), (ssize_t)sizeof other);
		cr_assert_eq(qcow_read(q, other, sizeof other, HS + 100), (ssize_t)sizeof other);
		cr_expect(!memcmp(other, buf, sizeof buf), "guest cluster 1 lost its data");
	}
	struct qcow_info in;
	qcow_info(q, &in);
	cr_expect(in.corrupt, "not reported as corrupt");
	cr_expect_eq(qcow_write(q, buf, 512, 0), -EIO, "latched image still writable");
	/* nothing was released or re-pointed: entry and refcounts as they were */
	size_t n;
	uint8_t *d = qt_mem_copy(be, &n);
	cr_expect_eq(qt_be64(d + 4ull * HS + 8), qt_be64(img + 4ull * HS + 8));
	cr_expect(!memcmp(d + 2ull * HS, img + 2ull * HS, HS), "refcounts changed");
	free(d);
	qcow_close(q);
	free(img);
	free(plain);
}

/* qt_build_image with guest clusters 0 and 1 at host clusters 5 and 6 (L2
 * at cluster 4) and `extra` free clusters after them. */
static uint8_t *base_image(unsigned extra, size_t *len)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = HB, .refcount_order = 4,
				.size = 1 << 20, .data_clusters = 2};
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	img = realloc(img, *len + extra * HS);
	memset(img + *len, 0, extra * HS);
	*len += extra * HS;
	return img;
}

static void set_l2e(uint8_t *img, unsigned guest, uint64_t e)
{
	qt_put64(img + 4ull * HS + 8 * guest, e);
}

static uint64_t refcount_of(struct qcow_backend be, uint64_t cluster)
{
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	return qt_be16(d + 2ull * HS + 2 * cluster);
}

static struct qcow *open_rw(const uint8_t *img, size_t len, struct qcow_backend *be)
{
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, be, &err);
	cr_assert(q, "open: %d", err);
	return q;
}

/* A compressed descriptor inside the L1 table: reads and writes fail with
 * -EIO; the write neither allocates nor releases. */
Test(hostile, compressed_into_metadata)
{
	size_t len;
	uint8_t *img = base_image(0, &len), buf[4096];
	unsigned x = 62 - (HB - 8);
	set_l2e(img, 1, 1ull << 62 | 3ull << x | (3ull * HS + 100));
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	cr_expect_eq(qcow_read(q, buf, sizeof buf, HS), -EIO);
	cr_expect_eq(qcow_write(q, buf, sizeof buf, HS), -EIO);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(n, len, "the write allocated");
	cr_expect(!memcmp(d + HS, img + HS, 4 * HS), "metadata changed");
	qcow_close(q);
	free(img);
}

/* An entry (not COPIED) naming the refcount block: a discard must not
 * release the block. */
Test(hostile, release_of_metadata_refused)
{
	size_t len;
	uint8_t *img = base_image(0, &len);
	set_l2e(img, 1, 2ull * HS);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	cr_expect_eq(qcow_zero(q, HS, HS, QCOW_ZERO_UNMAP), -EIO);
	cr_expect_eq(qcow_flush(q), -EIO);
	cr_expect_eq(refcount_of(be, 2), 1, "the refcount block lost its reference");
	qcow_close(q);
	free(img);
}

/* An entry (not COPIED) naming a free cluster: overwriting it whole must
 * not release it (its refcount would go below 0). */
Test(hostile, release_of_free_cluster_refused)
{
	size_t len;
	uint8_t *img = base_image(1, &len), buf[HS];
	set_l2e(img, 1, 7ull * HS);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	memset(buf, 0x3c, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, HS, HS), -EIO);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(n, len, "the write allocated");
	cr_expect_eq(qt_be64(d + 4ull * HS + 8), 7ull * HS, "the entry changed");
	qcow_close(q);
	free(img);
}

/* Two entries (not COPIED) share cluster 5, whose refcount says 1: the
 * second release would take it below 0.  Nothing is decremented. */
Test(hostile, release_underflow_refused)
{
	size_t len;
	uint8_t *img = base_image(0, &len);
	set_l2e(img, 0, 5ull * HS);
	set_l2e(img, 1, 5ull * HS);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	int r = qcow_zero(q, 0, 2 * HS, QCOW_ZERO_UNMAP);
	if (r == 0)
		r = qcow_flush(q);
	cr_expect_eq(r, -EIO);
	cr_expect_eq(refcount_of(be, 5), 1, "refcount decremented: %llu",
		     (unsigned long long)refcount_of(be, 5));
	qcow_close(q);
	free(img);
}

/*
 * Guest cluster 1 names free cluster 7 (not COPIED); guest cluster 0 is
 * unallocated.  One write over all of cluster 0 and part of cluster 1
 * would give cluster 0 the first free cluster, 7, and the copy-out of
 * cluster 1 would then release 7 -- the cluster this very write just gave
 * to cluster 0.  The L2 slice is refused at its first use, before anything
 * is allocated: the write fails and changes no refcount.
 */
Test(hostile, release_of_own_allocation_refused)
{
	size_t len;
	uint8_t *img = base_image(1, &len), *buf = malloc(HS + 512), *got = malloc(HS);
	set_l2e(img, 0, 0);
	set_l2e(img, 1, 7ull * HS);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	memset(buf, 0x4b, HS + 512);
	cr_expect_eq(qcow_write(q, buf, HS + 512, 0), -EIO);
	cr_expect_eq(refcount_of(be, 7), 0, "refcounts reached the file");
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(n, len, "the refused write allocated");
	cr_expect(!memcmp(d + HS, img + HS, len - HS), "the refused write changed the file");
	cr_assert_eq(qcow_read(q, got, HS, 0), HS);
	for (size_t i = 0; i < HS; i++)
		cr_assert_eq(got[i], 0, "guest cluster 0 changed by a refused write");
	qcow_close(q);
	free(img);
	free(buf);
	free(got);
}

/*
 * Found by the fuzzer: guest cluster 1 names a cluster past the end of the
 * file (not COPIED).  A write to guest cluster 2 grew the file and gave
 * that very cluster to cluster 2; a later write to cluster 1 copied it out
 * and released the cluster under cluster 2's data, which the next
 * allocation handed out again.  The slice naming a cluster past the end of
 * the file is refused at its first use by a writable handle: no write goes
 * through it, the file keeps its length; a read-only handle still reads.
 */
Test(hostile, entry_past_eof_refused)
{
	size_t len;
	uint8_t *img = base_image(0, &len), buf[HS];
	uint64_t past = len / HS; /* the first cluster past the end: the next allocation */
	set_l2e(img, 1, past * HS);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	memset(buf, 0x5a, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, HS, 2 * HS), -EIO);
	cr_expect_eq(qcow_write(q, buf, HS, HS), -EIO);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(n, len, "the file grew: %zu -> %zu", len, n);
	cr_expect(!memcmp(d + HS, img + HS, len - HS), "the refused writes changed the file");
	qcow_close(q);
	int err;
	q = qt_open_mem(img, len, QCOW_RDONLY, NULL, &err);
	cr_assert(q, "read-only open = %d", err);
	cr_expect_eq(qcow_read(q, buf, HS, 0), HS, "a read-only handle reads");
	qcow_close(q);
	free(img);
}

/* The same with a free cluster inside the file (refcount 0), which the
 * allocator would hand out first; and once the slice was accepted (the
 * entries are sound), later uses do not look again. */
Test(hostile, entry_naming_free_cluster_refused)
{
	size_t len;
	uint8_t *img = base_image(2, &len), buf[HS];
	set_l2e(img, 1, 8ull * HS | 1ull << 63);
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	memset(buf, 0x6e, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, HS, 3 * HS), -EIO);
	cr_expect_eq(refcount_of(be, 7), 0, "cluster 7 was allocated");
	cr_expect_eq(refcount_of(be, 8), 0, "cluster 8 was allocated");
	qcow_close(q);
	set_l2e(img, 1, 6ull * HS | 1ull << 63); /* sound again */
	q = open_rw(img, len, &be);
	cr_expect_eq(qcow_write(q, buf, HS, 3 * HS), HS);
	cr_expect_eq(qcow_write(q, buf, HS, 4 * HS), HS);
	cr_expect_eq(qcow_read(q, buf, HS, HS), HS);
	const char *m = qt_check_open(q, be, true);
	cr_expect(!m, "%s", m);
	qcow_close(q);
	free(img);
}

/*
 * An L2 entry whose offset is not cluster-aligned (found by fuzzing: the
 * host cluster it falls in held 16 compressed clusters with refcount 16).
 * Zeroing the guest cluster released the entry's cluster, leaving 16
 * references on refcount 15.  Refused at the slice's first use by a
 * writable handle: the zero fails with EIO and no refcount changes.
 */
Test(hostile, unaligned_entry_refused)
{
	size_t len;
	uint8_t *img = base_image(0, &len);
	set_l2e(img, 1, 5ull * HS + 0xa00); /* inside guest 0's cluster */
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	cr_expect_eq(qcow_zero(q, HS, HS, 0), -EIO);
	cr_expect_eq(qcow_zero(q, 0, HS, QCOW_ZERO_UNMAP), -EIO, "the image is latched");
	(void)qcow_flush(q); /* where deferred releases would be applied */
	cr_expect_eq(refcount_of(be, 6), 1, "cluster 6 was released");
	cr_expect_eq(refcount_of(be, 5), 1, "cluster 5 was released");
	qcow_close(q);
	free(img);
}

/*
 * Guest cluster 0 is a compressed cluster at host offset 5*HS + 300 whose
 * sector count runs on into host cluster 6 -- guest cluster 1's data.  A
 * copy-out of cluster 0 released cluster 6 too; the next allocations
 * handed it out again and guest cluster 1's data was overwritten.  The
 * stream ends in cluster 5, so the descriptor is damage: -EIO.
 */
Test(hostile, compressed_overlong_into_data)
{
	size_t len;
	uint8_t *img = base_image(0, &len), *plain = malloc(HS), *z = malloc(2 * HS);
	uint8_t buf[4096], *two = malloc(2 * HS);
	for (size_t i = 0; i < HS; i++)
		plain[i] = (uint8_t)("overlong descriptor "[i % 20]);
	size_t zl = qt_deflate_raw(plain, HS, z, 2 * HS, 6, -12, 0);
	cr_assert(zl > 0 && zl < HS - 300);
	memset(img + 5ull * HS, 0, HS);
	memcpy(img + 5ull * HS + 300, z, zl);
	unsigned x = 62 - (HB - 8);
	set_l2e(img, 0, 1ull << 62 | ((1ull << (HB - 8)) - 1) << x | (5ull * HS + 300));
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	cr_assert_eq(qcow_read(q, buf, sizeof buf, 0), (ssize_t)sizeof buf, "the stream reads");
	cr_assert(!memcmp(buf, plain, sizeof buf));
	memset(buf, 0x2e, sizeof buf);
	ssize_t w = qcow_write(q, buf, sizeof buf, 100);
	cr_expect_eq(w, -EIO, "copy-out of an overlong descriptor = %zd", w);
	if (w > 0) { /* the bug: two allocations later, cluster 1 is someone else's */
		cr_assert_eq(qcow_flush(q), 0);
		memset(two, 0x77, 2 * HS);
		cr_assert_eq(qcow_write(q, two, 2 * HS, 4 * HS), (ssize_t)(2 * HS));
	}
	cr_assert_eq(qcow_read(q, buf, sizeof buf, HS), (ssize_t)sizeof buf);
	cr_expect_eq(buf[0], 0x41, "guest cluster 1 was overwritten (%#x)", buf[0]);
	cr_expect_eq(refcount_of(be, 6), 1);
	qcow_close(q);
	free(img);
	free(plain);
	free(z);
	free(two);
}

/*
 * Found by fuzz_qcow (kept in tests/fuzz/open until this fix): a host
 * cluster named both by a plain entry and by a compressed descriptor, with
 * a refcount one short of its two references.  Overwriting the compressed
 * guest cluster released it, so the refcount reached 0 while guest cluster
 * 1 still used the cluster, and the next allocation inside the file could
 * take it.  The write must fail with -EIO and release nothing.
 */
Test(hostile, compressed_release_from_plain_cluster_refused)
{
	size_t len;
	uint8_t *img = base_image(0, &len), *plain = malloc(HS), *z = malloc(2 * HS);
	uint8_t *buf = malloc(HS), *g1 = malloc(HS);
	for (size_t i = 0; i < HS; i++)
		plain[i] = (uint8_t)("shared with plain data "[i % 23]);
	size_t zl = qt_deflate_raw(plain, HS, z, 2 * HS, 6, -12, 0);
	cr_assert(zl > 0 && zl < HS - 300);
	memcpy(img + 6ull * HS + 300, z, zl);
	uint64_t extra = (300 + zl + 511) / 512 - 1;
	set_l2e(img, 2, 1ull << 62 | extra << (62 - (HB - 8)) | (6ull * HS + 300));
	struct qcow_backend be;
	struct qcow *q = open_rw(img, len, &be);
	cr_assert_eq(qcow_read(q, buf, HS, 2 * HS), (ssize_t)HS, "the stream reads");
	cr_assert(!memcmp(buf, plain, HS));
	cr_assert_eq(qcow_read(q, g1, HS, HS), (ssize_t)HS);
	memset(buf, 0x2e, HS);
	ssize_t w = qcow_write(q, buf, HS, 2 * HS);
	cr_expect_eq(w, -EIO, "overwriting the compressed cluster = %zd", w);
	(void)qcow_flush(q);
	cr_expect_eq(refcount_of(be, 6), 1, "the plain cluster lost its reference");
	cr_assert_eq(qcow_read(q, buf, HS, HS), (ssize_t)HS);
	cr_expect(!memcmp(buf, g1, HS), "guest cluster 1 changed");
	qcow_close(q);
	free(img);
	free(plain);
	free(z);
	free(buf);
	free(g1);
}
