/*
 * backend_mem.c - a growable in-memory file, for tests, fuzzing and
 * programs that build images in memory.  Reads past the end are short, as
 * for a file; punched ranges read back as zeros.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

/* Bytes in [len, cap) are undefined: growing the file zeroes the gap it
 * exposes, so a reservation never touches pages nothing will read. */
struct mem_backend {
	uint8_t *data;
	size_t len, cap;
};

static int mem_reserve(struct mem_backend *m, uint64_t need)
{
	if (need > (1ull << 40))
		return -EFBIG;
	if (need <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap : 65536;
	while (cap < need)
		cap *= 2;
	uint8_t *d = realloc(m->data, cap);
	if (!d)
		return -ENOMEM;
	m->data = d;
	m->cap = cap;
	return 0;
}

static ssize_t mem_pread(void *h, void *buf, size_t n, uint64_t off)
{
	struct mem_backend *m = h;
	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - off;
	memcpy(buf, m->data + off, n);
	return (ssize_t)n;
}

static ssize_t mem_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	struct mem_backend *m = h;
	uint64_t end;
	if (__builtin_add_overflow(off, n, &end))
		return -EFBIG;
	int r = mem_reserve(m, end);
	if (r < 0)
		return r;
	if (off > m->len)
		memset(m->data + m->len, 0, off - m->len);
	memcpy(m->data + off, buf, n);
	if (end > m->len)
		m->len = end;
	return (ssize_t)n;
}

static int mem_flush(void *h)
{
	(void)h;
	return 0;
}

static int mem_getsize(void *h, uint64_t *size)
{
	*size = ((struct mem_backend *)h)->len;
	return 0;
}

static int mem_truncate(void *h, uint64_t size)
{
	struct mem_backend *m = h;
	int r = mem_reserve(m, size);
	if (r < 0)
		return r;
	if (size > m->len)
		memset(m->data + m->len, 0, size - m->len);
	m->len = size;
	return 0;
}

static int mem_punch(void *h, uint64_t off, uint64_t n)
{
	struct mem_backend *m = h;
	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - off;
	memset(m->data + off, 0, n);
	return 0;
}

static void mem_close(void *h)
{
	struct mem_backend *m = h;
	free(m->data);
	free(m);
}

static const struct qcow_backend_ops mem_ops = {
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.flush = mem_flush,
	.getsize = mem_getsize,
	.truncate = mem_truncate,
	.punch = mem_punch,
	.close = mem_close,
};

int qcow_backend_mem(struct qcow_backend *be, const void *data, size_t len)
{
	struct mem_backend *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (len) {
		int r = mem_reserve(m, len);
		if (r < 0) {
			free(m);
			return r;
		}
		memcpy(m->data, data, len);
		m->len = len;
	}
	be->ops = &mem_ops;
	be->h = m;
	return 0;
}

const void *qcow_backend_mem_data(struct qcow_backend be, size_t *len)
{
	struct mem_backend *m = be.h;
	if (be.ops != &mem_ops) {
		*len = 0;
		return NULL;
	}
	*len = m->len;
	return m->data;
}
