/* sendfile: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int in = open(P, O_RDONLY); CHECK(in >= 0); int p[2]; CHECK(pipe(p) == 0);
	off_t off = 1048576 - 16; ssize_t r = sendfile(p[1], in, &off, 32); say("sendfile %zd off %lld", r, (long long)off);
	char b[32]; CHECK(read(p[0], b, 32) == 32); say("%016" PRIx64, h64(b, 32));
	CHECK(lseek(in, 1048576, SEEK_SET) >= 0); r = sendfile(p[1], in, NULL, 8); say("no-off %zd pos %lld", r, (long long)lseek(in, 0, SEEK_CUR));
	CHECK(read(p[0], b, 8) == 8); say("%02x", (unsigned char)b[0]); close(p[0]); close(p[1]); close(in);
}
