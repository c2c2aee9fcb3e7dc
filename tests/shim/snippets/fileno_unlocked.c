/* fileno_unlocked: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	FILE *f = fopen(P, "r"); CHECK(f); int fd = fileno_unlocked(f); CHECK(fd >= 0); struct stat st; CHECK(fstat(fd, &st) == 0);
	say("fileno_unlocked size %lld", (long long)st.st_size); char b[4]; CHECK(pread(fd, b, 4, 1048576) == 4); say("%02x", (unsigned char)b[0]);
	say("stdin fd %d", fileno_unlocked(stdin)); fclose(f);
}
