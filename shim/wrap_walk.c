/*
 * wrap_walk.c - tree walkers that stat with glibc's internal calls: nftw,
 * ftw (+64), fts_read, fts_children (+64).  The struct stat they hand the
 * program (the callback's argument, FTSENT's fts_statp) is glibc's own,
 * which no stat wrapper saw: for an image it would show the host size.
 * Each regular file's buffer is fixed up here before the program sees it,
 * with what the shim's fstatat says of the same name (virtual size and
 * allocated blocks), when the name could be an image (policy_classify)
 * or an image is open in this process; the fast path is one name match.
 * glibc only (SYMG rows).
 */
#include "shim.h"

#if SHIM_GLIBC
#include <limits.h>
#include <string.h>

/* st (from glibc, for path relative to the current directory) of a
 * regular file: the shim's view of it, if it is an image. */
static void walk_fix(const char *path, struct stat *st, bool follow)
{
	int ref;
	if (!path || !S_ISREG(st->st_mode) || !atomic_load(&shim_ready) || !policy_enabled() ||
	    shim_depth)
		return;
	if (policy_classify(path, &ref) == SHIM_PATH_NO && !fd_any_images())
		return;
	struct stat v;
	int saved = errno;
	if (fstatat(AT_FDCWD, path, &v, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0 &&
	    v.st_dev == st->st_dev && S_ISREG(v.st_mode)) {
		st->st_size = v.st_size;
		st->st_blocks = v.st_blocks;
	}
	errno = saved;
}

/* The program's callback of the walk running on this thread (nested walks
 * from a callback save and restore it). */
struct walk {
	void *fn;
	int flags;
};
static __thread struct walk *walk_cur __attribute__((tls_model("initial-exec")));

static int nftw_cb(const char *p, const struct stat *sb, int type, struct FTW *f)
{
	struct walk *w = walk_cur;
	int (*fn)(const char *, const struct stat *, int, struct FTW *) = w->fn;
	if (!sb || (type != FTW_F && type != FTW_SL))
		return fn(p, sb, type, f);
	struct stat st = *sb;
	/* FTW_CHDIR: glibc is in the entry's directory */
	walk_fix((w->flags & FTW_CHDIR) ? p + f->base : p, &st, !(w->flags & FTW_PHYS));
	walk_cur = NULL; /* a walk started by the callback is its own */
	int r = fn(p, &st, type, f);
	walk_cur = w;
	return r;
}

static int ftw_cb(const char *p, const struct stat *sb, int type)
{
	struct walk *w = walk_cur;
	int (*fn)(const char *, const struct stat *, int) = w->fn;
	if (!sb || type != FTW_F)
		return fn(p, sb, type);
	struct stat st = *sb;
	walk_fix(p, &st, true);
	walk_cur = NULL;
	int r = fn(p, &st, type);
	walk_cur = w;
	return r;
}

#define WALK(call)                                                             \
	({                                                                     \
		struct walk *prev_ = walk_cur;                                 \
		walk_cur = &w;                                                 \
		int r_ = (call);                                               \
		walk_cur = prev_;                                              \
		r_;                                                            \
	})

int nftw(const char *dir, __nftw_func_t fn, int nfd, int flags)
{
	if (!policy_enabled())
		return real_nftw(dir, fn, nfd, flags);
	struct walk w = {(void *)fn, flags};
	return WALK(real_nftw(dir, nftw_cb, nfd, flags));
}

int nftw64(const char *dir, __nftw64_func_t fn, int nfd, int flags)
{
	if (!policy_enabled())
		return real_nftw64(dir, (__nftw_func_t)(void *)fn, nfd, flags);
	struct walk w = {(void *)fn, flags};
	return WALK(real_nftw64(dir, nftw_cb, nfd, flags));
}

int ftw(const char *dir, __ftw_func_t fn, int nfd)
{
	if (!policy_enabled())
		return real_ftw(dir, fn, nfd);
	struct walk w = {(void *)fn, 0};
	return WALK(real_ftw(dir, ftw_cb, nfd));
}

int ftw64(const char *dir, __ftw64_func_t fn, int nfd)
{
	if (!policy_enabled())
		return real_ftw64(dir, (__ftw_func_t)(void *)fn, nfd);
	struct walk w = {(void *)fn, 0};
	return WALK(real_ftw64(dir, ftw_cb, nfd));
}

/* fts: entries of regular files carry glibc's stat in fts_statp; the name
 * to reach them from the current directory (where fts left it) is
 * fts_accpath.  FTS_F entries of FTS_LOGICAL/FTS_COMFOLLOW roots follow
 * symbolic links. */
static void fts_fix(FTS *t, FTSENT *e)
{
	if (e && e->fts_info == FTS_F && e->fts_statp)
		walk_fix(e->fts_accpath, e->fts_statp,
			 (t->fts_options & FTS_LOGICAL) ||
				 (e->fts_level == FTS_ROOTLEVEL && (t->fts_options & FTS_COMFOLLOW)));
}

static FTSENT *fts_read_fix(FTS *t, FTSENT *e)
{
	if (likely(!e || e->fts_info != FTS_F) || !policy_enabled())
		return e;
	fts_fix(t, e);
	return e;
}

FTSENT *fts_read(FTS *t)
{
	return fts_read_fix(t, real_fts_read(t));
}

/* FTS64/FTSENT64: the same layout as FTS/FTSENT on 64-bit glibc */
FTSENT64 *fts64_read(FTS64 *t)
{
	return (FTSENT64 *)fts_read_fix((FTS *)t, real_fts64_read(t));
}

/* fts_children's list is relative to the directory fts_read last returned,
 * where the current directory is not (yet): the names are that
 * directory's path plus the entry's name. */
static FTSENT *fts_children_fix(FTS *t, FTSENT *l, int opt)
{
	FTSENT *e;
	if (!l || !policy_enabled() || (opt & FTS_NAMEONLY))
		return l;
	int saved = errno;
	for (e = l; e; e = e->fts_link) {
		if (e->fts_info != FTS_F || !e->fts_statp)
			continue;
		char path[PATH_MAX];
		if (e->fts_level == FTS_ROOTLEVEL)
			snprintf(path, sizeof path, "%s", e->fts_accpath);
		else if (e->fts_parent)
			snprintf(path, sizeof path, "%s/%s", e->fts_parent->fts_accpath, e->fts_name);
		else
			continue;
		walk_fix(path, e->fts_statp, (t->fts_options & FTS_LOGICAL) != 0);
	}
	errno = saved;
	return l;
}

FTSENT *fts_children(FTS *t, int opt)
{
	return fts_children_fix(t, real_fts_children(t, opt), opt);
}

FTSENT64 *fts64_children(FTS64 *t, int opt)
{
	return (FTSENT64 *)fts_children_fix((FTS *)t, real_fts64_children(t, opt), opt);
}

#endif /* SHIM_GLIBC */
