/*
 * test_crash.c - power cuts at random points of random workloads (SQLite
 * test6 model, see qt_crash.c): what reached the backend since the last
 * flush survives as a random in-order subset with torn sectors.  After the
 * crash the image must open read-write, show no corruption (leaked
 * clusters are allowed: qemu-img check exit 3), and every byte that was
 * flushed and not touched since must read back intact.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "qt.h"

struct crash_geo {
	unsigned cb, order, version;
	bool tiny_cache; /* minimal L2 and refblock caches: eviction write-back */
	bool lazy;       /* lazy refcounts: a crash may leave a dirty image */
	bool publish;    /* qcow_publish after every write, as the shim does for readers */
};

static void one_crash(const struct crash_geo *g, uint64_t seed)
{
	uint64_t cs = 1ull << g->cb, size = 48 * cs < (1u << 20) ? 1u << 20 : 48 * cs;
	struct qcow_create_opts c = { .size = size, .cluster_bits = g->cb, .version = g->version,
				      .refcount_bits = 1u << g->order, .lazy_refcounts = g->lazy };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	struct qt_track t;
	qt_track_init(&t, size);
	t.publish = g->publish;
	/* some initial flushed content */
	uint64_t rng = seed;
	qt_fill_pattern(t.flat, size / 3, seed);
	cr_assert_eq(qcow_write(q, t.flat, size / 3, 0), (ssize_t)(size / 3));
	size_t len;
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *img = qt_mem_copy(mbe, &len);
	qcow_close(q);

	struct qt_crash *cr = qt_crash_new(img, len);
	struct qcow_opts o = { 0 };
	if (g->tiny_cache)
		o.l2_cache_bytes = o.refblock_cache_bytes = 1;
	int r = qcow_open(&q, qt_crash_backend(cr), &o);
	cr_assert_eq(r, 0, "open on the crash backend = %d", r);
	unsigned nops = 5 + (unsigned)qt_below(&rng, 60);
	if (qt_track_run(&t, q, (unsigned)cs, seed, nops))
		cr_assert_fail("cb %u rb %u%s seed %llu: %s", g->cb, 1u << g->order,
			       g->tiny_cache ? " tiny cache" : "", (unsigned long long)seed, t.err);
	cr_assert_eq(t.errors, 0, "cb %u seed %llu: %lu ops failed before the crash", g->cb,
		     (unsigned long long)seed, t.errors);
	size_t clen;
	uint8_t *after = qt_crash_now(cr, qt_rng(&rng), &clen);
	qcow_close(q); /* fails: the backend is dead */
	qt_crash_free(cr);

	struct qt_check chk;
	cr_assert_eq(qt_check_image(after, clen, &chk), 0, "cb %u rb %u seed %llu: %s", g->cb,
		     1u << g->order, (unsigned long long)seed, chk.msg);
	/* a dirty (lazy-refcount) image may have stale refcounts: repaired on open/write */
	if (!chk.dirty)
		cr_expect_eq(chk.errors, 0, "cb %u rb %u v%u%s seed %llu: corruption after crash: %s", g->cb,
		     1u << g->order, g->version, g->tiny_cache ? " tiny cache" : "",
		     (unsigned long long)seed, chk.msg);
	int err;
	q = qt_open_mem(after, clen, 0, &mbe, &err);
	cr_assert(q, "cb %u seed %llu: reopen after crash = %d", g->cb, (unsigned long long)seed,
		  err);
	if (qt_track_verify(&t, q, false))
		cr_assert_fail("cb %u rb %u v%u seed %llu: %s", g->cb, 1u << g->order, g->version,
			       (unsigned long long)seed, t.err);
	/* the recovered image keeps working */
	uint8_t buf[1000];
	memset(buf, 0x6b, sizeof buf);
	cr_expect_eq(qcow_write(q, buf, sizeof buf, size / 2 + 3), 1000);
	const char *m = qt_check_open(q, mbe, true);
	cr_expect(!m, "cb %u%s seed %llu: after crash + write: %s", g->cb, g->lazy ? " lazy" : "",
		  (unsigned long long)seed, m);
	qcow_close(q);
	free(after);
	free(img);
	qt_track_fini(&t);
}

ParameterizedTestParameters(crash, seeds)
{
	static struct crash_geo g[] = {
		{ 9, 4, 3, false, false, false },  { 9, 0, 3, false, false, false },  { 9, 6, 3, false, false, false },
		{ 12, 4, 3, false, false, false }, { 12, 1, 3, false, false, false }, { 12, 4, 2, false, false, false },
		{ 16, 4, 3, false, false, false }, { 16, 3, 3, false, false, false }, { 16, 4, 2, false, false, false },
		{ 18, 2, 3, false, false, false }, { 9, 4, 3, true, false, false },   { 12, 0, 3, true, false, false },
		{ 12, 4, 2, true, false, false },  { 12, 4, 3, false, true, false }, { 9, 6, 3, false, true, false },
		{ 16, 4, 3, true, true, false },
		{ 9, 4, 3, false, false, true }, { 12, 4, 3, false, false, true },
		{ 12, 4, 2, true, false, true }, { 16, 4, 3, false, false, true },
	};
	return cr_make_param_array(struct crash_geo, g, sizeof g / sizeof *g);
}

ParameterizedTest(struct crash_geo *g, crash, seeds)
{
	unsigned n = g->cb >= 18 ? qt_reps(2, 20) : g->cb >= 16 ? qt_reps(4, 40) : qt_reps(10, 100);
	for (uint64_t seed = 1; seed <= n; seed++)
		one_crash(g, seed * 1000 + g->cb * 10 + g->order);
}

/* Crashes around resizes: L1 growth (relocation to a multi-cluster L1 with
 * 512 B clusters) and shrinking.  The size after the crash is the old or
 * the new one; no corruption; data below both sizes that was flushed
 * before the resize is intact. */
static void resize_crash(uint64_t seed, bool grow)
{
	uint64_t rng = seed;
	uint64_t small = 1 << 20, big = 16 << 20;
	struct qcow_create_opts c = { .size = grow ? small : big, .cluster_bits = 9,
				      .refcount_bits = 1u << qt_below(&rng, 7) };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	uint8_t *data = malloc(small);
	qt_fill_pattern(data, small, seed);
	cr_assert_eq(qcow_write(q, data, small, 0), (ssize_t)small);
	if (!grow) /* something past the cut, freed by the shrink */
		cr_assert_eq(qcow_write(q, data, small, big - small), (ssize_t)small);
	cr_assert_eq(qcow_checkpoint(q), 0);
	size_t len;
	uint8_t *img = qt_mem_copy(mbe, &len);
	qcow_close(q);

	struct qt_crash *cr = qt_crash_new(img, len);
	cr_assert_eq(qcow_open(&q, qt_crash_backend(cr), NULL), 0);
	uint64_t ns = grow ? big : small;
	cr_assert_eq(qcow_resize(q, ns), 0);
	if (qt_below(&rng, 2)) {
		uint8_t b[700];
		memset(b, 0x3e, sizeof b);
		cr_assert_eq(qcow_write(q, b, sizeof b, ns - 700), 700);
	}
	if (qt_below(&rng, 3) == 0)
		qcow_flush(q);
	size_t clen;
	uint8_t *after = qt_crash_now(cr, qt_rng(&rng), &clen);
	qcow_close(q);
	qt_crash_free(cr);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(after, clen, &chk), 0, "seed %llu: %s", (unsigned long long)seed,
		     chk.msg);
	cr_expect_eq(chk.errors, 0, "%s crash, seed %llu: %s", grow ? "grow" : "shrink",
		     (unsigned long long)seed, chk.msg);
	int err;
	q = qt_open_mem(after, clen, 0, NULL, &err);
	cr_assert(q, "%s crash, seed %llu: reopen = %d", grow ? "grow" : "shrink",
		  (unsigned long long)seed, err);
	uint64_t sz = qcow_size(q);
	cr_expect(sz == small || sz == big, "size %llu after crash", (unsigned long long)sz);
	uint8_t *rd = malloc(small);
	cr_assert_eq(qcow_read(q, rd, small, 0), (ssize_t)small);
	/* the last 700 bytes below the new end may have been rewritten */
	cr_expect(!memcmp(rd, data, small - 700), "%s crash, seed %llu: flushed data damaged",
		  grow ? "grow" : "shrink", (unsigned long long)seed);
	qcow_close(q);
	free(rd);
	free(after);
	free(img);
	free(data);
}

Test(crash, l1_growth)
{
	for (uint64_t seed = 1; seed <= qt_reps(12, 60); seed++)
		resize_crash(seed, true);
}

Test(crash, shrink)
{
	for (uint64_t seed = 1; seed <= qt_reps(12, 60); seed++)
		resize_crash(seed, false);
}

/* Crashes while the refcount table grows: 512 B clusters, 64-bit
 * refcounts (64 clusters per refblock, 2 MiB per reftable cluster). */
Test(crash, reftable_growth)
{
	for (uint64_t seed = 1; seed <= qt_reps(4, 40); seed++) {
		struct qcow_create_opts c = { .size = 6 << 20, .cluster_bits = 9,
					      .refcount_bits = 64 };
		struct qcow_backend mbe;
		struct qcow *q = qt_create_mem(&c, &mbe);
		cr_assert(q);
		uint8_t *data = malloc(1 << 20);
		qt_fill_pattern(data, 1 << 20, seed);
		cr_assert_eq(qcow_write(q, data, 1 << 20, 0), 1 << 20);
		cr_assert_eq(qcow_checkpoint(q), 0);
		size_t len;
		uint8_t *img = qt_mem_copy(mbe, &len);
		qcow_close(q);
		struct qt_crash *cr = qt_crash_new(img, len);
		cr_assert_eq(qcow_open(&q, qt_crash_backend(cr), NULL), 0);
		/* 1.5 MiB more crosses the 2 MiB covered by the first reftable cluster */
		uint64_t rng = seed;
		uint8_t *more = malloc(3 << 19);
		qt_fill_pattern(more, 3 << 19, seed + 1);
		uint64_t cut = qt_below(&rng, 3 << 19);
		cr_assert_eq(qcow_write(q, more, cut, 2 << 20), (ssize_t)cut);
		if (qt_below(&rng, 2))
			qcow_flush(q);
		cr_assert_eq(qcow_write(q, more + cut, (3 << 19) - cut, (2 << 20) + cut),
			     (ssize_t)((3 << 19) - cut));
		size_t clen;
		uint8_t *after = qt_crash_now(cr, qt_rng(&rng), &clen);
		qcow_close(q);
		qt_crash_free(cr);
		struct qt_check chk;
		cr_assert_eq(qt_check_image(after, clen, &chk), 0, "%s", chk.msg);
		cr_expect_eq(chk.errors, 0, "reftable growth crash, seed %llu: %s",
			     (unsigned long long)seed, chk.msg);
		int err;
		q = qt_open_mem(after, clen, 0, NULL, &err);
		cr_assert(q, "seed %llu: reopen = %d", (unsigned long long)seed, err);
		uint8_t *rd = malloc(1 << 20);
		cr_assert_eq(qcow_read(q, rd, 1 << 20, 0), 1 << 20);
		cr_expect(!memcmp(rd, data, 1 << 20), "seed %llu: flushed data damaged",
			  (unsigned long long)seed);
		qcow_close(q);
		free(rd);
		free(more);
		free(data);
		free(after);
		free(img);
	}
}

/* Power cuts inside operations: a dry run counts the mutating backend calls
 * of a workload (including the final close), then the same workload runs
 * again with the cut just before call N, for N drawn at random: every
 * intermediate state of every operation (between internal flushes) is a
 * candidate. */
static uint8_t *base_for(const struct crash_geo *g, uint64_t seed, uint64_t *size,
			 struct qt_track *t, size_t *len)
{
	uint64_t cs = 1ull << g->cb;
	*size = 48 * cs < (1u << 20) ? 1u << 20 : 48 * cs;
	struct qcow_create_opts c = { .size = *size, .cluster_bits = g->cb, .version = g->version,
				      .refcount_bits = 1u << g->order, .lazy_refcounts = g->lazy };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	qt_track_init(t, *size);
	qt_fill_pattern(t->flat, *size / 3, seed);
	cr_assert_eq(qcow_write(q, t->flat, *size / 3, 0), (ssize_t)(*size / 3));
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *img = qt_mem_copy(mbe, len);
	qcow_close(q);
	return img;
}

static unsigned long run_workload(const struct crash_geo *g, struct qt_crash *cr, struct qt_track *t,
				  uint64_t seed, unsigned nops)
{
	struct qcow_opts o = { 0 };
	if (g->tiny_cache)
		o.l2_cache_bytes = o.refblock_cache_bytes = 1;
	struct qcow *q = NULL;
	if (qcow_open(&q, qt_crash_backend(cr), &o) == 0) {
		if (qt_track_run(t, q, 1u << g->cb, seed, nops))
			cr_assert_fail("cb %u seed %llu: %s", g->cb, (unsigned long long)seed, t->err);
		qcow_close(q);
	}
	return qt_crash_calls(cr);
}

static void mid_op_crash(const struct crash_geo *g, uint64_t seed)
{
	uint64_t size, rng = seed;
	size_t len;
	struct qt_track t;
	uint8_t *img = base_for(g, seed, &size, &t, &len);
	unsigned nops = 5 + (unsigned)qt_below(&rng, 40);
	struct qt_crash *cr = qt_crash_new(img, len);
	unsigned long total = run_workload(g, cr, &t, seed, nops);
	qt_crash_free(cr);
	qt_track_fini(&t);
	free(img);
	if (!total) /* a read-only workload: nothing to cut */
		return;
	img = base_for(g, seed, &size, &t, &len);
	unsigned long n = 1 + qt_below(&rng, total);
	cr = qt_crash_new(img, len);
	qt_crash_arm(cr, n, qt_rng(&rng));
	run_workload(g, cr, &t, seed, nops);
	size_t clen;
	uint8_t *after = qt_crash_result(cr, &clen);
	qt_crash_free(cr);
	cr_assert(after, "cb %u seed %llu: the cut at call %lu of %lu never happened", g->cb,
		  (unsigned long long)seed, n, total);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(after, clen, &chk), 0, "%s", chk.msg);
	if (!chk.dirty)
		cr_expect_eq(chk.errors, 0,
			     "cb %u rb %u v%u%s seed %llu, cut at call %lu/%lu: corruption: %s",
			     g->cb, 1u << g->order, g->version, g->tiny_cache ? " tiny cache" : "",
			     (unsigned long long)seed, n, total, chk.msg);
	int err;
	struct qcow_backend mbe;
	struct qcow *q = qt_open_mem(after, clen, 0, &mbe, &err);
	cr_assert(q, "cb %u seed %llu, cut at call %lu/%lu: reopen = %d", g->cb,
		  (unsigned long long)seed, n, total, err);
	if (qt_track_verify(&t, q, false))
		cr_assert_fail("cb %u rb %u v%u seed %llu, cut at call %lu/%lu: %s", g->cb,
			       1u << g->order, g->version, (unsigned long long)seed, n, total, t.err);
	uint8_t b[600];
	memset(b, 0x2d, sizeof b);
	cr_expect_eq(qcow_write(q, b, sizeof b, size / 2 + 9), 600);
	const char *m = qt_check_open(q, mbe, true);
	cr_expect(!m, "cb %u seed %llu, cut at %lu/%lu, after a write: %s", g->cb,
		  (unsigned long long)seed, n, total, m);
	qcow_close(q);
	free(after);
	free(img);
	qt_track_fini(&t);
}

ParameterizedTestParameters(crash, mid_op)
{
	static struct crash_geo g[] = {
		{ 9, 4, 3, false, false, false },  { 9, 6, 3, true, false, false },  { 12, 0, 3, false, false, false },
		{ 12, 4, 2, false, false, false }, { 12, 4, 3, true, false, false }, { 16, 4, 3, false, false, false },
		{ 12, 4, 3, false, true, false },
	};
	return cr_make_param_array(struct crash_geo, g, sizeof g / sizeof *g);
}

ParameterizedTest(struct crash_geo *g, crash, mid_op)
{
	unsigned n = g->cb >= 16 ? qt_reps(3, 30) : qt_reps(8, 80);
	for (uint64_t seed = 1; seed <= n; seed++)
		mid_op_crash(g, seed * 7777 + g->cb * 10 + g->order);
}

/*
 * Power cuts at every mutating call of the rebuild of a dirty image's
 * refcounts (qcow/repair.c), which a writable open runs first.  The new
 * refcount structures go past the end of the file and the header switches
 * to them in one write, so every cut leaves either the old dirty image (the
 * next writable open rebuilds again) or the rebuilt one; both must open
 * read-write, read back the data, take a write and check clean.
 */
static void repair_cuts(unsigned cb, unsigned order, uint64_t seed)
{
	uint64_t size = 4u << 20;
	struct qcow_create_opts c = { .size = size, .cluster_bits = cb, .version = 3,
				      .refcount_bits = 1u << order, .lazy_refcounts = true };
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	uint8_t *data = malloc(size / 3), *got = malloc(size / 3);
	qt_fill_pattern(data, size / 3, seed);
	cr_assert_eq(qcow_write(q, data, size / 3, 0), (ssize_t)(size / 3));
	cr_assert_eq(qcow_checkpoint(q), 0);
	size_t len;
	uint8_t *img = qt_mem_copy(mbe, &len);
	qcow_close(q);
	qt_make_stale(img, len, seed);

	/* the calls an uncut open makes: the rebuild, then the open's own */
	struct qt_crash *cr = qt_crash_new(img, len);
	cr_assert_eq(qcow_open(&q, qt_crash_backend(cr), &(struct qcow_opts){ 0 }), 0);
	unsigned long calls = qt_crash_calls(cr);
	qcow_close(q);
	qt_crash_free(cr);
	cr_assert_gt(calls, 3, "the open made %lu mutating calls: no rebuild?", calls);
	unsigned dirty = 0;
	for (unsigned long at = 1; at <= calls; at++) {
		cr = qt_crash_new(img, len);
		qt_crash_arm(cr, at, seed * 31 + at);
		if (qcow_open(&q, qt_crash_backend(cr), &(struct qcow_opts){ 0 }) == 0)
			qcow_close(q);
		size_t alen;
		uint8_t *after = qt_crash_result(cr, &alen);
		qt_crash_free(cr);
		cr_assert(after, "cb %u: no cut at call %lu of %lu", cb, at, calls);
		struct qt_check chk;
		cr_assert_eq(qt_check_image(after, alen, &chk), 0, "cb %u cut %lu: %s", cb, at, chk.msg);
		dirty += chk.dirty;
		cr_expect(chk.dirty || !chk.errors, "cb %u rb %u cut %lu/%lu: clean but corrupt: %s", cb,
			  1u << order, at, calls, chk.msg);
		int err;
		q = qt_open_mem(after, alen, 0, &mbe, &err);
		cr_assert(q, "cb %u cut %lu: reopen = %d", cb, at, err);
		cr_expect_eq(qcow_read(q, got, size / 3, 0), (ssize_t)(size / 3));
		cr_expect(!memcmp(got, data, size / 3), "cb %u cut %lu: data changed", cb, at);
		cr_expect_eq(qcow_write(q, data, 4096, size / 2), 4096);
		const char *m = qt_check_open(q, mbe, true);
		cr_expect(!m, "cb %u rb %u cut %lu/%lu: after reopen and a write: %s", cb, 1u << order,
			  at, calls, m);
		qcow_close(q);
		free(after);
	}
	cr_expect_gt(dirty, 0, "cb %u: no cut left the image dirty", cb);
	free(img);
	free(data);
	free(got);
}

Test(crash, repair_cut_at_every_call)
{
	static const unsigned geo[][2] = { { 9, 4 }, { 12, 0 }, { 12, 6 }, { 16, 4 }, { 21, 3 } };
	for (unsigned i = 0; i < sizeof geo / sizeof *geo; i++)
		for (uint64_t seed = 1; seed <= qt_reps(2, 8); seed++)
			repair_cuts(geo[i][0], geo[i][1], seed * 100 + i);
}
