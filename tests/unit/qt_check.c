/*
 * qt_check.c - an independent consistency walk over an image's bytes, the
 * way `qemu-img check` does it: count every reference (header, L1, L2s,
 * data/compressed clusters, refcount table and blocks, snapshot table and
 * snapshot L1/L2s), read the stored refcounts, and compare:
 *   stored < referenced  -> error (corruption)
 *   stored > referenced  -> leak
 * plus COPIED flags of the active L1/L2 (set iff refcount == 1), reserved
 * bits, alignment, v2 zero flags, extended-L2 bitmap rules.
 * Never trusts the file: every offset is bounds-checked.  Bitmaps (directory,
 * tables, data) are walked when the bitmaps autoclear bit is set, as qemu
 * does; otherwise qemu ignores them and so does this walk.
 */
#include <stdarg.h>

#include "qt.h"

#define MAX_CLUSTERS (1ull << 26)
#define L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define RT_OFFSET_MASK 0xfffffffffffffe00ull
#define COPIED (1ull << 63)
#define COMPRESSED (1ull << 62)

struct walk {
	const uint8_t *img;
	size_t len;
	unsigned cb, rbits, l2_entsz, version;
	uint64_t cs, incompat;
	uint64_t *exp;
	uint64_t *whole; /* the references that are not compressed data */
	uint64_t nexp;
	bool in_compressed;
	struct qt_check *r;
	/* active L2 tables and allocated data clusters, for COPIED checks */
	uint64_t *copied_chk; /* pairs: host cluster index | flag<<63 */
	size_t ncc, ccap;
	size_t msglen;
	/* qt_walk_counts: references at or past `limit` are not recorded, and
	 * the walk gives up (over) after `budget` L2 entries */
	uint64_t limit, budget;
	bool over;
	uint64_t rt, rt_entries, last_rb;
};

static void problem(struct walk *w, bool is_error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void problem(struct walk *w, bool is_error, const char *fmt, ...)
{
	if (is_error)
		w->r->errors++;
	else
		w->r->leaks++;
	if (w->msglen + 80 < sizeof w->r->msg) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(w->r->msg + w->msglen, sizeof w->r->msg - w->msglen, fmt, ap);
		va_end(ap);
		if (n > 0)
			w->msglen += (size_t)n;
		if (w->msglen >= sizeof w->r->msg)
			w->msglen = sizeof w->r->msg - 1;
		if (w->msglen + 2 < sizeof w->r->msg) {
			w->r->msg[w->msglen++] = ';';
			w->r->msg[w->msglen++] = ' ';
			w->r->msg[w->msglen] = 0;
		}
	}
}

/* Reference [off, off+n) bytes; returns false when out of range. */
static bool ref_range(struct walk *w, uint64_t off, uint64_t n, const char *what)
{
	if (n == 0)
		return true;
	uint64_t first = off >> w->cb, last = (off + n - 1) >> w->cb;
	if (w->limit && off + n >= off && last >= w->limit) {
		if (first >= w->limit)
			return true;
		last = w->limit - 1;
	}
	if (off + n < off || last >= MAX_CLUSTERS) {
		problem(w, true, "%s at %#llx+%#llx out of range", what, (unsigned long long)off,
			(unsigned long long)n);
		return false;
	}
	if (last >= w->nexp) {
		uint64_t nn = w->nexp ? w->nexp : 64;
		while (nn <= last)
			nn *= 2;
		w->exp = realloc(w->exp, nn * sizeof *w->exp);
		w->whole = realloc(w->whole, nn * sizeof *w->whole);
		memset(w->exp + w->nexp, 0, (nn - w->nexp) * sizeof *w->exp);
		memset(w->whole + w->nexp, 0, (nn - w->nexp) * sizeof *w->whole);
		w->nexp = nn;
	}
	for (uint64_t c = first; c <= last; c++) {
		w->exp[c]++;
		w->whole[c] += !w->in_compressed;
	}
	w->r->referenced += last - first + 1;
	return true;
}

static bool in_file(struct walk *w, uint64_t off, uint64_t n)
{
	return off <= w->len && n <= w->len - off;
}

static uint64_t stored_refcount(struct walk *w, uint64_t rt_off, uint64_t rt_entries, uint64_t c)
{
	uint64_t per_block = w->cs * 8 / w->rbits, idx = c / per_block, i = c % per_block;
	if (idx >= rt_entries || !in_file(w, rt_off + idx * 8, 8))
		return 0;
	uint64_t rb = qt_be64(w->img + rt_off + idx * 8) & RT_OFFSET_MASK;
	if (!rb || !in_file(w, rb, w->cs))
		return 0;
	const uint8_t *p = w->img + rb;
	if (w->rbits >= 8) {
		uint64_t v = 0;
		for (unsigned k = 0; k < w->rbits / 8; k++)
			v = v << 8 | p[i * (w->rbits / 8) + k];
		return v;
	}
	uint64_t bit = i * w->rbits;
	return (p[bit / 8] >> (bit % 8)) & ((1u << w->rbits) - 1);
}

static void want_copied(struct walk *w, uint64_t hoff, bool flag)
{
	if (w->ncc == w->ccap) {
		w->ccap = w->ccap ? 2 * w->ccap : 256;
		w->copied_chk = realloc(w->copied_chk, w->ccap * sizeof *w->copied_chk);
	}
	w->copied_chk[w->ncc++] = (hoff >> w->cb) | (uint64_t)flag << 63;
}

static void walk_l2(struct walk *w, uint64_t l2, bool active, uint64_t l1i)
{
	uint64_t n = w->cs / w->l2_entsz;
	bool external = w->incompat & 4;
	if (w->budget) {
		w->over |= w->budget < n;
		if (w->over)
			return;
		w->budget -= n;
	}
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *p = w->img + l2 + i * w->l2_entsz;
		uint64_t e = qt_be64(p), bm = w->l2_entsz == 16 ? qt_be64(p + 8) : 0;
		if (e & COMPRESSED) {
			unsigned x = 62 - (w->cb - 8);
			uint64_t hoff = e & ((1ull << x) - 1);
			uint64_t sect = (e >> x) & ((1ull << (w->cb - 8)) - 1);
			uint64_t size = (sect + 1) * 512 - (hoff & 511);
			if (e & COPIED)
				problem(w, true, "compressed L2 entry %llu/%llu has COPIED",
					(unsigned long long)l1i, (unsigned long long)i);
			if (bm)
				problem(w, true, "compressed entry with subcluster bitmap");
			w->in_compressed = true;
			ref_range(w, hoff & ~511ull, (hoff & 511) + size, "compressed cluster");
			w->in_compressed = false;
			continue;
		}
		uint64_t hoff = e & L2E_OFFSET_MASK;
		if (e & 0x3f000000000001feull)
			problem(w, true, "L2 entry %llu/%llu reserved bits %#llx",
				(unsigned long long)l1i, (unsigned long long)i,
				(unsigned long long)e);
		if ((e & 1) && w->version == 2)
			problem(w, true, "zero flag in a v2 image (L2 %llu/%llu)",
				(unsigned long long)l1i, (unsigned long long)i);
		if (w->l2_entsz == 16) {
			uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);
			if (alloc & zero)
				problem(w, true, "subcluster both allocated and zero");
			if (!hoff && alloc)
				problem(w, true, "alloc bits on an unallocated cluster");
		}
		if (!hoff) {
			if ((e & COPIED) && active)
				problem(w, true, "unallocated L2 entry %llu/%llu with COPIED",
					(unsigned long long)l1i, (unsigned long long)i);
			continue;
		}
		if (hoff & (w->cs - 1)) {
			problem(w, true, "L2 entry %llu/%llu offset %#llx unaligned",
				(unsigned long long)l1i, (unsigned long long)i,
				(unsigned long long)hoff);
			continue;
		}
		if (external)
			continue;
		ref_range(w, hoff, w->cs, "data cluster");
		if (active)
			want_copied(w, hoff, e & COPIED);
	}
}

static void walk_l1(struct walk *w, uint64_t l1, uint64_t l1_size, bool active)
{
	if (l1_size > (32u << 20) / 8 || !in_file(w, l1, l1_size * 8)) {
		problem(w, true, "L1 table %#llx (%llu entries) outside the file",
			(unsigned long long)l1, (unsigned long long)l1_size);
		return;
	}
	ref_range(w, l1, l1_size * 8, "L1 table");
	for (uint64_t i = 0; i < l1_size; i++) {
		uint64_t e = qt_be64(w->img + l1 + 8 * i), l2 = e & L1E_OFFSET_MASK;
		if (e & 0x7f000000000001ffull)
			problem(w, true, "L1 entry %llu reserved bits %#llx", (unsigned long long)i,
				(unsigned long long)e);
		if (!l2) {
			if ((e & COPIED) && active)
				problem(w, true, "unallocated L1 entry %llu with COPIED",
					(unsigned long long)i);
			continue;
		}
		if ((l2 & (w->cs - 1)) || !in_file(w, l2, w->cs)) {
			problem(w, true, "L1 entry %llu: L2 at %#llx unaligned or past EOF",
				(unsigned long long)i, (unsigned long long)l2);
			/* past EOF it is still a reference (one beyond the refcount
			 * there), as a data cluster's is: the file may grow over it */
			if (!(l2 & (w->cs - 1)))
				ref_range(w, l2, w->cs, "L2 table");
			continue;
		}
		ref_range(w, l2, w->cs, "L2 table");
		if (active)
			want_copied(w, l2, e & COPIED);
		walk_l2(w, l2, active, i);
	}
}

static void walk_snapshots(struct walk *w, uint64_t off, uint32_t nb)
{
	uint64_t p = off;
	for (uint32_t i = 0; i < nb; i++) {
		if (!in_file(w, p, 40)) {
			problem(w, true, "snapshot table past EOF");
			return;
		}
		const uint8_t *s = w->img + p;
		uint64_t l1 = qt_be64(s);
		uint32_t l1_size = qt_be32(s + 8);
		uint64_t sz = 40 + (uint64_t)qt_be32(s + 36) + qt_be16(s + 12) + qt_be16(s + 14);
		if ((l1 & (w->cs - 1)))
			problem(w, true, "snapshot %u L1 unaligned", i);
		else
			walk_l1(w, l1, l1_size, false);
		p += (sz + 7) & ~7ull;
	}
	if (nb)
		ref_range(w, off, p - off, "snapshot table");
}

/* Bitmaps extension: u32 nb, u32 reserved, u64 directory size, offset. */
static void walk_bitmaps(struct walk *w)
{
	uint32_t n;
	const uint8_t *e = qt_find_extension(w->img, w->len, 0x23852875u, &n);
	if (!e || n < 24 || !(qt_be64(w->img + QH_AUTOCLEAR) & 1))
		return;
	uint32_t nb = qt_be32(e);
	uint64_t dsz = qt_be64(e + 8), dir = qt_be64(e + 16), p = dir;
	if (!in_file(w, dir, dsz) || !ref_range(w, dir, dsz, "bitmap directory"))
		return;
	for (uint32_t i = 0; i < nb && p + 24 <= dir + dsz; i++) {
		const uint8_t *d = w->img + p;
		uint64_t t = qt_be64(d), ts = qt_be32(d + 8);
		p += (24 + (uint64_t)qt_be32(d + 20) + qt_be16(d + 18) + 7) & ~7ull;
		if (!in_file(w, t, ts * 8) || !ref_range(w, t, ts * 8, "bitmap table")) {
			problem(w, true, "bitmap %u table past EOF", i);
			continue;
		}
		for (uint64_t j = 0; j < ts; j++) {
			uint64_t c = qt_be64(w->img + t + 8 * j) & L2E_OFFSET_MASK;
			if (c)
				ref_range(w, c, w->cs, "bitmap data");
		}
	}
}

/* Count every reference; -1 when the header is unusable (r->msg). */
static int walk_image(struct walk *wp, const uint8_t *img, size_t len, struct qt_check *r)
{
	memset(r, 0, sizeof *r);
	struct walk w = *wp;
	w.img = img;
	w.len = len;
	w.r = r;
	int ret = -1;
	if (len < 72 || memcmp(img, "QFI\xfb", 4)) {
		snprintf(r->msg, sizeof r->msg, "no qcow2 header");
		goto out;
	}
	w.version = qt_be32(img + QH_VERSION);
	w.cb = qt_be32(img + QH_CLUSTER_BITS);
	if ((w.version != 2 && w.version != 3) || w.cb < 9 || w.cb > 21) {
		snprintf(r->msg, sizeof r->msg, "bad version/cluster_bits");
		goto out;
	}
	w.cs = 1ull << w.cb;
	unsigned order = 4;
	if (w.version == 3) {
		if (len < 104) {
			snprintf(r->msg, sizeof r->msg, "short v3 header");
			goto out;
		}
		w.incompat = qt_be64(img + QH_INCOMPAT);
		order = qt_be32(img + QH_REFCOUNT_ORDER);
		if (order > 6) {
			snprintf(r->msg, sizeof r->msg, "refcount_order %u", order);
			goto out;
		}
	}
	r->dirty = w.incompat & 1;
	r->corrupt = w.incompat & 2;
	w.rbits = 1u << order;
	w.l2_entsz = (w.incompat & 16) ? 16 : 8;
	uint64_t size = qt_be64(img + QH_SIZE);
	uint64_t l1_size = qt_be32(img + QH_L1_SIZE), l1 = qt_be64(img + QH_L1_OFF);
	uint64_t rt = qt_be64(img + QH_RT_OFF), rt_cl = qt_be32(img + QH_RT_CLUSTERS);
	uint32_t nb_snap = qt_be32(img + QH_NB_SNAP);
	uint64_t snap = qt_be64(img + QH_SNAP_OFF);
	uint64_t per_l1 = w.cs / w.l2_entsz * w.cs;
	if (size / per_l1 + (size % per_l1 != 0) > l1_size)
		problem(&w, true, "l1_size %llu too small for size %llu", (unsigned long long)l1_size,
			(unsigned long long)size);
	if (rt_cl == 0 || (rt & (w.cs - 1)) || rt_cl > (8u << 20) >> w.cb ||
	    !in_file(&w, rt, rt_cl << w.cb)) {
		snprintf(r->msg, sizeof r->msg, "refcount table %#llx x%llu unusable",
			 (unsigned long long)rt, (unsigned long long)rt_cl);
		goto out;
	}
	if (l1 & (w.cs - 1))
		problem(&w, true, "L1 offset unaligned");
	ref_range(&w, 0, w.cs, "header");
	if (!(l1 & (w.cs - 1)))
		walk_l1(&w, l1, l1_size, true);
	ref_range(&w, rt, rt_cl << w.cb, "refcount table");
	uint64_t rt_entries = (rt_cl << w.cb) / 8, last_rb = 0;
	for (uint64_t i = 0; i < rt_entries; i++) {
		uint64_t e = qt_be64(img + rt + 8 * i), rb = e & RT_OFFSET_MASK;
		if (e & 511)
			problem(&w, true, "reftable entry %llu reserved bits", (unsigned long long)i);
		if (!rb)
			continue;
		if ((rb & (w.cs - 1)) || !in_file(&w, rb, w.cs)) {
			problem(&w, true, "refblock %llu at %#llx unaligned or past EOF",
				(unsigned long long)i, (unsigned long long)rb);
			continue;
		}
		ref_range(&w, rb, w.cs, "refblock");
		last_rb = i + 1;
	}
	if (w.version == 3)
		walk_bitmaps(&w);
	if (nb_snap) {
		if ((snap & (w.cs - 1)) || nb_snap > 65536)
			problem(&w, true, "snapshot table unusable");
		else
			walk_snapshots(&w, snap, nb_snap);
	}
	w.rt = rt;
	w.rt_entries = rt_entries;
	w.last_rb = last_rb;
	ret = 0;
out:
	*wp = w;
	return ret;
}

int qt_check_image(const uint8_t *img, size_t len, struct qt_check *r)
{
	return qt_check_image_resv(img, len, 0, 0, r);
}

int qt_check_image_resv(const uint8_t *img, size_t len, uint64_t resv_off, uint64_t resv_len,
			struct qt_check *r)
{
	struct walk w = {0};
	if (walk_image(&w, img, len, r) < 0) {
		free(w.exp);
		free(w.copied_chk);
		return -1;
	}
	uint64_t rt = w.rt, rt_entries = w.rt_entries, last_rb = w.last_rb;
	/* compare */
	uint64_t per_block = w.cs * 8 / w.rbits;
	uint64_t n = last_rb * per_block;
	if (n > MAX_CLUSTERS)
		n = MAX_CLUSTERS;
	if (w.nexp > n)
		n = w.nexp;
	for (uint64_t c = 0; c < n; c++) {
		uint64_t want = c < w.nexp ? w.exp[c] : 0;
		/* skip fast over empty refblocks */
		uint64_t idx = c / per_block;
		if (c % per_block == 0 && idx < rt_entries &&
		    !(qt_be64(img + rt + 8 * idx) & RT_OFFSET_MASK)) {
			bool any = false;
			for (uint64_t k = c; k < c + per_block && k < w.nexp; k++)
				any |= w.exp[k] != 0;
			if (!any) {
				c += per_block - 1;
				continue;
			}
		}
		uint64_t got = stored_refcount(&w, rt, rt_entries, c);
		if (got < want)
			problem(&w, true, "cluster %llu refcount=%llu reference=%llu",
				(unsigned long long)c, (unsigned long long)got,
				(unsigned long long)want);
		else if (got == 1 && want == 0 && c * w.cs >= resv_off &&
			 c * w.cs < resv_off + resv_len)
			r->reserved++; /* held by the open handle: exactly 1, no reference */
		else if (got > want)
			problem(&w, false, "leaked cluster %llu refcount=%llu reference=%llu",
				(unsigned long long)c, (unsigned long long)got,
				(unsigned long long)want);
	}
	for (size_t i = 0; i < w.ncc; i++) {
		uint64_t c = w.copied_chk[i] & ~COPIED;
		bool flag = w.copied_chk[i] >> 63;
		uint64_t rc = stored_refcount(&w, rt, rt_entries, c);
		if (flag != (rc == 1))
			problem(&w, true, "COPIED=%d but refcount=%llu for cluster %llu", flag,
				(unsigned long long)rc, (unsigned long long)c);
	}
	free(w.exp);
	free(w.whole);
	free(w.copied_chk);
	return 0;
}

const char *qt_check_open(struct qcow *q, struct qcow_backend be, bool allow_leaks)
{
	static __thread char msg[700];
	int r = qcow_flush(q);
	if (r < 0) {
		snprintf(msg, sizeof msg, "qcow_flush: %d", r);
		return msg;
	}
	size_t len;
	const uint8_t *img = qcow_backend_mem_data(be, &len);
	struct qt_check c;
	struct qcow_info info;
	qcow_info(q, &info);
	if (qt_check_image_resv(img, len, info.reserved_offset, info.reserved_bytes, &c) < 0) {
		snprintf(msg, sizeof msg, "check: %s", c.msg);
		return msg;
	}
	if (c.errors || (!allow_leaks && c.leaks)) {
		snprintf(msg, sizeof msg, "check: %llu errors, %llu leaks (reserve 0x%llx+0x%llx): %s",
			 (unsigned long long)c.errors, (unsigned long long)c.leaks,
			 (unsigned long long)info.reserved_offset,
			 (unsigned long long)info.reserved_bytes, c.msg);
		return msg;
	}
	return NULL;
}

int qt_walk_counts(const uint8_t *img, size_t len, uint64_t limit, uint64_t budget,
		   struct qt_counts *c)
{
	memset(c, 0, sizeof *c);
	struct qt_check r;
	struct walk w = {.limit = limit ? limit : 1, .budget = budget ? budget : 1};
	int ret = walk_image(&w, img, len, &r);
	if (ret == 0 && w.over)
		ret = -1;
	c->cb = w.cb;
	c->file_clusters = w.cs ? (len + w.cs - 1) >> w.cb : 0;
	/* past the last reference there is nothing to compare */
	c->n = w.nexp < w.limit ? w.nexp : w.limit;
	c->refs = w.exp;
	c->whole = w.whole;
	if (!ret && c->n && !(c->stored = malloc(c->n * sizeof *c->stored)))
		ret = -1;
	for (uint64_t i = 0; !ret && i < c->n; i++)
		c->stored[i] = stored_refcount(&w, w.rt, w.rt_entries, i);
	free(w.copied_chk);
	if (ret)
		qt_counts_free(c);
	return ret;
}

void qt_counts_free(struct qt_counts *c)
{
	free(c->refs);
	free(c->whole);
	free(c->stored);
	c->refs = c->whole = c->stored = NULL;
}
