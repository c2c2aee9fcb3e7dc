/*
 * wrap_uring.c - liburing's ring setup.  A ring's reads and writes are done
 * by the kernel on the descriptors named in its submission queue, and
 * liburing enters the kernel with inline syscall instructions, so nothing
 * the shim could interpose would see them: on an image they would read the
 * QCOW2 bytes (writes fail: image descriptors are read-only to the
 * kernel).  While the shim is active, no ring is made: io_uring_queue_init,
 * io_uring_queue_init_params and io_uring_setup return -ENOSYS (what a
 * kernel without io_uring gives; liburing's users fall back to read/write
 * or POSIX AIO), as syscall(SYS_io_uring_setup) does (wrap_misc.c).  One
 * line says so when this process has had an image open.  glibc only.
 */
#include "shim.h"

#if SHIM_GLIBC

static int refuse(void)
{
	if (atomic_load(&shim_nimages_ever) > 0)
		shim_msg("io_uring: refusing a ring: the kernel would see the raw QCOW2 bytes; use "
			 "read/write or POSIX AIO");
	return -ENOSYS;
}

int io_uring_queue_init(unsigned e, void *ring, unsigned fl)
{
	if (!policy_enabled())
		return real_io_uring_queue_init(e, ring, fl);
	return refuse();
}

int io_uring_queue_init_params(unsigned e, void *ring, void *p)
{
	if (!policy_enabled())
		return real_io_uring_queue_init_params(e, ring, p);
	return refuse();
}

int io_uring_setup(unsigned e, void *p)
{
	if (!policy_enabled())
		return real_io_uring_setup(e, p);
	return refuse();
}

#endif /* SHIM_GLIBC */
