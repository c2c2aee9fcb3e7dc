/*
 * release.c - never make a damaged image worse.
 *
 * Dropping a reference is the one change that turns a damaged image into
 * lost data: a cluster whose refcount reaches 0 while something still uses
 * it is handed out again by the next allocation.  So every range whose
 * reference is about to be dropped is checked first, before the entry that
 * held it changes (qc_free_later, and the write path before it allocates),
 * and anything a reference cannot legitimately own is corruption
 * (qc_corrupt: -EIO, one log line, the image latched, on v3 the corrupt
 * bit set), never silently applied:
 *   - a range reaching past the end of the file or the maximum host offset;
 *   - a range touching metadata: header, L1, active L2 tables, refcount
 *     table and blocks, snapshot table and snapshot L1 tables, the kept
 *     bitmaps' directory, tables and data;
 *   - a range touching a cluster the current operation allocated (the
 *     cluster just given to the data being written);
 *   - a cluster whose refcount is already 0; and when the deferred
 *     decrements are applied, a cluster they would take below 0
 *     (qc_frees_validate checks every one before alloc.c changes any).
 * A writable handle also checks each L2 slice the first time it uses it
 * (qc_check_l2_slice): every entry must name a cluster that was inside the
 * file when it was loaded, was not allocated since, and is in use.  An
 * entry naming a free cluster, or one past the end of the file, is a
 * reference the refcounts do not know of: once this handle allocates that
 * cluster for other data, a write or release through the entry would
 * overwrite or free it.
 * Compressed descriptors are checked against the file as it was loaded:
 * this library never writes compressed data, so a descriptor reaching past
 * the loaded end of the file, or onto a cluster allocated since, is damage
 * (checked on reads too: what it would decompress is not the guest's).
 * Nor may a compressed cluster be released from a cluster that a plain
 * (uncompressed) L2 entry names: a valid image never shares one, and a
 * damaged one whose refcount undercounts them would reach 0 while the
 * plain entry still uses the cluster (check_plain).
 * qemu 7.2 applies such releases; see docs/GUARANTEES.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

static uint64_t clusters_in(const struct qcow *q, uint64_t bytes)
{
	return (bytes + q->cluster_size - 1) >> q->cluster_bits;
}

/* Clusters [*c0, *c1] of [hoff, hoff+len), len > 0; false past the maximum. */
static bool span(const struct qcow *q, uint64_t hoff, uint64_t len, uint64_t *c0, uint64_t *c1)
{
	uint64_t end;
	if (!len || qc_add_overflow(hoff, len, &end) || end > QC_MAX_HOST_OFFSET)
		return false;
	*c0 = hoff >> q->cluster_bits;
	*c1 = (end - 1) >> q->cluster_bits;
	return true;
}

/* A public modifying call starts: it has allocated nothing yet. */
void qc_op_begin(struct qcow *q)
{
	q->nop_allocs = 0;
	q->op_lo = q->op_hi = 0;
}

/* Cluster c goes from refcount 0 to in use (refcount.c). */
int qc_note_alloc(struct qcow *q, uint64_t c)
{
	uint64_t below = clusters_in(q, q->load_end);
	if (c < below) {
		if (!q->reused && !(q->reused = calloc((below + 7) / 8, 1)))
			return -ENOMEM;
		q->reused[c >> 3] |= (uint8_t)(1u << (c & 7));
	}
	struct qc_free *last = q->nop_allocs ? &q->op_allocs[q->nop_allocs - 1] : NULL;
	if (last && last->cluster + last->n == c) {
		last->n++;
	} else {
		if (q->nop_allocs == q->op_allocs_cap) {
			size_t cap = q->op_allocs_cap ? 2 * q->op_allocs_cap : 16;
			struct qc_free *a = realloc(q->op_allocs, cap * sizeof(*a));
			if (!a)
				return -ENOMEM;
			q->op_allocs = a;
			q->op_allocs_cap = cap;
		}
		q->op_allocs[q->nop_allocs++] = (struct qc_free){c, 1};
	}
	if (q->op_lo >= q->op_hi || c < q->op_lo)
		q->op_lo = c;
	if (c + 1 > q->op_hi)
		q->op_hi = c + 1;
	return 0;
}

void qc_release_state_free(struct qcow *q)
{
	free(q->snap_l2);
	q->snap_l2 = NULL;
	q->nsnap_l2 = 0;
	free(q->l2_seen);
	q->l2_seen = NULL;
	q->l2_seen_bits = 0;
	free(q->reused);
	free(q->plain);
	q->plain = NULL;
	free(q->op_allocs);
	q->reused = NULL;
	q->op_allocs = NULL;
	q->nop_allocs = q->op_allocs_cap = 0;
	q->op_lo = q->op_hi = 0;
}

static bool op_allocated(const struct qcow *q, uint64_t c0, uint64_t c1)
{
	if (q->op_lo >= q->op_hi || c1 < q->op_lo || c0 >= q->op_hi)
		return false; /* the common case: releases lie below new allocations */
	for (size_t i = q->nop_allocs; i--;) {
		const struct qc_free *a = &q->op_allocs[i];
		if (c0 < a->cluster + a->n && a->cluster <= c1)
			return true;
	}
	return false;
}

static bool reused(const struct qcow *q, uint64_t c0, uint64_t c1)
{
	uint64_t below = clusters_in(q, q->load_end);
	for (uint64_t c = c0; q->reused && c <= c1 && c < below; c++)
		if (q->reused[c >> 3] & (1u << (c & 7)))
			return true;
	return false;
}

int qc_check_compressed(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len, c0, c1;
	qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
	if (!span(q, hoff, len, &c0, &c1) || c1 >= clusters_in(q, q->load_end))
		return qc_corrupt(q, "compressed cluster descriptor 0x%llx reaches past the end of the file",
				  (unsigned long long)l2e);
	unsigned k = qc_meta_overlap(q, hoff, len, QC_META_NONE);
	if (k)
		return qc_corrupt(q, "compressed cluster descriptor 0x%llx overlaps the %s",
				  (unsigned long long)l2e, qc_kind_name(k));
	if (reused(q, c0, c1))
		return qc_corrupt(q, "compressed cluster descriptor 0x%llx overlaps a cluster allocated "
				     "since the image was opened", (unsigned long long)l2e);
	return 0;
}

int qc_check_release(struct qcow *q, uint64_t hoff, uint64_t len)
{
	uint64_t c0, c1, rc;
	if (!len)
		return 0;
	if (!span(q, hoff, len, &c0, &c1) || c1 >= clusters_in(q, q->file_end))
		return qc_corrupt(q, "releasing 0x%llx+%llu: reaches past the end of the file",
				  (unsigned long long)hoff, (unsigned long long)len);
	unsigned k = qc_meta_overlap(q, hoff, len, QC_META_NONE);
	if (k)
		return qc_corrupt(q, "releasing 0x%llx+%llu would free the %s", (unsigned long long)hoff,
				  (unsigned long long)len, qc_kind_name(k));
	if (op_allocated(q, c0, c1))
		return qc_corrupt(q, "releasing 0x%llx+%llu would free a cluster this write just allocated",
				  (unsigned long long)hoff, (unsigned long long)len);
	for (uint64_t c = c0; c <= c1; c++) {
		int r = qc_refcount_get(q, c, &rc);
		if (r < 0)
			return r;
		if (!rc)
			return qc_corrupt(q, "releasing 0x%llx+%llu: cluster 0x%llx is already free",
					  (unsigned long long)hoff, (unsigned long long)len,
					  (unsigned long long)(c << q->cluster_bits));
	}
	return 0;
}

/* Mark the clusters below `below` that the plain entries of one L2 table
 * (as the file holds it) name. */
static void mark_plain(struct qcow *q, const uint8_t *t, uint64_t below)
{
	for (uint64_t i = 0; i < (1ull << q->l2_bits); i++) {
		uint64_t l2e = be64_get(t + i * q->l2_entry_bytes);
		uint64_t c = (l2e & L2E_OFFSET_MASK) >> q->cluster_bits;
		if (!(l2e & L2E_COMPRESSED) && c && c < below)
			q->plain[c >> 3] |= (uint8_t)(1u << (c & 7));
	}
}

/*
 * q->plain, from every active and snapshot L2 table the file held when it
 * was loaded.  A table in a cluster allocated since is this handle's own:
 * its entries name clusters allocated since (`reused`, or past load_end),
 * and the file may not hold it yet.  Entries this handle changed in its
 * cache are read as they were: a bit left for a cluster no longer named
 * can only refuse a release from an image that shares it with compressed
 * data, which is damaged already.
 */
static int plain_build(struct qcow *q)
{
	uint64_t below = clusters_in(q, q->load_end), n = (uint64_t)q->l1_size + q->nsnap_l2;
	uint8_t *t = malloc(q->cluster_size);
	q->plain = calloc(below / 8 + 1, 1);
	int r = t && q->plain ? 0 : -ENOMEM;
	for (uint64_t i = 0; !r && i < n; i++) {
		uint64_t off = i < q->l1_size ? q->l1[i] & L1E_OFFSET_MASK
					      : q->snap_l2[i - q->l1_size] << q->cluster_bits;
		uint64_t c = off >> q->cluster_bits;
		if (!off || (off & (q->cluster_size - 1)) || c >= below || reused(q, c, c))
			continue;
		if ((r = qc_pread(q, &q->be, t, q->cluster_size, off, true)) == 0)
			mark_plain(q, t, below);
	}
	free(t);
	if (r < 0) {
		free(q->plain);
		q->plain = NULL;
	}
	return r;
}

/* A compressed descriptor about to be released must not share a cluster
 * with plain data (see the top). */
static int check_plain(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len, c0, c1, below = clusters_in(q, q->load_end);
	int r;
	if (!q->plain && (r = plain_build(q)) < 0)
		return r;
	qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
	if (!span(q, hoff, len, &c0, &c1))
		return 0; /* refused by qc_check_compressed */
	for (uint64_t c = c0; c <= c1 && c < below; c++)
		if (q->plain[c >> 3] & (1u << (c & 7)))
			return qc_corrupt(q, "compressed cluster descriptor 0x%llx shares cluster 0x%llx "
					     "with uncompressed data", (unsigned long long)l2e,
					  (unsigned long long)(c << q->cluster_bits));
	return 0;
}

/*
 * Before a compressed cluster's clusters are released: the stream must
 * reach into the last cluster the descriptor names.  qemu describes the
 * sectors up to the one holding the stream's last byte; a descriptor
 * whose sector count runs on past that (into the next guest's data
 * cluster, say) would release a cluster it never used.  The decoder may
 * stop a few bytes short of the stream's end once the cluster is full,
 * hence one sector of slack.  A build without the decoder (musl, zstd)
 * cannot tell and keeps the descriptor's word.
 */
int qc_check_compressed_release(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len;
	int r = qc_read_compressed(q, l2e);
	if (r == -ENOTSUP)
		return (r = qc_check_compressed(q, l2e)) < 0 ? r : check_plain(q, l2e);
	if (r < 0)
		return r;
	qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
	uint64_t last = (hoff + len - 1) >> q->cluster_bits;
	if (last > (hoff + q->zbuf_used + 511) >> q->cluster_bits)
		return qc_corrupt(q, "compressed cluster descriptor 0x%llx names %llu bytes, its data "
				     "ends after %zu", (unsigned long long)l2e, (unsigned long long)len,
				  q->zbuf_used);
	return check_plain(q, l2e);
}

/* May the reference held by this L2 entry be dropped?  (Changes nothing.) */
int qc_check_l2e_release(struct qcow *q, uint64_t l2e)
{
	uint64_t hoff, len;
	if (q->has_data_file) /* data in an external file is not refcounted */
		return 0;
	if (l2e & L2E_COMPRESSED) {
		int r = qc_check_compressed_release(q, l2e);
		if (r < 0)
			return r;
		qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
		return qc_check_release(q, hoff, len);
	}
	hoff = l2e & L2E_OFFSET_MASK;
	return hoff ? qc_check_release(q, hoff, q->cluster_size) : 0;
}

/* Bit of slice `slice` of L1 entry l1_index in q->l2_seen, grown to cover
 * the whole L1 table; -ENOMEM. */
static int64_t seen_bit(struct qcow *q, uint64_t l1_index, uint64_t slice)
{
	uint64_t per = q->cluster_size / q->l2_slice_bytes, bit = l1_index * per + slice;
	if (bit >= q->l2_seen_bits) {
		uint64_t bits = ((uint64_t)q->l1_size + 1) * per;
		if (bit >= bits)
			bits = bit + 1;
		uint8_t *m = realloc(q->l2_seen, (bits + 7) / 8);
		if (!m)
			return -ENOMEM;
		memset(m + (q->l2_seen_bits + 7) / 8, 0, (bits + 7) / 8 - (q->l2_seen_bits + 7) / 8);
		q->l2_seen = m;
		q->l2_seen_bits = bits;
	}
	return (int64_t)bit;
}

/* A new L2 table (zeros) for l1_index: every entry in it is this handle's. */
int qc_l2_seen_table(struct qcow *q, uint64_t l1_index)
{
	for (uint64_t s = 0; s < q->cluster_size / q->l2_slice_bytes; s++) {
		int64_t b = seen_bit(q, l1_index, s);
		if (b < 0)
			return (int)b;
		q->l2_seen[b >> 3] |= (uint8_t)(1u << (b & 7));
	}
	return 0;
}

/* The first use of an L2 slice by a writable handle (see the top). */
int qc_check_l2_slice(struct qcow *q, uint64_t l1_index, uint64_t slice, const struct qc_cent *e)
{
	if (q->read_only || q->broken || q->has_data_file)
		return 0; /* nothing will be written or released through it */
	int64_t b = seen_bit(q, l1_index, slice);
	if (b < 0)
		return (int)b;
	if (q->l2_seen[b >> 3] & (1u << (b & 7)))
		return 0;
	uint64_t below = clusters_in(q, q->load_end), n = q->l2_slice_bytes / q->l2_entry_bytes, rc;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t l2e = be64_get(e->buf + i * q->l2_entry_bytes), hoff = l2e & L2E_OFFSET_MASK;
		uint64_t c = hoff >> q->cluster_bits;
		if ((l2e & L2E_COMPRESSED) || !hoff) /* descriptors: qc_check_compressed */
			continue;
		/* an unaligned offset names no cluster: releasing it (a zero, a
		 * discard, a copy-out) would drop a reference the entry never held */
		if (hoff & (q->cluster_size - 1))
			return qc_corrupt(q, "L2 entry 0x%llx is not cluster-aligned",
					  (unsigned long long)l2e);
		if (c >= below)
			return qc_corrupt(q, "L2 entry 0x%llx names a cluster past the end of the file",
					  (unsigned long long)l2e);
		if (reused(q, c, c))
			return qc_corrupt(q, "L2 entry 0x%llx names a cluster allocated since the image "
					     "was opened", (unsigned long long)l2e);
		int r = qc_refcount_get(q, c, &rc);
		if (r < 0)
			return r;
		if (!rc)
			return qc_corrupt(q, "L2 entry 0x%llx names a free cluster",
					  (unsigned long long)l2e);
	}
	q->l2_seen[b >> 3] |= (uint8_t)(1u << (b & 7));
	return 0;
}

struct edge {
	uint64_t at;
	int d;
};

static int edge_cmp(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Before any deferred decrement is applied: no cluster may be released
 * more times than its refcount (two damaged entries sharing a cluster
 * counted once).  A sweep over the sorted range edges gives each cluster
 * its number of pending releases.
 */
int qc_frees_validate(struct qcow *q)
{
	size_t n = q->nfrees * 2;
	struct edge *ev = n ? malloc(n * sizeof(*ev)) : NULL;
	if (!n)
		return 0;
	if (!ev)
		return -ENOMEM;
	for (size_t i = 0; i < q->nfrees; i++) {
		ev[2 * i] = (struct edge){q->frees[i].cluster, 1};
		ev[2 * i + 1] = (struct edge){q->frees[i].cluster + q->frees[i].n, -1};
	}
	qsort(ev, n, sizeof(*ev), edge_cmp);
	int64_t times = 0;
	int r = 0;
	for (size_t i = 0; i < n && !r;) {
		uint64_t at = ev[i].at, rc;
		for (; i < n && ev[i].at == at; i++)
			times += ev[i].d;
		for (uint64_t c = at; i < n && c < ev[i].at && times > 0 && !r; c++) {
			if ((r = qc_refcount_get(q, c, &rc)) < 0)
				break;
			if (rc < (uint64_t)times)
				r = qc_corrupt(q, "cluster 0x%llx would be released %lld times with refcount %llu",
					       (unsigned long long)(c << q->cluster_bits), (long long)times,
					       (unsigned long long)rc);
		}
	}
	free(ev);
	return r;
}

static int add_bitmap(void *arg, uint64_t hoff, uint64_t len)
{
	struct qcow *q = arg;
	uint64_t c0, c1;
	if (!span(q, hoff, len, &c0, &c1))
		return -EINVAL;
	/* A bitmap table or data cluster on the header, an L1 or L2 table, the
	 * refcount structures or snapshots cannot be kept: the bitmaps would
	 * claim clusters whose contents this handle changes (and a walk
	 * reading them as bitmap tables would find new references). */
	if (qc_meta_overlap(q, hoff, len, QC_META_BITMAP))
		return -EINVAL;
	for (uint64_t c = c0; c <= c1; c++) {
		int r = qc_metaset_add(&q->meta, c, QC_META_BITMAP);
		if (r < 0 && r != -EEXIST) /* shared with other metadata: that one guards it */
			return r;
	}
	return 0;
}

/* The bitmaps we keep (flagged in use) are metadata: never data, never
 * freed.  Tables or data that cannot be kept clear the bitmaps autoclear
 * bit in memory (qc_bitmaps_count); open_writable then clears it on disk. */
int qc_bitmaps_register(struct qcow *q)
{
	if (!(q->autoclear & QC_AUTOCLEAR_BITMAPS))
		return 0;
	return qc_bitmaps_count(q, add_bitmap, q);
}
