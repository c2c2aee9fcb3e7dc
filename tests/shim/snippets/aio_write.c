/* aio_write: see ../snip.h and _aio.h.  Writes on the image reach the flat
 * disk (not the host bytes): over data, into a hole, growing the disk, on
 * an O_APPEND fd (sizes kept to whole sectors, as QCOW2 has them); a write on an O_RDONLY fd fails in the aiocb (EBADF);
 * notifications as for aio_read. */
#define _GNU_SOURCE
#include "../snip.h"
#include "_aio.h"

static void child(void) {}

static void snippet(void)
{
	block_sig(); /* before glibc starts a helper thread, which would take it */
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	char *b = xbuf(65536, 0x5a); acb c;
	acb_set(&c, fd, b, 4096, 1048576 + 512); errno = 4321; CHECK(A_WRITE(&c) == 0); CHECK(errno == 4321);
	acb_done("over data", &c); show("  after", fd, 8192, 1048576);
	acb_set(&c, fd, b, 65536, 2097152 + 100); acb_siginit(&c, 5); CHECK(A_WRITE(&c) == 0);
	wait_sig("into a hole"); acb_done("into a hole", &c); show("  after", fd, 65636, 2097152);
	sem_init(&thr_sem, 0, 0); acb_set(&c, fd, b, 1034, 4194304 - 10); acb_thrinit(&c, 6); CHECK(A_WRITE(&c) == 0);
	wait_thr("growing"); acb_done("growing", &c);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("  size %lld", (long long)st.st_size);
	int afd = open(P, O_WRONLY | O_APPEND); CHECK(afd >= 0);
	acb_set(&c, afd, b, 512, 0); CHECK(A_WRITE(&c) == 0); acb_done("append", &c); close(afd);
	CHECK(fstat(fd, &st) == 0); say("  size %lld", (long long)st.st_size); show("  tail", fd, 16, st.st_size - 16);
	int rfd = open(P, O_RDONLY); CHECK(rfd >= 0);
	acb_set(&c, rfd, b, 512, 0); CHECK(A_WRITE(&c) == 0); acb_done("on a read-only fd", &c); close(rfd);
	close(fd);
}
