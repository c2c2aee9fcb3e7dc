/* threads.c DISK: 4 threads write disjoint patterns with pwrite and read
 * them back with pread concurrently on one fd; prints the final hash. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fd;
static int bad;

static void *worker(void *arg)
{
	long t = (long)arg;
	char w[3000], r[3000];
	for (int i = 0; i < 200; i++) {
		memset(w, (int)(t * 50 + i), sizeof w);
		off_t off = (off_t)(t * 1048576 + i * 3001);
		if (pwrite(fd, w, sizeof w, off) != (ssize_t)sizeof w ||
		    pread(fd, r, sizeof r, off) != (ssize_t)sizeof r || memcmp(w, r, sizeof w))
			bad = 1;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[4];
	(void)argc;
	fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return 1;
	for (long t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	printf("threads %s\n", bad ? "MISMATCH" : "ok");
	return bad;
}
