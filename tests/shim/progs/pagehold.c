/* pagehold.c r|w DISK: open DISK read-only (r) or read-write (w), read its
 * first byte (w: and write it back, so the process is a writer), print
 * "holding", then keep the image open until killed.  Under the shim the
 * process is then attached to the image's change page in /dev/shm. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char c;
	if (argc != 3)
		return 2;
	int w = strcmp(argv[1], "w") == 0;
	int fd = open(argv[2], w ? O_RDWR : O_RDONLY);
	if (fd < 0 || pread(fd, &c, 1, 0) != 1 || (w && pwrite(fd, &c, 1, 0) != 1)) {
		perror("pagehold");
		return 1;
	}
	puts("holding");
	fflush(stdout);
	for (;;)
		pause();
}
