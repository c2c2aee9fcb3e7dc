/*
 * test_threads.c - several threads on one image.  Threads own interleaved
 * 512-byte sectors of the same clusters, so every write is a partial-
 * cluster read-modify-write racing with the others' allocations: without
 * one lock per image, sectors get lost.  Another thread maps, reads and
 * flushes concurrently.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "qt.h"

#define NT 4
#define SIZE (4u << 20)

struct targ {
	struct qcow *q;
	unsigned id, cb;
	uint64_t size; /* image size, for the flush/map/read/info thread */
	int err;
	char msg[600];
};

static uint8_t sector_byte(unsigned id, uint64_t sector, unsigned gen)
{
	return (uint8_t)(1 + id * 37 + sector * 11 + gen * 101);
}

static void *writer(void *p)
{
	struct targ *t = p;
	uint8_t buf[512];
	uint64_t rng = t->id + 1;
	for (unsigned gen = 0; gen < 3; gen++)
		for (uint64_t s = t->id; s < SIZE / 512; s += NT) {
			if (qt_below(&rng, 3) == 0 && gen < 2)
				continue; /* leave some sectors for the next generation */
			memset(buf, sector_byte(t->id, s, gen), sizeof buf);
			ssize_t r = qcow_write(t->q, buf, 512, s * 512);
			if (r != 512) {
				t->err = 1;
				snprintf(t->msg, sizeof t->msg, "write sector %llu = %zd",
					 (unsigned long long)s, r);
				return NULL;
			}
			if (qt_below(&rng, 8) == 0) {
				uint8_t rd[512];
				if (qcow_read(t->q, rd, 512, s * 512) != 512 || memcmp(rd, buf, 512)) {
					t->err = 1;
					snprintf(t->msg, sizeof t->msg, "read back sector %llu",
						 (unsigned long long)s);
					return NULL;
				}
			}
		}
	/* final pass: every owned sector gets generation 3 */
	for (uint64_t s = t->id; s < SIZE / 512; s += NT) {
		memset(buf, sector_byte(t->id, s, 3), sizeof buf);
		if (qcow_write(t->q, buf, 512, s * 512) != 512) {
			t->err = 1;
			snprintf(t->msg, sizeof t->msg, "final write sector %llu",
				 (unsigned long long)s);
			return NULL;
		}
	}
	return NULL;
}

static volatile int stop;

static void *other(void *p)
{
	struct targ *t = p;
	uint64_t rng = 99;
	uint8_t *buf = malloc(1 << 16);
	while (!stop) {
		uint64_t off = qt_below(&rng, t->size - (1 << 16));
		struct qcow_extent e;
		switch (qt_below(&rng, 4)) {
		case 0:
			if (qcow_flush(t->q) < 0)
				t->err = 1;
			break;
		case 1:
			if (qcow_map(t->q, off, 1 << 16, &e) < 0 || e.len == 0)
				t->err = 1;
			break;
		case 2: { /* zero/discard a range nobody owns? none: discard ranges
			   * before the writers' final pass would lose data, so only
			   * read here */
			if (qcow_read(t->q, buf, 1 << 16, off) != 1 << 16)
				t->err = 1;
			break;
		}
		default: {
			struct qcow_info info;
			if (qcow_info(t->q, &info) < 0 || info.size != t->size)
				t->err = 1;
		}
		}
		if (t->err) {
			snprintf(t->msg, sizeof t->msg, "concurrent flush/map/read/info failed");
			break;
		}
	}
	free(buf);
	return NULL;
}

static void run(unsigned cb, unsigned order)
{
	struct qcow_create_opts c = { .size = SIZE, .cluster_bits = cb,
				      .refcount_bits = 1u << order };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	pthread_t th[NT + 1];
	struct targ t[NT + 1];
	stop = 0;
	for (unsigned i = 0; i <= NT; i++) {
		t[i] = (struct targ){ .q = q, .id = i, .cb = cb, .size = SIZE };
		pthread_create(&th[i], NULL, i < NT ? writer : other, &t[i]);
	}
	for (unsigned i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	stop = 1;
	pthread_join(th[NT], NULL);
	for (unsigned i = 0; i <= NT; i++)
		cr_assert(!t[i].err, "cb %u thread %u: %s", cb, i, t[i].msg);
	uint8_t *all = malloc(SIZE);
	cr_assert_eq(qcow_read(q, all, SIZE, 0), SIZE);
	for (uint64_t s = 0; s < SIZE / 512; s++)
		for (unsigned k = 0; k < 512; k += 511)
			cr_assert_eq(all[s * 512 + k], sector_byte(s % NT, s, 3),
				     "cb %u: sector %llu byte %u lost: %#x want %#x", cb,
				     (unsigned long long)s, k, all[s * 512 + k],
				     sector_byte(s % NT, s, 3));
	free(all);
	const char *m = qt_check_open(q, be, false);
	cr_assert(!m, "cb %u after threads: %s", cb, m);
	qcow_close(q);
}

Test(threads, shared_clusters_64k) { run(16, 4); }
Test(threads, shared_clusters_4k_rb1) { run(12, 0); }
Test(threads, shared_clusters_512_rb64) { run(9, 6); }

/* Several threads each on their own image at once (no shared state). */
static void *own_image(void *p)
{
	struct targ *t = p;
	struct qcow_create_opts c = { .size = 1 << 20, .cluster_bits = 9 + t->id * 3 };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	if (!q) {
		t->err = 1;
		return NULL;
	}
	struct qt_mirror m;
	qt_mirror_init(&m, q, be, c.size, c.size, t->id);
	for (int i = 0; i < 500 && !t->err; i++)
		if (qt_mirror_step(&m)) {
			t->err = 1;
			snprintf(t->msg, sizeof t->msg, "%s", m.err);
		}
	qt_mirror_fini(&m);
	qcow_close(q);
	return NULL;
}

Test(threads, separate_images)
{
	pthread_t th[NT];
	struct targ t[NT];
	for (unsigned i = 0; i < NT; i++) {
		t[i] = (struct targ){ .id = i };
		pthread_create(&th[i], NULL, own_image, &t[i]);
	}
	for (unsigned i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		cr_expect(!t[i].err, "thread %u: %s", i, t[i].msg);
	}
}

/* Every thread runs random writes, zero-writes, discards and reads on its
 * own region (mirrored privately) while the regions share L2 tables and
 * refcount blocks; tiny caches force constant eviction. */
struct region_arg {
	struct qcow *q;
	uint64_t base, len;
	unsigned id, cs;
	int err;
	char msg[300];
};

static void *region_worker(void *p)
{
	struct region_arg *a = p;
	uint8_t *flat = calloc(a->len, 1), *buf = malloc(3 * a->cs + 1000), *rd = malloc(3 * a->cs + 1000);
	uint64_t rng = a->id * 7 + 3;
	for (int i = 0; i < 1500 && !a->err; i++) {
		uint64_t off = qt_below(&rng, a->len), n = 1 + qt_below(&rng, 3 * a->cs + 1000);
		if (qt_below(&rng, 2))
			off -= off % a->cs;
		if (n > a->len - off)
			n = a->len - off;
		uint64_t k = qt_below(&rng, 10);
		long r;
		if (k < 4) {
			qt_fill_pattern(buf, n, qt_rng(&rng));
			r = qcow_write(a->q, buf, n, a->base + off);
			if (r == (long)n)
				memcpy(flat + off, buf, n);
		} else if (k < 6) {
			r = qcow_zero(a->q, a->base + off, n, k == 5 ? QCOW_ZERO_UNMAP : 0);
			if (r == 0) {
				memset(flat + off, 0, n);
				r = (long)n;
			}
		} else {
			r = qcow_read(a->q, rd, n, a->base + off);
			if (r == (long)n && memcmp(rd, flat + off, n)) {
				a->err = 1;
				snprintf(a->msg, sizeof a->msg, "thread %u op %d: read %#llx+%llu differs",
					 a->id, i, (unsigned long long)(a->base + off),
					 (unsigned long long)n);
			}
		}
		if (r != (long)n && !a->err) {
			a->err = 1;
			snprintf(a->msg, sizeof a->msg, "thread %u op %d (kind %llu) = %ld", a->id, i,
				 (unsigned long long)k, r);
		}
	}
	if (!a->err) {
		uint8_t *all = malloc(a->len);
		if (qcow_read(a->q, all, a->len, a->base) != (ssize_t)a->len || memcmp(all, flat, a->len)) {
			a->err = 1;
			snprintf(a->msg, sizeof a->msg, "thread %u: final contents differ", a->id);
		}
		free(all);
	}
	free(flat);
	free(buf);
	free(rd);
	return NULL;
}

static void regions(unsigned cb, unsigned order, bool tiny)
{
	uint64_t cs = 1ull << cb, rlen = 96 * cs < (1u << 20) ? 96 * cs : 1u << 20;
	struct qcow_create_opts c = { .size = NT * rlen, .cluster_bits = cb,
				      .refcount_bits = 1u << order };
	struct qcow_opts o = { 0 };
	if (tiny)
		o.l2_cache_bytes = o.refblock_cache_bytes = 1;
	struct qcow_backend be;
	struct qcow *q = qt_create_mem_opts(&c, &o, &be);
	cr_assert(q);
	pthread_t th[NT + 1];
	struct region_arg a[NT];
	struct targ fl = { .q = q, .id = NT, .size = NT * rlen };
	stop = 0;
	for (unsigned i = 0; i < NT; i++) {
		a[i] = (struct region_arg){ .q = q, .base = i * rlen, .len = rlen, .id = i,
					    .cs = (unsigned)cs };
		pthread_create(&th[i], NULL, region_worker, &a[i]);
	}
	pthread_create(&th[NT], NULL, other, &fl);
	for (unsigned i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	stop = 1;
	pthread_join(th[NT], NULL);
	for (unsigned i = 0; i < NT; i++)
		cr_expect(!a[i].err, "cb %u%s: %s", cb, tiny ? " tiny caches" : "", a[i].msg);
	cr_expect(!fl.err, "cb %u: %s", cb, fl.msg);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "cb %u after concurrent regions: %s", cb, m);
	qcow_close(q);
}

Test(threads, regions_512_rb1_tiny) { regions(9, 0, true); }
Test(threads, regions_4k_rb16) { regions(12, 4, false); }
Test(threads, regions_64k_rb64_tiny) { regions(16, 6, true); }
