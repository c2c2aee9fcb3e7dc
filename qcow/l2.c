/*
 * l2.c - the L1 table and L2 tables: load and validate L1, find the L2
 * slice that maps a cluster, allocate or copy-on-write L2 tables, grow L1.
 *
 * Write ordering (crash consistency), the invariant the whole write path
 * relies on:
 *   guest data  ->  refcount increments  ->  L2 entries  ->  L1 entries
 * each durable before the next layer points at it.  Guest data and
 * refcount blocks are made durable by the L2 cache's before_write hook
 * (image.c) before any dirty L2 slice is written, unless every reference
 * made since the last sync points into the durable reservation (alloc.c:
 * counted on disk already, zeros on disk until its data arrives, which is
 * what the guest range held before); L1 entries are written
 * only by flush, after every dirty L2 slice; a new L2 table is written in
 * full (zeros or its copy) right after allocation, long before its L1 entry.
 * Clusters that lose a reference are freed only after all of that
 * (alloc.c, deferred frees).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

/* Read and validate the L1 table at q->l1_offset, q->l1_size entries, and
 * register every L2 table it references; an active L1 must cover the
 * virtual size. */
static int l1_read(struct qcow *q, uint64_t file_size, bool active)
{
	uint64_t per_l1 = q->cluster_bits + q->l2_bits;
	uint64_t need = (q->size + (1ull << per_l1) - 1) >> per_l1;
	if (active && need > q->l1_size) {
		qc_log(q, "L1 table too small (%u entries) for the virtual size %llu", q->l1_size,
		       (unsigned long long)q->size);
		return need * 8 > QC_MAX_L1_BYTES ? -EFBIG : -EINVAL;
	}
	int r = qc_validate_table(q, q->l1_offset, q->l1_size, 8, QC_MAX_L1_BYTES, file_size,
				  "L1 table");
	if (r < 0)
		return r;
	if (!(q->l1 = malloc(((uint64_t)q->l1_size + 1) * 8)))
		return -ENOMEM;
	if ((r = qc_pread(q, &q->be, q->l1, (uint64_t)q->l1_size * 8, q->l1_offset, true)) < 0)
		return r;
	qc_fixed_regions(q);
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t e = q->l1[i] = be64_get(&q->l1[i]), off = e & L1E_OFFSET_MASK;
		if (!e)
			continue;
		if ((e & L1E_RESERVED) || (off & (q->cluster_size - 1)) ||
		    file_size < q->cluster_size || off > file_size - q->cluster_size) {
			qc_log(q, "L1 entry %u is invalid (0x%llx)", i, (unsigned long long)e);
			return -EINVAL;
		}
		if (!off)
			continue;
		r = qc_metaset_add(&q->meta, off >> q->cluster_bits, QC_META_L2);
		if (r == -EEXIST || qc_meta_overlap(q, off, q->cluster_size, QC_META_L2)) {
			qc_log(q, "L2 table at 0x%llx (L1 entry %u) overlaps other metadata",
			       (unsigned long long)off, i);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Load the active L1 table (the header's). */
int qc_l1_load(struct qcow *q, uint64_t file_size)
{
	q->l1_size = be32_get(q->hdr + QH_L1_SIZE);
	q->l1_offset = be64_get(q->hdr + QH_L1_OFFSET);
	return l1_read(q, file_size, true);
}

/*
 * Present internal snapshot `name` (else the one whose id is `name`)
 * instead of the active image: its L1 table replaces the active one in
 * memory.  The virtual size stays the active one and clusters beyond the
 * snapshot's L1 read as unallocated, exactly what qemu's temporary
 * snapshot load (qemu-img convert -l) shows.  Read-only opens only.
 */
int qc_l1_load_snapshot(struct qcow *q, const char *name, uint64_t file_size)
{
	const struct qc_snapshot *s = NULL;
	for (unsigned i = 0; i < q->nb_snapshots && !s; i++)
		if (!strcmp(q->snaps[i].name, name))
			s = &q->snaps[i];
	for (unsigned i = 0; i < q->nb_snapshots && !s; i++)
		if (!strcmp(q->snaps[i].id, name))
			s = &q->snaps[i];
	if (!s) {
		qc_log(q, "no internal snapshot named '%s'", name);
		return -ENOENT;
	}
	free(q->l1);
	q->l1 = NULL;
	qc_metaset_free(&q->meta); /* the active L2 tables may be the snapshot's */
	q->l1_size = s->l1_size;
	q->l1_offset = s->l1_offset;
	return l1_read(q, file_size, false);
}

static void l1_mark(struct qcow *q, uint32_t i)
{
	qc_range_mark(&q->l1_dirty_lo, &q->l1_dirty_hi, i);
}

/*
 * Write the dirty part of L1.  Call only once every L2 table it points to
 * has its first contents (zeros or the copy) and its refcount durable;
 * later updates of its slices need not be, as each entry alone only points
 * at durable data and refcounts.
 */
int qc_l1_sync(struct qcow *q)
{
	return qc_table_write(q, q->l1, &q->l1_dirty_lo, &q->l1_dirty_hi, q->l1_offset, QC_META_L1);
}

/*
 * Grow L1 to `entries`: write a new table, then switch the header to it
 * (one 12-byte write of size + offset), then free the old one.
 */
int qc_l1_grow(struct qcow *q, uint64_t entries)
{
	uint64_t cs = q->cluster_size, bytes = entries * 8, hoff, got;
	if (entries <= q->l1_size)
		return 0;
	if (bytes > QC_MAX_L1_BYTES)
		return -EFBIG;
	/* Images that grow as they are written (the shim's regular-file
	 * semantics) would otherwise move L1 on every resize: leave room. */
	uint64_t slack = (uint64_t)q->l1_size + q->l1_size / 2;
	if (slack > entries && q->l1_size)
		entries = slack * 8 > QC_MAX_L1_BYTES ? QC_MAX_L1_BYTES / 8 : slack;
	entries = ((entries * 8 + cs - 1) / cs) * cs / 8 > QC_MAX_L1_BYTES / 8
			  ? entries : ((entries * 8 + cs - 1) / cs) * cs / 8;
	bytes = entries * 8;
	int r = qc_flush_locked(q); /* the new table must only point at durable L2s */
	if (r < 0)
		return r;
	uint64_t clusters = (bytes + cs - 1) / cs;
	uint64_t *nl1 = calloc(clusters * cs / 8 + 1, 8);
	uint8_t *buf = calloc(clusters, cs);
	if (!nl1 || !buf) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = qc_alloc(q, clusters, true, &hoff, &got)) < 0)
		goto out;
	memcpy(nl1, q->l1, (size_t)q->l1_size * 8);
	for (uint64_t i = 0; i < q->l1_size; i++)
		be64_put(buf + i * 8, q->l1[i]);
	if ((r = qc_meta_pwrite(q, buf, clusters * cs, hoff, QC_META_L1)) < 0 ||
	    (r = qc_refblocks_sync(q)) < 0) {
		(void)qc_alloc_undo(q, hoff, clusters); /* nothing names the new table yet */
		goto out;
	}
	be32_put(q->hdr + QH_L1_SIZE, (uint32_t)entries);
	be64_put(q->hdr + QH_L1_OFFSET, hoff);
	if ((r = qc_header_write(q, QH_L1_SIZE, 12)) < 0 || (r = qc_sync(q)) < 0)
		goto out;
	uint64_t old = q->l1_offset, old_len = (uint64_t)q->l1_size * 8;
	free(q->l1);
	q->l1 = nl1;
	nl1 = NULL;
	q->l1_offset = hoff;
	q->l1_size = (uint32_t)entries;
	qc_fixed_regions(q);
	if (old_len)
		r = qc_free_later(q, old, old_len);
out:
	free(nl1);
	free(buf);
	return r;
}

/* Allocate a new L2 table for l1_index, zeroed or copied from `src`. */
static int l2_new(struct qcow *q, uint32_t l1_index, uint64_t src)
{
	uint64_t hoff, got, cs = q->cluster_size;
	int r = qc_alloc(q, 1, true, &hoff, &got);
	if (r < 0)
		return r;
	uint8_t *buf = calloc(1, cs);
	if (!buf)
		return -ENOMEM;
	if (src)
		r = qc_pread(q, &q->be, buf, cs, src, true);
	if (!r && (r = qc_metaset_add(&q->meta, hoff >> q->cluster_bits, QC_META_L2)) == -EEXIST)
		r = qc_corrupt(q, "new L2 table at 0x%llx is already metadata", (unsigned long long)hoff);
	if (!r && (r = qc_meta_pwrite(q, buf, cs, hoff, QC_META_L2)) < 0) {
		/* a full disk: nothing names the table yet, give it back */
		qc_metaset_del(&q->meta, hoff >> q->cluster_bits);
		(void)qc_alloc_undo(q, hoff, 1);
	}
	free(buf);
	if (r < 0)
		return r;
	if (src) { /* the old table stays with the snapshots that share it */
		qc_metaset_del(&q->meta, src >> q->cluster_bits);
		qc_cache_drop_range(&q->l2_cache, src, cs);
		if ((r = qc_free_later(q, src, cs)) < 0 || (r = qc_snap_l2_keep(q, src)) < 0)
			return r;
	}
	q->l1[l1_index] = hoff | QC_COPIED;
	l1_mark(q, l1_index);
	/* A zeroed table in a reserved cluster reads the same whether or not
	 * its first contents reach the disk; a copy or a reused cluster not. */
	if (src || !q->alloc_fresh) {
		q->l2_new_unsynced = true;
		q->barrier = true;
	}
	return 0;
}

/* Pin slice `s` of L1 entry l1i's table, at soff; checked at first use. */
static int slice_get(struct qcow *q, uint64_t l1i, uint64_t s, uint64_t soff, bool load,
		     struct qc_cent **e)
{
	/* a miss reads the whole table, when the cache has room for it */
	int r = qc_cache_get_ra(q, &q->l2_cache, soff, load, e, soff - s * q->l2_slice_bytes,
				(unsigned)(q->cluster_size / q->l2_slice_bytes));
	if (r < 0)
		return r;
	if ((r = qc_check_l2_slice(q, l1i, s, *e)) < 0) {
		qc_cache_put(*e);
		*e = NULL;
	}
	return r;
}

/*
 * Pin the L2 slice that maps `cluster`; *idx is the entry's index in it.
 * Without alloc, *e is NULL when no L2 table exists.  With alloc, a missing
 * table is created and a shared one (COPIED clear) copied first.
 */
int qc_l2_slice(struct qcow *q, uint64_t cluster, bool alloc, struct qc_cent **e, unsigned *idx)
{
	uint64_t l1i = cluster >> q->l2_bits, l2i = cluster & ((1ull << q->l2_bits) - 1);
	int r;
	*e = NULL;
	if (l1i >= q->l1_size)
		return alloc ? qc_corrupt(q, "cluster %llu beyond the L1 table",
					  (unsigned long long)cluster) : 0;
	uint64_t l1e = q->l1[l1i], l2off = l1e & L1E_OFFSET_MASK;
	bool fresh = false;
	if (alloc && (!l2off || !(l1e & QC_COPIED))) {
		if ((r = l2_new(q, (uint32_t)l1i, l2off)) < 0)
			return r;
		fresh = !l2off;
		l2off = q->l1[l1i] & L1E_OFFSET_MASK;
	}
	if (!l2off)
		return 0;
	if (fresh && (r = qc_l2_seen_table(q, l1i)) < 0)
		return r;
	uint64_t per_slice = q->l2_slice_bytes / q->l2_entry_bytes;
	uint64_t soff = l2off + (l2i / per_slice) * q->l2_slice_bytes;
	*idx = (unsigned)(l2i % per_slice);
	return slice_get(q, l1i, l2i / per_slice, soff, !fresh, e);
}

void qc_l2_entry(struct qcow *q, const struct qc_cent *e, unsigned idx, uint64_t *l2e,
		 uint64_t *bitmap)
{
	const uint8_t *p = e->buf + (size_t)idx * q->l2_entry_bytes;
	*l2e = be64_get(p);
	*bitmap = q->extl2 ? be64_get(p + 8) : 0;
}

void qc_l2_set(struct qcow *q, struct qc_cent *e, unsigned idx, uint64_t l2e, uint64_t bitmap)
{
	uint8_t *p = e->buf + (size_t)idx * q->l2_entry_bytes;
	be64_put(p, l2e);
	if (q->extl2)
		be64_put(p + 8, bitmap);
	qc_cache_dirty(&q->l2_cache, e);
}

/* Release what one L2 entry references (deferred). */
int qc_l2_release(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len;
	if (q->has_data_file) /* data in an external file is not refcounted */
		return 0;
	if (l2e & L2E_COMPRESSED) {
		int r = qc_check_compressed_release(q, l2e);
		if (r < 0)
			return r;
		qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
		return qc_free_later(q, hoff, len);
	}
	hoff = l2e & L2E_OFFSET_MASK;
	return hoff ? qc_free_later(q, hoff, q->cluster_size) : 0;
}

/* Drop the L2 table of l1_index and everything it maps (shrink). */
int qc_l2_unlink(struct qcow *q, uint64_t l1_index)
{
	uint64_t l2off = q->l1[l1_index] & L1E_OFFSET_MASK, cs = q->cluster_size;
	if (!l2off)
		return 0;
	uint64_t per_slice = q->l2_slice_bytes / q->l2_entry_bytes;
	for (uint64_t s = 0; s < cs / q->l2_slice_bytes; s++) {
		struct qc_cent *e;
		int r = slice_get(q, l1_index, s, l2off + s * q->l2_slice_bytes, true, &e);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < per_slice && !r; i++) {
			uint64_t l2e, bm;
			qc_l2_entry(q, e, i, &l2e, &bm);
			r = qc_l2_release(q, l2e);
		}
		qc_cache_put(e);
		if (r < 0)
			return r;
	}
	qc_cache_drop_range(&q->l2_cache, l2off, cs);
	qc_metaset_del(&q->meta, l2off >> q->cluster_bits);
	q->l1[l1_index] = 0;
	l1_mark(q, (uint32_t)l1_index);
	int r = qc_free_later(q, l2off, cs);
	return r < 0 ? r : qc_snap_l2_keep(q, l2off);
}
