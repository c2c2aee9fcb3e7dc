/*
 * format.h - the QCOW2 on-disk format: constants, big-endian accessors and
 * pure decoders.  This is the only file that knows bit positions.
 * Reference: qemu docs/interop/qcow2.txt.
 */
#ifndef QC_FORMAT_H
#define QC_FORMAT_H

#include <stdint.h>
#include <string.h>

#define QCOW_MAGIC 0x514649fbu

/* Header field offsets. */
enum {
	QH_MAGIC = 0,
	QH_VERSION = 4,
	QH_BACKING_OFFSET = 8,
	QH_BACKING_SIZE = 16,
	QH_CLUSTER_BITS = 20,
	QH_SIZE = 24,
	QH_CRYPT_METHOD = 32,
	QH_L1_SIZE = 36,
	QH_L1_OFFSET = 40,
	QH_REFTABLE_OFFSET = 48,
	QH_REFTABLE_CLUSTERS = 56,
	QH_NB_SNAPSHOTS = 60,
	QH_SNAPSHOTS_OFFSET = 64,
	QH_INCOMPAT = 72,
	QH_COMPAT = 80,
	QH_AUTOCLEAR = 88,
	QH_REFCOUNT_ORDER = 96,
	QH_HEADER_LENGTH = 100,
	QH_COMPRESSION_TYPE = 104,
	QH_V2_LENGTH = 72,
	QH_V3_LENGTH = 104,
	QH_V3_CREATE_LENGTH = 112, /* with the compression type byte, as qemu writes */
};

#define QC_INCOMPAT_DIRTY (1ull << 0)
#define QC_INCOMPAT_CORRUPT (1ull << 1)
#define QC_INCOMPAT_DATA_FILE (1ull << 2)
#define QC_INCOMPAT_COMPRESSION (1ull << 3)
#define QC_INCOMPAT_EXTL2 (1ull << 4)
#define QC_INCOMPAT_KNOWN 0x1full

#define QC_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QC_AUTOCLEAR_BITMAPS (1ull << 0)
#define QC_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

#define QC_COMPRESSION_DEFLATE 0
#define QC_COMPRESSION_ZSTD 1

/* Header extension types. */
#define QC_EXT_END 0u
#define QC_EXT_BACKING_FORMAT 0xe2792acau
#define QC_EXT_FEATURE_TABLE 0x6803f857u
#define QC_EXT_BITMAPS 0x23852875u
#define QC_EXT_CRYPTO 0x0537be77u
#define QC_EXT_DATA_FILE 0x44415441u

/* Limits qemu enforces (block/qcow2.h). */
#define QC_MIN_CLUSTER_BITS 9
#define QC_MAX_CLUSTER_BITS 21
#define QC_MAX_L1_BYTES (32ull << 20)
#define QC_MAX_REFTABLE_BYTES (8ull << 20)
#define QC_MAX_SNAPSHOTS 65536u
#define QC_MAX_SNAPSHOTS_BYTES (64ull << 20)
#define QC_MAX_SNAPSHOT_EXTRA 1024u
#define QC_MAX_BACKING_NAME 1023u
#define QC_MAX_HOST_OFFSET (1ull << 56) /* bits 9..55 of an L1/L2 entry */

/* L1 entries. */
#define L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define L1E_RESERVED 0x7f000000000001ffull
#define QC_COPIED (1ull << 63)

/* Standard L2 entries. */
#define L2E_COMPRESSED (1ull << 62)
#define L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define L2E_ZERO 1ull
#define L2E_STD_RESERVED 0x3f000000000001feull

/* Refcount table entries. */
#define RTE_OFFSET_MASK 0xfffffffffffffe00ull
#define RTE_RESERVED 0x1ffull

/* Extended L2 bitmap: bits 0..31 allocated, 32..63 reads as zero. */
#define QC_SUBCLUSTERS 32u
#define SC_ALL 0xffffffffu

static inline uint16_t be16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t be32_get(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint64_t be64_get(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)be32_get(b) << 32 | be32_get(b + 4);
}
static inline void be16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void be32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void be64_put(void *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put((uint8_t *)p + 4, (uint32_t)v);
}

/*
 * What a subcluster (the whole cluster without extended L2) reads as.
 * Names follow qemu's QCow2SubclusterType.
 */
enum qc_sc_type {
	SC_NORMAL,          /* data at the host offset */
	SC_COMPRESSED,      /* whole cluster compressed */
	SC_ZERO_PLAIN,      /* zeros, no host cluster */
	SC_ZERO_ALLOC,      /* zeros, host cluster preallocated */
	SC_UNALLOC_PLAIN,   /* backing file or zeros, no host cluster */
	SC_UNALLOC_ALLOC,   /* backing file or zeros, host cluster allocated (ext L2) */
	SC_INVALID,
};

/*
 * Classify subcluster sc of an L2 entry.  For standard entries bitmap is
 * ignored and sc must be 0.  v2 images have no zero flag.  data_file: the
 * image keeps its guest data in an external data file.
 */
static inline enum qc_sc_type qc_sc_type(uint64_t l2e, uint64_t bitmap, unsigned sc,
					 int extl2, int version, int data_file)
{
	/* With an external data file 0 is a valid offset; such clusters always
	 * have refcount 1, so COPIED tells allocated from unallocated. */
	int hoff = (l2e & L2E_OFFSET_MASK) || (data_file && (l2e & QC_COPIED));
	if (l2e & L2E_COMPRESSED)
		return SC_COMPRESSED;
	if (!extl2) {
		if (l2e & L2E_STD_RESERVED)
			return SC_INVALID;
		if (l2e & L2E_ZERO) {
			if (version < 3)
				return SC_INVALID;
			return hoff ? SC_ZERO_ALLOC : SC_ZERO_PLAIN;
		}
		return hoff ? SC_NORMAL : SC_UNALLOC_PLAIN;
	}
	if (l2e & (L2E_STD_RESERVED | L2E_ZERO))
		return SC_INVALID;
	uint32_t alloc = (uint32_t)bitmap, zero = (uint32_t)(bitmap >> 32);
	if (alloc & zero)
		return SC_INVALID;
	int a = (alloc >> sc) & 1, z = (zero >> sc) & 1;
	if (!hoff) {
		if (alloc)
			return SC_INVALID;
		return z ? SC_ZERO_PLAIN : SC_UNALLOC_PLAIN;
	}
	if (a)
		return SC_NORMAL;
	return z ? SC_ZERO_ALLOC : SC_UNALLOC_ALLOC;
}

/* Compressed cluster descriptor: host byte offset and the byte count to read. */
static inline void qc_compressed_desc(uint64_t l2e, unsigned cluster_bits, uint64_t *hoff,
				      uint64_t *len)
{
	unsigned x = 62 - (cluster_bits - 8);
	uint64_t off = l2e & ((1ull << x) - 1);
	uint64_t sectors = (l2e >> x) & ((1ull << (cluster_bits - 8)) - 1);
	*hoff = off;
	*len = (sectors + 1) * 512 - (off & 511);
}

#endif
