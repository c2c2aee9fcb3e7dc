/* aio_fsync64: the aio_fsync snippet with struct aiocb64 and the *64 calls. See ../snip.h and _aio.h.  After aio_write, aio_fsync
 * (O_SYNC and O_DSYNC) completes with 0 and its notification; a bad op is
 * EINVAL at submission. */
#define _GNU_SOURCE
#define AIO64 1
#include "../snip.h"
#include "_aio.h"

static void child(void) {}

static void snippet(void)
{
	block_sig(); /* before glibc starts a helper thread, which would take it */
	int fd = open(P, O_RDWR); CHECK(fd >= 0);
	char *b = xbuf(8192, 0x21); acb c, s;
	acb_set(&c, fd, b, 8192, 3 * 1048576); CHECK(A_WRITE(&c) == 0); acb_done("write", &c);
	acb_set(&s, fd, NULL, 0, 0); errno = 4321; CHECK(A_FSYNC(O_SYNC, &s) == 0); CHECK(errno == 4321);
	acb_done("fsync O_SYNC", &s);
	acb_set(&s, fd, NULL, 0, 0); acb_siginit(&s, 9); CHECK(A_FSYNC(O_DSYNC, &s) == 0);
	wait_sig("fsync O_DSYNC"); acb_done("fsync O_DSYNC", &s);
	acb_set(&s, fd, NULL, 0, 0); errno = 0; say("bad op: %d errno %d", A_FSYNC(12345, &s), errno);
	show("written", fd, 8192, 3 * 1048576);
	close(fd);
}
