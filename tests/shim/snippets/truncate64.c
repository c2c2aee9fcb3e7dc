/* truncate64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	struct stat st; CHECK(truncate64(P, 3145728) == 0); CHECK(stat(P, &st) == 0); say("size %lld", (long long)st.st_size);
	const char *n = sibling("truncate64"); unlink(n); int fd = open(n, O_WRONLY | O_CREAT, 0644); CHECK(fd >= 0); close(fd);
	CHECK(truncate64(n, 2097152) == 0); CHECK(stat(n, &st) == 0); say("new size %lld", (long long)st.st_size);
	if (IMG) { char cmd[8300]; snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", n); EXPECT(system(cmd) == 0); } unlink(n);
}
