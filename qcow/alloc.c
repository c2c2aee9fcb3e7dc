/*
 * alloc.c - cluster allocation: free-space search, refcount block creation,
 * refcount table growth and deferred freeing.
 *
 * Invariants (crash consistency, see also l2.c):
 *  - a refcount block is written (and synced) before the refcount table
 *    entry that points to it; a new refcount table is written and synced
 *    before the header points to it;
 *  - refcount increments made here reach the file before any L2/L1 entry
 *    referencing the cluster does (the L2 cache's before_write hook);
 *  - decrements are deferred (qc_free_later) until the entries that dropped
 *    the references are durable (qc_frees_apply runs inside flush), so a
 *    crash can leak clusters but never leave a referenced cluster free.
 *
 * The durable reservation is what lets a write skip the barrier (a full
 * fdatasync, which writes every dirty byte of guest data back) before its
 * L2 entry: a run of clusters past the end of the file gets refcount 1 on
 * disk ahead of use, with one small durable write per refcount block and
 * one for the new end of the file (pwrite_sync, RWF_DSYNC), while the
 * guest data stays in the page cache.  An entry pointing into the run
 * therefore names a counted cluster whatever reaches the disk, and one
 * whose data never did reads zeros, which is what the guest saw before
 * (write paths that replace anything else set q->barrier).  The run grows
 * fourfold per refill; what is left is given back at close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

static uint64_t range_clusters(const struct qcow *q)
{
	return 1ull << q->rb_bits;
}

static bool has_block(const struct qcow *q, uint64_t range)
{
	return range < q->reftable_size && (q->reftable[range] & RTE_OFFSET_MASK);
}

/*
 * Find free clusters at or after start without changing anything: the first
 * run of up to `want` (exactly `want` if exact).  Clusters in ranges that
 * have no refcount block are free.  *first is the first free cluster seen.
 */
#define NO_END UINT64_MAX

static int scan_free(struct qcow *q, uint64_t start, uint64_t end, uint64_t want, bool exact,
		     uint64_t *c0, uint64_t *len, uint64_t *first)
{
	uint64_t c = start, run = 0, E = range_clusters(q);
	uint64_t limit = QC_MAX_HOST_OFFSET >> q->cluster_bits;
	*first = UINT64_MAX;
	while (run < want) {
		if (c >= limit)
			return -ENOSPC;
		if (c >= end) /* bounded: *len says how much was found */
			break;
		uint64_t range = c >> q->rb_bits, idx = c & (E - 1);
		if (!has_block(q, range)) {
			uint64_t take = E - idx;
			if (!run)
				*c0 = c;
			if (*first == UINT64_MAX)
				*first = c;
			if (take > want - run)
				take = want - run;
			if (take > end - c)
				take = end - c;
			run += take;
			c += take;
			continue;
		}
		struct qc_cent *e;
		int r = qc_cache_get(q, &q->rb_cache, q->reftable[range] & RTE_OFFSET_MASK, true, &e);
		if (r < 0)
			return r;
		for (; idx < E && run < want && c < end; idx++, c++) {
			if (qc_rb_get(e->buf, idx, q->refcount_order) == 0) {
				if (!run)
					*c0 = c;
				if (*first == UINT64_MAX)
					*first = c;
				run++;
			} else if (run) {
				if (!exact)
					break;
				run = 0;
			}
		}
		qc_cache_put(e);
		if (run && !exact && idx < E && c < end)
			break;
	}
	*len = run;
	return 0;
}

/*
 * Grow the refcount table.  Everything from the first cluster not covered
 * by the table on is free, so the new table and the refcount blocks that
 * count it are laid out there (past `min_cluster`), describing themselves.
 */
static int reftable_grow(struct qcow *q, uint64_t min_cluster, uint64_t need_range)
{
	uint64_t E = range_clusters(q), cs = q->cluster_size;
	uint64_t B = q->reftable_size << q->rb_bits;
	if (min_cluster > B)
		B = min_cluster;
	B = (B + E - 1) & ~(E - 1);
	uint64_t base_range = B >> q->rb_bits, k = 1, R, N;
	for (;;) {
		N = base_range + k;
		if (N < need_range + 1)
			N = need_range + 1;
		if (N < q->reftable_size + q->reftable_size / 2)
			N = q->reftable_size + q->reftable_size / 2;
		R = (N * 8 + cs - 1) / cs;
		N = R * cs / 8;
		if (k * E >= k + R)
			break;
		k++;
	}
	if (N * 8 > QC_MAX_REFTABLE_BYTES || ((B + k + R) << q->cluster_bits) > QC_MAX_HOST_OFFSET)
		return -EFBIG;
	/* The new table copies the old one: every block it names must be durable. */
	int r = qc_refblocks_sync(q);
	if (r < 0)
		return r;
	uint64_t *nt = calloc(N, 8);
	uint8_t *buf = malloc(cs > R * cs ? cs : R * cs);
	r = -ENOMEM;
	if (!nt || !buf)
		goto out;
	memcpy(nt, q->reftable, q->reftable_size * 8);
	for (uint64_t m = 0; m < k; m++) {
		uint64_t range = base_range + m, hoff = (B + m) << q->cluster_bits;
		memset(buf, 0, cs);
		for (uint64_t c = B; c < B + k + R; c++)
			if ((c >> q->rb_bits) == range) {
				qc_rb_set(buf, c & (E - 1), q->refcount_order, 1);
			}
		nt[range] = hoff;
		if ((r = qc_metaset_add(&q->meta, B + m, QC_META_REFBLOCK)) < 0 && r != -EEXIST)
			goto out;
		if ((r = qc_meta_pwrite(q, buf, cs, hoff, QC_META_REFBLOCK)) < 0)
			goto out;
	}
	memset(buf, 0, R * cs);
	for (uint64_t i = 0; i < N; i++)
		be64_put(buf + i * 8, nt[i]);
	uint64_t rt_hoff = (B + k) << q->cluster_bits;
	if ((r = qc_meta_pwrite(q, buf, R * cs, rt_hoff, QC_META_REFTABLE)) < 0 ||
	    (r = qc_sync(q)) < 0)
		goto out;
	/* The header switch is the commit point: a 12-byte write of offset + size. */
	be64_put(q->hdr + QH_REFTABLE_OFFSET, rt_hoff);
	be32_put(q->hdr + QH_REFTABLE_CLUSTERS, (uint32_t)R);
	if ((r = qc_header_write(q, QH_REFTABLE_OFFSET, 12)) < 0 || (r = qc_sync(q)) < 0)
		goto out;
	uint64_t old_off = q->reftable_offset, old_len = (uint64_t)q->reftable_clusters * cs;
	free(q->reftable);
	q->reftable = nt;
	nt = NULL;
	q->reftable_size = N;
	q->reftable_offset = rt_hoff;
	q->reftable_clusters = (uint32_t)R;
	qc_fixed_regions(q);
	r = qc_free_later(q, old_off, old_len);
out:
	free(nt);
	free(buf);
	return r;
}

/* Create the refcount block for `range`, keeping clear of [a, b). */
static int refblock_create(struct qcow *q, uint64_t range, uint64_t a, uint64_t b)
{
	int r;
	for (;;) {
		uint64_t p, len, first;
		if (range >= q->reftable_size) {
			if ((r = reftable_grow(q, b, range)) < 0)
				return r;
			continue;
		}
		if ((r = scan_free(q, q->free_hint, NO_END, 1, true, &p, &len, &first)) < 0)
			return r;
		if (p >= a && p < b &&
		    (r = scan_free(q, b, NO_END, 1, true, &p, &len, &first)) < 0)
			return r;
		uint64_t pr = p >> q->rb_bits;
		if (pr >= q->reftable_size) {
			if ((r = reftable_grow(q, p > b ? p : b, range)) < 0)
				return r;
			continue;
		}
		uint64_t target = has_block(q, pr) ? range : pr;
		struct qc_cent *e;
		if ((r = qc_metaset_add(&q->meta, p, QC_META_REFBLOCK)) < 0)
			return r == -EEXIST ? qc_corrupt(q, "new refcount block is already metadata") : r;
		if (target != pr && (r = qc_refcount_set(q, p, 1)) < 0)
			return r;
		/* The block lives in the cache from now on; its table entry is
		 * written by qc_refblocks_sync once the block itself is durable. */
		if ((r = qc_cache_get(q, &q->rb_cache, p << q->cluster_bits, false, &e)) < 0)
			return r;
		if (target == pr) /* self-describing: the block counts itself */
			qc_rb_set(e->buf, p & (range_clusters(q) - 1), q->refcount_order, 1);
		qc_cache_dirty(&q->rb_cache, e);
		qc_cache_put(e);
		q->reftable[target] = p << q->cluster_bits;
		qc_reftable_mark(q, target);
		if (target == range)
			return 0;
	}
}

/*
 * Clusters below `end` whose refcounts reach the disk only through the
 * next barrier (which they set).  *got = 0 when there are none.
 */
static int alloc_plain(struct qcow *q, uint64_t want, bool exact, uint64_t end, uint64_t *hoff,
		       uint64_t *got)
{
	int r;
	*got = 0;
	for (;;) {
		uint64_t c0 = 0, len = 0, first;
		if ((r = scan_free(q, q->free_hint, end, want, exact, &c0, &len, &first)) < 0)
			return r;
		if (!len || (exact && len < want)) {
			if (first == UINT64_MAX && end != NO_END && end > q->free_hint)
				q->free_hint = end; /* every cluster below is in use */
			return 0;
		}
		uint64_t missing = UINT64_MAX;
		for (uint64_t g = c0 >> q->rb_bits; g <= (c0 + len - 1) >> q->rb_bits; g++)
			if (!has_block(q, g)) {
				missing = g;
				break;
			}
		if (missing != UINT64_MAX) {
			if ((r = refblock_create(q, missing, c0, c0 + len)) < 0)
				return r;
			continue;
		}
		for (uint64_t c = c0; c < c0 + len; c++)
			if ((r = qc_refcount_set(q, c, 1)) < 0)
				return r;
		if (first == c0)
			q->free_hint = c0 + len;
		q->barrier = true;
		*hoff = c0 << q->cluster_bits;
		*got = len;
		return 0;
	}
}

/* Give clusters [a, b) of the reservation back (never referenced). */
static int resv_drop(struct qcow *q, uint64_t a, uint64_t b)
{
	for (uint64_t c = a; c < b; c++) {
		int r = qc_refcount_set(q, c, 0);
		if (r < 0)
			return r;
	}
	if (a < b && a < q->free_hint)
		q->free_hint = a;
	return 0;
}

/* The run starts at 1/1024 of the virtual size, from 1 to 16 MiB (a mkfs
 * of a 16 GiB disk fits in one: each refill costs two durable writes), and
 * grows sixteenfold per refill (a 1 GiB dd into a new image: 4 refills, not
 * 6), up to 1 GiB or four refcount blocks' worth
 * (small clusters would need one durable write per block).  Unused
 * clusters are holes: they cost no space, and close gives them back. */
#define RESV_MAX (1ull << 30)
static uint64_t resv_first(const struct qcow *q)
{
	uint64_t b = q->size >> 10;
	b = b < (1ull << 20) ? 1ull << 20 : b > (16ull << 20) ? 16ull << 20 : b;
	return b >> q->cluster_bits;
}
static uint64_t resv_cap(const struct qcow *q)
{
	uint64_t cap = RESV_MAX >> q->cluster_bits, blocks = 4 * range_clusters(q);
	return cap < blocks ? cap : blocks;
}

/*
 * Reserve at least `want` clusters at the end of the file, durably: the
 * refcounts and the new end of the file reach the disk now, the guest data
 * written so far does not have to.  Contiguous with what is left of the
 * current run when possible; otherwise that rest is given back.
 */
static int reserve(struct qcow *q, uint64_t want)
{
	uint64_t n = q->resv_grant ? q->resv_grant : resv_first(q), c0, len, first;
	if (n > resv_cap(q))
		n = resv_cap(q);
	if (n < 4)
		n = 4;
	if (n < want)
		n = want;
	int r;
again:
	for (;;) {
		uint64_t start = (q->file_end + q->cluster_size - 1) >> q->cluster_bits;
		if ((r = scan_free(q, start, NO_END, n, true, &c0, &len, &first)) < 0)
			return r;
		uint64_t missing = UINT64_MAX;
		for (uint64_t g = c0 >> q->rb_bits; g <= (c0 + n - 1) >> q->rb_bits; g++)
			if (!has_block(q, g)) {
				missing = g;
				break;
			}
		if (missing == UINT64_MAX)
			break;
		if ((r = refblock_create(q, missing, c0, c0 + n)) < 0)
			return r;
	}
	for (uint64_t c = c0; c < c0 + n; c++)
		if ((r = qc_refcount_set(q, c, 1)) < 0)
			return r;
	/* the new end first (a write: its size is durable with it), then the
	 * refcount blocks, then the table entries of new blocks */
	static const uint8_t zero[512];
	uint64_t end = (c0 + n) << q->cluster_bits;
	r = qc_meta_pwrite_sync(q, zero, sizeof zero, end - sizeof zero, QC_META_NONE);
	if (r == -EFBIG && n > want) { /* ulimit -f: reserve only what is asked */
		if ((r = resv_drop(q, c0, c0 + n)) < 0)
			return r;
		n = want;
		goto again;
	}
	if (r < 0)
		goto fail;
	if (c0 != q->resv_end) { /* the rest of the old run goes back */
		uint64_t a = q->resv_next, b = q->resv_end;
		q->resv_next = q->resv_end = 0;
		if ((r = resv_drop(q, a, b)) < 0)
			goto fail;
	}
	if ((r = qc_cache_flush_sync(q, &q->rb_cache)) < 0)
		goto fail;
	/*
	 * A refcount block written without RWF_DSYNC since the last sync
	 * (evicted from the cache, or made by an allocation inside the file)
	 * reaches the disk before anything that counts on it: the run's L2
	 * entries, and the table entries below, durable at once, which may
	 * name it (else a power cut leaves the table naming a hole).
	 */
	if (q->ord_unsynced && (r = qc_sync(q)) < 0)
		goto fail;
	if ((r = qc_table_write_sync(q, q->reftable, &q->reftable_dirty_lo, &q->reftable_dirty_hi,
				     q->reftable_offset, QC_META_REFTABLE)) < 0)
		goto fail;
	if (c0 != q->resv_end)
		q->resv_next = c0;
	q->resv_end = c0 + n;
	q->resv_grant = 16 * n < resv_cap(q) ? 16 * n : resv_cap(q);
	return 0;
fail:
	/* Nothing names the new run: its refcounts go back to 0 (a full disk
	 * must not leave it leaked after a normal exit; a crash may). */
	(void)resv_drop(q, c0, c0 + n);
	return r;
}

/*
 * Allocate up to `want` contiguous clusters (exactly `want` if exact), each
 * with refcount 1.  Free clusters inside the file come first (they set the
 * barrier); then the reservation.  q->alloc_fresh: the clusters come from
 * the reservation (they read as zeros and need no barrier).
 * Returns 0 with *hoff and *got, or -errno.
 */
int qc_alloc(struct qcow *q, uint64_t want, bool exact, uint64_t *hoff, uint64_t *got)
{
	int r;
	if (q->read_only)
		return -EROFS;
	q->alloc_fresh = false;
	if (!q->resv_ok) {
		r = alloc_plain(q, want, exact, NO_END, hoff, got);
		return r < 0 ? r : *got ? 0 : -ENOSPC;
	}
	uint64_t bound = q->resv_next < q->resv_end
				 ? q->resv_next
				 : (q->file_end + q->cluster_size - 1) >> q->cluster_bits;
	if ((r = alloc_plain(q, want, exact, bound, hoff, got)) < 0 || *got)
		return r;
	uint64_t avail = q->resv_end - q->resv_next;
	if (!avail || (exact && avail < want)) {
		if ((r = reserve(q, want)) < 0)
			return r;
		avail = q->resv_end - q->resv_next;
	}
	*got = want < avail ? want : avail;
	*hoff = q->resv_next << q->cluster_bits;
	q->resv_next += *got;
	q->alloc_fresh = true;
	return 0;
}

/*
 * Give back clusters [hoff, hoff + n clusters) that qc_alloc has just handed
 * out when writing their contents failed (ENOSPC, EDQUOT, EIO) before any
 * entry named them: else a normal exit would leave them leaked.  The tail of
 * the reservation returns to it (its refcounts stay 1 on disk until close
 * gives the rest back); anything else gets refcount 0 again (a crash may
 * still find the 1 on disk: a leak, which is allowed).
 */
int qc_alloc_undo(struct qcow *q, uint64_t hoff, uint64_t n)
{
	uint64_t c = hoff >> q->cluster_bits;
	if (!n || q->broken) /* a damaged image is left as it is */
		return 0;
	if (c + n == q->resv_next && c < q->resv_end) {
		q->resv_next = c;
		return 0;
	}
	for (uint64_t i = 0; i < n; i++) {
		int r = qc_refcount_set(q, c + i, 0);
		if (r < 0)
			return r;
	}
	if (c < q->free_hint)
		q->free_hint = c;
	return 0;
}

/*
 * Give the rest of the reservation back (close, invalidate): refcounts to
 * zero, written without a sync (nothing ever referenced these clusters),
 * and the file cut back when the run is its tail.
 */
int qc_resv_release(struct qcow *q)
{
	uint64_t a = q->resv_next, b = q->resv_end;
	q->resv_next = q->resv_end = 0;
	int r = resv_drop(q, a, b);
	if (r < 0 || a >= b || (r = qc_cache_flush(q, &q->rb_cache)) < 0)
		return r;
	if ((b << q->cluster_bits) == q->file_end && !q->extend_pending && q->be.ops->truncate) {
		if ((r = q->be.ops->truncate(q->be.h, a << q->cluster_bits)) < 0)
			return r;
		q->file_end = a << q->cluster_bits;
	}
	return 0;
}

/* Drop one reference to every cluster touched by [hoff, hoff+len), later. */
int qc_free_later(struct qcow *q, uint64_t hoff, uint64_t len)
{
	int r = qc_check_release(q, hoff, len); /* release.c: corruption is never applied */
	if (r < 0 || !len)
		return r;
	uint64_t c = hoff >> q->cluster_bits, n = ((hoff + len - 1) >> q->cluster_bits) - c + 1;
	if (q->nfrees && q->frees[q->nfrees - 1].cluster + q->frees[q->nfrees - 1].n == c) {
		q->frees[q->nfrees - 1].n += n;
		return 0;
	}
	if (q->nfrees == q->frees_cap) {
		size_t cap = q->frees_cap ? q->frees_cap * 2 : 64;
		struct qc_free *f = realloc(q->frees, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		q->frees = f;
		q->frees_cap = cap;
	}
	q->frees[q->nfrees++] = (struct qc_free){c, n};
	return 0;
}

static void punch(struct qcow *q, uint64_t c, uint64_t n)
{
	if (n && q->be.ops->punch)
		(void)q->be.ops->punch(q->be.h, c << q->cluster_bits, n << q->cluster_bits);
}

/*
 * Apply the deferred frees.  Only call once the L2/L1 entries that dropped
 * the references are durable.  Freed host space is punched out.
 */
int qc_frees_apply(struct qcow *q)
{
	int r = qc_frees_validate(q); /* all of them, before changing one */
	if (r < 0) {
		if (r != -ENOMEM)
			q->nfrees = 0; /* leaked, never applied */
		return r;
	}
	for (size_t i = 0; i < q->nfrees && !r; i++) {
		uint64_t hole = 0, hn = 0;
		for (uint64_t c = q->frees[i].cluster; c < q->frees[i].cluster + q->frees[i].n; c++) {
			uint64_t rc;
			if ((r = qc_refcount_get(q, c, &rc)) < 0)
				break;
			if (rc == 0) {
				r = qc_corrupt(q, "cluster 0x%llx freed twice",
					       (unsigned long long)(c << q->cluster_bits));
				break;
			}
			if ((r = qc_refcount_set(q, c, rc - 1)) < 0)
				break;
			if (rc - 1)
				continue;
			if (c < q->free_hint)
				q->free_hint = c;
			if (hn && hole + hn == c) {
				hn++;
			} else {
				punch(q, hole, hn);
				hole = c;
				hn = 1;
			}
		}
		punch(q, hole, hn);
	}
	q->nfrees = 0;
	return r;
}
