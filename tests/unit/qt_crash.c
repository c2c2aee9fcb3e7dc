/*
 * qt_crash.c - a backend that models a volatile write cache (SQLite test6
 * style).  The current contents live in a qcow_backend_mem; the durable
 * contents are a separate buffer that receives every op only at flush.
 * qt_crash_now() builds "what survived a power cut": durable + a random,
 * in-order subset of the pending ops, writes torn at 512-byte sectors.
 */
#include "qt.h"

enum { P_WRITE, P_TRUNC, P_PUNCH };
struct pending {
	int kind;
	uint64_t off, len;
	uint8_t *data;
};

struct qt_crash {
	struct qcow_backend cur;
	uint8_t *dur;
	size_t dur_len;
	struct pending *p;
	size_t np, cap;
	bool crashed;
	unsigned long calls, arm_at;
	uint64_t arm_seed;
	uint8_t *result;
	size_t result_len;
};

/* Called before each mutating op: fires an armed power cut. */
static bool cut(struct qt_crash *c)
{
	if (c->crashed)
		return true;
	if (++c->calls == c->arm_at) {
		c->result = qt_crash_now(c, c->arm_seed, &c->result_len);
		return true;
	}
	return false;
}

static void buf_resize(uint8_t **b, size_t *len, size_t n)
{
	if (n > *len) {
		*b = realloc(*b, n ? n : 1);
		memset(*b + *len, 0, n - *len);
	}
	*len = n;
}

static void apply(uint8_t **b, size_t *len, const struct pending *p, uint64_t sector_mask)
{
	switch (p->kind) {
	case P_WRITE:
		if (p->off + p->len > *len)
			buf_resize(b, len, p->off + p->len);
		if (sector_mask == ~0ull) {
			memcpy(*b + p->off, p->data, p->len);
			break;
		}
		/* torn: apply the 512-byte sectors (of the host file) whose bit is set */
		for (uint64_t o = p->off; o < p->off + p->len;) {
			uint64_t end = (o / 512 + 1) * 512;
			if (end > p->off + p->len)
				end = p->off + p->len;
			if (sector_mask >> ((o / 512) % 64) & 1)
				memcpy(*b + o, p->data + (o - p->off), end - o);
			o = end;
		}
		break;
	case P_TRUNC:
		buf_resize(b, len, p->off);
		break;
	case P_PUNCH:
		if (p->off < *len)
			memset(*b + p->off, 0, (p->off + p->len > *len ? *len : p->off + p->len) - p->off);
		break;
	}
}

static void push(struct qt_crash *c, int kind, uint64_t off, uint64_t len, const void *data)
{
	if (c->np == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->p = realloc(c->p, c->cap * sizeof *c->p);
	}
	struct pending *p = &c->p[c->np++];
	p->kind = kind;
	p->off = off;
	p->len = len;
	p->data = NULL;
	if (data) {
		p->data = malloc(len ? len : 1);
		memcpy(p->data, data, len);
	}
}

static void drop_pending(struct qt_crash *c)
{
	for (size_t i = 0; i < c->np; i++)
		free(c->p[i].data);
	c->np = 0;
}

static ssize_t c_pread(void *h, void *buf, size_t n, uint64_t off)
{
	struct qt_crash *c = h;
	return c->crashed ? -EIO : c->cur.ops->pread(c->cur.h, buf, n, off);
}

static ssize_t c_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	struct qt_crash *c = h;
	if (cut(c))
		return -EIO;
	ssize_t r = c->cur.ops->pwrite(c->cur.h, buf, n, off);
	if (r >= 0)
		push(c, P_WRITE, off, n, buf);
	return r;
}

static int c_flush(void *h)
{
	struct qt_crash *c = h;
	if (cut(c))
		return -EIO;
	for (size_t i = 0; i < c->np; i++)
		apply(&c->dur, &c->dur_len, &c->p[i], ~0ull);
	drop_pending(c);
	return 0;
}

/*
 * A write that is durable on return (RWF_DSYNC): it reaches the durable
 * contents with the file sizes set before it; the other pending writes stay
 * pending.  Older pending writes it overlaps take its bytes (the page holds
 * the newest ones: applying them later cannot bring the old ones back), and
 * pending writes beyond a size made durable are cut there.
 */
static ssize_t c_pwrite_sync(void *h, const void *buf, size_t n, uint64_t off)
{
	struct qt_crash *c = h;
	if (cut(c))
		return -EIO;
	ssize_t r = c->cur.ops->pwrite(c->cur.h, buf, n, off);
	if (r < 0)
		return r;
	size_t keep = 0;
	for (size_t i = 0; i < c->np; i++) {
		struct pending *p = &c->p[i];
		if (p->kind == P_TRUNC) {
			apply(&c->dur, &c->dur_len, p, ~0ull);
			for (size_t j = 0; j < keep; j++) {
				struct pending *o = &c->p[j];
				if (o->kind != P_WRITE || o->off + o->len <= p->off)
					continue;
				if (o->off >= p->off)
					o->kind = P_PUNCH, o->len = 0; /* gone: a no-op */
				else
					o->len = p->off - o->off;
			}
			continue;
		}
		if (p->kind == P_WRITE && p->off < off + n && off < p->off + p->len) {
			uint64_t a = p->off > off ? p->off : off;
			uint64_t b = p->off + p->len < off + n ? p->off + p->len : off + n;
			memcpy(p->data + (a - p->off), (const uint8_t *)buf + (a - off), b - a);
		}
		c->p[keep++] = *p;
	}
	c->np = keep;
	struct pending self = {P_WRITE, off, n, (uint8_t *)(uintptr_t)buf};
	apply(&c->dur, &c->dur_len, &self, ~0ull);
	return r;
}

static int c_getsize(void *h, uint64_t *size)
{
	struct qt_crash *c = h;
	return c->crashed ? -EIO : c->cur.ops->getsize(c->cur.h, size);
}

static int c_truncate(void *h, uint64_t size)
{
	struct qt_crash *c = h;
	if (cut(c))
		return -EIO;
	int r = c->cur.ops->truncate(c->cur.h, size);
	if (r >= 0)
		push(c, P_TRUNC, size, 0, NULL);
	return r;
}

static int c_punch(void *h, uint64_t off, uint64_t n)
{
	struct qt_crash *c = h;
	if (cut(c))
		return -EIO;
	if (!c->cur.ops->punch)
		return -EOPNOTSUPP;
	int r = c->cur.ops->punch(c->cur.h, off, n);
	if (r >= 0)
		push(c, P_PUNCH, off, n, NULL);
	return r;
}

static void c_close(void *h)
{
	(void)h; /* freed by qt_crash_free */
}

static const struct qcow_backend_ops crash_ops = {
	c_pread, c_pwrite, c_flush, c_getsize, c_truncate, c_punch, c_close, c_pwrite_sync,
};

struct qt_crash *qt_crash_new(const void *data, size_t len)
{
	struct qt_crash *c = calloc(1, sizeof *c);
	if (qcow_backend_mem(&c->cur, data, len) < 0) {
		free(c);
		return NULL;
	}
	c->dur = malloc(len ? len : 1);
	if (len)
		memcpy(c->dur, data, len);
	c->dur_len = len;
	return c;
}

struct qcow_backend qt_crash_backend(struct qt_crash *c)
{
	struct qcow_backend be = { &crash_ops, c };
	return be;
}

unsigned long qt_crash_pending(struct qt_crash *c) { return c->np; }
unsigned long qt_crash_calls(struct qt_crash *c) { return c->calls; }

void qt_crash_arm(struct qt_crash *c, unsigned long n, uint64_t seed)
{
	c->arm_at = n;
	c->arm_seed = seed;
}

uint8_t *qt_crash_result(struct qt_crash *c, size_t *len)
{
	uint8_t *r = c->result;
	*len = c->result_len;
	c->result = NULL;
	return r;
}

uint8_t *qt_crash_now(struct qt_crash *c, uint64_t seed, size_t *len)
{
	uint64_t s = seed;
	size_t n = c->dur_len;
	uint8_t *b = malloc(n ? n : 1);
	if (n)
		memcpy(b, c->dur, n);
	for (size_t i = 0; i < c->np; i++) {
		uint64_t r = qt_rng(&s);
		if (r % 3 == 0)
			continue; /* lost */
		if (c->p[i].kind == P_WRITE && r % 3 == 1 && c->p[i].len > 512)
			apply(&b, &n, &c->p[i], qt_rng(&s)); /* torn */
		else
			apply(&b, &n, &c->p[i], ~0ull);
	}
	c->crashed = true;
	*len = n;
	return b;
}

void qt_crash_free(struct qt_crash *c)
{
	if (!c)
		return;
	drop_pending(c);
	free(c->p);
	free(c->dur);
	free(c->result);
	c->cur.ops->close(c->cur.h);
	free(c);
}
