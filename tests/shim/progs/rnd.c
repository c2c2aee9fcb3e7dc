/* rnd.c DISK SEED: a seeded random workload (pwrite, write after lseek,
 * ftruncate grow/shrink, fallocate punch/zero/grow, pread) on DISK; the
 * same seed on an image under the shim and on a raw twin must leave equal
 * disks.  Ends on a 512-byte multiple (qemu's view of sizes). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t s;
static uint64_t rnd(uint64_t n)
{
	s = s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (s >> 33) % n;
}

int main(int argc, char **argv)
{
	(void)argc;
	s = strtoull(argv[2], NULL, 10);
	int fd = open(argv[1], O_RDWR);
	static char buf[200000];
	struct stat st;
	if (fd < 0)
		return 1;
	for (int i = 0; i < 500; i++) {
		if (fstat(fd, &st) < 0)
			return 2;
		uint64_t op = rnd(100), off = rnd((uint64_t)st.st_size + 200000), n = 1 + rnd(150000);
		memset(buf, (int)rnd(256), n);
		if (op < 40) {
			if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
				return 3;
		} else if (op < 50) {
			if (lseek(fd, (off_t)off, SEEK_SET) < 0 || write(fd, buf, n) != (ssize_t)n)
				return 4;
		} else if (op < 58) {
			if (ftruncate(fd, (off_t)(rnd(6 << 20) & ~511ULL)) < 0)
				return 5;
		} else if (op < 66) {
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n);
		} else if (op < 72) {
			fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)n);
		} else if (op < 76) {
			fallocate(fd, 0, (off_t)off, (off_t)n);
		} else {
			if (pread(fd, buf, n, (off_t)off) < 0)
				return 6;
		}
	}
	if (fstat(fd, &st) < 0 || ftruncate(fd, (st.st_size + 511) & ~511LL) < 0 || fstat(fd, &st) < 0)
		return 7;
	printf("%lld\n", (long long)st.st_size);
	return close(fd) < 0 ? 8 : 0;
}
