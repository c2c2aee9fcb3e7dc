/*
 * rawsys.c - reach an image's descriptor past every wrapper (issue 24):
 * system calls made by `syscall` instructions (no libc), as a static program,
 * liburing or glibc's internal calls would.  Usage:
 *   rawsys write|pwrite|pwritev2|writev|ftruncate|fallocate|mmapw|dup2race FILE
 *   rawsys fdinfo FILE     the kernel's access mode of an O_RDWR open, and F_GETFL's
 * Prints "MODE: RESULT" lines (a negative result is -errno).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static long rsys(long n, long a, long b, long c, long d, long e)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = 0;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return r;
}

static char junk[4096];
static volatile int race_fd = -1, stop;

static void *racer(void *arg)
{
	long *bad = arg;
	while (!stop)
		if (rsys(SYS_pwrite64, 10, (long)junk, 512, 0, 0) > 0)
			(*bad)++;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	const char *m = argv[1];
	memset(junk, 'X', sizeof junk);
	int fd = open(argv[2], O_RDWR);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	struct iovec v = {junk, 512};
	long r = 0;
	if (!strcmp(m, "write"))
		r = rsys(SYS_write, fd, (long)junk, 512, 0, 0);
	else if (!strcmp(m, "pwrite"))
		r = rsys(SYS_pwrite64, fd, (long)junk, 512, 0, 0);
	else if (!strcmp(m, "pwritev2"))
		r = rsys(SYS_pwritev2, fd, (long)&v, 1, 0, 0);
	else if (!strcmp(m, "writev"))
		r = rsys(SYS_writev, fd, (long)&v, 1, 0, 0);
	else if (!strcmp(m, "ftruncate"))
		r = rsys(SYS_ftruncate, fd, 0, 0, 0, 0);
	else if (!strcmp(m, "fallocate"))
		r = rsys(SYS_fallocate, fd, 0x02 | 0x01 /* PUNCH_HOLE|KEEP_SIZE */, 0, 65536, 0);
	else if (!strcmp(m, "mmapw"))
		r = rsys(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	else if (!strcmp(m, "dup2race")) {
		/* the image dup'ed over fd 10 while another thread writes fd 10 */
		long bad = 0;
		pthread_t t;
		int other = open("/dev/null", O_RDONLY); /* writes fail: any success reached the image */
		dup2(other, 10);
		pthread_create(&t, NULL, racer, &bad);
		for (int i = 0; i < 20000; i++) {
			dup2(fd, 10);
			dup2(other, 10);
		}
		dup2(fd, 10);
		for (int i = 0; i < 1000; i++)
			if (rsys(SYS_pwrite64, 10, (long)junk, 512, 0, 0) > 0)
				bad++;
		stop = 1;
		pthread_join(t, NULL);
		r = -bad; /* writes that reached the image's host file through fd 10 */
	} else if (!strcmp(m, "fdinfo")) {
		char p[64], line[256];
		snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
		FILE *f = fopen(p, "r");
		unsigned flags = 0;
		while (f && fgets(line, sizeof line, f))
			sscanf(line, "flags: %o", &flags);
		if (f)
			fclose(f);
		printf("kernel accmode %u getfl accmode %d\n", flags & 3, fcntl(fd, F_GETFL) & O_ACCMODE);
		return 0;
	} else {
		return 2;
	}
	if (!strcmp(m, "mmapw") && r > -4096 && r < 0)
		printf("%s: %ld\n", m, r);
	else if (!strcmp(m, "mmapw"))
		printf("%s: mapped\n", m);
	else
		printf("%s: %ld\n", m, r);
	return 0;
}
