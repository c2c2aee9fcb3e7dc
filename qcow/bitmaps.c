/*
 * bitmaps.c - persistent dirty bitmaps (the bitmaps header extension).
 *
 * We never maintain bitmaps, so before the first write they must stop being
 * trusted.  Clearing the bitmaps autoclear bit does that, but qemu then
 * ignores the whole extension and `qemu-img check` reports the directory,
 * bitmap tables and bitmap data as leaked clusters (exit 3).  Instead we do
 * what qemu itself does while it has an image open: set the IN_USE flag of
 * every bitmap in the directory (in place, nothing else changes) and keep
 * the autoclear bit.  qemu then loads them as inconsistent, refuses to use
 * them (only `qemu-img bitmap --remove` works), and `qemu-img check` stays
 * clean because the clusters are still referenced.  A directory we cannot
 * validate falls back to clearing the autoclear bit.
 *
 * Directory entry (qemu docs/interop/qcow2.txt): u64 bitmap table offset,
 * u32 table size (entries), u32 flags (bit 0 IN_USE), u8 type,
 * u8 granularity bits, u16 name size, u32 extra data size, extra data,
 * name, padding to 8 bytes.  Bitmap table entry: bits 9..55 data cluster
 * offset (0: all zeros, or all ones with bit 0).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

#define BM_MAX_BITMAPS 65535u
#define BM_MAX_DIR_BYTES (1024ull * BM_MAX_BITMAPS) /* qemu's limit */
#define BM_MAX_TABLE_BYTES (64ull << 20)
#define BM_ENTRY_BYTES 24
#define BM_FLAG_IN_USE 1u
#define BM_TABLE_OFFSET_MASK 0x00fffffffffffe00ull

/* Advance *pos past the directory entry at *pos; -EINVAL when the entry
 * runs past the directory.  (load_dir checked every entry, so later walks
 * ignore the result.) */
static int next_entry(struct qcow *q, const uint8_t *dir, uint64_t *pos)
{
	uint64_t p = *pos;
	if (q->bm_dir_bytes - p < BM_ENTRY_BYTES)
		return -EINVAL;
	uint64_t len = BM_ENTRY_BYTES + (uint64_t)be32_get(dir + p + 20) +
		       ((uint64_t)dir[p + 18] << 8 | dir[p + 19]);
	len = (len + 7) & ~7ull;
	if (len > q->bm_dir_bytes - p)
		return -EINVAL;
	*pos = p + len;
	return 0;
}

/* Read and check the directory; NULL when absent or not trustworthy. */
static uint8_t *load_dir(struct qcow *q)
{
	if (!(q->autoclear & QC_AUTOCLEAR_BITMAPS) || !q->bm_nb || q->bm_nb > BM_MAX_BITMAPS)
		return NULL;
	if (!q->bm_dir_bytes ||
	    qc_validate_table(q, q->bm_dir_offset, q->bm_dir_bytes, 1, BM_MAX_DIR_BYTES, q->file_end,
			      "bitmap directory") < 0 ||
	    qc_meta_overlap(q, q->bm_dir_offset, q->bm_dir_bytes, QC_META_BITMAP)) {
		qc_log(q, "bitmap directory is not valid; the bitmaps will be ignored");
		return NULL;
	}
	uint8_t *dir = malloc(q->bm_dir_bytes);
	uint64_t pos = 0;
	if (!dir || qc_pread(q, &q->be, dir, q->bm_dir_bytes, q->bm_dir_offset, true) < 0)
		goto bad;
	for (uint32_t i = 0; i < q->bm_nb; i++)
		if (next_entry(q, dir, &pos) < 0)
			goto bad;
	if (pos != q->bm_dir_bytes)
		goto bad;
	return dir;
bad:
	qc_log(q, "bitmap directory is not valid; the bitmaps will be ignored");
	free(dir);
	return NULL;
}

/* Count the directory, every bitmap table and its data clusters with
 * count(); for the refcount rebuild of a dirty image.  When the directory
 * is not valid, the bitmaps autoclear bit is dropped (in memory) instead,
 * so that nothing else trusts it. */
int qc_bitmaps_count(struct qcow *q, int (*count)(void *, uint64_t, uint64_t), void *arg)
{
	uint8_t *dir = load_dir(q), *tab = NULL;
	uint64_t pos = 0;
	int r = 0;
	if (!dir) {
		q->autoclear &= ~QC_AUTOCLEAR_BITMAPS;
		return 0;
	}
	if ((r = count(arg, q->bm_dir_offset, q->bm_dir_bytes)) < 0)
		goto out;
	for (uint32_t i = 0; i < q->bm_nb && r == 0; i++, next_entry(q, dir, &pos)) {
		uint64_t toff = be64_get(dir + pos), n = be32_get(dir + pos + 8);
		if ((r = qc_validate_table(q, toff, n, 8, BM_MAX_TABLE_BYTES, q->file_end,
					   "bitmap table")) < 0 ||
		    (r = count(arg, toff, n * 8)) < 0 || !n)
			continue;
		free(tab);
		if (!(tab = malloc(n * 8))) {
			r = -ENOMEM;
			break;
		}
		if ((r = qc_pread(q, &q->be, tab, n * 8, toff, true)) < 0)
			break;
		for (uint64_t j = 0; j < n && r == 0; j++) {
			uint64_t d = be64_get(tab + j * 8) & BM_TABLE_OFFSET_MASK;
			if (d & (q->cluster_size - 1))
				r = -EINVAL;
			else if (d)
				r = count(arg, d, q->cluster_size);
		}
	}
out:
	if (r < 0 && r != -ENOMEM && r != -EIO) { /* not valid: stop trusting it */
		qc_log(q, "bitmap tables are not valid; the bitmaps will be ignored");
		q->autoclear &= ~QC_AUTOCLEAR_BITMAPS;
		r = 0;
	}
	free(tab);
	free(dir);
	return r;
}

/*
 * Before the first write: flag every bitmap IN_USE (qemu's own marking of
 * bitmaps it may not have stored).  Returns 1 when done (keep the autoclear
 * bit), 0 when there is nothing to keep (clear it), or -errno.
 */
int qc_bitmaps_mark_in_use(struct qcow *q)
{
	uint8_t *dir = load_dir(q);
	uint64_t pos = 0, rc;
	int r;
	if (!dir)
		return 0;
	/* The directory must be allocated to itself, or a later allocation
	 * could land on it. */
	for (uint64_t c = q->bm_dir_offset; c < q->bm_dir_offset + q->bm_dir_bytes; c += q->cluster_size)
		if ((r = qc_refcount_get(q, c >> q->cluster_bits, &rc)) < 0 || rc != 1) {
			free(dir);
			return r < 0 ? r : 0;
		}
	bool changed = false;
	for (uint32_t i = 0; i < q->bm_nb; i++, next_entry(q, dir, &pos)) {
		uint32_t flags = be32_get(dir + pos + 12);
		changed |= !(flags & BM_FLAG_IN_USE);
		be32_put(dir + pos + 12, flags | BM_FLAG_IN_USE);
	}
	r = changed ? qc_meta_pwrite(q, dir, q->bm_dir_bytes, q->bm_dir_offset, QC_META_BITMAP) : 0;
	if (r == 0 && changed)
		r = qc_sync(q);
	free(dir);
	return r < 0 ? r : 1;
}
