/*
 * header.c - the image header, its extensions and the snapshot table:
 * parse and validate everything in cluster 0, rewrite single fields in
 * place (so unknown extensions and fields are preserved byte for byte),
 * and lay out a new image.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

static int check_geometry(struct qcow *q, const uint8_t *h)
{
	q->version = be32_get(h + QH_VERSION);
	if (q->version != 2 && q->version != 3) {
		qc_log(q, "unsupported qcow2 version %u", q->version);
		return -ENOTSUP;
	}
	q->cluster_bits = be32_get(h + QH_CLUSTER_BITS);
	if (q->cluster_bits < QC_MIN_CLUSTER_BITS || q->cluster_bits > QC_MAX_CLUSTER_BITS) {
		qc_log(q, "cluster_bits %u out of range 9..21", q->cluster_bits);
		return -EINVAL;
	}
	q->cluster_size = 1ull << q->cluster_bits;
	if (q->version == 2) {
		q->header_length = QH_V2_LENGTH;
		q->refcount_order = 4;
		return 0;
	}
	q->header_length = be32_get(h + QH_HEADER_LENGTH);
	if (q->header_length < QH_V3_LENGTH || q->header_length > q->cluster_size ||
	    (q->header_length & 7)) {
		qc_log(q, "header_length %u invalid", q->header_length);
		return -EINVAL;
	}
	q->refcount_order = be32_get(h + QH_REFCOUNT_ORDER);
	if (q->refcount_order > 6) {
		qc_log(q, "refcount_order %u out of range 0..6", q->refcount_order);
		return -EINVAL;
	}
	return 0;
}

static int check_features(struct qcow *q, const uint8_t *h)
{
	uint32_t crypt = be32_get(h + QH_CRYPT_METHOD);
	if (crypt) {
		qc_log(q, crypt <= 2 ? "encrypted images are not supported"
				     : "unknown encryption method %u", crypt);
		return crypt <= 2 ? -ENOTSUP : -EINVAL;
	}
	if (q->version == 2)
		return 0;
	q->incompat = be64_get(h + QH_INCOMPAT);
	q->compat = be64_get(h + QH_COMPAT);
	q->autoclear = be64_get(h + QH_AUTOCLEAR);
	if (q->incompat & ~QC_INCOMPAT_KNOWN) {
		qc_log(q, "unsupported incompatible features 0x%llx",
		       (unsigned long long)(q->incompat & ~QC_INCOMPAT_KNOWN));
		return -ENOTSUP;
	}
	q->compression_type = q->header_length > QH_COMPRESSION_TYPE ? h[QH_COMPRESSION_TYPE] : 0;
	if (q->compression_type > QC_COMPRESSION_ZSTD) {
		qc_log(q, "unknown compression type %u", q->compression_type);
		return -ENOTSUP;
	}
	if (!!(q->incompat & QC_INCOMPAT_COMPRESSION) != (q->compression_type != 0)) {
		qc_log(q, "compression type %u disagrees with the incompatible feature bit",
		       q->compression_type);
		return -EINVAL;
	}
	q->extl2 = q->incompat & QC_INCOMPAT_EXTL2;
	if (q->extl2 && q->cluster_bits < 14) {
		qc_log(q, "extended L2 entries need clusters of at least 16 KiB");
		return -EINVAL;
	}
	return 0;
}

/*
 * Make bytes [0, upto) of cluster 0 present in q->hdr.  Open reads its
 * first 4 KiB, where qemu puts the header, its extensions and the backing
 * file name; the rest of a 64 KiB (or 2 MiB) cluster is read only if an
 * image keeps something there (the header is only ever written field by
 * field, so bytes never read are never written back).
 */
static int hdr_have(struct qcow *q, uint64_t upto)
{
	if (upto <= q->hdr_read || q->hdr_read >= q->hdr_end)
		return 0;
	int r = qc_pread(q, &q->be, q->hdr + q->hdr_read, q->hdr_end - q->hdr_read, q->hdr_read, false);
	if (r < 0)
		return r;
	q->hdr_read = q->hdr_end;
	return 0;
}

/* Walk the header extensions; unknown ones are left alone (and kept on disk). */
static int parse_extensions(struct qcow *q, uint64_t end)
{
	const uint8_t *h = q->hdr;
	uint64_t off = q->header_length;
	int r;
	while (off + 8 <= end) {
		if ((r = hdr_have(q, off + 8)) < 0)
			return r;
		uint32_t type = be32_get(h + off), len = be32_get(h + off + 4);
		off += 8;
		if (type == QC_EXT_END)
			return 0;
		if (len > end - off) {
			qc_log(q, "header extension 0x%x too large (%u bytes)", type, len);
			return -EINVAL;
		}
		if ((r = hdr_have(q, off + len)) < 0)
			return r;
		switch (type) {
		case QC_EXT_BACKING_FORMAT:
			if (len >= sizeof(q->backing_fmt)) {
				qc_log(q, "backing format name too long");
				return -EINVAL;
			}
			memcpy(q->backing_fmt, h + off, len);
			q->backing_fmt[len] = 0;
			break;
		case QC_EXT_DATA_FILE:
			free(q->data_file_name);
			if (!(q->data_file_name = strndup((const char *)h + off, len)))
				return -ENOMEM;
			break;
		case QC_EXT_BITMAPS: /* checked before use (bitmaps.c) */
			if (len >= 24) {
				q->bm_nb = be32_get(h + off);
				q->bm_dir_bytes = be64_get(h + off + 8);
				q->bm_dir_offset = be64_get(h + off + 16);
			}
			break;
		case QC_EXT_CRYPTO:
			qc_log(q, "encrypted images are not supported");
			return -ENOTSUP;
		default:
			break;
		}
		off += ((uint64_t)len + 7) & ~7ull;
	}
	return 0;
}

static int parse_backing_name(struct qcow *q)
{
	uint64_t off = be64_get(q->hdr + QH_BACKING_OFFSET);
	uint32_t len = be32_get(q->hdr + QH_BACKING_SIZE);
	if (!off)
		return 0;
	if (len == 0 || len > QC_MAX_BACKING_NAME || off >= q->cluster_size ||
	    len > q->cluster_size - off || off < q->header_length) {
		qc_log(q, "backing file name (offset %llu, length %u) out of range",
		       (unsigned long long)off, len);
		return -EINVAL;
	}
	int r = hdr_have(q, off + len);
	if (r < 0)
		return r;
	memcpy(q->backing_name, q->hdr + off, len);
	q->backing_name[len] = 0;
	if (strlen(q->backing_name) != len) {
		qc_log(q, "backing file name contains a NUL byte");
		return -EINVAL;
	}
	return 0;
}

/*
 * Read and validate cluster 0 (header, extensions, backing file name).
 * Fills the geometry fields of q.  Returns 0 or -errno (logged).
 */
int qc_header_parse(struct qcow *q, uint64_t file_size)
{
	uint8_t h[4096] = {0}; /* qemu's header and extensions; >= QH_V3_CREATE_LENGTH */
	uint64_t first = file_size < sizeof(h) ? file_size : sizeof(h);
	int r;
	if (file_size < QH_V2_LENGTH) {
		qc_log(q, "file too small for a qcow2 header");
		return -EINVAL;
	}
	if ((r = qc_pread(q, &q->be, h, first, 0, false)) < 0)
		return r;
	if (be32_get(h + QH_MAGIC) != QCOW_MAGIC) {
		qc_log(q, "not a qcow2 image (bad magic)");
		return -EINVAL;
	}
	if ((r = check_geometry(q, h)) < 0)
		return r;
	if (q->version == 3 && file_size < QH_V3_LENGTH) {
		qc_log(q, "file too small for a version 3 header");
		return -EINVAL;
	}
	if (!(q->hdr = malloc(q->cluster_size)))
		return -ENOMEM;
	q->hdr_end = file_size < q->cluster_size ? file_size : q->cluster_size;
	q->hdr_read = first < q->hdr_end ? first : q->hdr_end;
	memcpy(q->hdr, h, q->hdr_read);
	/* past the end of a short file: zeros; [hdr_read, hdr_end) is read
	 * before any use (hdr_have) */
	memset(q->hdr + q->hdr_end, 0, q->cluster_size - q->hdr_end);
	if ((r = hdr_have(q, q->header_length)) < 0 || (r = check_features(q, q->hdr)) < 0)
		return r;
	q->size = be64_get(q->hdr + QH_SIZE);
	if (q->size > INT64_MAX) {
		qc_log(q, "virtual size %llu too large", (unsigned long long)q->size);
		return -EFBIG;
	}
	if ((r = parse_backing_name(q)) < 0)
		return r;
	uint64_t bo = be64_get(q->hdr + QH_BACKING_OFFSET);
	if ((r = parse_extensions(q, bo ? bo : q->cluster_size)) < 0)
		return r;

	q->extl2 = q->extl2 && q->version == 3;
	q->l2_entry_bytes = q->extl2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->extl2 ? 4 : 3);
	q->sc_bits = q->extl2 ? q->cluster_bits - 5 : q->cluster_bits;
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;
	q->refcount_max = q->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << q->refcount_order)) - 1;
	q->l2_slice_bytes = q->cluster_size < QC_L2_SLICE_BYTES ? q->cluster_size : QC_L2_SLICE_BYTES;
	return 0;
}

/* Write bytes [field, field+len) of the in-memory header to the file. */
int qc_header_write(struct qcow *q, unsigned field, unsigned len)
{
	if (q->read_only)
		return -EROFS;
	return qc_pwrite(q, &q->be, q->hdr + field, len, field);
}

static void put_ext(uint8_t *h, uint64_t *off, uint32_t type, const void *data, uint32_t len)
{
	be32_put(h + *off, type);
	be32_put(h + *off + 4, len);
	memcpy(h + *off + 8, data, len);
	*off += 8 + (((uint64_t)len + 7) & ~7ull);
}

/*
 * Lay out an empty image: header, a one-cluster refcount table and one
 * refcount block counting clusters 0..2.  The caller opens it and grows
 * the virtual size (which allocates the L1 table through the allocator).
 */
int qc_header_create(struct qcow_backend *be, const struct qcow_create_opts *c)
{
	unsigned cb = c->cluster_bits ? c->cluster_bits : 16;
	unsigned ver = c->version ? c->version : 3;
	unsigned rbits = c->refcount_bits ? c->refcount_bits : 16;
	unsigned order = (unsigned)__builtin_ctz(rbits);
	uint64_t cs = 1ull << cb;
	if (cb < QC_MIN_CLUSTER_BITS || cb > QC_MAX_CLUSTER_BITS || (ver != 2 && ver != 3) ||
	    (rbits & (rbits - 1)) || rbits > 64 || (ver == 2 && rbits != 16) ||
	    (c->extended_l2 && (ver != 3 || cb < 14)) || (c->lazy_refcounts && ver != 3) ||
	    c->size > INT64_MAX)
		return -EINVAL;
	size_t blen = c->backing_file ? strlen(c->backing_file) : 0;
	size_t flen = c->backing_fmt ? strlen(c->backing_fmt) : 0;
	if (blen > QC_MAX_BACKING_NAME || flen > 16)
		return -EINVAL;
	uint8_t *h = calloc(1, cs * 3);
	if (!h)
		return -ENOMEM;
	be32_put(h + QH_MAGIC, QCOW_MAGIC);
	be32_put(h + QH_VERSION, ver);
	be32_put(h + QH_CLUSTER_BITS, cb);
	be64_put(h + QH_REFTABLE_OFFSET, cs);
	be32_put(h + QH_REFTABLE_CLUSTERS, 1);
	uint64_t off = QH_V2_LENGTH;
	if (ver == 3) {
		uint64_t incompat = c->extended_l2 ? QC_INCOMPAT_EXTL2 : 0;
		be64_put(h + QH_INCOMPAT, incompat);
		be64_put(h + QH_COMPAT, c->lazy_refcounts ? QC_COMPAT_LAZY_REFCOUNTS : 0);
		be32_put(h + QH_REFCOUNT_ORDER, order);
		be32_put(h + QH_HEADER_LENGTH, QH_V3_CREATE_LENGTH);
		off = QH_V3_CREATE_LENGTH;
	}
	if (flen)
		put_ext(h, &off, QC_EXT_BACKING_FORMAT, c->backing_fmt, (uint32_t)flen);
	off += 8; /* end-of-extensions marker: type 0, length 0 */
	if (blen) {
		if (off + blen > cs) {
			free(h);
			return -EINVAL;
		}
		memcpy(h + off, c->backing_file, blen);
		be64_put(h + QH_BACKING_OFFSET, off);
		be32_put(h + QH_BACKING_SIZE, (uint32_t)blen);
	}
	be64_put(h + cs, 2 * cs); /* reftable[0] -> refblock at cluster 2 */
	for (unsigned i = 0; i < 3; i++) /* refcount 1 for clusters 0, 1, 2 */
		qc_rb_set(h + 2 * cs, i, order, 1);
	int r = 0;
	if (be->ops->truncate && (r = be->ops->truncate(be->h, 0)) < 0)
		goto out;
	ssize_t w = be->ops->pwrite(be->h, h, cs * 3, 0);
	r = w < 0 ? (int)w : 0;
	if (!r)
		r = be->ops->flush(be->h);
out:
	free(h);
	return r;
}

void qc_snapshots_free(struct qcow *q)
{
	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		free(q->snaps[i].id);
		free(q->snaps[i].name);
	}
	free(q->snaps);
	q->snaps = NULL;
	q->nb_snapshots = 0;
}

static int snapshot_parse(struct qcow *q, const uint8_t *p, uint64_t avail, uint64_t *used,
			  struct qc_snapshot *s)
{
	if (avail < 40)
		return -EINVAL;
	uint16_t id_len = be16_get(p + 12), name_len = be16_get(p + 14);
	uint32_t extra = be32_get(p + 36);
	uint64_t need = 40 + (uint64_t)extra + id_len + name_len;
	if (extra > QC_MAX_SNAPSHOT_EXTRA || need > avail)
		return -EINVAL;
	/* qemu does not write the padding of the last entry at the end of the file */
	need = (need + 7) & ~7ull;
	if (need > avail)
		need = avail;
	s->l1_offset = be64_get(p);
	s->l1_size = be32_get(p + 8);
	s->disk_size = extra >= 16 ? be64_get(p + 40 + 8) : q->size;
	s->id = strndup((const char *)p + 40 + extra, id_len);
	s->name = strndup((const char *)p + 40 + extra + id_len, name_len);
	if (!s->id || !s->name)
		return -ENOMEM;
	*used = need;
	return 0;
}

/* Read and validate the snapshot table and each snapshot's L1 placement. */
int qc_snapshots_load(struct qcow *q, uint64_t file_size)
{
	uint32_t nb = be32_get(q->hdr + QH_NB_SNAPSHOTS);
	uint64_t off = be64_get(q->hdr + QH_SNAPSHOTS_OFFSET);
	if (!nb)
		return 0;
	if (nb > QC_MAX_SNAPSHOTS) {
		qc_log(q, "too many snapshots (%u)", nb);
		return -EFBIG;
	}
	uint64_t avail = file_size > off ? file_size - off : 0;
	if (avail > QC_MAX_SNAPSHOTS_BYTES)
		avail = QC_MAX_SNAPSHOTS_BYTES;
	int r = qc_validate_table(q, off, nb, 40, QC_MAX_SNAPSHOTS_BYTES, file_size, "snapshot table");
	if (r < 0)
		return r;
	uint8_t *buf = malloc(avail);
	if (!buf)
		return -ENOMEM;
	if ((r = qc_pread(q, &q->be, buf, avail, off, false)) < 0)
		goto out;
	if (!(q->snaps = calloc(nb, sizeof(*q->snaps)))) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t pos = 0;
	for (uint32_t i = 0; i < nb; i++) {
		uint64_t used;
		struct qc_snapshot *s = &q->snaps[i];
		q->nb_snapshots = i + 1;
		if ((r = snapshot_parse(q, buf + pos, avail - pos, &used, s)) < 0) {
			if (r == -EINVAL)
				qc_log(q, "snapshot table truncated or malformed at entry %u", i);
			goto out;
		}
		pos += used;
		if ((r = qc_validate_table(q, s->l1_offset, s->l1_size, 8, QC_MAX_L1_BYTES, file_size,
					   "snapshot L1 table")) < 0)
			goto out;
	}
	q->snapshots_offset = off;
	q->snapshots_bytes = pos;
	r = 0;
out:
	free(buf);
	return r;
}
