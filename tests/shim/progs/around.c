/*
 * around.c - raw syscall() numbers the shim routes to its wrappers
 * (shim/wrap_sys.c), each on the disk named by argv[1]: a QCOW2 image
 * under the shim (QCS_IMAGE=1) or its raw twin without it.  t_shim_around.sh
 * compares the two outputs line for line and the two disks afterwards.
 * Lines that cannot be the same (mmap of an image is refused) print the
 * same neutral text after an image-only check.  Exit 0 = ran to the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/stat.h>
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

static int img;
#define CHECK(c)                                                                       \
	do {                                                                           \
		if (!(c)) {                                                            \
			printf("CHECK FAILED line %d: %s (errno %d)\n", __LINE__, #c, errno); \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

static uint64_t h64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	const char *p = argv[1];
	img = getenv("QCS_IMAGE") != NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = open(p, O_RDWR);
	CHECK(fd >= 0);
	static char a[65536], b[65536];
	struct iovec v[2] = {{a, 4096}, {b, 8192}};
	long r;

	/* reads: first bytes are the flat disk's, never the QCOW2 magic */
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	r = syscall(SYS_readv, fd, v, 2);
	printf("readv %ld: %016" PRIx64 " %016" PRIx64 " first %02x\n", r, h64(a, 4096), h64(b, 8192), (unsigned char)a[0]);
	printf("position %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	r = syscall(SYS_preadv, fd, v, 2, 1048576 - 4096, 0);
	printf("preadv %ld: %016" PRIx64 " %016" PRIx64 "\n", r, h64(a, 4096), h64(b, 8192));
	r = syscall(SYS_preadv2, fd, v, 1, 4190208, 0, 0);
	printf("preadv2 %ld: %016" PRIx64 "\n", r, h64(a, 4096));
	/* writes */
	memset(a, 0x4d, sizeof a);
	memset(b, 0x4e, sizeof b);
	CHECK(lseek(fd, 3 * 1048576, SEEK_SET) >= 0);
	printf("writev %ld\n", syscall(SYS_writev, fd, v, 2));
	printf("pwritev %ld\n", syscall(SYS_pwritev, fd, v, 2, 2097152 + 512, 0));
	printf("pwritev2 %ld\n", syscall(SYS_pwritev2, fd, v, 1, 100, 0, 0));
	/* descriptors */
	int d1 = (int)syscall(SYS_dup, fd);
	CHECK(d1 >= 0);
	CHECK(syscall(SYS_dup2, fd, 40) == 40 && syscall(SYS_dup3, fd, 41, O_CLOEXEC) == 41);
	CHECK(pread(d1, a, 4096, 3 * 1048576) == 4096 && pread(40, b, 4096, 2097152 + 512) == 4096);
	printf("dups read %016" PRIx64 " %016" PRIx64 "; fd 41 cloexec %d\n", h64(a, 4096), h64(b, 4096),
	       (int)syscall(SYS_fcntl, 41, F_GETFD, 0) & FD_CLOEXEC);
	printf("fcntl F_GETFL access %ld\n", syscall(SYS_fcntl, fd, F_GETFL, 0) & O_ACCMODE);
	close(d1);
	close(40);
	close(41);
	/* sizes */
	struct stat st;
	struct statx sx;
	CHECK(syscall(SYS_stat, p, &st) == 0);
	printf("stat size %lld\n", (long long)st.st_size);
	CHECK(syscall(SYS_lstat, p, &st) == 0);
	printf("lstat size %lld\n", (long long)st.st_size);
	CHECK(syscall(SYS_newfstatat, AT_FDCWD, p, &st, 0) == 0);
	printf("newfstatat size %lld\n", (long long)st.st_size);
	CHECK(syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH) == 0);
	printf("newfstatat(fd) size %lld\n", (long long)st.st_size);
	CHECK(syscall(SYS_statx, AT_FDCWD, p, 0, STATX_SIZE, &sx) == 0);
	printf("statx size %llu\n", (unsigned long long)sx.stx_size);
	/* the kernel's own readers: mmap refused on an image, splice served */
	void *m = (void *)syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (img)
		CHECK(m == MAP_FAILED && errno == ENODEV);
	else
		CHECK(m != MAP_FAILED && munmap(m, 4096) == 0);
	printf("mmap checked\n");
	int pp[2];
	CHECK(pipe(pp) == 0);
	loff_t off = 1048576;
	r = syscall(SYS_splice, fd, &off, pp[1], NULL, 4096, 0);
	CHECK(r == 4096 && read(pp[0], a, 4096) == 4096);
	printf("splice %ld: %016" PRIx64 " offset now %lld\n", r, h64(a, 4096), (long long)off);
	close(pp[0]);
	close(pp[1]);
	printf("fadvise64 %ld readahead %ld sync_file_range %ld\n",
	       syscall(SYS_fadvise64, fd, 0, 65536, POSIX_FADV_WILLNEED), syscall(SYS_readahead, fd, 0, 65536),
	       syscall(SYS_sync_file_range, fd, 0, 0, 0));
	/* paths */
	printf("access %ld faccessat %ld faccessat2 %ld\n", syscall(SYS_access, p, R_OK | W_OK),
	       syscall(SYS_faccessat, AT_FDCWD, p, R_OK), syscall(SYS_faccessat2, AT_FDCWD, p, R_OK, AT_EACCESS));
	errno = 0;
	r = syscall(SYS_getxattr, p, "user.qcowshim.none", a, 16);
	printf("getxattr %ld errno %d\n", r, r < 0 ? errno : 0);
	/* truncate grows the disk by 1 MiB (whole sectors, as QCOW2 has them) */
	printf("truncate %ld\n", syscall(SYS_truncate, p, 5 * 1048576));
	CHECK(fstat(fd, &st) == 0);
	printf("size after truncate %lld\n", (long long)st.st_size);
	/* recvmmsg: an fd of the disk passed over a socket */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	char c = 'x';
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u, u2;
	memset(&u, 0, sizeof u);
	struct iovec iv = {&c, 1};
	struct msghdr mh = {.msg_iov = &iv, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
	struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof fd);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(sendmsg(sv[1], &mh, 0) == 1 ? 0 : 1);
	int s;
	CHECK(waitpid(pid, &s, 0) == pid && WEXITSTATUS(s) == 0);
	struct iovec iv2 = {&c, 1};
	struct mmsghdr mm = {.msg_hdr = {.msg_iov = &iv2, .msg_iovlen = 1, .msg_control = u2.b, .msg_controllen = sizeof u2.b}};
	CHECK(syscall(SYS_recvmmsg, sv[0], &mm, 1, 0, NULL) == 1);
	int rfd;
	memcpy(&rfd, CMSG_DATA(CMSG_FIRSTHDR(&mm.msg_hdr)), sizeof rfd);
	CHECK(fstat(rfd, &st) == 0 && pread(rfd, a, 4096, 1048576) == 4096);
	printf("recvmmsg fd: size %lld, 4k at 1M %016" PRIx64 "\n", (long long)st.st_size, h64(a, 4096));
	close(rfd);
	close(sv[0]);
	close(sv[1]);
	CHECK(close(fd) == 0);
	printf("done\n");
	return 0;
}
