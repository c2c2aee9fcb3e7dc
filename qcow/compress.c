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
#include <dlfcn.h>
#include <pthread.h>
#include <zlib.h>
#include <zstd.h>

/*
 * zlib and libzstd are loaded at the first compressed cluster, not with
 * the library: every process the shim is preloaded into would otherwise
 * map both at start-up (about 3 ms of the shim's 3.5 ms per process here),
 * most of them never reading a compressed cluster.  Without zlib, deflate
 * falls back on the built-in decoder; without libzstd, zstd is -ENOTSUP.
 */
static struct {
	int (*inflateInit2_)(z_streamp, int, const char *, int);
	int (*inflate)(z_streamp, int);
	int (*inflateEnd)(z_streamp);
	ZSTD_DCtx *(*createDCtx)(void);
	size_t (*decompressStream)(ZSTD_DCtx *, ZSTD_outBuffer *, ZSTD_inBuffer *);
	size_t (*freeDCtx)(ZSTD_DCtx *);
	unsigned (*isError)(size_t);
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name)
{
	return h ? dlsym(h, name) : NULL;
}

static void lib_load(void)
{
	void *z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
	lib.inflateInit2_ = (int (*)(z_streamp, int, const char *, int))sym(z, "inflateInit2_");
	lib.inflate = (int (*)(z_streamp, int))sym(z, "inflate");
	lib.inflateEnd = (int (*)(z_streamp))sym(z, "inflateEnd");
	if (!lib.inflateInit2_ || !lib.inflate || !lib.inflateEnd)
		lib.inflateInit2_ = NULL;
	void *d = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
	lib.createDCtx = (ZSTD_DCtx * (*)(void)) sym(d, "ZSTD_createDCtx");
	lib.decompressStream = (size_t (*)(ZSTD_DCtx *, ZSTD_outBuffer *, ZSTD_inBuffer *))sym(
		d, "ZSTD_decompressStream");
	lib.freeDCtx = (size_t (*)(ZSTD_DCtx *))sym(d, "ZSTD_freeDCtx");
	lib.isError = (unsigned (*)(size_t))sym(d, "ZSTD_isError");
	if (!lib.decompressStream || !lib.freeDCtx || !lib.isError)
		lib.createDCtx = NULL;
}

static int inflate_raw(const void *in, size_t inlen, void *out, size_t outlen, size_t *used)
{
	if (!lib.inflateInit2_)
		return qc_inflate_raw_used(in, inlen, out, outlen, used);
	z_stream s = {0};
	if (lib.inflateInit2_(&s, -15, ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK)
		return -ENOMEM;
	s.next_in = (Bytef *)(uintptr_t)in;
	s.avail_in = (uInt)inlen;
	s.next_out = out;
	s.avail_out = (uInt)outlen;
	int r = lib.inflate(&s, Z_FINISH);
	lib.inflateEnd(&s);
	*used = inlen - s.avail_in;
	/* Sector padding follows the stream, so a full buffer is success. */
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && s.avail_out == 0)
		return 0;
	return -EIO;
}

static int zstd_decode(const void *in, size_t inlen, void *out, size_t outlen, size_t *used)
{
	if (!lib.createDCtx)
		return -ENOTSUP;
	ZSTD_DCtx *d = lib.createDCtx();
	if (!d)
		return -ENOMEM;
	ZSTD_inBuffer ib = {in, inlen, 0};
	ZSTD_outBuffer ob = {out, outlen, 0};
	int r = 0;
	while (ob.pos < ob.size) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t z = lib.decompressStream(d, &ob, &ib);
		if (lib.isError(z) || (ib.pos == before_in && ob.pos == before_out)) {
			r = -EIO;
			break;
		}
	}
	lib.freeDCtx(d);
	*used = ib.pos;
	return r;
}

int qc_decompress(unsigned type, const void *in, size_t inlen, void *out, size_t outlen,
		  size_t *used)
{
	pthread_once(&lib_once, lib_load);
	switch (type) {
	case QC_COMPRESSION_DEFLATE: return inflate_raw(in, inlen, out, outlen, used);
	case QC_COMPRESSION_ZSTD: return zstd_decode(in, inlen, out, outlen, used);
	default: return -ENOTSUP;
	}
}
#endif
