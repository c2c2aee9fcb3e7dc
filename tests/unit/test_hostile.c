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
	cr_assert_eq(qcow_flush(q), 0);
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
