/* benchio - small, deterministic I/O drivers for tests/bench/run.sh.
 *
 *   benchio randread  FILE OPS [SEED] [SIZE]   4 KiB preads at random aligned offsets
 *   benchio randwrite FILE OPS [SEED] [SIZE]   4 KiB pwrites (non-zero data), no fsync
 *   benchio randwritesync FILE OPS [SEED] [SIZE]  the same, then one fsync (timed): both
 *                                              sides end with the data durable
 *   benchio smallread FILE OPS                 OPS preads of 16 bytes, non-image file
 *   benchio opens     FILE OPS                 OPS times: open read-only, one 512 B pread
 *                                              at 0, close (the cost of an image open)
 *   benchio cpu       CMD [ARG...]             run CMD, print "wall=S cpu=S" (cpu: user +
 *                                              system time of CMD and all its children)
 *   benchio spawns    N LIB PROG [ARG...]      vfork+exec PROG 2N times, alternately without
 *                                              and with LD_PRELOAD=LIB (and the announcement
 *                                              a parent under the shim would give it:
 *                                              QCOWSHIM_FDS=P<pid>:); prints the median wall
 *                                              and mean CPU per run of each side and the
 *                                              extra per process (the cost of one process)
 *   benchio fill      FILE SIZE [SEED]         write SIZE bytes of pseudo-random data
 *                                              (never a zero 4 KiB block), 1 MiB writes
 *   benchio fillc     FILE SIZE [SEED]         the same, but compressible: each 512 B
 *                                              sector repeats its first 128 B, so even
 *                                              a 512 B cluster compresses
 *
 * Plain libc calls only (open/fstat/pread/pwrite/close), so the same binary runs on a
 * raw file and, with libqcowshim.so preloaded, on a *.qcow2 image.  SIZE defaults to
 * the file size from fstat (the virtual size under the shim).  The offsets depend only
 * on SEED and SIZE (xorshift64*), so raw and image runs do identical work.
 * Prints one line: "ops=N secs=S iops=I" (the timed loop only, CLOCK_MONOTONIC;
 * for randwrite the timed part includes close).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BS 4096

static uint64_t rng;
static uint64_t next(void)
{
	rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "benchio: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);
	switch (*end) {
	case 'P': case 'p': v <<= 10; /* fall through */
	case 'T': case 't': v <<= 10; /* fall through */
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; break;
	default: break;
	}
	return v;
}

static void fill_block(unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = next() | 1; /* never an all-zero word */
		memcpy(b + i, &v, 8);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* spawns: the per-process cost of a preloaded library, pairwise at the finest grain
 * (the order raw, lib, lib, raw, raw, lib... cancels drift in the machine's load). */
static int spawns(int n, const char *lib, char **prog)
{
	extern char **environ;
	char pre[4096];
	size_t ne = 0;
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
	while (environ[ne])
		ne++;
	char **env = calloc(ne + 3, sizeof *env);
	double *w[2] = {calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double))};
	double cpu[2] = {0, 0};
	if (n < 1 || !env || !w[0] || !w[1])
		return 2;
	memcpy(env, environ, ne * sizeof *env);
	env[ne] = pre;
	char ann[64]; /* as from a parent under the shim: "no image fds" (P: valid in our child) */
	snprintf(ann, sizeof ann, "QCOWSHIM_FDS=P%d:", (int)getpid());
	env[ne + 1] = ann;
	for (int i = 0; i < 2 * n; i++) {
		int side = (i + i / 2) % 2, st;
		struct rusage ru;
		/* chosen before vfork: the child shares our stack, and a selection it
		 * computed could land in one of our variables */
		char **const e = side ? env : environ;
		double t0 = now();
		pid_t p = vfork();
		if (p == 0) { /* nothing but the exec in a vfork child */
			execve(prog[0], prog, e);
			_exit(127);
		}
		if (p < 0 || wait4(p, &st, 0, &ru) != p || !WIFEXITED(st) || WEXITSTATUS(st) == 127)
			die("spawn", prog[0]);
		w[side][i / 2] = now() - t0;
		cpu[side] += ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
			     ru.ru_stime.tv_usec / 1e6;
	}
	qsort(w[0], (size_t)n, sizeof(double), cmp_double);
	qsort(w[1], (size_t)n, sizeof(double), cmp_double);
	printf("raw_us=%.1f lib_us=%.1f extra_us=%.1f raw_cpu_us=%.1f lib_cpu_us=%.1f extra_cpu_us=%.1f\n",
	       w[0][n / 2] * 1e6, w[1][n / 2] * 1e6, (w[1][n / 2] - w[0][n / 2]) * 1e6, cpu[0] * 1e6 / n,
	       cpu[1] * 1e6 / n, (cpu[1] - cpu[0]) * 1e6 / n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "spawns"))
		return spawns(atoi(argv[2]), argv[3], argv + 4);
	if (argc >= 3 && !strcmp(argv[1], "cpu")) {
		double t0 = now();
		pid_t pid = fork();
		if (pid < 0) die("fork", argv[2]);
		if (pid == 0) {
			execvp(argv[2], argv + 2);
			_exit(127);
		}
		int st;
		struct rusage ru;
		if (wait4(pid, &st, 0, &ru) != pid) die("wait4", argv[2]);
		double t1 = now();
		double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
			     ru.ru_stime.tv_usec / 1e6;
		printf("wall=%.6f cpu=%.6f\n", t1 - t0, cpu);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: benchio randread|randwrite|randwritesync|smallread|opens|fill|fillc FILE N | cpu CMD... | spawns N LIB PROG... [SEED] [SIZE]\n");
		return 2;
	}
	const char *mode = argv[1], *path = argv[2];
	uint64_t n = parse_size(argv[3]);
	rng = argc > 4 ? strtoull(argv[4], NULL, 0) : 42;
	if (!rng) rng = 42;
	static unsigned char buf[1 << 20] __attribute__((aligned(4096)));
	double t0, t1;

	if (!strcmp(mode, "fill") || !strcmp(mode, "fillc")) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) die("open", path);
		fill_block(buf, sizeof buf);
		if (mode[4] == 'c')
			for (size_t b = 0; b < sizeof buf; b += 512)
				for (size_t k = 128; k < 512; k += 128)
					memcpy(buf + b + k, buf + b, 128);
		t0 = now();
		for (uint64_t off = 0; off < n; off += sizeof buf) {
			size_t len = n - off < sizeof buf ? n - off : sizeof buf;
			memcpy(buf, &off, sizeof off); /* every block distinct */
			buf[8] ^= (unsigned char)next();
			if (pwrite(fd, buf, len, off) != (ssize_t)len) die("pwrite", path);
		}
		if (close(fd)) die("close", path);
		t1 = now();
		printf("ops=%" PRIu64 " secs=%.6f iops=%.0f\n", n >> 20, t1 - t0, (n >> 20) / (t1 - t0));
		return 0;
	}

	if (!strcmp(mode, "opens")) {
		t0 = now();
		for (uint64_t i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY);
			if (fd < 0) die("open", path);
			if (pread(fd, buf, 512, 0) < 0) die("pread", path);
			if (close(fd)) die("close", path);
		}
		t1 = now();
		printf("ops=%" PRIu64 " secs=%.6f iops=%.0f us_per_op=%.2f\n", n, t1 - t0, n / (t1 - t0),
		       (t1 - t0) * 1e6 / n);
		return 0;
	}

	int sync = !strcmp(mode, "randwritesync");
	int wr = sync || !strcmp(mode, "randwrite");
	int fd = open(path, wr ? O_RDWR : O_RDONLY);
	if (fd < 0) die("open", path);
	struct stat st;
	if (fstat(fd, &st)) die("fstat", path);
	uint64_t size = argc > 5 ? parse_size(argv[5]) : (uint64_t)st.st_size;

	if (!strcmp(mode, "smallread")) {
		uint64_t span = size < BS ? 16 : size - 16;
		t0 = now();
		for (uint64_t i = 0; i < n; i++)
			if (pread(fd, buf, 16, (i * 4099) % span) < 0) die("pread", path);
		t1 = now();
	} else if (!strcmp(mode, "randread") || wr) {
		uint64_t blocks = size / BS;
		if (!blocks) { fprintf(stderr, "benchio: %s: size < 4 KiB\n", path); return 1; }
		if (wr) fill_block(buf, BS);
		t0 = now();
		for (uint64_t i = 0; i < n; i++) {
			uint64_t off = (next() % blocks) * BS;
			ssize_t r;
			if (wr) {
				memcpy(buf, &i, sizeof i);
				r = pwrite(fd, buf, BS, off);
			} else {
				r = pread(fd, buf, BS, off);
			}
			if (r != BS) { if (r >= 0) errno = EIO; die(wr ? "pwrite" : "pread", path); }
		}
		if (sync && fsync(fd)) die("fsync", path);
		/* close is timed for writes: deferred metadata write-back belongs to the run */
		if (wr && close(fd)) die("close", path);
		if (wr) fd = -1;
		t1 = now();
	} else {
		fprintf(stderr, "benchio: unknown mode %s\n", mode);
		return 2;
	}
	if (fd >= 0 && close(fd)) die("close", path);
	printf("ops=%" PRIu64 " secs=%.6f iops=%.0f\n", n, t1 - t0, n / (t1 - t0));
	return 0;
}
