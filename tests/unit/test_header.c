/*
 * test_header.c - qcow_open on handcrafted images: each invalid header field
 * and each overflow gets the exact -errno qemu gives (EINVAL malformed,
 * ENOTSUP unsupported, EFBIG beyond qemu's limits), logs a reason, and
 * leaves the image byte-identical (no write, truncate or punch), both for
 * read-write and read-only opens.  Valid variants open and read correctly;
 * feature bits and header extensions are handled as the spec says.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "qt.h"

#define CS (1u << 16)

static uint8_t *base(size_t *len)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = 16, .refcount_order = 4,
				 .size = 1 << 20, .data_clusters = 2 };
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	return img;
}

static bool log_had_newline;

static void count_log(void *arg, const char *msg)
{
	if (!msg || strchr(msg, '\n') || !*msg)
		log_had_newline = true; /* "one line, no newline" */
	++*(int *)arg;
}

/* Opens img via a counting wrapper; returns the open result, closes on success. */
static int try_open(const uint8_t *img, size_t len, unsigned flags, bool *changed, int *logs)
{
	struct qt_fault f = { 0 };
	cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
	struct qcow *q = NULL;
	*logs = 0;
	struct qcow_opts o = { .flags = flags, .log = count_log, .arg = logs };
	int r = qcow_open(&q, qt_fault_backend(&f), &o);
	if (r == 0)
		qcow_close(q);
	size_t n;
	const void *d = qcow_backend_mem_data(f.inner, &n);
	*changed = n != len || memcmp(d, img, len) ||
		   f.count[QT_PWRITE] + f.count[QT_TRUNCATE] + f.count[QT_PUNCH];
	f.inner.ops->close(f.inner.h);
	return r;
}

static void expect_fail2(const uint8_t *img, size_t len, int want, int want2, const char *what)
{
	for (int ro = 0; ro < 2; ro++) {
		bool changed;
		int logs;
		int r = try_open(img, len, ro ? QCOW_RDONLY : 0, &changed, &logs);
		cr_expect(r == want || r == want2, "%s (%s): qcow_open = %d (%s), want %d (%s)",
			  what, ro ? "ro" : "rw", r, strerror(-r), want, strerror(-want));
		cr_expect(!changed, "%s (%s): the image was written to", what, ro ? "ro" : "rw");
		if (r < 0)
			cr_expect(logs > 0, "%s (%s): failed without a log line", what, ro ? "ro" : "rw");
		cr_expect(!log_had_newline, "%s: a log message was empty or held a newline", what);
		log_had_newline = false;
	}
}

static void expect_fail(const uint8_t *img, size_t len, int want, const char *what)
{
	expect_fail2(img, len, want, want, what);
}

#define BAD(name, want, ...)                                    \
	Test(header_bad, name)                                  \
	{                                                       \
		size_t len;                                     \
		uint8_t *img = base(&len);                      \
		__VA_ARGS__;                                    \
		expect_fail(img, len, want, #name);             \
		free(img);                                      \
	}

/* ---- positive controls ------------------------------------------------ */

static void expect_reads(struct qcow *q, unsigned cs, unsigned nclusters, uint64_t size)
{
	uint8_t *buf = malloc(cs);
	for (unsigned i = 0; i < nclusters + 1 && (uint64_t)i * cs < size; i++) {
		uint64_t n = size - (uint64_t)i * cs < cs ? size - (uint64_t)i * cs : cs;
		ssize_t r = qcow_read(q, buf, cs, (uint64_t)i * cs);
		cr_assert_eq(r, (ssize_t)n, "read of cluster %u (size %llu) = %zd", i,
			     (unsigned long long)size, r);
		uint8_t want = i < nclusters ? (uint8_t)(0x40 + (i & 0x3f)) : 0;
		for (unsigned k = 0; k < n; k++)
			cr_assert_eq(buf[k], want, "cluster %u byte %u: %#x want %#x", i, k, buf[k],
				     want);
	}
	free(buf);
}

Test(header_ok, base_opens_and_reads)
{
	size_t len;
	uint8_t *img = base(&len);
	struct qt_check c;
	cr_assert_eq(qt_check_image(img, len, &c), 0);
	cr_assert(c.errors == 0 && c.leaks == 0, "handcrafted image not clean: %s", c.msg);
	int err;
	struct qcow_backend be;
	struct qcow *q = qt_open_mem(img, len, QCOW_RDONLY, &be, &err);
	cr_assert(q, "open = %d", err);
	struct qcow_info info;
	cr_assert_eq(qcow_info(q, &info), 0);
	cr_expect_eq(info.size, 1 << 20);
	cr_expect_eq(info.version, 3);
	cr_expect_eq(info.cluster_bits, 16);
	cr_expect_eq(info.refcount_bits, 16);
	cr_expect(info.read_only && !info.corrupt && !info.dirty && !info.extended_l2);
	cr_expect_eq(info.nb_snapshots, 0);
	cr_expect_str_empty(info.backing_file);
	cr_expect_eq(qcow_size(q), 1 << 20);
	expect_reads(q, CS, 2, 1 << 20);
	uint8_t b = 1;
	cr_expect_eq(qcow_write(q, &b, 1, 0), -EROFS);
	cr_expect_eq(qcow_zero(q, 0, 512, 0), -EROFS);
	cr_expect_eq(qcow_resize(q, 2 << 20), -EROFS);
	size_t n;
	const void *d = qcow_backend_mem_data(be, &n);
	cr_expect(n == len && !memcmp(d, img, len), "read-only open changed the image");
	cr_expect_eq(qcow_close(q), 0);
	free(img);
}

/* Handcrafted images with data, every cluster size and refcount width. */
Test(header_ok, handcrafted_every_geometry)
{
	for (unsigned ver = 2; ver <= 3; ver++)
		for (unsigned cb = 9; cb <= 21; cb++)
			for (unsigned order = 0; order <= 6; order++) {
				if (ver == 2 && order != 4)
					continue;
				uint64_t cs = 1ull << cb;
				struct qt_img_spec s = { .version = ver, .cluster_bits = cb,
							 .refcount_order = order,
							 .size = 3 * cs + 512, .data_clusters = 3 };
				size_t len;
				uint8_t *img = qt_build_image(&s, &len);
				cr_assert(img);
				int err;
				struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
				cr_assert(q, "v%u cb %u order %u: open = %d", ver, cb, order, err);
				expect_reads(q, (unsigned)cs, 3, s.size);
				uint8_t buf[1024];
				cr_expect_eq(qcow_read(q, buf, 1024, 3 * cs), 512,
					     "v%u cb %u: read at the unaligned end", ver, cb);
				cr_expect_eq(qcow_close(q), 0);
				free(img);
			}
}

Test(header_ok, v2_header)
{
	struct qt_img_spec s = { .version = 2, .cluster_bits = 12, .size = 100 << 10,
				 .data_clusters = 1 };
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
	cr_assert(q, "open = %d", err);
	struct qcow_info info;
	qcow_info(q, &info);
	cr_expect_eq(info.version, 2);
	cr_expect_eq(info.refcount_bits, 16);
	expect_reads(q, 4096, 1, s.size);
	qcow_close(q);
	free(img);
}

Test(header_ok, header_length_112_deflate)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = 16, .refcount_order = 4,
				 .size = 1 << 20, .data_clusters = 1, .header_length = 112 };
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
	cr_assert(q, "open = %d", err);
	expect_reads(q, CS, 1, s.size);
	qcow_close(q);
	free(img);
}

Test(header_ok, unknown_compatible_bit_ignored)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + QH_COMPAT, 1ull << 40);
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
	cr_assert(q, "open = %d", err);
	uint8_t b = 9;
	cr_expect_eq(qcow_write(q, &b, 1, 5), 1);
	qcow_close(q);
	free(img);
}

/* Unknown autoclear bits are cleared by a writer (it does not maintain
 * them), kept by a reader. */
Test(header_ok, autoclear_cleared_on_write_open)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + QH_AUTOCLEAR, 1ull << 7 | 1ull); /* unknown + bitmaps */
	bool changed;
	int logs;
	cr_assert_eq(try_open(img, len, QCOW_RDONLY, &changed, &logs), 0);
	cr_expect(!changed, "read-only open changed the image");

	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	uint8_t b = 9;
	cr_expect_eq(qcow_write(q, &b, 1, 5), 1);
	cr_assert_eq(qcow_flush(q), 0);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(qt_be64(d + QH_AUTOCLEAR), 0, "autoclear %#llx after a write open",
		     (unsigned long long)qt_be64(d + QH_AUTOCLEAR));
	qcow_close(q);
	free(img);
}

Test(header_ok, corrupt_bit)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + QH_INCOMPAT, 2);
	bool changed;
	int logs;
	cr_expect_eq(try_open(img, len, 0, &changed, &logs), -EACCES);
	cr_expect(!changed);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, QCOW_RDONLY, &be, &err);
	cr_assert(q, "read-only open of a corrupt image = %d", err);
	struct qcow_info info;
	qcow_info(q, &info);
	cr_expect(info.corrupt && info.read_only);
	expect_reads(q, CS, 2, 1 << 20);
	uint8_t b = 1;
	cr_expect_lt(qcow_write(q, &b, 1, 0), 0);
	qcow_close(q);
	free(img);
}

/* A repaired dirty image: no corruption, no leak, the dirty bit cleared. */
static void expect_repaired(struct qcow *q, struct qcow_backend be, const char *what)
{
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s: %s", what, m);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect_eq(qt_be64(d + QH_INCOMPAT) & 1, 0, "%s: dirty bit still set", what);
}

/* Dirty bit: writes are either refused, or the image is repaired and the
 * result is clean with the bit cleared. */
Test(header_ok, dirty_bit)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + QH_INCOMPAT, 1);
	qt_put64(img + QH_COMPAT, 1); /* lazy refcounts */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, QCOW_RDONLY, NULL, &err);
	cr_assert(q, "read-only open of a dirty image = %d", err);
	expect_reads(q, CS, 2, 1 << 20);
	qcow_close(q);
	q = qt_open_mem(img, len, 0, &be, &err);
	if (!q) {
		cr_expect_lt(err, 0);
		free(img);
		return;
	}
	uint8_t buf[3000];
	memset(buf, 0x5a, sizeof buf);
	ssize_t w = qcow_write(q, buf, sizeof buf, 3 * CS - 1000);
	if (w >= 0) {
		cr_expect_eq(w, (ssize_t)sizeof buf);
		expect_repaired(q, be, "dirty image written");
	}
	expect_reads(q, CS, 2, 2 * CS); /* the two data clusters are intact */
	if (w >= 0) {
		uint8_t rd[sizeof buf];
		cr_assert_eq(qcow_read(q, rd, sizeof rd, 3 * CS - 1000), (ssize_t)sizeof rd);
		cr_expect(!memcmp(rd, buf, sizeof rd), "write to a repaired image reads back");
	}
	qcow_close(q);
	free(img);
}

/* Unknown header extensions survive header rewrites (resize, feature bits). */
Test(header_ok, unknown_extension_preserved)
{
	size_t len;
	uint8_t *img = base(&len);
	const char data[] = "keep me, please";
	cr_assert_eq(qt_add_extension(img, len, 0x12345678, data, sizeof data), 0);
	cr_assert_eq(qt_add_extension(img, len, 0xe2792aca + 1, "x", 1), 0);
	qt_put64(img + QH_AUTOCLEAR, 1ull << 9);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "open = %d", err);
	uint8_t b = 7;
	cr_assert_eq(qcow_write(q, &b, 1, 100), 1);
	cr_assert_eq(qcow_resize(q, 3ull << 30), 0); /* L1 grows: header rewritten */
	cr_assert_eq(qcow_write(q, &b, 1, (3ull << 30) - 1), 1);
	cr_assert_eq(qcow_flush(q), 0);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	uint32_t l;
	const uint8_t *e = qt_find_extension(d, n, 0x12345678, &l);
	cr_expect(e && l == sizeof data && !memcmp(e, data, l), "unknown extension lost");
	e = qt_find_extension(d, n, 0xe2792aca + 1, &l);
	cr_expect(e && l == 1 && e[0] == 'x', "second unknown extension lost");
	cr_expect_eq(qt_be64(d + QH_SIZE), 3ull << 30);
	const char *m = qt_check_open(q, be, false);
	cr_expect(!m, "%s", m);
	qcow_close(q);
	free(img);
}

/* ---- invalid fields ----------------------------------------------------- */

BAD(magic, -EINVAL, img[3] = 0xfa)
BAD(version_0, -ENOTSUP, qt_put32(img + QH_VERSION, 0))
BAD(version_1, -ENOTSUP, qt_put32(img + QH_VERSION, 1))
BAD(version_4, -ENOTSUP, qt_put32(img + QH_VERSION, 4))
BAD(version_huge, -ENOTSUP, qt_put32(img + QH_VERSION, 0xffffffff))
BAD(cluster_bits_8, -EINVAL, qt_put32(img + QH_CLUSTER_BITS, 8))
BAD(cluster_bits_22, -EINVAL, qt_put32(img + QH_CLUSTER_BITS, 22))
BAD(cluster_bits_0, -EINVAL, qt_put32(img + QH_CLUSTER_BITS, 0))
BAD(cluster_bits_64, -EINVAL, qt_put32(img + QH_CLUSTER_BITS, 64))
BAD(cluster_bits_huge, -EINVAL, qt_put32(img + QH_CLUSTER_BITS, 0x80000010))
BAD(header_length_short, -EINVAL, qt_put32(img + QH_HEADER_LEN, 100))
BAD(header_length_zero, -EINVAL, qt_put32(img + QH_HEADER_LEN, 0))
BAD(header_length_unaligned, -EINVAL, qt_put32(img + QH_HEADER_LEN, 108 + 1))
BAD(header_length_past_cluster, -EINVAL, qt_put32(img + QH_HEADER_LEN, CS + 8))
BAD(header_length_huge, -EINVAL, qt_put32(img + QH_HEADER_LEN, 0xfffffff8))
BAD(refcount_order_7, -EINVAL, qt_put32(img + QH_REFCOUNT_ORDER, 7))
BAD(refcount_order_huge, -EINVAL, qt_put32(img + QH_REFCOUNT_ORDER, 0xffffffff))
BAD(crypt_aes, -ENOTSUP, qt_put32(img + QH_CRYPT, 1))
BAD(crypt_luks, -ENOTSUP, qt_put32(img + QH_CRYPT, 2))
BAD(crypt_3, -EINVAL, qt_put32(img + QH_CRYPT, 3))
BAD(incompat_unknown_bit5, -ENOTSUP, qt_put64(img + QH_INCOMPAT, 1ull << 5))
BAD(incompat_unknown_bit63, -ENOTSUP, qt_put64(img + QH_INCOMPAT, 1ull << 63))
BAD(compression_type_unknown, -ENOTSUP,
    qt_put32(img + QH_HEADER_LEN, 112); img[QH_COMPRESSION] = 2;
    qt_put64(img + QH_INCOMPAT, 1ull << 3))
BAD(compression_zstd_without_bit, -EINVAL,
    qt_put32(img + QH_HEADER_LEN, 112); img[QH_COMPRESSION] = 1)
BAD(compression_bit_with_deflate, -EINVAL,
    qt_put32(img + QH_HEADER_LEN, 112); qt_put64(img + QH_INCOMPAT, 1ull << 3))

/* L1 table */
BAD(l1_offset_unaligned, -EINVAL, qt_put64(img + QH_L1_OFF, 3 * CS + 8))
BAD(l1_offset_overflow, -EINVAL, qt_put64(img + QH_L1_OFF, 0xffffffffffff0000ull))
BAD(l1_offset_past_int64, -EINVAL, qt_put64(img + QH_L1_OFF, 0x8000000000000000ull))
BAD(l1_past_eof, -EINVAL, qt_put64(img + QH_L1_OFF, 1000ull * CS))
BAD(l1_partly_past_eof, -EINVAL,
    qt_put64(img + QH_L1_OFF, len - CS); qt_put32(img + QH_L1_SIZE, CS / 8 + 1))
BAD(l1_size_too_large, -EFBIG, qt_put32(img + QH_L1_SIZE, (32u << 20) / 8 + 1))
BAD(l1_size_max_u32, -EFBIG, qt_put32(img + QH_L1_SIZE, 0xffffffff))
BAD(l1_size_too_small, -EINVAL, qt_put64(img + QH_SIZE, (uint64_t)CS * (CS / 8) + 512))
BAD(l1_size_zero, -EINVAL, qt_put32(img + QH_L1_SIZE, 0))
BAD(size_2p63, -EFBIG, qt_put64(img + QH_SIZE, 1ull << 63))
/* qemu's own arithmetic overflows here; EFBIG or EINVAL are both fine */
Test(header_bad, size_max)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + QH_SIZE, ~0ull);
	expect_fail2(img, len, -EFBIG, -EINVAL, "size_max");
	free(img);
}

/* refcount table */
BAD(reftable_offset_unaligned, -EINVAL, qt_put64(img + QH_RT_OFF, CS + 512))
BAD(reftable_offset_overflow, -EINVAL, qt_put64(img + QH_RT_OFF, 0xffffffffffff0000ull))
BAD(reftable_past_eof, -EINVAL, qt_put64(img + QH_RT_OFF, 1000ull * CS))
BAD(reftable_partly_past_eof, -EINVAL, qt_put32(img + QH_RT_CLUSTERS, (uint32_t)(len / CS)))
BAD(reftable_zero_clusters, -EINVAL, qt_put32(img + QH_RT_CLUSTERS, 0))
BAD(reftable_too_large, -EFBIG, qt_put32(img + QH_RT_CLUSTERS, (8u << 20) / CS + 1))
BAD(reftable_clusters_max_u32, -EFBIG, qt_put32(img + QH_RT_CLUSTERS, 0xffffffff))

/* snapshot table */
BAD(snapshots_too_many, -EFBIG, /* qemu 7.2: "Snapshot table too large" */
    qt_put32(img + QH_NB_SNAP, 65537); qt_put64(img + QH_SNAP_OFF, 4ull * CS))
BAD(snapshots_max_u32, -EFBIG,
    qt_put32(img + QH_NB_SNAP, 0xffffffff); qt_put64(img + QH_SNAP_OFF, 4ull * CS))
BAD(snapshot_table_unaligned, -EINVAL,
    qt_put32(img + QH_NB_SNAP, 1); qt_put64(img + QH_SNAP_OFF, 4ull * CS + 8))
BAD(snapshot_table_overflow, -EINVAL,
    qt_put32(img + QH_NB_SNAP, 1); qt_put64(img + QH_SNAP_OFF, 0xffffffffffff0000ull))
BAD(snapshot_table_past_eof, -EINVAL,
    qt_put32(img + QH_NB_SNAP, 1); qt_put64(img + QH_SNAP_OFF, 1000ull * CS))

/* backing file name */
BAD(backing_offset_past_cluster, -EINVAL,
    qt_put64(img + QH_BACKING_OFF, CS + 100); qt_put32(img + QH_BACKING_LEN, 10))
BAD(backing_offset_huge, -EINVAL,
    qt_put64(img + QH_BACKING_OFF, 1ull << 63); qt_put32(img + QH_BACKING_LEN, 10))
BAD(backing_name_crosses_cluster, -EINVAL,
    qt_put64(img + QH_BACKING_OFF, CS - 5); qt_put32(img + QH_BACKING_LEN, 10))
BAD(backing_name_too_long, -EINVAL,
    qt_put64(img + QH_BACKING_OFF, 1024); qt_put32(img + QH_BACKING_LEN, 1024);
    memset(img + 1024, 'a', 1024))
BAD(backing_name_len_huge, -EINVAL,
    qt_put64(img + QH_BACKING_OFF, 1024); qt_put32(img + QH_BACKING_LEN, 0xffffffff))

/* header extensions */
BAD(extension_absurd_length, -EINVAL,
    qt_put32(img + 104, 0x12345678); qt_put32(img + 108, 0xffffffff))
BAD(extension_past_cluster, -EINVAL,
    qt_put32(img + 104, 0x12345678); qt_put32(img + 108, CS - 104 - 8 + 1))
BAD(extension_chain_past_cluster, -EINVAL,
    for (uint32_t p = 104; p + 8 <= CS; p += 8 + 4096) {
	    qt_put32(img + p, 0x1000 + p); qt_put32(img + p + 4, 4096);
    })
BAD(backing_format_ext_huge, -EINVAL,
    qt_put32(img + 104, 0xe2792aca); qt_put32(img + 108, 0x7fffffff))
BAD(feature_table_ext_huge, -EINVAL,
    qt_put32(img + 104, 0x6803f857); qt_put32(img + 108, 0xfffffff0))

/* extended L2 needs 16 KiB clusters (a library without extended L2 support
 * may say ENOTSUP instead; qemu says EINVAL) */
Test(header_bad, extended_l2_small_clusters)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = 13, .refcount_order = 4,
				 .size = 1 << 20 };
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	qt_put64(img + QH_INCOMPAT, 1ull << 4);
	bool changed;
	int logs;
	int r = try_open(img, len, 0, &changed, &logs);
	cr_expect(r == -EINVAL || r == -ENOTSUP, "qcow_open = %d", r);
	cr_expect(!changed);
	free(img);
}

/* v2 header with a v3-only field set is still just v2 */
Test(header_bad, v2_with_incompat_bits_ignored)
{
	struct qt_img_spec s = { .version = 2, .cluster_bits = 16, .size = 1 << 20,
				 .data_clusters = 1 };
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	qt_put64(img + QH_INCOMPAT, 0); /* v2 has no such field: bytes 72.. are extensions */
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, NULL, &err);
	cr_assert(q, "open = %d", err);
	expect_reads(q, CS, 1, 1 << 20);
	qcow_close(q);
	free(img);
}

/* ---- corruption found at run time -------------------------------------- */

/* Opens img RW; the image must either be refused at open (-EINVAL) or the
 * read/write at voff must fail with -EIO; on -EIO the image is latched. */
static struct qcow *open_corrupt(uint8_t *img, size_t len, struct qcow_backend *be)
{
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, be, &err);
	if (!q) {
		cr_expect_eq(err, -EINVAL, "open = %d", err);
		cr_log_info("refused at open (%d)", err);
	}
	return q;
}

static void expect_read_eio(uint8_t *img, size_t len, uint64_t voff, const char *what,
			    bool latch)
{
	struct qcow_backend be;
	struct qcow *q = open_corrupt(img, len, &be);
	if (!q)
		return;
	uint8_t buf[512];
	ssize_t r = qcow_read(q, buf, sizeof buf, voff);
	cr_expect_eq(r, -EIO, "%s: read = %zd, want -EIO", what, r);
	struct qcow_info info;
	qcow_info(q, &info);
	if (latch) {
		cr_expect(info.corrupt, "%s: corruption not latched", what);
		uint8_t b = 1;
		cr_expect_lt(qcow_write(q, &b, 1, 0), 0, "%s: write after corruption succeeded",
			     what);
	}
	qcow_close(q);
}

Test(runtime, l2_past_eof)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 3 * CS, 1000ull * CS | 1ull << 63);
	expect_read_eio(img, len, 0, "L2 past EOF", true);
	free(img);
}

Test(runtime, l2_unaligned)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 3 * CS, (4ull * CS + 512) | 1ull << 63);
	expect_read_eio(img, len, 0, "L2 unaligned", true);
	free(img);
}

Test(runtime, l1_reserved_bits)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 3 * CS, qt_be64(img + 3 * CS) | 1ull << 60);
	/* qemu masks reserved L1 bits on reads: -EIO or the right data */
	struct qcow_backend be;
	struct qcow *q = open_corrupt(img, len, &be);
	if (q) {
		uint8_t buf[512];
		ssize_t r = qcow_read(q, buf, sizeof buf, 0);
		cr_expect(r == -EIO || (r == 512 && buf[0] == 0x40 && buf[511] == 0x40),
			  "read = %zd, byte %#x", r, buf[0]);
		qcow_close(q);
	}
	free(img);
}

Test(runtime, data_cluster_unaligned)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 4 * CS, (5ull * CS + 4096) | 1ull << 63);
	expect_read_eio(img, len, 0, "data offset unaligned", true);
	free(img);
}

Test(runtime, zero_flag_in_v2)
{
	struct qt_img_spec s = { .version = 2, .cluster_bits = 16, .size = 1 << 20,
				 .data_clusters = 1 };
	size_t len;
	uint8_t *img = qt_build_image(&s, &len);
	qt_put64(img + 4 * CS, qt_be64(img + 4 * CS) | 1);
	expect_read_eio(img, len, 0, "zero flag in v2", true);
	free(img);
}

Test(runtime, compressed_past_eof)
{
	size_t len;
	uint8_t *img = base(&len);
	/* x = 62 - (16 - 8) = 54: offset bits 0..53 */
	qt_put64(img + 4 * CS, 1ull << 62 | 3ull << 54 | 1000ull * CS);
	expect_read_eio(img, len, 0, "compressed data past EOF", false);
	free(img);
}

Test(runtime, compressed_garbage)
{
	size_t len;
	uint8_t *img = base(&len);
	/* points at the 0x41 cluster: not a valid deflate stream of one cluster */
	qt_put64(img + 4 * CS, 1ull << 62 | 3ull << 54 | 6ull * CS);
	expect_read_eio(img, len, 0, "undecodable compressed data", false);
	free(img);
}

/* A data cluster that is the L1 table: the write must be stopped by the
 * overlap check (-EIO), the L1 left intact, the image latched corrupt and
 * the corrupt bit set on disk. */
Test(runtime, overlap_data_is_l1)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 4 * CS + 8, 3ull * CS | 1ull << 63); /* guest cluster 1 -> L1 */
	struct qcow_backend be;
	struct qcow *q = open_corrupt(img, len, &be);
	if (!q) {
		free(img);
		return;
	}
	uint8_t buf[4096];
	memset(buf, 0xee, sizeof buf);
	ssize_t r = qcow_write(q, buf, sizeof buf, CS);
	cr_expect_eq(r, -EIO, "write onto the L1 = %zd", r);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect(!memcmp(d + 3 * CS, img + 3 * CS, CS), "L1 table overwritten");
	cr_expect(qt_be64(d + QH_INCOMPAT) & 2, "corrupt bit not set on disk");
	cr_expect_eq(qcow_write(q, buf, 512, 2 * CS), -EIO, "latched image still writable");
	qcow_close(q);
	free(img);
}

/* L1 points at the refcount table as if it were an L2: updating the L2
 * entry must be refused by the overlap check. */
Test(runtime, overlap_l2_is_reftable)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 3 * CS, 1ull * CS | 1ull << 63);
	struct qcow_backend be;
	struct qcow *q = open_corrupt(img, len, &be);
	if (!q) {
		free(img);
		return;
	}
	uint8_t buf[4096];
	memset(buf, 0xee, sizeof buf);
	/* guest cluster 5: reftable entry 5 is 0 = unallocated -> allocation,
	 * then an "L2" update inside the refcount table */
	ssize_t r = qcow_write(q, buf, sizeof buf, 5ull * CS);
	cr_expect_eq(r, -EIO, "write through an L2 that is the reftable = %zd", r);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect(!memcmp(d + CS, img + CS, 40) && !qt_be64(d + CS + 40),
		  "refcount table overwritten with an L2 entry");
	qcow_close(q);
	free(img);
}

/* An L2 entry pointing at the refcount block. */
Test(runtime, overlap_data_is_refblock)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + 4 * CS + 24, 2ull * CS | 1ull << 63); /* guest 3 -> refblock */
	struct qcow_backend be;
	struct qcow *q = open_corrupt(img, len, &be);
	if (!q) {
		free(img);
		return;
	}
	uint8_t buf[512];
	memset(buf, 0xee, sizeof buf);
	ssize_t r = qcow_write(q, buf, sizeof buf, 3ull * CS);
	cr_expect_eq(r, -EIO, "write onto the refblock = %zd", r);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	cr_expect(!memcmp(d + 2 * CS, img + 2 * CS, 512), "refblock overwritten with data");
	qcow_close(q);
	free(img);
}

/* A handcrafted image (4 KiB clusters, L2 table at cluster 4, guest
 * clusters 0.. at host clusters 5..) flagged dirty with lazy refcounts. */
static uint8_t *dirty_image(unsigned refcount_order, unsigned data_clusters, size_t *len)
{
	struct qt_img_spec s = { .version = 3, .cluster_bits = 12, .refcount_order = refcount_order,
				 .size = 1 << 20, .data_clusters = data_clusters };
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	qt_put64(img + QH_INCOMPAT, 1);
	qt_put64(img + QH_COMPAT, 1);
	return img;
}

/* A dirty lazy-refcount image whose refcounts were never written for its
 * data clusters (what a crash with lazy refcounts leaves): before the first
 * allocation the refcounts must be rebuilt, or new data would land on top
 * of live clusters.  Writes are either refused, or everything is right. */
Test(header_ok, dirty_stale_refcounts_repaired)
{
	size_t len;
	uint8_t *img = dirty_image(4, 6, &len);
	/* clusters 4 (L2) and 5..10 (data) lose their refcounts */
	for (unsigned c = 4; c <= 10; c++)
		qt_put16(img + 2 * 4096 + 2 * c, 0);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	if (!q) {
		cr_expect_lt(err, 0);
		free(img);
		return;
	}
	uint8_t buf[4096];
	memset(buf, 0x77, sizeof buf);
	bool wrote = true;
	for (unsigned i = 0; i < 8 && wrote; i++)
		wrote = qcow_write(q, buf, sizeof buf, (uint64_t)(20 + i) * 4096) == 4096;
	if (wrote) {
		expect_reads(q, 4096, 6, 6 * 4096);
		expect_repaired(q, be, "dirty image after writes");
	}
	qcow_close(q);
	free(img);
}

/*
 * Found by fuzz_qcow: a dirty image whose L2 table holds a compressed
 * descriptor at host offset 0 (inside the header).  The repair skipped
 * it as if it were unallocated, so the header's rebuilt refcount fell one
 * short of its references (qemu-img check: "cluster 0 refcount=1
 * reference=2").  The repair must count it as qemu's check does.
 */
Test(header_ok, dirty_compressed_at_offset_0_counted)
{
	size_t len;
	uint8_t *img = dirty_image(4, 2, &len);
	qt_put64(img + 4 * 4096 + 8 * 5, 1ull << 62); /* guest cluster 5: compressed, 1 sector at 0 */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "writable open of the dirty image = %d", err);
	expect_repaired(q, be, "after the repair");
	qcow_close(q);
	free(img);
}

/*
 * Found by fuzz_qcow: a dirty image with 1-bit refcounts and a cluster
 * named twice.  The rebuilt refcount does not fit the width; the repair
 * refused with -ERANGE, which no caller documents.  It is a malformed
 * image: -EINVAL.
 */
Test(header_ok, dirty_refcount_past_width_refused)
{
	size_t len;
	uint8_t *img = dirty_image(0, 2, &len);
	qt_put64(img + 4 * 4096 + 8 * 1, qt_be64(img + 4 * 4096)); /* guest 1 names guest 0's cluster */
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_expect_null(q);
	cr_expect_eq(err, -EINVAL, "writable open = %d", err);
	if (q)
		qcow_close(q);
	free(img);
}

/* The refcount table names a metadata cluster as a refcount block: a
 * refcount update there must be refused by the overlap check (-EIO), or
 * the image refused at open; the metadata cluster must stay intact. */
static void refblock_overlap(unsigned victim, const char *what)
{
	size_t len;
	uint8_t *img = base(&len);
	qt_put64(img + CS, (uint64_t)victim * CS);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	if (!q) {
		cr_expect(err == -EINVAL || err == -EIO, "%s: open = %d", what, err);
		free(img);
		return;
	}
	uint8_t buf[4096];
	memset(buf, 0xee, sizeof buf);
	/* guest cluster 7 is unallocated: allocation -> refcount update */
	ssize_t r = qcow_write(q, buf, sizeof buf, 7ull * CS);
	if (r >= 0)
		r = qcow_flush(q);
	cr_expect_eq(r, -EIO, "%s: allocation with a refblock on top of metadata = %zd", what, r);
	size_t n;
	const uint8_t *d = qcow_backend_mem_data(be, &n);
	uint8_t *now = malloc(CS);
	memcpy(now, d + (size_t)victim * CS, CS);
	if (victim == 0)
		now[QH_INCOMPAT + 7] &= (uint8_t)~2; /* the corrupt bit may be set, rightly */
	cr_expect(!memcmp(now, img + (size_t)victim * CS, CS),
		  "%s: metadata cluster overwritten", what);
	free(now);
	qcow_close(q);
	free(img);
}

Test(runtime, refblock_is_l1) { refblock_overlap(3, "refblock = L1"); }
Test(runtime, refblock_is_l2) { refblock_overlap(4, "refblock = L2"); }
/* reftable[0] = 0: no refcount block, every cluster looks free, and the
 * allocator would hand out the header cluster */
Test(runtime, no_refblock_header_looks_free) { refblock_overlap(0, "no refblock"); }
Test(runtime, refblock_is_reftable) { refblock_overlap(1, "refblock = reftable"); }

/* The library never prints: failures go to the log callback only. */
Test(header_ok, library_never_prints)
{
	char path[] = "/tmp/qt_printXXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	fflush(stdout);
	fflush(stderr);
	int o1 = dup(1), o2 = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	size_t len;
	uint8_t *img = base(&len);
	qt_put32(img + QH_VERSION, 9);
	struct qcow *q = qt_open_mem(img, len, 0, NULL, NULL); /* no log callback */
	free(img);
	img = base(&len);
	qt_put64(img + 4 * CS + 8, 3ull * CS | 1ull << 63); /* overlap: data = L1 */
	struct qcow *q2 = qt_open_mem(img, len, 0, NULL, NULL);
	uint8_t b[512] = { 0 };
	if (q2) {
		qcow_write(q2, b, sizeof b, CS);
		qcow_close(q2);
	}
	fflush(stdout);
	fflush(stderr);
	dup2(o1, 1);
	dup2(o2, 2);
	close(o1);
	close(o2);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	char out[200] = "";
	if (st.st_size)
		cr_assert_geq(pread(fd, out, sizeof out - 1, 0), 0);
	cr_expect_eq(st.st_size, 0, "the library printed: %s", out);
	cr_expect(!q);
	close(fd);
	free(img);
}
