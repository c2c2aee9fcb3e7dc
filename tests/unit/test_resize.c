/*
 * test_resize.c - grow (with L1 growth and relocation) and shrink (freeing
 * what lies beyond, zeroing the kept tail of the last cluster).
 */
#include <criterion/criterion.h>

#include "qt.h"

static void fill_all(struct qcow *q, uint64_t size, uint64_t seed)
{
	uint8_t *buf = malloc(size);
	qt_fill_pattern(buf, size, seed);
	cr_assert_eq(qcow_write(q, buf, size, 0), (ssize_t)size);
	free(buf);
}

static void expect_pattern(struct qcow *q, uint64_t off, uint64_t n, uint64_t total, uint64_t seed)
{
	uint8_t *want = malloc(total), *got = malloc(n);
	qt_fill_pattern(want, total, seed);
	cr_assert_eq(qcow_read(q, got, n, off), (ssize_t)n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(got[i], want[off + i], "byte %#llx: %#x want %#x",
			     (unsigned long long)(off + i), got[i], want[off + i]);
	free(want);
	free(got);
}

static void expect_zero(struct qcow *q, uint64_t off, uint64_t n)
{
	uint8_t *got = malloc(n);
	cr_assert_eq(qcow_read(q, got, n, off), (ssize_t)n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(got[i], 0, "byte %#llx is %#x, want 0", (unsigned long long)(off + i),
			     got[i]);
	free(got);
}

/* 512-byte clusters: 64 L1 entries of 32 KiB; growing to 64 MiB needs a
 * 16 KiB L1, i.e. a relocated multi-cluster table. */
Test(resize, grow_relocates_l1)
{
	for (unsigned order = 0; order <= 6; order += 3) {
		struct qcow_create_opts c = { .size = 1 << 20, .cluster_bits = 9,
					      .refcount_bits = 1u << order };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem(&c, &be);
		cr_assert(q);
		fill_all(q, 1 << 20, 5);
		cr_assert_eq(qcow_resize(q, 64 << 20), 0);
		cr_expect_eq(qcow_size(q), 64 << 20);
		expect_pattern(q, 0, 1 << 20, 1 << 20, 5);
		expect_zero(q, 1 << 20, 1 << 20);
		uint8_t b[600];
		memset(b, 0x99, sizeof b);
		cr_assert_eq(qcow_write(q, b, sizeof b, (64 << 20) - 600), 600);
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "after grow: %s", m);
		size_t len;
		cr_assert_eq(qcow_checkpoint(q), 0);
		uint8_t *bytes = qt_mem_copy(be, &len);
		cr_expect_geq(qt_be32(bytes + QH_L1_SIZE), (64u << 20) / (512 * 64));
		cr_expect_eq(qt_be64(bytes + QH_SIZE), 64 << 20);
		qcow_close(q);
		int err;
		q = qt_open_mem(bytes, len, 0, NULL, &err);
		cr_assert(q, "reopen = %d", err);
		expect_pattern(q, 0, 1 << 20, 1 << 20, 5);
		cr_assert_eq(qcow_read(q, b, 600, (64 << 20) - 600), 600);
		cr_expect_eq(b[0], 0x99);
		qcow_close(q);
		free(bytes);
	}
}

Test(resize, grow_huge_64k)
{
	struct qcow_create_opts c = { .size = 1 << 20 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	fill_all(q, 1 << 20, 6);
	cr_assert_eq(qcow_resize(q, 2ull << 40), 0);
	uint8_t b[100];
	memset(b, 0x42, sizeof b);
	cr_assert_eq(qcow_write(q, b, sizeof b, (2ull << 40) - 100), 100);
	expect_pattern(q, 0, 1 << 20, 1 << 20, 6);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	int r = qcow_resize(q, 1ull << 63);
	cr_expect(r == -EFBIG || r == -EINVAL, "resize to 2^63 = %d", r);
	cr_expect_eq(qcow_size(q), 2ull << 40);
	qcow_close(q);
}

/* Shrink to the middle of a cluster, then grow again: everything past the
 * shrink point reads as zeros, and the clusters past it are freed. */
static void shrink_grow(unsigned version, unsigned cb, unsigned order)
{
	uint64_t cs = 1ull << cb, size = 100 * cs;
	struct qcow_create_opts c = { .size = size, .cluster_bits = cb, .version = version,
				      .refcount_bits = 1u << order };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	fill_all(q, size, 7);
	uint64_t cut = 37 * cs + 512;
	cr_assert_eq(qcow_resize(q, cut), 0);
	cr_expect_eq(qcow_size(q), cut);
	const char *m = qt_check_open(q, be, false);
	cr_assert(!m, "after shrink (cb %u): %s", cb, m);
	struct qt_check chk;
	size_t len;
	const uint8_t *d = qcow_backend_mem_data(be, &len);
	cr_assert_eq(qt_check_image(d, len, &chk), 0);
	cr_expect_leq(chk.referenced, 38 + 10, "%llu clusters still referenced after shrink",
		      (unsigned long long)chk.referenced);
	uint8_t b[1024];
	cr_expect_eq(qcow_read(q, b, sizeof b, cut), 0);
	cr_expect_eq(qcow_write(q, b, 1, cut), -ENOSPC);
	cr_assert_eq(qcow_resize(q, size), 0);
	expect_pattern(q, 0, cut, size, 7);
	expect_zero(q, cut, size - cut);
	m = qt_check_open(q, be, false);
	cr_assert(!m, "after regrow: %s", m);
	qcow_close(q);
}

Test(resize, shrink_grow_64k) { shrink_grow(3, 16, 4); }
Test(resize, shrink_grow_512_rb1) { shrink_grow(3, 9, 0); }
Test(resize, shrink_grow_4k_v2) { shrink_grow(2, 12, 4); }
Test(resize, shrink_grow_1m_rb64) { shrink_grow(3, 20, 6); }

Test(resize, shrink_to_zero_and_back)
{
	struct qcow_create_opts c = { .size = 1 << 20, .cluster_bits = 12 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	fill_all(q, 1 << 20, 8);
	int r = qcow_resize(q, 0);
	if (r == 0) {
		cr_expect_eq(qcow_size(q), 0);
		const char *m = qt_check_open(q, be, false);
		cr_expect(!m, "%s", m);
	} else {
		cr_expect_eq(r, -EINVAL);
	}
	cr_assert_eq(qcow_resize(q, 1 << 20), 0);
	if (r == 0)
		expect_zero(q, 0, 1 << 20);
	else
		expect_pattern(q, 0, 1 << 20, 1 << 20, 8);
	qcow_close(q);
}
