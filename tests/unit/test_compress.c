/*
 * test_compress.c - compressed clusters built by hand (raw deflate and
 * zstd, as qemu writes them): reads, copy-on-write over them, refcounts
 * afterwards, and damaged compressed data or descriptors (-EIO, never a
 * crash or garbage beyond the cluster).
 */
#include <criterion/criterion.h>
#include <zlib.h>
#include <zstd.h>

#include "qt.h"

#define CB 16
#define CS (1u << CB)

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t len = qt_deflate_raw(in, n, out, cap, 6, -12, Z_DEFAULT_STRATEGY);
	cr_assert(len > 0);
	return len;
}

static void text(uint8_t *buf, size_t n, unsigned salt)
{
	size_t p = 0;
	for (unsigned i = 0; p < n; i++) {
		char line[100];
		int k = snprintf(line, sizeof line, "line %u of cluster %u: the quick brown fox\n", i, salt);
		for (int j = 0; j < k && p < n; j++)
			buf[p++] = (uint8_t)line[j];
	}
}

/* Image with guest cluster 1 compressed at host offset 6*CS + skew. */
static uint8_t *compressed_image(bool zstd, unsigned skew, size_t *len, uint8_t *plain,
				 uint64_t *desc_at)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = CB, .refcount_order = 4,
				 .size = 1 << 20, .data_clusters = 2,
				 .header_length = zstd ? 112 : 104 };
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	if (zstd) {
		img[QH_COMPRESSION] = 1;
		qt_put64(img + QH_INCOMPAT, 1ull << 3);
	}
	text(plain, CS, 1);
	uint8_t *out = malloc(2 * CS);
	size_t clen = zstd ? ZSTD_compress(out, 2 * CS, plain, CS, 3)
			   : deflate_raw(plain, CS, out, 2 * CS);
	cr_assert(clen < CS - skew, "text did not compress");
	memset(img + 6ull * CS, 0, CS);
	memcpy(img + 6ull * CS + skew, out, clen);
	uint64_t hoff = 6ull * CS + skew;
	uint64_t nsect = (hoff % 512 + clen + 511) / 512 - 1;
	unsigned x = 62 - (CB - 8);
	*desc_at = 4ull * CS + 8;
	qt_put64(img + *desc_at, 1ull << 62 | nsect << x | hoff);
	free(out);
	return img;
}

static void compressed_case(bool zstd, unsigned skew)
{
	size_t len;
	uint8_t *plain = malloc(CS), *buf = malloc(CS);
	uint64_t d;
	uint8_t *img = compressed_image(zstd, skew, &len, plain, &d);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(img, len, &chk), 0);
	cr_assert(!chk.errors && !chk.leaks, "handcrafted compressed image: %s", chk.msg);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	cr_assert_eq(qcow_read(q, buf, CS, CS), CS);
	cr_assert(!memcmp(buf, plain, CS), "%s skew %u: decompressed data differs",
		  zstd ? "zstd" : "deflate", skew);
	struct qcow_extent e;
	cr_assert_eq(qcow_map(q, CS, CS, &e), 0);
	cr_expect(e.kind == QCOW_EXT_DATA && e.allocated && e.len == CS);
	/* copy-on-write over the compressed cluster */
	memset(plain + 1000, 0x7a, 3000);
	cr_assert_eq(qcow_write(q, plain + 1000, 3000, CS + 1000), 3000);
	cr_assert_eq(qcow_read(q, buf, CS, CS), CS);
	cr_assert(!memcmp(buf, plain, CS), "after COW over a compressed cluster");
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "after COW: %s", m);
	qcow_close(q);
	free(img);
	free(plain);
	free(buf);
}

Test(compress, deflate_aligned) { compressed_case(false, 0); }
Test(compress, deflate_unaligned) { compressed_case(false, 777); }
Test(compress, zstd_aligned) { compressed_case(true, 0); }
Test(compress, zstd_unaligned) { compressed_case(true, 1234); }

/* Damaged compressed clusters: -EIO (or data, if the damage decodes), no
 * crash; the sector count pointing past EOF; flipped stream bytes. */
Test(compress, damage)
{
	for (int zstd = 0; zstd < 2; zstd++) {
		size_t len;
		uint8_t *plain = malloc(CS), *buf = malloc(CS);
		uint64_t d;
		uint8_t *orig = compressed_image(zstd, 300, &len, plain, &d);
		uint64_t rng = 5 + (uint64_t)zstd;
		uint8_t *img = malloc(len);
		for (unsigned it = 0; it < qt_reps(100, 400); it++) {
			memcpy(img, orig, len);
			unsigned x = 62 - (CB - 8);
			switch (it % 4) {
			case 0: /* sector count to its maximum */
				qt_put64(img + d, qt_be64(img + d) | ((1ull << (CB - 8)) - 1) << x);
				break;
			case 1: /* a smaller sector count: truncated stream */
				qt_put64(img + d, (qt_be64(img + d) & ~(((1ull << (CB - 8)) - 1) << x)));
				break;
			default: /* flip stream bytes */
				for (unsigned k = 0; k < 1 + it % 5; k++)
					img[6ull * CS + 300 + qt_below(&rng, 2000)] ^=
						(uint8_t)(1 + qt_below(&rng, 255));
			}
			struct qcow *q = qt_open_mem(img, len, 0, NULL, NULL);
			cr_assert(q);
			memset(buf, 0xa5, CS);
			ssize_t r = qcow_read(q, buf, CS, CS);
			cr_assert(r == CS || r == -EIO, "%s damage %u: read = %zd", zstd ? "zstd" : "deflate",
				  it, r);
			if (it % 4 == 1)
				cr_expect_eq(r, -EIO, "truncated compressed stream read as data");
			uint8_t b[100];
			memset(b, 1, sizeof b);
			ssize_t w = qcow_write(q, b, sizeof b, CS + 5);
			cr_assert(w == 100 || w == -EIO, "write over damaged = %zd", w);
			qcow_close(q);
		}
		free(img);
		free(orig);
		free(plain);
		free(buf);
	}
}
