/*
 * misc.c MODE ... - the musl-only behaviours, checked against expected
 * lines by t_musl.sh (the raw twin cannot show them):
 *   detach DISK   fd 1 made an image with dup2: write(2) on it goes through
 *                 the shim; musl's stdout (a FILE the shim cannot replace)
 *                 is detached, so stdio on it fails with EBADF instead of
 *                 writing raw bytes into the QCOW2 file; restored after.
 *   exec DISK PROG  exec PROG with the image as fd 0 (the exec guard)
 *   read0         what an exec'd program sees on fd 0
 *   read DISK     pread 4096 bytes at 0: the hash, or the errno
 *   pattern       the line `read` prints after `detach`
 *   freopen DISK  freopen(DISK, "r", stdin): refused under musl
 */
#include "common.h"

static unsigned char buf[4096];

static int detach(const char *path)
{
	int fd = open(path, O_RDWR);
	int save = dup(1);
	CHECK(fd >= 0 && save >= 0);
	CHECK(dup2(fd, 1) == 1);
	fill(buf, sizeof buf, 9);
	ssize_t w = write(1, buf, sizeof buf);
	errno = 0;
	int pr = printf("raw bytes must not reach the image\n");
	int e = errno;
	fflush(stdout);
	int err = ferror(stdout);
	CHECK(dup2(save, 1) == 1);
	clearerr(stdout);
	printf("write(2) on the image %zd\n", w);
	printf("stdio on the image: printf %d errno %d ferror %d\n", pr, e, err != 0);
	return fflush(stdout);
}

static void show(ssize_t r)
{
	if (r < 0)
		say("pread -1 errno %d", errno);
	else
		say("pread %zd first %#x h %016" PRIx64, r, buf[0], h64(buf, (size_t)r));
}

static int exec_with(const char *path, const char *prog)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && dup2(fd, 0) == 0);
	execl(prog, prog, "read0", (char *)NULL);
	say("exec %s failed errno %d", prog, errno);
	return 0;
}

static int read_at0(int fd)
{
	show(pread(fd, buf, sizeof buf, 0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "detach"))
		return detach(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "exec"))
		return exec_with(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "read0"))
		return read_at0(0);
	if (argc == 3 && !strcmp(argv[1], "read")) {
		int fd = open(argv[2], O_RDONLY);
		CHECK(fd >= 0);
		return read_at0(fd);
	}
	if (argc == 2 && !strcmp(argv[1], "pattern")) {
		fill(buf, sizeof buf, 9);
		show(sizeof buf);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "freopen")) {
		errno = 0;
		FILE *f = freopen(argv[2], "r", stdin);
		say("freopen %s errno %d", f ? "ok" : "NULL", errno);
		return 0;
	}
	say("usage: misc detach|exec|read0|read|pattern|freopen ...");
	return 2;
}
