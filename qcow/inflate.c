/*
 * inflate.c - a raw deflate (RFC 1951) decoder for builds without zlib
 * (QCOW_NO_CODECS, the musl flavour): qemu's compressed clusters are raw
 * deflate streams that decode to exactly one cluster.  Simple rather than
 * fast: canonical Huffman codes decoded one bit at a time.  Every input
 * and output access is bounds-checked; any malformed stream is -EIO.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qcow_int.h"

#define MAXBITS 15
#define NLITLEN 288
#define NDIST 30

struct ist {
	const uint8_t *in;
	size_t inlen, inpos;
	uint32_t bitbuf; /* bits not yet consumed, LSB first */
	unsigned bitcnt;
	uint8_t *out;
	size_t outlen, outpos;
};

/* A canonical Huffman code: how many codes of each length, and the
 * symbols ordered by code. */
struct huff {
	uint16_t count[MAXBITS + 1];
	uint16_t sym[NLITLEN];
};

static int bits(struct ist *s, unsigned n, unsigned *v)
{
	while (s->bitcnt < n) {
		if (s->inpos >= s->inlen)
			return -EIO;
		s->bitbuf |= (uint32_t)s->in[s->inpos++] << s->bitcnt;
		s->bitcnt += 8;
	}
	*v = s->bitbuf & ((1u << n) - 1);
	s->bitbuf >>= n;
	s->bitcnt -= n;
	return 0;
}

/* Builds h from code lengths; over-subscribed sets are refused (an
 * incomplete set is legal: a code not in it fails when decoded). */
static int huff_build(struct huff *h, const uint8_t *len, unsigned n)
{
	uint16_t offs[MAXBITS + 2];
	memset(h->count, 0, sizeof h->count);
	for (unsigned i = 0; i < n; i++)
		h->count[len[i]]++;
	int left = 1;
	for (unsigned l = 1; l <= MAXBITS; l++) {
		left = left * 2 - h->count[l];
		if (left < 0)
			return -EIO;
	}
	offs[1] = 0;
	for (unsigned l = 1; l <= MAXBITS; l++)
		offs[l + 1] = (uint16_t)(offs[l] + h->count[l]);
	for (unsigned i = 0; i < n; i++)
		if (len[i])
			h->sym[offs[len[i]]++] = (uint16_t)i;
	return 0;
}

/* One symbol: codes of each length are consecutive integers starting
 * right after the previous length's last code, shifted left by one. */
static int decode(struct ist *s, const struct huff *h, unsigned *sym)
{
	int code = 0, first = 0, index = 0;
	for (unsigned l = 1; l <= MAXBITS; l++) {
		unsigned b;
		if (bits(s, 1, &b) < 0)
			return -EIO;
		code |= (int)b;
		int count = h->count[l];
		if (code - first < count) {
			*sym = h->sym[index + code - first];
			return 0;
		}
		index += count;
		first = (first + count) << 1;
		code <<= 1;
	}
	return -EIO;
}

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
				      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
				      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
				       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
				       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
				       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* 1: the output is full (done), 0: block ended, <0: error. */
static int codes(struct ist *s, const struct huff *lit, const struct huff *dist)
{
	for (;;) {
		unsigned sym, e, d;
		if (s->outpos == s->outlen)
			return 1;
		if (decode(s, lit, &sym) < 0)
			return -EIO;
		if (sym < 256) {
			s->out[s->outpos++] = (uint8_t)sym;
			continue;
		}
		if (sym == 256)
			return 0;
		sym -= 257;
		if (sym >= 29 || bits(s, len_extra[sym], &e) < 0)
			return -EIO;
		size_t len = len_base[sym] + e;
		if (decode(s, dist, &sym) < 0 || sym >= 30 || bits(s, dist_extra[sym], &d) < 0)
			return -EIO;
		size_t back = dist_base[sym] + d;
		if (back > s->outpos)
			return -EIO; /* before the start: no preset dictionary */
		if (len > s->outlen - s->outpos)
			len = s->outlen - s->outpos; /* the cluster ends mid-match */
		for (size_t i = 0; i < len; i++, s->outpos++)
			s->out[s->outpos] = s->out[s->outpos - back];
	}
}

static int stored(struct ist *s)
{
	s->bitbuf = 0; /* to the byte boundary */
	s->bitcnt = 0;
	if (s->inlen - s->inpos < 4)
		return -EIO;
	const uint8_t *p = s->in + s->inpos;
	unsigned len = p[0] | (unsigned)p[1] << 8, nlen = p[2] | (unsigned)p[3] << 8;
	if (len != (~nlen & 0xffff))
		return -EIO;
	s->inpos += 4;
	if (s->inlen - s->inpos < len)
		return -EIO;
	size_t n = len < s->outlen - s->outpos ? len : s->outlen - s->outpos;
	memcpy(s->out + s->outpos, s->in + s->inpos, n);
	s->outpos += n;
	s->inpos += len;
	return s->outpos == s->outlen ? 1 : 0;
}

/* The fixed codes of RFC 1951 3.2.6 (built per block: cheap next to a
 * cluster's worth of bit-at-a-time decoding). */
static int fixed(struct ist *s)
{
	struct huff lit, dist;
	uint8_t l[NLITLEN];
	memset(l, 8, 144);
	memset(l + 144, 9, 112);
	memset(l + 256, 7, 24);
	memset(l + 280, 8, 8);
	huff_build(&lit, l, NLITLEN);
	memset(l, 5, NDIST);
	huff_build(&dist, l, NDIST);
	return codes(s, &lit, &dist);
}

static int dynamic(struct ist *s)
{
	static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
	struct huff lit, dist;
	uint8_t len[NLITLEN + NDIST];
	unsigned nlen, ndist, ncode, v;
	if (bits(s, 5, &nlen) < 0 || bits(s, 5, &ndist) < 0 || bits(s, 4, &ncode) < 0)
		return -EIO;
	nlen += 257;
	ndist += 1;
	ncode += 4;
	if (nlen > 286 || ndist > NDIST)
		return -EIO;
	memset(len, 0, 19);
	for (unsigned i = 0; i < ncode; i++) {
		if (bits(s, 3, &v) < 0)
			return -EIO;
		len[order[i]] = (uint8_t)v;
	}
	if (huff_build(&lit, len, 19) < 0) /* the code-length code */
		return -EIO;
	for (unsigned i = 0; i < nlen + ndist;) {
		unsigned sym, rep, fill = 0;
		if (decode(s, &lit, &sym) < 0)
			return -EIO;
		if (sym < 16) {
			len[i++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (i == 0 || bits(s, 2, &rep) < 0)
				return -EIO;
			fill = len[i - 1];
			rep += 3;
		} else if (sym == 17) {
			if (bits(s, 3, &rep) < 0)
				return -EIO;
			rep += 3;
		} else {
			if (bits(s, 7, &rep) < 0)
				return -EIO;
			rep += 11;
		}
		if (i + rep > nlen + ndist)
			return -EIO;
		memset(len + i, (int)fill, rep);
		i += rep;
	}
	if (len[256] == 0) /* no end-of-block code */
		return -EIO;
	if (huff_build(&lit, len, nlen) < 0 || huff_build(&dist, len + nlen, ndist) < 0)
		return -EIO;
	return codes(s, &lit, &dist);
}

/* *used: input bytes the decoder read to fill the cluster. */
int qc_inflate_raw_used(const void *in, size_t inlen, void *out, size_t outlen, size_t *used)
{
	struct ist s = {.in = in, .inlen = inlen, .out = out, .outlen = outlen};
	unsigned last = 0, type;
	while (!last) {
		if (bits(&s, 1, &last) < 0 || bits(&s, 2, &type) < 0)
			return -EIO;
		int r = type == 0 ? stored(&s) : type == 1 ? fixed(&s) : type == 2 ? dynamic(&s) : -EIO;
		if (r < 0)
			return r;
		if (r == 1 || s.outpos == s.outlen) {
			*used = s.inpos;
			return 0; /* one whole cluster; padding may follow */
		}
	}
	return -EIO; /* the stream ended before the cluster did */
}

int qc_inflate_raw(const void *in, size_t inlen, void *out, size_t outlen)
{
	size_t used;
	return qc_inflate_raw_used(in, inlen, out, outlen, &used);
}
