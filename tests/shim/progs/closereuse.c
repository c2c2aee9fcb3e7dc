/*
 * closereuse.c DISK - run under LD_PRELOAD="libqcowshim.so reuse_close.so":
 * closes an image fd while another thread's open of the image gets the same
 * number back (reuse_close.so makes that happen inside the close).  The
 * reopened fd must still be an image fd: its size is the virtual disk's and
 * a write through it lands in the disk (the script checks with qemu-io),
 * not at that offset of the host file.  Prints "fd reused: size S".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	void (*arm)(int, const char *) = (void (*)(int, const char *))dlsym(RTLD_DEFAULT, "qcs_reuse_arm");
	int (*reused)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "qcs_reuse_fd");
	char buf[4096];
	if (argc != 2 || !arm || !reused) {
		fprintf(stderr, "closereuse: usage: closereuse DISK, with reuse_close.so preloaded\n");
		return 2;
	}
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
