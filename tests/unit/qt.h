/*
 * qt.h - shared fixtures for the qcow/ unit tests (linked into every
 * tests/unit/test_*.c binary).
 *
 *   qt_util.c    PRNG, big-endian helpers, handcrafted images, mem images
 *   qt_fault.c   fault-injecting backend wrapper (fail the Nth op)
 *   qt_crash.c   crash backend: writes since the last flush are volatile
 *   qt_check.c   independent consistency walk: recompute refcounts from
 *                L1/L2 (+ snapshots) and compare, check COPIED flags
 *   qt_mirror.c  random operations mirrored into a flat buffer
 *
 * Everything here uses only the public qcow.h API plus the on-disk format.
 */
#ifndef QT_H
#define QT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow.h"

/* ---- qt_util.c -------------------------------------------------------- */
static inline uint64_t qt_rng(uint64_t *s)
{ /* splitmix64: good enough, deterministic per seed */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static inline uint64_t qt_below(uint64_t *s, uint64_t n) { return n ? qt_rng(s) % n : 0; }

/* How many times a randomized test repeats (seeds, operations): `quick` in
 * make test, `full` when QCS_LONG=1 (make stress runs the unit binaries so).
 * Only repetition counts differ between the two, never which kinds of
 * image, geometry or check run; the first `quick` seeds are a prefix of
 * the `full` ones, so a failure in make test reproduces under make stress. */
static inline unsigned qt_reps(unsigned quick, unsigned full)
{
	const char *e = getenv("QCS_LONG");
	return e && *e && strcmp(e, "0") != 0 ? full : quick;
}

static inline uint16_t qt_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t qt_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t qt_be64(const uint8_t *p) { return (uint64_t)qt_be32(p) << 32 | qt_be32(p + 4); }
static inline void qt_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void qt_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void qt_put64(uint8_t *p, uint64_t v) { qt_put32(p, v >> 32); qt_put32(p + 4, (uint32_t)v); }

/* Header field offsets. */
enum {
	QH_MAGIC = 0, QH_VERSION = 4, QH_BACKING_OFF = 8, QH_BACKING_LEN = 16,
	QH_CLUSTER_BITS = 20, QH_SIZE = 24, QH_CRYPT = 32, QH_L1_SIZE = 36,
	QH_L1_OFF = 40, QH_RT_OFF = 48, QH_RT_CLUSTERS = 56, QH_NB_SNAP = 60,
	QH_SNAP_OFF = 64, QH_INCOMPAT = 72, QH_COMPAT = 80, QH_AUTOCLEAR = 88,
	QH_REFCOUNT_ORDER = 96, QH_HEADER_LEN = 100, QH_COMPRESSION = 104,
};

/*
 * A handcrafted, minimal, valid image (built without the library):
 *   cluster 0 header (+ extensions), 1 refcount table, 2 refblock, 3 L1,
 *   then `extra_clusters` zeroed clusters (refcount 0 unless data_clusters).
 * With data_clusters > 0, L1[0] points to an L2 at cluster 4 and guest
 * clusters 0..data_clusters-1 are mapped to host clusters 5.. filled with
 * the byte (0x40 + guest cluster index).
 */
struct qt_img_spec {
	unsigned version;       /* 2 or 3 */
	unsigned cluster_bits;  /* 9..21 */
	unsigned refcount_order;/* v3 only */
	uint64_t size;          /* virtual size */
	unsigned data_clusters;
	unsigned header_length; /* v3: 104 or 112 (0 = 104) */
};
uint8_t *qt_build_image(const struct qt_img_spec *s, size_t *len);
/* Append a header extension (type, data) after the existing ones; returns 0. */
int qt_add_extension(uint8_t *img, size_t len, uint32_t type, const void *data, uint32_t n);
/* Find extension `type`; returns pointer to its data and *n, or NULL. */
const uint8_t *qt_find_extension(const uint8_t *img, size_t len, uint32_t type, uint32_t *n);

/* Memory-backed image helpers.  The backend copy stays valid while q is open. */
struct qcow *qt_create_mem(const struct qcow_create_opts *c, struct qcow_backend *be_out);
struct qcow *qt_create_mem_opts(const struct qcow_create_opts *c, const struct qcow_opts *o,
				struct qcow_backend *be_out);
struct qcow *qt_open_mem(const void *data, size_t len, unsigned flags, struct qcow_backend *be_out,
			 int *err);
/* A malloc'd copy of the backend's current bytes. */
uint8_t *qt_mem_copy(struct qcow_backend be, size_t *len);
void qt_fill_pattern(uint8_t *buf, size_t n, uint64_t seed);
/* What qemu leaves when it dies with lazy refcounts (a v3 image made with
 * them): the dirty bit set and about a third of the file's clusters with
 * a stored refcount of 0 (allocated since the refcounts were last
 * written).  An open for writing must rebuild them (qcow/repair.c). */
void qt_make_stale(uint8_t *img, size_t len, uint64_t seed);
/* zlib raw deflate (wbits < 0), as qemu writes compressed clusters: the
 * compressed length, or 0 when zlib fails or cap is too small. */
size_t qt_deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level, int wbits,
		      int strategy);

/* ---- qt_fault.c ------------------------------------------------------- */
enum qt_op { QT_PREAD, QT_PWRITE, QT_FLUSH, QT_GETSIZE, QT_TRUNCATE, QT_PUNCH, QT_NOPS };
struct qt_fault {
	struct qcow_backend inner;
	unsigned long count[QT_NOPS];    /* calls so far */
	unsigned long fail_at[QT_NOPS];  /* 1-based call number that fails; 0 never */
	int fail_errno[QT_NOPS];         /* default EIO */
	bool sticky;                     /* keep failing after the first failure */
	bool close_inner;                /* close() also closes inner */
	unsigned long fired;             /* failures injected */
	bool no_punch;                   /* present ops->punch as NULL */
	uint64_t failed_off;             /* offset of the last failed pwrite */
};
struct qcow_backend qt_fault_backend(struct qt_fault *f);

/* ---- qt_crash.c ------------------------------------------------------- */
struct qt_crash;
/* A crash backend whose durable and current contents start as data[0..len). */
struct qt_crash *qt_crash_new(const void *data, size_t len);
struct qcow_backend qt_crash_backend(struct qt_crash *c);
/* Simulate power loss: durable bytes + a random, in-order subset of the
 * writes/truncates/punches since the last flush, writes torn at 512-byte
 * sector granularity.  Afterwards every op on the backend fails with -EIO.
 * Returns a malloc'd image. */
uint8_t *qt_crash_now(struct qt_crash *c, uint64_t seed, size_t *len);
unsigned long qt_crash_pending(struct qt_crash *c);
/* Counts mutating calls (pwrite, flush, truncate, punch) so far. */
unsigned long qt_crash_calls(struct qt_crash *c);
/* Power cut just before mutating call number n (1-based) reaches the
 * backend: the image at that instant is kept (see qt_crash_now) and every
 * later call fails with -EIO.  qt_crash_result() returns it (malloc'd) or
 * NULL if the cut never happened. */
void qt_crash_arm(struct qt_crash *c, unsigned long n, uint64_t seed);
uint8_t *qt_crash_result(struct qt_crash *c, size_t *len);
/* Frees the crash backend (call after the image using it was closed). */
void qt_crash_free(struct qt_crash *c);

/* ---- qt_check.c ------------------------------------------------------- */
struct qt_check {
	uint64_t errors;        /* corruptions (qemu-img check exit 2) */
	uint64_t leaks;         /* leaked clusters (exit 3) */
	uint64_t referenced;    /* clusters referenced by metadata */
	uint64_t reserved;      /* refcount 1, no reference, in the open handle's reserve */
	bool dirty, corrupt;
	char msg[600];          /* first few problems */
};
/* Walk an image's bytes: 0 when it could be walked (see r), -1 when the
 * header itself is unusable (r->msg says why). */
int qt_check_image(const uint8_t *img, size_t len, struct qt_check *r);
/* The same for the file of an open handle: clusters of its reserve
 * (qcow_info's reserved_offset/bytes) with refcount exactly 1 and no
 * reference are counted in r->reserved, not as leaks. */
int qt_check_image_resv(const uint8_t *img, size_t len, uint64_t resv_off, uint64_t resv_len,
			struct qt_check *r);
/* Flush q, then check the bytes of its mem backend; returns a message or NULL
 * if clean (no errors, no leaks).  The message is static. */
const char *qt_check_open(struct qcow *q, struct qcow_backend be, bool allow_leaks);

/*
 * The walk's raw counts, for oracles comparing an image before and after
 * operations (tests/fuzz): references and stored refcounts of clusters
 * [0, n) (stored: as the refcount blocks say, also past the end of the file);
 * n covers every reference, up to `limit`: clusters past it have none.  References at or past `limit` are dropped; the walk gives up
 * (-1) after `budget` L2 entries, or when the header is unusable.
 */
struct qt_counts {
	uint64_t n, file_clusters;
	unsigned cb;
	uint64_t *refs, *stored;
	uint64_t *whole; /* references other than compressed data: tables, clusters */
};
int qt_walk_counts(const uint8_t *img, size_t len, uint64_t limit, uint64_t budget,
		   struct qt_counts *c);
void qt_counts_free(struct qt_counts *c);

/* ---- qt_mirror.c ------------------------------------------------------ */
struct qt_mirror {
	struct qcow *q;
	struct qcow_backend be;  /* mem backend of q, for checks (may be ops==NULL) */
	uint8_t *flat;           /* expected contents */
	uint64_t size, cap;      /* current size, max size ever */
	uint64_t rng;
	unsigned cluster_size;
	uint64_t max_len;        /* max op length */
	bool resize;             /* include resizes */
	bool check_every;        /* run qt_check every few ops */
	unsigned long ops;
	char err[512];
};
/* Takes ownership of nothing; flat is allocated with cap bytes (>= size). */
void qt_mirror_init(struct qt_mirror *m, struct qcow *q, struct qcow_backend be,
		    uint64_t size, uint64_t cap, uint64_t seed);
void qt_mirror_fini(struct qt_mirror *m);
/* One random op.  0 ok, -1 mismatch (m->err). */
int qt_mirror_step(struct qt_mirror *m);
/* Compare the whole image with flat (and qcow_map against it). */
int qt_mirror_verify(struct qt_mirror *m);
/* Check the extent map of [0,size) against flat. */
int qt_mirror_check_map(struct qt_mirror *m);

/* ---- qt_track.c ------------------------------------------------------- */
/*
 * What a workload may expect after faults or a crash: known[i] means flat[i]
 * is the content (the last op touching it succeeded); stable[i] means it was
 * known at the last successful flush and untouched since, so it must survive
 * a crash.
 */
struct qt_track {
	uint64_t size;
	uint8_t *flat, *known, *stable;
	/* since the last flush: synced = the contents then, wcount = how many
	 * writes or zeroes touched each byte (saturating at 2); a byte written
	 * once must read back, after a crash, as before or after that write */
	uint8_t *synced, *wcount;
	unsigned long errors; /* calls that returned an error */
	char err[300];        /* first wrong read */
	bool publish;         /* qcow_publish after every write (the shim with a reader) */
};
void qt_track_init(struct qt_track *t, uint64_t size); /* all zero, known, stable */
void qt_track_fini(struct qt_track *t);
/* A change made outside qt_track_run to [off, off+len): call before
 * changing t->flat (the first call takes the current contents as flushed). */
void qt_track_touch(struct qt_track *t, uint64_t off, uint64_t len);
/* Runs nops random ops on q (cluster size cs); returns -1 on a wrong read. */
int qt_track_run(struct qt_track *t, struct qcow *q, unsigned cs, uint64_t seed, unsigned nops);
/* Reads the whole image: every stable byte (every known byte if all_known)
 * must match; without all_known (after a crash), a byte one write or zero
 * touched since the last flush must hold its old or its new value.
 * Returns -1 with t->err on mismatch or read failure. */
int qt_track_verify(struct qt_track *t, struct qcow *q, bool all_known);

#endif
