/*
 * snap_l2.c - the internal snapshots' L2 tables, guarded by a writable handle.
 *
 * A writable handle registers the L2 tables of the internal snapshots as
 * metadata: an active L2 entry naming one (damage) must neither release it
 * nor be written through, or the next allocation (a moved L1, say) would
 * overwrite the snapshot's table.  A table the active L1 shares stays an
 * active L2 table until it is copied on write or dropped; then it becomes
 * a snapshot L2 table again (qc_snap_l2_keep).
 *
 * What a damaged snapshot table can make of this, and the answer:
 *   - A snapshot "L2 table" on other metadata (a refcount block, the header,
 *     an L1 table...) would be rewritten by every change to that metadata,
 *     each new word read as a new reference: refused at the writable open
 *     (-EINVAL, one line), as `qemu-img check` reports the overlap.  The
 *     image still opens read-only.
 *   - Many snapshots naming one L1 table (up to 65536 on one 32 MiB table):
 *     the L1 tables are read as the union of their byte ranges, each byte
 *     once, so the work is bounded by the file's size.
 *   - L1 words naming tables past the end of the file, which are protected
 *     too (the file grows, and data written there would become the table):
 *     the list is deduplicated as it grows, and more than SNAP_L2_PAST_MAX
 *     distinct such tables refuse the writable open, so memory is bounded
 *     by the file's size as well.
 */
#include <errno.h>
#include <stdlib.h>

#include "qcow_int.h"

#define SNAP_L1_CHUNK 8192u          /* L1 entries read at a time */
#define SNAP_L2_PAST_MAX (1u << 20)  /* distinct snapshot L2 tables past EOF */

struct span {
	uint64_t off, end;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int span_cmp(const void *a, const void *b)
{
	return u64_cmp(&((const struct span *)a)->off, &((const struct span *)b)->off);
}

/* The snapshots' L1 tables as sorted, disjoint byte ranges (*n of them). */
static int l1_spans(struct qcow *q, struct span **out, size_t *n)
{
	struct span *s = malloc((q->nb_snapshots + 1) * sizeof(*s));
	size_t k = 0;
	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < q->nb_snapshots; i++)
		if (q->snaps[i].l1_size)
			s[k++] = (struct span){q->snaps[i].l1_offset,
					       q->snaps[i].l1_offset + (uint64_t)q->snaps[i].l1_size * 8};
	qsort(s, k, sizeof(*s), span_cmp);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && s[i].off <= s[m - 1].end) {
			if (s[i].end > s[m - 1].end)
				s[m - 1].end = s[i].end;
		} else {
			s[m++] = s[i];
		}
	}
	*out = s;
	*n = m;
	return 0;
}

/* Sort and deduplicate q->snap_l2; too many tables past the end: -EINVAL. */
static int compact(struct qcow *q)
{
	size_t k = 0, past = 0;
	uint64_t first_past = (q->file_end + q->cluster_size - 1) >> q->cluster_bits;
	if (!q->nsnap_l2)
		return 0;
	qsort(q->snap_l2, q->nsnap_l2, 8, u64_cmp);
	for (size_t i = 0; i < q->nsnap_l2; i++) {
		if (k && q->snap_l2[k - 1] == q->snap_l2[i])
			continue;
		past += q->snap_l2[i] >= first_past;
		q->snap_l2[k++] = q->snap_l2[i];
	}
	q->nsnap_l2 = k;
	if (past > SNAP_L2_PAST_MAX) {
		qc_log(q, "internal snapshots name more than %u L2 tables past the end of the file",
		       SNAP_L2_PAST_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Append the L2 clusters named by n snapshot L1 entries (big-endian). */
static int collect(struct qcow *q, const uint64_t *l1, size_t n, size_t *cap)
{
	uint64_t cs = q->cluster_size;
	for (size_t j = 0; j < n; j++) {
		uint64_t off = be64_get(&l1[j]) & L1E_OFFSET_MASK;
		if (!off || (off & (cs - 1)) || off > QC_MAX_HOST_OFFSET - cs)
			continue;
		if (q->nsnap_l2 == *cap) {
			int r = *cap ? compact(q) : 0;
			if (r < 0)
				return r;
			if (!*cap || q->nsnap_l2 * 2 > *cap) {
				size_t c = *cap ? 2 * *cap : 64;
				uint64_t *a = realloc(q->snap_l2, c * 8);
				if (!a)
					return -ENOMEM;
				q->snap_l2 = a;
				*cap = c;
			}
		}
		q->snap_l2[q->nsnap_l2++] = off >> q->cluster_bits;
	}
	return 0;
}

static int read_spans(struct qcow *q, const struct span *s, size_t ns)
{
	uint64_t *buf = malloc(SNAP_L1_CHUNK * 8);
	size_t cap = 0;
	int r = buf ? 0 : -ENOMEM;
	for (size_t i = 0; i < ns && r == 0; i++) {
		for (uint64_t off = s[i].off; off < s[i].end && r == 0;) {
			uint64_t n = (s[i].end - off) / 8;
			if (n > SNAP_L1_CHUNK)
				n = SNAP_L1_CHUNK;
			if ((r = qc_pread(q, &q->be, buf, n * 8, off, true)) == 0)
				r = collect(q, buf, n, &cap);
			off += n * 8;
		}
	}
	free(buf);
	return r;
}

int qc_snap_l2_register(struct qcow *q)
{
	struct span *s;
	size_t ns;
	int r = l1_spans(q, &s, &ns);
	if (r < 0)
		return r;
	r = read_spans(q, s, ns);
	free(s);
	if (r < 0 || (r = compact(q)) < 0)
		return r;
	for (size_t i = 0; i < q->nsnap_l2; i++) {
		uint64_t off = q->snap_l2[i] << q->cluster_bits;
		/* an active L2 table the snapshot shares guards it already */
		unsigned k = qc_meta_overlap(q, off, q->cluster_size, QC_META_L2);
		if (k && k != QC_META_SNAP_L2) {
			qc_log(q, "a snapshot's L2 table at 0x%llx overlaps the %s",
			       (unsigned long long)off, qc_kind_name(k));
			return -EINVAL;
		}
		r = qc_metaset_add(&q->meta, q->snap_l2[i], QC_META_SNAP_L2);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

/* The active L1 let go of the L2 table at hoff: a snapshot's stays metadata. */
int qc_snap_l2_keep(struct qcow *q, uint64_t hoff)
{
	uint64_t c = hoff >> q->cluster_bits;
	if (!q->nsnap_l2 || !bsearch(&c, q->snap_l2, q->nsnap_l2, 8, u64_cmp))
		return 0;
	int r = qc_metaset_add(&q->meta, c, QC_META_SNAP_L2);
	return r == -EEXIST ? 0 : r;
}
