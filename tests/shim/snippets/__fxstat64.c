/* __fxstat64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"
int __xstat(int, const char *, struct stat *); int __xstat64(int, const char *, struct stat64 *);
int __lxstat(int, const char *, struct stat *); int __lxstat64(int, const char *, struct stat64 *);
int __fxstat(int, int, struct stat *); int __fxstat64(int, int, struct stat64 *);
int __fxstatat(int, int, const char *, struct stat *, int); int __fxstatat64(int, int, const char *, struct stat64 *, int);

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	struct stat64 st; memset(&st, 0, sizeof st); CHECK(__fxstat64(1, fd, &st) == 0);
	say("reg %d size %lld blocks>0 %d", S_ISREG(st.st_mode), (long long)st.st_size, st.st_blocks > 0);
}
