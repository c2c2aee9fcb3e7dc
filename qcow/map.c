/*
 * map.c - guest-to-host translation and the read path.
 *
 * qc_map_run() returns the longest run starting at voff that reads the same
 * way (same subcluster type, host-contiguous for data), bounded by one L2
 * slice; or, !readable, only of the same type (hoff and l2e then describe
 * its first cluster): qcow_map's callers (st_blocks, SEEK_DATA) ask what a
 * range is, not where it lies, and an image written in random order would
 * otherwise cost them one run per cluster.  The read path, qcow_map() (SEEK_DATA/HOLE, st_blocks) and the
 * write path's copy-on-write all go through it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

static int entry_type(struct qcow *q, uint64_t l2e, uint64_t bm, unsigned sc,
		      enum qc_sc_type *t)
{
	*t = qc_sc_type(l2e, bm, sc, q->extl2, (int)q->version, q->has_data_file);
	if (*t == SC_INVALID)
		return qc_corrupt(q, "invalid L2 entry 0x%llx (bitmap 0x%llx)", (unsigned long long)l2e,
				  (unsigned long long)bm);
	if (*t != SC_COMPRESSED && (l2e & L2E_OFFSET_MASK & (q->cluster_size - 1)))
		return qc_corrupt(q, "L2 entry 0x%llx: host offset not cluster aligned",
				  (unsigned long long)l2e);
	if (*t == SC_COMPRESSED && q->has_data_file)
		return qc_corrupt(q, "compressed cluster in an image with an external data file");
	if (*t == SC_COMPRESSED && q->extl2 && bm)
		return qc_corrupt(q, "compressed L2 entry with a subcluster bitmap");
	return 0;
}

/*
 * Is this L2 entry one the write path may act on?  The read path checks
 * the same per subcluster (entry_type) and reports what is wrong.
 */
bool qc_l2e_valid(struct qcow *q, uint64_t l2e, uint64_t bm)
{
	enum qc_sc_type t = qc_sc_type(l2e, bm, 0, q->extl2, (int)q->version, q->has_data_file);
	if (t == SC_INVALID)
		return false;
	if (t == SC_COMPRESSED)
		return !q->has_data_file && !(q->extl2 && bm);
	return !(l2e & L2E_OFFSET_MASK & (q->cluster_size - 1));
}

int qc_map_run(struct qcow *q, uint64_t voff, uint64_t max, struct qc_run *run, bool readable)
{
	uint64_t cs = q->cluster_size, scs = 1ull << q->sc_bits;
	uint64_t cluster = voff >> q->cluster_bits;
	struct qc_cent *e;
	unsigned idx;
	int r = qc_l2_slice(q, cluster, false, &e, &idx);
	if (r < 0)
		return r;
	memset(run, 0, sizeof(*run));
	if (!e) { /* no L2 table: the rest of this L1 entry's span is unallocated */
		uint64_t span = 1ull << (q->cluster_bits + q->l2_bits);
		uint64_t left = span - (voff & (span - 1));
		run->type = SC_UNALLOC_PLAIN;
		run->len = left < max ? left : max;
		return 0;
	}
	unsigned per_slice = (unsigned)(q->l2_slice_bytes / q->l2_entry_bytes);
	uint64_t pos = voff, want_hoff = 0;
	bool first = true;
	while (pos < voff + max && idx < per_slice) {
		/* A run of unallocated clusters goes on over zero entries without
		 * decoding them (a zero standard entry is always unallocated):
		 * st_blocks of a mostly empty disk maps every entry */
		if (!first && run->type == SC_UNALLOC_PLAIN && !q->extl2) {
			const uint64_t *raw = (const uint64_t *)(const void *)e->buf;
			while (idx < per_slice && !raw[idx] && pos < voff + max) {
				uint64_t step = cs - (pos & (cs - 1));
				pos += step < voff + max - pos ? step : voff + max - pos;
				if (!(pos & (cs - 1)))
					idx++;
			}
			if (pos >= voff + max || idx >= per_slice)
				break;
		}
		uint64_t l2e, bm;
		qc_l2_entry(q, e, idx, &l2e, &bm);
		unsigned sc = (unsigned)((pos & (cs - 1)) >> q->sc_bits);
		enum qc_sc_type t;
		if ((r = entry_type(q, l2e, bm, sc, &t)) < 0)
			break;
		uint64_t hoff = (l2e & L2E_OFFSET_MASK) + (pos & (cs - 1));
		if (first) {
			run->type = t;
			run->hoff = hoff;
			run->l2e = l2e;
			first = false;
		} else if (t != run->type ||
			   (readable && (t == SC_COMPRESSED || (t == SC_NORMAL && hoff != want_hoff)))) {
			break;
		}
		uint64_t step = scs - (pos & (scs - 1));
		if (step > voff + max - pos)
			step = voff + max - pos;
		pos += step;
		want_hoff = hoff + step;
		if (!(pos & (cs - 1)))
			idx++;
	}
	qc_cache_put(e);
	run->len = pos - voff;
	return r;
}

/* Decompress the cluster an entry describes into q->zbuf (cached). */
int qc_read_compressed(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len, cs = q->cluster_size;
	if (q->zbuf_valid && q->zbuf_l2e == l2e)
		return 0;
	int r = qc_check_compressed(q, l2e); /* release.c */
	if (r < 0)
		return r;
	qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
	if ((!q->zbuf && !(q->zbuf = malloc(cs))) || (!q->zin && !(q->zin = malloc(2 * cs))))
		return -ENOMEM;
	q->zbuf_valid = false;
	r = qc_pread(q, &q->data_be, q->zin, len, hoff, false);
	if (r < 0)
		return r;
	r = qc_decompress(q->compression_type, q->zin, len, q->zbuf, cs, &q->zbuf_used);
	if (r == -ENOTSUP) { /* a build without decoders (QCOW_NO_CODECS) */
		if (!q->zcodec_logged)
			qc_log(q, "compressed clusters cannot be read: this build has no %s decoder "
				  "(built without libzstd, as the musl flavour is)",
			       q->compression_type ? "zstd" : "deflate");
		q->zcodec_logged = true;
		return r;
	}
	if (r < 0)
		return qc_corrupt(q, "compressed cluster at 0x%llx does not decompress",
				  (unsigned long long)hoff);
	q->zbuf_l2e = l2e;
	q->zbuf_valid = true;
	return 0;
}

/* Read [voff, voff+n), all within the virtual size. */
int qc_read_locked(struct qcow *q, uint8_t *buf, uint64_t n, uint64_t voff)
{
	while (n) {
		struct qc_run run;
		int r = qc_map_run(q, voff, n, &run, true);
		if (r < 0)
			return r;
		switch (run.type) {
		case SC_NORMAL:
			r = qc_pread(q, &q->data_be, buf, run.len, run.hoff, false);
			break;
		case SC_COMPRESSED:
			if (!(r = qc_read_compressed(q, run.l2e)))
				memcpy(buf, q->zbuf + (voff & (q->cluster_size - 1)), run.len);
			break;
		case SC_UNALLOC_PLAIN:
		case SC_UNALLOC_ALLOC:
			r = qc_backing_read(q, buf, run.len, voff);
			break;
		default:
			memset(buf, 0, run.len);
			break;
		}
		if (r < 0)
			return r;
		buf += run.len;
		voff += run.len;
		n -= run.len;
	}
	return 0;
}
