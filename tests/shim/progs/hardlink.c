/*
 * hardlink.c DISK LINK - while DISK is open, truncate(), stat(), statx()
 * and an O_TRUNC open of LINK, another name (a hard link) of the same file
 * that does not match the globs.  On an image under the shim they act on
 * the image (the virtual disk), as on the raw twin they act on the file;
 * the outputs must be the same (t_shim_names.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			printf("CHECK FAILED %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #c,   \
			       errno, strerror(errno));                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	struct stat st;
	struct statx sx;
	char b[4];
	if (argc != 3)
		return 2;
	int fd = open(argv[1], O_RDWR);
	CHECK(fd >= 0);
	CHECK(stat(argv[2], &st) == 0);
	printf("stat of the link: %lld\n", (long long)st.st_size);
	CHECK(statx(AT_FDCWD, argv[2], 0, STATX_SIZE, &sx) == 0);
	printf("statx of the link: %llu\n", (unsigned long long)sx.stx_size);
	CHECK(truncate(argv[2], 2 << 20) == 0);
	CHECK(fstat(fd, &st) == 0);
	printf("after truncate(link, 2 MiB): fstat %lld\n", (long long)st.st_size);
	CHECK(pread(fd, b, 4, 0) == 4);
	printf("first byte kept: %02x\n", (unsigned char)b[0]);
	int t = open(argv[2], O_WRONLY | O_TRUNC);
	CHECK(t >= 0);
	CHECK(write(t, "link", 4) == 4);
	CHECK(close(t) == 0);
	CHECK(fstat(fd, &st) == 0);
	printf("after O_TRUNC open of the link and a write: %lld\n", (long long)st.st_size);
	CHECK(truncate(argv[2], 4096) == 0);
	CHECK(stat(argv[2], &st) == 0);
	printf("stat of the link: %lld\n", (long long)st.st_size);
	CHECK(close(fd) == 0);
	return 0;
}
