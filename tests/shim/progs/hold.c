/* hold.c DISK SECONDS: write one byte (the one already there) at offset 0,
 * then stay alive without forking, holding the image as a writer. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void bye(int sig)
{
	(void)sig;
	exit(0); /* through exit(): the shim flushes and drops its locks */
}

int main(int argc, char **argv)
{
	char c;
	signal(SIGTERM, bye);
	(void)argc;
	int fd = open(argv[1], O_RDWR);
	if (fd < 0 || pread(fd, &c, 1, 0) != 1 || pwrite(fd, &c, 1, 0) != 1) {
		perror("hold");
		return 1;
	}
	puts("holding");
	fflush(stdout);
	sleep((unsigned)atoi(argv[2]));
	return 0;
}
