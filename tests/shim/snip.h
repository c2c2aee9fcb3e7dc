/*
 * snip.h - frame for tests/shim/snippets/<symbol>.c: one small program per
 * row of shim/syms.def.  Each is run twice by t_shim_symbols.sh: on a QCOW2
 * image under the shim (QCS_IMAGE=1) and on the raw twin without it; the two
 * stdouts must be identical, and so must the flat disks afterwards.
 * Built WITHOUT _FILE_OFFSET_BITS so that plain and *64 symbols are distinct
 * calls.  IMG-only assertions (refusals the twin cannot show) use EXPECT.
 */
#ifndef SNIP_H
#define SNIP_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* fortified/old entry points the headers declare only sometimes */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);
ssize_t __read_chk(int, void *, size_t, size_t);
ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);

static const char *P;  /* the disk: image or raw twin */
static int IMG;        /* running on the image, under the shim */
static char **ARGV;
extern char **environ;

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			printf("CHECK FAILED %s:%d: %s (errno %d %s)\n",       \
			       __FILE__, __LINE__, #c, errno, strerror(errno)); \
			exit(1);                                               \
		}                                                              \
	} while (0)
/* An assertion that only holds on the image (e.g. a refusal). */
#define EXPECT(c)                                                              \
	do {                                                                   \
		if (IMG && !(c)) {                                             \
			fprintf(stderr, "EXPECT FAILED %s:%d: %s (errno %d)\n",  \
				__FILE__, __LINE__, #c, errno);                \
			exit(2);                                               \
		}                                                              \
	} while (0)

static uint64_t h64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A sibling path: same directory, new name keeping the disk's suffix style
 * (so it is an image path exactly when P is). */
static const char *sibling(const char *tag)
{
	static char buf[4096];
	const char *dot = strrchr(P, '.');
	snprintf(buf, sizeof buf, "%.*s-%s%s", (int)(dot - P), P, tag, dot);
	return buf;
}

/* Writes an MBR whose partition 1 is sectors 1-8 (to image and twin alike)
 * and returns "P/p1" (a file only under the shim) or, with n, "P/p<n>". */
static const char *part_path(unsigned n)
{
	static char buf[4200];
	unsigned char s[512] = {0};
	s[446 + 4] = 0x83;
	s[446 + 8] = 1;
	s[446 + 12] = 8;
	s[510] = 0x55;
	s[511] = 0xaa;
	int fd = open(P, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, s, sizeof s, 0) == (ssize_t)sizeof s && close(fd) == 0);
	snprintf(buf, sizeof buf, "%s/p%u", P, n);
	return buf;
}

/* access-like fn on the disk, and (image only) on its partition 1: the
 * image file answers, errno kept; a missing partition is ENOENT. */
static void part_access_checks(int (*fn)(const char *, int))
{
	CHECK(fn(P, R_OK | W_OK) == 0);
	say("disk rw ok");
	errno = 1234;
	int r = fn(part_path(1), R_OK | W_OK);
	EXPECT(r == 0 && errno == 1234);
	r = fn(part_path(9), F_OK);
	EXPECT(r < 0 && errno == ENOENT);
}

/* getxattr-like fn: partition 1 (image only) answers as the disk does. */
static void part_xattr_checks(ssize_t (*fn)(const char *, const char *, void *, size_t))
{
	char v[64];
	errno = 0;
	ssize_t r = fn(P, "user.qcowshim.none", v, sizeof v);
	int e = errno;
	say("disk: %zd errno %d", r, e);
	errno = 0;
	ssize_t rp = fn(part_path(1), "user.qcowshim.none", v, sizeof v);
	EXPECT(rp == r && errno == e);
}

static char *xbuf(size_t n, int c)
{
	char *b = malloc(n);
	CHECK(b);
	memset(b, c, n);
	return b;
}

/* The whole flat disk, read through a fresh fd: size and hash. */
static void final_state(void)
{
	int fd = open(P, O_RDONLY);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	char *b = malloc((size_t)st.st_size + 1);
	CHECK(b);
	ssize_t n = pread(fd, b, (size_t)st.st_size + 1, 0);
	CHECK(n == st.st_size);
	say("final size %lld hash %016" PRIx64, (long long)st.st_size, h64(b, (size_t)n));
	free(b);
	close(fd);
}

static void snippet(void);
static void child(void); /* re-exec'd mode ("child" argument), if any */

int main(int argc, char **argv)
{
	ARGV = argv;
	P = argv[1];
	IMG = getenv("QCS_IMAGE") != NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2 && !strcmp(argv[2], "child")) {
		child();
		return 0;
	}
	snippet();
	final_state();
	return 0;
}
#endif
