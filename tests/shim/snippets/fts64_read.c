/* fts64_read: the fts_read snippet with FTS64/FTSENT64. See ../snip.h and _walk.h.  The fts_statp of the image's entry
 * (and of a symbolic link to it, with FTS_LOGICAL) shows the virtual size,
 * with fts changing directories and with FTS_NOCHDIR; FTS_PHYSICAL reports
 * the link as a link. */
#define _GNU_SOURCE
#include "../snip.h"
#include <fts.h>
#include "_walk.h"

static void child(void) {}

static void walk(const char *how, int opts)
{
	char *roots[] = {walk_dir, NULL};
	FTS64 *t = fts64_open(roots, opts, NULL); CHECK(t);
	FTSENT64 *e;
	/* fts_read ends with errno 0 (glibc, documented): no errno check */
	while ((e = fts64_read(t)))
		if (e->fts_info == FTS_F || e->fts_info == FTS_SL)
			walk_saw(how, e->fts_name, e->fts_level, (const struct stat *)e->fts_statp);
	CHECK(fts64_close(t) == 0);
}

static void snippet(void)
{
	walk_setup();
	walk("physical", FTS_PHYSICAL); walk("logical", FTS_LOGICAL);
	walk("nochdir", FTS_PHYSICAL | FTS_NOCHDIR);
	walk_flush(); walk_cleanup();
}
