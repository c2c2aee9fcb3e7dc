/* fopen: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	FILE *f = fopen(P, "r"); CHECK(f); char b[1000]; CHECK(fseek(f, 1048576 - 500, SEEK_SET) == 0);
	CHECK(fread(b, 1, 1000, f) == 1000); say("fopen %016" PRIx64 " tell %ld", h64(b, 1000), ftell(f));
	CHECK(fseek(f, -10, SEEK_END) == 0); say("tail %zu", fread(b, 1, 1000, f)); fclose(f);
	f = fopen(P, "r+"); CHECK(f); CHECK(fseek(f, 777, SEEK_SET) == 0); fputs("written-by-stdio", f); fclose(f);
	const char *n = sibling("w"); f = fopen(n, "w"); CHECK(f); for (int i = 0; i < 1000; i++) fprintf(f, "line %d\n", i); fclose(f);
	f = fopen(n, "a"); fputs("appended\n", f); fclose(f); f = fopen(n, "r"); size_t t = 0; while (fgets(b, sizeof b, f)) t += strlen(b); fclose(f);
	say("w/a file %zu", t); if (IMG) { char cmd[8300]; snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", n); EXPECT(system(cmd) == 0); } unlink(n);
}
