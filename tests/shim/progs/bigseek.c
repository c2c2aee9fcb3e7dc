/* bigseek.c DISK OFFSET: seek to OFFSET (beyond the host filesystem's
 * maximum file size on ext4), write, read back, report positions. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	(void)argc;
	long long off = atoll(argv[2]);
	char b[8] = {0};
	int fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return 1;
	long long end = lseek(fd, 0, SEEK_END);
	long long p = lseek(fd, off, SEEK_SET);
	ssize_t w = write(fd, "BIGSEEK!", 8);
	long long cur = lseek(fd, 0, SEEK_CUR);
	long long back = lseek(fd, -8, SEEK_CUR);
	ssize_t r = read(fd, b, 8);
	int d = dup(fd);
	long long dcur = lseek(d, 0, SEEK_CUR);
	printf("end %lld set %lld write %zd cur %lld back %lld read %zd %.8s dup %lld\n", end, p, w, cur,
	       back, r, b, dcur);
	return 0;
}
