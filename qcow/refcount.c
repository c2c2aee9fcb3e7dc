/*
 * refcount.c - the refcount table and refcount blocks: load and validate
 * the table, read and write single refcounts of any width (1..64 bits).
 *
 * Pure bookkeeping: this file never allocates clusters.  A refcount whose
 * block does not exist yet reads as 0; setting one returns -EAGAIN so that
 * alloc.c (which owns placement) creates the block and retries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

uint64_t qc_rb_get(const uint8_t *b, uint64_t i, unsigned order)
{
	switch (order) {
	case 3: return b[i];
	case 4: return be16_get(b + 2 * i);
	case 5: return be32_get(b + 4 * i);
	case 6: return be64_get(b + 8 * i);
	default: {
		unsigned w = 1u << order;
		uint64_t bit = i << order;
		return (b[bit >> 3] >> (bit & 7)) & ((1u << w) - 1);
	}
	}
}

void qc_rb_set(uint8_t *b, uint64_t i, unsigned order, uint64_t v)
{
	switch (order) {
	case 3: b[i] = (uint8_t)v; break;
	case 4: be16_put(b + 2 * i, (uint16_t)v); break;
	case 5: be32_put(b + 4 * i, (uint32_t)v); break;
	case 6: be64_put(b + 8 * i, v); break;
	default: {
		unsigned w = 1u << order, mask = (1u << w) - 1;
		uint64_t bit = i << order;
		uint8_t *p = &b[bit >> 3];
		*p = (uint8_t)((*p & ~(mask << (bit & 7))) | ((v & mask) << (bit & 7)));
	}
	}
}

static int reftable_entries_load(struct qcow *q, uint64_t file_size);

/*
 * Check the refcount table's placement, then read it and register every
 * refcount block, or (load_entries false: a read-only open) leave that to
 * the first use of a refcount (refblock_get).  Reads never use refcounts,
 * so a reader pays neither the table's read (a cluster or more) nor the
 * walk of its entries: 40% of the CPU of opening a small image.  (qemu
 * reads the table at every open but checks an entry only when it loads
 * that refcount block.)  Everything that writes opens read-write, and
 * validates every entry before its first write, as before.
 */
int qc_reftable_load(struct qcow *q, uint64_t file_size, bool load_entries)
{
	q->reftable_offset = be64_get(q->hdr + QH_REFTABLE_OFFSET);
	q->reftable_clusters = be32_get(q->hdr + QH_REFTABLE_CLUSTERS);
	if (q->reftable_clusters == 0) {
		qc_log(q, "refcount table has no clusters");
		return -EINVAL;
	}
	uint64_t entries = (uint64_t)q->reftable_clusters << (q->cluster_bits - 3);
	int r = qc_validate_table(q, q->reftable_offset, entries, 8, QC_MAX_REFTABLE_BYTES, file_size,
				  "refcount table");
	if (r < 0)
		return r;
	if (!load_entries) {
		q->reftable_deferred = true;
		return 0;
	}
	return reftable_entries_load(q, file_size);
}

static int reftable_entries_load(struct qcow *q, uint64_t file_size)
{
	uint64_t entries = (uint64_t)q->reftable_clusters << (q->cluster_bits - 3);
	int r;
	q->reftable_deferred = false;
	q->reftable_size = entries;
	if (!(q->reftable = malloc(entries * 8)))
		return -ENOMEM;
	if ((r = qc_pread(q, &q->be, q->reftable, entries * 8, q->reftable_offset, true)) < 0)
		return r;
	for (uint64_t i = 0; i < entries; i++) {
		if (!q->reftable[i]) /* most of a table: zero in either byte order */
			continue;
		uint64_t e = q->reftable[i] = be64_get(&q->reftable[i]);
		uint64_t off = e & RTE_OFFSET_MASK;
		if ((e & RTE_RESERVED) || (off & (q->cluster_size - 1)) || off == 0 ||
		    off > file_size - q->cluster_size || file_size < q->cluster_size) {
			qc_log(q, "refcount block %llu has an invalid offset 0x%llx",
			       (unsigned long long)i, (unsigned long long)e);
			return -EINVAL;
		}
		r = qc_metaset_add(&q->meta, off >> q->cluster_bits, QC_META_REFBLOCK);
		if (r == -EEXIST || qc_meta_overlap(q, off, q->cluster_size, QC_META_REFBLOCK)) {
			qc_log(q, "refcount block %llu at 0x%llx overlaps other metadata",
			       (unsigned long long)i, (unsigned long long)off);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* The cached refcount block covering cluster, or NULL (*e) if there is none. */
static int refblock_get(struct qcow *q, uint64_t cluster, struct qc_cent **e)
{
	uint64_t idx = cluster >> q->rb_bits;
	*e = NULL;
	if (q->reftable_deferred) {
		int r = reftable_entries_load(q, q->load_end);
		if (r < 0)
			return r;
	}
	if (idx >= q->reftable_size || !(q->reftable[idx] & RTE_OFFSET_MASK))
		return 0;
	return qc_cache_get(q, &q->rb_cache, q->reftable[idx] & RTE_OFFSET_MASK, true, e);
}

int qc_refcount_get(struct qcow *q, uint64_t cluster, uint64_t *rc)
{
	struct qc_cent *e;
	int r = refblock_get(q, cluster, &e);
	if (r < 0)
		return r;
	*rc = e ? qc_rb_get(e->buf, cluster & ((1ull << q->rb_bits) - 1), q->refcount_order) : 0;
	qc_cache_put(e);
	return 0;
}

/* Returns 0, -EAGAIN if the covering block is missing, -ERANGE on overflow. */
int qc_refcount_set(struct qcow *q, uint64_t cluster, uint64_t rc)
{
	struct qc_cent *e;
	if (rc > q->refcount_max)
		return -ERANGE;
	int r = refblock_get(q, cluster, &e);
	if (r < 0)
		return r;
	if (!e)
		return -EAGAIN;
	uint64_t i = cluster & ((1ull << q->rb_bits) - 1);
	/* an allocation: release.c keeps releases off it */
	if (rc && !qc_rb_get(e->buf, i, q->refcount_order) && (r = qc_note_alloc(q, cluster)) < 0) {
		qc_cache_put(e);
		return r;
	}
	qc_rb_set(e->buf, i, q->refcount_order, rc);
	qc_cache_dirty(&q->rb_cache, e);
	qc_cache_put(e);
	return 0;
}

void qc_reftable_mark(struct qcow *q, uint64_t range)
{
	qc_range_mark(&q->reftable_dirty_lo, &q->reftable_dirty_hi, range);
}

/*
 * Make refcounts (and guest data) durable: dirty refcount blocks, sync,
 * then the refcount table entries of new blocks (only ever pointing at
 * blocks already durable), sync.
 */
int qc_refblocks_sync(struct qcow *q)
{
	int r = qc_cache_flush(q, &q->rb_cache);
	if (r < 0 || (r = qc_sync(q)) < 0)
		return r;
	if (q->reftable_dirty_lo < q->reftable_dirty_hi &&
	    ((r = qc_table_write(q, q->reftable, &q->reftable_dirty_lo, &q->reftable_dirty_hi,
				  q->reftable_offset, QC_META_REFTABLE)) < 0 ||
	     (r = qc_sync(q)) < 0))
		return r;
	if (!q->publishing) /* publishing may have left guest data unsynced */
		q->barrier = false;
	return 0;
}
