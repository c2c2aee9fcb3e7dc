/* creat64: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	const char *n = sibling("creat64"); unlink(n); int fd = creat64(n, 0644); CHECK(fd >= 0);
	char *b = xbuf(4096, 0x5a); CHECK(write(fd, b, 4096) == 4096); close(fd);
	struct stat st; CHECK(stat(n, &st) == 0); say("creat size %lld", (long long)st.st_size);
	if (IMG) { char cmd[8300]; snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", n); EXPECT(system(cmd) == 0); }
	unlink(n);
}
