/*
 * qt_util.c - handcrafted images (built byte by byte, independent of the
 * library) and memory-backend conveniences.
 */
#include <zlib.h>

#include "qt.h"

static void refcount_set(uint8_t *rb, unsigned bits, uint64_t i, uint64_t v)
{
	if (bits >= 8) {
		uint8_t *p = rb + i * (bits / 8);
		for (unsigned k = 0; k < bits / 8; k++)
			p[bits / 8 - 1 - k] = (uint8_t)(v >> (8 * k));
	} else {
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		rb[bit / 8] = (uint8_t)((rb[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
	}
}

uint8_t *qt_build_image(const struct qt_img_spec *s, size_t *len)
{
	unsigned cb = s->cluster_bits, ver = s->version ? s->version : 3;
	unsigned order = ver == 2 ? 4 : s->refcount_order, rbits = 1u << order;
	uint64_t cs = 1ull << cb, l2_entries = cs / 8;
	uint64_t l1_size = (s->size + cs * l2_entries - 1) / (cs * l2_entries);
	uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
	if (!l1_clusters)
		l1_clusters = 1;
	uint64_t l2_cl = 3 + l1_clusters;
	uint64_t nclusters = l2_cl + (s->data_clusters ? 1 + s->data_clusters : 0);
	if (nclusters > cs * 8 / rbits || (s->data_clusters && s->data_clusters > l2_entries))
		return NULL;
	uint8_t *img = calloc(nclusters, cs);
	if (!img)
		return NULL;
	memcpy(img, "QFI\xfb", 4);
	qt_put32(img + QH_VERSION, ver);
	qt_put32(img + QH_CLUSTER_BITS, cb);
	qt_put64(img + QH_SIZE, s->size);
	qt_put32(img + QH_L1_SIZE, (uint32_t)l1_size);
	qt_put64(img + QH_L1_OFF, 3 * cs);
	qt_put64(img + QH_RT_OFF, 1 * cs);
	qt_put32(img + QH_RT_CLUSTERS, 1);
	if (ver == 3) {
		qt_put32(img + QH_REFCOUNT_ORDER, order);
		qt_put32(img + QH_HEADER_LEN, s->header_length ? s->header_length : 104);
	}
	qt_put64(img + cs, 2 * cs); /* reftable[0] -> refblock */
	for (uint64_t i = 0; i < nclusters; i++)
		refcount_set(img + 2 * cs, rbits, i, 1);
	if (s->data_clusters) {
		qt_put64(img + 3 * cs, l2_cl * cs | 1ull << 63);
		for (unsigned i = 0; i < s->data_clusters; i++) {
			uint64_t h = (l2_cl + 1 + i) * cs;
			qt_put64(img + l2_cl * cs + 8 * i, h | 1ull << 63);
			memset(img + h, 0x40 + (i & 0x3f), cs);
		}
	}
	*len = nclusters * cs;
	return img;
}

static size_t ext_start(const uint8_t *img)
{
	return qt_be32(img + QH_VERSION) == 2 ? 72 : qt_be32(img + QH_HEADER_LEN);
}

int qt_add_extension(uint8_t *img, size_t len, uint32_t type, const void *data, uint32_t n)
{
	size_t cs = (size_t)1 << qt_be32(img + QH_CLUSTER_BITS), p = ext_start(img);
	while (p + 8 <= cs && p + 8 <= len && qt_be32(img + p) != 0)
		p += 8 + ((qt_be32(img + p + 4) + 7u) & ~7u);
	if (p + 8 + ((n + 7u) & ~7u) + 8 > cs)
		return -1;
	qt_put32(img + p, type);
	qt_put32(img + p + 4, n);
	memcpy(img + p + 8, data, n);
	memset(img + p + 8 + n, 0, ((n + 7u) & ~7u) - n + 8);
	return 0;
}

const uint8_t *qt_find_extension(const uint8_t *img, size_t len, uint32_t type, uint32_t *n)
{
	size_t cs = (size_t)1 << qt_be32(img + QH_CLUSTER_BITS), p = ext_start(img);
	while (p + 8 <= cs && p + 8 <= len && qt_be32(img + p) != 0) {
		uint32_t l = qt_be32(img + p + 4);
		if (p + 8 + l > cs)
			return NULL;
		if (qt_be32(img + p) == type) {
			*n = l;
			return img + p + 8;
		}
		p += 8 + ((l + 7u) & ~7u);
	}
	return NULL;
}

struct qcow *qt_create_mem(const struct qcow_create_opts *c, struct qcow_backend *be_out)
{
	return qt_create_mem_opts(c, NULL, be_out);
}

struct qcow *qt_create_mem_opts(const struct qcow_create_opts *c, const struct qcow_opts *o,
				struct qcow_backend *be_out)
{
	struct qcow_backend be;
	struct qcow *q = NULL;
	if (qcow_backend_mem(&be, NULL, 0) < 0)
		return NULL;
	int r = qcow_create(&q, be, c, o);
	if (r < 0) {
		be.ops->close(be.h);
		return NULL;
	}
	if (be_out)
		*be_out = be;
	return q;
}

struct qcow *qt_open_mem(const void *data, size_t len, unsigned flags, struct qcow_backend *be_out,
			 int *err)
{
	struct qcow_backend be;
	struct qcow *q = NULL;
	struct qcow_opts o = { .flags = flags };
	int r = qcow_backend_mem(&be, data, len);
	if (r < 0) {
		if (err)
			*err = r;
		return NULL;
	}
	r = qcow_open(&q, be, &o);
	if (err)
		*err = r;
	if (r < 0) {
		be.ops->close(be.h);
		return NULL;
	}
	if (be_out)
		*be_out = be;
	return q;
}

uint8_t *qt_mem_copy(struct qcow_backend be, size_t *len)
{
	const void *d = qcow_backend_mem_data(be, len);
	uint8_t *c = malloc(*len ? *len : 1);
	if (c && *len)
		memcpy(c, d, *len);
	return c;
}

void qt_make_stale(uint8_t *img, size_t len, uint64_t seed)
{
	uint64_t rng = seed;
	unsigned cb = qt_be32(img + QH_CLUSTER_BITS);
	unsigned order = qt_be32(img + QH_VERSION) >= 3 ? qt_be32(img + QH_REFCOUNT_ORDER) : 4;
	uint64_t cs = 1ull << cb, rbits = 1ull << order, per = cs * 8 / rbits;
	uint64_t rt = qt_be64(img + QH_RT_OFF), rt_n = qt_be32(img + QH_RT_CLUSTERS) * cs / 8;
	for (uint64_t c = 0; c < len / cs; c++) {
		if (c / per >= rt_n || qt_below(&rng, 3))
			continue;
		if (rt + c / per * 8 + 8 > len)
			continue;
		uint64_t rb = qt_be64(img + rt + c / per * 8) & ~(cs - 1);
		if (!rb || rb + cs > len)
			continue;
		uint64_t bit = c % per * rbits;
		if (rbits >= 8)
			memset(img + rb + bit / 8, 0, rbits / 8);
		else
			img[rb + bit / 8] &= (uint8_t)~(((1u << rbits) - 1) << (bit % 8));
	}
	qt_put64(img + QH_INCOMPAT, qt_be64(img + QH_INCOMPAT) | 1);
}

void qt_fill_pattern(uint8_t *buf, size_t n, uint64_t seed)
{
	uint64_t s = seed;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = qt_rng(&s);
		memcpy(buf + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = qt_rng(&s);
		memcpy(buf + i, &v, n - i);
	}
}

size_t qt_deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level, int wbits,
		      int strategy)
{
	z_stream z = {0};
	if (deflateInit2(&z, level, Z_DEFLATED, wbits, 9, strategy) != Z_OK)
		return 0;
	z.next_in = (uint8_t *)in;
	z.avail_in = (unsigned)n;
	z.next_out = out;
	z.avail_out = (unsigned)cap;
	int r = deflate(&z, Z_FINISH);
	size_t len = r == Z_STREAM_END ? z.total_out : 0;
	deflateEnd(&z);
	return len;
}
