/*
 * qcow_int.h - the library's internal state and cross-file interfaces.
 *
 * Locking: every public entry point takes q->lock; everything declared here
 * runs with it held.  Offsets named voff are guest (virtual) offsets, hoff
 * host offsets in the image file; an index is never called *off.
 */
#ifndef QC_INT_H
#define QC_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "qcow.h"

#define QC_HIDDEN __attribute__((visibility("hidden")))

/* A mutex that is not taken while the process has one thread: every
 * operation of a single-threaded program (dd, mkfs, cp: most users) would
 * otherwise pay two atomic instructions per lock for nothing.  glibc keeps
 * __libc_single_threaded true until a thread is created, and only this
 * thread can create one, never while it is inside the library; `held`
 * records what the lock call did, so the unlock matches it even if the flag
 * turns true again meanwhile (other threads exited).  musl has no such flag:
 * always locked.  A thread made by a raw clone(CLONE_VM) leaves the flag
 * true; glibc's own malloc relies on it the same way, and the shim, which
 * serializes its calls into the library under its own locks, notices such
 * a clone (shim_raw_threads). */
#if defined(__GLIBC__) && __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define QC_SINGLE_THREADED() (__libc_single_threaded != 0)
#else
#define QC_SINGLE_THREADED() false
#endif
struct qc_mutex {
	pthread_mutex_t m;
	bool held; /* read and written by the holder only */
};
static inline void qc_mutex_lock(struct qc_mutex *mu)
{
	if (QC_SINGLE_THREADED())
		return;
	pthread_mutex_lock(&mu->m);
	mu->held = true;
}
static inline void qc_mutex_unlock(struct qc_mutex *mu)
{
	if (!mu->held)
		return;
	mu->held = false;
	pthread_mutex_unlock(&mu->m);
}
#define QC_MAX_CHAIN 16
#define QC_L2_SLICE_BYTES 4096u

/* ---- cache.c: write-back cache of metadata blocks keyed by host offset ---- */
struct qc_cent {
	uint64_t hoff;
	uint8_t *buf;
	int pins;
	int next;       /* hash chain */
	int older, newer; /* LRU list */
	bool valid, dirty;
	bool ref; /* used since it last reached the old end of the LRU list */
};

#define QC_CENT_CHUNK 64u
struct qc_cache {
	const char *name;
	unsigned kind;   /* QC_META_* of what it holds, for overlap checks */
	size_t bsize;    /* bytes per entry */
	unsigned n;      /* entries */
	unsigned top;    /* entries [0, top) have been used and are in the LRU list */
	uint64_t last_ra; /* the table of the last miss (qc_cache_get_ra) */
	bool last_ra_valid;
	struct qc_cent **chunks; /* QC_CENT_CHUNK entries each, allocated as reached */
	int *buckets;
	unsigned nbuckets;
	int newest, oldest;
	unsigned ndirty;
	/* Called before any dirty entry is written back (ordering). */
	int (*before_write)(struct qcow *q);
};

/* ---- validate.c: metadata map used by the overlap checks ---- */
enum {
	QC_META_NONE = 0,
	QC_META_HEADER,
	QC_META_L1,
	QC_META_L2,
	QC_META_REFTABLE,
	QC_META_REFBLOCK,
	QC_META_SNAPTABLE,
	QC_META_SNAP_L1,
	QC_META_BITMAP, /* bitmap directory, tables and data (kept bitmaps only) */
	QC_META_SNAP_L2, /* L2 tables of internal snapshots (writable handles) */
};

struct qc_region {
	uint64_t hoff, len;
	unsigned kind;
};

struct qc_metaset { /* open addressing: cluster index -> kind */
	uint64_t *keys; /* index + 1; 0 empty, UINT64_MAX tombstone */
	uint8_t *kinds;
	size_t cap, used, tomb;
};

struct qc_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t disk_size;
	char *id, *name;
};

struct qc_free {
	uint64_t cluster, n;
};

struct qcow {
	struct qc_mutex lock;
	struct qcow_backend be;      /* the image file */
	struct qcow_backend data_be; /* guest data: == be unless external */
	bool has_data_file;
	struct qcow_backend backing; /* .ops NULL: none */
	uint64_t backing_size;
	struct qcow_opts opts;
	char *path;

	/* header */
	uint8_t *hdr; /* cluster 0, as on disk: bytes [0, hdr_read) read so far */
	uint64_t hdr_read, hdr_end; /* hdr_end: what cluster 0 has (the file may end first) */
	unsigned version, cluster_bits, refcount_order, header_length, compression_type;
	uint64_t cluster_size, size;
	uint64_t incompat, compat, autoclear;
	char backing_name[QC_MAX_BACKING_NAME + 1];
	char backing_fmt[32];
	char *data_file_name;
	uint32_t bm_nb; /* bitmaps extension: number of bitmaps, directory */
	uint64_t bm_dir_bytes, bm_dir_offset;

	/* derived geometry */
	bool extl2;
	unsigned l2_entry_bytes, l2_bits; /* l2 entries per table = 1 << l2_bits */
	unsigned sc_bits;                 /* subcluster size bits */
	unsigned rb_bits;                 /* refcounts per refblock = 1 << rb_bits */
	uint64_t refcount_max;
	size_t l2_slice_bytes;

	/* L1, host byte order */
	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;
	uint64_t l1_dirty_lo, l1_dirty_hi; /* [lo, hi) */

	/* refcount table, host byte order */
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint64_t reftable_size; /* entries */
	bool reftable_deferred; /* read-only: entries not read yet (refcount.c) */
	uint64_t *reftable;
	uint64_t reftable_dirty_lo, reftable_dirty_hi; /* [lo, hi): not yet written */

	struct qc_snapshot *snaps;
	unsigned nb_snapshots;
	uint64_t snapshots_offset, snapshots_bytes;

	struct qc_cache l2_cache, rb_cache;
	struct qc_metaset meta;
	struct qc_region fixed[8];
	unsigned nfixed;

	struct qc_free *frees; /* deferred until the references are gone on disk */
	size_t nfrees, frees_cap;
	uint64_t free_hint; /* no free cluster below this index */
	uint64_t file_end;  /* size of the image file as far as we know */
	bool extend_pending; /* file_end not yet applied to the file (qc_sync does) */
	bool l2_new_unsynced; /* a new L2 table's first contents are not yet durable */
	bool ord_unsynced;    /* refcount blocks or table written since the last sync */
	bool publishing;      /* inside qcow_publish: sync only what ordering needs */
	bool settling;        /* inside qcow_close: ordered, but no durability asked */
	/*
	 * Durable reservation (alloc.c): clusters [resv_next, resv_end) have
	 * refcount 1 on disk, no reference, and read as zeros after a crash
	 * (they lay past the end of the file when reserved), so an L2 entry
	 * may point at one without a sync before it.  `barrier`: some
	 * reference made since the last full sync does depend on one (an
	 * allocation outside the reservation, a copy-on-write of old contents,
	 * a copied L2 table).  resv_ok: this image uses reservations.
	 */
	uint64_t resv_next, resv_end, resv_grant;
	bool resv_ok, barrier, alloc_fresh;
	bool sync_failed; /* the last flush of the file failed */

	bool unloaded; /* a failed qcow_invalidate left no metadata: I/O is -EIO */

	/* What a release may not touch (release.c): clusters the current
	 * operation allocated, and, for compressed descriptors (which only the
	 * loaded file can hold), the end of the file when it was loaded and the
	 * clusters below it allocated since. */
	struct qc_free *op_allocs;
	size_t nop_allocs, op_allocs_cap;
	uint64_t op_lo, op_hi; /* [lo, hi): bounds of op_allocs */
	uint64_t load_end;
	uint8_t *reused; /* bitmap over the clusters below load_end; NULL: none */
	/* L2 slices (L1 index x slice) whose entries were checked against the
	 * refcounts at their first use (release.c, qc_check_l2_slice) */
	uint8_t *l2_seen;
	uint64_t l2_seen_bits;
	/* the clusters of the snapshots' L2 tables, sorted (release.c) */
	uint64_t *snap_l2;
	size_t nsnap_l2;
	/* the clusters below load_end that plain (uncompressed) L2 entries
	 * name, active and snapshot, read from the file at the first release
	 * of a compressed cluster (release.c); NULL: not read yet */
	uint8_t *plain;

	uint8_t *wbuf; /* one cluster: old contents merged with a partial write */

	/* last decompressed cluster */
	uint8_t *zbuf, *zin;
	uint64_t zbuf_l2e;
	size_t zbuf_used; /* compressed bytes the decoder read for it */
	bool zbuf_valid;
	bool zcodec_logged; /* "no decoder in this build" said once */

	bool read_only, broken, unsynced, in_flush;
	int depth; /* position in a backing chain */
};

/* cache.c */
QC_HIDDEN int qc_cache_init(struct qc_cache *c, const char *name, unsigned kind, size_t bsize,
			    size_t budget);
QC_HIDDEN void qc_cache_destroy(struct qc_cache *c);
QC_HIDDEN int qc_cache_prefetch(struct qcow *q, struct qc_cache *c, uint64_t hoff, unsigned count);
QC_HIDDEN int qc_cache_get_ra(struct qcow *q, struct qc_cache *c, uint64_t hoff, bool load,
			      struct qc_cent **out, uint64_t ra, unsigned ra_count);
QC_HIDDEN int qc_cache_get(struct qcow *q, struct qc_cache *c, uint64_t hoff, bool load,
			   struct qc_cent **e);
QC_HIDDEN void qc_cache_put(struct qc_cent *e);
QC_HIDDEN void qc_cache_dirty(struct qc_cache *c, struct qc_cent *e);
QC_HIDDEN int qc_cache_flush(struct qcow *q, struct qc_cache *c);
QC_HIDDEN int qc_cache_flush_sync(struct qcow *q, struct qc_cache *c);
QC_HIDDEN void qc_cache_drop_range(struct qc_cache *c, uint64_t hoff, uint64_t len);
QC_HIDDEN void qc_cache_clear(struct qc_cache *c);

/* validate.c */
QC_HIDDEN bool qc_add_overflow(uint64_t a, uint64_t b, uint64_t *r);
QC_HIDDEN bool qc_mul_overflow(uint64_t a, uint64_t b, uint64_t *r);
QC_HIDDEN int qc_metaset_add(struct qc_metaset *m, uint64_t cluster, unsigned kind);
QC_HIDDEN unsigned qc_metaset_get(const struct qc_metaset *m, uint64_t cluster);
QC_HIDDEN void qc_metaset_del(struct qc_metaset *m, uint64_t cluster);
QC_HIDDEN void qc_metaset_free(struct qc_metaset *m);
QC_HIDDEN unsigned qc_meta_overlap(struct qcow *q, uint64_t hoff, uint64_t len, unsigned kind);
QC_HIDDEN const char *qc_kind_name(unsigned kind);
QC_HIDDEN int qc_check_write(struct qcow *q, uint64_t hoff, uint64_t len, unsigned kind);
QC_HIDDEN void qc_fixed_regions(struct qcow *q);
QC_HIDDEN int qc_validate_table(struct qcow *q, uint64_t off, uint64_t entries, uint64_t esize,
				uint64_t max_bytes, uint64_t file_size, const char *what);

/* image.c */
QC_HIDDEN void qc_log(struct qcow *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
QC_HIDDEN int qc_corrupt(struct qcow *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
QC_HIDDEN int qc_pread(struct qcow *q, struct qcow_backend *be, void *buf, size_t n, uint64_t off,
		       bool meta);
QC_HIDDEN int qc_pwrite(struct qcow *q, struct qcow_backend *be, const void *buf, size_t n,
			uint64_t off);
QC_HIDDEN int qc_sync(struct qcow *q);
QC_HIDDEN int qc_meta_pwrite(struct qcow *q, const void *buf, size_t n, uint64_t off,
			     unsigned kind);
QC_HIDDEN int qc_table_write(struct qcow *q, const uint64_t *table, uint64_t *lo, uint64_t *hi,
			     uint64_t table_offset, unsigned kind);
QC_HIDDEN int qc_table_write_sync(struct qcow *q, const uint64_t *table, uint64_t *lo,
				  uint64_t *hi, uint64_t table_offset, unsigned kind);
QC_HIDDEN int qc_flush_locked(struct qcow *q);
QC_HIDDEN int qc_meta_pwrite_sync(struct qcow *q, const void *buf, size_t n, uint64_t off,
				  unsigned kind);
QC_HIDDEN bool qc_need_barrier(const struct qcow *q);

/* header.c */
QC_HIDDEN int qc_header_parse(struct qcow *q, uint64_t file_size);
QC_HIDDEN int qc_header_write(struct qcow *q, unsigned field, unsigned len);
QC_HIDDEN int qc_header_create(struct qcow_backend *be, const struct qcow_create_opts *c);
QC_HIDDEN int qc_snapshots_load(struct qcow *q, uint64_t file_size);
QC_HIDDEN void qc_snapshots_free(struct qcow *q);

/* refcount.c */
QC_HIDDEN uint64_t qc_rb_get(const uint8_t *b, uint64_t i, unsigned order);
QC_HIDDEN void qc_rb_set(uint8_t *b, uint64_t i, unsigned order, uint64_t v);
QC_HIDDEN int qc_refcount_get(struct qcow *q, uint64_t cluster, uint64_t *rc);
QC_HIDDEN int qc_refcount_set(struct qcow *q, uint64_t cluster, uint64_t rc);
QC_HIDDEN int qc_reftable_load(struct qcow *q, uint64_t file_size, bool entries);
QC_HIDDEN int qc_refblocks_sync(struct qcow *q);
QC_HIDDEN void qc_reftable_mark(struct qcow *q, uint64_t range);

/* alloc.c */
QC_HIDDEN int qc_alloc(struct qcow *q, uint64_t want, bool exact, uint64_t *hoff, uint64_t *got);
QC_HIDDEN int qc_alloc_undo(struct qcow *q, uint64_t hoff, uint64_t n);
QC_HIDDEN int qc_free_later(struct qcow *q, uint64_t hoff, uint64_t len);
QC_HIDDEN int qc_frees_apply(struct qcow *q);
QC_HIDDEN int qc_resv_release(struct qcow *q);

/* l2.c */
QC_HIDDEN int qc_l1_load(struct qcow *q, uint64_t file_size);
QC_HIDDEN int qc_l1_load_snapshot(struct qcow *q, const char *name, uint64_t file_size);
QC_HIDDEN int qc_l1_sync(struct qcow *q);
QC_HIDDEN int qc_l1_grow(struct qcow *q, uint64_t entries);
QC_HIDDEN int qc_l2_slice(struct qcow *q, uint64_t cluster, bool alloc, struct qc_cent **e,
			  unsigned *idx);
QC_HIDDEN void qc_l2_entry(struct qcow *q, const struct qc_cent *e, unsigned idx, uint64_t *l2e,
			   uint64_t *bitmap);
QC_HIDDEN void qc_l2_set(struct qcow *q, struct qc_cent *e, unsigned idx, uint64_t l2e,
			 uint64_t bitmap);
QC_HIDDEN int qc_l2_unlink(struct qcow *q, uint64_t l1_index);
QC_HIDDEN int qc_l2_release(struct qcow *q, uint64_t l2e);

/* map.c */
struct qc_run {
	enum qc_sc_type type;
	uint64_t len;
	uint64_t hoff; /* SC_NORMAL: host offset of the run's first byte */
	uint64_t l2e;  /* SC_COMPRESSED: the entry */
};
QC_HIDDEN int qc_map_run(struct qcow *q, uint64_t voff, uint64_t max, struct qc_run *r,
			  bool readable);
QC_HIDDEN bool qc_l2e_valid(struct qcow *q, uint64_t l2e, uint64_t bm);
QC_HIDDEN int qc_read_locked(struct qcow *q, uint8_t *buf, uint64_t n, uint64_t voff);
QC_HIDDEN int qc_read_compressed(struct qcow *q, uint64_t l2e);

/* rw.c */
QC_HIDDEN int qc_write_locked(struct qcow *q, const uint8_t *buf, uint64_t n, uint64_t voff);
QC_HIDDEN int qc_zero_locked(struct qcow *q, uint64_t voff, uint64_t n, unsigned flags);

/* compress.c */
/* *used: the input bytes it took to fill the cluster (release.c checks it) */
QC_HIDDEN int qc_decompress(unsigned type, const void *in, size_t inlen, void *out, size_t outlen,
			    size_t *used);
/* inflate.c: raw deflate without zlib (QCOW_NO_CODECS builds); 0 = out filled */
QC_HIDDEN int qc_inflate_raw(const void *in, size_t inlen, void *out, size_t outlen);
QC_HIDDEN int qc_inflate_raw_used(const void *in, size_t inlen, void *out, size_t outlen,
				  size_t *used);

/* bitmaps.c */
QC_HIDDEN int qc_bitmaps_count(struct qcow *q, int (*count)(void *, uint64_t, uint64_t),
			       void *arg);
QC_HIDDEN int qc_bitmaps_mark_in_use(struct qcow *q);

/* release.c: never make a damaged image worse */
QC_HIDDEN void qc_op_begin(struct qcow *q);
QC_HIDDEN int qc_note_alloc(struct qcow *q, uint64_t cluster);
QC_HIDDEN void qc_release_state_free(struct qcow *q);
QC_HIDDEN int qc_check_compressed(struct qcow *q, uint64_t l2e);
QC_HIDDEN int qc_check_compressed_release(struct qcow *q, uint64_t l2e);
QC_HIDDEN int qc_check_release(struct qcow *q, uint64_t hoff, uint64_t len);
QC_HIDDEN int qc_check_l2e_release(struct qcow *q, uint64_t l2e);
QC_HIDDEN int qc_check_l2_slice(struct qcow *q, uint64_t l1_index, uint64_t slice,
				const struct qc_cent *e);
QC_HIDDEN int qc_l2_seen_table(struct qcow *q, uint64_t l1_index);
QC_HIDDEN int qc_snap_l2_register(struct qcow *q);
QC_HIDDEN int qc_snap_l2_keep(struct qcow *q, uint64_t hoff);
QC_HIDDEN int qc_frees_validate(struct qcow *q);
QC_HIDDEN int qc_bitmaps_register(struct qcow *q);

/* repair.c */
QC_HIDDEN int qc_repair_refcounts(struct qcow *q);

/* resize.c */
/* hide_backing: the grown area reads as zeros even where a backing file has data */
QC_HIDDEN int qc_resize_locked(struct qcow *q, uint64_t size, bool hide_backing);

/* backing.c */
QC_HIDDEN int qc_backing_open(struct qcow *q);
QC_HIDDEN int qc_backing_read(struct qcow *q, uint8_t *buf, uint64_t n, uint64_t voff);
QC_HIDDEN int qc_data_file_open(struct qcow *q, bool writable);

/* Grow the dirty range [*lo, *hi) of an in-memory table to cover entry i. */
static inline void qc_range_mark(uint64_t *lo, uint64_t *hi, uint64_t i)
{
	if (*lo >= *hi) {
		*lo = i;
		*hi = i + 1;
		return;
	}
	if (i < *lo)
		*lo = i;
	if (i + 1 > *hi)
		*hi = i + 1;
}

/* Does a standard L2 entry own a host cluster (data or preallocated zeros)? */
static inline bool qc_l2e_owns(const struct qcow *q, uint64_t l2e)
{
	if (l2e & L2E_COMPRESSED)
		return false;
	return (l2e & L2E_OFFSET_MASK) || (q->has_data_file && (l2e & QC_COPIED));
}

static inline uint64_t qc_cluster_of(const struct qcow *q, uint64_t hoff)
{
	return hoff >> q->cluster_bits;
}

#endif
