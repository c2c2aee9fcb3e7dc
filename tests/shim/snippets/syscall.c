/* syscall: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); char b[8];
	say("sys pread %ld", syscall(SYS_pread64, fd, b, 8, 1048576 - 4)); say("%016" PRIx64, h64(b, 8));
	say("sys pwrite %ld", syscall(SYS_pwrite64, fd, "sys", 3, 9000)); say("sys lseek %ld", syscall(SYS_lseek, fd, 0, SEEK_END));
	struct stat st; long fr = syscall(SYS_fstat, fd, &st); say("sys fstat %ld size %lld", fr, (long long)st.st_size);
	errno = 0; long r = syscall(SYS_io_uring_setup, 4, calloc(1, 120)); EXPECT(r < 0 && errno == ENOSYS); if (r >= 0) close((int)r);
	unsigned long ctx = 0; errno = 0; r = syscall(SYS_io_setup, 1, &ctx); EXPECT(r < 0 && errno == ENOSYS); if (r == 0) syscall(SYS_io_destroy, ctx);
	say("getpid ok %d", syscall(SYS_getpid) == getpid()); close(fd);
	int o2 = (int)syscall(SYS_openat, AT_FDCWD, P, O_RDONLY, 0); CHECK(o2 >= 0); CHECK(pread(o2, b, 8, 1048576 - 4) == 8);
	say("sys openat %016" PRIx64, h64(b, 8)); struct stat s2; CHECK(fstat(o2, &s2) == 0); say("size %lld", (long long)s2.st_size); close(o2);
}
