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
	cr_assert_eq(qcow_close(q), -EIO);
}
