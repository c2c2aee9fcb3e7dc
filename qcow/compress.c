/*
 * compress.c - decoders for compressed clusters: raw deflate (no zlib
 * header, as qemu writes it) and zstd (possibly several frames).  The
 * output is always exactly one cluster; anything else is -EIO, and the
 * decoders never write past outlen.
 *
 * Built with -DQCOW_NO_CODECS (the musl flavour: Debian has no musl-linked
 * zlib or zstd, and a glibc-built one must not be loaded into a musl
 * process), deflate clusters go through the built-in decoder (inflate.c)
 * and zstd clusters are -ENOTSUP, which the reader reports as such (never
 * as corruption).
 */
#include <errno.h>

#include "qcow_int.h"

#ifdef QCOW_NO_CODECS
int qc_decompress(unsigned type, const void *in, size_t inlen, void *out, size_t outlen,
		  size_t *used)
{
	if (type == QC_COMPRESSION_DEFLATE)
		return qc_inflate_raw_used(in, inlen, out, outlen, used);
	return -ENOTSUP;
}
#else
#include <zlib.h>
#include <zstd.h>

static int inflate_raw(const void *in, size_t inlen, void *out, size_t outlen, size_t *used)
{
	z_stream s = {0};
	if (inflateInit2(&s, -15) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)(uintptr_t)in;
	s.avail_in = (uInt)inlen;
	s.next_out = out;
	s.avail_out = (uInt)outlen;
	int r = inflate(&s, Z_FINISH);
	inflateEnd(&s);
	*used = inlen - s.avail_in;
	/* Sector padding follows the stream, so a full buffer is success. */
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && s.avail_out == 0)
		return 0;
	return -EIO;
}

static int zstd_decode(const void *in, size_t inlen, void *out, size_t outlen, size_t *used)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (!d)
		return -ENOMEM;
	ZSTD_inBuffer ib = {in, inlen, 0};
	ZSTD_outBuffer ob = {out, outlen, 0};
	int r = 0;
	while (ob.pos < ob.size) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t z = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(z) || (ib.pos == before_in && ob.pos == before_out)) {
			r = -EIO;
			break;
		}
	}
	ZSTD_freeDCtx(d);
	*used = ib.pos;
	return r;
}

int qc_decompress(unsigned type, const void *in, size_t inlen, void *out, size_t outlen,
		  size_t *used)
{
	switch (type) {
	case QC_COMPRESSION_DEFLATE: return inflate_raw(in, inlen, out, outlen, used);
	case QC_COMPRESSION_ZSTD: return zstd_decode(in, inlen, out, outlen, used);
	default: return -ENOTSUP;
	}
}
#endif
