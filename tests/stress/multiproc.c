/*
 * multiproc - several processes under the shim on one image
 * (tests/stress/multiproc.sh runs them at once).
 *
 *   multiproc writer IMG ID ROUNDS    round r = 1..ROUNDS: open, write the
 *       writer's range [ID*RANGE, (ID+1)*RANGE) in BLOCK-sized pwrites with
 *       round r's pattern (fsync every other round), close, pause a little
 *   multiproc reader IMG WRITERS ROUNDS STOPFILE   until STOPFILE exists: open
 *       read-only, pread random blocks, close; every byte must be what some
 *       round (or none: zero) wrote there, never anything else
 *   multiproc expect OUT WRITERS ROUNDS   the raw contents after all writers
 *
 * pat(round, off) is one byte, so a read racing a write may mix rounds but
 * can never mistake metadata, another range's data or garbage for data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RANGE (4u << 20)
#define BLOCK (64u << 10)

static uint8_t pat(unsigned round, uint64_t off)
{
	if (!round)
		return 0;
	uint64_t z = (off >> 3) * 0x9e3779b97f4a7c15ull + round * 0xbf58476d1ce4e5b9ull;
	z ^= z >> 29;
	uint8_t v = (uint8_t)(z >> ((off & 7) * 8));
	return v ? v : 1; /* never 0: tells "not written" apart */
}

static void fill(uint8_t *b, unsigned round, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(round, off + i);
}

static int die(const char *what)
{
	fprintf(stderr, "multiproc[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	return 1;
}

static void pause_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000 };
	nanosleep(&ts, NULL);
}

static int writer(const char *img, unsigned id, unsigned rounds)
{
	uint8_t *b = malloc(BLOCK);
	srand(id * 77 + 1);
	for (unsigned r = 1; r <= rounds; r++) {
		int fd = open(img, O_RDWR);
		if (fd < 0)
			return die("open for writing");
		for (uint64_t off = (uint64_t)id * RANGE; off < (uint64_t)(id + 1) * RANGE; off += BLOCK) {
			fill(b, r, off, BLOCK);
			if (pwrite(fd, b, BLOCK, (off_t)off) != BLOCK)
				return die("pwrite");
		}
		if (r % 2 == 0 && fsync(fd))
			return die("fsync");
		if (close(fd))
			return die("close");
		pause_ms(rand() % 40);
	}
	free(b);
	return 0;
}

/* Which rounds could byte x hold?  0 when it is a valid value. */
static int valid(uint8_t v, uint64_t x, unsigned rounds)
{
	for (unsigned r = 0; r <= rounds; r++)
		if (v == pat(r, x))
			return 0;
	return -1;
}

static int reader(const char *img, unsigned writers, unsigned rounds, const char *stop)
{
	uint8_t *b = malloc(BLOCK);
	unsigned long reads = 0;
	srand((unsigned)getpid());
	while (access(stop, F_OK) != 0) {
		int fd = open(img, O_RDONLY);
		if (fd < 0)
			return die("open for reading");
		off_t end = lseek(fd, 0, SEEK_END);
		for (int i = 0; i < 16; i++) {
			uint64_t off = (uint64_t)(rand() % (int)(end / BLOCK)) * BLOCK;
			if (pread(fd, b, BLOCK, (off_t)off) != BLOCK)
				return die("pread");
			for (uint64_t j = 0; j < BLOCK; j++)
				if (valid(b[j], off + j, off / RANGE < writers ? rounds : 0)) {
					fprintf(stderr, "multiproc reader: byte %#llx is %#x: no round wrote that\n",
						(unsigned long long)(off + j), b[j]);
					return 1;
				}
			reads++;
		}
		if (close(fd))
			return die("close");
	}
	printf("reader %d: %lu blocks verified\n", (int)getpid(), reads);
	free(b);
	return 0;
}

static int expect(const char *out, unsigned writers, unsigned rounds)
{
	FILE *f = fopen(out, "wb");
	uint8_t *b = malloc(BLOCK);
	if (!f)
		return die(out);
	for (uint64_t off = 0; off < (uint64_t)(writers + 1) * RANGE; off += BLOCK) {
		fill(b, off < (uint64_t)writers * RANGE ? rounds : 0, off, BLOCK);
		if (fwrite(b, 1, BLOCK, f) != BLOCK)
			return die(out);
	}
	free(b);
	return fclose(f) ? die(out) : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "writer"))
		return writer(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "reader"))
		return reader(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), argv[5]);
	if (argc == 5 && !strcmp(argv[1], "expect"))
		return expect(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	fprintf(stderr, "usage: multiproc writer IMG ID ROUNDS | reader IMG WRITERS ROUNDS STOP | "
			"expect OUT WRITERS ROUNDS\n");
	return 2;
}
