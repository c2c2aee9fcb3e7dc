/*
 * threads_tsan - many threads doing I/O at once, built with ThreadSanitizer
 * (tests/stress/threads.sh runs it with halt_on_error=1).
 *
 *   threads_tsan shim DIR THREADS OPS
 *       Run under LD_PRELOAD of a TSan build of libqcowshim.so.  DIR holds
 *       a.qcow2, b.qcow2 (images) and a.raw, b.raw (their raw twins).  Each
 *       thread owns a disjoint range of both images and mirrors every op on
 *       the twins: pwrite/pread on fds shared by all threads, lseek+read/write
 *       on its own fds, fsync/fdatasync, fallocate(PUNCH_HOLE), stdio
 *       (fopen/fseeko/fwrite/fread/fflush/fclose).  Every read must match the
 *       thread's model.  One more thread opens and closes a.qcow2 in a loop
 *       and reads its last range (written once by the script, never by a
 *       thread).  The script then compares each image with its twin.
 *   threads_tsan lib DIR THREADS OPS
 *       The library alone (qcow.h: "every call is thread-safe"): threads
 *       call qcow_write/read/zero/flush/map on one image on a host-file
 *       backend (DIR/l.qcow2, created here) and mirror on DIR/l.raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow.h"

#define RANGE (2u << 20) /* bytes owned by each thread, per image */
#define MAXLEN (192u << 10)

static const char *dir;
static unsigned nthreads, nops;
static int shared_fd[2], twin_fd[2];
static struct qcow *libq;
static int failed;

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define FAILF(...)                                                  \
	do {                                                        \
		fprintf(stderr, "threads_tsan: " __VA_ARGS__);       \
		fputc('\n', stderr);                                \
		__atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);    \
		return NULL;                                        \
	} while (0)

static void path(char *b, size_t n, const char *name)
{
	snprintf(b, n, "%s/%s", dir, name);
}

static int xopen(const char *name, int flags)
{
	char p[4096];
	path(p, sizeof p, name);
	return open(p, flags);
}

/* Full pread/pwrite through a given call (short transfers retried). */
static int full(ssize_t (*f)(int, void *, size_t, off_t), int fd, void *b, size_t n, off_t off)
{
	while (n) {
		ssize_t r = f(fd, b, n, off);
		if (r <= 0)
			return -1;
		b = (char *)b + r, n -= (size_t)r, off += r;
	}
	return 0;
}
static ssize_t pw(int fd, void *b, size_t n, off_t o) { return pwrite(fd, b, n, o); }

struct worker {
	unsigned id;
	uint64_t rng;
	uint8_t *model[2]; /* expected contents of this thread's range in a/b */
	uint8_t *buf, *rd;
};

static uint64_t below(struct worker *w, uint64_t n) { return (w->rng = mix(w->rng)) % n; }

/* Mirrors a write (or, with punch, a discard) on the twin and in the model. */
static int twin_write(struct worker *w, int img, const uint8_t *b, size_t n, off_t off, bool punch)
{
	if (punch) {
		memset(w->model[img] + (off - (off_t)w->id * RANGE), 0, n);
		return fallocate(twin_fd[img], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
				 (off_t)n);
	}
	memcpy(w->model[img] + (off - (off_t)w->id * RANGE), b, n);
	return full(pw, twin_fd[img], (void *)b, n, off);
}

static int expect(struct worker *w, int img, const uint8_t *got, size_t n, off_t off, const char *how)
{
	const uint8_t *want = w->model[img] + (off - (off_t)w->id * RANGE);
	if (!memcmp(got, want, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			fprintf(stderr, "threads_tsan: thread %u, %s on image %c: byte %#llx is %#x, want %#x\n",
				w->id, how, 'a' + img, (unsigned long long)off + i, got[i], want[i]);
			break;
		}
	return -1;
}

static void *shim_worker(void *arg)
{
	struct worker *w = arg;
	char name[2][16] = { "a.qcow2", "b.qcow2" };
	int own[2] = { xopen(name[0], O_RDWR), xopen(name[1], O_RDWR) };
	if (own[0] < 0 || own[1] < 0)
		FAILF("thread %u: open: %s", w->id, strerror(errno));
	for (unsigned i = 0; i < nops && !__atomic_load_n(&failed, __ATOMIC_SEQ_CST); i++) {
		int img = (int)below(w, 2);
		size_t n = 1 + below(w, below(w, 4) ? 8192 : MAXLEN);
		off_t off = (off_t)(w->id * RANGE + below(w, RANGE - n));
		uint64_t k = below(w, 100);
		for (size_t j = 0; j < n; j++)
			w->buf[j] = (uint8_t)mix(w->rng + j);
		if (k < 30) { /* pwrite on the fd every thread uses */
			if (full(pw, shared_fd[img], w->buf, n, off) || twin_write(w, img, w->buf, n, off, false))
				FAILF("thread %u: pwrite: %s", w->id, strerror(errno));
		} else if (k < 50) { /* pread on the shared fd */
			if (full(pread, shared_fd[img], w->rd, n, off) || expect(w, img, w->rd, n, off, "pread"))
				FAILF("thread %u: pread failed or mismatched", w->id);
		} else if (k < 60) { /* lseek + write on its own fd */
			if (lseek(own[img], off, SEEK_SET) != off || write(own[img], w->buf, n) != (ssize_t)n ||
			    twin_write(w, img, w->buf, n, off, false))
				FAILF("thread %u: lseek+write: %s", w->id, strerror(errno));
		} else if (k < 70) { /* lseek + read */
			if (lseek(own[img], off, SEEK_SET) != off || read(own[img], w->rd, n) != (ssize_t)n ||
			    expect(w, img, w->rd, n, off, "lseek+read"))
				FAILF("thread %u: lseek+read failed or mismatched", w->id);
		} else if (k < 78) { /* stdio: write then read back through one FILE */
			char p[4096];
			path(p, sizeof p, name[img]);
			FILE *f = fopen(p, "r+");
			if (!f || fseeko(f, off, SEEK_SET) || fwrite(w->buf, 1, n, f) != n || fflush(f) ||
			    twin_write(w, img, w->buf, n, off, false) || fseeko(f, off, SEEK_SET) ||
			    fread(w->rd, 1, n, f) != n || expect(w, img, w->rd, n, off, "fread") || fclose(f))
				FAILF("thread %u: stdio failed or mismatched", w->id);
		} else if (k < 84) { /* discard */
			if (fallocate(shared_fd[img], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)n) ||
			    twin_write(w, img, NULL, n, off, true))
				FAILF("thread %u: fallocate: %s", w->id, strerror(errno));
		} else if (k < 90) {
			if ((k & 1 ? fsync : fdatasync)(k < 87 ? shared_fd[img] : own[img]))
				FAILF("thread %u: fsync: %s", w->id, strerror(errno));
		} else { /* a big read across the range: sees only this thread's data */
			if (full(pread, own[img], w->rd, MAXLEN, (off_t)(w->id * RANGE + RANGE - MAXLEN)) ||
			    expect(w, img, w->rd, MAXLEN, (off_t)(w->id * RANGE + RANGE - MAXLEN), "pread"))
				FAILF("thread %u: pread failed or mismatched", w->id);
		}
	}
	close(own[0]);
	close(own[1]);
	return NULL;
}

/* Opens and closes a.qcow2 in a loop, reading the range no thread writes
 * (the script filled it with the byte 0x5c). */
static void *churn(void *arg)
{
	(void)arg;
	uint8_t *b = malloc(65536);
	for (unsigned i = 0; i < nops / 8 && !__atomic_load_n(&failed, __ATOMIC_SEQ_CST); i++) {
		int fd = xopen("a.qcow2", i % 2 ? O_RDONLY : O_RDWR);
		off_t off = (off_t)nthreads * RANGE + (off_t)(i * 4096 % (RANGE - 65536));
		if (fd < 0 || full(pread, fd, b, 65536, off) || close(fd))
			FAILF("churn: %s", strerror(errno));
		for (int j = 0; j < 65536; j++)
			if (b[j] != 0x5c)
				FAILF("churn: byte %#llx is %#x, want 0x5c", (unsigned long long)off + j, b[j]);
	}
	free(b);
	return NULL;
}

static void *lib_worker(void *arg)
{
	struct worker *w = arg;
	for (unsigned i = 0; i < nops && !__atomic_load_n(&failed, __ATOMIC_SEQ_CST); i++) {
		size_t n = 1 + below(w, below(w, 4) ? 8192 : MAXLEN);
		uint64_t off = w->id * RANGE + below(w, RANGE - n);
		uint64_t k = below(w, 100);
		for (size_t j = 0; j < n; j++)
			w->buf[j] = (uint8_t)mix(w->rng + j);
		if (k < 45) {
			if (qcow_write(libq, w->buf, n, off) != (ssize_t)n ||
			    twin_write(w, 0, w->buf, n, (off_t)off, false))
				FAILF("thread %u: qcow_write failed", w->id);
		} else if (k < 75) {
			if (qcow_read(libq, w->rd, n, off) != (ssize_t)n ||
			    expect(w, 0, w->rd, n, (off_t)off, "qcow_read"))
				FAILF("thread %u: qcow_read failed or mismatched", w->id);
		} else if (k < 85) {
			if (qcow_zero(libq, off, n, k & 1 ? QCOW_ZERO_UNMAP : 0) ||
			    twin_write(w, 0, NULL, n, (off_t)off, true))
				FAILF("thread %u: qcow_zero failed", w->id);
		} else if (k < 92) {
			if (qcow_flush(libq))
				FAILF("thread %u: qcow_flush failed", w->id);
		} else {
			struct qcow_extent e;
			if (qcow_map(libq, off, n, &e) || !e.len || e.len > n)
				FAILF("thread %u: qcow_map failed", w->id);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5 || (strcmp(argv[1], "shim") && strcmp(argv[1], "lib"))) {
		fprintf(stderr, "usage: threads_tsan shim|lib DIR THREADS OPS\n");
		return 2;
	}
	bool lib = !strcmp(argv[1], "lib");
	dir = argv[2];
	nthreads = (unsigned)atoi(argv[3]);
	nops = (unsigned)atoi(argv[4]);
	uint64_t size = (uint64_t)(nthreads + 1) * RANGE;
	if (lib) {
		char p[4096];
		path(p, sizeof p, "l.qcow2");
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
		struct qcow_backend be;
		struct qcow_create_opts c = { .size = size, .cluster_bits = 16 };
		if (fd < 0 || qcow_backend_fd(&be, fd, qcow_sysio_default(), QCOW_FD_OWN) ||
		    qcow_create(&libq, be, &c, NULL)) {
			fprintf(stderr, "threads_tsan: cannot create %s\n", p);
			return 1;
		}
		twin_fd[0] = xopen("l.raw", O_RDWR | O_CREAT | O_TRUNC);
		if (twin_fd[0] < 0 || ftruncate(twin_fd[0], (off_t)size))
			return 1;
	} else {
		for (int i = 0; i < 2; i++) {
			char img[] = "a.qcow2", raw[] = "a.raw";
			img[0] = raw[0] = (char)('a' + i);
			shared_fd[i] = xopen(img, O_RDWR);
			twin_fd[i] = xopen(raw, O_RDWR);
			if (shared_fd[i] < 0 || twin_fd[i] < 0) {
				fprintf(stderr, "threads_tsan: open %s: %s\n", img, strerror(errno));
				return 1;
			}
		}
	}
	pthread_t th[65];
	struct worker w[64];
	if (nthreads > 64)
		return 2;
	for (unsigned t = 0; t < nthreads; t++) {
		w[t] = (struct worker){ .id = t, .rng = mix(t + 1) };
		for (int i = 0; i < 2; i++) { /* the images start as zeros in every owned range */
			w[t].model[i] = calloc(1, RANGE);
		}
		w[t].buf = malloc(MAXLEN);
		w[t].rd = malloc(MAXLEN);
		pthread_create(&th[t], NULL, lib ? lib_worker : shim_worker, &w[t]);
	}
	if (!lib)
		pthread_create(&th[nthreads], NULL, churn, NULL);
	for (unsigned t = 0; t < nthreads + !lib; t++)
		pthread_join(th[t], NULL);
	int r = lib ? qcow_close(libq) : close(shared_fd[0]) | close(shared_fd[1]);
	if (r)
		fprintf(stderr, "threads_tsan: close: %d\n", r);
	for (unsigned t = 0; t < nthreads; t++) {
		free(w[t].model[0]);
		free(w[t].model[1]);
		free(w[t].buf);
		free(w[t].rd);
	}
	printf("threads_tsan %s: %u threads x %u ops%s\n", argv[1], nthreads, nops,
	       failed || r ? ": FAILED" : "");
	return failed || r ? 1 : 0;
}
