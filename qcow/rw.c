/*
 * rw.c - the write path and write-zeroes/discard.
 *
 * A write is cut at L2-slice boundaries; inside a slice, clusters fall in
 * three classes:
 *   in place   - a host cluster we own alone (COPIED) whose touched
 *                subclusters hold data, or which the write covers whole:
 *                host-contiguous runs become one pwrite;
 *   new        - a whole-cluster write to anything else (unallocated,
 *                zero, compressed, shared with a snapshot): consecutive
 *                clusters get one contiguous allocation and one pwrite;
 *   partial    - the rest: read the old contents (data, zeros, backing,
 *                compressed), merge, write, at subcluster granularity.
 * Zeros written where the disk already reads zeros are skipped.  Old
 * clusters are released through the deferred free list (alloc.c), and new
 * L2 entries only reach the file after the data (l2.c, image.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

struct wctx {
	struct qcow *q;
	struct qc_cent *e;
	unsigned idx, per_slice;
};

static uint32_t sc_mask(struct qcow *q, uint64_t in, uint64_t len)
{
	unsigned a = (unsigned)(in >> q->sc_bits), b = (unsigned)((in + len - 1) >> q->sc_bits);
	if (!q->extl2)
		return 1;
	return (uint32_t)((SC_ALL >> (31 - b + a)) << a);
}

enum wclass { W_INPLACE, W_NEW, W_PARTIAL, W_INVALID };

static enum wclass classify(struct qcow *q, uint64_t l2e, uint64_t bm, uint64_t in, uint64_t len)
{
	bool full = len == q->cluster_size;
	/* A misaligned or reserved-bit entry must not be written through (a
	 * misaligned in-place write would spill into the next cluster) nor
	 * released (its "cluster" is not one). */
	if (!qc_l2e_valid(q, l2e, bm))
		return W_INVALID;
	bool own = qc_l2e_owns(q, l2e) && (l2e & QC_COPIED);
	if (own) {
		if (full)
			return W_INPLACE;
		if (!q->extl2 && !(l2e & L2E_ZERO))
			return W_INPLACE;
		uint32_t m = sc_mask(q, in, len);
		if (q->extl2 && ((uint32_t)bm & m) == m)
			return W_INPLACE;
		return W_PARTIAL;
	}
	return full ? W_NEW : W_PARTIAL;
}

/* The entry after writing [in, in+len) of a cluster now at hoff. */
static void entry_after(struct qcow *q, uint64_t old_bm, bool fresh_from_compressed, uint64_t hoff,
			uint64_t in, uint64_t len, uint64_t *l2e, uint64_t *bm)
{
	*l2e = hoff | QC_COPIED;
	if (!q->extl2) {
		*bm = 0;
		return;
	}
	uint32_t m = sc_mask(q, in, len);
	uint32_t alloc = fresh_from_compressed ? SC_ALL : (uint32_t)old_bm | m;
	uint32_t zero = fresh_from_compressed ? 0 : (uint32_t)(old_bm >> 32) & ~m;
	*bm = (uint64_t)zero << 32 | alloc;
}

static int data_write(struct qcow *q, const void *buf, uint64_t n, uint64_t hoff)
{
	int r = q->has_data_file ? 0 : qc_check_write(q, hoff, n, QC_META_NONE);
	return r < 0 ? r : qc_pwrite(q, &q->data_be, buf, n, hoff);
}

/*
 * Host clusters for guest data at voff.  With an external data file the
 * data sits at the guest offset and is not refcounted (spec); otherwise
 * the allocator places it.
 */
static int data_alloc(struct qcow *q, uint64_t voff, uint64_t want, bool exact, uint64_t *hoff,
		      uint64_t *got)
{
	if (q->has_data_file) {
		*hoff = voff & ~(q->cluster_size - 1);
		*got = want;
		return 0;
	}
	return qc_alloc(q, want, exact, hoff, got);
}

/* Writing the contents of clusters just allocated failed (ENOSPC, EDQUOT,
 * EIO): nothing names them, so they go back (alloc.c).  Returns err. */
static int undo_alloc(struct qcow *q, uint64_t hoff, uint64_t n, int err)
{
	if (!q->has_data_file)
		(void)qc_alloc_undo(q, hoff, n);
	return err;
}

/* In-place run: clusters we own, host-contiguous. Returns bytes consumed. */
static int64_t write_inplace(struct wctx *w, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	struct qcow *q = w->q;
	uint64_t cs = q->cluster_size, done = 0, hoff0 = 0;
	unsigned i = w->idx;
	while (done < n && i < w->per_slice) {
		uint64_t in = (voff + done) & (cs - 1), len = cs - in, l2e, bm;
		if (len > n - done)
			len = n - done;
		qc_l2_entry(q, w->e, i, &l2e, &bm);
		if (classify(q, l2e, bm, in, len) != W_INPLACE)
			break;
		uint64_t hoff = (l2e & L2E_OFFSET_MASK) + in;
		if (done && hoff != hoff0 + done)
			break;
		if (!done)
			hoff0 = hoff;
		done += len;
		i++;
	}
	int r = data_write(q, buf, done, hoff0);
	if (r < 0)
		return r;
	for (uint64_t pos = 0; pos < done; w->idx++) { /* clear zero flags / set alloc bits */
		uint64_t in = (voff + pos) & (cs - 1), len = cs - in, l2e, bm, nl2e, nbm;
		if (len > done - pos)
			len = done - pos;
		qc_l2_entry(q, w->e, w->idx, &l2e, &bm);
		entry_after(q, bm, false, l2e & L2E_OFFSET_MASK, in, len, &nl2e, &nbm);
		if (nl2e != l2e || nbm != bm) {
			/* the cluster may hold stale bytes where it read as zeros:
			 * the data must be durable before the entry that shows it */
			q->barrier = true;
			qc_l2_set(q, w->e, w->idx, nl2e, nbm);
		}
		pos += len;
	}
	if ((voff + done) & (cs - 1))
		w->idx--; /* ended inside a cluster: stay on it */
	return (int64_t)done;
}

static bool entry_reads_zero(struct qcow *q, uint64_t l2e, uint64_t bm, uint64_t in, uint64_t len);

/* Whole new clusters: one allocation, one pwrite. Returns bytes consumed. */
static int64_t write_new(struct wctx *w, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	struct qcow *q = w->q;
	uint64_t cs = q->cluster_size, k = 0, hoff, got;
	int r;
	for (unsigned i = w->idx; i < w->per_slice && (k + 1) * cs <= n; i++, k++) {
		uint64_t l2e, bm;
		qc_l2_entry(q, w->e, i, &l2e, &bm);
		if (classify(q, l2e, bm, 0, cs) != W_NEW)
			break;
		/* what the entry held must be releasable before anything is allocated */
		if ((r = qc_check_l2e_release(q, l2e)) < 0)
			return r;
	}
	r = data_alloc(q, voff, k, false, &hoff, &got);
	if (r < 0)
		return r;
	if ((r = data_write(q, buf, got * cs, hoff)) < 0)
		return undo_alloc(q, hoff, got, r);
	for (uint64_t i = 0; i < got; i++, w->idx++) {
		uint64_t l2e, bm, nl2e, nbm;
		qc_l2_entry(q, w->e, w->idx, &l2e, &bm);
		/* replacing contents that were there: new data durable first
		 * (a crash must show the old or the new cluster, not zeros) */
		if (!entry_reads_zero(q, l2e, bm, 0, cs))
			q->barrier = true;
		if ((r = qc_l2_release(q, l2e)) < 0)
			return r;
		entry_after(q, bm, true, hoff + i * cs, 0, cs, &nl2e, &nbm);
		qc_l2_set(q, w->e, w->idx, nl2e, nbm);
	}
	return (int64_t)(got * cs);
}

/*
 * A partial write into a cluster that reads as zeros and that we do not
 * own: a fresh host cluster past the end of the file already reads as
 * zeros, so only the new bytes are written; the file is extended to cover
 * the cluster at the next sync, before any L2 entry can point to it (reads
 * past the end of the file meanwhile are zeros).  Returns bytes consumed, 0 if not applicable (*hoff
 * then holds a cluster already allocated for the caller), or -errno.
 */
static int64_t write_fresh(struct wctx *w, const uint8_t *buf, uint64_t in, uint64_t len,
			   uint64_t l2e, uint64_t bm, uint64_t *hoff)
{
	struct qcow *q = w->q;
	uint64_t cs = q->cluster_size, got, nl2e, nbm;
	int r = qc_alloc(q, 1, true, hoff, &got);
	if (r < 0)
		return r;
	if (*hoff < q->file_end && !q->alloc_fresh)
		return 0; /* a reused cluster may hold stale bytes */
	if ((r = data_write(q, buf, len, *hoff + in)) < 0)
		return undo_alloc(q, *hoff, 1, r);
	if (q->file_end < *hoff + cs) { /* one truncate per sync, not per cluster */
		q->file_end = *hoff + cs;
		q->extend_pending = true;
	}
	if ((r = qc_l2_release(q, l2e)) < 0)
		return r;
	entry_after(q, bm, false, *hoff, in, len, &nl2e, &nbm);
	qc_l2_set(q, w->e, w->idx, nl2e, nbm);
	if (!((in + len) & (cs - 1)))
		w->idx++;
	return (int64_t)len;
}

/*
 * Part of one cluster that needs the old contents merged in.  Reads the old
 * contents of the touched subclusters (or of the whole cluster when it
 * moves), merges, writes.
 */
static int64_t write_partial(struct wctx *w, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	struct qcow *q = w->q;
	uint64_t cs = q->cluster_size, scs = 1ull << q->sc_bits, in = voff & (cs - 1);
	uint64_t len = cs - in < n ? cs - in : n, l2e, bm, nl2e, nbm, hoff;
	qc_l2_entry(q, w->e, w->idx, &l2e, &bm);
	bool own = qc_l2e_owns(q, l2e) && (l2e & QC_COPIED), allocated = false;
	int r;
	/* what the entry held must be releasable before anything is allocated
	 * (a compressed descriptor reaching past the end of the file would
	 * otherwise release the cluster allocated here) */
	if (!own && (r = qc_check_l2e_release(q, l2e)) < 0)
		return r;
	if (!own && !q->has_data_file && entry_reads_zero(q, l2e, bm, 0, cs)) {
		int64_t done = write_fresh(w, buf, in, len, l2e, bm, &hoff);
		if (done)
			return done;
		allocated = true;
	}
	uint64_t a = own ? in & ~(scs - 1) : 0, b = own ? (in + len + scs - 1) & ~(scs - 1) : cs;
	if (!q->wbuf && !(q->wbuf = malloc(cs)))
		return -ENOMEM;
	uint8_t *tmp = q->wbuf;
	uint64_t cvoff = voff - in;
	r = qc_read_locked(q, tmp, b - a, cvoff + a);
	if (r < 0)
		goto undo;
	memcpy(tmp + (in - a), buf, len);
	if (!own) /* old contents copied into a new cluster: durable first */
		q->barrier = true;
	if (own) {
		hoff = l2e & L2E_OFFSET_MASK;
	} else if (!allocated) {
		uint64_t got;
		if ((r = data_alloc(q, voff, 1, true, &hoff, &got)) < 0)
			goto out;
		allocated = true;
	}
	if ((r = data_write(q, tmp, b - a, hoff + a)) < 0)
		goto undo;
	if (!own && (r = qc_l2_release(q, l2e)) < 0)
		goto out;
	entry_after(q, bm, (l2e & L2E_COMPRESSED) != 0, hoff, in, len, &nl2e, &nbm);
	if (own && (nl2e != l2e || nbm != bm))
		q->barrier = true; /* as in write_inplace: stale bytes where zeros were */
	qc_l2_set(q, w->e, w->idx, nl2e, nbm);
	if (!((in + len) & (cs - 1)))
		w->idx++;
out:
	return r < 0 ? r : (int64_t)len;
undo:
	return allocated ? undo_alloc(q, hoff, 1, r) : r;
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	for (; n && ((uintptr_t)p & 7); n--)
		if (*p++)
			return false;
	for (; n >= 8; n -= 8, p += 8)
		if (*(const uint64_t *)(const void *)p)
			return false;
	for (; n; n--)
		if (*p++)
			return false;
	return true;
}

/* Do the touched subclusters of this entry already read as zeros? */
static bool entry_reads_zero(struct qcow *q, uint64_t l2e, uint64_t bm, uint64_t in, uint64_t len)
{
	for (uint64_t sc = in >> q->sc_bits; sc <= (in + len - 1) >> q->sc_bits; sc++) {
		enum qc_sc_type t =
			qc_sc_type(l2e, bm, (unsigned)sc, q->extl2, (int)q->version, q->has_data_file);
		bool zero = t == SC_ZERO_PLAIN || t == SC_ZERO_ALLOC ||
			    ((t == SC_UNALLOC_PLAIN || t == SC_UNALLOC_ALLOC) && !q->backing.ops);
		if (!zero)
			return false;
	}
	return true;
}

/*
 * Zeros over the range of an L2 table that does not exist (and no backing
 * file whose data they would have to hide) need no table: mkfs zeroing the
 * end of the disk must not cost one.  Returns the bytes to skip, or 0.
 */
static uint64_t zeros_without_table(struct qcow *q, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	unsigned shift = q->l2_bits + q->cluster_bits;
	uint64_t l1i = voff >> shift;
	if (q->backing.ops || q->has_data_file || l1i >= q->l1_size || q->l1[l1i])
		return 0;
	uint64_t span = ((l1i + 1) << shift) - voff;
	if (span > n)
		span = n;
	return all_zero(buf, span) ? span : 0;
}

int qc_write_locked(struct qcow *q, const uint8_t *buf, uint64_t n, uint64_t voff)
{
	uint64_t cs = q->cluster_size;
	struct wctx w = {.q = q, .per_slice = (unsigned)(q->l2_slice_bytes / q->l2_entry_bytes)};
	while (n) {
		uint64_t skip = zeros_without_table(q, buf, n, voff);
		if (skip) {
			buf += skip;
			voff += skip;
			n -= skip;
			continue;
		}
		int r = qc_l2_slice(q, voff >> q->cluster_bits, true, &w.e, &w.idx);
		if (r < 0)
			return r;
		while (n && w.idx < w.per_slice) {
			uint64_t in = voff & (cs - 1), len = cs - in < n ? cs - in : n, l2e, bm;
			qc_l2_entry(q, w.e, w.idx, &l2e, &bm);
			int64_t done;
			/* Zero detection: zeros written where the disk already reads
			 * zeros allocate nothing (mkfs zeroing tables, dd from /dev/zero). */
			if (entry_reads_zero(q, l2e, bm, in, len) && all_zero(buf, len)) {
				buf += len;
				voff += len;
				n -= len;
				if (!(voff & (cs - 1)))
					w.idx++;
				continue;
			}
			switch (classify(q, l2e, bm, in, len)) {
			case W_INPLACE: done = write_inplace(&w, buf, n, voff); break;
			case W_NEW: done = write_new(&w, buf, n, voff); break;
			case W_PARTIAL: done = write_partial(&w, buf, n, voff); break;
			default:
				done = qc_corrupt(q, "invalid L2 entry 0x%llx (bitmap 0x%llx) for a write",
						  (unsigned long long)l2e, (unsigned long long)bm);
				break;
			}
			if (done < 0) {
				qc_cache_put(w.e);
				return (int)done;
			}
			buf += done;
			voff += (uint64_t)done;
			n -= (uint64_t)done;
		}
		qc_cache_put(w.e);
	}
	return 0;
}

/* The entry a cluster gets when zeroed. */
static void zero_entry(struct qcow *q, uint64_t l2e, unsigned flags, uint64_t *nl2e, uint64_t *nbm)
{
	/* v2 has no zero flag: without a backing file, unallocated reads as zeros */
	bool keep = !(flags & QCOW_ZERO_UNMAP) && q->version >= 3 && qc_l2e_owns(q, l2e) &&
		    (l2e & QC_COPIED);
	bool backing = q->backing.ops != NULL;
	*nbm = 0;
	if (q->extl2) {
		*nl2e = keep ? l2e : 0;
		*nbm = backing || keep ? (uint64_t)SC_ALL << 32 : 0;
		return;
	}
	if (keep)
		*nl2e = (l2e & L2E_OFFSET_MASK) | QC_COPIED | L2E_ZERO;
	else
		*nl2e = backing ? L2E_ZERO : 0;
}

/* Zero whole clusters [voff, voff+n) inside one slice. Returns bytes done. */
static int64_t zero_slice(struct qcow *q, uint64_t voff, uint64_t n, unsigned flags)
{
	uint64_t cs = q->cluster_size, cluster = voff >> q->cluster_bits;
	unsigned per_slice = (unsigned)(q->l2_slice_bytes / q->l2_entry_bytes), idx;
	struct qc_cent *e;
	bool backing = q->backing.ops != NULL;
	int r = qc_l2_slice(q, cluster, false, &e, &idx);
	if (r < 0)
		return r;
	uint64_t left = (uint64_t)(per_slice - (e ? idx : (unsigned)(cluster % per_slice))) * cs;
	if (!e && !backing) { /* nothing allocated in this whole L1 span */
		uint64_t span = 1ull << (q->cluster_bits + q->l2_bits);
		left = span - (voff & (span - 1));
		return (int64_t)(left < n ? left : n);
	}
	if (left > n)
		left = n;
	bool change = !e;
	for (uint64_t i = 0; e && i < left / cs && !change; i++) {
		uint64_t l2e, bm, nl2e, nbm;
		qc_l2_entry(q, e, idx + (unsigned)i, &l2e, &bm);
		zero_entry(q, l2e, flags, &nl2e, &nbm);
		change = nl2e != l2e || nbm != bm;
	}
	qc_cache_put(e);
	if (!change)
		return (int64_t)left;
	if ((r = qc_l2_slice(q, cluster, true, &e, &idx)) < 0)
		return r;
	for (uint64_t i = 0; i < left / cs; i++) {
		uint64_t l2e, bm, nl2e, nbm;
		qc_l2_entry(q, e, idx + (unsigned)i, &l2e, &bm);
		zero_entry(q, l2e, flags, &nl2e, &nbm);
		if (nl2e == l2e && nbm == bm)
			continue;
		if ((nl2e & L2E_OFFSET_MASK) != (l2e & L2E_OFFSET_MASK) && (r = qc_l2_release(q, l2e)) < 0)
			break;
		qc_l2_set(q, e, idx + (unsigned)i, nl2e, nbm);
	}
	qc_cache_put(e);
	return r < 0 ? r : (int64_t)left;
}

/* Does [voff, voff+n) already read as zeros without a backing file's help? */
static int reads_zero(struct qcow *q, uint64_t voff, uint64_t n)
{
	while (n) {
		struct qc_run run;
		int r = qc_map_run(q, voff, n, &run, true);
		if (r < 0)
			return r;
		bool zero = run.type == SC_ZERO_PLAIN || run.type == SC_ZERO_ALLOC ||
			    ((run.type == SC_UNALLOC_PLAIN || run.type == SC_UNALLOC_ALLOC) &&
			     !q->backing.ops);
		if (!zero)
			return 0;
		voff += run.len;
		n -= run.len;
	}
	return 1;
}

static int write_zeros(struct qcow *q, uint64_t voff, uint64_t n)
{
	int r = reads_zero(q, voff, n);
	if (r)
		return r < 0 ? r : 0;
	uint64_t chunk = n < (1u << 20) ? n : (1u << 20);
	uint8_t *z = calloc(1, chunk);
	r = z ? 0 : -ENOMEM;
	while (!r && n) {
		uint64_t len = n < chunk ? n : chunk;
		r = qc_write_locked(q, z, len, voff);
		voff += len;
		n -= len;
	}
	free(z);
	return r;
}

int qc_zero_locked(struct qcow *q, uint64_t voff, uint64_t n, unsigned flags)
{
	uint64_t cs = q->cluster_size;
	/* v2 has no zero flag, and a raw external data file must read as the
	 * disk on its own: the zeros must be written */
	if ((q->version < 3 && q->backing.ops) || (q->autoclear & QC_AUTOCLEAR_DATA_FILE_RAW))
		return write_zeros(q, voff, n);
	uint64_t head = (cs - (voff & (cs - 1))) & (cs - 1);
	if (head) {
		if (head > n)
			head = n;
		int r = write_zeros(q, voff, head);
		if (r < 0)
			return r;
		voff += head;
		n -= head;
	}
	while (n >= cs) {
		int64_t done = zero_slice(q, voff, n & ~(cs - 1), flags);
		if (done < 0)
			return (int)done;
		voff += (uint64_t)done;
		n -= (uint64_t)done;
	}
	return n ? write_zeros(q, voff, n) : 0;
}
