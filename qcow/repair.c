/*
 * repair.c - rebuild the refcounts of a dirty image (lazy refcounts: qemu
 * left the refcounts stale and set the dirty bit).
 *
 * Every cluster is counted from what references it: header, active and
 * snapshot L1 tables, their L2 tables and data clusters, the snapshot
 * table, the bitmap directory, tables and data (bitmaps.c).  New refcount
 * blocks and a new refcount table are written past everything in use,
 * describing themselves; then the header is switched to them in one write
 * and the dirty bit cleared.  Until the switch the old
 * (stale, dirty-flagged) structures stay in place, so a crash during repair
 * leaves an image that still says it needs repair.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

#define MAX_REPAIR_CLUSTERS (1ull << 26) /* 256 MiB of counters */

struct counts {
	struct qcow *q;
	uint32_t *rc;
	uint64_t n; /* clusters counted (array size) */
};

static int count(struct qcow *q, struct counts *c, uint64_t hoff, uint64_t len)
{
	if (!len)
		return 0;
	uint64_t first = hoff >> q->cluster_bits, last = (hoff + len - 1) >> q->cluster_bits;
	if (last >= c->n) {
		qc_log(q, "repair: cluster 0x%llx lies beyond the end of the file",
		       (unsigned long long)hoff);
		return -EINVAL;
	}
	for (uint64_t i = first; i <= last; i++)
		if (++c->rc[i] == 0) {
			qc_log(q, "repair: cluster %llu has more than 2^32 references",
			       (unsigned long long)i);
			return -EINVAL;
		}
	return 0;
}

static int count_cb(void *c, uint64_t hoff, uint64_t len)
{
	struct counts *cc = c;
	return count(cc->q, cc, hoff, len);
}

static int count_l2(struct qcow *q, struct counts *c, uint64_t l2off, uint8_t *buf)
{
	int r = qc_pread(q, &q->be, buf, q->cluster_size, l2off, true);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < (1ull << q->l2_bits); i++) {
		uint64_t l2e = be64_get(buf + i * q->l2_entry_bytes), bm = 0, hoff, len;
		if (q->extl2)
			bm = be64_get(buf + i * q->l2_entry_bytes + 8);
		if (qc_sc_type(l2e, bm, 0, q->extl2, (int)q->version, q->has_data_file) == SC_INVALID) {
			qc_log(q, "repair: invalid L2 entry 0x%llx", (unsigned long long)l2e);
			return -EINVAL;
		}
		/* A compressed descriptor at offset 0 still names bytes (the
		 * header's): qemu's check counts it, and so must we, or the
		 * header's refcount would fall short of its references. */
		bool compressed = l2e & L2E_COMPRESSED;
		if (compressed) {
			qc_compressed_desc(l2e, q->cluster_bits, &hoff, &len);
		} else {
			hoff = l2e & L2E_OFFSET_MASK;
			len = q->cluster_size;
			if (hoff & (q->cluster_size - 1))
				return -EINVAL;
		}
		if ((hoff || compressed) && !q->has_data_file && (r = count(q, c, hoff, len)) < 0)
			return r;
	}
	return 0;
}

static int count_tree(struct qcow *q, struct counts *c, uint64_t l1off, uint32_t l1_size)
{
	uint64_t *l1 = malloc(((uint64_t)l1_size + 1) * 8);
	uint8_t *buf = malloc(q->cluster_size);
	int r = -ENOMEM;
	if (!l1 || !buf)
		goto out;
	if ((r = qc_pread(q, &q->be, l1, (uint64_t)l1_size * 8, l1off, true)) < 0 ||
	    (r = count(q, c, l1off, (uint64_t)l1_size * 8)) < 0)
		goto out;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2off = be64_get(&l1[i]) & L1E_OFFSET_MASK;
		if (!l2off)
			continue;
		if ((l2off & (q->cluster_size - 1)) || (r = count(q, c, l2off, q->cluster_size)) < 0 ||
		    (r = count_l2(q, c, l2off, buf)) < 0)
			goto out;
	}
	r = 0;
out:
	free(l1);
	free(buf);
	return r;
}

/* Lay out refcount blocks + table at cluster P, counting themselves. */
static int write_structures(struct qcow *q, struct counts *c, uint64_t P)
{
	uint64_t cs = q->cluster_size, E = 1ull << q->rb_bits, k = 1, R;
	for (;;) {
		R = (k * 8 + cs - 1) / cs;
		uint64_t need = (P + k + R + E - 1) / E;
		if (need <= k)
			break;
		k = need;
	}
	for (uint64_t i = P; i < P + k + R; i++)
		c->rc[i] = 1;
	uint8_t *blk = malloc(cs), *rt = calloc(R, cs);
	int r = blk && rt ? 0 : -ENOMEM;
	for (uint64_t b = 0; !r && b < k; b++) {
		memset(blk, 0, cs);
		for (uint64_t i = 0; i < E && b * E + i < P + k + R; i++) {
			if (c->rc[b * E + i] > q->refcount_max) {
				qc_log(q, "repair: refcount of cluster %llu exceeds the refcount width",
				       (unsigned long long)(b * E + i));
				r = -EINVAL; /* the image is malformed, not our arithmetic */
				break;
			}
			qc_rb_set(blk, i, q->refcount_order, c->rc[b * E + i]);
		}
		be64_put(rt + b * 8, (P + b) << q->cluster_bits);
		if (!r)
			r = qc_pwrite(q, &q->be, blk, cs, (P + b) << q->cluster_bits);
	}
	if (!r)
		r = qc_pwrite(q, &q->be, rt, R * cs, (P + k) << q->cluster_bits);
	if (!r)
		r = qc_sync(q);
	if (!r) { /* the commit point */
		be64_put(q->hdr + QH_REFTABLE_OFFSET, (P + k) << q->cluster_bits);
		be32_put(q->hdr + QH_REFTABLE_CLUSTERS, (uint32_t)R);
		r = qc_pwrite(q, &q->be, q->hdr + QH_REFTABLE_OFFSET, 12, QH_REFTABLE_OFFSET);
	}
	if (!r)
		r = qc_sync(q);
	free(blk);
	free(rt);
	return r;
}

/* Returns 0 (refcounts rebuilt, dirty bit cleared) or -errno. */
int qc_repair_refcounts(struct qcow *q)
{
	uint64_t fsize;
	int r = q->be.ops->getsize(q->be.h, &fsize);
	if (r < 0)
		return r;
	struct counts c = {.q = q, .n = (fsize + q->cluster_size - 1) >> q->cluster_bits};
	if (c.n > MAX_REPAIR_CLUSTERS) {
		qc_log(q, "repair: image too large to rebuild refcounts in memory");
		return -EFBIG;
	}
	/* room for the new structures past the end of the file */
	uint64_t extra = 8 + c.n / (1ull << q->rb_bits) * 2;
	if (!(c.rc = calloc(c.n + extra, sizeof(*c.rc))))
		return -ENOMEM;
	if ((r = count(q, &c, 0, q->cluster_size)) < 0 ||
	    (r = count_tree(q, &c, q->l1_offset, q->l1_size)) < 0 ||
	    (r = count(q, &c, q->snapshots_offset, q->snapshots_bytes)) < 0)
		goto out;
	for (unsigned i = 0; i < q->nb_snapshots; i++)
		if ((r = count_tree(q, &c, q->snaps[i].l1_offset, q->snaps[i].l1_size)) < 0)
			goto out;
	if ((r = qc_bitmaps_count(q, count_cb, &c)) < 0)
		goto out;
	uint64_t P = c.n;
	c.n += extra;
	if ((r = write_structures(q, &c, P)) < 0)
		goto out;
	/* One write clears the dirty bit and, when the bitmaps could not be
	 * counted, their autoclear bit (qemu then ignores them). */
	q->incompat &= ~QC_INCOMPAT_DIRTY;
	be64_put(q->hdr + QH_INCOMPAT, q->incompat);
	be64_put(q->hdr + QH_AUTOCLEAR, q->autoclear);
	if ((r = qc_pwrite(q, &q->be, q->hdr + QH_INCOMPAT, 24, QH_INCOMPAT)) == 0)
		r = qc_sync(q);
out:
	if (r < 0)
		qc_log(q, "cannot rebuild the refcounts of this dirty image");
	free(c.rc);
	return r;
}
