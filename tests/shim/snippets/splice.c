/* splice: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int in = open(P, O_RDWR); CHECK(in >= 0); int p[2]; CHECK(pipe(p) == 0);
	loff_t off = 1048576 - 8; ssize_t r = splice(in, &off, p[1], NULL, 16, 0); say("splice %zd off %lld", r, (long long)off);
	char b[16]; CHECK(read(p[0], b, 16) == 16); say("%016" PRIx64, h64(b, 16));
	CHECK(write(p[1], "spliced-in", 10) == 10); off = 600; r = splice(p[0], NULL, in, &off, 10, 0); say("into disk %zd off %lld", r, (long long)off);
	close(p[0]); close(p[1]); close(in);
}
