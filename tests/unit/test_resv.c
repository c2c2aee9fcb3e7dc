/*
 * test_resv.c - the durable reservation (qcow/alloc.c): new clusters come
 * from a run whose refcounts were made durable ahead with pwrite_sync, so
 * a close needs no fdatasync and a flush needs one; writes that replace
 * old contents or reuse clusters inside the file still pay the barrier; the
 * run is given back at close; a failing durable write reaches the caller.
 * The crash model (test_crash, tests/stress/crashpoints) proves the order.
 */
#include <criterion/criterion.h>

#include "qt.h"

/* A memory backend that counts flushes and durable writes, and whose
 * close leaves the bytes to the test. */
struct counting {
	struct qcow_backend mem;
	unsigned long flushes, syncwrites;
	int fail_sync; /* -errno for pwrite_sync and flush */
};

static ssize_t k_pread(void *h, void *b, size_t n, uint64_t o)
{
	struct counting *k = h;
	return k->mem.ops->pread(k->mem.h, b, n, o);
}
static ssize_t k_pwrite(void *h, const void *b, size_t n, uint64_t o)
{
	struct counting *k = h;
	return k->mem.ops->pwrite(k->mem.h, b, n, o);
}
static ssize_t k_pwrite_sync(void *h, const void *b, size_t n, uint64_t o)
{
	struct counting *k = h;
	if (k->fail_sync)
		return k->fail_sync;
	k->syncwrites++;
	return k->mem.ops->pwrite(k->mem.h, b, n, o);
}
static int k_flush(void *h)
{
	struct counting *k = h;
	if (k->fail_sync)
		return k->fail_sync;
	k->flushes++;
	return k->mem.ops->flush(k->mem.h);
}
static int k_getsize(void *h, uint64_t *s)
{
	struct counting *k = h;
	return k->mem.ops->getsize(k->mem.h, s);
}
static int k_truncate(void *h, uint64_t s)
{
	struct counting *k = h;
	return k->mem.ops->truncate(k->mem.h, s);
}
static int k_punch(void *h, uint64_t o, uint64_t n)
{
	struct counting *k = h;
	return k->mem.ops->punch(k->mem.h, o, n);
}
static void k_close(void *h)
{
	(void)h;
}
static const struct qcow_backend_ops counting_ops = {
	k_pread, k_pwrite, k_flush, k_getsize, k_truncate, k_punch, k_close, k_pwrite_sync,
};

#define CB 16
#define CS (1u << CB)
#define SIZE (64u << 20)

static struct qcow *create(struct counting *k)
{
	memset(k, 0, sizeof *k);
	cr_assert_eq(qcow_backend_mem(&k->mem, NULL, 0), 0);
	struct qcow_create_opts c = {.size = SIZE, .cluster_bits = CB};
	struct qcow *q = NULL;
	cr_assert_eq(qcow_create(&q, (struct qcow_backend){&counting_ops, k}, &c, NULL), 0);
	return q;
}

static void expect_clean(struct counting *k, const char *what)
{
	size_t len;
	const uint8_t *img = qcow_backend_mem_data(k->mem, &len);
	struct qt_check c;
	cr_assert_eq(qt_check_image(img, len, &c), 0, "%s: %s", what, c.msg);
	cr_expect(c.errors == 0 && c.leaks == 0, "%s: %llu errors, %llu leaks: %s", what,
		  (unsigned long long)c.errors, (unsigned long long)c.leaks, c.msg);
}

/* Reopen the bytes left by close and compare with what was written. */
static void expect_contents(struct counting *k, const uint8_t *flat)
{
	size_t len;
	const uint8_t *img = qcow_backend_mem_data(k->mem, &len);
	int err;
	struct qcow *q = qt_open_mem(img, len, QCOW_RDONLY, NULL, &err);
	cr_assert(q, "reopen: %d", err);
	uint8_t *got = malloc(SIZE);
	cr_assert_eq(qcow_read(q, got, SIZE, 0), (ssize_t)SIZE);
	cr_expect(!memcmp(got, flat, SIZE), "contents differ after close");
	free(got);
	qcow_close(q);
}

/* Sequential and scattered writes into a fresh image: the close writes the
 * metadata back without one fdatasync; the image is clean and complete. */
Test(resv, fresh_writes_close_without_sync)
{
	struct counting k;
	struct qcow *q = create(&k);
	uint8_t *flat = calloc(1, SIZE);
	qt_fill_pattern(flat, 5u << 20, 11);
	cr_assert_eq(qcow_write(q, flat, 5u << 20, 0), 5 << 20);
	uint64_t rng = 5;
	for (int i = 0; i < 300; i++) {
		uint64_t off = qt_below(&rng, SIZE / 4096) * 4096;
		qt_fill_pattern(flat + off, 4096, (uint64_t)i);
		cr_assert_eq(qcow_write(q, flat + off, 4096, off), 4096);
	}
	struct qcow_info in;
	cr_assert_eq(qcow_info(q, &in), 0);
	cr_expect_gt(in.reserved_bytes, 0, "no reservation held");
	unsigned long before = k.flushes;
	cr_assert_eq(qcow_close(q), 0);
	cr_expect_eq(k.flushes, before, "close issued %lu fdatasyncs", k.flushes - before);
	cr_expect_gt(k.syncwrites, 0, "no durable writes: where did the refcounts go?");
	expect_clean(&k, "after close");
	expect_contents(&k, flat);
	k.mem.ops->close(k.mem.h);
	free(flat);
}

/* An fsync after fresh writes costs one fdatasync, not two. */
Test(resv, flush_is_one_sync)
{
	struct counting k;
	struct qcow *q = create(&k);
	uint8_t *buf = malloc(3 * CS);
	qt_fill_pattern(buf, 3 * CS, 3);
	cr_assert_eq(qcow_write(q, buf, 3 * CS, 7 * CS + 100), 3 * CS);
	unsigned long before = k.flushes;
	cr_assert_eq(qcow_flush(q), 0);
	cr_expect_eq(k.flushes - before, 1, "flush issued %lu fdatasyncs", k.flushes - before);
	before = k.flushes;
	cr_assert_eq(qcow_flush(q), 0);
	cr_expect_eq(k.flushes, before, "a flush with nothing new synced");
	cr_assert_eq(qcow_close(q), 0);
	expect_clean(&k, "after close");
	k.mem.ops->close(k.mem.h);
	free(buf);
}

/* Writes that replace contents the image held, or take a cluster freed
 * inside the file, make their data and refcounts durable before the L2
 * entry: their close still syncs. */
Test(resv, barrier_where_contents_are_replaced)
{
	struct counting k;
	struct qcow *q = create(&k);
	uint8_t buf[4096];
	uint8_t *big = malloc(4 * CS);
	qt_fill_pattern(big, 4 * CS, 9);
	cr_assert_eq(qcow_write(q, big, 4 * CS, 0), 4 * CS);
	cr_assert_eq(qcow_checkpoint(q), 0);

	/* a zero cluster that keeps its allocation, written in place */
	cr_assert_eq(qcow_zero(q, 0, CS, 0), 0);
	cr_assert_eq(qcow_flush(q), 0);
	memset(buf, 0x5c, sizeof buf);
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 100), (ssize_t)sizeof buf);
	unsigned long before = k.flushes;
	cr_assert_eq(qcow_flush(q), 0);
	cr_expect_eq(k.flushes - before, 2, "zero cluster written in place: %lu syncs, want 2",
		     k.flushes - before);

	/* a cluster freed inside the file, taken again */
	cr_assert_eq(qcow_zero(q, 2 * CS, CS, QCOW_ZERO_UNMAP), 0);
	cr_assert_eq(qcow_checkpoint(q), 0);
	cr_assert_eq(qcow_write(q, big, CS, 20 * CS), CS);
	before = k.flushes;
	cr_assert_eq(qcow_close(q), 0);
	cr_expect_gt(k.flushes, before, "a reused cluster's close did not sync");
	expect_clean(&k, "after close");
	k.mem.ops->close(k.mem.h);
	free(big);
}

/* What the run holds unused is given back: refcounts to 0 and the file cut
 * back to its last used cluster. */
Test(resv, rest_given_back_at_close)
{
	struct counting k;
	struct qcow *q = create(&k);
	uint8_t buf[4096] = {1};
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	struct qcow_info in;
	cr_assert_eq(qcow_info(q, &in), 0);
	size_t held, after;
	qcow_backend_mem_data(k.mem, &held);
	cr_expect_eq(held, in.reserved_offset + in.reserved_bytes,
		     "the reservation is not the tail of the file");
	cr_assert_eq(qcow_close(q), 0);
	qcow_backend_mem_data(k.mem, &after);
	cr_expect_eq(after, in.reserved_offset, "file %zu bytes after close, want %llu", after,
		     (unsigned long long)in.reserved_offset);
	expect_clean(&k, "after close");
	k.mem.ops->close(k.mem.h);
}

/* A host whose durable writes fail (a dying disk): the write that needed
 * the reservation fails with the host's error, the close syncs and fails
 * too, and the image stays consistent. */
Test(resv, failing_durable_write_reported)
{
	struct counting k;
	struct qcow *q = create(&k);
	cr_assert_eq(qcow_checkpoint(q), 0);
	k.fail_sync = -EIO;
	uint8_t buf[4096] = {2};
	cr_expect_eq(qcow_write(q, buf, sizeof buf, 0), -EIO);
	cr_expect_eq(qcow_close(q), -EIO, "close after a failed durable write");
	size_t len;
	const uint8_t *img = qcow_backend_mem_data(k.mem, &len);
	struct qt_check c;
	cr_assert_eq(qt_check_image(img, len, &c), 0, "%s", c.msg);
	cr_expect_eq(c.errors, 0, "%s", c.msg);
	k.mem.ops->close(k.mem.h);
}

/*
 * Power cuts after a close: a cluster zeroed with its allocation kept (it
 * still holds the old bytes on disk), flushed, then partly written.  The
 * entry loses its zero flag; without the data durable first, a cut that
 * kept the entry but not the data showed the old bytes where zeros had been
 * flushed.  Every cut must show zeros or the new bytes.
 */
Test(resv, zeroed_cluster_written_in_place_survives_cuts)
{
	struct qcow_create_opts c = {.size = 1 << 20, .cluster_bits = 12};
	struct qcow_backend mbe;
	struct qcow *q = qt_create_mem(&c, &mbe);
	cr_assert(q);
	uint8_t old[4096], neu[512], got[4096];
	memset(old, 0xaa, sizeof old);
	memset(neu, 0x5b, sizeof neu);
	cr_assert_eq(qcow_write(q, old, sizeof old, 8192), (ssize_t)sizeof old);
	cr_assert_eq(qcow_checkpoint(q), 0);
	size_t len;
	uint8_t *img = qt_mem_copy(mbe, &len);
	qcow_close(q);
	for (uint64_t seed = 1; seed <= 64; seed++) {
		struct qt_crash *cr = qt_crash_new(img, len);
		cr_assert_eq(qcow_open(&q, qt_crash_backend(cr), NULL), 0);
		cr_assert_eq(qcow_zero(q, 8192, 4096, 0), 0);
		cr_assert_eq(qcow_flush(q), 0);
		cr_assert_eq(qcow_write(q, neu, sizeof neu, 8192 + 1024), (ssize_t)sizeof neu);
		cr_assert_eq(qcow_close(q), 0);
		size_t clen;
		uint8_t *after = qt_crash_now(cr, seed, &clen);
		qt_crash_free(cr);
		int err;
		struct qcow *r = qt_open_mem(after, clen, QCOW_RDONLY, NULL, &err);
		cr_assert(r, "seed %llu: reopen = %d", (unsigned long long)seed, err);
		cr_assert_eq(qcow_read(r, got, sizeof got, 8192), (ssize_t)sizeof got);
		for (unsigned i = 0; i < sizeof got; i++) {
			bool written = i >= 1024 && i < 1024 + sizeof neu;
			cr_assert(got[i] == 0 || (written && got[i] == 0x5b),
				  "seed %llu: byte %u of the zeroed cluster is %#x after the cut",
				  (unsigned long long)seed, i, got[i]);
		}
		qcow_close(r);
		free(after);
	}
	free(img);
}
