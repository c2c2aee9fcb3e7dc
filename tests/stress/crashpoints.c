/*
 * crashpoints - power cuts at thousands of points of random workloads, every
 * geometry, judged by the project's own refcount walk (qt_check_image) and by
 * qemu-img check on the surviving bytes.
 *
 *   crashpoints [-n POINTS] [-q EVERY] [-s SEED] [-d DIR] [-p POINT] [-m CALLS]
 *   (-p: run only point number POINT of that seed, to replay a failure;
 *   -m: the cut's range as the failing run had grown it, see max_calls)
 *
 * Each point draws a geometry (cluster size 512 B..2 MiB, refcount width
 * 1..64, v2/v3, extended L2, lazy refcounts, minimal caches) and a workload:
 *   mix       random writes / zero writes / discards / reads / flushes
 *   resize    the same, interleaved with shrink-and-grow-back cycles
 *   l1grow    the image starts at 1 MiB and first grows past what one L1
 *             cluster covers (the L1 table is relocated)
 *   reftable  512 B clusters, 64-bit refcounts, a host file just under the
 *             2 MiB one refcount table cluster covers: 384 KiB of fresh
 *             writes first (the refcount table grows), then the mix
 * Half the lazy-refcount points start from a dirty image with stale
 * refcounts (make_stale), so the open's rebuild is cut too.
 * on the crash backend (tests/unit/qt_crash.c: the durable bytes plus a
 * random in-order subset of the writes since the last flush, torn at 512 B
 * sectors).  The cut is either armed at a random mutating backend call (inside
 * any operation, including the final close) or taken after the workload.
 * Then:
 *   - qt_check_image: no corruption (leaks allowed); a dirty lazy-refcount
 *     image may have stale refcounts and is judged after the library's repair
 *   - every EVERY-th point: qemu-img check on the bytes (exit 0 or 3), and
 *     qemu-img convert -O raw whose flushed bytes must match
 *   - the library reopens it read-write: every byte that was flushed and not
 *     touched since reads back; a new write works and leaves no corruption.
 * Exit 0 when every point passed; failing images are kept in DIR.
 */
#include <getopt.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qt.h"

enum work { W_MIX, W_RESIZE, W_L1GROW, W_REFTABLE, W_N };
static const char *work_name[W_N] = { "mix", "resize", "l1grow", "reftable" };

struct geo {
	unsigned cb, order, version;
	bool ext, lazy, tiny;
	enum work work;
	uint64_t size;  /* virtual size during the workload */
	uint64_t start; /* virtual size of the base image */
};

struct stats {
	unsigned long points, armed, at_end, qemu_checked, qemu_leaks, leaks, dirty, stale, fails;
	unsigned long by_cb[22], by_work[W_N], by_order[7], v2, ext;
	unsigned long rt_grew, l1_grew; /* the surviving header shows the growth */
	uint64_t stable_bytes;
};

static const char *dir = "/tmp";
static char tmp_img[4096], tmp_raw[4096];
/* The cut is drawn below 1.25 x the most mutating calls a workload of that
 * kind has made so far in this run: a replayed point needs the same -m. */
static unsigned long max_calls[W_N] = { 80, 80, 80, 80 };

static struct geo draw_geo(uint64_t *rng)
{
	struct geo g = { 0 };
	g.work = (enum work)qt_below(rng, W_N);
	g.cb = 9 + (unsigned)qt_below(rng, 13);
	g.version = qt_below(rng, 4) ? 3 : 2;
	g.order = g.version == 2 ? 4 : (unsigned)qt_below(rng, 7);
	g.ext = g.version == 3 && g.cb >= 14 && qt_below(rng, 3) == 0;
	g.lazy = g.version == 3 && qt_below(rng, 8) == 0;
	g.tiny = qt_below(rng, 4) == 0;
	uint64_t cs = 1ull << g.cb;
	g.size = 48 * cs < (1u << 20) ? 1u << 20 : 48 * cs;
	if (g.size > (16u << 20))
		g.size = 16u << 20;
	g.start = g.size;
	if (g.work == W_L1GROW) { /* one L1 cluster covers 2 MiB (512 B), 16 MiB (1 KiB) */
		g.cb = 9 + (unsigned)qt_below(rng, 2);
		g.ext = false;
		g.start = 1 << 20;
		g.size = g.cb == 9 ? 12 << 20 : 24 << 20;
	} else if (g.work == W_REFTABLE) {
		g.cb = 9;
		g.version = 3;
		g.order = 6;
		g.ext = false;
		g.size = g.start = 8 << 20;
	}
	return g;
}

static void describe(const struct geo *g, char *b, size_t n)
{
	snprintf(b, n, "%s cb %u rb %u v%u%s%s%s", work_name[g->work], g->cb, 1u << g->order,
		 g->version, g->ext ? " extended-l2" : "", g->lazy ? " lazy" : "",
		 g->tiny ? " tiny-cache" : "");
}

/* A flushed base image with the first third (eighth for reftable) written. */
static uint8_t *base_image(const struct geo *g, uint64_t seed, struct qt_track *t, size_t *len)
{
	struct qcow_create_opts c = { .size = g->start, .cluster_bits = g->cb, .version = g->version,
				      .refcount_bits = 1u << g->order, .extended_l2 = g->ext,
				      .lazy_refcounts = g->lazy };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	if (!q)
		return NULL;
	qt_track_init(t, g->size);
	/* reftable: the host file ends just below the 2 MiB one reftable cluster covers */
	uint64_t fill = g->work == W_REFTABLE ? (2u << 20) - (240u << 10) : g->start / 3;
	qt_fill_pattern(t->flat, fill, seed);
	uint8_t *img = NULL;
	if (qcow_write(q, t->flat, fill, 0) == (ssize_t)fill && qcow_flush(q) == 0)
		img = qt_mem_copy(be, len);
	qcow_close(q);
	return img;
}

/*
 * Half the lazy-refcount points start from what qemu leaves when it dies
 * with lazy refcounts (qt_make_stale).  The workload's open then rebuilds
 * the refcounts (qcow/repair.c), and the cut may land inside the rebuild.
 * Its own rng, so the other points' draws (and the replays in
 * t_stress_crash.sh) are those of a run without it.
 */
static bool make_stale(const struct geo *g, uint64_t seed, uint8_t *img, size_t len)
{
	uint64_t rng = seed ^ 0xd1e7ull;
	if (!g->lazy || qt_below(&rng, 2))
		return false;
	qt_make_stale(img, len, qt_rng(&rng));
	return true;
}

/* Shrink to a random size and grow back: [small, size) now reads as zeros.
 * false when a resize failed (only after the power cut: the backend is
 * dead and the virtual size may be the small one). */
static bool shrink_cycle(struct qcow *q, struct qt_track *t, uint64_t *rng)
{
	uint64_t small = qt_below(rng, t->size) & ~511ull;
	if (qcow_resize(q, small) < 0) { /* may have dropped part of the tail */
		qt_track_touch(t, small, t->size - small);
		t->errors++;
		memset(t->known + small, 0, t->size - small);
		memset(t->stable + small, 0, t->size - small);
		return false;
	}
	qt_track_touch(t, small, t->size - small);
	memset(t->flat + small, 0, t->size - small);
	memset(t->stable + small, 0, t->size - small);
	if (qcow_resize(q, t->size) < 0) {
		t->errors++;
		memset(t->known + small, 0, t->size - small);
		return false;
	}
	return true;
}

static int workload(const struct geo *g, struct qcow *q, struct qt_track *t, uint64_t seed,
		    unsigned nops)
{
	unsigned cs = 1u << g->cb;
	uint64_t rng = seed ^ 0x5eed;
	switch (g->work) {
	case W_L1GROW:
		if (qcow_resize(q, g->size) < 0) {
			t->errors++;
			return 0; /* cut: the size is still the small one */
		}
		return qt_track_run(t, q, cs, seed, nops);
	case W_RESIZE:
		for (unsigned k = 0; k < 3; k++) {
			if (qt_track_run(t, q, cs, seed + k, nops / 3 + 1))
				return -1;
			if (!shrink_cycle(q, t, &rng))
				return 0;
		}
		return 0;
	case W_REFTABLE: { /* 384 KiB into fresh clusters: past the reftable's coverage */
		uint64_t off = t->size / 2, n = 384u << 10;
		qt_track_touch(t, off, n);
		qt_fill_pattern(t->flat + off, n, seed + 3);
		memset(t->stable + off, 0, n);
		if (qcow_write(q, t->flat + off, n, off) != (ssize_t)n) {
			t->errors++;
			memset(t->known + off, 0, n);
		}
		return qt_track_run(t, q, cs, seed, nops);
	}
	default:
		return qt_track_run(t, q, cs, seed, nops);
	}
}

static int run(const char *cmd)
{
	int r = system(cmd);
	return r == -1 || !WIFEXITED(r) ? -1 : WEXITSTATUS(r);
}

static int write_file(const char *p, const uint8_t *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(b, 1, n, f);
	return fclose(f) == 0 && w == n ? 0 : -1;
}

/* qemu-img check (0 or 3) and convert: flushed bytes must match.  NULL or why not. */
static const char *qemu_judge(const uint8_t *img, size_t len, struct qt_track *t, bool *leaked)
{
	static char why[300];
	char cmd[9000];
	if (write_file(tmp_img, img, len))
		return "cannot write the temporary image";
	snprintf(cmd, sizeof cmd, "qemu-img check -q '%s' >/dev/null 2>&1", tmp_img);
	int rc = run(cmd);
	*leaked = rc == 3;
	if (rc != 0 && rc != 3) {
		snprintf(why, sizeof why, "qemu-img check exit %d", rc);
		return why;
	}
	snprintf(cmd, sizeof cmd, "qemu-img convert -q -f qcow2 -O raw '%s' '%s'", tmp_img, tmp_raw);
	if (run(cmd) != 0)
		return "qemu-img convert failed";
	FILE *f = fopen(tmp_raw, "rb");
	uint8_t *raw = calloc(1, t->size);
	size_t got = f ? fread(raw, 1, t->size, f) : 0;
	if (f)
		fclose(f);
	const char *res = NULL;
	for (uint64_t i = 0; i < t->size && !res; i++) /* a shrunk image reads zeros beyond */
		if (t->stable[i] && (i < got ? raw[i] : 0) != t->flat[i]) {
			snprintf(why, sizeof why, "qemu-img convert: flushed byte %#llx is %#x, want %#x",
				 (unsigned long long)i, i < got ? raw[i] : 0, t->flat[i]);
			res = why;
		}
	free(raw);
	return res;
}

static void save_failure(const uint8_t *img, size_t len, unsigned long point)
{
	char p[4200];
	if (!img)
		return;
	snprintf(p, sizeof p, "%s/crashpoint-%lu.qcow2", dir, point);
	if (write_file(p, img, len) == 0)
		fprintf(stderr, "  kept as %s\n", p);
}

#define FAIL(...)                                                                     \
	do {                                                                          \
		fprintf(stderr, "FAIL point %lu (%s, seed %llu, %s, replay: -p %lu -m %lu): ", \
			point, gd, (unsigned long long)seed, how, point, max_calls[g.work]); \
		fprintf(stderr, __VA_ARGS__);                                         \
		fputc('\n', stderr);                                                  \
		st->fails++;                                                          \
		save_failure(after, alen, point);                                    \
		goto out;                                                             \
	} while (0)

/* One crash point.  Judged on the surviving bytes. */
static void one_point(unsigned long point, uint64_t seed, bool with_qemu, struct stats *st)
{
	uint64_t rng = seed;
	struct geo g = draw_geo(&rng);
	char gd[160], how[80];
	describe(&g, gd, sizeof gd);
	struct qt_track t = { 0 };
	size_t len, alen = 0;
	uint8_t *after = NULL, *img = base_image(&g, seed, &t, &len);
	struct qcow *q = NULL;
	struct qt_crash *cr = NULL;
	struct qcow_backend mbe;
	snprintf(how, sizeof how, "base image");
	if (!img)
		FAIL("cannot build the base image");
	st->stale += make_stale(&g, seed, img, len);
	cr = qt_crash_new(img, len);
	bool armed = qt_below(&rng, 3) != 0;
	unsigned long at = 1 + qt_below(&rng, max_calls[g.work] + max_calls[g.work] / 4);
	if (armed)
		qt_crash_arm(cr, at, qt_rng(&rng));
	struct qcow_opts o = { 0 };
	if (g.tiny)
		o.l2_cache_bytes = o.refblock_cache_bytes = 1;
	unsigned nops = 5 + (unsigned)qt_below(&rng, 50);
	int r = qcow_open(&q, qt_crash_backend(cr), &o);
	if (r < 0 && !armed)
		FAIL("open on the crash backend = %d", r);
	if (r == 0 && workload(&g, q, &t, seed, nops))
		FAIL("wrong read before the crash: %s", t.err);
	if (armed && q) {
		qcow_close(q); /* the cut may land inside close's flush */
		q = NULL;
	}
	unsigned long calls = qt_crash_calls(cr);
	after = armed ? qt_crash_result(cr, &alen) : NULL;
	if (after) {
		st->armed++;
		snprintf(how, sizeof how, "cut before mutating call %lu", at);
	} else {
		if (t.errors)
			FAIL("%lu operations failed, but the power was never cut", t.errors);
		if (calls > max_calls[g.work])
			max_calls[g.work] = calls;
		after = qt_crash_now(cr, qt_rng(&rng), &alen);
		st->at_end++;
		snprintf(how, sizeof how, "cut after the workload (%lu calls)", calls);
		if (q && !armed)
			qcow_close(q); /* fails: the backend is dead */
		q = NULL;
	}
	qt_crash_free(cr);
	cr = NULL;
	struct qt_check chk;
	if (qt_check_image(after, alen, &chk) < 0)
		FAIL("own check cannot walk the image: %s", chk.msg);
	if (chk.dirty)
		st->dirty++;
	else if (chk.errors)
		FAIL("own check: corruption: %s", chk.msg);
	st->leaks += chk.leaks != 0;
	bool leaked;
	const char *why;
	if (with_qemu && !chk.dirty) {
		if ((why = qemu_judge(after, alen, &t, &leaked)))
			FAIL("%s", why);
		st->qemu_checked++;
		st->qemu_leaks += leaked;
	}
	int err;
	q = qt_open_mem(after, alen, 0, &mbe, &err);
	if (!q)
		FAIL("reopen after the crash = %d", err);
	if (qcow_size(q) != t.size && qcow_resize(q, t.size) < 0)
		FAIL("cannot grow back to the workload's size after the crash");
	if (qt_track_verify(&t, q, false))
		FAIL("%s", t.err);
	for (uint64_t i = 0; i < t.size; i++)
		st->stable_bytes += t.stable[i];
	uint8_t b[600];
	memset(b, 0x2d, sizeof b);
	if (qcow_write(q, b, sizeof b, t.size / 2 + 9) != 600)
		FAIL("write after the crash failed");
	if ((why = qt_check_open(q, mbe, true)))
		FAIL("after the crash and a write: %s", why);
	if (with_qemu && chk.dirty) { /* judged after the library's repair */
		size_t n;
		uint8_t *rep = qt_mem_copy(mbe, &n);
		memcpy(t.flat + t.size / 2 + 9, b, sizeof b);
		memset(t.stable + t.size / 2 + 9, 1, sizeof b);
		why = qemu_judge(rep, n, &t, &leaked);
		free(rep);
		if (why)
			FAIL("repaired lazy-refcount image: %s", why);
		st->qemu_checked++;
		st->qemu_leaks += leaked;
	}
	st->rt_grew += qt_be32(after + QH_RT_CLUSTERS) > qt_be32(img + QH_RT_CLUSTERS);
	st->l1_grew += qt_be64(after + QH_L1_OFF) != qt_be64(img + QH_L1_OFF);
	st->points++;
	st->by_cb[g.cb]++;
	st->by_work[g.work]++;
	st->by_order[g.order]++;
	st->v2 += g.version == 2;
	st->ext += g.ext;
out:
	if (q)
		qcow_close(q);
	qt_crash_free(cr);
	free(after);
	free(img);
	qt_track_fini(&t);
}

int main(int argc, char **argv)
{
	unsigned long n = 2000, every = 1, only = 0;
	uint64_t seed = 1;
	int c;
	while ((c = getopt(argc, argv, "n:q:s:d:p:m:")) != -1) {
		switch (c) {
		case 'n': n = strtoul(optarg, NULL, 0); break;
		case 'q': every = strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'd': dir = optarg; break;
		case 'p': only = strtoul(optarg, NULL, 0); break;
		case 'm':
			for (unsigned w = 0; w < W_N; w++)
				max_calls[w] = strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: crashpoints [-n POINTS] [-q EVERY] [-s SEED] [-d DIR] "
					"[-p POINT] [-m CALLS]\n");
			return 2;
		}
	}
	const char *tmpd = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(tmp_img, sizeof tmp_img, "%s/crashpoints-%d.qcow2", tmpd, (int)getpid());
	snprintf(tmp_raw, sizeof tmp_raw, "%s/crashpoints-%d.raw", tmpd, (int)getpid());
	struct stats st = { 0 };
	for (unsigned long i = only ? only : 1; i <= (only ? only : n); i++) {
		one_point(i, seed * 1000003 + i, every && i % every == 0, &st);
		if (i % 500 == 0 && i < n)
			fprintf(stderr, "crashpoints: %lu of %lu points, %lu failed\n", i, n, st.fails);
	}
	unlink(tmp_img);
	unlink(tmp_raw);
	printf("crashpoints: %lu points (seed %llu): %lu failed; %lu cut inside an operation, %lu "
	       "after the workload; %lu left leaks; %lu started dirty with stale refcounts (the "
	       "open rebuilds them), %lu survived dirty;"
	       " %lu judged by qemu-img check + convert (%lu exit 3); %llu MiB of flushed data "
	       "verified\n",
	       n, (unsigned long long)seed, st.fails, st.armed, st.at_end, st.leaks, st.stale, st.dirty,
	       st.qemu_checked, st.qemu_leaks, (unsigned long long)(st.stable_bytes >> 20));
	printf("  by cluster size:");
	for (unsigned b = 9; b <= 21; b++)
		printf(" %u:%lu", 1u << b, st.by_cb[b]);
	printf("\n  by refcount width:");
	for (unsigned o = 0; o <= 6; o++)
		printf(" %u:%lu", 1u << o, st.by_order[o]);
	printf("\n  by workload:");
	for (unsigned w = 0; w < W_N; w++)
		printf(" %s:%lu", work_name[w], st.by_work[w]);
	printf("\n  v2: %lu, extended L2: %lu; the surviving image has a grown refcount table: %lu,"
	       " a relocated L1 table: %lu\n", st.v2, st.ext, st.rt_grew, st.l1_grew);
	return st.fails ? 1 : 0;
}
