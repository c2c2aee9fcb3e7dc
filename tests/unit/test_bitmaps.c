/*
 * test_bitmaps.c - persistent dirty bitmaps (issue 4): a write open flags
 * every bitmap IN_USE (so qemu treats them as inconsistent and never trusts
 * them), keeps the bitmaps autoclear bit and everything else of the
 * directory, tables and data, so the image stays check-clean; a dirty
 * image's refcount rebuild counts the bitmaps' clusters; a directory that
 * cannot be trusted is left alone and the autoclear bit cleared instead.
 *
 * The image: qt_build_image with 5 data clusters (host 5..9), of which
 * guest clusters 2..4 are unmapped again; host cluster 7 becomes the
 * bitmap directory, 8 the bitmap table, 9 the bitmap data.
 */
#include <criterion/criterion.h>

#include "qt.h"

#define CS (1u << 16)
#define DIR_C 7
#define TAB_C 8
#define DATA_C 9

static uint8_t *bitmap_image(size_t *len, uint32_t name_size)
{
	struct qt_img_spec s = {.version = 3, .cluster_bits = 16, .refcount_order = 4,
				.size = 8 << 20, .data_clusters = 5};
	uint8_t *img = qt_build_image(&s, len);
	cr_assert(img);
	for (unsigned i = 2; i < 5; i++)
		qt_put64(img + 4 * CS + 8 * i, 0); /* L2 at cluster 4 */
	memset(img + DIR_C * CS, 0, 3 * CS);
	uint8_t *d = img + DIR_C * CS;
	qt_put64(d, (uint64_t)TAB_C * CS);
	qt_put32(d + 8, 1);     /* table entries */
	qt_put32(d + 12, 2);    /* flags: auto */
	d[16] = 1;              /* type: dirty tracking */
	d[17] = 16;             /* granularity 64 KiB */
	qt_put16(d + 18, (uint16_t)name_size);
	memcpy(d + 24, "b0", 2);
	qt_put64(img + TAB_C * CS, (uint64_t)DATA_C * CS);
	memset(img + DATA_C * CS, 0xf0, 16);
	uint8_t ext[24] = {0};
	qt_put32(ext, 1);
	qt_put64(ext + 8, 32); /* one entry: 24 + 2 bytes of name, padded */
	qt_put64(ext + 16, (uint64_t)DIR_C * CS);
	cr_assert_eq(qt_add_extension(img, *len, 0x23852875u, ext, sizeof ext), 0);
	qt_put64(img + QH_AUTOCLEAR, 1);
	return img;
}

/* Open read-write, write one byte, close; returns the resulting bytes. */
static uint8_t *write_once(const uint8_t *img, size_t len, size_t *out_len)
{
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
	cr_assert(q, "write open = %d", err);
	uint8_t b = 0x77;
	cr_assert_eq(qcow_write(q, &b, 1, 3 * CS + 5), 1);
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *after = qt_mem_copy(be, out_len);
	qcow_close(q);
	return after;
}

static void expect_clean(const uint8_t *img, size_t len, uint64_t leaks)
{
	struct qt_check c;
	cr_assert_eq(qt_check_image(img, len, &c), 0, "%s", c.msg);
	cr_expect_eq(c.errors, 0, "errors: %s", c.msg);
	cr_expect_eq(c.leaks, leaks, "%llu leaks, want %llu: %s", (unsigned long long)c.leaks,
		     (unsigned long long)leaks, c.msg);
}

Test(bitmaps, write_open_flags_in_use_and_stays_clean)
{
	size_t len, n;
	uint8_t *img = bitmap_image(&len, 2);
	expect_clean(img, len, 0);
	uint8_t *after = write_once(img, len, &n);
	cr_expect_eq(qt_be64(after + QH_AUTOCLEAR), 1, "the bitmaps autoclear bit was cleared");
	cr_expect_eq(qt_be32(after + DIR_C * CS + 12), 3, "flags %#x, want IN_USE|AUTO",
		     qt_be32(after + DIR_C * CS + 12));
	cr_expect(!memcmp(after + DIR_C * CS, img + DIR_C * CS, 12) &&
			  !memcmp(after + DIR_C * CS + 16, img + DIR_C * CS + 16, CS - 16),
		  "the directory changed beyond the flags");
	cr_expect(!memcmp(after + TAB_C * CS, img + TAB_C * CS, 2 * CS),
		  "the bitmap table or data changed");
	expect_clean(after, n, 0);
	/* A second write open finds them already IN_USE and writes nothing there. */
	size_t n2;
	uint8_t *again = write_once(after, n, &n2);
	cr_expect(!memcmp(again + DIR_C * CS, after + DIR_C * CS, CS));
	free(again);
	free(after);
	free(img);
}

Test(bitmaps, read_only_open_changes_nothing)
{
	size_t len, n;
	uint8_t *img = bitmap_image(&len, 2);
	struct qcow_backend be;
	int err;
	struct qcow *q = qt_open_mem(img, len, QCOW_RDONLY, &be, &err);
	cr_assert(q, "read-only open = %d", err);
	uint8_t buf[512];
	cr_expect_eq(qcow_read(q, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	uint8_t *after = qt_mem_copy(be, &n);
	cr_expect(n == len && !memcmp(after, img, len), "a read-only open wrote");
	qcow_close(q);
	free(after);
	free(img);
}

/* Lazy refcounts left dirty with the bitmaps' refcounts wrong: the rebuild
 * counts directory, table and data, so the bit can stay set. */
Test(bitmaps, dirty_image_rebuild_counts_bitmap_clusters)
{
	size_t len, n;
	uint8_t *img = bitmap_image(&len, 2);
	for (unsigned c = DIR_C; c <= DATA_C; c++)
		qt_put16(img + 2 * CS + 2 * c, 0); /* 16-bit refcounts in cluster 2 */
	qt_put64(img + QH_INCOMPAT, 1);
	qt_put64(img + QH_COMPAT, 1);
	uint8_t *after = write_once(img, len, &n);
	cr_expect_eq(qt_be64(after + QH_INCOMPAT) & 1, 0, "still dirty");
	cr_expect_eq(qt_be64(after + QH_AUTOCLEAR), 1);
	cr_expect_eq(qt_be32(after + DIR_C * CS + 12), 3);
	expect_clean(after, n, 0);
	free(after);
	free(img);
}

/* An entry whose name runs past the directory: nothing there is trusted or
 * written; the autoclear bit is cleared, so qemu ignores the extension (its
 * three clusters are then merely leaked). */
Test(bitmaps, invalid_directory_falls_back_to_clearing_autoclear)
{
	size_t len, n;
	uint8_t *img = bitmap_image(&len, 200);
	uint8_t *after = write_once(img, len, &n);
	cr_expect_eq(qt_be64(after + QH_AUTOCLEAR), 0);
	cr_expect(!memcmp(after + DIR_C * CS, img + DIR_C * CS, 3 * CS), "the directory was written");
	expect_clean(after, n, 3);
	free(after);
	free(img);
}

/* A directory placed on the L1 table must never be written. */
Test(bitmaps, directory_on_metadata_is_not_written)
{
	size_t len, n;
	uint8_t *img = bitmap_image(&len, 2);
	uint32_t el;
	uint8_t *ext = (uint8_t *)qt_find_extension(img, len, 0x23852875u, &el);
	cr_assert(ext);
	qt_put64(ext + 16, 3 * CS);
	uint8_t *after = write_once(img, len, &n);
	cr_expect_eq(qt_be64(after + QH_AUTOCLEAR), 0);
	cr_expect_eq(qt_be64(after + 3 * CS), qt_be64(img + 3 * CS), "the L1 table was overwritten");
	free(after);
	free(img);
}

/* Found by the fuzzer: a bitmap table on the header.  Kept, it made every
 * header change (a moved L1 table) new "bitmap data" references to
 * clusters in use.  Tables or data on other metadata are not kept: the
 * autoclear bit is cleared on disk, the directory is not written, and the
 * bitmaps' clusters become leaks. */
Test(bitmaps, table_on_metadata_is_not_kept)
{
	for (unsigned target = 0; target < 2; target++) {
		size_t len, n;
		uint8_t *img = bitmap_image(&len, 2);
		if (target == 0)
			qt_put64(img + DIR_C * CS, 0); /* the table on the header */
		else
			qt_put64(img + TAB_C * CS, 4ull * CS); /* a data cluster on the L2 table */
		uint8_t *after = write_once(img, len, &n);
		cr_expect_eq(qt_be64(after + QH_AUTOCLEAR), 0, "target %u: autoclear kept", target);
		cr_expect(!memcmp(after + DIR_C * CS, img + DIR_C * CS, CS),
			  "target %u: the directory was written", target);
		struct qt_check c;
		cr_assert_eq(qt_check_image(after, n, &c), 0, "%s", c.msg);
		cr_expect_eq(c.errors, 0, "target %u: %s", target, c.msg);
		free(after);
		free(img);
	}
}

/*
 * Issue 14: the bitmaps kept in use are metadata.  Guest cluster 2 names
 * the bitmap data cluster (not COPIED; its refcount, 1, counts the bitmap
 * table's reference only): a discard must not release it, a write must not
 * land on it, and neither may the table.
 */
Test(bitmaps, kept_bitmaps_are_never_released_or_written)
{
	for (unsigned target = TAB_C; target <= DATA_C; target++) {
		size_t len;
		uint8_t *img = bitmap_image(&len, 2);
		qt_put64(img + 4 * CS + 8 * 2, (uint64_t)target * CS);
		struct qcow_backend be;
		int err;
		struct qcow *q = qt_open_mem(img, len, 0, &be, &err);
		cr_assert(q, "open = %d", err);
		cr_expect_eq(qcow_zero(q, 2 * CS, CS, QCOW_ZERO_UNMAP), -EIO, "discard");
		qcow_close(q);
		q = qt_open_mem(img, len, 0, &be, &err);
		cr_assert(q, "open = %d", err);
		uint8_t b[512];
		memset(b, 0x99, sizeof b);
		cr_expect_eq(qcow_write(q, b, sizeof b, 2 * CS), -EIO, "write");
		size_t n;
		const uint8_t *d = qcow_backend_mem_data(be, &n);
		cr_expect(!memcmp(d + target * CS, img + target * CS, CS), "cluster %u changed", target);
		qcow_close(q);
		free(img);
	}
}
