/*
 * mkhostile - derives malformed QCOW2 images from valid qemu-made ones.
 *
 *   mkhostile SRCDIR OUTDIR     write OUTDIR/<case>.qcow2 for every case and
 *                               print one line per case: "<case> <base>"
 *   mkhostile -l                list the cases and what each one breaks
 *
 * SRCDIR holds the valid images tests/integration/t_hostile.sh makes with
 * qemu-img/qemu-io (v2, v3, a 6 MiB v3 with 3 L2 tables, a snapshot, an overlay
 * with its base back.qcow2, extended L2, a bitmap).  Each case copies one of
 * them and changes a few bytes the way a hostile or damaged file would; the
 * name says what.  A case that does not find what it needs in its base
 * (e.g. no compressed cluster) fails loudly: the bases are made for them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* header fields (QCOW2 spec offsets) */
enum {
	H_MAGIC = 0, H_VERSION = 4, H_BACKING_OFF = 8, H_BACKING_SIZE = 16, H_CLUSTER_BITS = 20,
	H_SIZE = 24, H_CRYPT = 32, H_L1_SIZE = 36, H_L1_OFF = 40, H_RT_OFF = 48,
	H_RT_CLUSTERS = 56, H_NB_SNAP = 60, H_SNAP_OFF = 64, H_INCOMPAT = 72, H_COMPAT = 80,
	H_AUTOCLEAR = 88, H_REFCOUNT_ORDER = 96, H_HEADER_LEN = 100,
};
#define OFF_MASK 0x00fffffffffffe00ull
#define COMPRESSED (1ull << 62)
#define COPIED (1ull << 63)

struct img {
	uint8_t *b;
	size_t len, cap;
	uint64_t cs;
	char aux_name[64]; /* a second output file some cases need */
	uint8_t *aux;
	size_t aux_len;
};

static uint32_t g32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint64_t g64(const uint8_t *p) { return (uint64_t)g32(p) << 32 | g32(p + 4); }
static void p32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v; }
static void p64(uint8_t *p, uint64_t v) { p32(p, (uint32_t)(v >> 32)); p32(p + 4, (uint32_t)v); }
static void p16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }

static uint32_t h32(struct img *m, unsigned f) { return g32(m->b + f); }
static uint64_t h64(struct img *m, unsigned f) { return g64(m->b + f); }
static void s32(struct img *m, unsigned f, uint32_t v) { p32(m->b + f, v); }
static void s64(struct img *m, unsigned f, uint64_t v) { p64(m->b + f, v); }

static uint64_t l1_off(struct img *m) { return h64(m, H_L1_OFF); }
static uint64_t rt_off(struct img *m) { return h64(m, H_RT_OFF); }
static uint64_t rb0(struct img *m) { return g64(m->b + rt_off(m)) & ~511ull; }
/* The first allocated L2 table. */
static uint64_t l2_first(struct img *m)
{
	for (uint32_t i = 0; i < h32(m, H_L1_SIZE); i++)
		if (g64(m->b + l1_off(m) + 8 * i) & OFF_MASK)
			return g64(m->b + l1_off(m) + 8 * i) & OFF_MASK;
	return 0;
}
static unsigned l2_esize(struct img *m)
{
	return h32(m, H_VERSION) >= 3 && (h64(m, H_INCOMPAT) & 16) ? 16 : 8;
}
/* Byte offset of the first L2 entry of the first L2 table matching want(). */
static uint64_t l2_find(struct img *m, bool compressed)
{
	uint64_t l2 = l2_first(m);
	if (!l2)
		return 0;
	for (uint64_t p = l2; p < l2 + m->cs; p += l2_esize(m)) {
		uint64_t e = g64(m->b + p);
		if (compressed ? (e & COMPRESSED) != 0 : !(e & COMPRESSED) && (e & OFF_MASK))
			return p;
	}
	return 0;
}
static uint64_t ext_start(struct img *m)
{
	return h32(m, H_VERSION) >= 3 ? h32(m, H_HEADER_LEN) : 72;
}
/* Offset of the header extension of `type`, or 0. */
static uint64_t ext_find(struct img *m, uint32_t type)
{
	for (uint64_t o = ext_start(m); o + 8 <= m->cs;) {
		uint32_t t = g32(m->b + o), l = g32(m->b + o + 4);
		if (t == 0)
			return 0;
		if (t == type)
			return o;
		o += 8 + ((l + 7ull) & ~7ull);
	}
	return 0;
}
static uint64_t ext_end(struct img *m) /* the end-of-extensions marker */
{
	uint64_t o = ext_start(m);
	while (o + 8 <= m->cs && g32(m->b + o))
		o += 8 + ((g32(m->b + o + 4) + 7ull) & ~7ull);
	return o;
}
/* Set the backing file name (stored near the end of the header cluster). */
static void set_backing(struct img *m, const char *name)
{
	uint64_t off = m->cs - 512;
	memset(m->b + off, 0, 512);
	memcpy(m->b + off, name, strlen(name));
	s64(m, H_BACKING_OFF, off);
	s32(m, H_BACKING_SIZE, (uint32_t)strlen(name));
}

#define NEED(x) do { if (!(x)) { fprintf(stderr, "mkhostile: %s: base lacks: %s\n", __func__, #x); return -1; } } while (0)

/* ---- the cases: each edits m in place; 0 ok, -1 base unsuitable ---- */
static int bad_magic(struct img *m) { s32(m, H_MAGIC, 0x514649fa); return 0; }
static int version_1(struct img *m) { s32(m, H_VERSION, 1); return 0; }
static int version_4(struct img *m) { s32(m, H_VERSION, 4); return 0; }
static int cluster_bits_8(struct img *m) { s32(m, H_CLUSTER_BITS, 8); return 0; }
static int cluster_bits_22(struct img *m) { s32(m, H_CLUSTER_BITS, 22); return 0; }
static int cluster_bits_63(struct img *m) { s32(m, H_CLUSTER_BITS, 63); return 0; }
static int cluster_bits_huge(struct img *m) { s32(m, H_CLUSTER_BITS, 0xffffffffu); return 0; }
static int header_length_small(struct img *m) { s32(m, H_HEADER_LEN, 72); return 0; }
static int header_length_huge(struct img *m) { s32(m, H_HEADER_LEN, 0x7ffffff8); return 0; }
static int header_length_past_cluster(struct img *m) { s32(m, H_HEADER_LEN, (uint32_t)m->cs + 8); return 0; }
static int header_length_misaligned(struct img *m) { s32(m, H_HEADER_LEN, 105); return 0; }
static int l1_offset_huge(struct img *m) { s64(m, H_L1_OFF, 1ull << 62); return 0; }
static int l1_offset_max(struct img *m) { s64(m, H_L1_OFF, ~0ull & ~(m->cs - 1)); return 0; }
static int l1_offset_misaligned(struct img *m) { s64(m, H_L1_OFF, l1_off(m) + 512); return 0; }
static int l1_size_huge(struct img *m) { s32(m, H_L1_SIZE, 0x7fffffff); return 0; }
static int l1_size_max(struct img *m) { s32(m, H_L1_SIZE, 0xffffffff); return 0; }
static int l1_past_eof(struct img *m) { s64(m, H_L1_OFF, (m->len + m->cs) & ~(m->cs - 1)); return 0; }
static int l1_straddles_eof(struct img *m)
{
	/* an L1 table of many clusters starting at the last cluster */
	s64(m, H_L1_OFF, (m->len - 1) & ~(m->cs - 1));
	s32(m, H_L1_SIZE, (uint32_t)(m->cs / 8 * 4));
	return 0;
}
static int l1_in_header(struct img *m) { s64(m, H_L1_OFF, 0); return 0; }
static int l1_size_zero(struct img *m) { s32(m, H_L1_SIZE, 0); return 0; }
static int l1_size_too_small(struct img *m)
{
	/* one L1 entry, but a virtual size that needs more */
	s32(m, H_L1_SIZE, 1);
	s64(m, H_SIZE, (m->cs / l2_esize(m)) * m->cs * 4);
	return 0;
}
static int reftable_offset_huge(struct img *m) { s64(m, H_RT_OFF, 1ull << 62); return 0; }
static int reftable_offset_misaligned(struct img *m) { s64(m, H_RT_OFF, rt_off(m) + 512); return 0; }
static int reftable_clusters_huge(struct img *m) { s32(m, H_RT_CLUSTERS, 0xffffffffu); return 0; }
static int reftable_clusters_zero(struct img *m) { s32(m, H_RT_CLUSTERS, 0); return 0; }
static int reftable_past_eof(struct img *m) { s64(m, H_RT_OFF, (m->len + 4 * m->cs) & ~(m->cs - 1)); return 0; }
static int reftable_in_header(struct img *m) { s64(m, H_RT_OFF, 0); return 0; }
static int l1_overlaps_reftable(struct img *m) { s64(m, H_L1_OFF, rt_off(m)); return 0; }
static int l1_entry_to_reftable(struct img *m)
{
	p64(m->b + l1_off(m), rt_off(m) | COPIED);
	return 0;
}
static int l1_entry_to_l1(struct img *m)
{
	p64(m->b + l1_off(m), l1_off(m) | COPIED);
	return 0;
}
static int l1_entry_to_refblock(struct img *m)
{
	NEED(rb0(m));
	p64(m->b + l1_off(m), rb0(m) | COPIED);
	return 0;
}
static int l1_entry_past_eof(struct img *m)
{
	p64(m->b + l1_off(m), ((m->len + 8 * m->cs) & ~(m->cs - 1)) | COPIED);
	return 0;
}
static int l1_entry_reserved_bits(struct img *m)
{
	NEED(l2_first(m));
	p64(m->b + l1_off(m), g64(m->b + l1_off(m)) | 0x0100000000000000ull);
	return 0;
}
static int l1_entries_share_l2(struct img *m)
{
	NEED(h32(m, H_L1_SIZE) >= 2 && l2_first(m));
	p64(m->b + l1_off(m) + 8, l2_first(m) | COPIED);
	return 0;
}
static int l2_entry_reserved_bits(struct img *m)
{
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, g64(m->b + p) | 0x0200000000000000ull);
	return 0;
}
static int l2_entry_misaligned(struct img *m)
{
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, g64(m->b + p) + 512);
	return 0;
}
static int l2_entry_past_eof(struct img *m)
{
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, ((m->len + 16 * m->cs) & ~(m->cs - 1)) | COPIED);
	return 0;
}
static int l2_entry_to_l1(struct img *m)
{
	/* a data cluster that is the L1 table: a guest write would overwrite L1 */
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, l1_off(m) | COPIED);
	return 0;
}
static int l2_entry_to_reftable(struct img *m)
{
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, rt_off(m) | COPIED);
	return 0;
}
static int l2_entry_to_own_l2(struct img *m)
{
	uint64_t p = l2_find(m, false);
	NEED(p);
	p64(m->b + p, l2_first(m) | COPIED);
	return 0;
}
static int compressed_past_eof(struct img *m)
{
	uint64_t p = l2_find(m, true);
	NEED(p);
	unsigned cb = h32(m, H_CLUSTER_BITS), x = 62 - (cb - 8);
	uint64_t e = g64(m->b + p), sectors = e >> x & ((1ull << (cb - 8)) - 1);
	p64(m->b + p, COMPRESSED | sectors << x | ((m->len + 64 * m->cs) & ((1ull << x) - 1)));
	return 0;
}
static int compressed_straddles_eof(struct img *m)
{
	uint64_t p = l2_find(m, true);
	NEED(p);
	unsigned cb = h32(m, H_CLUSTER_BITS), x = 62 - (cb - 8);
	p64(m->b + p, COMPRESSED | ((1ull << (cb - 8)) - 1) << x | ((m->len - 100) & ((1ull << x) - 1)));
	return 0;
}
/* The sector count of the compressed cluster at 64k to its maximum: the
 * range runs on into the host cluster after it (the data at 200k).  A
 * copy-out must not release that cluster (issue 14). */
static int compressed_overlong(struct img *m)
{
	uint64_t p = l2_find(m, true);
	NEED(p);
	unsigned cb = h32(m, H_CLUSTER_BITS), x = 62 - (cb - 8);
	p64(m->b + p, g64(m->b + p) | ((1ull << (cb - 8)) - 1) << x);
	return 0;
}
static int compressed_garbage(struct img *m)
{
	uint64_t p = l2_find(m, true);
	NEED(p);
	unsigned cb = h32(m, H_CLUSTER_BITS), x = 62 - (cb - 8);
	uint64_t off = g64(m->b + p) & ((1ull << x) - 1);
	NEED(off + 64 <= m->len);
	memset(m->b + off, 0xa5, 64);
	return 0;
}
static int refblock_zeroed_entry(struct img *m)
{
	/* refcount table entry 0 cleared: every cluster looks free */
	p64(m->b + rt_off(m), 0);
	return 0;
}
static int refblock_at_header(struct img *m)
{
	/* refcount block 0 "at offset 0" with a flag bit, so it is not just empty */
	p64(m->b + rt_off(m), 1);
	return 0;
}
static int refblock_is_l1(struct img *m) { p64(m->b + rt_off(m), l1_off(m)); return 0; }
static int refblock_is_reftable(struct img *m) { p64(m->b + rt_off(m), rt_off(m)); return 0; }
static int refblock_past_eof(struct img *m) { p64(m->b + rt_off(m), (m->len + 8 * m->cs) & ~(m->cs - 1)); return 0; }
static int refcounts_zeroed(struct img *m)
{
	/* all refcounts 0 (valid structure, wrong counts): writes must not
	 * allocate over live clusters */
	NEED(rb0(m));
	memset(m->b + rb0(m), 0, m->cs);
	return 0;
}
static int refcount_order_7(struct img *m) { s32(m, H_REFCOUNT_ORDER, 7); return 0; }
static int refcount_order_huge(struct img *m) { s32(m, H_REFCOUNT_ORDER, 0xffffffffu); return 0; }
static int incompat_unknown(struct img *m) { s64(m, H_INCOMPAT, h64(m, H_INCOMPAT) | 1ull << 40); return 0; }
static int incompat_all(struct img *m) { s64(m, H_INCOMPAT, ~0ull); return 0; }
static int incompat_corrupt(struct img *m) { s64(m, H_INCOMPAT, h64(m, H_INCOMPAT) | 2); return 0; }
static int incompat_data_file_unnamed(struct img *m) { s64(m, H_INCOMPAT, h64(m, H_INCOMPAT) | 4); return 0; }
static int crypt_aes(struct img *m) { s32(m, H_CRYPT, 1); return 0; }
static int crypt_unknown(struct img *m) { s32(m, H_CRYPT, 77); return 0; }
static int vsize_2_63(struct img *m) { s64(m, H_SIZE, 1ull << 63); return 0; }
static int vsize_max(struct img *m) { s64(m, H_SIZE, ~0ull); return 0; }
static int vsize_2_62_small_l1(struct img *m) { s64(m, H_SIZE, 1ull << 62); return 0; }
static int snap_nb_huge(struct img *m) { NEED(h32(m, H_NB_SNAP)); s32(m, H_NB_SNAP, 0xffffffffu); return 0; }
static int snap_nb_many(struct img *m) { NEED(h32(m, H_NB_SNAP)); s32(m, H_NB_SNAP, 60000); return 0; }
static int snap_offset_past_eof(struct img *m)
{
	NEED(h32(m, H_NB_SNAP));
	s64(m, H_SNAP_OFF, (m->len + 4 * m->cs) & ~(m->cs - 1));
	return 0;
}
static int snap_offset_misaligned(struct img *m) { NEED(h32(m, H_NB_SNAP)); s64(m, H_SNAP_OFF, h64(m, H_SNAP_OFF) + 8); return 0; }
static int snap_offset_header(struct img *m) { NEED(h32(m, H_NB_SNAP)); s64(m, H_SNAP_OFF, 0); return 0; }
static int snap_truncated(struct img *m)
{
	/* the file ends in the middle of the snapshot table */
	uint64_t so = h64(m, H_SNAP_OFF);
	NEED(so && so + 20 <= m->len);
	/* move the table to the end of the file, then cut it short */
	uint8_t e[64];
	memcpy(e, m->b + so, 64);
	uint64_t end = (m->len + m->cs - 1) & ~(m->cs - 1);
	memset(m->b + m->len, 0, end - m->len);
	memcpy(m->b + end, e, 20);
	m->len = end + 20;
	s64(m, H_SNAP_OFF, end);
	return 0;
}
static int snap_id_len_huge(struct img *m) { uint64_t so = h64(m, H_SNAP_OFF); NEED(so); p16(m->b + so + 12, 0xffff); return 0; }
static int snap_name_len_huge(struct img *m) { uint64_t so = h64(m, H_SNAP_OFF); NEED(so); p16(m->b + so + 14, 0xffff); return 0; }
static int snap_extra_huge(struct img *m) { uint64_t so = h64(m, H_SNAP_OFF); NEED(so); p32(m->b + so + 36, 0xfffffff0u); return 0; }
static int snap_l1_past_eof(struct img *m)
{
	uint64_t so = h64(m, H_SNAP_OFF);
	NEED(so);
	p64(m->b + so, (m->len + 4 * m->cs) & ~(m->cs - 1));
	return 0;
}
static int snap_l1_size_huge(struct img *m) { uint64_t so = h64(m, H_SNAP_OFF); NEED(so); p32(m->b + so + 8, 0xffffffffu); return 0; }
static int snap_l1_is_active_l1(struct img *m)
{
	uint64_t so = h64(m, H_SNAP_OFF);
	NEED(so);
	p64(m->b + so, l1_off(m));
	return 0;
}
static int ext_len_huge(struct img *m)
{
	uint64_t o = ext_start(m);
	NEED(g32(m->b + o)); /* at least one extension */
	p32(m->b + o + 4, 0xffffffffu);
	return 0;
}
static int ext_len_past_cluster(struct img *m)
{
	uint64_t o = ext_start(m);
	NEED(g32(m->b + o));
	p32(m->b + o + 4, (uint32_t)m->cs);
	return 0;
}
static int ext_unknown_valid(struct img *m)
{
	/* an unknown extension is legal and must be kept: opens normally */
	uint64_t o = ext_end(m);
	NEED(o + 32 <= m->cs - 512 && !h64(m, H_BACKING_OFF));
	p32(m->b + o, 0x12345678);
	p32(m->b + o + 4, 5);
	memcpy(m->b + o + 8, "hello", 5);
	memset(m->b + o + 16, 0, 8);
	return 0;
}
static int ext_backing_fmt_long(struct img *m)
{
	/* a 40-byte format name: move the backing name out of the way first */
	uint64_t o = ext_find(m, 0xe2792acau);
	NEED(o && o + 56 <= m->cs - 512);
	set_backing(m, "back.qcow2");
	p32(m->b + o + 4, 40);
	memcpy(m->b + o + 8, "qcow2", 5);
	memset(m->b + o + 13, 'x', 35);
	memset(m->b + o + 48, 0, 8); /* end of extensions */
	return 0;
}
static int ext_backing_fmt_unknown(struct img *m)
{
	uint64_t o = ext_find(m, 0xe2792acau);
	NEED(o && g32(m->b + o + 4) >= 4);
	memcpy(m->b + o + 8, "vmdk", 4);
	p32(m->b + o + 4, 4);
	return 0;
}
static int ext_crypto(struct img *m)
{
	uint64_t o = ext_end(m);
	NEED(o + 40 <= m->cs - 512);
	p32(m->b + o, 0x0537be77u);
	p32(m->b + o + 4, 16);
	memset(m->b + o + 8, 0, 16 + 8);
	return 0;
}
static int bitmap_ext_garbage(struct img *m)
{
	uint64_t o = ext_find(m, 0x23852875u);
	NEED(o);
	memset(m->b + o + 8, 0xee, g32(m->b + o + 4));
	return 0;
}
static int backing_offset_huge(struct img *m) { NEED(h64(m, H_BACKING_OFF)); s64(m, H_BACKING_OFF, 1ull << 62); return 0; }
static int backing_offset_past_cluster(struct img *m) { NEED(h64(m, H_BACKING_OFF)); s64(m, H_BACKING_OFF, m->cs - 4); return 0; }
static int backing_offset_in_header(struct img *m) { NEED(h64(m, H_BACKING_OFF)); s64(m, H_BACKING_OFF, 16); return 0; }
static int backing_size_huge(struct img *m) { NEED(h64(m, H_BACKING_OFF)); s32(m, H_BACKING_SIZE, 0xffffffffu); return 0; }
static int backing_size_1024(struct img *m) { NEED(h64(m, H_BACKING_OFF)); s32(m, H_BACKING_SIZE, 1024); return 0; }
static int backing_missing(struct img *m) { set_backing(m, "no-such-base.qcow2"); return 0; }
static int backing_self(struct img *m) { set_backing(m, "backing_self.qcow2"); return 0; }
static int backing_dev(struct img *m) { set_backing(m, "/dev/zero"); return 0; }
static int backing_loop_ab(struct img *m)
{
	/* backing_loop_ab.qcow2 -> backing_loop_b.qcow2 -> backing_loop_ab.qcow2 */
	set_backing(m, "backing_loop_b.qcow2");
	if (!(m->aux = malloc(m->len)))
		return -1;
	memcpy(m->aux, m->b, m->len);
	m->aux_len = m->len;
	uint64_t off = m->cs - 512;
	memset(m->aux + off, 0, 512);
	memcpy(m->aux + off, "backing_loop_ab.qcow2", 21);
	p32(m->aux + H_BACKING_SIZE, 21);
	snprintf(m->aux_name, sizeof m->aux_name, "backing_loop_b");
	return 0;
}
static int truncated_to_header(struct img *m) { m->len = 104; return 0; }
static int truncated_half(struct img *m) { m->len = (m->len / 2) & ~511ull; return 0; }
static int truncated_tiny(struct img *m) { m->len = 40; return 0; }

struct hcase {
	const char *name, *base;
	int (*fn)(struct img *);
	const char *what;
};
#define C(n, b, w) {#n, b, n, w}
static const struct hcase cases[] = {
	C(bad_magic, "v3", "magic is not QFI\\xfb"),
	C(version_1, "v3", "version 1 (qcow, not qcow2)"),
	C(version_4, "v3", "version 4 (unknown)"),
	C(cluster_bits_8, "v3", "cluster_bits below 9"),
	C(cluster_bits_22, "v3", "cluster_bits above 21"),
	C(cluster_bits_63, "v3", "cluster_bits 63 (shift overflow)"),
	C(cluster_bits_huge, "v3", "cluster_bits 2^32-1"),
	C(header_length_small, "v3", "v3 header_length 72 (< 104)"),
	C(header_length_huge, "v3", "header_length ~2 GiB"),
	C(header_length_past_cluster, "v3", "header_length beyond cluster 0"),
	C(header_length_misaligned, "v3", "header_length 105 (not a multiple of 8)"),
	C(l1_offset_huge, "v3", "L1 at 2^62"),
	C(l1_offset_max, "v3", "L1 at 2^64 - cluster (offset+size wraps)"),
	C(l1_offset_misaligned, "v3", "L1 offset not cluster aligned"),
	C(l1_size_huge, "v3", "l1_size 2^31-1"),
	C(l1_size_max, "v3", "l1_size 2^32-1"),
	C(l1_past_eof, "v3", "L1 table beyond end of file"),
	C(l1_straddles_eof, "v3", "L1 table starts in the last cluster, ends past EOF"),
	C(l1_in_header, "v3", "L1 offset 0 (the header)"),
	C(l1_size_zero, "v3", "l1_size 0 for a non-empty disk"),
	C(l1_size_too_small, "v3", "L1 smaller than the virtual size needs"),
	C(reftable_offset_huge, "v3", "refcount table at 2^62"),
	C(reftable_offset_misaligned, "v3", "refcount table offset not aligned"),
	C(reftable_clusters_huge, "v3", "refcount_table_clusters 2^32-1"),
	C(reftable_clusters_zero, "v3", "refcount_table_clusters 0"),
	C(reftable_past_eof, "v3", "refcount table beyond end of file"),
	C(reftable_in_header, "v3", "refcount table offset 0 (the header)"),
	C(l1_overlaps_reftable, "v3", "L1 table = refcount table"),
	C(l1_entry_to_reftable, "v3", "L2 table = refcount table"),
	C(l1_entry_to_l1, "v3", "L2 table = L1 table"),
	C(l1_entry_to_refblock, "v3", "L2 table = refcount block"),
	C(l1_entry_past_eof, "v3", "L2 table beyond end of file"),
	C(l1_entry_reserved_bits, "v3", "L1 entry with reserved bits"),
	C(l1_entries_share_l2, "wide", "two L1 entries, one L2 table"),
	C(l2_entry_reserved_bits, "v3", "L2 entry with reserved bits"),
	C(l2_entry_misaligned, "v3", "L2 entry offset not cluster aligned"),
	C(l2_entry_past_eof, "v3", "data cluster beyond end of file"),
	C(l2_entry_to_l1, "v3", "data cluster = L1 table"),
	C(l2_entry_to_reftable, "v3", "data cluster = refcount table"),
	C(l2_entry_to_own_l2, "v3", "data cluster = its own L2 table"),
	C(compressed_past_eof, "v3", "compressed cluster beyond end of file"),
	C(compressed_straddles_eof, "v3", "compressed cluster runs past end of file"),
	C(compressed_garbage, "v3", "compressed cluster with garbage deflate data"),
	C(compressed_overlong, "v3", "compressed cluster's sector count runs into the next cluster"),
	C(refblock_zeroed_entry, "v3", "refcount table entry 0 cleared"),
	C(refblock_at_header, "v3", "refcount block at offset 0 (flag bit set)"),
	C(refblock_is_l1, "v3", "refcount block = L1 table"),
	C(refblock_is_reftable, "v3", "refcount block = refcount table"),
	C(refblock_past_eof, "v3", "refcount block beyond end of file"),
	C(refcounts_zeroed, "v3", "all refcounts 0"),
	C(refcount_order_7, "v3", "refcount_order 7 (128-bit)"),
	C(refcount_order_huge, "v3", "refcount_order 2^32-1"),
	C(incompat_unknown, "v3", "unknown incompatible feature bit 40"),
	C(incompat_all, "v3", "every incompatible feature bit"),
	C(incompat_corrupt, "v3", "corrupt bit set"),
	C(incompat_data_file_unnamed, "v3", "external data file bit, no name"),
	C(crypt_aes, "v3", "AES encryption"),
	C(crypt_unknown, "v3", "unknown encryption method"),
	C(vsize_2_63, "v3", "virtual size 2^63"),
	C(vsize_max, "v3", "virtual size 2^64-1"),
	C(vsize_2_62_small_l1, "v3", "virtual size 2^62 with a small L1"),
	C(snap_nb_huge, "snap", "nb_snapshots 2^32-1"),
	C(snap_nb_many, "snap", "nb_snapshots 60000 (table truncated)"),
	C(snap_offset_past_eof, "snap", "snapshot table beyond end of file"),
	C(snap_offset_misaligned, "snap", "snapshot table offset not aligned"),
	C(snap_offset_header, "snap", "snapshot table at offset 0"),
	C(snap_truncated, "snap", "file ends inside the snapshot table"),
	C(snap_id_len_huge, "snap", "snapshot id_str_size 65535"),
	C(snap_name_len_huge, "snap", "snapshot name_size 65535"),
	C(snap_extra_huge, "snap", "snapshot extra_data_size ~4 GiB"),
	C(snap_l1_past_eof, "snap", "snapshot L1 table beyond end of file"),
	C(snap_l1_size_huge, "snap", "snapshot l1_size 2^32-1"),
	C(snap_l1_is_active_l1, "snap", "snapshot L1 table = active L1 table"),
	C(ext_len_huge, "overlay", "header extension length 2^32-1"),
	C(ext_len_past_cluster, "overlay", "header extension longer than cluster 0"),
	C(ext_unknown_valid, "v3", "an unknown (legal) header extension"),
	C(ext_backing_fmt_long, "overlay", "backing format name 40 bytes"),
	C(ext_backing_fmt_unknown, "overlay", "backing format vmdk"),
	C(ext_crypto, "v3", "full disk encryption header extension"),
	C(bitmap_ext_garbage, "bitmap", "bitmaps extension with garbage"),
	C(backing_offset_huge, "overlay", "backing file name at 2^62"),
	C(backing_offset_past_cluster, "overlay", "backing file name runs past cluster 0"),
	C(backing_offset_in_header, "overlay", "backing file name inside the header fields"),
	C(backing_size_huge, "overlay", "backing file name size 2^32-1"),
	C(backing_size_1024, "overlay", "backing file name 1024 bytes"),
	C(backing_missing, "v3", "backing file does not exist"),
	C(backing_self, "v3", "image is its own backing file"),
	C(backing_dev, "v3", "backing file /dev/zero"),
	C(backing_loop_ab, "v3", "a -> b -> a backing loop"),
	C(truncated_to_header, "v3", "file cut after the header fields"),
	C(truncated_half, "v3", "file cut in half"),
	C(truncated_tiny, "v3", "file of 40 bytes"),
	C(l2_entry_reserved_bits, "extl2", "extended L2 entry with reserved bits"),
	C(compressed_past_eof, "v2", "v2: compressed cluster beyond end of file"),
	C(l2_entry_to_l1, "v2", "v2: data cluster = L1 table (no corrupt bit in v2)"),
	C(refcounts_zeroed, "v2", "v2: all refcounts 0"),
	C(vsize_2_63, "v2", "v2: virtual size 2^63"),
};

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	/* room for cases that append to the file */
	uint8_t *b = calloc(1, (size_t)n + (1u << 20));
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static int spill(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.qcow2", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	size_t ncases = sizeof cases / sizeof cases[0];
	if (argc == 2 && !strcmp(argv[1], "-l")) {
		for (size_t i = 0; i < ncases; i++)
			printf("%-28s %-8s %s\n", cases[i].name, cases[i].base, cases[i].what);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: mkhostile SRCDIR OUTDIR | mkhostile -l\n");
		return 2;
	}
	int fail = 0;
	for (size_t i = 0; i < ncases; i++) {
		const struct hcase *c = &cases[i];
		char src[4096], name[128];
		struct img m = {0};
		snprintf(src, sizeof src, "%s/%s.qcow2", argv[1], c->base);
		/* a case run on a second base gets the base in its name */
		bool again = false;
		for (size_t j = 0; j < i; j++)
			again |= !strcmp(cases[j].name, c->name);
		snprintf(name, sizeof name, again ? "%s_%s" : "%s", c->name, c->base);
		if (!(m.b = slurp(src, &m.len)) || m.len < 512) {
			fprintf(stderr, "mkhostile: cannot read %s\n", src);
			return 1;
		}
		m.cs = 1ull << (g32(m.b + H_CLUSTER_BITS) & 31);
		if (c->fn(&m) < 0 || spill(argv[2], name, m.b, m.len) < 0 ||
		    (m.aux && spill(argv[2], m.aux_name, m.aux, m.aux_len) < 0))
			fail = 1;
		else
			printf("%s %s\n", name, c->base);
		free(m.b);
		free(m.aux);
	}
	return fail;
}
