/*
 * test_rw.c - the randomized mirror test over the memory backend: random
 * reads, writes, zero-writes, discards, resizes and flushes applied to a
 * library-created image and to a flat buffer, compared continuously, for
 * every cluster size (512 B - 2 MiB), every refcount width (1 - 64) and
 * both versions.  The image bytes are walked by qt_check (no leaks, no
 * corruption) periodically and at the end, then the image is reopened from
 * its bytes and compared again.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "qt.h"

struct geo {
	unsigned version, cb, order;
};

static uint64_t geo_size(unsigned cb)
{
	uint64_t cs = 1ull << cb, s = 40 * cs;
	if (s < (256u << 10))
		s = 256u << 10;
	if (s > (12u << 20))
		s = 12u << 20;
	return s + 3 * 512; /* not cluster aligned */
}

static unsigned geo_ops(unsigned cb)
{
	return cb <= 16 ? qt_reps(400, 2000) : cb <= 18 ? qt_reps(100, 1000) : qt_reps(20, 300);
}

static void run_mirror(const struct geo *g, uint64_t seed, bool resize)
{
	struct qcow_create_opts c = { .size = geo_size(g->cb), .cluster_bits = g->cb,
				      .version = g->version, .refcount_bits = 1u << g->order };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q, "create v%u cb %u refcount %u failed", g->version, g->cb, 1u << g->order);
	const char *m = qt_check_open(q, be, false);
	cr_assert(!m, "fresh image v%u cb %u rb %u: %s", g->version, g->cb, 1u << g->order, m);
	struct qt_mirror mi;
	qt_mirror_init(&mi, q, be, c.size, resize ? 2 * c.size : c.size, seed);
	mi.resize = resize;
	mi.check_every = true;
	unsigned n = geo_ops(g->cb);
	for (unsigned i = 0; i < n; i++)
		if (qt_mirror_step(&mi))
			cr_assert_fail("v%u cb %u refcount %u seed %llu: %s", g->version, g->cb,
				       1u << g->order, (unsigned long long)seed, mi.err);
	if (qt_mirror_verify(&mi))
		cr_assert_fail("v%u cb %u rb %u: %s", g->version, g->cb, 1u << g->order, mi.err);
	m = qt_check_open(q, be, false);
	cr_assert(!m, "v%u cb %u refcount %u seed %llu after %u ops: %s", g->version, g->cb,
		  1u << g->order, (unsigned long long)seed, n, m);
	size_t len;
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *bytes = qt_mem_copy(be, &len);
	cr_assert_eq(qcow_close(q), 0);
	/* reopen from the bytes: everything must have been persisted */
	int err;
	q = qt_open_mem(bytes, len, 0, &be, &err);
	cr_assert(q, "reopen = %d", err);
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_expect_eq(info.version, g->version);
	cr_expect_eq(info.cluster_bits, g->cb);
	cr_expect_eq(info.refcount_bits, 1u << g->order);
	cr_expect(!info.dirty && !info.corrupt);
	mi.q = q;
	mi.be = be;
	if (qt_mirror_verify(&mi))
		cr_assert_fail("after reopen: v%u cb %u rb %u: %s", g->version, g->cb,
			       1u << g->order, mi.err);
	/* a few more ops on the reopened image */
	for (unsigned i = 0; i < qt_reps(30, 200); i++)
		if (qt_mirror_step(&mi))
			cr_assert_fail("reopened v%u cb %u: %s", g->version, g->cb, mi.err);
	m = qt_check_open(q, be, false);
	cr_assert(!m, "reopened: %s", m);
	qcow_close(q);
	qt_mirror_fini(&mi);
	free(bytes);
}

ParameterizedTestParameters(mirror, geometry)
{
	static struct geo g[13 * 8];
	size_t n = 0;
	for (unsigned cb = 9; cb <= 21; cb++) {
		for (unsigned order = 0; order <= 6; order++)
			g[n++] = (struct geo){ 3, cb, order };
		g[n++] = (struct geo){ 2, cb, 4 };
	}
	return cr_make_param_array(struct geo, g, n);
}

ParameterizedTest(struct geo *g, mirror, geometry)
{
	run_mirror(g, 1000 + g->version * 100 + g->cb * 7 + g->order, true);
}

/* Extended L2 entries (subclusters), every cluster size that allows them. */
static void run_ext_mirror(unsigned cb, unsigned order, uint64_t seed)
{
	struct qcow_create_opts c = { .size = geo_size(cb), .cluster_bits = cb,
				      .refcount_bits = 1u << order, .extended_l2 = true };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q, "create extended L2 cb %u", cb);
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_assert(info.extended_l2);
	struct qt_mirror mi;
	qt_mirror_init(&mi, q, be, c.size, 2 * c.size, seed);
	mi.resize = true;
	mi.check_every = true;
	unsigned n = geo_ops(cb);
	for (unsigned i = 0; i < n; i++)
		if (qt_mirror_step(&mi))
			cr_assert_fail("extended L2 cb %u rb %u seed %llu: %s", cb, 1u << order,
				       (unsigned long long)seed, mi.err);
	cr_assert(!qt_mirror_verify(&mi), "extended L2 cb %u: %s", cb, mi.err);
	const char *m = qt_check_open(q, be, false);
	cr_assert(!m, "extended L2 cb %u: %s", cb, m);
	size_t len;
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *bytes = qt_mem_copy(be, &len);
	qcow_close(q);
	int err;
	q = qt_open_mem(bytes, len, QCOW_RDONLY, &be, &err);
	cr_assert(q, "reopen = %d", err);
	mi.q = q;
	cr_assert(!qt_mirror_verify(&mi), "extended L2 cb %u after reopen: %s", cb, mi.err);
	qcow_close(q);
	qt_mirror_fini(&mi);
	free(bytes);
}

Test(mirror, extended_l2_every_cluster_size)
{
	for (unsigned cb = 14; cb <= 21; cb++)
		run_ext_mirror(cb, cb % 7, 500 + cb);
}

/* Minimal caches (the library clamps them to its minimum): constant
 * eviction and write-back under the mirror. */
Test(mirror, tiny_caches)
{
	static const struct geo g[] = { { 3, 9, 0 }, { 3, 12, 4 }, { 3, 16, 6 }, { 2, 10, 4 } };
	for (size_t k = 0; k < sizeof g / sizeof *g; k++) {
		struct qcow_create_opts c = { .size = geo_size(g[k].cb), .cluster_bits = g[k].cb,
					      .version = g[k].version,
					      .refcount_bits = 1u << g[k].order };
		struct qcow_opts o = { .l2_cache_bytes = 1, .refblock_cache_bytes = 1 };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem_opts(&c, &o, &be);
		cr_assert(q, "create with tiny caches");
		struct qt_mirror mi;
		qt_mirror_init(&mi, q, be, c.size, 2 * c.size, 77 + k);
		mi.resize = true;
		mi.check_every = true;
		for (unsigned i = 0; i < qt_reps(400, 2000); i++)
			if (qt_mirror_step(&mi))
				cr_assert_fail("tiny caches, cb %u: %s", g[k].cb, mi.err);
		cr_assert(!qt_mirror_verify(&mi), "tiny caches cb %u: %s", g[k].cb, mi.err);
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "tiny caches cb %u: %s", g[k].cb, m);
		qcow_close(q);
		qt_mirror_fini(&mi);
	}
}

/* Large requests spanning many L2 tables and refcount blocks per call. */
Test(mirror, large_requests)
{
	static const struct geo g[] = { { 3, 9, 6 }, { 3, 10, 0 }, { 2, 9, 4 }, { 3, 12, 3 } };
	for (size_t k = 0; k < sizeof g / sizeof *g; k++) {
		struct qcow_create_opts c = { .size = 12 << 20, .cluster_bits = g[k].cb,
					      .version = g[k].version,
					      .refcount_bits = 1u << g[k].order };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem(&c, &be);
		cr_assert(q);
		struct qt_mirror mi;
		qt_mirror_init(&mi, q, be, c.size, 16 << 20, 91 + k);
		mi.max_len = 3 << 20;
		mi.resize = true;
		for (unsigned i = 0; i < qt_reps(80, 250); i++)
			if (qt_mirror_step(&mi))
				cr_assert_fail("large requests, cb %u rb %u v%u: %s", g[k].cb,
					       1u << g[k].order, g[k].version, mi.err);
		cr_assert(!qt_mirror_verify(&mi), "large requests cb %u: %s", g[k].cb, mi.err);
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "large requests cb %u: %s", g[k].cb, m);
		qcow_close(q);
		qt_mirror_fini(&mi);
	}
}

/* Longer runs with other seeds on the common geometries. */
Test(mirror, long_default_geometry)
{
	for (uint64_t seed = 1; seed <= qt_reps(2, 4); seed++) {
		struct geo g = { 3, 16, 4 };
		run_mirror(&g, seed, seed & 1);
	}
}

Test(mirror, long_small_clusters_wide_refcounts)
{
	for (uint64_t seed = 10; seed < 10 + qt_reps(1, 3); seed++) {
		struct geo g = { 3, 9, 6 };
		run_mirror(&g, seed, true);
		g.order = 0;
		run_mirror(&g, seed, true);
	}
}

/* ---- creation ----------------------------------------------------------- */

static int try_create(struct qcow_create_opts c)
{
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, NULL, 0), 0);
	int r = qcow_create(&q, be, &c, NULL);
	if (r == 0)
		qcow_close(q);
	else
		be.ops->close(be.h);
	return r;
}

Test(create, invalid_options)
{
	struct {
		struct qcow_create_opts c;
		const char *what;
	} bad[] = {
		{ { .size = 1 << 20, .cluster_bits = 8 }, "cluster_bits 8" },
		{ { .size = 1 << 20, .cluster_bits = 22 }, "cluster_bits 22" },
		{ { .size = 1 << 20, .version = 1 }, "version 1" },
		{ { .size = 1 << 20, .version = 4 }, "version 4" },
		{ { .size = 1 << 20, .refcount_bits = 3 }, "refcount_bits 3" },
		{ { .size = 1 << 20, .refcount_bits = 128 }, "refcount_bits 128" },
		{ { .size = 1 << 20, .version = 2, .refcount_bits = 8 }, "v2 refcount_bits 8" },
		{ { .size = 1 << 20, .version = 2, .lazy_refcounts = true }, "v2 lazy refcounts" },
		{ { .size = 1 << 20, .version = 2, .extended_l2 = true, .cluster_bits = 16 },
		  "v2 extended L2" },
		{ { .size = 1 << 20, .extended_l2 = true, .cluster_bits = 13 },
		  "extended L2, 8K clusters" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int r = try_create(bad[i].c);
		cr_expect_eq(r, -EINVAL, "create with %s = %d, want -EINVAL", bad[i].what, r);
	}
	/* an L1 table beyond qemu's 32 MiB cap */
	struct qcow_create_opts big = { .size = 1ull << 50, .cluster_bits = 9 };
	int r = try_create(big);
	cr_expect(r == -EFBIG || r == -EINVAL, "create 1 PiB with 512 B clusters = %d", r);
}

Test(create, defaults_and_header)
{
	struct qcow_create_opts c = { .size = 10 << 20 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_expect_eq(info.size, 10 << 20);
	cr_expect_eq(info.version, 3);
	cr_expect_eq(info.cluster_bits, 16);
	cr_expect_eq(info.refcount_bits, 16);
	cr_expect(!info.extended_l2 && !info.read_only && !info.dirty && !info.corrupt);
	cr_expect_eq(info.nb_snapshots, 0);
	cr_expect_eq(qcow_size(q), 10 << 20);
	cr_assert_eq(qcow_flush(q), 0);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_assert_geq(n, 104);
	cr_expect(!memcmp(d, "QFI\xfb", 4));
	cr_expect_eq(qt_be32(d + QH_VERSION), 3);
	cr_expect_eq(qt_be32(d + QH_CLUSTER_BITS), 16);
	cr_expect_eq(qt_be64(d + QH_SIZE), 10 << 20);
	cr_expect_eq(qt_be32(d + QH_CRYPT), 0);
	cr_expect_eq(qt_be64(d + QH_COMPAT) & 1, 0, "lazy refcounts on by default");
	cr_expect_eq(qt_be64(d + QH_INCOMPAT), 0);
	cr_expect_eq(qt_be32(d + QH_REFCOUNT_ORDER), 4);
	uint32_t hl = qt_be32(d + QH_HEADER_LEN);
	cr_expect(hl >= 104 && hl % 8 == 0, "header_length %u", hl);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	uint8_t buf[4096];
	memset(buf, 1, sizeof buf);
	cr_expect_eq(qcow_read(q, buf, sizeof buf, (10 << 20) - 4096), 4096);
	for (size_t i = 0; i < sizeof buf; i++)
		cr_assert_eq(buf[i], 0);
	qcow_close(q);
}

Test(create, lazy_and_extended_l2_flags)
{
	struct qcow_create_opts c = { .size = 10 << 20, .lazy_refcounts = true,
				      .cluster_bits = 16, .extended_l2 = true };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q, "create with extended L2 and lazy refcounts");
	struct qcow_info info;
	qcow_info(q, &info);
	cr_expect(info.extended_l2);
	qcow_flush(q);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(qt_be64(d + QH_COMPAT) & 1, 1, "lazy refcounts bit");
	cr_expect_eq(qt_be64(d + QH_INCOMPAT) & 16, 16, "extended L2 bit");
	qcow_close(q);
}

/* A huge sparse image stays small; far writes work. */
Test(create, huge_sparse)
{
	uint64_t size = 4ull << 40;
	struct qcow_create_opts c = { .size = size };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t buf[1000];
	memset(buf, 0x3c, sizeof buf);
	uint64_t offs[] = { 0, size - 1000, size / 2 - 500, 1ull << 32, (1ull << 39) + 77 };
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++)
		cr_assert_eq(qcow_write(q, buf, sizeof buf, offs[i]), 1000, "write at %#llx",
			     (unsigned long long)offs[i]);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	size_t n;
	qcow_backend_mem_data(be, &n);
	cr_expect_lt(n, 4u << 20, "4 TiB sparse image with 5 writes takes %zu bytes", n);
	uint8_t rd[1000];
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		cr_assert_eq(qcow_read(q, rd, sizeof rd, offs[i]), 1000);
		cr_assert(!memcmp(rd, buf, sizeof rd));
	}
	cr_assert_eq(qcow_read(q, rd, sizeof rd, 3ull << 40), 1000);
	for (size_t i = 0; i < sizeof rd; i++)
		cr_assert_eq(rd[i], 0);
	qcow_close(q);
}

/* Refcount table and refcount block growth: enough clusters that the first
 * refcount table cluster no longer covers the file. */
Test(alloc, reftable_growth_every_width)
{
	for (unsigned order = 0; order <= 6; order++) {
		struct qcow_create_opts c = { .size = 10 << 20, .cluster_bits = 9,
					      .refcount_bits = 1u << order };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem(&c, &be);
		cr_assert(q);
		uint8_t buf[512];
		/* every other cluster, then the gaps: scattered allocation */
		for (int pass = 0; pass < 2; pass++)
			for (uint64_t off = pass * 512; off < c.size; off += 1024) {
				memset(buf, (int)(off / 512 * 7 + 1), sizeof buf);
				cr_assert_eq(qcow_write(q, buf, 512, off), 512,
					     "order %u write at %#llx", order,
					     (unsigned long long)off);
			}
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "refcount bits %u: %s", 1u << order, m);
		size_t len;
		cr_assert_eq(qcow_checkpoint(q), 0);
		uint8_t *bytes = qt_mem_copy(be, &len);
		if (order >= 4)
			cr_expect_gt(qt_be32(bytes + QH_RT_CLUSTERS), 1,
				     "refcount table did not grow (order %u)", order);
		qcow_close(q);
		int err;
		q = qt_open_mem(bytes, len, QCOW_RDONLY, NULL, &err);
		cr_assert(q, "reopen = %d", err);
		for (uint64_t off = 0; off < c.size; off += 512) {
			cr_assert_eq(qcow_read(q, buf, 512, off), 512);
			cr_assert_eq(buf[0], (uint8_t)(off / 512 * 7 + 1), "order %u at %#llx",
				     order, (unsigned long long)off);
			cr_assert_eq(buf[511], buf[0]);
		}
		qcow_close(q);
		free(bytes);
	}
}

/* Freed clusters are reused: rewriting after discarding does not grow the file. */
Test(alloc, reuse_after_discard)
{
	struct qcow_create_opts c = { .size = 8 << 20 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t *buf = malloc(4 << 20);
	memset(buf, 0x11, 4 << 20);
	cr_assert_eq(qcow_write(q, buf, 4 << 20, 0), 4 << 20);
	cr_assert_eq(qcow_flush(q), 0);
	size_t n1;
	qcow_backend_mem_data(be, &n1);
	for (int round = 0; round < 5; round++) {
		cr_assert_eq(qcow_zero(q, 0, 8 << 20, QCOW_ZERO_UNMAP), 0);
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "after discard: %s", m);
		cr_assert_eq(qcow_write(q, buf, 4 << 20, (round & 1) ? 4 << 20 : 0), 4 << 20);
		cr_assert_eq(qcow_flush(q), 0);
	}
	size_t n2;
	qcow_backend_mem_data(be, &n2);
	cr_expect_leq(n2, n1 + (2u << 16), "file grew from %zu to %zu despite freed space", n1, n2);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	free(buf);
	qcow_close(q);
}

/* Odd (non-512) virtual sizes: either refused with -EINVAL or fully honoured. */
Test(create, odd_virtual_size)
{
	struct qcow_create_opts c = { .size = 1000001, .cluster_bits = 12 };
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, NULL, 0), 0);
	int r = qcow_create(&q, be, &c, NULL);
	if (r < 0) {
		cr_expect_eq(r, -EINVAL);
		be.ops->close(be.h);
		return;
	}
	cr_expect_eq(qcow_size(q), 1000001);
	uint8_t buf[100];
	memset(buf, 9, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, 1, 1000000), 1);
	cr_expect_eq(qcow_write(q, buf, 2, 1000000), -ENOSPC);
	cr_expect_eq(qcow_read(q, buf, 100, 999990), 11);
	cr_expect_eq(buf[10], 9);
	cr_expect_eq(buf[9], 0);
	qcow_close(q);
}

/* Zero-length and boundary calls. */
Test(rw, edge_cases)
{
	struct qcow_create_opts c = { .size = 1 << 20, .cluster_bits = 12 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t buf[8192];
	memset(buf, 0x21, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, 0, 0), 0);
	cr_expect_eq(qcow_write(q, buf, 0, 1 << 20), 0);
	cr_expect_eq(qcow_read(q, buf, 0, 5), 0);
	cr_expect_eq(qcow_read(q, buf, 100, 1 << 20), 0);
	cr_expect_eq(qcow_read(q, buf, 100, (1 << 20) + 12345), 0);
	cr_expect_eq(qcow_read(q, buf, 100, ~0ull - 10), 0, "read near 2^64");
	cr_expect_eq(qcow_write(q, buf, 100, ~0ull - 10), -ENOSPC, "write near 2^64");
	cr_expect_eq(qcow_write(q, buf, 1, 1 << 20), -ENOSPC);
	cr_expect_eq(qcow_write(q, buf, 8192, (1 << 20) - 8191), -ENOSPC);
	cr_expect_eq(qcow_write(q, buf, 8192, (1 << 20) - 8192), 8192);
	cr_expect_eq(qcow_zero(q, 0, 0, 0), 0);
	int r = qcow_zero(q, (1 << 20) - 100, 200, 0);
	cr_expect_lt(r, 0, "zero past the end = %d", r);
	cr_expect_eq(qcow_read(q, buf, 8192, (1 << 20) - 4096), 4096);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(buf[i], 0x21, "byte %d changed by a failed op", i);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	qcow_close(q);
}

/* v2 has no zero flag: write-zeroes must still work and read back. */
static void v2_zero_case(unsigned flags, bool whole)
{
	struct qcow_create_opts c = { .size = 1 << 20, .cluster_bits = 12, .version = 2 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	uint8_t buf[16384];
	memset(buf, 0x5e, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	uint64_t off = whole ? 4096 : 5000, len = whole ? 8192 : 6000;
	int r = qcow_zero(q, off, len, flags);
	cr_assert_eq(r, 0, "v2 zero(%llu, %llu, %u) = %d", (unsigned long long)off,
		     (unsigned long long)len, flags, r);
	ssize_t n = qcow_read(q, buf, sizeof buf, 0);
	cr_assert_eq(n, (ssize_t)sizeof buf, "v2 read after zero(flags %u) = %zd", flags, n);
	for (uint64_t i = 0; i < sizeof buf; i++)
		cr_assert_eq(buf[i], i >= off && i < off + len ? 0 : 0x5e, "byte %llu",
			     (unsigned long long)i);
	const char *m = qt_check_open(q, be, false);
	cr_assert(!m, "v2 zero(flags %u): %s", flags, m);
	qcow_close(q);
}

Test(rw, v2_write_zeroes_whole_clusters) { v2_zero_case(0, true); }
Test(rw, v2_discard_whole_clusters) { v2_zero_case(QCOW_ZERO_UNMAP, true); }
Test(rw, v2_write_zeroes_partial) { v2_zero_case(0, false); }
Test(rw, v2_discard_partial) { v2_zero_case(QCOW_ZERO_UNMAP, false); }

/* qcow_create over a backend full of garbage ("to be overwritten"): the new
 * image must not see any of it. */
Test(create, over_garbage)
{
	for (unsigned cb = 9; cb <= 16; cb += 7) {
		size_t glen = 3 << 20;
		uint8_t *garbage = malloc(glen);
		memset(garbage, 0xff, glen);
		struct qcow_backend be;
		cr_assert_eq(qcow_backend_mem(&be, garbage, glen), 0);
		struct qcow_create_opts c = { .size = 8 << 20, .cluster_bits = cb };
		struct qcow *q = NULL;
		int r = qcow_create(&q, be, &c, NULL);
		cr_assert_eq(r, 0, "create over garbage = %d", r);
		uint8_t *buf = malloc(8 << 20);
		cr_assert_eq(qcow_read(q, buf, 8 << 20, 0), 8 << 20);
		for (size_t i = 0; i < (8u << 20); i++)
			cr_assert_eq(buf[i], 0, "cb %u: byte %zu of a new image is %#x", cb, i, buf[i]);
		memset(buf, 0x12, 100000);
		cr_assert_eq(qcow_write(q, buf, 100000, 5000), 100000);
		const char *m = qt_check_open(q, be, false);
		cr_expect(!m, "cb %u created over garbage: %s", cb, m);
		qcow_close(q);
		free(buf);
		free(garbage);
	}
}

Test(create, zero_size)
{
	struct qcow_create_opts c = { .size = 0 };
	struct qcow_backend be;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_backend_mem(&be, NULL, 0), 0);
	int r = qcow_create(&q, be, &c, NULL);
	if (r < 0) {
		cr_expect_eq(r, -EINVAL);
		be.ops->close(be.h);
		return;
	}
	cr_expect_eq(qcow_size(q), 0);
	uint8_t b[10];
	cr_expect_eq(qcow_read(q, b, 10, 0), 0);
	cr_expect_eq(qcow_write(q, b, 1, 0), -ENOSPC);
	cr_assert_eq(qcow_resize(q, 1 << 20), 0);
	memset(b, 3, sizeof b);
	cr_expect_eq(qcow_write(q, b, 10, (1 << 20) - 10), 10);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	qcow_close(q);
}

/* Tiny images (a sector) with every cluster size extreme, resized around. */
Test(mirror, tiny_images)
{
	unsigned cbs[] = { 9, 13, 16, 21 };
	for (size_t k = 0; k < sizeof cbs / sizeof *cbs; k++) {
		struct qcow_create_opts c = { .size = 512, .cluster_bits = cbs[k] };
		struct qcow_backend be;
		struct qcow *q = qt_create_mem(&c, &be);
		cr_assert(q, "create 512-byte image, cb %u", cbs[k]);
		struct qt_mirror mi;
		qt_mirror_init(&mi, q, be, 512, 8192, 300 + k);
		mi.resize = true;
		mi.check_every = true;
		mi.max_len = 3000;
		for (unsigned i = 0; i < 600; i++)
			if (qt_mirror_step(&mi))
				cr_assert_fail("tiny image cb %u: %s", cbs[k], mi.err);
		cr_assert(!qt_mirror_verify(&mi), "tiny image cb %u: %s", cbs[k], mi.err);
		const char *m = qt_check_open(q, be, false);
		cr_assert(!m, "tiny image cb %u: %s", cbs[k], m);
		qcow_close(q);
		qt_mirror_fini(&mi);
	}
}

/* Zeros written where no L2 table exists allocate no table (mkfs.xfs zeroes
 * the last 128 KiB of the disk); a zero-then-data buffer allocates only the
 * table its data needs, and everything reads back. */
Test(rw, zeros_need_no_l2_table)
{
	struct qcow_create_opts c = { .size = 4ull << 30, .cluster_bits = 16 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	size_t before, after;
	free(qt_mem_copy(be, &before));
	uint64_t big = 1ull << 20;
	uint8_t *buf = calloc(1, big);
	cr_assert(buf);
	cr_assert_eq(qcow_write(q, buf, 128 << 10, (4ull << 30) - (128 << 10)), 128 << 10);
	cr_assert_eq(qcow_write(q, buf, big, 1ull << 30), (ssize_t)big);
	cr_assert_eq(qcow_flush(q), 0);
	uint8_t *img = qt_mem_copy(be, &after);
	uint64_t l1 = qt_be64(img + QH_L1_OFF);
	for (unsigned i = 0; i < 8; i++)
		cr_expect_eq(qt_be64(img + l1 + 8 * i), 0, "L1[%u] got a table for zeros", i);
	cr_expect_eq(after, before, "image grew from %zu to %zu bytes for zeros", before, after);
	free(img);
	/* 512 MiB covered by one table: zeros in its first half, data at its end */
	buf[big - 1] = 0x5a;
	cr_assert_eq(qcow_write(q, buf, big, (2ull << 30) - big), (ssize_t)big);
	memset(buf, 0xff, big);
	cr_assert_eq(qcow_read(q, buf, big, (2ull << 30) - big), (ssize_t)big);
	cr_expect_eq(buf[big - 1], 0x5a);
	cr_expect_eq(buf[0], 0);
	cr_assert_eq(qcow_flush(q), 0);
	img = qt_mem_copy(be, &after);
	l1 = qt_be64(img + QH_L1_OFF);
	cr_expect_neq(qt_be64(img + l1 + 8 * 3), 0, "the data's table is missing");
	cr_expect_eq(qt_be64(img + l1 + 8 * 2), 0);
	free(img);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	qcow_close(q);
	free(buf);
}
