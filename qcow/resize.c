/*
 * resize.c - change the virtual size.
 *
 * Growing first grows L1 (l2.c), then makes the bytes between the old end
 * and the end of its cluster read as zeros (they may hold stale data from
 * an earlier shrink or from qemu), and likewise whatever a longer backing
 * file would show, then switches the header's size.
 * Shrinking releases every cluster beyond the new end (and the L2 tables
 * that only mapped them) before switching the size.
 */
#include <errno.h>

#include "qcow_int.h"

static int set_size(struct qcow *q, uint64_t size)
{
	be64_put(q->hdr + QH_SIZE, size);
	int r = qc_header_write(q, QH_SIZE, 8);
	if (r < 0)
		return r;
	q->size = size;
	return 0;
}

static int grow(struct qcow *q, uint64_t size, bool hide_backing)
{
	uint64_t per_l1 = q->cluster_bits + q->l2_bits;
	uint64_t need = (size + (1ull << per_l1) - 1) >> per_l1;
	int r = qc_l1_grow(q, need);
	if (r < 0)
		return r;
	uint64_t old = q->size, cend = (old + q->cluster_size - 1) & ~(q->cluster_size - 1);
	/* A longer backing file would show through the new area: hide it, as
	 * qemu does, so that growing reads as zeros like a regular file. */
	if (hide_backing && q->backing.ops && q->backing_size > cend)
		cend = q->backing_size;
	if (cend > size)
		cend = size;
	if (cend > old) { /* the tail of the last cluster: visible from now on */
		q->size = size;
		r = qc_zero_locked(q, old, cend - old, 0);
		q->size = old;
		if (r < 0)
			return r;
	}
	return set_size(q, size);
}

static int shrink(struct qcow *q, uint64_t size)
{
	uint64_t cs = q->cluster_size, span = 1ull << (q->cluster_bits + q->l2_bits);
	uint64_t from = (size + cs - 1) & ~(cs - 1), old_end = (q->size + cs - 1) & ~(cs - 1);
	int r;
	/* L2 tables wholly beyond the new end go with everything they map. */
	uint64_t first_l1 = (size + span - 1) / span;
	for (uint64_t i = first_l1; i < q->l1_size; i++)
		if ((r = qc_l2_unlink(q, i)) < 0)
			return r;
	uint64_t stop = first_l1 * span < old_end ? first_l1 * span : old_end;
	if (from < stop && (r = qc_zero_locked(q, from, stop - from, QCOW_ZERO_UNMAP)) < 0)
		return r;
	return set_size(q, size);
}

int qc_resize_locked(struct qcow *q, uint64_t size, bool hide_backing)
{
	if (q->read_only)
		return -EROFS;
	if (size > INT64_MAX)
		return -EFBIG;
	if (size == q->size)
		return 0;
	qc_op_begin(q);
	return size > q->size ? grow(q, size, hide_backing) : shrink(q, size);
}
