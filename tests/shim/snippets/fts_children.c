/* fts_children: see ../snip.h and _walk.h.  The list fts_children gives of
 * a directory fts_read just returned carries the virtual size in the
 * image entry's fts_statp (the link: followed with FTS_LOGICAL), with fts
 * changing directories and with FTS_NOCHDIR. */
#define _GNU_SOURCE
#include "../snip.h"
#include <fts.h>
#include "_walk.h"

static void child(void) {}

static void walk(const char *how, int opts)
{
	char *roots[] = {walk_dir, NULL};
	FTS *t = fts_open(roots, opts, NULL); CHECK(t);
	FTSENT *e;
	/* fts_read ends with errno 0 (glibc, documented): no errno check */
	while ((e = fts_read(t)))
		if (e->fts_info == FTS_D)
			for (FTSENT *c = fts_children(t, 0); c; c = c->fts_link)
				if (c->fts_info == FTS_F || c->fts_info == FTS_SL)
					walk_saw(how, c->fts_name, c->fts_level, c->fts_statp);
	CHECK(fts_close(t) == 0);
}

static void snippet(void)
{
	walk_setup();
	walk("physical", FTS_PHYSICAL); walk("logical", FTS_LOGICAL);
	walk("nochdir", FTS_LOGICAL | FTS_NOCHDIR);
	walk_flush(); walk_cleanup();
}
