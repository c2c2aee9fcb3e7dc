/*
 * parttab.c - find partition N in an MBR (with its EBR chain) or a GPT.
 * Every number read from the disk is checked before use: see parttab.h
 * for the rules.  All arithmetic on table values is overflow-checked.
 */
#include "parttab.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* crc32.c, not zlib's: the shim maps zlib only when a compressed cluster
 * needs it (qcow/compress.c), and the musl flavour has none */
uint32_t shim_crc32(uint32_t crc, const void *p, size_t n);
#define crc32(crc, p, n) shim_crc32(crc, p, n)
typedef unsigned uInt;

enum pt_kind { PT_DATA, PT_EXTENDED };

struct scan {
	pt_read_fn rd;
	void *arg;
	uint64_t disk_size;
	unsigned want;
	const char *scheme;   /* "MBR" or "GPT", for messages */
	bool found;
	enum pt_kind kind;
	uint64_t start, len;  /* bytes as the table says; start == UINT64_MAX: unrepresentable */
	char list[96];        /* " 1 2 5" - the partitions that exist */
	char problem[128];    /* the first part of the table that was not used, and why */
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void problem(struct scan *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct scan *s, const char *fmt, ...)
{
	if (s->problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->problem, sizeof s->problem, fmt, ap);
	va_end(ap);
}

/* Reads n bytes at sector lba: 0, 1 (not inside the disk) or -errno. */
static int read_at(struct scan *s, void *buf, size_t n, uint64_t lba)
{
	uint64_t off;
	if (__builtin_mul_overflow(lba, PT_SECTOR, &off) || off > s->disk_size ||
	    n > s->disk_size - off)
		return 1;
	return s->rd(s->arg, buf, n, off);
}

/* One partition of the table, in sectors as the table gives them. */
static void visit(struct scan *s, unsigned num, enum pt_kind kind, uint64_t lba, uint64_t nsec)
{
	uint64_t start, len;
	if (__builtin_mul_overflow(lba, PT_SECTOR, &start))
		start = UINT64_MAX;
	if (__builtin_mul_overflow(nsec, PT_SECTOR, &len))
		len = UINT64_MAX;
	if (kind == PT_DATA && start < s->disk_size) {
		size_t used = strlen(s->list);
		if (used + 16 < sizeof s->list)
			snprintf(s->list + used, sizeof s->list - used, " %u", num);
		else if (!strstr(s->list, "..."))
			snprintf(s->list + used, sizeof s->list - used, " ...");
	}
	if (num == s->want && !s->found) {
		s->found = true;
		s->kind = kind;
		s->start = start;
		s->len = len;
	}
}

/* ---- MBR */

struct mbr_ent {
	uint8_t type;
	uint32_t lba, nsec;
};

static bool mbr_signed(const uint8_t *sec)
{
	return sec[510] == 0x55 && sec[511] == 0xAA;
}

static void mbr_entries(const uint8_t *sec, struct mbr_ent e[4])
{
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = sec + 446 + 16 * i;
		e[i].type = p[4];
		e[i].lba = le32(p + 8);
		e[i].nsec = le32(p + 12);
	}
}

static bool mbr_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* The data partitions of one extended partition's EBR chain, numbered from
 * *num on.  An EBR's data entries are relative to that EBR, its link to
 * the next EBR relative to the extended partition's start. */
static int scan_ebr_chain(struct scan *s, uint64_t ext_lba, uint64_t ext_nsec, unsigned *num)
{
	uint8_t sec[PT_SECTOR];
	struct mbr_ent e[4];
	uint64_t ext_end = ext_lba + ext_nsec, cur = ext_lba; /* both < 2^33 */
	for (int depth = 0; depth < PT_EBR_MAX; depth++) {
		if (cur >= ext_end) {
			problem(s, "an EBR link points outside the extended partition");
			return 0;
		}
		int r = read_at(s, sec, sizeof sec, cur);
		if (r < 0)
			return r;
		if (r > 0 || !mbr_signed(sec)) {
			if (depth > 0 || r > 0)
				problem(s, "EBR at sector %llu is %s", (unsigned long long)cur,
					r > 0 ? "past the end of the disk" : "not signed (0x55AA)");
			return 0;
		}
		mbr_entries(sec, e);
		for (int i = 0; i < 4; i++) {
			if (!e[i].nsec || mbr_extended(e[i].type))
				continue;
			uint64_t lba = cur + e[i].lba;
			/* entries 3 and 4 of an EBR are often garbage (as Linux) */
			if (i >= 2 && (lba < ext_lba || lba + e[i].nsec > ext_end))
				continue;
			visit(s, (*num)++, PT_DATA, lba, e[i].nsec);
		}
		uint64_t next = 0;
		for (int i = 0; i < 4 && !next; i++)
			if (e[i].nsec && mbr_extended(e[i].type))
				next = ext_lba + e[i].lba;
		if (!next)
			return 0;
		if (next == cur) {
			problem(s, "EBR at sector %llu links to itself", (unsigned long long)cur);
			return 0;
		}
		cur = next;
	}
	problem(s, "EBR chain longer than %d links, the rest is ignored", PT_EBR_MAX);
	return 0;
}

static int scan_mbr(struct scan *s, const uint8_t *sec)
{
	struct mbr_ent e[4];
	unsigned num = 5;
	s->scheme = "MBR";
	mbr_entries(sec, e);
	for (int i = 0; i < 4; i++)
		if (e[i].nsec)
			visit(s, (unsigned)i + 1, mbr_extended(e[i].type) ? PT_EXTENDED : PT_DATA,
			      e[i].lba, e[i].nsec);
	for (int i = 0; i < 4; i++) {
		if (!e[i].nsec || !mbr_extended(e[i].type))
			continue;
		int r = scan_ebr_chain(s, e[i].lba, e[i].nsec, &num);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- GPT */

struct gpt {
	uint32_t n, esize;
	uint8_t *array;
};

/* Loads and checks the header at lba and its entry array.
 * 0: *g filled (g->array malloc'd); 1: invalid (*bad says why); -errno. */
static int gpt_load(struct scan *s, uint64_t lba, struct gpt *g, const char **bad)
{
	uint8_t h[PT_SECTOR];
	int r = read_at(s, h, sizeof h, lba);
	if (r != 0) {
		*bad = "header past the end of the disk";
		return r;
	}
	uint32_t hsize = le32(h + 12), crc = le32(h + 16);
	if (memcmp(h, "EFI PART", 8) != 0)
		return *bad = "no header signature", 1;
	if (hsize < 92 || hsize > sizeof h)
		return *bad = "bad header size", 1;
	memset(h + 16, 0, 4);
	if (crc32(0, h, hsize) != crc)
		return *bad = "header CRC mismatch", 1;
	if (le64(h + 24) != lba)
		return *bad = "header names another sector as its own", 1;
	uint64_t array_lba = le64(h + 72);
	g->n = le32(h + 80);
	g->esize = le32(h + 84);
	if (g->esize < 128 || g->esize > 4096 || (g->esize & (g->esize - 1)))
		return *bad = "bad partition entry size", 1;
	uint64_t bytes = (uint64_t)g->n * g->esize; /* < 2^44 */
	if (bytes > PT_GPT_ARRAY_MAX)
		return *bad = "partition entry array too large", 1;
	if (!(g->array = malloc(bytes ? bytes : 1)))
		return -ENOMEM;
	r = read_at(s, g->array, (size_t)bytes, array_lba);
	if (r == 0 && crc32(0, g->array, (uInt)bytes) != le32(h + 88))
		*bad = "partition entry array CRC mismatch", r = 1;
	else if (r > 0)
		*bad = "partition entry array past the end of the disk";
	if (r != 0) {
		free(g->array);
		g->array = NULL;
	}
	return r;
}

static int scan_gpt(struct scan *s)
{
	static const uint8_t unused[16];
	struct gpt g;
	const char *bad1 = NULL, *bad2 = NULL;
	s->scheme = "GPT";
	int r = gpt_load(s, 1, &g, &bad1);
	if (r > 0) {
		uint64_t last = s->disk_size / PT_SECTOR - 1;
		r = last > 1 ? gpt_load(s, last, &g, &bad2) : 1;
		if (r > 0) {
			problem(s, "the GPT is invalid (primary: %s; backup: %s)", bad1,
				bad2 ? bad2 : "disk too small");
			return 0;
		}
	}
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < g.n; i++) {
		const uint8_t *ent = g.array + (size_t)i * g.esize;
		uint64_t first = le64(ent + 32), last = le64(ent + 40), nsec;
		if (!memcmp(ent, unused, 16) || first > last)
			continue;
		if (__builtin_add_overflow(last - first, 1, &nsec))
			nsec = UINT64_MAX;
		visit(s, i + 1, PT_DATA, first, nsec);
	}
	free(g.array);
	return 0;
}

/* ---- the answer */

static int not_found(struct scan *s, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int not_found(struct scan *s, char *why, size_t whylen, const char *fmt, ...)
{
	if (!whylen)
		return -ENOENT;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < whylen && s->problem[0])
		snprintf(why + n, whylen - (size_t)n, "; %s", s->problem);
	return -ENOENT;
}

int pt_find(pt_read_fn rd, void *arg, uint64_t disk_size, unsigned num, struct pt_part *out,
	    char *why, size_t whylen)
{
	struct scan s = {.rd = rd, .arg = arg, .disk_size = disk_size, .want = num};
	uint8_t sec[PT_SECTOR];
	struct mbr_ent e[4];
	bool protective = false;
	int r = read_at(&s, sec, sizeof sec, 0);
	if (r < 0)
		return r;
	if (r > 0 || !mbr_signed(sec))
		return not_found(&s, why, whylen, "no partition table (no MBR signature)");
	mbr_entries(sec, e);
	for (int i = 0; i < 4; i++) {
		uint8_t boot = sec[446 + 16 * i];
		if (boot != 0 && boot != 0x80) /* a FAT/NTFS boot sector, not a table */
			return not_found(&s, why, whylen, "no partition table (invalid MBR)");
		protective |= e[i].type == 0xee;
	}
	r = protective ? scan_gpt(&s) : scan_mbr(&s, sec);
	if (r < 0)
		return r;
	if (!s.found && !s.list[0] && s.problem[0] && whylen) { /* the table itself failed */
		snprintf(why, whylen, "no partition %u: %s", num, s.problem);
		return -ENOENT;
	}
	if (!s.found)
		return not_found(&s, why, whylen, "no partition %u (%s partitions:%s)", num, s.scheme,
				 s.list[0] ? s.list : " none");
	if (s.kind == PT_EXTENDED)
		return not_found(&s, why, whylen,
				 "partition %u is the MBR's extended partition (its logical partitions are 5 and up)",
				 num);
	if (s.start >= disk_size)
		return not_found(&s, why, whylen, "partition %u starts past the end of the disk", num);
	out->start = s.start;
	out->clamped = s.len > disk_size - s.start;
	out->len = out->clamped ? disk_size - s.start : s.len;
	return 0;
}
