/* stale.c DISK: reads 16 bytes at 1 MiB (filling this process's caches),
 * waits for a line on stdin (another process writes meanwhile), reads
 * again, and prints both.  A second process's writes must be visible. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned char a[16], b[16];
	char line[16];
	(void)argc;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0 || pread(fd, a, 16, 1048576) != 16)
		return 1;
	printf("before %02x\n", a[0]);
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	if (pread(fd, b, 16, 1048576) != 16 || pread(fd, a, 16, 3 * 1048576) != 16)
		return 1;
	printf("after %02x %02x\n", b[0], a[0]);
	return 0;
}
