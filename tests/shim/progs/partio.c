/*
 * partio.c - every kind of call on a partition file (IMAGE.qcow2/pN) stays
 * inside the partition.  Run under the shim by t_tools_partfiles.sh:
 *   partio IMAGE PART_PATH SIZE BASE
 * SIZE and BASE are the partition's length and start in the disk (bytes).
 * Ends by filling the partition's last 4 KiB with 0x5a and its first 4 KiB
 * through the whole-disk fd with 0xa5, for the caller to check without the
 * shim.  Prints "FAIL ..." and exits 1 at the first wrong answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			printf("FAIL line %d: %s (errno %d %s)\n", __LINE__, #c, errno,   \
			       strerror(errno));                                          \
			exit(1);                                                          \
		}                                                                         \
	} while (0)
#define FAILS(call, err) CHECK((call) < 0 && errno == (err))

static char a[8192], b[8192];

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	const char *disk = argv[1], *part = argv[2];
	off_t size = atoll(argv[3]), base = atoll(argv[4]);
	struct stat st;
	uint64_t u64;
	unsigned long ul;
	int fd = open(part, O_RDWR);
	CHECK(fd >= 0);

	/* sizes */
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size);
	CHECK(ioctl(fd, BLKGETSIZE64, &u64) == 0 && u64 == (uint64_t)size);
	CHECK(ioctl(fd, BLKGETSIZE, &ul) == 0 && ul == (unsigned long)(size / 512));
	CHECK(lseek(fd, 0, SEEK_END) == size);
	CHECK(lseek(fd, 0, SEEK_HOLE) <= size);
	FAILS(lseek(fd, size, SEEK_DATA), ENXIO);

	/* vectored I/O across the end: short; at or past it: EOF / ENOSPC */
	memset(a, 0x11, sizeof a);
	struct iovec v[2] = {{a, 512}, {a + 512, 512}};
	CHECK(pwritev(fd, v, 2, size - 768) == 768);
	memset(b, 0, sizeof b);
	struct iovec w[2] = {{b, 512}, {b + 512, 512}};
	CHECK(preadv(fd, w, 2, size - 768) == 768 && !memcmp(a, b, 768));
	CHECK(pread(fd, b, 512, size) == 0);
	CHECK(pread(fd, b, 512, size + 4096) == 0);
	FAILS(pwrite(fd, a, 512, size), ENOSPC);
	FAILS(pwrite(fd, a, 1, size + 4096), ENOSPC);
	CHECK(lseek(fd, size - 256, SEEK_SET) == size - 256);
	CHECK(writev(fd, v, 2) == 256 && lseek(fd, 0, SEEK_CUR) == size);
	FAILS(write(fd, a, 1), ENOSPC);
	CHECK(read(fd, b, 1) == 0);
	CHECK(lseek(fd, size + 100, SEEK_SET) == size + 100 && readv(fd, w, 2) == 0);

	/* discard, zeroing, allocation, resizing */
	uint64_t range[2] = {(uint64_t)size - 4096, 4096};
	CHECK(ioctl(fd, BLKZEROOUT, range) == 0);
	memset(a, 0, 4096);
	CHECK(pread(fd, b, 4096, size - 4096) == 4096 && !memcmp(a, b, 4096));
	uint64_t past[2] = {(uint64_t)size - 512, 1024};
	FAILS(ioctl(fd, BLKDISCARD, past), EINVAL);
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size - 8192, 1 << 20) == 0);
	CHECK(fallocate(fd, FALLOC_FL_ZERO_RANGE, size - 8192, 8192) == 0);
	FAILS(fallocate(fd, FALLOC_FL_ZERO_RANGE, size - 512, 1024), ENOSPC);
	FAILS(fallocate(fd, 0, size - 512, 1024), ENOSPC);
	CHECK(posix_fallocate(fd, size - 512, 1024) == ENOSPC);
	CHECK(ftruncate(fd, size) == 0);
	FAILS(ftruncate(fd, size - 512), EINVAL);
	FAILS(ftruncate(fd, size + 512), ENOSPC);
	CHECK(fstat(fd, &st) == 0 && st.st_size == size);

	/* kernel-side consumers, emulated or refused */
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == ENODEV);
	char tmpl[] = "/tmp/partio.XXXXXX";
	int out = mkstemp(tmpl);
	CHECK(out >= 0);
	unlink(tmpl);
	off_t off = size - 50;
	CHECK(sendfile(out, fd, &off, 1000) == 50 && off == size);
	off64_t in = size - 100, to = 0;
	CHECK(copy_file_range(fd, &in, out, &to, 1000, 0) == 100 && in == size);
	close(out);

	/* other opens: O_APPEND, O_CREAT|O_EXCL, dup, stdio */
	int ap = open(part, O_WRONLY | O_APPEND);
	CHECK(ap >= 0);
	FAILS(write(ap, a, 1), ENOSPC);
	close(ap);
	FAILS(open(part, O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
	int tr = open(part, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(tr >= 0 && fstat(tr, &st) == 0 && st.st_size == size);
	close(tr);
	int d = dup(fd);
	CHECK(d >= 0 && fstat(d, &st) == 0 && st.st_size == size && close(d) == 0);
	FILE *f = fopen(part, "r");
	CHECK(f && fseeko(f, -16, SEEK_END) == 0 && ftello(f) == size - 16);
	CHECK(fread(b, 1, 32, f) == 16 && feof(f));
	fclose(f);

	/* the whole disk in the same process: one translator, coherent */
	int whole = open(disk, O_RDWR);
	CHECK(whole >= 0);
	memset(a, 0x5a, 4096);
	CHECK(pwrite(fd, a, 4096, size - 4096) == 4096);
	CHECK(pread(whole, b, 4096, base + size - 4096) == 4096 && !memcmp(a, b, 4096));
	memset(a, 0xa5, 4096);
	CHECK(pwrite(whole, a, 4096, base) == 4096);
	CHECK(pread(fd, b, 4096, 0) == 4096 && !memcmp(a, b, 4096));
	CHECK(close(whole) == 0 && close(fd) == 0);
	printf("partio: all checks passed\n");
	return 0;
}
