/*
 * common.h - helpers for the musl-linked test programs in tests/musl/,
 * built with musl-gcc by tests/integration/t_musl.sh.  Each program prints
 * one line per observable result; t_musl.sh runs it on a QCOW2 image under
 * build-musl/libqcowshim.so and on the raw twin without the shim, and the
 * two outputs must be identical.
 */
#ifndef MUSL_COMMON_H
#define MUSL_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Lines go out with write(2) on fd 1: stdout may be an image in a test. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(1, line, (size_t)n) != n)
		exit(9);
}

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			say("CHECK FAILED %s:%d: %s (errno %d %s)", __FILE__,  \
			    __LINE__, #c, errno, strerror(errno));             \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* FNV-1a: a content fingerprint for the outputs. */
static uint64_t h64(const void *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
	return h;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 9));
}

/* Hash of the whole flat disk read back through fd (pread, 64 KiB steps). */
static __attribute__((unused)) uint64_t disk_hash(int fd, off_t size)
{
	static unsigned char b[65536];
	uint64_t h = 0;
	for (off_t o = 0; o < size; o += (off_t)sizeof b) {
		ssize_t r = pread(fd, b, sizeof b, o);
		CHECK(r > 0);
		h = h * 31 + h64(b, (size_t)r);
	}
	return h;
}
#endif
