/* __open_2: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = __open_2(P, O_RDONLY); CHECK(fd >= 0);
	char b[32]; CHECK(pread(fd, b, 32, 496) == 32); say("__open_2: %016" PRIx64, h64(b, 32)); close(fd);
}
