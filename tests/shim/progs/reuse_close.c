/*
 * reuse_close.so - preloaded AFTER libqcowshim.so, its close() is the one the
 * shim calls as the "real" close.  Once armed (qcs_reuse_arm(fd, path)), the
 * next close of fd makes another thread open path right after the kernel
 * freed the number and before the shim's close returns: the
 * window in which a concurrent open in a threaded program gets the same
 * number back.  qcs_reuse_fd() then tells the fd that thread got.  Used by
 * tests/shim/progs/closereuse.c (semantics.sh).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

int close(int fd);
void qcs_reuse_arm(int fd, const char *path);
int qcs_reuse_fd(void);

static const char *armed;
static int armed_fd = -1, reused = -1;

void qcs_reuse_arm(int fd, const char *path)
{
	armed_fd = fd;
	armed = path;
}

int qcs_reuse_fd(void)
{
	return reused;
}

static void *reopen(void *arg)
{
	reused = open(arg, O_RDWR); /* the shim's open */
	return NULL;
}

int close(int fd)
{
	static int (*libc_close)(int); /* next after this library: libc's */
	if (!libc_close)
		libc_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	const char *p = armed;
	int r = libc_close(fd);
	if (r == 0 && p && fd == armed_fd) {
		pthread_t t;
		armed = NULL;
		if (pthread_create(&t, NULL, reopen, (void *)p) == 0)
			pthread_join(t, NULL);
	}
	return r;
}
