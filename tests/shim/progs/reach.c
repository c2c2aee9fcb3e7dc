/*
 * reach.c - every way a program can name or reopen a file, on one disk.
 *   reach ways DISK      one line per way (size, content hash, errno); run
 *                        on an image under the shim and on its raw twin
 *                        without it, the outputs must be identical
 *   reach refuse WHAT DISK [ARG]  one call that would hand the kernel the
 *                        image itself; exit 0 if it failed with the errno
 *                        the shim documents (the script checks the one
 *                        message and that the image is unchanged)
 *   reach maphold FILE   (without the shim) map FILE, print the mapping's
 *                        /proc/PID/map_files link, hold it until stdin closes
 * DISK must be an absolute path; siblings keep its suffix, so they are
 * image names exactly when DISK is one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *P;
extern char **environ;

#define CHECK(c)                                                                            \
	do {                                                                                \
		if (!(c)) {                                                                 \
			printf("CHECK FAILED %d: %s (errno %s)\n", __LINE__, #c, strerror(errno)); \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

static uint64_t hash_fd(int fd)
{
	static char b[1 << 16];
	uint64_t h = 1469598103934665603ULL, off = 0;
	ssize_t n;
	while ((n = pread(fd, b, sizeof b, (off_t)off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
		off += (uint64_t)n;
	}
	return n < 0 ? 0 : h ^ off;
}

/* open PATH with FLAGS; print its size and content hash */
static void show(const char *what, const char *path, int flags)
{
	int fd = open(path, flags);
	if (fd < 0) {
		printf("%s: open failed: %s\n", what, strerror(errno));
		return;
	}
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	printf("%s: size %lld hash %016" PRIx64 "\n", what, (long long)st.st_size, hash_fd(fd));
	close(fd);
}

static const char *sibling(const char *tag)
{
	static char buf[8][4096];
	static int k;
	const char *dot = strrchr(P, '.');
	char *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0], "%.*s-%s%s", (int)(dot - P), P, tag, dot);
	return b;
}

static const char *fdpath(const char *fmt, long a, long b)
{
	static char buf[4][96];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, sizeof buf[0], fmt, a, b);
	return p;
}

static void opath_stats(int fd)
{
	struct stat st;
	struct statx sx;
	CHECK(fstat(fd, &st) == 0);
	printf("O_PATH fstat: size %lld\n", (long long)st.st_size);
	CHECK(fstatat(fd, "", &st, AT_EMPTY_PATH) == 0);
	printf("O_PATH fstatat(AT_EMPTY_PATH): size %lld\n", (long long)st.st_size);
	CHECK(statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx) == 0);
	printf("O_PATH statx(AT_EMPTY_PATH): size %llu\n", (unsigned long long)sx.stx_size);
	CHECK(stat(fdpath("/proc/self/fd/%ld", fd, 0), &st) == 0);
	printf("stat /proc/self/fd/N of O_PATH: size %lld\n", (long long)st.st_size);
	char c;
	ssize_t n = read(fd, &c, 1);
	printf("O_PATH read: %zd %s\n", n, strerror(errno));
}

static void reopens(int fd)
{
	show("/proc/self/fd/N of O_PATH", fdpath("/proc/self/fd/%ld", fd, 0), O_RDONLY);
	show("/dev/fd/N of O_PATH", fdpath("/dev/fd/%ld", fd, 0), O_RDONLY);
	show("/proc/thread-self/fd/N", fdpath("/proc/thread-self/fd/%ld", fd, 0), O_RDONLY);
	show("/proc/PID/fd/N (own pid)", fdpath("/proc/%ld/fd/%ld", getpid(), fd), O_RDONLY);
	show("/proc/self/task/TID/fd/N", fdpath("/proc/self/task/%ld/fd/%ld", gettid(), fd),
	     O_RDONLY);
	int d = dup(fd), d2 = fcntl(fd, F_DUPFD_CLOEXEC, 20);
	struct stat st;
	CHECK(d >= 0 && d2 >= 20 && fstat(d, &st) == 0);
	printf("dup of O_PATH: size %lld\n", (long long)st.st_size);
	CHECK(fstat(d2, &st) == 0);
	printf("F_DUPFD of O_PATH: size %lld\n", (long long)st.st_size);
	close(d2);
	show("/proc/self/fd/N of a dup'd O_PATH", fdpath("/proc/self/fd/%ld", d, 0), O_RDONLY);
	close(d);
}

/* Write through a reopen, read back through another. */
static void rw_reopen(int fd)
{
	int w = open(fdpath("/proc/self/fd/%ld", fd, 0), O_RDWR);
	CHECK(w >= 0);
	char pat[4096], back[4096];
	memset(pat, 0x5a, sizeof pat);
	CHECK(pwrite(w, pat, sizeof pat, 2 << 20) == (ssize_t)sizeof pat);
	close(w);
	int r = open(fdpath("/dev/fd/%ld", fd, 0), O_RDONLY);
	CHECK(r >= 0 && pread(r, back, sizeof back, 2 << 20) == (ssize_t)sizeof back);
	printf("write via /proc/self/fd/N, read via /dev/fd/N: %s\n",
	       memcmp(pat, back, sizeof pat) ? "differs" : "same");
	close(r);
}

/* Another process (a child) reaches our fd through /proc/PPID/fd/N. */
static void other_process(int fd)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		show("/proc/PPID/fd/N from a child", fdpath("/proc/%ld/fd/%ld", getppid(), fd), O_RDONLY);
		struct stat st;
		CHECK(stat(fdpath("/proc/%ld/fd/%ld", getppid(), fd), &st) == 0);
		printf("stat /proc/PPID/fd/N: size %lld\n", (long long)st.st_size);
		fflush(stdout);
		_exit(0);
	}
	int s;
	CHECK(waitpid(pid, &s, 0) == pid && WIFEXITED(s) && WEXITSTATUS(s) == 0);
}

/* An O_PATH fd inherited across exec is still the image. */
static void exec_opath(int fd, char **argv)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(dup2(fd, 3) == 3);
		char *av[] = {argv[0], "execchild", (char *)P, NULL};
		execve("/proc/self/exe", av, environ);
		_exit(127);
	}
	int s;
	CHECK(waitpid(pid, &s, 0) == pid && WIFEXITED(s) && WEXITSTATUS(s) == 0);
}

static void exec_child(void)
{
	struct stat st;
	CHECK(fstat(3, &st) == 0);
	printf("O_PATH fd after exec: size %lld\n", (long long)st.st_size);
	show("/proc/self/fd/3 after exec", "/proc/self/fd/3", O_RDONLY);
}

static void links(void)
{
	const char *gl = sibling("hardlink");
	char other[4200], sym[4200];
	snprintf(other, sizeof other, "%s.otherlink", P);
	snprintf(sym, sizeof sym, "%s.symlink", P);
	unlink(gl), unlink(other), unlink(sym);
	CHECK(link(P, gl) == 0 && link(P, other) == 0 && symlink(P, sym) == 0);
	show("hard link named with the globs", gl, O_RDONLY);
	int hold = open(P, O_RDONLY); /* the image is open here: inodes decide */
	CHECK(hold >= 0);
	show("hard link with another name (image open)", other, O_RDONLY);
	show("symlink with another name (image open)", sym, O_RDONLY);
	FILE *f = fopen(other, "r");
	CHECK(f);
	char b[512];
	CHECK(fseek(f, 1 << 20, SEEK_SET) == 0 && fread(b, 1, sizeof b, f) == sizeof b);
	printf("fopen of the other link: byte at 1M %02x\n", (unsigned char)b[0]);
	fclose(f);
	const char *la = sibling("linkat");
	unlink(la);
	int op = open(P, O_PATH);
	CHECK(op >= 0 && linkat(AT_FDCWD, fdpath("/proc/self/fd/%ld", op, 0), AT_FDCWD, la,
				AT_SYMLINK_FOLLOW) == 0);
	show("linkat of an O_PATH fd to a glob name", la, O_RDONLY);
	close(op);
	close(hold);
	unlink(gl), unlink(other), unlink(sym), unlink(la);
}

/* O_RDONLY|O_CREAT of a new name creates an image (size 0), which a reopen
 * for writing then sizes and writes. */
static void create_ro(const char *tag, int extra)
{
	const char *p = sibling(tag);
	unlink(p);
	int fd = open(p, O_RDONLY | O_CREAT | O_CLOEXEC | extra, 0644);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	printf("%s: created, size %lld\n", tag, (long long)st.st_size);
	int w = open(fdpath("/proc/self/fd/%ld", fd, 0), O_WRONLY | O_CLOEXEC);
	CHECK(w >= 0 && ftruncate(w, 1 << 20) == 0 && pwrite(w, "created", 7, 4096) == 7);
	close(w);
	CHECK(fstat(fd, &st) == 0);
	printf("%s: after the reopen, size %lld hash %016" PRIx64 "\n", tag, (long long)st.st_size,
	       hash_fd(fd));
	close(fd);
}

static void ways(char **argv)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(P, '/') - P), P);
	const char *base = strrchr(P, '/') + 1;
	show("path", P, O_RDONLY);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), pdfd = open(dir, O_PATH | O_DIRECTORY);
	CHECK(dfd >= 0 && pdfd >= 0);
	int fd = openat(dfd, base, O_RDONLY);
	CHECK(fd >= 0);
	printf("openat(dirfd): hash %016" PRIx64 "\n", hash_fd(fd));
	close(fd);
	fd = openat(pdfd, base, O_RDONLY);
	CHECK(fd >= 0);
	printf("openat(O_PATH dirfd): hash %016" PRIx64 "\n", hash_fd(fd));
	close(fd);
	int op = openat(pdfd, base, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	CHECK(op >= 0);
	opath_stats(op);
	reopens(op);
	rw_reopen(op);
	other_process(op);
	exec_opath(op, argv);
	close(op), close(dfd), close(pdfd);
	links();
	create_ro("rocreat", 0);
	create_ro("rocreatexcl", O_EXCL);
	show("path again", P, O_RDONLY);
}

/* ---- refusals: each one call; exit 0 when it failed with errno `want` */
static int refused(int r, int want)
{
	if (r >= 0 || errno != want) {
		printf("not refused: r=%d errno %s\n", r, strerror(errno));
		return 1;
	}
	return 0;
}

static int refuse(const char *what, const char *arg)
{
	int img = open(P, O_RDWR);
	if (img < 0)
		return 3;
	int dev = open("/dev/null", O_RDWR); /* any fd: the kernel is never asked */
	if (!strcmp(what, "LOOP_SET_FD"))
		return refused(ioctl(dev, LOOP_SET_FD, img), EOPNOTSUPP);
	if (!strcmp(what, "LOOP_CHANGE_FD"))
		return refused(ioctl(dev, LOOP_CHANGE_FD, img), EOPNOTSUPP);
	if (!strcmp(what, "LOOP_CONFIGURE")) {
		struct loop_config lc = {.fd = (unsigned)img};
		return refused(ioctl(dev, LOOP_CONFIGURE, &lc), EOPNOTSUPP);
	}
	if (!strcmp(what, "LOOP_CONFIGURE_O_PATH")) { /* an fd the program got by O_PATH */
		struct loop_config lc = {.fd = (unsigned)open(P, O_PATH)};
		return refused(ioctl(dev, LOOP_CONFIGURE, &lc), EOPNOTSUPP);
	}
	if (!strcmp(what, "name_to_handle_at")) {
		struct { struct file_handle h; unsigned char b[128]; } fh = {.h.handle_bytes = 128};
		int mnt;
		return refused(name_to_handle_at(AT_FDCWD, P, &fh.h, &mnt, 0), EOPNOTSUPP);
	}
	if (!strcmp(what, "open_by_handle_at")) { /* handle taken through another name */
		struct { struct file_handle h; unsigned char b[128]; } fh = {.h.handle_bytes = 128};
		int mnt;
		CHECK(name_to_handle_at(AT_FDCWD, arg, &fh.h, &mnt, 0) == 0);
		return refused(open_by_handle_at(AT_FDCWD, &fh.h, O_RDWR), EOPNOTSUPP);
	}
	if (!strcmp(what, "map_files")) /* arg: /proc/PID/map_files/X of another process */
		return refused(open(arg, O_RDWR), EACCES);
	char *av[] = {"img", NULL};
	if (!strcmp(what, "fexecve"))
		return refused(fexecve(open(P, O_RDONLY), av, environ), EACCES);
	if (!strcmp(what, "fexecve_O_PATH"))
		return refused(fexecve(open(P, O_PATH), av, environ), EACCES);
	if (!strcmp(what, "execve"))
		return refused(execve(P, av, environ), EACCES);
	if (!strcmp(what, "execveat"))
		return refused((int)syscall(SYS_execveat, img, "", av, environ, AT_EMPTY_PATH), EACCES);
	if (!strcmp(what, "swapon"))
		return refused(swapon(P, 0), EINVAL);
	if (!strcmp(what, "mount"))
		return refused(mount(P, arg, "erofs", MS_RDONLY, NULL), ENOTBLK);
	if (!strcmp(what, "mmap"))
		return refused(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, img, 0) == MAP_FAILED
				       ? -1 : 0, ENODEV);
	printf("unknown refusal %s\n", what);
	return 2;
}

/* Map FILE, print the /proc/PID/map_files/ link of the mapping, and hold
 * it until stdin closes: another process's mapping of a file. */
static int maphold(const char *file)
{
	int fd = open(file, O_RDONLY);
	CHECK(fd >= 0);
	char *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	printf("/proc/%ld/map_files/%lx-%lx\n", (long)getpid(), (unsigned long)m,
	       (unsigned long)m + 4096);
	char c;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "ways")) {
		P = argv[2];
		ways(argv);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "execchild")) {
		P = argv[2];
		exec_child();
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "refuse")) {
		P = argv[3];
		return refuse(argv[2], argc > 4 ? argv[4] : NULL);
	}
	if (argc == 3 && !strcmp(argv[1], "maphold")) /* (without the shim) */
		return maphold(argv[2]);
	fprintf(stderr, "usage: reach ways DISK | reach refuse WHAT DISK [ARG] | reach maphold FILE\n");
	return 2;
}
