/* openat: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	char dir[4096]; strcpy(dir, P); char *s = strrchr(dir, '/'); *s = 0;
	int d = open(dir, O_RDONLY | O_DIRECTORY); CHECK(d >= 0);
	int fd = openat(d, s + 1, O_RDONLY); CHECK(fd >= 0);
	char b[4]; CHECK(read(fd, b, 4) == 4); say("openat: %02x", (unsigned char)b[0]);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("size %lld", (long long)st.st_size); close(fd); close(d);
}
