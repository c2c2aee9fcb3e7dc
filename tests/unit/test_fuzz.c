/*
 * test_fuzz.c - a small deterministic fuzzer: valid images with a few
 * bytes of their metadata (header, extensions, L1, L2, refcount table and
 * blocks) mutated, then opened read-write and read-only and driven with
 * reads, writes, zero-writes, discards, resizes and flushes.  Whatever the
 * result codes, there must be no crash, no sanitizer report, no hang, no
 * huge allocation; errors must be negative errno values; a read-only open
 * must never write.
 */
#include <criterion/criterion.h>

#include "qt.h"

struct regions {
	uint64_t l1, l1_len, rt, rt_len, l2[8], rb[8];
	unsigned nl2, nrb, cs;
};

static void find_regions(const uint8_t *img, size_t len, struct regions *r)
{
	memset(r, 0, sizeof *r);
	r->cs = 1u << qt_be32(img + QH_CLUSTER_BITS);
	r->l1 = qt_be64(img + QH_L1_OFF);
	r->l1_len = 8ull * qt_be32(img + QH_L1_SIZE);
	r->rt = qt_be64(img + QH_RT_OFF);
	r->rt_len = (uint64_t)qt_be32(img + QH_RT_CLUSTERS) * r->cs;
	for (uint64_t i = 0; i < r->l1_len / 8 && r->nl2 < 8; i++) {
		uint64_t o = qt_be64(img + r->l1 + 8 * i) & 0x00fffffffffffe00ull;
		if (o && o + r->cs <= len)
			r->l2[r->nl2++] = o;
	}
	for (uint64_t i = 0; i < r->rt_len / 8 && r->nrb < 8; i++) {
		uint64_t o = qt_be64(img + r->rt + 8 * i) & ~511ull;
		if (o && o + r->cs <= len)
			r->rb[r->nrb++] = o;
	}
}

static uint8_t *seed_image(unsigned cb, unsigned version, unsigned rbits, size_t *len)
{
	struct qcow_create_opts c = { .size = 3 << 20, .cluster_bits = cb, .version = version,
				      .refcount_bits = rbits };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	struct qt_mirror m;
	qt_mirror_init(&m, q, be, c.size, c.size, cb);
	for (int i = 0; i < 150; i++)
		cr_assert(!qt_mirror_step(&m), "%s", m.err);
	qt_mirror_fini(&m);
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *img = qt_mem_copy(be, len);
	qcow_close(q);
	return img;
}

static void mutate(uint8_t *img, size_t len, const struct regions *r, uint64_t *rng)
{
	unsigned n = 1 + (unsigned)qt_below(rng, 4);
	for (unsigned k = 0; k < n; k++) {
		uint64_t base, span;
		switch (qt_below(rng, 6)) {
		case 0: base = 0; span = 112; break;
		case 1: base = 104; span = 400; break; /* extension area */
		case 2: base = r->l1; span = r->l1_len; break;
		case 3: base = r->nl2 ? r->l2[qt_below(rng, r->nl2)] : 0; span = r->cs; break;
		case 4: base = r->rt; span = r->rt_len < 4096 ? r->rt_len : 4096; break;
		default: base = r->nrb ? r->rb[qt_below(rng, r->nrb)] : 0; span = r->cs; break;
		}
		if (!span || base >= len)
			continue;
		if (base + span > len)
			span = len - base;
		uint64_t off = base + qt_below(rng, span);
		switch (qt_below(rng, 5)) {
		case 0: img[off] = (uint8_t)qt_rng(rng); break;
		case 1: img[off] ^= (uint8_t)(1u << qt_below(rng, 8)); break;
		case 2: img[off] = 0xff; break;
		default: {
			off &= ~7ull;
			if (off + 8 > len)
				break;
			uint64_t v;
			switch (qt_below(rng, 4)) {
			case 0: v = qt_below(rng, len / r->cs + 4) * r->cs; break; /* plausible offset */
			case 1: v = qt_rng(rng); break;
			case 2: v = (qt_below(rng, len / r->cs + 4) * r->cs) | 1ull << 63; break;
			default: v = 1ull << qt_below(rng, 64); break;
			}
			qt_put64(img + off, v);
		}
		}
	}
}

static void drive(struct qcow *q, uint64_t *rng)
{
	uint8_t *buf = malloc(200000);
	memset(buf, 0x5a, 200000);
	for (int i = 0; i < 25; i++) {
		uint64_t size = qcow_size(q), off = size ? qt_below(rng, size) : 0;
		size_t n = 1 + (size_t)qt_below(rng, 150000);
		long r = 0;
		switch (qt_below(rng, 7)) {
		case 0: case 1: r = qcow_read(q, buf, n, off); break;
		case 2: case 3:
			if (off + n > size)
				n = size > off ? size - off : 0;
			r = qcow_write(q, buf, n, off);
			break;
		case 4: r = qcow_zero(q, off, n < size - off ? n : size - off, (unsigned)qt_below(rng, 2)); break;
		case 5: {
			struct qcow_extent e;
			r = qcow_map(q, off, n, &e);
			if (r == 0)
				cr_assert_leq(e.len, n);
			break;
		}
		default:
			r = qt_below(rng, 4) ? qcow_flush(q) : qcow_resize(q, qt_below(rng, 8 << 20) & ~511ull);
		}
		cr_assert(r >= -4095, "result %ld is not -errno", r);
	}
	free(buf);
}

static void fuzz(unsigned cb, unsigned version, unsigned rbits, unsigned iters)
{
	size_t len;
	uint8_t *orig = seed_image(cb, version, rbits, &len);
	struct regions reg;
	find_regions(orig, len, &reg);
	uint8_t *img = malloc(len);
	uint64_t rng = cb * 1000 + version * 10 + rbits;
	unsigned opened = 0;
	for (unsigned it = 0; it < iters; it++) {
		memcpy(img, orig, len);
		mutate(img, len, &reg, &rng);
		for (int ro = 1; ro >= 0; ro--) {
			struct qt_fault f = { 0 };
			cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
			struct qcow *q = NULL;
			struct qcow_opts o = { .flags = ro ? QCOW_RDONLY : 0 };
			int r = qcow_open(&q, qt_fault_backend(&f), &o);
			cr_assert(r <= 0 && r >= -4095, "open = %d", r);
			if (r == 0) {
				opened++;
				drive(q, &rng);
				qcow_close(q);
			}
			if (ro) {
				size_t n;
				const void *d = qcow_backend_mem_data(f.inner, &n);
				cr_assert(n == len && !memcmp(d, img, len) && !f.count[QT_PWRITE],
					  "iteration %u: a read-only open wrote to the image", it);
			}
			f.inner.ops->close(f.inner.h);
		}
	}
	cr_expect_gt(opened, iters / 10, "only %u of %u mutated images opened: weak fuzzing", opened,
		     iters);
	free(img);
	free(orig);
}

Test(fuzz, v3_4k_rb16) { fuzz(12, 3, 16, qt_reps(300, 1500)); }
Test(fuzz, v3_512_rb1) { fuzz(9, 3, 1, qt_reps(200, 1000)); }
Test(fuzz, v3_64k_rb64) { fuzz(16, 3, 64, qt_reps(160, 800)); }
Test(fuzz, v2_4k) { fuzz(12, 2, 16, qt_reps(200, 1000)); }
