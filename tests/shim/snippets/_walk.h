/* _walk.h - shared by the tree-walker snippets (nftw, ftw, fts_*): a tree
 * holding the disk and, in sub/, a symbolic link to it (named with the
 * disk's suffix, so an image name under the shim); the walks report the
 * size glibc's own stat found for those two entries.  The run directory
 * holds other files whose sizes differ between the runs: only the disk and
 * the link are reported, sorted (readdir order differs between runs). */
#include <libgen.h>

static char walk_dir[4096], walk_sub[4200], walk_link[4400];
static const char *walk_base;
static char *walk_lines[64];
static int walk_n;

static void walk_setup(void)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", P);
	snprintf(walk_dir, sizeof walk_dir, "%s", dirname(tmp));
	walk_base = strrchr(P, '/') ? strrchr(P, '/') + 1 : P;
	snprintf(walk_sub, sizeof walk_sub, "%s/sub", walk_dir);
	snprintf(walk_link, sizeof walk_link, "%s/link%s", walk_sub, strrchr(walk_base, '.'));
	CHECK(mkdir(walk_sub, 0700) == 0 && symlink(P, walk_link) == 0);
}

/* name: the entry's last component; records it if it is the disk or the link */
static void walk_saw(const char *how, const char *name, int level, const struct stat *st)
{
	const char *what = !strcmp(name, walk_base) ? "disk" : !strncmp(name, "link", 4) ? "link" : NULL;
	if (!what || !st)
		return;
	char line[256];
	snprintf(line, sizeof line, "%s: %s level %d %s size %lld", how, what, level,
		 S_ISREG(st->st_mode) ? "file" : S_ISLNK(st->st_mode) ? "symlink" : "other",
		 S_ISREG(st->st_mode) ? (long long)st->st_size : 0LL);
	CHECK(walk_n < 64 && (walk_lines[walk_n++] = strdup(line)));
}

static int walk_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_flush(void)
{
	qsort(walk_lines, (size_t)walk_n, sizeof walk_lines[0], walk_cmp);
	for (int i = 0; i < walk_n; i++) {
		say("%s", walk_lines[i]);
		free(walk_lines[i]);
	}
	walk_n = 0;
}

static void walk_cleanup(void)
{
	CHECK(unlink(walk_link) == 0 && rmdir(walk_sub) == 0);
}
