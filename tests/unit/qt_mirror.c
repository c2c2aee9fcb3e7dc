/*
 * qt_mirror.c - random reads, writes, zero-writes, discards, resizes and
 * flushes applied to an image and to a flat buffer, compared as they go.
 */
#include <stdarg.h>

#include "qt.h"

static int fail(struct qt_mirror *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct qt_mirror *m, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(m->err, sizeof m->err, "op %lu: ", m->ops);
	va_start(ap, fmt);
	vsnprintf(m->err + n, sizeof m->err - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

void qt_mirror_init(struct qt_mirror *m, struct qcow *q, struct qcow_backend be, uint64_t size,
		    uint64_t cap, uint64_t seed)
{
	struct qcow_info info;
	memset(m, 0, sizeof *m);
	m->q = q;
	m->be = be;
	m->size = size;
	m->cap = cap < size ? size : cap;
	m->flat = calloc(m->cap ? m->cap : 1, 1);
	m->rng = seed * 0x2545f4914f6cdd1dull + 1;
	m->cluster_size = qcow_info(q, &info) == 0 ? 1u << info.cluster_bits : 65536;
	m->max_len = 4ull * m->cluster_size + 1000;
}

void qt_mirror_fini(struct qt_mirror *m)
{
	free(m->flat);
	m->flat = NULL;
}

static uint64_t pick_off(struct qt_mirror *m, uint64_t limit)
{
	uint64_t r = qt_below(&m->rng, 10), cs = m->cluster_size;
	if (!limit)
		return 0;
	if (r < 5)
		return qt_below(&m->rng, limit);
	if (r < 8)
		return qt_below(&m->rng, (limit + cs - 1) / cs) * cs % limit;
	/* just before a cluster boundary, or near the end */
	uint64_t o = (qt_below(&m->rng, limit / cs + 1) + 1) * cs;
	o -= 1 + qt_below(&m->rng, 700);
	if (r == 9)
		o = limit - 1 - qt_below(&m->rng, limit < 3000 ? limit : 3000);
	return o < limit ? o : limit - 1;
}

static uint64_t pick_len(struct qt_mirror *m)
{
	uint64_t r = qt_below(&m->rng, 4), cs = m->cluster_size;
	if (r < 2)
		return 1 + qt_below(&m->rng, m->max_len);
	if (r == 2) {
		uint64_t n = (1 + qt_below(&m->rng, 4)) * cs;
		return n < m->max_len ? n : m->max_len;
	}
	return 1 + qt_below(&m->rng, 600);
}

static void fill(struct qt_mirror *m, uint8_t *buf, size_t n)
{
	switch (qt_below(&m->rng, 5)) {
	case 0:
		memset(buf, 0, n); /* zero data through the write path */
		break;
	case 1:
		memset(buf, (int)(1 + qt_below(&m->rng, 255)), n);
		break;
	default:
		qt_fill_pattern(buf, n, qt_rng(&m->rng));
	}
}

static int first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (int)i;
	return -1;
}

static int do_read(struct qt_mirror *m, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	memset(buf, 0xa5, len);
	ssize_t r = qcow_read(m->q, buf, len, off);
	uint64_t want = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
	int ret = 0;
	if (r < 0 || (uint64_t)r != want)
		ret = fail(m, "read(%#llx, %llu) returned %zd, want %llu (size %llu)",
			   (unsigned long long)off, (unsigned long long)len, r,
			   (unsigned long long)want, (unsigned long long)m->size);
	else if (want && memcmp(buf, m->flat + off, want)) {
		int d = first_diff(buf, m->flat + off, want);
		ret = fail(m, "read(%#llx, %llu): byte at %#llx is %#x, want %#x",
			   (unsigned long long)off, (unsigned long long)len,
			   (unsigned long long)(off + (uint64_t)d), buf[d], m->flat[off + d]);
	}
	free(buf);
	return ret;
}

int qt_mirror_check_map(struct qt_mirror *m)
{
	uint64_t off = 0;
	while (off < m->size) {
		struct qcow_extent e;
		int r = qcow_map(m->q, off, m->size - off, &e);
		if (r < 0)
			return fail(m, "qcow_map(%#llx) = %d", (unsigned long long)off, r);
		if (e.len == 0 || e.len > m->size - off)
			return fail(m, "qcow_map(%#llx, %llu): len %llu", (unsigned long long)off,
				    (unsigned long long)(m->size - off), (unsigned long long)e.len);
		if (e.kind != QCOW_EXT_DATA && e.kind != QCOW_EXT_ZERO)
			return fail(m, "qcow_map(%#llx): kind %d", (unsigned long long)off, e.kind);
		if (e.kind == QCOW_EXT_ZERO)
			for (uint64_t i = off; i < off + e.len; i++)
				if (m->flat[i])
					return fail(m, "qcow_map says [%#llx,+%llu) is ZERO but byte %#llx is %#x",
						    (unsigned long long)off, (unsigned long long)e.len,
						    (unsigned long long)i, m->flat[i]);
		off += e.len;
	}
	struct qcow_extent e = { .len = 1 };
	int r = qcow_map(m->q, m->size, 4096, &e);
	if (r < 0 || e.len != 0)
		return fail(m, "qcow_map at the end: r=%d len=%llu", r, (unsigned long long)e.len);
	return 0;
}

int qt_mirror_verify(struct qt_mirror *m)
{
	if (qcow_size(m->q) != m->size)
		return fail(m, "qcow_size %llu, want %llu", (unsigned long long)qcow_size(m->q),
			    (unsigned long long)m->size);
	uint64_t chunk = 1 << 20;
	for (uint64_t off = 0; off < m->size; off += chunk)
		if (do_read(m, off, m->size - off < chunk ? m->size - off : chunk))
			return -1;
	if (do_read(m, m->size, 512))
		return -1;
	return qt_mirror_check_map(m);
}

/* QT_TRACE=1 in the environment prints every mutating op (for repros). */
static void trace(struct qt_mirror *m, const char *op, uint64_t a, uint64_t b, int r)
{
	static int on = -1;
	if (on < 0)
		on = getenv("QT_TRACE") != NULL;
	if (on)
		fprintf(stderr, "qt op %lu: %s %#llx %llu -> %d\n", m->ops, op,
			(unsigned long long)a, (unsigned long long)b, r);
}

int qt_mirror_step(struct qt_mirror *m)
{
	uint64_t kind = qt_below(&m->rng, 100), off, len;
	int r;
	m->ops++;
	if (kind < 35) { /* write */
		if (!m->size)
			return 0;
		off = pick_off(m, m->size);
		len = pick_len(m);
		if (len > m->size - off)
			len = m->size - off;
		uint8_t *buf = malloc(len);
		fill(m, buf, len);
		ssize_t w = qcow_write(m->q, buf, len, off);
		trace(m, "write", off, len, (int)w);
		if (w != (ssize_t)len) {
			free(buf);
			return fail(m, "write(%#llx, %llu) = %zd", (unsigned long long)off,
				    (unsigned long long)len, w);
		}
		memcpy(m->flat + off, buf, len);
		free(buf);
		if (qt_below(&m->rng, 4) == 0)
			return do_read(m, off, len);
	} else if (kind < 55) { /* read, possibly across the end */
		off = pick_off(m, m->size + 1);
		return do_read(m, off, pick_len(m));
	} else if (kind < 75) { /* zero-write or discard */
		if (!m->size)
			return 0;
		off = pick_off(m, m->size);
		len = pick_len(m);
		if (qt_below(&m->rng, 3) == 0) { /* whole clusters */
			off -= off % m->cluster_size;
			len = (len + m->cluster_size - 1) / m->cluster_size * m->cluster_size;
		}
		if (len > m->size - off)
			len = m->size - off;
		unsigned flags = kind < 65 ? 0 : QCOW_ZERO_UNMAP;
		r = qcow_zero(m->q, off, len, flags);
		trace(m, flags ? "discard" : "zero", off, len, r);
		if (r < 0)
			return fail(m, "zero(%#llx, %llu, %u) = %d", (unsigned long long)off,
				    (unsigned long long)len, flags, r);
		memset(m->flat + off, 0, len);
		if (qt_below(&m->rng, 3) == 0)
			return do_read(m, off > 100 ? off - 100 : 0, len + 200);
	} else if (kind < 79) { /* resize */
		if (!m->resize)
			return 0;
		uint64_t ns = (1 + qt_below(&m->rng, m->cap / 512)) * 512;
		if (ns > m->cap)
			ns = m->cap;
		r = qcow_resize(m->q, ns);
		trace(m, "resize", ns, 0, r);
		if (r < 0)
			return fail(m, "resize(%llu -> %llu) = %d", (unsigned long long)m->size,
				    (unsigned long long)ns, r);
		if (ns > m->size)
			memset(m->flat + m->size, 0, ns - m->size);
		m->size = ns;
		if (qcow_size(m->q) != ns)
			return fail(m, "qcow_size %llu after resize to %llu",
				    (unsigned long long)qcow_size(m->q), (unsigned long long)ns);
		/* the bytes around the old/new end */
		return do_read(m, ns > 5000 ? ns - 5000 : 0, 10000);
	} else if (kind < 85) {
		r = qcow_flush(m->q);
		trace(m, "flush", 0, 0, r);
		if (r < 0)
			return fail(m, "flush = %d", r);
	} else if (kind < 89) { /* out of range writes and zeroes change nothing */
		uint8_t buf[700];
		memset(buf, 0x77, sizeof buf);
		off = m->size - qt_below(&m->rng, 300 < m->size ? 300 : m->size);
		ssize_t w = qcow_write(m->q, buf, sizeof buf, off);
		if (w != -ENOSPC)
			return fail(m, "write(%#llx, 700) past the end (size %llu) = %zd, want -ENOSPC",
				    (unsigned long long)off, (unsigned long long)m->size, w);
		return do_read(m, off > 700 ? off - 700 : 0, 1400);
	} else if (kind < 93) {
		off = pick_off(m, m->size);
		len = pick_len(m) * 4;
		struct qcow_extent e;
		r = qcow_map(m->q, off, len, &e);
		uint64_t lim = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
		if (r < 0 || e.len > lim || (lim && !e.len))
			return fail(m, "map(%#llx, %llu) = %d len %llu (limit %llu)",
				    (unsigned long long)off, (unsigned long long)len, r,
				    (unsigned long long)e.len, (unsigned long long)lim);
		if (e.kind == QCOW_EXT_ZERO)
			for (uint64_t i = off; i < off + e.len; i++)
				if (m->flat[i])
					return fail(m, "map(%#llx): ZERO extent of %llu holds %#x at %#llx",
						    (unsigned long long)off,
						    (unsigned long long)e.len, m->flat[i],
						    (unsigned long long)i);
	} else if (kind < 94) {
		return qt_mirror_verify(m);
	}
	if (m->check_every && m->be.ops && m->ops % 250 == 0) {
		const char *c = qt_check_open(m->q, m->be, false);
		if (c)
			return fail(m, "%s", c);
	}
	return 0;
}
