/* errno_keep.c IMAGE OTHER: every successful call, on an image and on a
 * plain file, leaves errno as it was (the shim is invisible on success). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int bad;
#define KEEP(call)                                                             \
	do {                                                                   \
		errno = 4242;                                                  \
		long r_ = (long)(call);                                        \
		if (r_ < 0 || errno != 4242) {                                 \
			printf("errno changed: %s -> %ld errno %d\n", #call, r_, errno); \
			bad = 1;                                               \
		}                                                              \
	} while (0)

static void run(const char *p)
{
	char b[4096];
	struct stat st;
	int fd;
	errno = 4242;
	fd = open(p, O_RDWR);
	if (fd < 0 || errno != 4242) {
		printf("errno changed: open %s\n", p);
		bad = 1;
		return;
	}
	KEEP(read(fd, b, sizeof b));
	KEEP(pread(fd, b, sizeof b, 4096));
	KEEP(write(fd, b, 512));
	KEEP(pwrite(fd, b, 512, 8192));
	KEEP(lseek(fd, 0, SEEK_END));
	KEEP(lseek(fd, 0, SEEK_SET));
	KEEP(fstat(fd, &st));
	KEEP(stat(p, &st));
	KEEP(fsync(fd));
	KEEP(ftruncate(fd, st.st_size));
	KEEP(fcntl(fd, F_GETFL));
	int d;
	KEEP(d = dup(fd));
	KEEP(close(d));
	/* the other names of the same file, and an O_PATH descriptor */
	char alias[64];
	snprintf(alias, sizeof alias, "/proc/self/fd/%d", fd);
	KEEP(d = open(alias, O_RDONLY));
	KEEP(close(d));
	KEEP(stat(alias, &st));
	snprintf(alias, sizeof alias, "/dev/fd/%d", fd);
	KEEP(stat(alias, &st));
	KEEP(d = open(p, O_PATH));
	KEEP(fstat(d, &st));
	KEEP(fstatat(d, "", &st, AT_EMPTY_PATH));
	KEEP(close(d));
	KEEP(close(fd));
	FILE *f;
	errno = 4242;
	f = fopen(p, "r");
	if (!f || errno != 4242) {
		printf("errno changed: fopen\n");
		bad = 1;
	} else {
		KEEP(fread(b, 1, 100, f) == 100 ? 0 : -1);
		KEEP(fclose(f));
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		run(argv[i]);
	puts(bad ? "errno: CHANGED" : "errno: kept");
	return bad;
}
