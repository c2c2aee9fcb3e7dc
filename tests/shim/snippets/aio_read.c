/* aio_read: see ../snip.h and _aio.h.  Reads on the image give the flat
 * disk's bytes (not the QCOW2 header), across data, holes and the end;
 * completion through aio_error/aio_return/aio_suspend, the SIGEV_SIGNAL
 * and SIGEV_THREAD notifications, aio_cancel after completion. */
#define _GNU_SOURCE
#include "../snip.h"
#include "_aio.h"

static void child(void) {}

static void snippet(void)
{
	block_sig(); /* before glibc starts a helper thread, which would take it */
	int fd = open(P, O_RDONLY); CHECK(fd >= 0);
	char *b = xbuf(65536, 0); acb c;
	acb_set(&c, fd, b, 512, 0); errno = 4321; CHECK(A_READ(&c) == 0); CHECK(errno == 4321);
	acb_done("first sector", &c); say("  %016" PRIx64 " starts %02x", h64(b, 512), (unsigned char)b[0]);
	acb_set(&c, fd, b, 65536, 1048576 - 4096); CHECK(A_READ(&c) == 0); acb_done("data and hole", &c);
	say("  %016" PRIx64, h64(b, 65536));
	acb_set(&c, fd, b, 65536, 4194304 - 1000); CHECK(A_READ(&c) == 0); acb_done("past the end", &c);
	acb_set(&c, fd, b, 4096, 4190208); acb_siginit(&c, 77); CHECK(A_READ(&c) == 0);
	wait_sig("signal read"); acb_done("signal read", &c);
	sem_init(&thr_sem, 0, 0); acb_set(&c, fd, b, 4096, 1048576); acb_thrinit(&c, 88); CHECK(A_READ(&c) == 0);
	wait_thr("thread read"); acb_done("thread read", &c); say("  %016" PRIx64, h64(b, 4096));
	say("cancel after completion: %s", A_CANCEL(fd, &c) == AIO_ALLDONE ? "AIO_ALLDONE" : "other");
	say("cancel all: %s", A_CANCEL(fd, NULL) == AIO_ALLDONE ? "AIO_ALLDONE" : "other");
	acb_set(&c, fd, b, 512, -1); errno = 0; int r = A_READ(&c); say("negative offset: %d errno %d", r, r < 0 ? errno : 0);
	if (r == 0) acb_done("negative offset", &c);
	close(fd);
}
