/* ioctl: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); uint64_t size = 0; struct stat st; CHECK(fstat(fd, &st) == 0);
	int r = ioctl(fd, 0x80081272 /* BLKGETSIZE64 */, &size); EXPECT(r == 0 && size == (uint64_t)st.st_size);
	if (r != 0)
		size = (uint64_t)st.st_size;
	say("size %llu", (unsigned long long)size);
	int ss = 0; r = ioctl(fd, 0x1268 /* BLKSSZGET */, &ss); if (r != 0) ss = 512; say("sector %d", ss);
	char fm[4096] = {0}; errno = 0; r = ioctl(fd, 0xC020660B /* FS_IOC_FIEMAP */, fm); EXPECT(r < 0 && errno == EOPNOTSUPP);
	char tmp[] = "/tmp/qcs-clone-XXXXXX"; int c = mkstemp(tmp); unlink(tmp); errno = 0; r = ioctl(c, FICLONE, fd);
	EXPECT(r < 0 && errno == EXDEV); if (r == 0) { CHECK(ftruncate(c, 0) == 0); } close(c);
	int n = 0; say("fioclex passthrough %d", ioctl(fd, FIOCLEX, &n)); say("cloexec %d", (fcntl(fd, F_GETFD) & 1)); close(fd);
}
