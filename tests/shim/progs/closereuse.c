/*
 * closereuse.c DISK - run under LD_PRELOAD="libqcowshim.so reuse_close.so":
 * closes an image fd while another thread's open of the image gets the same
 * number back (reuse_close.so makes that happen inside the close).  The
 * reopened fd must still be an image fd: its size is the virtual disk's and
 * a write through it lands in the disk (the script checks with qemu-io),
 * not at that offset of the host file.  Prints "fd reused: size S".
 *
 * closereuse DISK OTHER: the program keeps DISK at a number among the shim's
 * own (>= 800) and writes to it; while it closes that fd, the racing thread
 * opens OTHER, so the shim makes one of OTHER's private descriptors with the
 * number just freed.  DISK must still be released by that last close: its
 * write locks dropped (probed through a hard link the shim leaves alone).
 * Prints "released".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int displaced(void (*arm)(int, const char *), int (*reused)(void), char **argv)
{
	char buf[4096];
	int low = open(argv[1], O_RDWR);
	int fd = low < 0 ? -1 : fcntl(low, F_DUPFD, 800);
	memset(buf, 0x5a, sizeof buf);
	if (fd < 0 || close(low) < 0 || pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
		perror("closereuse: open/dup/write");
		return 1;
	}
	arm(fd, argv[2]);
	if (close(fd) < 0) {
		perror("closereuse: close");
		return 1;
	}
	if (fcntl(fd, F_GETFD) < 0) { /* else the test proves nothing */
		fprintf(stderr, "closereuse: no private descriptor took number %d\n", fd);
		return 1;
	}
	if (reused() < 0 || close(reused()) < 0) {
		perror("closereuse: the racing open of OTHER");
		return 1;
	}
	/* Held or not: probe qemu's WRITE permission byte through another
	 * name (the shim leaves it alone), without forking, since a fork
	 * would make the shim drop its write locks anyway. */
	char probe[4200];
	snprintf(probe, sizeof probe, "%s-probe", argv[1]);
	unlink(probe);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 101, .l_len = 1};
	int pfd = link(argv[1], probe) == 0 ? open(probe, O_RDONLY) : -1;
	if (pfd < 0 || fcntl(pfd, F_OFD_GETLK, &fl) < 0) {
		perror("closereuse: probe");
		return 1;
	}
	close(pfd);
	unlink(probe);
	printf(fl.l_type == F_UNLCK ? "released\n" : "still held after its last close\n");
	return 0;
}

int main(int argc, char **argv)
{
	void (*arm)(int, const char *) = (void (*)(int, const char *))dlsym(RTLD_DEFAULT, "qcs_reuse_arm");
	int (*reused)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "qcs_reuse_fd");
	char buf[4096];
	if ((argc != 2 && argc != 3) || !arm || !reused) {
		fprintf(stderr, "closereuse: usage: closereuse DISK [OTHER], with reuse_close.so preloaded\n");
		return 2;
	}
	if (argc == 3)
		return displaced(arm, reused, argv);
	int fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror("closereuse: open");
		return 1;
	}
	arm(fd, argv[1]);
	if (close(fd) < 0) {
		perror("closereuse: close");
		return 1;
	}
	int nfd = reused();
	if (nfd != fd) {
		fprintf(stderr, "closereuse: the racing open got fd %d, not %d\n", nfd, fd);
		return 1;
	}
	memset(buf, 0x7e, sizeof buf);
	off_t size = lseek(nfd, 0, SEEK_END);
	if (pwrite(nfd, buf, sizeof buf, 1 << 20) != (ssize_t)sizeof buf || close(nfd) < 0) {
		perror("closereuse: pwrite/close");
		return 1;
	}
	printf("fd reused: size %lld\n", (long long)size);
	return 0;
}
