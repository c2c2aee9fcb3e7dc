/* copy_file_range: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int in = open(P, O_RDWR); CHECK(in >= 0); char tmp[] = "/tmp/qcs-cfr-XXXXXX"; int out = mkstemp(tmp); CHECK(out >= 0); unlink(tmp);
	off64_t io = 1048576 - 1000; ssize_t t = 0, r; while ((r = copy_file_range(in, &io, out, NULL, 70000 - (size_t)t, 0)) > 0) t += r;
	say("copied %zd in-off %lld", t, (long long)io); char *b = malloc(70000); CHECK(pread(out, b, 70000, 0) == 70000); say("%016" PRIx64, h64(b, 70000));
	CHECK(lseek(in, 123, SEEK_SET) == 123); off64_t oo = 0; t = 0; while (t < 5000 && (r = copy_file_range(out, &oo, in, NULL, 5000 - (size_t)t, 0)) > 0) t += r;
	say("into disk %zd pos %lld", t, (long long)lseek(in, 0, SEEK_CUR)); close(out); close(in);
}
