/*
 * wrap_ownopen.c - files that glibc (or the kernel) opens by name itself,
 * past every wrapper, to read or write records in them:
 *   setmntent (__setmntent): glibc's fopen of a mount table.  For an image
 *     the stream is the shim's (fopen), so getmntent/addmntent see the flat
 *     disk, as they would a raw file.
 *   utmpname/utmpxname: later getutent/pututline open the file with
 *     glibc's internal open and read and write records in place; updwtmp/
 *     updwtmpx append a record the same way.  On an image: refused with
 *     one line (utmpname: -1 EACCES; updwtmp has no result: nothing is
 *     written).
 *   acct: the kernel appends process accounting records to the file:
 *     refused on an image (EACCES, what a file it cannot use gives).
 *   sem_open: glibc opens /dev/shm/sem.NAME and maps it as the semaphore
 *     (sem_post would write the image's first bytes): refused on an image
 *     (EACCES).
 * glibc only (SYMG rows).
 */
#include "shim.h"

#if SHIM_GLIBC
#include <limits.h>
#include <stdio_ext.h>

static bool named_image(const char *p)
{
	return p && policy_enabled() && reach_path_is_image(AT_FDCWD, p, 0);
}

static FILE *mnt_open(const char *p, const char *m, FILE *(*realfn)(const char *, const char *))
{
	if (likely(!named_image(p)))
		return realfn(p, m);
	char mode[16];
	snprintf(mode, sizeof mode, "%.8se", m); /* glibc adds "ce" */
	FILE *f = fopen(p, mode);
	if (f)
		__fsetlocking(f, FSETLOCKING_BYCALLER);
	return f;
}

FILE *setmntent(const char *p, const char *m)
{
	return mnt_open(p, m, real_setmntent);
}

FILE *__setmntent(const char *p, const char *m)
{
	return mnt_open(p, m, real___setmntent);
}

static int utmp_refuse(const char *p)
{
	return (int)shim_ret(reach_refuse(p, "utmp/wtmp records in an image",
					  "keep login records in a plain file", EACCES));
}

int utmpname(const char *p)
{
	if (likely(!named_image(p)))
		return real_utmpname(p);
	return utmp_refuse(p);
}

int utmpxname(const char *p)
{
	if (likely(!named_image(p)))
		return real_utmpxname(p);
	return utmp_refuse(p);
}

void updwtmp(const char *p, const struct utmp *u)
{
	if (likely(!named_image(p))) {
		real_updwtmp(p, u);
		return;
	}
	int saved = errno;
	utmp_refuse(p);
	errno = saved;
}

void updwtmpx(const char *p, const struct utmpx *u)
{
	if (likely(!named_image(p))) {
		real_updwtmpx(p, u);
		return;
	}
	int saved = errno;
	utmp_refuse(p);
	errno = saved;
}

int acct(const char *p)
{
	if (likely(!named_image(p)))
		return real_acct(p);
	return (int)shim_ret(reach_refuse(p, "process accounting into an image",
					  "account into a plain file", EACCES));
}

sem_t *sem_open(const char *name, int fl, ...)
{
	mode_t m = 0;
	unsigned v = 0;
	if (fl & O_CREAT) {
		va_list ap;
		va_start(ap, fl);
		m = va_arg(ap, mode_t);
		v = va_arg(ap, unsigned);
		va_end(ap);
	}
	char path[PATH_MAX];
	const char *n = name;
	while (n && *n == '/')
		n++;
	if (likely(!n || !policy_enabled()) ||
	    (snprintf(path, sizeof path, "/dev/shm/sem.%s", n), !named_image(path)))
		return real_sem_open(name, fl, m, v);
	shim_ret(reach_refuse(path, "a semaphore in an image (glibc maps its first bytes)",
			      "name the semaphore differently", EACCES));
	return SEM_FAILED;
}

#endif /* SHIM_GLIBC */
