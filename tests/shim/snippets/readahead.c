/* readahead: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); say("readahead %zd", readahead(fd, 0, 65536));
	char b[4]; CHECK(read(fd, b, 4) == 4); say("%02x pos %lld", (unsigned char)b[0], (long long)lseek(fd, 0, SEEK_CUR)); close(fd);
}
