/* oldout.c DISK: stdout (fully buffered, with pending output) is closed and
 * fd 1 reopened on DISK.  Pending bytes and new stdout output must land in
 * the flat disk; a FILE pointer kept from before must never write raw
 * bytes into an image (it fails instead). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	(void)argc;
	FILE *keep = stdout;
	setvbuf(stdout, NULL, _IOFBF, 4096);
	printf("pending-before-swap");
	close(1);
	if (open(argv[1], O_WRONLY) != 1)
		return 9;
	printf("|via-new-stdout");
	fprintf(keep, "|via-kept-pointer");
	fflush(keep);
	fflush(stdout);
	return 0;
}
