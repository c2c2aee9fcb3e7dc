/* kindsrw.c IMG TWIN SEED OPS CLUSTER: a seeded random workload run in one
 * process under the shim on IMG (a *.qcow2, translated) and, mirrored, on
 * TWIN (a raw file, untouched by the shim): pwrite and lseek+write of
 * random bytes at random offsets and sizes (unaligned, crossing cluster and
 * 2 KiB..64 KiB subcluster boundaries, from 1 byte to 3 clusters),
 * fallocate PUNCH_HOLE, ZERO_RANGE, BLKDISCARD/BLKZEROOUT on IMG (punch /
 * zero range on TWIN), fsync, and preads of both compared byte for byte.
 * The disk size never changes (overlays and snapshots keep theirs).  Ends
 * with a full comparison.  Exit 0 = equal all along; otherwise one line on
 * stderr says which operation or offset differed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t s;
static uint64_t rnd(uint64_t n)
{
	s ^= s << 13, s ^= s >> 7, s ^= s << 17;
	return n ? s % n : 0;
}

static uint64_t size, cs;

/* An offset near an interesting boundary: a cluster start, a subcluster
 * start (cluster/32), or anywhere; then nudged by a few bytes. */
static uint64_t pick_off(void)
{
	uint64_t c = rnd(size / cs + 1) * cs, o;
	switch (rnd(4)) {
	case 0: o = c; break;
	case 1: o = c + rnd(32) * (cs / 32); break;
	case 2: o = c + cs - 1 - rnd(700); break;
	default: o = rnd(size); break;
	}
	if (rnd(2))
		o += rnd(1025) - 512;
	return o % size;
}

static uint64_t pick_len(uint64_t off)
{
	uint64_t n;
	switch (rnd(4)) {
	case 0: n = 1 + rnd(600); break;
	case 1: n = cs / 32 + rnd(3) * cs / 32 + rnd(2); break;
	case 2: n = 1 + rnd(3 * cs); break;
	default: n = cs + 1 + rnd(cs); break;
	}
	return n > size - off ? size - off : n;
}

static int die(const char *what, uint64_t off, uint64_t n)
{
	fprintf(stderr, "kindsrw: %s at %llu+%llu (seed state %llu)\n", what,
		(unsigned long long)off, (unsigned long long)n, (unsigned long long)s);
	return 1;
}

static int compare(int fi, int ft, uint8_t *a, uint8_t *b, uint64_t off, uint64_t n)
{
	if (pread(fi, a, n, (off_t)off) != (ssize_t)n)
		return die("short pread on the image", off, n);
	if (pread(ft, b, n, (off_t)off) != (ssize_t)n)
		return die("short pread on the twin", off, n);
	for (uint64_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return die("image differs from twin", off + i, n - i);
	return 0;
}

/* Aligned discard/zero-out through the block-device ioctls (the shim
 * emulates them on images); the twin gets the matching fallocate. */
static int blk(int fi, int ft, uint64_t off, uint64_t n, int discard)
{
	off &= ~511ull, n &= ~511ull;
	if (!n)
		return 0;
	uint64_t range[2] = {off, n};
	if (ioctl(fi, discard ? BLKDISCARD : BLKZEROOUT, range) < 0)
		return die(discard ? "BLKDISCARD failed" : "BLKZEROOUT failed", off, n);
	if (fallocate(ft, discard ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE,
		      (off_t)off, (off_t)n) < 0)
		return die("fallocate on the twin failed", off, n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: kindsrw IMG TWIN SEED OPS CLUSTER\n");
		return 2;
	}
	s = strtoull(argv[3], NULL, 10) * 2654435761u + 1;
	long ops = atol(argv[4]);
	cs = strtoull(argv[5], NULL, 10);
	int fi = open(argv[1], O_RDWR), ft = open(argv[2], O_RDWR);
	struct stat si, st;
	if (fi < 0 || ft < 0 || fstat(fi, &si) < 0 || fstat(ft, &st) < 0)
		return die("cannot open both files", 0, 0);
	if (si.st_size != st.st_size)
		return die("sizes differ (image, twin)", (uint64_t)si.st_size, (uint64_t)st.st_size);
	size = (uint64_t)st.st_size;
	uint8_t *a = malloc(4 * cs), *b = malloc(4 * cs), *pool = malloc(8 * cs);
	if (!a || !b || !pool || !size || cs < 512)
		return die("bad arguments or no memory", size, cs);
	for (uint64_t j = 0; j < 8 * cs; j++) /* write sources: slices of random bytes */
		pool[j] = (uint8_t)rnd(256);
	for (long i = 0; i < ops; i++) {
		uint64_t op = rnd(100), off = pick_off(), n = pick_len(off);
		int mode = 0;
		if (op < 40) {
			const uint8_t *src = pool + rnd(4 * cs);
			if (op < 32 && (pwrite(fi, src, n, (off_t)off) != (ssize_t)n ||
					pwrite(ft, src, n, (off_t)off) != (ssize_t)n))
				return die("pwrite failed", off, n);
			if (op >= 32 && (lseek(fi, (off_t)off, SEEK_SET) < 0 || write(fi, src, n) != (ssize_t)n ||
					 pwrite(ft, src, n, (off_t)off) != (ssize_t)n))
				return die("lseek+write failed", off, n);
		} else if (op < 50) {
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		} else if (op < 58) {
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		} else if (op < 62) {
			if (blk(fi, ft, off, n, 1))
				return 1;
		} else if (op < 65) {
			if (blk(fi, ft, off, n, 0))
				return 1;
		} else if (op < 67) {
			if (fsync(fi) < 0)
				return die("fsync failed", 0, 0);
		} else if (compare(fi, ft, a, b, off, n)) {
			return 1;
		}
		if (mode && (fallocate(fi, mode, (off_t)off, (off_t)n) < 0 ||
			     fallocate(ft, mode, (off_t)off, (off_t)n) < 0))
			return die(mode & FALLOC_FL_PUNCH_HOLE ? "punch failed" : "zero range failed", off, n);
	}
	if (fstat(fi, &si) < 0 || (uint64_t)si.st_size != size)
		return die("the image's size changed", (uint64_t)si.st_size, size);
	for (uint64_t off = 0; off < size; off += 4 * cs)
		if (compare(fi, ft, a, b, off, size - off < 4 * cs ? size - off : 4 * cs))
			return 1;
	if (close(fi) < 0 || close(ft) < 0)
		return die("close failed", 0, 0);
	return 0;
}
