/*
 * test_inflate.c - qcow/inflate.c, the raw deflate decoder that builds
 * without zlib use (QCOW_NO_CODECS, the musl flavour), checked against
 * zlib: every block type, level and strategy zlib produces decodes to the
 * same bytes; streams that end early, overlong outputs and references
 * before the start are -EIO; damaged and random input never reads or
 * writes out of bounds (ASan) and never succeeds with garbage length.
 */
#include <criterion/criterion.h>
#include <zlib.h>

#include "qt.h"

int qc_inflate_raw(const void *in, size_t inlen, void *out, size_t outlen);

static uint32_t seed = 7;
static uint32_t rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* Data of five kinds: zeros, random, small alphabet, runs, and text with
 * repeats near and far (long matches, all distance codes). */
static void data(uint8_t *b, size_t n, int kind)
{
	for (size_t i = 0; i < n; i++) {
		switch (kind) {
		case 0: b[i] = 0; break;
		case 1: b[i] = (uint8_t)rnd(); break;
		case 2: b[i] = (uint8_t)"acgt"[rnd() % 4]; break;
		case 3: b[i] = (uint8_t)(i / 300); break;
		default:
			b[i] = i < 64 || rnd() % 20 == 0 ? (uint8_t)rnd()
							 : b[i - 1 - rnd() % (i < 30000 ? i - 1 : 30000)];
		}
	}
}

static size_t zdeflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level,
		       int wbits, int strategy)
{
	size_t len = qt_deflate_raw(in, n, out, cap, level, wbits, strategy);
	cr_assert(len > 0);
	return len;
}

Test(inflate, same_bytes_as_zlib)
{
	static const int levels[] = {0, 1, 6, 9};
	static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
	static const size_t sizes[] = {512, 65536};
	size_t cap = 2 * 65536 + 1024;
	uint8_t *src = malloc(65536), *z = malloc(cap);
	cr_assert(src && z);
	for (size_t si = 0; si < 2; si++)
		for (int kind = 0; kind < 5; kind++)
			for (int li = 0; li < 4; li++)
				for (int st = 0; st < 5; st++) {
					size_t n = sizes[si];
					data(src, n, kind);
					int wbits = (kind + li) % 2 ? -12 : -15; /* qemu: -12 */
					size_t zl = zdeflate(src, n, z, cap, levels[li], wbits, strategies[st]);
					memset(z + zl, 0, 512); /* sector padding follows */
					uint8_t *out = malloc(n);
					cr_assert(out);
					cr_assert_eq(qc_inflate_raw(z, zl + 512, out, n), 0,
						     "size %zu kind %d level %d strategy %d", n, kind,
						     levels[li], strategies[st]);
					cr_assert(!memcmp(out, src, n), "size %zu kind %d level %d strategy %d",
						  n, kind, levels[li], strategies[st]);
					/* the stream ends before a bigger output does */
					uint8_t *big = malloc(n + 1);
					cr_assert(big);
					cr_assert_eq(qc_inflate_raw(z, zl, big, n + 1), -EIO);
					/* and cut short, it never claims the whole output */
					if (zl > 16 && kind != 0)
						cr_assert_eq(qc_inflate_raw(z, zl / 2, out, n), -EIO);
					free(big);
					free(out);
				}
	free(src);
	free(z);
}

Test(inflate, malformed_streams)
{
	uint8_t out[16];
	/* a fixed-Huffman block whose first symbol is a match (nothing to
	 * copy from): BFINAL=1, BTYPE=01, length code 257 (0000001), distance 0 */
	const uint8_t back[] = {0x03, 0x02, 0x00};
	cr_assert_eq(qc_inflate_raw(back, sizeof back, out, sizeof out), -EIO);
	/* a stored block whose NLEN is not the complement of LEN */
	const uint8_t stored[] = {0x01, 0x04, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd'};
	cr_assert_eq(qc_inflate_raw(stored, sizeof stored, out, 4), -EIO);
	/* the reserved block type 3 */
	const uint8_t reserved[] = {0x07, 0x00};
	cr_assert_eq(qc_inflate_raw(reserved, sizeof reserved, out, sizeof out), -EIO);
	/* a valid stored block fills exactly four bytes */
	const uint8_t ok[] = {0x01, 0x04, 0x00, 0xfb, 0xff, 'a', 'b', 'c', 'd'};
	cr_assert_eq(qc_inflate_raw(ok, sizeof ok, out, 4), 0);
	cr_assert(!memcmp(out, "abcd", 4));
	cr_assert_eq(qc_inflate_raw(ok, 0, out, 4), -EIO);
}

/* Random bytes and bit flips of a valid stream: any result, but only
 * within the buffers (an exactly-sized heap buffer: ASan sees overruns). */
Test(inflate, damaged_input_stays_in_bounds)
{
	size_t n = 65536, cap = 2 * n;
	uint8_t *src = malloc(n), *z = malloc(cap), *out = malloc(n);
	cr_assert(src && z && out);
	data(src, n, 4);
	size_t zl = zdeflate(src, n, z, cap, 6, -12, Z_DEFAULT_STRATEGY);
	for (int k = 0; k < 400; k++) {
		uint8_t *c = malloc(zl);
		cr_assert(c);
		memcpy(c, z, zl);
		for (int f = 0; f <= k % 4; f++)
			c[rnd() % zl] ^= (uint8_t)(1u << (rnd() % 8));
		qc_inflate_raw(c, zl, out, n);
		free(c);
	}
	for (int k = 0; k < 2000; k++) {
		size_t l = 1 + rnd() % 600;
		uint8_t *c = malloc(l);
		cr_assert(c);
		for (size_t i = 0; i < l; i++)
			c[i] = (uint8_t)rnd();
		c[0] = (uint8_t)((c[0] & ~6u) | (k % 2 ? 4 : 2)); /* dynamic or fixed */
		qc_inflate_raw(c, l, out, n);
		free(c);
	}
	free(src);
	free(z);
	free(out);
}
