/*
 * libc_musl.h - what the shim's sources need from musl that musl spells
 * differently (included by shim.h only when SHIM_GLIBC is 0).
 *
 * The glibc-only rows of syms.def (SYM64, SYMG) are still compiled under
 * musl, as hidden functions nobody outside the shim can reach, so that the
 * wrapper files need no per-libc conditionals.  For that they need their
 * names as names: musl's headers #define the LFS64 names onto the plain
 * ones (open64 -> open, struct stat64 -> struct stat, ...), which would
 * turn each *64 wrapper into a second definition of its base function.
 */
#ifndef SHIM_LIBC_MUSL_H
#define SHIM_LIBC_MUSL_H

#include <linux/fs.h>   /* RWF_APPEND (musl <= 1.2.4 does not define it) */
#include <linux/stat.h> /* struct statx (musl < 1.2.5 has none) */

#undef open64
#undef openat64
#undef creat64
#undef pread64
#undef pwrite64
#undef preadv64
#undef pwritev64
#undef lseek64
#undef stat64
#undef lstat64
#undef fstat64
#undef fstatat64
#undef ftruncate64
#undef truncate64
#undef fallocate64
#undef posix_fallocate64
#undef posix_fadvise64
#undef lockf64
#undef fopen64
#undef freopen64
#undef mmap64
#undef sendfile64

/* musl's stat is the large-file stat: the *64 rows' struct is the same. */
struct stat64 {
	struct stat st;
};

/* Declared by glibc only; the shim defines them (hidden under musl). */
ssize_t pread64(int, void *, size_t, off_t);
ssize_t pwrite64(int, const void *, size_t, off_t);
ssize_t preadv64(int, const struct iovec *, int, off_t);
ssize_t pwritev64(int, const struct iovec *, int, off_t);
ssize_t preadv2(int, const struct iovec *, int, off_t, int);
ssize_t pwritev2(int, const struct iovec *, int, off_t, int);
ssize_t preadv64v2(int, const struct iovec *, int, off_t, int);
ssize_t pwritev64v2(int, const struct iovec *, int, off_t, int);
off_t lseek64(int, off_t, int);
int ftruncate64(int, off_t);
int fallocate64(int, int, off_t, off_t);
ssize_t sendfile64(int, int, off_t *, size_t);
int fcntl64(int, int, ...);
int statx(int, const char *, int, unsigned, struct statx *);
int close_range(unsigned, unsigned, int);
int execveat(int, const char *, char *const *, char *const *, int);
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
void closefrom(int);

/* The fortified *_chk wrappers are unreachable under musl (no program
 * calls them); glibc's failure hook is plain abort there. */
#define __chk_fail abort

#endif
