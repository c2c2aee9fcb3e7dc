/*
 * parttab.h - the partition table of a flat disk, read as untrusted input.
 *
 * Pure: no shim state, no libc interposition; the disk is read through a
 * callback, so the unit tests feed it hostile tables from memory.
 * Numbering is Linux's: GPT partition N is entry slot N; MBR primaries are
 * 1-4, the data partitions of the extended partition's EBR chain 5, 6, ...
 * Sectors are 512 bytes (the shim reports BLKSSZGET = 512).
 *
 * Decisions (as the Linux kernel does where it has a rule):
 *  - A partition whose end lies past the end of the disk is clamped to the
 *    disk's end; one that starts at or past the end does not exist.
 *  - GPT: header CRC, header size (92..512), my_lba, entry size (128 << k,
 *    at most 4096), entry array size (at most PT_GPT_ARRAY_MAX bytes),
 *    array location and array CRC are all checked; if the primary header
 *    fails, the backup at the last sector is used.  An entry whose
 *    first_lba > last_lba does not exist.
 *  - A GPT is used only behind a protective MBR (an entry of type 0xEE).
 *  - MBR: the 0x55AA signature and every boot indicator (0x00 or 0x80) must
 *    be valid.  The EBR chain is followed at most PT_EBR_MAX links, each
 *    EBR must lie inside the extended partition; a link to itself ends it.
 *    The extended partition itself is not a partition file.
 */
#ifndef PARTTAB_H
#define PARTTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_SECTOR 512u
#define PT_EBR_MAX 128
#define PT_GPT_ARRAY_MAX (1u << 20)

/* Read exactly n bytes at byte offset off (off + n <= disk size).
 * Returns 0 or -errno. */
typedef int (*pt_read_fn)(void *arg, void *buf, size_t n, uint64_t off);

struct pt_part {
	uint64_t start, len; /* bytes, within the disk */
	bool clamped;        /* the table said it ends past the disk's end */
};

/*
 * Partition `num` (1-based) of a disk of disk_size bytes.
 * 0: *out filled.  -ENOENT: no such partition; `why` (if whylen) says why
 * in one line without the image's name (e.g. "no partition 9 (GPT
 * partitions: 1 2 3)").  Other -errno: the read callback failed.
 */
int pt_find(pt_read_fn rd, void *arg, uint64_t disk_size, unsigned num, struct pt_part *out,
	    char *why, size_t whylen);

#endif
