/* ctorlib.c - a library whose constructor reads an image (QCS_CTOR_DISK)
 * before or after the shim's own constructor ran, depending on the
 * LD_PRELOAD order: the shim must translate either way. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void early(void)
{
	const char *p = getenv("QCS_CTOR_DISK");
	unsigned char b[4] = {0};
	struct stat;
	if (!p)
		return;
	int fd = open(p, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : pread(fd, b, 4, 1048576);
	off_t end = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	printf("ctor read %zd %02x end %lld\n", n, b[0], (long long)end);
	fflush(stdout);
	if (fd >= 0)
		close(fd);
}
