/*
 * safety.c - issue 24's sweep: one way of reaching a file per mode.
 *   safety MODE FILE [ARG]
 * Run under the shim on an image and on its raw twin (t_safety_sweep.sh);
 * each mode does one thing to FILE the way a program outside the shim's
 * wrappers would (raw `syscall` instructions, libc's syscall(), mmap,
 * io_uring, POSIX AIO, dlsym of libc, an RTLD_DEEPBIND plugin, a dup2 race,
 * posix_spawn file actions, shm_open, stdio, hard links, directory walks,
 * SCM_RIGHTS, signal handlers, cancellation, _Fork/clone children, ENOSPC)
 * and prints what it observed: return values, bytes read (hex), sizes, and
 * at the end FILE's size and content hash as a fresh libc open sees it.
 * Nothing printed depends on the file's name, so the image's output and its
 * twin's can be compared byte for byte.
 * Modes: asm-OP (a raw instruction) and sys-OP (libc's syscall()), OP one
 * of write pwrite pwritev2 writev ftruncate fallocate copy_file_range
 * splice sendfile pread preadv fstat statx truncate dup3 mmap; mmap;
 * io_uring-write io_uring-read (liburing) io_uring-raw; aio_write aio_read
 * lio_listio; dlsym dlvsym deepbind; dup2-race; spawn-chdir_trunc
 * spawn-link_trunc spawn-static_dup2 spawn-noenv_dup2; execveat-static
 * fexecve-static; shm-trunc shm-read; stdio-dup2; link-truncate link-stat;
 * nftw ftw fts_read; recvmmsg; signal-pwrite; pthread_cancel; _Fork clone
 * clone-raw; enospc.  For the script: fill FILE (the known content), read0
 * (a spawned child: 16 bytes of stdin), fd-pwrite N, fd-pread N (an
 * inherited fd N).
 * Exit: 0 every call succeeded; 3 the call under test failed (its errno is
 * printed: a refusal); 1 the test's own setup failed.
 * Built dynamic (runs under the shim) and static (-DSAFETY_STATIC: no
 * dlopen modes; the shim cannot be in it, so every mode is raw).
 * The file offsets written (all distinct, so interleavings never matter):
 * fill 0..64K (0x11) and 512K..516K (0xab); see each mode for its own.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <liburing.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *F;	/* the file under test */
static char DIR_[4096]; /* its directory */
static char BASE[512];	/* its last component */
static char SELF[4096]; /* directory of this program (plugin, static twin) */

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			printf("setup failed at line %d: %s (%s)\n", __LINE__, #c,          \
			       strerrorname_np(errno) ? strerrorname_np(errno) : "?");       \
			fflush(stdout);                                                      \
			_exit(1);                                                            \
		}                                                                            \
	} while (0)

/* the call under test failed: print its errno (a refusal) and exit 3 */
static void refused(const char *what, int e)
{
	printf("%s failed: %s\n", what, strerrorname_np(e) ? strerrorname_np(e) : "?");
	fflush(stdout);
	_exit(3);
}

static void hex(const char *what, const void *b, size_t n)
{
	printf("%s:", what);
	for (size_t i = 0; i < n; i++)
		printf("%s%02x", i % 4 ? "" : " ", ((const unsigned char *)b)[i]);
	printf("\n");
}

static uint64_t hash_fd(int fd, off_t *len)
{
	static char b[1 << 16];
	uint64_t h = 1469598103934665603ULL;
	off_t off = 0;
	ssize_t n;
	while ((n = pread(fd, b, sizeof b, off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
		off += n;
	}
	*len = off;
	return n < 0 ? 0 : h;
}

/* FILE as a fresh libc open sees it now */
static void report(void)
{
	int fd = open(F, O_RDONLY);
	if (fd < 0) {
		printf("after: open failed: %s\n", strerrorname_np(errno));
		return;
	}
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	off_t len;
	uint64_t h = hash_fd(fd, &len);
	printf("after: size %lld, %lld bytes read, hash %016" PRIx64 "\n", (long long)st.st_size,
	       (long long)len, h);
	close(fd);
}

static char *pat(int c, size_t n)
{
	char *b = malloc(n);
	CHECK(b);
	memset(b, c, n);
	return b;
}

static int open_rw(void)
{
	int fd = open(F, O_RDWR);
	CHECK(fd >= 0);
	return fd;
}

/* a plain file (not an image name) with 4 KiB of 0x5a, for the copy modes */
static int src_file(void)
{
	int fd = open("safety-src.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, pat(0x5a, 4096), 4096) == 4096);
	CHECK(unlink("safety-src.bin") == 0);
	return fd;
}

/* ---- system calls: a raw `syscall` instruction, or libc's syscall() */

static long asm_sc(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	ret = x0;
#else
#error "raw system call instructions: x86_64 and aarch64 only"
#endif
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static int use_asm;
#define SC(n, a, b, c, d, e, f)                                                               \
	(use_asm ? asm_sc((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)) \
		 : syscall((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

/* OP for asm-OP and sys-OP */
static void sc_mode(const char *op)
{
	int fd = open_rw();
	long r = 0;
	char rb[16];
	struct iovec iov[2] = {{pat('V', 256), 256}, {pat('v', 256), 256}};
	if (!strcmp(op, "write")) { /* 512 'W' at the position: 0 */
		r = SC(SYS_write, fd, pat('W', 512), 512, 0, 0, 0);
	} else if (!strcmp(op, "pwrite")) { /* 512 'W' at 8 KiB */
		r = SC(SYS_pwrite64, fd, pat('W', 512), 512, 8192, 0, 0);
	} else if (!strcmp(op, "pwritev2")) { /* 256 'V' + 256 'v' at 12 KiB */
		r = SC(SYS_pwritev2, fd, iov, 2, 12288, 0, 0);
	} else if (!strcmp(op, "writev")) { /* the same at the position: 0 */
		r = SC(SYS_writev, fd, iov, 2, 0, 0, 0);
	} else if (!strcmp(op, "ftruncate")) { /* to 512 KiB (drops the 0xab block) */
		r = SC(SYS_ftruncate, fd, 512 * 1024, 0, 0, 0, 0);
	} else if (!strcmp(op, "fallocate")) { /* punch 16 KiB..48 KiB */
		r = SC(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16384, 32768,
		       0, 0);
	} else if (!strcmp(op, "copy_file_range")) { /* 4 KiB 0x5a at 16 KiB */
		int s = src_file();
		loff_t so = 0, o = 16384;
		r = SC(SYS_copy_file_range, s, &so, fd, &o, 4096, 0);
	} else if (!strcmp(op, "splice")) { /* 4 KiB 'S' from a pipe at 20 KiB */
		int p[2];
		CHECK(pipe(p) == 0);
		CHECK(write(p[1], pat('S', 4096), 4096) == 4096);
		loff_t o = 20480;
		r = SC(SYS_splice, p[0], NULL, fd, &o, 4096, 0);
	} else if (!strcmp(op, "sendfile")) { /* 4 KiB 0x5a at the position: 0 */
		int s = src_file();
		off_t so = 0;
		r = SC(SYS_sendfile, fd, s, &so, 4096, 0, 0);
	} else if (!strcmp(op, "pread")) { /* 16 bytes at 0 */
		r = SC(SYS_pread64, fd, rb, 16, 0, 0, 0);
		if (r == 16)
			hex("pread", rb, 16);
	} else if (!strcmp(op, "preadv")) {
		struct iovec v = {rb, 16};
		r = SC(SYS_preadv, fd, &v, 1, 0, 0, 0);
		if (r == 16)
			hex("preadv", rb, 16);
	} else if (!strcmp(op, "fstat")) {
		struct stat st;
		r = SC(SYS_fstat, fd, &st, 0, 0, 0, 0);
		if (r == 0)
			printf("fstat: size %lld\n", (long long)st.st_size);
	} else if (!strcmp(op, "statx")) {
		struct statx sx;
		r = SC(SYS_statx, AT_FDCWD, F, 0, STATX_SIZE, &sx, 0);
		if (r == 0)
			printf("statx: size %llu\n", (unsigned long long)sx.stx_size);
	} else if (!strcmp(op, "truncate")) { /* the path to 512 KiB */
		r = SC(SYS_truncate, F, 512 * 1024, 0, 0, 0, 0);
	} else if (!strcmp(op, "dup3")) { /* dup3 to fd 10, then libc's pwrite there: 512 'D' at 28 KiB */
		r = SC(SYS_dup3, fd, 10, 0, 0, 0, 0);
		if (r == 10)
			r = pwrite(10, pat('D', 512), 512, 28672);
	} else if (!strcmp(op, "mmap")) { /* MAP_SHARED, PROT_WRITE: read 16 bytes at 0, write 16 'M' there */
		long p = SC(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == -1)
			refused("mmap", errno);
		hex("mapped", (void *)p, 16);
		memset((void *)p, 'M', 16);
		CHECK(msync((void *)p, 4096, MS_SYNC) == 0);
		CHECK(munmap((void *)p, 4096) == 0);
	} else {
		printf("unknown system call mode %s\n", op);
		exit(1);
	}
	if (r < 0)
		refused(op, errno);
	printf("%s: %ld\n", op, r);
	CHECK(close(fd) == 0);
}

/* libc's mmap, MAP_SHARED and PROT_WRITE: as the system call modes' mmap */
static void mmap_mode(void)
{
	int fd = open_rw();
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		refused("mmap", errno);
	hex("mapped", p, 16);
	memset(p, 'M', 16);
	CHECK(msync(p, 4096, MS_SYNC) == 0);
	CHECK(munmap(p, 4096) == 0);
	printf("mmap: 0\n");
	CHECK(close(fd) == 0);
}

/* ---- io_uring */

/* liburing: one write SQE (4 KiB 'U' at 40 KiB) or one read (16 bytes at 0) */
static void uring_lib(int wr)
{
	struct io_uring ring;
	int fd = open_rw(), r = io_uring_queue_init(4, &ring, 0);
	if (r < 0)
		refused("io_uring_queue_init", -r);
	char rb[16];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	CHECK(sqe);
	if (wr)
		io_uring_prep_write(sqe, fd, pat('U', 4096), 4096, 40960);
	else
		io_uring_prep_read(sqe, fd, rb, 16, 0);
	CHECK(io_uring_submit(&ring) == 1);
	struct io_uring_cqe *cqe;
	CHECK(io_uring_wait_cqe(&ring, &cqe) == 0);
	r = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	if (r < 0)
		refused(wr ? "io_uring write" : "io_uring read", -r);
	printf("io_uring %s: %d\n", wr ? "write" : "read", r);
	if (!wr)
		hex("read", rb, 16);
	close(fd);
}

/* io_uring_setup and io_uring_enter as raw instructions; 4 KiB 'R' at 44 KiB */
static void uring_raw(void)
{
	int fd = open_rw();
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	long rfd = asm_sc(SYS_io_uring_setup, 4, (long)&p, 0, 0, 0, 0);
	if (rfd < 0)
		refused("io_uring_setup", errno);
	size_t sql = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cql = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sql, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, (int)rfd,
			IORING_OFF_SQ_RING);
	char *cq = mmap(0, cql, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, (int)rfd,
			IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, (int)rfd, IORING_OFF_SQES);
	CHECK(sq != MAP_FAILED && cq != MAP_FAILED && sqes != MAP_FAILED);
	unsigned tail = *(unsigned *)(sq + p.sq_off.tail), mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	struct io_uring_sqe *e = &sqes[tail & mask];
	memset(e, 0, sizeof *e);
	e->opcode = IORING_OP_WRITE;
	e->fd = fd;
	e->addr = (uintptr_t)pat('R', 4096);
	e->len = 4096;
	e->off = 45056;
	((unsigned *)(sq + p.sq_off.array))[tail & mask] = tail & mask;
	__atomic_store_n((unsigned *)(sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	long n = asm_sc(SYS_io_uring_enter, rfd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0);
	CHECK(n == 1);
	unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
	unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
	int res = ((struct io_uring_cqe *)(cq + p.cq_off.cqes))[head & cmask].res;
	if (res < 0)
		refused("io_uring write", -res);
	printf("raw io_uring write: %d\n", res);
	close(fd);
}

/* ---- POSIX AIO */

static void aio_mode(const char *m)
{
	int fd = open_rw();
	char rb[16];
	struct aiocb w, r, *l[2] = {&w, &r};
	memset(&w, 0, sizeof w);
	memset(&r, 0, sizeof r);
	w.aio_fildes = r.aio_fildes = fd;
	w.aio_buf = pat('A', 4096); /* at 32 KiB */
	w.aio_nbytes = 4096;
	w.aio_offset = 32768;
	w.aio_lio_opcode = LIO_WRITE;
	r.aio_buf = rb; /* 16 bytes at 0 */
	r.aio_nbytes = 16;
	r.aio_lio_opcode = LIO_READ;
	if (!strcmp(m, "lio_listio")) {
		if (lio_listio(LIO_WAIT, l, 2, NULL) != 0)
			refused("lio_listio", errno);
	} else {
		struct aiocb *a = !strcmp(m, "aio_write") ? &w : &r;
		if ((a == &w ? aio_write(a) : aio_read(a)) != 0)
			refused(m, errno);
		const struct aiocb *s[1] = {a};
		while (aio_error(a) == EINPROGRESS)
			CHECK(aio_suspend(s, 1, NULL) == 0 || errno == EINTR);
		l[0] = a;
		l[1] = NULL;
	}
	for (int k = 0; k < 2 && l[k]; k++) {
		int e = aio_error(l[k]);
		ssize_t n = aio_return(l[k]);
		if (e)
			refused(l[k] == &w ? "aio write" : "aio read", e);
		printf("aio %s: %zd\n", l[k] == &w ? "write" : "read", n);
		if (l[k] == &r)
			hex("read", rb, 16);
	}
	close(fd);
}

#ifndef SAFETY_STATIC
/* ---- lookups that skip the preload: 512 'D' at 36 KiB */
static void dl_mode(const char *m)
{
	typedef ssize_t (*pw_t)(int, const void *, size_t, off_t);
	pw_t f;
	if (!strcmp(m, "deepbind")) {
		char p[4200];
		snprintf(p, sizeof p, "%s/safety_plugin.so", SELF);
		void *h = dlopen(p, RTLD_NOW | RTLD_DEEPBIND);
		CHECK(h);
		f = (pw_t)(uintptr_t)dlsym(h, "plugin_pwrite");
	} else {
		void *h = dlopen("libc.so.6", RTLD_NOW);
		CHECK(h);
		f = (pw_t)(uintptr_t)(!strcmp(m, "dlsym") ? dlsym(h, "pwrite")
							  : dlvsym(h, "pwrite", "GLIBC_2.2.5"));
	}
	CHECK(f);
	int fd = open_rw();
	ssize_t r = f(fd, pat('D', 512), 512, 36864);
	if (r < 0)
		refused("pwrite", errno);
	printf("%s pwrite: %zd\n", m, r);
	close(fd);
}
#endif

/* ---- a dup2 race: thread A dup2s the image over fd 10 and back again
 * (RACE_ROUNDS times) while thread B pwrites fd 10 (512 'B' at 0, where a
 * raw write breaks the QCOW2 header) in a loop; the last dup2 leaves the
 * image there, and B writes at least once more after it. */
#define RACE_ROUNDS 4000
static atomic_int race_epoch, race_seen, race_stop;
static void *race_writer(void *a)
{
	(void)a;
	char *b = pat('B', 512);
	while (!atomic_load(&race_stop)) {
		int e = atomic_load(&race_epoch);
		pwrite(10, b, 512, 0); /* EBADF in the instant fd 10 is being replaced */
		atomic_store(&race_seen, e);
	}
	return NULL;
}
static void dup2_race(void)
{
	int img = open_rw();
	int other = open("safety-other.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(other >= 0 && unlink("safety-other.bin") == 0);
	CHECK(dup2(other, 10) == 10);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, race_writer, NULL) == 0);
	for (int k = 1; k <= RACE_ROUNDS; k++) {
		CHECK(dup2(k % 2 ? img : other, 10) == 10);
		atomic_store(&race_epoch, k);
		while (atomic_load(&race_seen) < k)
			sched_yield();
	}
	/* the last round left `other` there (RACE_ROUNDS is even): the image goes in last */
	CHECK(dup2(img, 10) == 10);
	atomic_store(&race_epoch, RACE_ROUNDS + 1);
	while (atomic_load(&race_seen) < RACE_ROUNDS + 1)
		sched_yield();
	atomic_store(&race_stop, 1);
	CHECK(pthread_join(t, NULL) == 0);
	printf("dup2 race: %d dup2s\n", RACE_ROUNDS + 1);
	close(10);
	close(img);
	close(other);
}

/* a fresh hard link B of A */
static int link_ok(const char *a, const char *b)
{
	unlink(b);
	return link(a, b) == 0;
}

/* ---- posix_spawn file actions */
extern char **environ;
static void spawn_mode(const char *m)
{
	posix_spawn_file_actions_t fa;
	CHECK(posix_spawn_file_actions_init(&fa) == 0);
	char prog[4200], link[4200];
	snprintf(prog, sizeof prog, "%s/%s", SELF, !strcmp(m, "static_dup2") ? "safety.static" : "safety");
	char *av[] = {prog, "read0", NULL}, *noenv[] = {NULL}, **env = environ;
	int fd = -1;
	link[0] = 0;
	if (!strcmp(m, "chdir_trunc")) { /* O_TRUNC of the bare name after addchdir_np, from elsewhere */
		CHECK(chdir(SELF) == 0);
		CHECK(posix_spawn_file_actions_addchdir_np(&fa, DIR_) == 0);
		CHECK(posix_spawn_file_actions_addopen(&fa, 0, BASE, O_RDWR | O_TRUNC, 0) == 0);
	} else if (!strcmp(m, "link_trunc")) { /* O_TRUNC of a hard link of an open image */
		fd = open_rw();
		snprintf(link, sizeof link, "%s/safety-link.img", DIR_);
		CHECK(link_ok(F, link));
		CHECK(posix_spawn_file_actions_addopen(&fa, 0, link, O_RDWR | O_TRUNC, 0) == 0);
	} else { /* an image fd as the child's stdin: a static child, or one without the shim */
		fd = open_rw();
		CHECK(posix_spawn_file_actions_adddup2(&fa, fd, 0) == 0);
		if (!strcmp(m, "noenv_dup2"))
			env = noenv;
	}
	fflush(stdout);
	pid_t pid;
	int e = posix_spawn(&pid, prog, &fa, NULL, av, env), st;
	if (link[0])
		unlink(link);
	if (e)
		refused("posix_spawn", e);
	CHECK(waitpid(pid, &st, 0) == pid);
	printf("child: %s %d\n", WIFEXITED(st) ? "exit" : "signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		refused("the child's read", EBADF);
	if (fd >= 0)
		close(fd);
}

/* ---- an image fd as fd 3 of a static program started by glibc's execveat
 * (its own system call) or by fexecve; the program reads 16 bytes at 0 */
static void exec_static(const char *m)
{
	int fd = open_rw();
	if (fd != 3) {
		CHECK(dup2(fd, 3) == 3);
		close(fd);
	}
	char prog[4200];
	snprintf(prog, sizeof prog, "%s/safety.static", SELF);
	char *av[] = {prog, "fd-pread", "3", NULL};
	fflush(stdout);
	if (!strcmp(m, "execveat")) {
		execveat(AT_FDCWD, prog, av, environ, 0);
	} else {
		int pfd = open(prog, O_RDONLY | O_CLOEXEC);
		CHECK(pfd >= 0);
		fexecve(pfd, av, environ);
	}
	refused(m, errno);
}

/* ---- shm_open of a FILE in /dev/shm: O_TRUNC, or a read of 16 bytes at 0 */
static void shm_mode(const char *m)
{
	CHECK(!strcmp(DIR_, "/dev/shm"));
	char name[600];
	snprintf(name, sizeof name, "/%s", BASE);
	int trunc = !strcmp(m, "trunc");
	int fd = shm_open(name, trunc ? O_RDWR | O_TRUNC : O_RDONLY, 0);
	if (fd < 0)
		refused("shm_open", errno);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	printf("shm_open: fstat size %lld\n", (long long)st.st_size);
	if (!trunc) {
		char rb[16];
		ssize_t n = pread(fd, rb, 16, 0);
		if (n < 0)
			refused("pread", errno);
		hex("read", rb, (size_t)n);
	}
	close(fd);
}

/* ---- stdio: a FILE on fd >= 3 whose fd becomes the image (dup2), then
 * fwrite + fflush: 600 'Z' at the image fd's position, 0 */
static void stdio_dup2(void)
{
	FILE *fp = fopen("safety-stdio.txt", "w");
	CHECK(fp && fileno(fp) >= 3 && unlink("safety-stdio.txt") == 0);
	int fd = open_rw();
	if (dup2(fd, fileno(fp)) != fileno(fp)) /* refusing is one answer */
		refused("dup2", errno);
	size_t n = fwrite(pat('Z', 600), 1, 600, fp);
	if (fflush(fp) != 0)
		refused("fflush", errno);
	printf("fwrite: %zu, fflush: 0\n", n);
	if (fclose(fp) != 0)
		refused("fclose", errno);
	close(fd);
}

/* ---- hard links of an open image: truncate() of the link, stat() of it */
static void link_mode(const char *m)
{
	int fd = open_rw();
	char link[4200];
	struct stat st;
	snprintf(link, sizeof link, "%s/safety-link.img", DIR_);
	CHECK(link_ok(F, link));
	if (!strcmp(m, "truncate")) { /* to 512 KiB */
		int r = truncate(link, 512 * 1024), e = errno;
		if (r != 0) {
			unlink(link);
			refused("truncate", e);
		}
		printf("truncate: 0\n");
	}
	int r = stat(link, &st), e = errno;
	unlink(link);
	if (r != 0)
		refused("stat", e);
	printf("stat of the link: size %lld\n", (long long)st.st_size);
	close(fd);
}

/* ---- directory walks: the size reported for FILE */
static int walk_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag;
	if (!strcmp(p + f->base, BASE))
		printf("nftw: size %lld\n", (long long)st->st_size);
	return 0;
}
static int ftw_cb(const char *p, const struct stat *st, int flag)
{
	(void)flag;
	const char *s = strrchr(p, '/');
	if (!strcmp(s ? s + 1 : p, BASE))
		printf("ftw: size %lld\n", (long long)st->st_size);
	return 0;
}
static void walk_mode(const char *m)
{
	if (!strcmp(m, "nftw")) {
		CHECK(nftw(DIR_, walk_cb, 8, FTW_PHYS) == 0);
	} else if (!strcmp(m, "ftw")) {
		CHECK(ftw(DIR_, ftw_cb, 8) == 0);
	} else {
		char *roots[] = {DIR_, NULL};
		FTS *t = fts_open(roots, FTS_PHYSICAL, NULL);
		CHECK(t);
		FTSENT *e;
		while ((e = fts_read(t)))
			if (e->fts_info == FTS_F && !strcmp(e->fts_name, BASE))
				printf("fts_read: size %lld\n", (long long)e->fts_statp->st_size);
		fts_close(t);
	}
}

/* ---- an image fd received with recvmmsg (SCM_RIGHTS), the sender's copy
 * closed first: fstat, 16 bytes at 0, then 512 'M' at 52 KiB through it */
static void recvmmsg_mode(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	int fd = open_rw();
	char c = 'x', cb[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&c, 1};
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	memset(cb, 0, sizeof cb);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb;
	mh.msg_controllen = sizeof cb;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	CHECK(sendmsg(sv[0], &mh, 0) == 1);
	close(fd);
	struct mmsghdr mm;
	memset(&mm, 0, sizeof mm);
	memset(cb, 0, sizeof cb);
	mm.msg_hdr.msg_iov = &iov;
	mm.msg_hdr.msg_iovlen = 1;
	mm.msg_hdr.msg_control = cb;
	mm.msg_hdr.msg_controllen = sizeof cb;
	CHECK(recvmmsg(sv[1], &mm, 1, 0, NULL) == 1);
	cm = CMSG_FIRSTHDR(&mm.msg_hdr);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS);
	int got;
	memcpy(&got, CMSG_DATA(cm), sizeof got);
	struct stat st;
	CHECK(fstat(got, &st) == 0);
	printf("received fd: fstat size %lld\n", (long long)st.st_size);
	char rb[16];
	ssize_t n = pread(got, rb, 16, 0);
	if (n < 0)
		refused("pread", errno);
	hex("read", rb, (size_t)n);
	n = pwrite(got, pat('M', 512), 512, 53248);
	if (n < 0)
		refused("pwrite", errno);
	printf("pwrite: %zd\n", n);
	close(got);
}

/* ---- a signal handler that pwrites (512 'H' at 60 KiB) while the main
 * thread pwrites (4 KiB 'm' at 56 KiB) in a loop; a second thread sends 50
 * signals, each after the handler ran for the one before */
static int sig_fd;
static char *sig_buf;
static atomic_int sig_handled, sig_done;
static atomic_long sig_writes;
static void on_usr1(int s)
{
	(void)s;
	int e = errno;
	if (pwrite(sig_fd, sig_buf, 512, 61440) != 512)
		atomic_store(&sig_handled, -1000);
	atomic_fetch_add(&sig_handled, 1);
	errno = e;
}
static void *sig_sender(void *a)
{
	pthread_t main_t = *(pthread_t *)a;
	for (int k = 0; k < 50; k++) {
		long w = atomic_load(&sig_writes);
		while (atomic_load(&sig_writes) < w + 2) /* the main thread is inside its loop */
			sched_yield();
		pthread_kill(main_t, SIGUSR1);
		while (atomic_load(&sig_handled) == k)
			sched_yield();
		if (atomic_load(&sig_handled) < 0)
			break;
	}
	atomic_store(&sig_done, 1);
	return NULL;
}
static void signal_mode(void)
{
	sig_fd = open_rw();
	sig_buf = pat('H', 512);
	char *b = pat('m', 4096);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	pthread_t self = pthread_self(), t;
	CHECK(pthread_create(&t, NULL, sig_sender, &self) == 0);
	while (!atomic_load(&sig_done)) {
		if (pwrite(sig_fd, b, 4096, 57344) != 4096)
			refused("pwrite", errno);
		atomic_fetch_add(&sig_writes, 1);
	}
	CHECK(pthread_join(t, NULL) == 0);
	if (atomic_load(&sig_handled) < 0)
		refused("pwrite in the handler", EIO);
	printf("signals handled: %d\n", atomic_load(&sig_handled));
	close(sig_fd);
}

/* ---- pthread_cancel of a thread pwriting (4 KiB 'T' over 64..80 KiB) in
 * a loop, after its 100th write; then 512 'E' at 80 KiB from the main thread */
static atomic_long cancel_writes;
static int cancel_fd;
static void *cancel_writer(void *a)
{
	char *b = a;
	for (long i = 0;; i++) {
		pwrite(cancel_fd, b, 4096, 65536 + (i % 4) * 4096);
		atomic_fetch_add(&cancel_writes, 1);
	}
	return NULL;
}
static void cancel_mode(void)
{
	cancel_fd = open_rw();
	pthread_t t;
	CHECK(pthread_create(&t, NULL, cancel_writer, pat('T', 4096)) == 0);
	while (atomic_load(&cancel_writes) < 100)
		sched_yield();
	CHECK(pthread_cancel(t) == 0);
	void *res;
	CHECK(pthread_join(t, &res) == 0 && res == PTHREAD_CANCELED);
	ssize_t n = pwrite(cancel_fd, pat('E', 512), 512, 81920);
	if (n < 0)
		refused("pwrite after the cancel", errno);
	printf("cancelled; pwrite after: %zd\n", n);
	CHECK(close(cancel_fd) == 0);
}

/* ---- children without atfork handlers: the parent writes 4 KiB 'P' at
 * 192 KiB, the child 4 KiB 'C' at 256 KiB and exits normally, then the
 * parent 4 KiB 'Q' at 320 KiB (fresh clusters each, in 64 KiB clusters) */
static int child_fd;
static int child_body(void *a)
{
	(void)a;
	ssize_t n = pwrite(child_fd, pat('C', 4096), 4096, 262144);
	exit(n == 4096 ? 0 : 3);
}
static void child_mode(const char *m)
{
	child_fd = open_rw();
	ssize_t n = pwrite(child_fd, pat('P', 4096), 4096, 196608);
	CHECK(n == 4096);
	fflush(stdout);
	pid_t pid;
	if (!strcmp(m, "_Fork")) {
		pid = _Fork();
		if (pid == 0)
			child_body(NULL);
	} else if (!strcmp(m, "clone")) { /* glibc's clone(), no CLONE_VM */
		size_t sz = 1 << 20;
		char *stk = malloc(sz);
		CHECK(stk);
		pid = clone(child_body, stk + sz, SIGCHLD, NULL);
	} else { /* a raw clone instruction: a fork glibc never hears of */
		pid = (pid_t)asm_sc(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
		if (pid == 0)
			child_body(NULL);
	}
	CHECK(pid > 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	printf("child: %s %d\n", WIFEXITED(st) ? "exit" : "signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	n = pwrite(child_fd, pat('Q', 4096), 4096, 327680);
	if (n < 0)
		refused("pwrite after the child", errno);
	printf("pwrite after: %zd\n", n);
	CHECK(close(child_fd) == 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		refused("the child's pwrite", EIO);
}

/* ---- ENOSPC: 1 MiB writes (16 clusters each) from 0 on until the file
 * system is full, then every byte a write reported read back, and a normal
 * exit (multi-cluster writes are the ones that leaked clusters) */
#define ENOSPC_CHUNK (1 << 20)
static char enospc_byte(off_t o)
{
	return (char)(o / 4096 * 7 + 1);
}
static void enospc_mode(void)
{
	int fd = open_rw();
	char *b = malloc(ENOSPC_CHUNK), *r = malloc(ENOSPC_CHUNK);
	CHECK(b && r);
	off_t done = 0;
	int e = 0;
	while (done < (off_t)64 << 20) {
		for (int i = 0; i < ENOSPC_CHUNK; i++)
			b[i] = enospc_byte(done + i);
		ssize_t n = pwrite(fd, b, ENOSPC_CHUNK, done);
		if (n < 0) {
			e = errno;
			break;
		}
		done += n; /* a short write: the next one fails */
	}
	printf("stopped by: %s\n", e ? strerrorname_np(e) : "nothing");
	long bad = 0;
	for (off_t o = 0; o < done; o += ENOSPC_CHUNK) {
		size_t want = done - o < ENOSPC_CHUNK ? (size_t)(done - o) : ENOSPC_CHUNK;
		CHECK(pread(fd, r, want, o) == (ssize_t)want);
		for (size_t i = 0; i < want; i++)
			bad += r[i] != enospc_byte(o + (off_t)i);
	}
	printf("bytes written and read back: %s\n", bad ? "DIFFERENT" : "all equal");
	int c = close(fd);
	printf("close: %s\n", c ? strerrorname_np(errno) : "0");
}

/* ---- helpers for the script */

/* known content: 64 KiB 0x11 at 0, 4 KiB 0xab at 512 KiB */
static void fill(void)
{
	int fd = open_rw();
	CHECK(pwrite(fd, pat(0x11, 65536), 65536, 0) == 65536);
	CHECK(pwrite(fd, pat(0xab, 4096), 4096, 524288) == 4096);
	CHECK(close(fd) == 0);
}

/* read0: 16 bytes from stdin (a spawned child's view of an inherited fd) */
static void read0(void)
{
	char rb[16];
	ssize_t n = read(0, rb, 16);
	if (n < 0)
		refused("read", errno);
	hex("child read", rb, (size_t)n);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
	usage:
		fprintf(stderr, "usage: safety MODE FILE | read0 | fd-pwrite N | fd-pread N\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *m = argv[1];
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(sl > 0);
	self[sl] = 0;
	snprintf(SELF, sizeof SELF, "%s", dirname(self));
	if (!strcmp(m, "read0")) {
		read0();
		return 0;
	}
	if (argc < 3)
		goto usage;
	if (!strncmp(m, "fd-", 3)) { /* an inherited fd: 512 'I' at 8 KiB, or 16 bytes at 0 */
		int fd = atoi(argv[2]);
		char rb[16];
		ssize_t n = !strcmp(m, "fd-pwrite") ? pwrite(fd, pat('I', 512), 512, 8192)
						    : pread(fd, rb, 16, 0);
		if (n < 0)
			refused(m + 3, errno);
		if (!strcmp(m, "fd-pread"))
			hex("read", rb, (size_t)n);
		else
			printf("pwrite: %zd\n", n);
		return 0;
	}
	F = argv[2];
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", F);
	snprintf(DIR_, sizeof DIR_, "%s", dirname(tmp));
	snprintf(tmp, sizeof tmp, "%s", F);
	snprintf(BASE, sizeof BASE, "%s", basename(tmp));
	if (!strcmp(m, "fill")) {
		fill();
		return 0;
	}
	if (!strncmp(m, "asm-", 4) || !strncmp(m, "sys-", 4)) {
		use_asm = m[0] == 'a';
		sc_mode(m + 4);
	} else if (!strcmp(m, "mmap")) {
		mmap_mode();
	} else if (!strcmp(m, "io_uring-write") || !strcmp(m, "io_uring-read")) {
		uring_lib(m[9] == 'w');
	} else if (!strcmp(m, "io_uring-raw")) {
		uring_raw();
	} else if (!strcmp(m, "aio_write") || !strcmp(m, "aio_read") || !strcmp(m, "lio_listio")) {
		aio_mode(m);
#ifndef SAFETY_STATIC
	} else if (!strcmp(m, "dlsym") || !strcmp(m, "dlvsym") || !strcmp(m, "deepbind")) {
		dl_mode(m);
#endif
	} else if (!strcmp(m, "dup2-race")) {
		dup2_race();
	} else if (!strncmp(m, "spawn-", 6)) {
		spawn_mode(m + 6);
	} else if (!strcmp(m, "execveat-static") || !strcmp(m, "fexecve-static")) {
		exec_static(m[0] == 'e' ? "execveat" : "fexecve");
	} else if (!strncmp(m, "shm-", 4)) {
		shm_mode(m + 4);
	} else if (!strcmp(m, "stdio-dup2")) {
		stdio_dup2();
	} else if (!strcmp(m, "link-truncate") || !strcmp(m, "link-stat")) {
		link_mode(m + 5);
	} else if (!strcmp(m, "nftw") || !strcmp(m, "ftw") || !strcmp(m, "fts_read")) {
		walk_mode(m);
	} else if (!strcmp(m, "recvmmsg")) {
		recvmmsg_mode();
	} else if (!strcmp(m, "signal-pwrite")) {
		signal_mode();
	} else if (!strcmp(m, "pthread_cancel")) {
		cancel_mode();
	} else if (!strcmp(m, "_Fork") || !strcmp(m, "clone") || !strcmp(m, "clone-raw")) {
		child_mode(m);
	} else if (!strcmp(m, "enospc")) {
		enospc_mode();
		return 0;
	} else {
		printf("unknown mode %s\n", m);
		return 1;
	}
	report();
	return 0;
}
