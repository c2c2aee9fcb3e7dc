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
static int scan_free(struct qcow *q, uint64_t start, uint64_t want, bool exact, uint64_t *c0,
		     uint64_t *len, uint64_t *first)
{
	uint64_t c = start, run = 0, E = range_clusters(q);
	uint64_t limit = QC_MAX_HOST_OFFSET >> q->cluster_bits;
	*first = UINT64_MAX;
	while (run < want) {
		if (c >= limit)
			return -ENOSPC;
		uint64_t range = c >> q->rb_bits, idx = c & (E - 1);
		if (!has_block(q, range)) {
			uint64_t take = E - idx;
			if (!run)
				*c0 = c;
			if (*first == UINT64_MAX)
				*first = c;
			if (take > want - run)
				take = want - run;
			run += take;
			c += take;
			continue;
		}
		struct qc_cent *e;
		int r = qc_cache_get(q, &q->rb_cache, q->reftable[range] & RTE_OFFSET_MASK, true, &e);
		if (r < 0)
			return r;
		for (; idx < E && run < want; idx++, c++) {
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
		if (run && !exact && idx < E)
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
		if ((r = scan_free(q, q->free_hint, 1, true, &p, &len, &first)) < 0)
			return r;
		if (p >= a && p < b && (r = scan_free(q, b, 1, true, &p, &len, &first)) < 0)
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
 * Allocate up to `want` contiguous clusters (exactly `want` if exact), each
 * with refcount 1.  Returns 0 with *hoff and *got, or -errno.
 */
int qc_alloc(struct qcow *q, uint64_t want, bool exact, uint64_t *hoff, uint64_t *got)
{
	int r;
	if (q->read_only)
		return -EROFS;
	for (;;) {
		uint64_t c0 = 0, len = 0, first;
		if ((r = scan_free(q, q->free_hint, want, exact, &c0, &len, &first)) < 0)
			return r;
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
		*hoff = c0 << q->cluster_bits;
		*got = len;
		return 0;
	}
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
