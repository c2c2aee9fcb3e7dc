/*
 * misc.c MODE ... - musl's standard streams and what only the musl flavour
 * shows; driven by t_musl.sh:
 *   stdout DISK   fd 1 made the disk with dup2: write(2), printf, fseek and
 *                 fputs on stdout; freopen of stdout onto the disk and from
 *                 it onto DISK.txt; then output left buffered for exit to
 *                 flush (compared with the raw twin: musl's stdout does its
 *                 I/O inside libc, the shim hooks the FILE)
 *   exec DISK PROG  exec PROG with the disk as fd 0 (the exec guard)
 *   read0         an exec'd program reading fd 0 through stdin (fread)
 *   read DISK     pread 4096 bytes at 0: the hash, or the errno
 */
#include "common.h"

static unsigned char buf[4096];

static int std_out(const char *path)
{
	int fd = open(path, O_RDWR);
	int save = dup(1);
	CHECK(fd >= 0 && save >= 0);
	CHECK(dup2(fd, 1) == 1);
	fill(buf, sizeof buf, 9);
	ssize_t w = write(1, buf, sizeof buf);
	int pr = printf("printf onto the disk at %d\n", 4096);
	int fl = fflush(stdout);
	int sk = fseek(stdout, 8192 + 3, SEEK_SET);
	int pu = fputs("fputs after fseek", stdout);
	long at = ftell(stdout);
	int fl2 = fflush(stdout), err = ferror(stdout);
	CHECK(dup2(save, 1) == 1);
	say("write %zd printf %d fflush %d fseek %d fputs %d ftell %ld fflush %d ferror %d", w, pr,
	    fl, sk, pu >= 0, at, fl2, err);
	char side[4096];
	snprintf(side, sizeof side, "%s.txt", path);
	CHECK(freopen(path, "r+", stdout) == stdout);
	CHECK(fseek(stdout, 12288, SEEK_SET) == 0 && fputs("via freopen", stdout) >= 0);
	CHECK(freopen(side, "w", stdout) == stdout && fputs("plain file", stdout) >= 0);
	CHECK(fflush(stdout) == 0);
	CHECK(dup2(fd, 1) == 1 && lseek(1, 3 << 20, SEEK_SET) == 3 << 20);
	printf("left buffered for exit to flush"); /* no newline, no fflush */
	return 0;
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

/* fd 0 inherited: stdin reads it through the shim (a FILE with a buffer,
 * so one byte first, then the rest). */
static int read_stdin(void)
{
	int c = getchar();
	CHECK(c != EOF);
	buf[0] = (unsigned char)c;
	size_t n = fread(buf + 1, 1, sizeof buf - 1, stdin);
	show((ssize_t)n + 1);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "stdout"))
		return std_out(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "exec"))
		return exec_with(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "read0"))
		return read_stdin();
	if (argc == 3 && !strcmp(argv[1], "read")) {
		int fd = open(argv[2], O_RDONLY);
		CHECK(fd >= 0);
		return read_at0(fd);
	}
	say("usage: misc stdout|exec|read0|read ...");
	return 2;
}
