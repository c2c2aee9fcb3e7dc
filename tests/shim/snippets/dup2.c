/* dup2: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); CHECK(dup2(fd, 40) == 40); close(fd);
	CHECK(lseek(40, 1048576, SEEK_SET) >= 0); char b[4]; CHECK(read(40, b, 4) == 4); say("dup2 %02x", (unsigned char)b[0]);
	int n = open("/dev/null", O_RDONLY); CHECK(dup2(n, 40) == 40); say("replaced read %zd", read(40, b, 4)); close(n); close(40);
	/* stdout onto the disk: stdio output must be translated too */
	int w = open(P, O_WRONLY); CHECK(w >= 0); int saved = dup(1); CHECK(lseek(w, 5000, SEEK_SET) == 5000);
	fflush(stdout); CHECK(dup2(w, 1) == 1); printf("via-stdout"); fflush(stdout); CHECK(dup2(saved, 1) == 1); close(saved); close(w);
	say("back on stdout");
	/* dup2 over every other descriptor (the shim's private ones included) */
	int img = open(P, O_RDWR); CHECK(pread(img, b, 4, 1048576) == 4); int nul = open("/dev/null", O_RDWR);
	for (int i = 3; i < 1024; i++) if (i != img && i != nul) { if (dup2(nul, i) == i) close(i); }
	CHECK(pread(img, b, 4, 1048576) == 4); CHECK(pwrite(img, "after-dup2-storm", 16, 70000) == 16); say("after dup2 storm %02x", (unsigned char)b[0]); close(img); close(nul);
}
