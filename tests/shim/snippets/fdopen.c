/* fdopen: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); CHECK(lseek(fd, 1048576 - 3, SEEK_SET) >= 0);
	FILE *f = fdopen(fd, "r+"); CHECK(f); char b[6]; CHECK(fread(b, 1, 6, f) == 6); say("fdopen %016" PRIx64, h64(b, 6));
	CHECK(fseek(f, 4000, SEEK_SET) == 0); fputs("fdopen-write", f); fflush(f); say("fd pos %lld", (long long)lseek(fd, 0, SEEK_CUR)); fclose(f);
	errno = 0; say("fd closed %d errno %d", fcntl(fd, F_GETFD), errno);
}
