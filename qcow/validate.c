/*
 * validate.c - distrust of the file: checked arithmetic, table validation
 * and the metadata map behind the overlap checks.
 *
 * Every host range we are about to write is checked against the header,
 * L1 table, refcount table, snapshot table, snapshot L1 tables (the fixed
 * regions) and against the set of active L2 tables and refcount blocks (the
 * metadata set), as qemu's overlap checks do.  A hit means the image (or
 * this library) is inconsistent: the image is latched read-only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

#define TOMB UINT64_MAX

bool qc_add_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}

bool qc_mul_overflow(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

static size_t slot_of(const struct qc_metaset *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
}

static int metaset_grow(struct qc_metaset *m)
{
	struct qc_metaset n = {0};
	n.cap = m->cap ? m->cap * 2 : 1024;
	while (m->used * 2 >= n.cap)
		n.cap *= 2;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.kinds = calloc(n.cap, 1);
	if (!n.keys || !n.kinds) {
		free(n.keys);
		free(n.kinds);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == 0 || m->keys[i] == TOMB)
			continue;
		size_t s = slot_of(&n, m->keys[i]);
		while (n.keys[s])
			s = (s + 1) & (n.cap - 1);
		n.keys[s] = m->keys[i];
		n.kinds[s] = m->kinds[i];
		n.used++;
	}
	free(m->keys);
	free(m->kinds);
	*m = n;
	return 0;
}

/* Returns 0, -EEXIST if the cluster is already metadata, or -ENOMEM. */
int qc_metaset_add(struct qc_metaset *m, uint64_t cluster, unsigned kind)
{
	uint64_t key = cluster + 1;
	if ((m->used + m->tomb + 1) * 2 > m->cap) {
		int r = metaset_grow(m);
		if (r < 0)
			return r;
		m->tomb = 0;
	}
	size_t s = slot_of(m, key), tomb = SIZE_MAX;
	for (; m->keys[s]; s = (s + 1) & (m->cap - 1)) {
		if (m->keys[s] == key)
			return -EEXIST;
		if (m->keys[s] == TOMB && tomb == SIZE_MAX)
			tomb = s;
	}
	if (tomb != SIZE_MAX) {
		s = tomb;
		m->tomb--;
	}
	m->keys[s] = key;
	m->kinds[s] = (uint8_t)kind;
	m->used++;
	return 0;
}

static size_t metaset_find(const struct qc_metaset *m, uint64_t cluster)
{
	uint64_t key = cluster + 1;
	if (!m->cap)
		return SIZE_MAX;
	for (size_t s = slot_of(m, key); m->keys[s]; s = (s + 1) & (m->cap - 1))
		if (m->keys[s] == key)
			return s;
	return SIZE_MAX;
}

unsigned qc_metaset_get(const struct qc_metaset *m, uint64_t cluster)
{
	size_t s = metaset_find(m, cluster);
	return s == SIZE_MAX ? QC_META_NONE : m->kinds[s];
}

void qc_metaset_del(struct qc_metaset *m, uint64_t cluster)
{
	size_t s = metaset_find(m, cluster);
	if (s == SIZE_MAX)
		return;
	m->keys[s] = TOMB;
	m->used--;
	m->tomb++;
}

void qc_metaset_free(struct qc_metaset *m)
{
	free(m->keys);
	free(m->kinds);
	memset(m, 0, sizeof(*m));
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void add_fixed(struct qcow *q, uint64_t hoff, uint64_t len, unsigned kind)
{
	if (!len || q->nfixed >= sizeof(q->fixed) / sizeof(q->fixed[0]))
		return;
	q->fixed[q->nfixed++] = (struct qc_region){hoff, round_up(len, q->cluster_size), kind};
}

/* Recompute the fixed regions after a header, L1 or refcount table change. */
void qc_fixed_regions(struct qcow *q)
{
	q->nfixed = 0;
	add_fixed(q, 0, q->cluster_size, QC_META_HEADER);
	add_fixed(q, q->l1_offset, (uint64_t)q->l1_size * 8, QC_META_L1);
	add_fixed(q, q->reftable_offset, (uint64_t)q->reftable_clusters << q->cluster_bits,
		  QC_META_REFTABLE);
	add_fixed(q, q->snapshots_offset, q->snapshots_bytes, QC_META_SNAPTABLE);
}

/*
 * Which kind of metadata other than `kind` overlaps [hoff, hoff+len)?
 * QC_META_NONE if none.  Snapshot L1 tables are checked from the snapshot
 * list; active L2 tables and refcount blocks from the metadata set.
 */
unsigned qc_meta_overlap(struct qcow *q, uint64_t hoff, uint64_t len, unsigned kind)
{
	uint64_t end = hoff + len;
	for (unsigned i = 0; i < q->nfixed; i++) {
		const struct qc_region *g = &q->fixed[i];
		if (g->kind != kind && hoff < g->hoff + g->len && g->hoff < end)
			return g->kind;
	}
	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		uint64_t o = q->snaps[i].l1_offset, l = round_up((uint64_t)q->snaps[i].l1_size * 8, q->cluster_size);
		if (kind != QC_META_SNAP_L1 && l && hoff < o + l && o < end)
			return QC_META_SNAP_L1;
	}
	if (q->meta.used) {
		for (uint64_t c = hoff >> q->cluster_bits; c <= (end - 1) >> q->cluster_bits; c++) {
			unsigned k = qc_metaset_get(&q->meta, c);
			if (k && k != kind)
				return k;
		}
	}
	return QC_META_NONE;
}

const char *qc_kind_name(unsigned k)
{
	static const char *const names[] = {"data", "header", "L1 table", "L2 table",
					    "refcount table", "refcount block", "snapshot table",
					    "snapshot L1 table", "bitmap", "snapshot L2 table"};
	return k < sizeof(names) / sizeof(names[0]) ? names[k] : "metadata";
}

/* Refuse (and latch) a write of `kind` that would land on other metadata. */
int qc_check_write(struct qcow *q, uint64_t hoff, uint64_t len, unsigned kind)
{
	if (!len)
		return 0;
	if (hoff + len < hoff || hoff + len > QC_MAX_HOST_OFFSET)
		return qc_corrupt(q, "%s write at 0x%llx is beyond the maximum host offset",
				  qc_kind_name(kind), (unsigned long long)hoff);
	unsigned k = qc_meta_overlap(q, hoff, len, kind);
	if (k)
		return qc_corrupt(q, "%s write at 0x%llx would overwrite the %s", qc_kind_name(kind),
				  (unsigned long long)hoff, qc_kind_name(k));
	return 0;
}

/*
 * Validate a table's placement before reading it: aligned, no overflow,
 * within max_bytes and inside the file.  Returns 0 or -EINVAL/-EFBIG.
 */
int qc_validate_table(struct qcow *q, uint64_t off, uint64_t entries, uint64_t esize,
		      uint64_t max_bytes, uint64_t file_size, const char *what)
{
	uint64_t bytes, end;
	if (qc_mul_overflow(entries, esize, &bytes) || bytes > max_bytes) {
		qc_log(q, "%s is too large (%llu entries)", what, (unsigned long long)entries);
		return -EFBIG;
	}
	if (!entries)
		return 0;
	if (off & (q->cluster_size - 1)) {
		qc_log(q, "%s offset 0x%llx is not cluster aligned", what, (unsigned long long)off);
		return -EINVAL;
	}
	if (off == 0) {
		qc_log(q, "%s lies in the header cluster", what);
		return -EINVAL;
	}
	if (qc_add_overflow(off, bytes, &end) || end > file_size || end > QC_MAX_HOST_OFFSET) {
		qc_log(q, "%s (offset 0x%llx, %llu bytes) lies past the end of the file", what,
		       (unsigned long long)off, (unsigned long long)bytes);
		return -EINVAL;
	}
	return 0;
}
