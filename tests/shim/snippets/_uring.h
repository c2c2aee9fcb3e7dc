/* _uring.h - shared by the liburing snippets: a write and a read through a
 * ring when one can be made (the raw twin, without the shim), through
 * pwrite/pread when ring setup is refused (the image, under the shim: the
 * kernel would do the ring's I/O on the host bytes).  Either way the disk
 * gets the same write and the same bytes are read back. */
#include <liburing.h>

static void uring_io(struct io_uring *ring, int ok, int fd)
{
	char *w = xbuf(4096, 0x6b), *r = xbuf(65536, 0);
	if (ok) {
		struct io_uring_sqe *s = io_uring_get_sqe(ring); CHECK(s);
		io_uring_prep_write(s, fd, w, 4096, 8192);
		s = io_uring_get_sqe(ring); CHECK(s);
		io_uring_prep_read(s, fd, r, 65536, 1048576);
		CHECK(io_uring_submit_and_wait(ring, 2) == 2);
		for (int k = 0; k < 2; k++) {
			struct io_uring_cqe *c; CHECK(io_uring_wait_cqe(ring, &c) == 0);
			CHECK(c->res == 4096 || c->res == 65536); io_uring_cqe_seen(ring, c);
		}
		io_uring_queue_exit(ring);
	} else {
		CHECK(pwrite(fd, w, 4096, 8192) == 4096); CHECK(pread(fd, r, 65536, 1048576) == 65536);
	}
	say("wrote 4k at 8k, read 64k at 1M: %016" PRIx64, h64(r, 65536));
	free(w); free(r);
}
