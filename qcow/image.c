/*
 * image.c - the public entry points: open/create/close, I/O dispatch under
 * the image lock, flush ordering, info, invalidate.  Orchestration only:
 * the format lives in the other files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

#define DEFAULT_L2_CACHE (4u << 20)
#define DEFAULT_RB_CACHE (1u << 20)
#define MAX_PENDING_FREES 4096

QC_HIDDEN int qc_open_depth(struct qcow **out, struct qcow_backend be, const struct qcow_opts *o,
			    int depth);

void qc_log(struct qcow *q, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!q->opts.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	q->opts.log(q->opts.arg, msg);
}

/*
 * Corruption found at run time: log it, latch the image (every later write
 * fails) and, when writable, set the corrupt bit as qemu does.  Returns -EIO.
 */
int qc_corrupt(struct qcow *q, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	qc_log(q, "corrupt image: %s", msg);
	if (q->broken)
		return -EIO;
	q->broken = true;
	if (!q->read_only && q->version >= 3 && q->hdr) {
		be64_put(q->hdr + QH_INCOMPAT, q->incompat | QC_INCOMPAT_CORRUPT);
		if (qc_pwrite(q, &q->be, q->hdr + QH_INCOMPAT, 8, QH_INCOMPAT) == 0)
			(void)q->be.ops->flush(q->be.h);
	}
	return -EIO;
}

/* Read n bytes; past end of file: zeros for data, corruption for metadata. */
int qc_pread(struct qcow *q, struct qcow_backend *be, void *buf, size_t n, uint64_t off, bool meta)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = be->ops->pread(be->h, (uint8_t *)buf + done, n - done, off + done);
		if (r < 0)
			return (int)r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	if (done < n) {
		if (meta)
			return qc_corrupt(q, "metadata at 0x%llx lies past the end of the file",
					  (unsigned long long)off);
		memset((uint8_t *)buf + done, 0, n - done);
	}
	return 0;
}

int qc_pwrite(struct qcow *q, struct qcow_backend *be, const void *buf, size_t n, uint64_t off)
{
	q->unsynced = true;
	ssize_t r = be->ops->pwrite(be->h, buf, n, off);
	if (r < 0)
		return (int)r;
	if (be->h == q->be.h && off + n > q->file_end) /* data_be may be a copy of be */
		q->file_end = off + n;
	return (size_t)r == n ? 0 : -EIO;
}

/* Write metadata of `kind` to the image file, after the overlap check. */
int qc_meta_pwrite(struct qcow *q, const void *buf, size_t n, uint64_t off, unsigned kind)
{
	if (kind == QC_META_REFBLOCK || kind == QC_META_REFTABLE)
		q->ord_unsynced = true;
	int r = qc_check_write(q, off, n, kind);
	return r < 0 ? r : qc_pwrite(q, &q->be, buf, n, off);
}

/*
 * The same, durable when it returns, without making the rest of the file
 * durable (the backend's pwrite_sync); a backend without one pays a flush.
 */
int qc_meta_pwrite_sync(struct qcow *q, const void *buf, size_t n, uint64_t off, unsigned kind)
{
	int r = qc_check_write(q, off, n, kind);
	if (r < 0)
		return r;
	if (q->be.ops->pwrite_sync) {
		ssize_t w = q->be.ops->pwrite_sync(q->be.h, buf, n, off);
		if (w != -EOPNOTSUPP) {
			if (w < 0) {
				if (w != -EFBIG && w != -ENOSPC) /* the disk failed, not the space */
					q->sync_failed = true; /* close syncs and reports too */
				return (int)w;
			}
			if (off + n > q->file_end)
				q->file_end = off + n;
			return (size_t)w == n ? 0 : -EIO;
		}
	}
	if ((r = qc_pwrite(q, &q->be, buf, n, off)) < 0)
		return r;
	if ((r = q->be.ops->flush(q->be.h)) < 0)
		q->sync_failed = true;
	return r;
}

/* Must everything written so far be durable before the next L2 or L1 write? */
bool qc_need_barrier(const struct qcow *q)
{
	return !q->resv_ok || q->barrier;
}

/*
 * Write entries [*lo, *hi) of an in-memory (host byte order) table to the
 * file at table_offset, overlap-checked as `kind`; clears the range.
 */
static int table_write(struct qcow *q, const uint64_t *table, uint64_t *lo, uint64_t *hi,
		       uint64_t table_offset, unsigned kind, bool durable)
{
	if (*lo >= *hi)
		return 0;
	uint64_t n = (*hi - *lo) * 8, off = table_offset + *lo * 8;
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = *lo; i < *hi; i++)
		be64_put(buf + (i - *lo) * 8, table[i]);
	int r = durable ? qc_meta_pwrite_sync(q, buf, n, off, kind) : qc_meta_pwrite(q, buf, n, off, kind);
	free(buf);
	if (!r)
		*lo = *hi = 0;
	return r;
}

int qc_table_write(struct qcow *q, const uint64_t *table, uint64_t *lo, uint64_t *hi,
		   uint64_t table_offset, unsigned kind)
{
	return table_write(q, table, lo, hi, table_offset, kind, false);
}

int qc_table_write_sync(struct qcow *q, const uint64_t *table, uint64_t *lo, uint64_t *hi,
			uint64_t table_offset, unsigned kind)
{
	return table_write(q, table, lo, hi, table_offset, kind, true);
}

int qc_sync(struct qcow *q)
{
	int r = 0;
	if (!q->unsynced)
		return 0;
	if (q->extend_pending && q->be.ops->truncate &&
	    (r = q->be.ops->truncate(q->be.h, q->file_end)) < 0)
		return r;
	q->extend_pending = false;
	if (q->publishing && !q->ord_unsynced && !q->l2_new_unsynced)
		return 0; /* only data pending: references to it may reach the file first */
	if (q->has_data_file && (r = q->data_be.ops->flush(q->data_be.h)) < 0)
		return r;
	if ((r = q->be.ops->flush(q->be.h)) < 0) {
		q->sync_failed = true; /* close then asks for durability again */
		return r;
	}
	q->unsynced = q->l2_new_unsynced = q->ord_unsynced = q->sync_failed = false;
	return 0;
}

/*
 * Before any L2 slice reaches the file: guest data and refcounts first,
 * unless every entry written since the last sync points into the durable
 * reservation at a cluster that held nothing worth keeping.
 */
static int l2_before_write(struct qcow *q)
{
	return qc_need_barrier(q) ? qc_refblocks_sync(q) : 0;
}

/*
 * Everything written so far becomes durable, in the order
 * data + refcount increments + new L2 tables -> L2 updates and L1 -> deferred
 * frees (see qc_l1_sync for why L2 updates and L1 share one sync).  When no
 * barrier is needed the first sync is skipped: one fdatasync makes it all
 * durable.  Closing (settling) asks for order only: then, without a
 * barrier, nothing is synced at all (unless clusters are to be freed).
 */
int qc_flush_locked(struct qcow *q)
{
	int r;
	if (q->read_only) /* nothing to write: a read error latched earlier is no flush error */
		return 0;
	if (q->broken)
		return -EIO;
	bool order = qc_need_barrier(q);
	if ((r = qc_cache_flush(q, &q->l2_cache)) < 0)
		return r;
	if (q->l1_dirty_lo < q->l1_dirty_hi &&
	    ((q->l2_new_unsynced && (r = qc_refblocks_sync(q)) < 0) || (r = qc_l1_sync(q)) < 0))
		return r;
	if (q->nfrees && !q->publishing && ((r = qc_sync(q)) < 0 || (r = qc_frees_apply(q)) < 0))
		return r;
	if (!order && (q->settling || q->publishing))
		return qc_cache_flush(q, &q->rb_cache); /* decrements only: any order */
	return qc_refblocks_sync(q);
}

/*
 * Make every completed write visible to other readers of the file, crash-
 * safely but without waiting for durability: refcounts (and new L2 tables)
 * are synced before anything that references them reaches the file, as in
 * a flush; guest data is not, so after a power loss (not a process kill) a
 * write that was never fsynced may read back as older contents, as with
 * qemu.  Frees stay deferred to the next flush.
 */
int qcow_publish(struct qcow *q)
{
	qc_mutex_lock(&q->lock);
	q->publishing = true;
	int r = qc_flush_locked(q);
	q->publishing = false;
	qc_mutex_unlock(&q->lock);
	return r;
}

static bool overlaps(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
	return al && bl && a < b + bl && b < a + al;
}

/* No two fixed tables (and snapshot L1 tables) may share a cluster. */
static int check_layout(struct qcow *q)
{
	for (unsigned i = 0; i < q->nfixed; i++) {
		for (unsigned j = i + 1; j < q->nfixed; j++)
			if (overlaps(q->fixed[i].hoff, q->fixed[i].len, q->fixed[j].hoff, q->fixed[j].len))
				goto bad;
		for (unsigned s = 0; s < q->nb_snapshots; s++)
			if (overlaps(q->fixed[i].hoff, q->fixed[i].len, q->snaps[s].l1_offset,
				     (uint64_t)q->snaps[s].l1_size * 8))
				goto bad;
	}
	for (uint64_t i = 0; i < q->reftable_size; i++) {
		uint64_t off = q->reftable[i] & RTE_OFFSET_MASK;
		if (off && qc_meta_overlap(q, off, q->cluster_size, QC_META_REFBLOCK))
			goto bad;
	}
	return 0;
bad:
	qc_log(q, "metadata tables overlap");
	return -EINVAL;
}

static void unload(struct qcow *q)
{
	qc_cache_destroy(&q->l2_cache);
	qc_cache_destroy(&q->rb_cache);
	qc_metaset_free(&q->meta);
	qc_snapshots_free(q);
	free(q->l1);
	free(q->reftable);
	free(q->hdr);
	free(q->data_file_name);
	q->l1 = q->reftable = NULL;
	q->reftable_deferred = false;
	q->reftable_size = 0;
	q->hdr = NULL;
	q->data_file_name = NULL;
	q->zbuf_valid = false;
	q->l1_dirty_lo = q->l1_dirty_hi = 0;
	q->reftable_dirty_lo = q->reftable_dirty_hi = 0;
	q->nfrees = 0;
	q->free_hint = 0;
	qc_release_state_free(q);
}

/* Read and validate everything the image's metadata says. */
static int load(struct qcow *q)
{
	uint64_t fsize = q->opts.file_size;
	int r = 0;
	q->opts.file_size = 0; /* true of the first load only */
	if (!fsize && (r = q->be.ops->getsize(q->be.h, &fsize)) < 0)
		return r;
	q->file_end = q->load_end = fsize;
	if ((r = qc_header_parse(q, fsize)) < 0 || (r = qc_snapshots_load(q, fsize)) < 0 ||
	    (r = qc_reftable_load(q, fsize, !(q->opts.flags & QCOW_RDONLY))) < 0 || (r = qc_l1_load(q, fsize)) < 0 ||
	    (r = check_layout(q)) < 0)
		return r;
	if (q->opts.snapshot && (r = qc_l1_load_snapshot(q, q->opts.snapshot, fsize)) < 0)
		return r;
	size_t l2b = q->opts.l2_cache_bytes ? q->opts.l2_cache_bytes : DEFAULT_L2_CACHE;
	size_t rbb = q->opts.refblock_cache_bytes ? q->opts.refblock_cache_bytes : DEFAULT_RB_CACHE;
	if ((r = qc_cache_init(&q->l2_cache, "L2", QC_META_L2, q->l2_slice_bytes, l2b)) < 0 ||
	    (r = qc_cache_init(&q->rb_cache, "refcount", QC_META_REFBLOCK, q->cluster_size, rbb)) < 0)
		return r;
	q->l2_cache.before_write = l2_before_write;
	return 0;
}

/* Feature bits that decide whether (and how) the image may be written. */
static int check_writable(struct qcow *q, bool want_rw)
{
	if (q->incompat & QC_INCOMPAT_CORRUPT) {
		if (want_rw) {
			qc_log(q, "image is marked corrupt; open it read-only or repair it with "
				  "'qemu-img check -r all'");
			return -EACCES;
		}
		return 0;
	}
	if (!want_rw)
		return 0;
	return 0;
}

static int open_writable(struct qcow *q)
{
	int r;
	q->read_only = false;
	/* Lazy refcounts left stale: rebuild them before the first write. */
	if ((q->incompat & QC_INCOMPAT_DIRTY) &&
	    ((r = qc_repair_refcounts(q)) < 0 || (unload(q), r = load(q)) < 0))
		return r;
	/* Autoclear bits announce structures we do not maintain; a raw
	 * external data file we do maintain (data at guest offsets, zeros
	 * written), and bitmaps flagged IN_USE stay valid (bitmaps.c). */
	uint64_t keep = q->has_data_file ? QC_AUTOCLEAR_DATA_FILE_RAW : 0;
	/* Tables and data are checked before any flag is written; bitmaps
	 * that cannot be kept lose the autoclear bit (in memory, then below
	 * on disk) and are left as they are. */
	if ((q->version >= 3 && (r = qc_bitmaps_register(q)) < 0) ||
	    (r = qc_snap_l2_register(q)) < 0)
		return r;
	/* an external data file holds data at guest offsets: no reservation */
	q->resv_ok = !q->has_data_file;
	int bm = q->version >= 3 ? qc_bitmaps_mark_in_use(q) : 0;
	if (bm < 0)
		return bm;
	if (bm == 1)
		keep |= QC_AUTOCLEAR_BITMAPS;
	uint64_t disk = be64_get(q->hdr + QH_AUTOCLEAR);
	if (q->version >= 3 && (disk & ~keep)) {
		q->autoclear = disk & keep;
		be64_put(q->hdr + QH_AUTOCLEAR, q->autoclear);
		r = qc_header_write(q, QH_AUTOCLEAR, 8);
		if (r < 0 || (r = qc_sync(q)) < 0)
			return r;
	}
	return 0;
}

static void destroy(struct qcow *q)
{
	if (q->backing.ops)
		q->backing.ops->close(q->backing.h);
	if (q->has_data_file)
		q->data_be.ops->close(q->data_be.h);
	unload(q);
	free(q->frees);
	free(q->zbuf);
	free(q->zin);
	free(q->wbuf);
	free(q->path);
	pthread_mutex_destroy(&q->lock.m);
	free(q);
}

int qc_open_depth(struct qcow **out, struct qcow_backend be, const struct qcow_opts *o, int depth)
{
	struct qcow *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock.m, NULL);
	q->be = q->data_be = be;
	if (o)
		q->opts = *o;
	q->opts.path = NULL;
	q->depth = depth;
	q->read_only = true; /* nothing is written before everything is validated */
	bool want_rw = !(q->opts.flags & QCOW_RDONLY);
	int r = -ENOMEM;
	if (want_rw && q->opts.snapshot) {
		qc_log(q, "internal snapshot '%s' opens read-only", q->opts.snapshot);
		r = -EROFS;
		goto fail;
	}
	if (o && o->path && !(q->path = strdup(o->path)))
		goto fail;
	if ((r = load(q)) < 0 || (r = qc_data_file_open(q, want_rw)) < 0 ||
	    (r = check_writable(q, want_rw)) < 0 || (r = qc_backing_open(q)) < 0)
		goto fail;
	if (want_rw && (r = open_writable(q)) < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	q->be.ops = NULL; /* the caller keeps the backend on failure */
	destroy(q);
	return r;
}

int qcow_open(struct qcow **out, struct qcow_backend be, const struct qcow_opts *o)
{
	return qc_open_depth(out, be, o, 0);
}

int qcow_create(struct qcow **out, struct qcow_backend be, const struct qcow_create_opts *c,
		const struct qcow_opts *o)
{
	struct qcow_opts opts = o ? *o : (struct qcow_opts){0};
	struct qcow *q;
	opts.flags &= ~QCOW_RDONLY;
	int r = qc_header_create(&be, c);
	if (r < 0 || (r = qcow_open(&q, be, &opts)) < 0)
		return r;
	qc_mutex_lock(&q->lock);
	r = qc_resize_locked(q, c->size, false); /* a new overlay shows its backing file */
	qc_mutex_unlock(&q->lock);
	if (r < 0 || (r = qcow_flush(q)) < 0) {
		q->be.ops = NULL;
		destroy(q);
		return r;
	}
	*out = q;
	return 0;
}

int qcow_close(struct qcow *q)
{
	if (!q)
		return 0;
	qc_mutex_lock(&q->lock);
	/* closing asks for order, not durability (a raw file's close), unless
	 * a sync failed: then it tries again and reports */
	q->settling = !q->sync_failed;
	int r = qc_flush_locked(q);
	if (!r && !q->read_only)
		r = qc_resv_release(q);
	q->settling = false;
	qc_mutex_unlock(&q->lock);
	if (q->be.ops)
		q->be.ops->close(q->be.h);
	destroy(q);
	return r;
}

static uint64_t clamp(struct qcow *q, uint64_t voff, uint64_t n)
{
	if (voff >= q->size)
		return 0;
	return n > q->size - voff ? q->size - voff : n;
}

ssize_t qcow_read(struct qcow *q, void *buf, size_t n, uint64_t voff)
{
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	qc_mutex_lock(&q->lock);
	uint64_t len = clamp(q, voff, n);
	int r = q->unloaded ? -EIO : len ? qc_read_locked(q, buf, len, voff) : 0;
	qc_mutex_unlock(&q->lock);
	return r < 0 ? r : (ssize_t)len;
}

/* Common checks for every modifying call; returns 0 or -errno. */
static int may_write(struct qcow *q, uint64_t voff, uint64_t n)
{
	if (q->broken)
		return -EIO;
	if (q->read_only)
		return -EROFS;
	if (voff > q->size || n > q->size - voff)
		return -ENOSPC;
	qc_op_begin(q);
	return 0;
}

static int after_write(struct qcow *q, int r)
{
	if (r == 0 && q->nfrees > MAX_PENDING_FREES)
		r = qc_flush_locked(q);
	return r;
}

ssize_t qcow_write(struct qcow *q, const void *buf, size_t n, uint64_t voff)
{
	if (n > SSIZE_MAX)
		return -EINVAL;
	qc_mutex_lock(&q->lock);
	int r = may_write(q, voff, n);
	if (!r && n)
		r = after_write(q, qc_write_locked(q, buf, n, voff));
	qc_mutex_unlock(&q->lock);
	return r < 0 ? r : (ssize_t)n;
}

int qcow_zero(struct qcow *q, uint64_t voff, uint64_t n, unsigned flags)
{
	qc_mutex_lock(&q->lock);
	int r = may_write(q, voff, n);
	if (!r && n)
		r = after_write(q, qc_zero_locked(q, voff, n, flags));
	qc_mutex_unlock(&q->lock);
	return r;
}

int qcow_flush(struct qcow *q)
{
	qc_mutex_lock(&q->lock);
	int r = qc_flush_locked(q);
	qc_mutex_unlock(&q->lock);
	return r;
}

int qcow_checkpoint(struct qcow *q)
{
	qc_mutex_lock(&q->lock);
	int r = qc_flush_locked(q);
	if (!r && !q->read_only)
		r = qc_resv_release(q);
	qc_mutex_unlock(&q->lock);
	return r;
}

int qcow_resize(struct qcow *q, uint64_t size)
{
	qc_mutex_lock(&q->lock);
	int r = q->broken ? -EIO : qc_resize_locked(q, size, true);
	qc_mutex_unlock(&q->lock);
	return r;
}

uint64_t qcow_size(struct qcow *q)
{
	qc_mutex_lock(&q->lock);
	uint64_t s = q->size;
	qc_mutex_unlock(&q->lock);
	return s;
}

static void run_kind(struct qcow *q, const struct qc_run *run, enum qcow_extent_kind *k, bool *alloc)
{
	switch (run->type) {
	case SC_NORMAL:
	case SC_COMPRESSED: *k = QCOW_EXT_DATA; *alloc = true; return;
	case SC_ZERO_ALLOC: *k = QCOW_EXT_ZERO; *alloc = true; return;
	case SC_UNALLOC_ALLOC: *k = q->backing.ops ? QCOW_EXT_DATA : QCOW_EXT_ZERO; *alloc = true; return;
	case SC_UNALLOC_PLAIN: *k = q->backing.ops ? QCOW_EXT_DATA : QCOW_EXT_ZERO; *alloc = false; return;
	default: *k = QCOW_EXT_ZERO; *alloc = false; return;
	}
}

int qcow_map(struct qcow *q, uint64_t voff, uint64_t n, struct qcow_extent *e)
{
	int r = 0;
	memset(e, 0, sizeof(*e));
	qc_mutex_lock(&q->lock);
	n = clamp(q, voff, n);
	if (q->unloaded)
		r = -EIO;
	while (n && !r) {
		struct qc_run run;
		enum qcow_extent_kind k;
		bool alloc;
		if ((r = qc_map_run(q, voff, n, &run, false)) < 0)
			break;
		run_kind(q, &run, &k, &alloc);
		if (e->len && (k != e->kind || alloc != e->allocated))
			break;
		e->kind = k;
		e->allocated = alloc;
		e->len += run.len;
		voff += run.len;
		n -= run.len;
	}
	qc_mutex_unlock(&q->lock);
	return r;
}

int qcow_info(struct qcow *q, struct qcow_info *i)
{
	memset(i, 0, sizeof(*i));
	qc_mutex_lock(&q->lock);
	i->size = q->size;
	i->version = q->version;
	i->cluster_bits = q->cluster_bits;
	i->refcount_bits = 1u << q->refcount_order;
	i->extended_l2 = q->extl2;
	i->read_only = q->read_only;
	i->corrupt = q->broken || (q->incompat & QC_INCOMPAT_CORRUPT);
	i->dirty = q->incompat & QC_INCOMPAT_DIRTY;
	i->compression_type = q->compression_type;
	i->nb_snapshots = q->nb_snapshots;
	snprintf(i->backing_file, sizeof(i->backing_file), "%s", q->backing_name);
	snprintf(i->backing_fmt, sizeof(i->backing_fmt), "%s", q->backing_fmt);
	i->reserved_offset = q->resv_next << q->cluster_bits;
	i->reserved_bytes = (q->resv_end - q->resv_next) << q->cluster_bits;
	qc_mutex_unlock(&q->lock);
	return 0;
}

/*
 * A writable handle is the image's only writer, so the file it reloads
 * holds nothing but its own changes: what release.c learnt stays true and
 * is kept across the reload (the end of the file as first loaded, the
 * clusters allocated since, the L2 slices already checked).  Forgetting it
 * would let an unchecked slice's entry naming a cluster past the first end
 * of the file, which this handle has since allocated for other data, pass
 * as a valid reference (a fuzzer input: a discard through it then freed
 * the other data's cluster).
 */
struct kept_checks {
	uint64_t load_end, seen_bits;
	uint8_t *reused, *seen;
};

static void checks_take(struct qcow *q, struct kept_checks *k)
{
	*k = (struct kept_checks){q->load_end, q->l2_seen_bits, q->reused, q->l2_seen};
	q->reused = q->l2_seen = NULL;
	q->l2_seen_bits = 0;
}

static void checks_restore(struct qcow *q, struct kept_checks *k)
{
	free(q->reused);
	free(q->l2_seen);
	q->reused = k->reused;
	q->l2_seen = k->seen;
	q->l2_seen_bits = k->seen_bits;
	if (k->load_end < q->load_end)
		q->load_end = k->load_end;
	k->reused = k->seen = NULL;
}

int qcow_invalidate(struct qcow *q)
{
	qc_mutex_lock(&q->lock);
	int r = qc_flush_locked(q);
	if (r == 0 && !q->read_only)
		r = qc_resv_release(q); /* the reloaded refcounts must show no reservation */
	if (r == 0) {
		bool ro = q->read_only;
		struct kept_checks k = {0};
		if (!ro)
			checks_take(q, &k);
		unload(q);
		q->read_only = true;
		if ((r = load(q)) < 0) { /* the tables may be half loaded: no more I/O */
			q->broken = q->unloaded = true;
		} else {
			q->read_only = ro;
			q->unloaded = false;
			if (!ro)
				checks_restore(q, &k);
			if (!ro && ((r = qc_bitmaps_register(q)) < 0 || (r = qc_snap_l2_register(q)) < 0))
				q->broken = q->unloaded = true;
		}
		free(k.reused);
		free(k.seen);
	}
	qc_mutex_unlock(&q->lock);
	return r;
}

static ssize_t as_pread(void *h, void *buf, size_t n, uint64_t off)
{
	return qcow_read(h, buf, n, off);
}
static ssize_t as_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	(void)h, (void)buf, (void)n, (void)off;
	return -EROFS;
}
static int as_flush(void *h)
{
	return qcow_flush(h);
}
static int as_getsize(void *h, uint64_t *size)
{
	*size = qcow_size(h);
	return 0;
}
static int as_truncate(void *h, uint64_t size)
{
	(void)h, (void)size;
	return -EROFS;
}
static void as_close(void *h)
{
	qcow_close(h);
}

static const struct qcow_backend_ops image_ops = {
	.pread = as_pread,
	.pwrite = as_pwrite,
	.flush = as_flush,
	.getsize = as_getsize,
	.truncate = as_truncate,
	.punch = NULL,
	.close = as_close,
};

struct qcow_backend qcow_as_backend(struct qcow *q)
{
	return (struct qcow_backend){&image_ops, q};
}
