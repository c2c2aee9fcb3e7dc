/* pingpong.c DISK: a long-lived process that keeps DISK open and obeys
 * lines on stdin: "w OFF BYTE" pwrites one byte (decimal), "r OFF" preads
 * one; each answers one line ("w" or the byte read, decimal).  Two of
 * them, one writing and one reading, show whether a live writer's writes
 * reach a live reader at once. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char line[128], op;
	long long off;
	int byte;
	int fd = argc > 1 ? open(argv[1], O_RDWR) : -1;
	if (fd < 0)
		return 1;
	while (fgets(line, sizeof line, stdin)) {
		unsigned char c;
		int n = sscanf(line, " %c %lld %d", &op, &off, &byte);
		if (n >= 2 && op == 'r' && pread(fd, &c, 1, off) == 1)
			printf("%d\n", c);
		else if (n == 3 && op == 'w' && (c = (unsigned char)byte, pwrite(fd, &c, 1, off) == 1))
			printf("w\n");
		else
			printf("error\n");
		fflush(stdout);
	}
	return close(fd) ? 1 : 0;
}
