/* lio_listio: see ../snip.h and _aio.h.  LIO_WAIT and LIO_NOWAIT lists of
 * reads, writes and LIO_NOP on the image, a list mixing the image with a
 * plain file (the shim serves one part, glibc the other), the list's
 * signal, each request's own notification, and EIO for a failed request. */
#define _GNU_SOURCE
#include "../snip.h"
#include "_aio.h"

static void child(void) {}

static void snippet(void)
{
	block_sig(); /* before glibc starts a helper thread, which would take it */
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	char plain[4200]; snprintf(plain, sizeof plain, "%s.plain", P); /* never an image name */
	int other = open(plain, O_RDWR | O_CREAT | O_TRUNC, 0600); CHECK(other >= 0);
	char *w1 = xbuf(4096, 0x31), *w2 = xbuf(700, 0x32), *r1 = xbuf(65536, 0), *r2 = xbuf(1024, 0);
	acb c[4]; acb *l[5];
	acb_set(&c[0], fd, w1, 4096, 1048576 + 8192); c[0].aio_lio_opcode = LIO_WRITE;
	acb_set(&c[1], fd, w2, 700, 4096 - 100); c[1].aio_lio_opcode = LIO_WRITE;
	acb_set(&c[2], fd, NULL, 0, 0); c[2].aio_lio_opcode = LIO_NOP;
	l[0] = &c[0]; l[1] = NULL; l[2] = &c[1]; l[3] = &c[2];
	errno = 4321; CHECK(A_LIO(LIO_WAIT, l, 4, NULL) == 0); CHECK(errno == 4321);
	say("wait: %d/%zd %d/%zd", A_ERROR(&c[0]), A_RETURN(&c[0]), A_ERROR(&c[1]), A_RETURN(&c[1]));
	show("  written", fd, 16384, 1048576);
	/* LIO_NOWAIT, the list's signal */
	acb_set(&c[0], fd, r1, 65536, 1048576 - 1024); c[0].aio_lio_opcode = LIO_READ;
	acb_set(&c[1], fd, r2, 512, 0); c[1].aio_lio_opcode = LIO_READ;
	l[0] = &c[0]; l[1] = &c[1];
	struct sigevent sig = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_int = 42};
	CHECK(A_LIO(LIO_NOWAIT, l, 2, &sig) == 0);
	wait_sig("nowait list"); acb_done("read 0", &c[0]); acb_done("read 1", &c[1]);
	say("  %016" PRIx64 " %016" PRIx64, h64(r1, 65536), h64(r2, 512));
	/* mixed: the image and a plain file in one list */
	acb_set(&c[0], fd, w1, 4096, 2 * 1048576); c[0].aio_lio_opcode = LIO_WRITE;
	acb_set(&c[1], other, w2, 700, 0); c[1].aio_lio_opcode = LIO_WRITE;
	acb_set(&c[2], fd, r2, 512, 1048576); c[2].aio_lio_opcode = LIO_READ;
	acb_set(&c[3], other, r1, 100, 0); c[3].aio_lio_opcode = LIO_READ;
	for (int i = 0; i < 4; i++) l[i] = &c[i];
	CHECK(A_LIO(LIO_WAIT, l, 4, NULL) == 0);
	for (int i = 0; i < 4; i++) say("mixed %d: %d/%zd", i, A_ERROR(&c[i]), A_RETURN(&c[i]));
	say("  %016" PRIx64, h64(r2, 512));
	sig.sigev_value.sival_int = 43;
	acb_set(&c[0], fd, r1, 4096, 2 * 1048576); c[0].aio_lio_opcode = LIO_READ;
	acb_set(&c[1], other, r2, 700, 0); c[1].aio_lio_opcode = LIO_READ;
	CHECK(A_LIO(LIO_NOWAIT, l, 2, &sig) == 0);
	wait_sig("mixed nowait"); acb_done("mixed 0", &c[0]); acb_done("mixed 1", &c[1]);
	say("  %016" PRIx64 " %016" PRIx64, h64(r1, 4096), h64(r2, 700));
	/* a failed request: a write on a read-only fd */
	int rfd = open(P, O_RDONLY); CHECK(rfd >= 0);
	acb_set(&c[0], rfd, w1, 512, 0); c[0].aio_lio_opcode = LIO_WRITE;
	acb_set(&c[1], rfd, r2, 512, 0); c[1].aio_lio_opcode = LIO_READ;
	errno = 0; int r = A_LIO(LIO_WAIT, l, 2, NULL);
	say("failed: %d errno %d; %d/%zd %d/%zd", r, errno, A_ERROR(&c[0]), A_RETURN(&c[0]), A_ERROR(&c[1]), A_RETURN(&c[1]));
	close(rfd);
	/* last: a request's own SIGEV_THREAD notification (glibc's notification
	 * thread unblocks every signal, so no signal may follow it) */
	sem_init(&thr_sem, 0, 0);
	acb_set(&c[0], fd, r1, 4096, 0); c[0].aio_lio_opcode = LIO_READ; acb_thrinit(&c[0], 3);
	acb_set(&c[1], other, r2, 700, 0); c[1].aio_lio_opcode = LIO_READ;
	CHECK(A_LIO(LIO_NOWAIT, l, 2, NULL) == 0);
	wait_thr("nowait request"); acb_done("thread 0", &c[0]); acb_done("thread 1", &c[1]);
	say("  %016" PRIx64 " %016" PRIx64, h64(r1, 4096), h64(r2, 700));
	close(other); unlink(plain); close(fd);
}
