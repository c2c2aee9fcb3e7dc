/*
 * fdio.c DISK - descriptor I/O from a musl-linked program: open, fstat,
 * stat, pread/pwrite, read/write with lseek, readv/writev, dup/dup2 (shared
 * position), fork (a child's write seen by the parent), ftruncate (grow and
 * shrink), fsync/fdatasync, fcntl, close; then the whole flat disk read back.
 */
#include "common.h"

static unsigned char buf[1 << 17];

static void positions(int fd)
{
	CHECK(lseek(fd, 512, SEEK_SET) == 512);
	say("read %zd", read(fd, buf, 1024));
	say("h %016" PRIx64 " cur %lld", h64(buf, 1024), (long long)lseek(fd, 0, SEEK_CUR));
	say("end %lld", (long long)lseek(fd, 0, SEEK_END));
	say("pread %zd", pread(fd, buf, 65536, (1 << 20) - 4096));
	say("h %016" PRIx64, h64(buf, 65536));
	say("past end %zd", pread(fd, buf, 10, 5000000));
	errno = 0;
	ssize_t r = pread(fd, buf, 10, -1);
	say("negative %zd errno %d", r, errno);
}

static void writes(int fd)
{
	fill(buf, 3000, 1);
	CHECK(lseek(fd, (2 << 20) + 100, SEEK_SET) > 0);
	say("write %zd cur %lld", write(fd, buf, 3000), (long long)lseek(fd, 0, SEEK_CUR));
	fill(buf, 5000, 2);
	say("pwrite %zd", pwrite(fd, buf, 5000, (3 << 20) - 17));
	fill(buf, 8192, 3);
	struct iovec v[2] = {{buf, 100}, {buf + 100, 8000}};
	CHECK(lseek(fd, (5 << 19) + 1, SEEK_SET) > 0);
	say("writev %zd", writev(fd, v, 2));
	CHECK(lseek(fd, (5 << 19) + 1, SEEK_SET) > 0);
	memset(buf, 0, 8100);
	say("readv %zd h %016" PRIx64, readv(fd, v, 2), h64(buf, 8100));
}

static void descriptors(int fd)
{
	int d = dup(fd);
	CHECK(d >= 0);
	CHECK(lseek(d, 777, SEEK_SET) == 777);
	say("dup shares position %lld", (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(dup2(fd, 50) == 50);
	say("dup2 read %zd h %016" PRIx64, read(50, buf, 100), h64(buf, 100));
	CHECK(close(50) == 0 && close(d) == 0);
	say("accmode %d", fcntl(fd, F_GETFL) & O_ACCMODE);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fill(buf, 4096, 4);
		_exit(pwrite(fd, buf, 4096, (3 << 19) + 5) == 4096 ? 0 : 1);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	say("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	say("parent sees %zd h %016" PRIx64, pread(fd, buf, 4096, (3 << 19) + 5), h64(buf, 4096));
}

static void sizes(int fd, const char *path)
{
	struct stat st;
	CHECK(ftruncate(fd, 6 << 20) == 0);
	CHECK(fstat(fd, &st) == 0);
	say("grown %lld", (long long)st.st_size);
	fill(buf, 10, 5);
	say("tail pwrite %zd", pwrite(fd, buf, 10, (6 << 20) - 10));
	CHECK(ftruncate(fd, 5 << 20) == 0);
	CHECK(stat(path, &st) == 0);
	say("shrunk (stat) %lld", (long long)st.st_size);
	say("fsync %d fdatasync %d", fsync(fd), fdatasync(fd));
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	int fd = open(argv[1], O_RDWR);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	say("size %lld regular %d", (long long)st.st_size, S_ISREG(st.st_mode));
	positions(fd);
	writes(fd);
	descriptors(fd);
	sizes(fd, argv[1]);
	say("close %d", close(fd));
	fd = open(argv[1], O_RDONLY);
	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	say("final size %lld disk %016" PRIx64, (long long)st.st_size, disk_hash(fd, st.st_size));
	return close(fd);
}
