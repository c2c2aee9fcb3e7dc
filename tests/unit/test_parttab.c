/*
 * test_parttab.c - shim/parttab.c on tables built in memory: valid MBR
 * (primaries, extended + logical) and GPT layouts give Linux's numbering and
 * exact byte ranges; hostile tables (EBR loops and long chains, links out of
 * the extended partition, sectors past the disk's end, 32/64-bit overflows,
 * bad GPT header/array CRCs, sizes and locations) give -ENOENT with a
 * reason and never read outside the disk; random and mutated tables never
 * crash and never return a range outside the disk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "parttab.h"

#define SEC 512u

struct disk {
	uint8_t *d;
	uint64_t size;
	int reads;
	bool fail; /* every read fails with EIO */
};

static int disk_read(void *arg, void *buf, size_t n, uint64_t off)
{
	struct disk *k = arg;
	cr_assert(off <= k->size && n <= k->size - off, "read outside the disk: %zu at %llu", n,
		  (unsigned long long)off);
	k->reads++;
	if (k->fail)
		return -EIO;
	memcpy(buf, k->d + off, n);
	return 0;
}

static struct disk *disk_new(uint64_t sectors)
{
	struct disk *k = calloc(1, sizeof *k);
	k->size = sectors * SEC;
	k->d = calloc(1, k->size);
	cr_assert(k && k->d);
	return k;
}

static void disk_free(struct disk *k)
{
	free(k->d);
	free(k);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* Entry `slot` (0-3) of the MBR/EBR at sector `at`, which gets signed. */
static void mbr_set(struct disk *k, uint64_t at, int slot, uint8_t type, uint32_t lba, uint32_t nsec)
{
	uint8_t *s = k->d + at * SEC, *p = s + 446 + 16 * slot;
	p[0] = 0;
	p[4] = type;
	put32(p + 8, lba);
	put32(p + 12, nsec);
	s[510] = 0x55;
	s[511] = 0xAA;
}

static int find(struct disk *k, unsigned num, struct pt_part *p, char *why)
{
	memset(p, 0xa5, sizeof *p);
	return pt_find(disk_read, k, k->size, num, p, why, 256);
}

static void expect(struct disk *k, unsigned num, uint64_t start_sec, uint64_t nsec)
{
	struct pt_part p;
	char why[256] = "";
	int r = find(k, num, &p, why);
	cr_assert_eq(r, 0, "partition %u: %d (%s)", num, r, why);
	cr_assert_eq(p.start, start_sec * SEC, "partition %u start %llu", num, (unsigned long long)p.start);
	cr_assert_eq(p.len, nsec * SEC, "partition %u len %llu", num, (unsigned long long)p.len);
}

static void expect_none(struct disk *k, unsigned num, const char *reason)
{
	struct pt_part p;
	char why[256] = "";
	int r = find(k, num, &p, why);
	cr_assert_eq(r, -ENOENT, "partition %u: %d, expected -ENOENT", num, r);
	cr_assert(strstr(why, reason), "partition %u: reason \"%s\" lacks \"%s\"", num, why, reason);
	cr_assert(!strchr(why, '\n'));
}

/* ---- MBR */

/* 1: 64+256, 2: extended 512+2048 holding 5, 6, 7, 3: 3000+500; 4 empty. */
static struct disk *dos_layout(void)
{
	struct disk *k = disk_new(4096);
	mbr_set(k, 0, 0, 0x83, 64, 256);
	mbr_set(k, 0, 1, 0x05, 512, 2048);
	mbr_set(k, 0, 2, 0x0c, 3000, 500);
	/* EBR chain: 512 -> 1000 -> 1500 */
	mbr_set(k, 512, 0, 0x83, 63, 100);
	mbr_set(k, 512, 1, 0x05, 1000 - 512, 300);
	mbr_set(k, 1000, 0, 0x82, 100, 200);
	mbr_set(k, 1000, 1, 0x05, 1500 - 512, 500);
	mbr_set(k, 1500, 0, 0x83, 50, 400);
	return k;
}

Test(parttab, mbr_primary_and_logical)
{
	struct disk *k = dos_layout();
	expect(k, 1, 64, 256);
	expect(k, 3, 3000, 500);
	expect(k, 5, 512 + 63, 100);
	expect(k, 6, 1000 + 100, 200);
	expect(k, 7, 1500 + 50, 400);
	expect_none(k, 2, "extended partition");
	expect_none(k, 4, "MBR partitions: 1 3 5 6 7");
	expect_none(k, 8, "no partition 8");
	expect_none(k, 0, "no partition 0");
	disk_free(k);
}

Test(parttab, mbr_not_a_table)
{
	struct disk *k = disk_new(64);
	expect_none(k, 1, "no MBR signature");
	mbr_set(k, 0, 0, 0x83, 1, 10);
	k->d[446] = 0x29; /* boot indicator of a FAT boot sector's code */
	expect_none(k, 1, "invalid MBR");
	k->d[446] = 0x80;
	expect(k, 1, 1, 10);
	disk_free(k);
}

Test(parttab, tiny_disks)
{
	uint8_t b[SEC] = {0};
	struct disk k = {.d = b};
	struct pt_part p;
	char why[64];
	for (k.size = 0; k.size <= SEC; k.size += 100) {
		int r = pt_find(disk_read, &k, k.size, 1, &p, why, sizeof why);
		cr_assert_eq(r, -ENOENT);
	}
	/* no reason buffer at all */
	cr_assert_eq(pt_find(disk_read, &k, 0, 1, &p, NULL, 0), -ENOENT);
}

Test(parttab, mbr_clamped_and_beyond_end)
{
	struct disk *k = disk_new(1000);
	mbr_set(k, 0, 0, 0x83, 900, 200);               /* ends past the disk */
	mbr_set(k, 0, 1, 0x83, 1000, 10);               /* starts at the end */
	mbr_set(k, 0, 2, 0x83, 0xffffffff, 0xffffffff); /* 32-bit extremes */
	struct pt_part p;
	char why[256];
	cr_assert_eq(find(k, 1, &p, why), 0);
	cr_assert_eq(p.start, 900 * SEC);
	cr_assert_eq(p.len, 100 * SEC);
	cr_assert(p.clamped);
	expect_none(k, 2, "past the end of the disk");
	expect_none(k, 3, "past the end of the disk");
	expect_none(k, 4, "MBR partitions: 1)");
	disk_free(k);
}

Test(parttab, ebr_loop_self)
{
	struct disk *k = disk_new(4096);
	mbr_set(k, 0, 0, 0x0f, 100, 3000);
	mbr_set(k, 100, 0, 0x83, 1, 10);
	mbr_set(k, 100, 1, 0x05, 0, 10); /* links to itself */
	expect(k, 5, 101, 10);
	expect_none(k, 6, "links to itself");
	disk_free(k);
}

Test(parttab, ebr_loop_cycle_is_capped)
{
	struct disk *k = disk_new(4096);
	mbr_set(k, 0, 0, 0x05, 100, 3000);
	mbr_set(k, 100, 0, 0x83, 1, 10);
	mbr_set(k, 100, 1, 0x05, 100, 10); /* 100 -> 200 */
	mbr_set(k, 200, 0, 0x83, 1, 10);
	mbr_set(k, 200, 1, 0x05, 0, 10); /* 200 -> 100 */
	k->reads = 0;
	expect(k, 5, 101, 10);
	expect(k, 6, 201, 10);
	expect(k, 5 + PT_EBR_MAX - 1, 201, 10);
	expect_none(k, 5 + PT_EBR_MAX, "longer than");
	disk_free(k);
}

Test(parttab, ebr_link_outside_extended_or_disk)
{
	struct disk *k = disk_new(4096);
	mbr_set(k, 0, 0, 0x85, 100, 200);
	mbr_set(k, 100, 0, 0x83, 1, 10);
	mbr_set(k, 100, 1, 0x05, 500, 10); /* 600: outside [100, 300) */
	mbr_set(k, 600, 0, 0x83, 1, 10);
	expect(k, 5, 101, 10);
	expect_none(k, 6, "outside the extended partition");
	/* extended partition bigger than the disk, link past the disk's end */
	mbr_set(k, 0, 0, 0x05, 100, 0xffffff00);
	mbr_set(k, 100, 1, 0x05, 0xfffff000, 10);
	expect_none(k, 6, "past the end of the disk");
	/* an EBR without signature ends the chain */
	mbr_set(k, 100, 1, 0x05, 500, 10);
	k->d[600 * SEC + 510] = 0;
	expect_none(k, 6, "not signed");
	disk_free(k);
}

Test(parttab, ebr_garbage_in_entries_3_and_4)
{
	struct disk *k = disk_new(4096);
	mbr_set(k, 0, 0, 0x05, 100, 200);
	mbr_set(k, 100, 0, 0x83, 1, 10);
	mbr_set(k, 100, 2, 0x83, 5000, 10); /* outside the extended partition: skipped */
	mbr_set(k, 100, 3, 0x83, 20, 10);   /* inside: counted, as Linux does */
	expect(k, 5, 101, 10);
	expect(k, 6, 120, 10);
	expect_none(k, 7, "MBR partitions: 5 6");
	disk_free(k);
}

Test(parttab, read_error_is_passed_on)
{
	struct disk *k = dos_layout();
	struct pt_part p;
	k->fail = true;
	cr_assert_eq(find(k, 5, &p, NULL), -EIO);
	disk_free(k);
}

/* ---- GPT */

#define NENT 128
static const uint8_t linux_type[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
				       0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4};

static void gpt_header(struct disk *k, uint64_t my, uint64_t alt, uint64_t array_lba)
{
	uint8_t *h = k->d + my * SEC, *arr = k->d + array_lba * SEC;
	memset(h, 0, SEC);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, 92);
	put64(h + 24, my);
	put64(h + 32, alt);
	put64(h + 40, 34);
	put64(h + 48, k->size / SEC - 34);
	put64(h + 72, array_lba);
	put32(h + 80, NENT);
	put32(h + 84, 128);
	put32(h + 88, (uint32_t)crc32(0, arr, NENT * 128));
	put32(h + 16, (uint32_t)crc32(0, h, 92));
}

/* Re-sign both headers after an edit of the entries or of a header field. */
static void gpt_seal(struct disk *k)
{
	uint64_t last = k->size / SEC - 1;
	memcpy(k->d + (last - 32) * SEC, k->d + 2 * SEC, NENT * 128);
	gpt_header(k, 1, last, 2);
	gpt_header(k, last, 1, last - 32);
}

static void gpt_entry(struct disk *k, int slot, uint64_t first, uint64_t last)
{
	uint8_t *e = k->d + 2 * SEC + slot * 128;
	memcpy(e, linux_type, 16);
	e[16] = (uint8_t)slot + 1; /* unique GUID */
	put64(e + 32, first);
	put64(e + 40, last);
}

static struct disk *gpt_layout(void)
{
	struct disk *k = disk_new(2048);
	mbr_set(k, 0, 0, 0xee, 1, 2047);
	gpt_entry(k, 0, 40, 99);
	gpt_entry(k, 1, 100, 999);
	gpt_entry(k, 3, 1500, 1599); /* slot 3 (p3) empty */
	gpt_seal(k);
	return k;
}

Test(parttab, gpt_slots)
{
	struct disk *k = gpt_layout();
	expect(k, 1, 40, 60);
	expect(k, 2, 100, 900);
	expect(k, 4, 1500, 100);
	expect_none(k, 3, "GPT partitions: 1 2 4)");
	expect_none(k, 129, "no partition 129");
	disk_free(k);
}

Test(parttab, gpt_needs_protective_mbr)
{
	struct disk *k = gpt_layout();
	k->d[446 + 4] = 0x83; /* the 0xEE entry becomes an MBR partition */
	expect(k, 1, 1, 2047);
	expect_none(k, 2, "MBR partitions: 1)");
	disk_free(k);
}

Test(parttab, gpt_backup_used_when_primary_broken)
{
	struct disk *k = gpt_layout();
	k->d[SEC + 100] ^= 1; /* outside the CRC'd 92 bytes: still valid */
	expect(k, 2, 100, 900);
	k->d[SEC + 40] ^= 1; /* first_usable: header CRC breaks */
	expect(k, 2, 100, 900);
	k->d[2 * SEC + 128 + 32] ^= 1; /* primary array: CRC breaks too */
	expect(k, 2, 100, 900);
	uint64_t last = k->size / SEC - 1;
	k->d[last * SEC + 16] ^= 1; /* and the backup header */
	expect_none(k, 2, "no partition 2: the GPT is invalid (primary: header CRC mismatch; backup: header CRC mismatch)");
	disk_free(k);
}

Test(parttab, gpt_array_crc)
{
	struct disk *k = gpt_layout();
	uint64_t last = k->size / SEC - 1;
	k->d[2 * SEC + 40] ^= 1;
	k->d[(last - 32) * SEC + 40] ^= 1;
	expect_none(k, 1, "partition entry array CRC mismatch");
	disk_free(k);
}

/* Rewrites one header field in both headers, re-CRC'd: the value itself is
 * what is under test. */
static void both_headers(struct disk *k, int field, int width, uint64_t v)
{
	uint64_t last = k->size / SEC - 1;
	uint64_t at[2] = {1, last};
	for (int i = 0; i < 2; i++) {
		uint8_t *h = k->d + at[i] * SEC;
		if (width == 4)
			put32(h + field, (uint32_t)v);
		else
			put64(h + field, v);
		uint32_t hs = *(uint32_t *)(h + 12);
		if (hs > SEC)
			hs = 92; /* CRC over what we can; the size check fires first */
		put32(h + 16, 0);
		put32(h + 16, (uint32_t)crc32(0, h, hs));
	}
}

Test(parttab, gpt_hostile_header_fields)
{
	static const struct {
		int field, width;
		uint64_t v;
		const char *reason;
	} cases[] = {
		{12, 4, 91, "bad header size"},
		{12, 4, 513, "bad header size"},
		{12, 4, 0xffffffff, "bad header size"},
		{84, 4, 0, "bad partition entry size"},
		{84, 4, 136, "bad partition entry size"},
		{84, 4, 8192, "bad partition entry size"},
		{84, 4, 0x80000000, "bad partition entry size"},
		{80, 4, 0xffffffff, "entry array too large"},
		{80, 4, PT_GPT_ARRAY_MAX / 128 + 1, "entry array too large"},
		{72, 8, UINT64_MAX, "past the end of the disk"},
		{72, 8, UINT64_MAX / SEC + 1, "past the end of the disk"},
		{72, 8, 2047, "past the end of the disk"},
		{24, 8, 7, "names another sector"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct disk *k = gpt_layout();
		both_headers(k, cases[i].field, cases[i].width, cases[i].v);
		expect_none(k, 1, cases[i].reason);
		disk_free(k);
	}
}

Test(parttab, gpt_zero_entries_and_hostile_entries)
{
	struct disk *k = gpt_layout();
	both_headers(k, 80, 4, 0);
	/* an empty array has CRC 0 */
	both_headers(k, 88, 4, 0);
	expect_none(k, 1, "GPT partitions: none");
	disk_free(k);

	k = gpt_layout();
	gpt_entry(k, 0, 5000, 4000);                  /* first > last */
	gpt_entry(k, 1, 0, UINT64_MAX);               /* whole 64-bit range */
	gpt_entry(k, 3, UINT64_MAX / 2, UINT64_MAX);  /* start * 512 overflows */
	gpt_entry(k, 4, 2048, 3000);                  /* starts at the end */
	gpt_entry(k, 5, 1800, 1ull << 62);            /* clamped */
	gpt_seal(k);
	expect_none(k, 1, "GPT partitions: 2 6)");
	struct pt_part p;
	char why[256];
	cr_assert_eq(find(k, 2, &p, why), 0);
	cr_assert(p.start == 0 && p.len == k->size && p.clamped);
	expect_none(k, 4, "past the end of the disk");
	expect_none(k, 5, "past the end of the disk");
	cr_assert_eq(find(k, 6, &p, why), 0);
	cr_assert(p.start == 1800ull * SEC && p.len == 248ull * SEC && p.clamped);
	disk_free(k);
}

Test(parttab, gpt_disk_too_small_for_backup)
{
	struct disk *k = disk_new(3);
	mbr_set(k, 0, 0, 0xee, 1, 2);
	expect_none(k, 1, "the GPT is invalid (primary: no header signature; backup:");
	disk_free(k);
}

/* ---- random and mutated tables: no crash, no read outside, sane ranges */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void check_sane(struct disk *k)
{
	for (unsigned num = 1; num <= 10; num++) {
		struct pt_part p;
		char why[128];
		int r = pt_find(disk_read, k, k->size, num, &p, why, sizeof why);
		cr_assert(r == 0 || r == -ENOENT, "r=%d", r);
		if (r == 0)
			cr_assert(p.start < k->size && p.len > 0 && p.len <= k->size - p.start);
	}
}

Test(parttab, mutated_tables)
{
	for (int round = 0; round < 300; round++) {
		struct disk *k = round & 1 ? gpt_layout() : dos_layout();
		int flips = 1 + (int)(rnd() % 8);
		for (int f = 0; f < flips; f++) {
			/* mostly the table sectors, sometimes anywhere */
			uint64_t where = rnd() % 4 ? rnd() % (36 * SEC) : rnd() % k->size;
			if (!(round & 1) && rnd() % 2)
				where = (uint64_t[]){512, 1000, 1500}[rnd() % 3] * SEC + 446 + rnd() % 66;
			k->d[where] = (uint8_t)rnd();
		}
		if ((round & 1) && rnd() % 2)
			gpt_seal(k); /* valid CRCs over hostile values */
		check_sane(k);
		disk_free(k);
	}
}

Test(parttab, random_sectors)
{
	for (int round = 0; round < 200; round++) {
		struct disk *k = disk_new(64 + rnd() % 64);
		for (uint64_t i = 0; i < k->size; i++)
			k->d[i] = (uint8_t)rnd();
		k->d[510] = 0x55;
		k->d[511] = 0xAA;
		for (int i = 0; i < 4; i++)
			k->d[446 + 16 * i] = rnd() % 2 ? 0x80 : 0;
		if (round % 3 == 0)
			k->d[446 + 4] = 0xee;
		else if (round % 3 == 1)
			k->d[446 + 4] = 0x05;
		check_sane(k);
		disk_free(k);
	}
}
