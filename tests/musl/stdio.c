/*
 * stdio.c DISK - stdio from a musl-linked program.  musl's FILE reads and
 * writes with system calls made inside libc, so the shim serves an image
 * through an fopencookie FILE: fopen/fdopen/freopen, fread/fwrite, fseek/
 * ftell, fgetc/ungetc, fileno, "a" mode appends at the virtual end, fclose.
 */
#include "common.h"

static unsigned char buf[1 << 16];

static void read_write(const char *path)
{
	FILE *f = fopen(path, "r+");
	CHECK(f);
	CHECK(fseek(f, 1 << 20, SEEK_SET) == 0);
	say("fread %zu h %016" PRIx64, fread(buf, 1, 4096, f), h64(buf, 4096));
	say("ftell %ld", ftell(f));
	fill(buf, 10000, 6);
	say("fwrite %zu", fwrite(buf, 1, 10000, f));
	CHECK(fflush(f) == 0);
	CHECK(fseek(f, 0, SEEK_END) == 0);
	say("end %ld", ftell(f));
	rewind(f);
	int c = fgetc(f), u = ungetc(0x42, f), c2 = fgetc(f), c3 = fgetc(f);
	say("fgetc %#x ungetc %#x fgetc %#x %#x", c, u, c2, c3);
	struct stat st;
	CHECK(fstat(fileno(f), &st) == 0);
	say("fstat(fileno) %lld", (long long)st.st_size);
	say("fclose %d", fclose(f));
}

static void append_fdopen(const char *path)
{
	FILE *f = fopen(path, "a");
	CHECK(f);
	fill(buf, 512, 7); /* whole sectors: qemu rounds a size down to them */
	say("append %zu", fwrite(buf, 1, 512, f));
	say("fclose %d", fclose(f));
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	f = fdopen(fd, "r+");
	CHECK(f);
	CHECK(fseek(f, (1 << 21) - 3, SEEK_SET) == 0);
	fill(buf, 20000, 8);
	say("fdopen fwrite %zu", fwrite(buf, 1, 20000, f));
	say("fclose %d", fclose(f));
}

static void whole(const char *path)
{
	FILE *f = fopen("/dev/null", "r");
	CHECK(f);
	f = freopen(path, "r", f);
	CHECK(f);
	uint64_t h = 0;
	size_t n, total = 0;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		h = h * 31 + h64(buf, n);
		total += n;
	}
	say("freopen read %zu h %016" PRIx64 " eof %d", total, h, feof(f));
	say("final size %zu", total);
	CHECK(fclose(f) == 0);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	read_write(argv[1]);
	append_fdopen(argv[1]);
	whole(argv[1]);
	return 0;
}
