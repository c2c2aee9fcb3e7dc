/*
 * test_check.c - the consistency walk (qt_check.c) is itself a test
 * oracle, so it is tested: clean handcrafted images of every geometry are
 * clean, and each kind of damage is reported as qemu-img check would
 * (leak vs. corruption).  Also the crash backend drops and tears writes.
 */
#include <criterion/criterion.h>

#include "qt.h"

#define CS 65536u

static uint8_t *img16(size_t *len)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = 16, .refcount_order = 4,
				 .size = 1 << 20, .data_clusters = 3 };
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	return img;
}

static void expect_check(const uint8_t *img, size_t len, uint64_t errors, uint64_t leaks,
			 const char *what)
{
	struct qt_check c;
	cr_assert_eq(qt_check_image(img, len, &c), 0, "%s: %s", what, c.msg);
	cr_expect_eq(c.errors, errors, "%s: %llu errors, want %llu (%s)", what,
		     (unsigned long long)c.errors, (unsigned long long)errors, c.msg);
	cr_expect_eq(c.leaks, leaks, "%s: %llu leaks, want %llu (%s)", what,
		     (unsigned long long)c.leaks, (unsigned long long)leaks, c.msg);
}

Test(check, clean_every_geometry)
{
	for (unsigned cb = 9; cb <= 21; cb++)
		for (unsigned order = 0; order <= 6; order++) {
			struct qt_img_spec s = { .version = 3, .cluster_bits = cb,
						 .refcount_order = order, .size = 5ull << cb,
						 .data_clusters = 5 };
			size_t len;
			uint8_t *img = qt_build_image(&s, &len);
			cr_assert(img);
			struct qt_check c;
			cr_assert_eq(qt_check_image(img, len, &c), 0);
			cr_expect(c.errors == 0 && c.leaks == 0, "cb %u order %u: %s", cb, order, c.msg);
			cr_expect_eq(c.referenced, 4 + 1 + 5, "cb %u order %u: referenced %llu", cb,
				     order, (unsigned long long)c.referenced);
			free(img);
		}
}

Test(check, detects_damage)
{
	size_t len;
	uint8_t *img = img16(&len);
	expect_check(img, len, 0, 0, "clean");
	/* refcount of the header 2: a leak */
	qt_put16(img + 2 * CS, 2);
	expect_check(img, len, 0, 1, "header refcount 2");
	qt_put16(img + 2 * CS, 1);
	/* refcount of the L1 cluster 0: corruption */
	qt_put16(img + 2 * CS + 2 * 3, 0);
	expect_check(img, len, 1, 0, "L1 refcount 0");
	qt_put16(img + 2 * CS + 2 * 3, 1);
	/* a data cluster without COPIED while refcount is 1 */
	qt_put64(img + 4 * CS, qt_be64(img + 4 * CS) & ~(1ull << 63));
	expect_check(img, len, 1, 0, "COPIED missing");
	qt_put64(img + 4 * CS, qt_be64(img + 4 * CS) | 1ull << 63);
	/* a second reference to the L1 cluster: refcount 1 < 2 references */
	qt_put64(img + 4 * CS + 8 * 10, 3ull * CS | 1ull << 63);
	struct qt_check c;
	qt_check_image(img, len, &c);
	cr_expect_geq(c.errors, 1, "double reference not seen: %s", c.msg);
	qt_put64(img + 4 * CS + 8 * 10, 0);
	/* unreferenced allocated cluster past the data: leak */
	uint8_t *big = calloc(1, len + CS);
	memcpy(big, img, len);
	qt_put16(big + 2 * CS + 2 * (len / CS), 1);
	expect_check(big, len + CS, 0, 1, "leaked cluster");
	free(big);
	/* zero flag in v2 */
	qt_put32(img + QH_VERSION, 2);
	qt_put64(img + 4 * CS, qt_be64(img + 4 * CS) | 1);
	qt_check_image(img, len, &c);
	cr_expect_geq(c.errors, 1, "v2 zero flag not seen");
	free(img);
}

Test(check, sub_byte_refcounts)
{
	for (unsigned order = 0; order < 3; order++) {
		struct qt_img_spec s = { .version = 3, .cluster_bits = 12, .refcount_order = order,
					 .size = 1 << 20, .data_clusters = 2 };
		size_t len;
		uint8_t *img = qt_build_image(&s, &len);
		expect_check(img, len, 0, 0, "clean");
		/* clear the refcount of cluster 5 (a data cluster) */
		unsigned bits = 1u << order;
		img[2 * 4096 + 5 * bits / 8] &= (uint8_t)~(((1u << bits) - 1) << (5 * bits % 8));
		expect_check(img, len, 2, 0, "sub-byte refcount cleared (+ COPIED)");
		free(img);
	}
}

Test(check, crash_backend_model)
{
	uint8_t base[4096] = { 0 };
	struct qt_crash *c = qt_crash_new(base, sizeof base);
	struct qcow_backend be = qt_crash_backend(c);
	uint8_t a[2048];
	memset(a, 0xaa, sizeof a);
	cr_assert_eq(be.ops->pwrite(be.h, a, sizeof a, 0), (ssize_t)sizeof a);
	cr_assert_eq(be.ops->flush(be.h), 0);
	memset(a, 0xbb, sizeof a);
	cr_assert_eq(be.ops->pwrite(be.h, a, sizeof a, 1024), (ssize_t)sizeof a);
	cr_assert_eq(qt_crash_pending(c), 1);
	uint8_t rd[4096];
	cr_assert_eq(be.ops->pread(be.h, rd, sizeof rd, 0), 4096);
	cr_expect_eq(rd[1024], 0xbb, "current view lacks the pending write");
	bool lost = false, applied = false, torn = false;
	for (uint64_t seed = 0; seed < 64; seed++) {
		/* fresh backend per crash: qt_crash_now kills the backend */
		struct qt_crash *d = qt_crash_new(base, sizeof base);
		struct qcow_backend b = qt_crash_backend(d);
		memset(a, 0xaa, sizeof a);
		b.ops->pwrite(b.h, a, sizeof a, 0);
		b.ops->flush(b.h);
		memset(a, 0xbb, sizeof a);
		b.ops->pwrite(b.h, a, sizeof a, 1024);
		size_t n;
		uint8_t *img = qt_crash_now(d, seed, &n);
		cr_assert_eq(n, 4096);
		cr_assert_eq(img[0], 0xaa, "flushed data lost");
		int nb = 0;
		for (int s = 2; s < 6; s++)
			nb += img[s * 512] == 0xbb;
		lost |= nb == 0;
		applied |= nb == 4;
		torn |= nb > 0 && nb < 4;
		cr_assert_eq(b.ops->pwrite(b.h, a, 1, 0), -EIO, "backend alive after crash");
		free(img);
		qt_crash_free(d);
	}
	cr_expect(lost && applied && torn, "crash model: lost %d applied %d torn %d", lost, applied,
		  torn);
	qt_crash_free(c);
}
