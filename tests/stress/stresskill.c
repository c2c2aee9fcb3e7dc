/*
 * stresskill - the two halves of the kill -9 stress test (tests/stress/kill.sh).
 *
 *   stresskill write IMG LOG SEED
 *       Run under LD_PRELOAD=libqcowshim.so until killed: random pwrite,
 *       fallocate(PUNCH_HOLE) and sync points (fsync, fdatasync,
 *       sync_file_range + fsync, sync_file_range alone, close + reopen) on IMG.  Before each op
 *       it appends an intent record to LOG (a plain file); after each sync
 *       point returns it appends a commit record and fdatasyncs LOG.  A
 *       kill -9 cannot lose a completed write(2) to LOG, so LOG names every
 *       op that may have reached IMG and which of them were committed.
 *   stresskill check RAW BASE LOG
 *       RAW is the image after the kill (qemu-img convert -O raw), BASE its
 *       contents before the writer started.  Every byte whose last op
 *       (in LOG order) precedes the last commit must hold that op's data;
 *       bytes touched by uncommitted ops are not checked.  Exit 1 on the
 *       first wrong byte.
 *
 * Data written by op (seed s) at absolute offset x is pat(s, x), so any
 * overlap of ops can be recomputed byte by byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { R_WRITE = 1, R_PUNCH = 2, R_COMMIT = 3 };
#define R_MAGIC 0x51534b4cu

struct rec {
	uint32_t magic, kind;
	uint64_t off, len, seed;
};

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_state;
static uint64_t below(uint64_t n) { return n ? (rng_state = mix(rng_state)) % n : 0; }

static uint8_t pat(uint64_t seed, uint64_t x)
{
	return (uint8_t)(mix(seed ^ (x >> 3) * 0x2545f4914f6cdd1dull) >> ((x & 7) * 8));
}

static void die(const char *what)
{
	fprintf(stderr, "stresskill: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void log_rec(int lfd, uint32_t kind, uint64_t off, uint64_t len, uint64_t seed)
{
	struct rec r = { R_MAGIC, kind, off, len, seed };
	if (write(lfd, &r, sizeof r) != (ssize_t)sizeof r)
		die("log write");
}

static int open_img(const char *img)
{
	int fd = open(img, O_RDWR);
	if (fd < 0)
		die(img);
	return fd;
}

/* One sync point of a random kind; the commit record follows its success. */
static int sync_point(int fd, int lfd, const char *img, uint64_t size)
{
	int r;
	switch (below(5)) {
	case 0:
		r = fsync(fd);
		break;
	case 1:
		r = fdatasync(fd);
		break;
	case 2:
		r = sync_file_range(fd, 0, (off64_t)size, SYNC_FILE_RANGE_WAIT_BEFORE |
				    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		if (r == 0)
			r = fsync(fd);
		break;
	case 3: /* alone: the shim flushes the translator for it too */
		r = sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		break;
	default:
		r = close(fd);
		fd = open_img(img);
		break;
	}
	if (r != 0)
		die("sync");
	log_rec(lfd, R_COMMIT, 0, 0, 0);
	if (fdatasync(lfd) != 0)
		die("log fdatasync");
	return fd;
}

static _Noreturn void do_write(const char *img, const char *logp, uint64_t seed)
{
	int fd = open_img(img);
	int lfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (lfd < 0)
		die(logp);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0)
		die("image size");
	uint64_t size = (uint64_t)st.st_size;
	rng_state = seed;
	size_t cap = 512 << 10;
	uint8_t *buf = malloc(cap);
	for (uint64_t n = 0;; n++) {
		uint64_t k = below(100);
		uint64_t len = 1 + below(below(4) ? 65536 : cap);
		uint64_t off = below(size);
		if (below(2))
			off &= ~(uint64_t)4095;
		if (len > size - off)
			len = size - off;
		if (k < 75) {
			uint64_t s = mix(seed * 1000003 + n);
			for (uint64_t i = 0; i < len; i++)
				buf[i] = pat(s, off + i);
			log_rec(lfd, R_WRITE, off, len, s);
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
				die("pwrite");
		} else if (k < 85) {
			log_rec(lfd, R_PUNCH, off, len, 0);
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				      (off_t)len) != 0)
				die("fallocate");
		} else {
			fd = sync_point(fd, lfd, img, size);
		}
	}
}

static uint8_t *slurp(const char *p, size_t *n)
{
	int fd = open(p, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(p);
	uint8_t *b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		if (r <= 0)
			die(p);
		got += (size_t)r;
	}
	close(fd);
	*n = got;
	return b;
}

static int do_check(const char *rawp, const char *basep, const char *logp)
{
	size_t rn, bn, ln;
	uint8_t *raw = slurp(rawp, &rn), *exp = slurp(basep, &bn);
	struct rec *log = (struct rec *)slurp(logp, &ln);
	size_t nrec = ln / sizeof *log, last_commit = 0, ops = 0, committed = 0;
	if (rn != bn) {
		fprintf(stderr, "stresskill: size %zu after the kill, %zu before\n", rn, bn);
		return 1;
	}
	for (size_t i = 0; i < nrec; i++) {
		if (log[i].magic != R_MAGIC || (log[i].kind != R_COMMIT && log[i].off + log[i].len > bn)) {
			fprintf(stderr, "stresskill: bad log record %zu\n", i);
			return 2;
		}
		if (log[i].kind == R_COMMIT)
			last_commit = i + 1;
	}
	uint8_t *sure = malloc(bn);
	memset(sure, 1, bn);
	for (size_t i = 0; i < nrec; i++) {
		struct rec *r = &log[i];
		if (r->kind == R_COMMIT)
			continue;
		ops++;
		if (i >= last_commit) { /* may or may not have landed */
			memset(sure + r->off, 0, r->len);
			continue;
		}
		committed++;
		for (uint64_t x = r->off; x < r->off + r->len; x++)
			exp[x] = r->kind == R_WRITE ? pat(r->seed, x) : 0;
	}
	uint64_t checked = 0;
	for (size_t x = 0; x < bn; x++) {
		if (!sure[x])
			continue;
		checked++;
		if (raw[x] != exp[x]) {
			fprintf(stderr,
				"stresskill: byte %#zx is %#x, want %#x (%zu ops logged, %zu committed)\n",
				x, raw[x], exp[x], ops, committed);
			return 1;
		}
	}
	printf("ops %zu committed %zu uncommitted %zu bytes-checked %" PRIu64 "\n", ops, committed,
	       ops - committed, checked);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "write"))
		do_write(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "check"))
		return do_check(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: stresskill write IMG LOG SEED | check RAW BASE LOG\n");
	return 2;
}
