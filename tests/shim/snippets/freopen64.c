/* freopen64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	FILE *f = freopen64(P, "r", stdin); CHECK(f); size_t n = 0; int c, x = 0; while ((c = getchar()) != EOF) { n++; x ^= c; }
	say("freopen64 stdin %zu bytes xor %d", n, x); struct stat st; CHECK(fstat(fileno(stdin), &st) == 0); say("fd size %lld", (long long)st.st_size);
	/* the FILE returned may differ from the one passed (cookie stream) */ (void)f; FILE *g = freopen64(NULL, "r", stdin); say("mode change ok %d", g != NULL);
}
