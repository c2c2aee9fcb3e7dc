/*
 * cache.c - one write-back cache for metadata blocks (L2 slices, refcount
 * blocks), keyed by host offset, LRU eviction (a doubly linked list, so a
 * hit or a miss costs O(1)); pinned entries are never evicted.
 *
 * Ordering is the caller's: a cache's before_write hook runs before any of
 * its dirty entries reaches the file (the L2 cache uses it to make refcount
 * blocks and guest data durable first).  Evicting a dirty entry writes back
 * every dirty entry, so the hook's sync is paid once per batch, not once
 * per entry.  Every write is overlap-checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

/* Entries live in chunks allocated as first used: an open that touches a
 * few tables does not clear the whole budget's worth of entries. */
static inline struct qc_cent *ent(const struct qc_cache *c, int i)
{
	return &c->chunks[(unsigned)i / QC_CENT_CHUNK][(unsigned)i % QC_CENT_CHUNK];
}

static void lru_unlink(struct qc_cache *c, int i)
{
	struct qc_cent *e = ent(c, i);
	if (e->older >= 0)
		ent(c, e->older)->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer >= 0)
		ent(c, e->newer)->older = e->older;
	else
		c->newest = e->older;
}

static void lru_push_newest(struct qc_cache *c, int i)
{
	struct qc_cent *e = ent(c, i);
	e->newer = -1;
	e->older = c->newest;
	if (c->newest >= 0)
		ent(c, c->newest)->newer = i;
	c->newest = i;
	if (c->oldest < 0)
		c->oldest = i;
}

static void lru_push_oldest(struct qc_cache *c, int i)
{
	struct qc_cent *e = ent(c, i);
	e->older = -1;
	e->newer = c->oldest;
	if (c->oldest >= 0)
		ent(c, c->oldest)->older = i;
	c->oldest = i;
	if (c->newest < 0)
		c->newest = i;
}

int qc_cache_init(struct qc_cache *c, const char *name, unsigned kind, size_t bsize, size_t budget)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->kind = kind;
	c->bsize = bsize;
	c->n = (unsigned)(budget / bsize);
	if (c->n < 8)
		c->n = 8;
	if (c->n > 65536)
		c->n = 65536;
	c->nbuckets = 1;
	while (c->nbuckets < c->n * 2)
		c->nbuckets <<= 1;
	c->chunks = calloc((c->n + QC_CENT_CHUNK - 1) / QC_CENT_CHUNK, sizeof(*c->chunks));
	c->buckets = malloc(c->nbuckets * sizeof(int));
	if (!c->chunks || !c->buckets)
		return -ENOMEM;
	memset(c->buckets, 0xff, c->nbuckets * sizeof(int)); /* every bucket -1 */
	c->newest = c->oldest = -1; /* entries join the LRU list as first used */
	return 0;
}

void qc_cache_destroy(struct qc_cache *c)
{
	if (c->chunks) {
		for (unsigned i = 0; i < c->top; i++)
			free(ent(c, (int)i)->buf);
		for (unsigned k = 0; k < (c->n + QC_CENT_CHUNK - 1) / QC_CENT_CHUNK; k++)
			free(c->chunks[k]);
	}
	free(c->chunks);
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}

static unsigned bucket_of(const struct qc_cache *c, uint64_t hoff)
{
	uint64_t h = (hoff / c->bsize) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 32) & (c->nbuckets - 1);
}

static void unhash(struct qc_cache *c, int i)
{
	int *p = &c->buckets[bucket_of(c, ent(c, i)->hoff)];
	while (*p != -1 && *p != i)
		p = &ent(c, *p)->next;
	if (*p == i)
		*p = ent(c, i)->next;
	ent(c, i)->valid = false;
}

static int lookup(const struct qc_cache *c, uint64_t hoff)
{
	for (int i = c->buckets[bucket_of(c, hoff)]; i != -1; i = ent(c, i)->next)
		if (ent(c, i)->hoff == hoff)
			return i;
	return -1;
}

static int write_entry(struct qcow *q, struct qc_cache *c, struct qc_cent *e)
{
	int r = qc_meta_pwrite(q, e->buf, c->bsize, e->hoff, c->kind);
	if (r < 0)
		return r;
	e->dirty = false;
	c->ndirty--;
	return 0;
}

/*
 * Pick a slot for a new entry: the least recently used unpinned one, as a
 * clock: a hit only marks its entry (`ref`), and here a marked entry at the
 * old end gets a second chance at the new end.  Moving every hit to the new
 * end touched three entries' links per cached 4 KiB read.
 */
static int victim(struct qcow *q, struct qc_cache *c, int *slot)
{
	/* Never used entries first: an open that reads a few tables touches
	 * a few entries, not the whole budget (1024 L2 slices by default). */
	if (c->top < c->n) {
		struct qc_cent **ck = &c->chunks[c->top / QC_CENT_CHUNK];
		if (!*ck && !(*ck = calloc(QC_CENT_CHUNK, sizeof(**ck))))
			return -ENOMEM;
		lru_push_oldest(c, (int)c->top++);
	}
	int i = c->oldest;
	for (unsigned turns = 0;; turns++) {
		if (i < 0 || turns > 2 * c->top + 1)
			return -EBUSY; /* every entry pinned: a library bug */
		struct qc_cent *o = ent(c, i);
		if (!o->pins && !o->ref)
			break;
		o->ref = false; /* its second chance (or in use): to the new end */
		if (c->newest != i) {
			lru_unlink(c, i);
			lru_push_newest(c, i);
		}
		i = c->oldest;
	}
	struct qc_cent *e = ent(c, i);
	if (e->valid && e->dirty) {
		int r = qc_cache_flush(q, c);
		if (r < 0)
			return r;
	}
	if (e->valid)
		unhash(c, i);
	if (!e->buf && !(e->buf = malloc(c->bsize)))
		return -ENOMEM;
	*slot = i;
	return 0;
}

/* Slot i (from victim, its buf filled) now holds the clean block at hoff,
 * unpinned, at the new end of the LRU list. */
static void install(struct qc_cache *c, int i, uint64_t hoff)
{
	struct qc_cent *e = ent(c, i);
	e->hoff = hoff;
	e->valid = true;
	e->dirty = false;
	e->ref = false;
	e->pins = 0;
	unsigned b = bucket_of(c, hoff);
	e->next = c->buckets[b];
	c->buckets[b] = i;
	if (c->newest != i) {
		lru_unlink(c, i);
		lru_push_newest(c, i);
	}
}

/*
 * Pin the block at hoff.  load: read it from the file when not cached;
 * otherwise a missing block starts zeroed (a newly allocated table).
 * Returns 0 or -errno.
 */
int qc_cache_get(struct qcow *q, struct qc_cache *c, uint64_t hoff, bool load, struct qc_cent **out)
{
	return qc_cache_get_ra(q, c, hoff, load, out, hoff, 1);
}

/* qc_cache_get; on a miss, first read blocks [ra, ra + ra_count) at once
 * (qc_cache_prefetch), hoff among them. */
int qc_cache_get_ra(struct qcow *q, struct qc_cache *c, uint64_t hoff, bool load, struct qc_cent **out,
		    uint64_t ra, unsigned ra_count)
{
	int i = lookup(c, hoff), r;
	if (i < 0 && load && ra_count > 1) {
		/* the second miss in one table: a scan, not a lone read */
		if (c->last_ra_valid && c->last_ra == ra) {
			if ((r = qc_cache_prefetch(q, c, ra, ra_count)) < 0)
				return r;
			i = lookup(c, hoff);
		}
		c->last_ra = ra;
		c->last_ra_valid = true;
	}
	if (i >= 0) { /* a hit: marked, not moved (victim) */
		struct qc_cent *e = ent(c, i);
		e->ref = true;
		e->pins++;
		*out = e;
		return 0;
	}
	if ((r = victim(q, c, &i)) < 0)
		return r;
	struct qc_cent *e = ent(c, i);
	if (load) {
		if ((r = qc_pread(q, &q->be, e->buf, c->bsize, hoff, true)) < 0)
			return r;
	} else {
		memset(e->buf, 0, c->bsize);
	}
	install(c, i, hoff);
	e->pins++;
	*out = e;
	return 0;
}

/*
 * Read `count` consecutive blocks at hoff in one read, the ones not cached
 * into entries never used before: the rest of a table whose slices are being
 * read one after another (an L2 table of a 64 KiB cluster is 16 slices; a
 * scan of the image, st_blocks or SEEK_DATA, or a sequential read reads them
 * all).  Only while the cache has room to spare, so nothing is evicted for
 * it.  An I/O error is returned (as the single read would have); a short
 * read leaves the rest to it.
 */
int qc_cache_prefetch(struct qcow *q, struct qc_cache *c, uint64_t hoff, unsigned count)
{
	size_t bytes = (size_t)count * c->bsize, done = 0;
	if (count < 2 || c->top + count > c->n || hoff + bytes > q->file_end)
		return 0;
	uint8_t *buf = malloc(bytes);
	if (!buf)
		return 0;
	while (done < bytes) {
		ssize_t r = q->be.ops->pread(q->be.h, buf + done, bytes - done, hoff + done);
		if (r < 0) {
			free(buf);
			return (int)r;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	for (unsigned i = 0; i < count && (i + 1) * c->bsize <= done; i++) {
		int s;
		if (lookup(c, hoff + (uint64_t)i * c->bsize) >= 0)
			continue; /* cached, perhaps dirty: the cache's copy is the one */
		if (victim(q, c, &s) < 0)
			break;
		memcpy(ent(c, s)->buf, buf + (size_t)i * c->bsize, c->bsize);
		install(c, s, hoff + (uint64_t)i * c->bsize);
	}
	free(buf);
	return 0;
}

void qc_cache_put(struct qc_cent *e)
{
	if (e)
		e->pins--;
}

void qc_cache_dirty(struct qc_cache *c, struct qc_cent *e)
{
	if (!e->dirty) {
		e->dirty = true;
		c->ndirty++;
	}
}

/* Write every dirty entry back, after the cache's ordering hook. */
int qc_cache_flush(struct qcow *q, struct qc_cache *c)
{
	int r;
	if (!c->ndirty)
		return 0;
	if (c->before_write && (r = c->before_write(q)) < 0)
		return r;
	for (unsigned i = 0; i < c->top && c->ndirty; i++) {
		struct qc_cent *e = ent(c, i);
		if (e->valid && e->dirty && (r = write_entry(q, c, e)) < 0)
			return r;
	}
	return 0;
}

/* Write every dirty entry back durably, one entry at a time (no hook:
 * for blocks whose own durability is the point, the reservation's). */
int qc_cache_flush_sync(struct qcow *q, struct qc_cache *c)
{
	for (unsigned i = 0; i < c->top && c->ndirty; i++) {
		struct qc_cent *e = ent(c, i);
		if (!e->valid || !e->dirty)
			continue;
		int r = qc_meta_pwrite_sync(q, e->buf, c->bsize, e->hoff, c->kind);
		if (r < 0)
			return r;
		e->dirty = false;
		c->ndirty--;
	}
	return 0;
}

static void drop(struct qc_cache *c, int i)
{
	struct qc_cent *e = ent(c, i);
	if (e->dirty)
		c->ndirty--;
	e->dirty = false;
	unhash(c, i);
	lru_unlink(c, i);
	lru_push_oldest(c, i);
}

/* Forget blocks inside [hoff, hoff+len): their clusters are being freed. */
void qc_cache_drop_range(struct qc_cache *c, uint64_t hoff, uint64_t len)
{
	if (!c->chunks)
		return;
	for (uint64_t o = 0; o < len; o += c->bsize) {
		int i = lookup(c, hoff + o);
		if (i >= 0)
			drop(c, i);
	}
}

void qc_cache_clear(struct qc_cache *c)
{
	for (unsigned i = 0; i < c->top; i++)
		if (ent(c, i)->valid)
			drop(c, (int)i);
}
