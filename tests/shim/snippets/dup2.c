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
	int img = open(P, O_RDWR); CHECK(pwrite(img, "before-dup2-storm", 17, 60000) == 17); int nul = open("/dev/null", O_RDWR);
	for (int i = 3; i < 1024; i++) if (i != img && i != nul) { if (dup2(nul, i) == i) close(i); }
	for (int i = 3; i < 900; i++) if (i != img && i != nul) CHECK(dup2(nul, i) == i); /* occupy, then free */
	CHECK(pread(img, b, 4, 1048576) == 4);
	for (int i = 3; i < 900; i++) if (i != img && i != nul) close(i);
	CHECK(pread(img, b, 4, 1048576) == 4); CHECK(pwrite(img, "after-dup2-storm", 16, 70000) == 16); say("after dup2 storm %02x", (unsigned char)b[0]);
	/* a second image opened now gets a new private fd: must not be confused with the moved one */
	const char *n2 = sibling("second"); int s2 = open(n2, O_RDWR | O_CREAT | O_TRUNC, 0644); CHECK(s2 >= 0);
	char *big = xbuf(1 << 21, 0x5e); CHECK(pwrite(s2, big, 1 << 21, 0) == 1 << 21);
	CHECK(pread(img, b, 4, 1048576) == 4); char c2[4]; CHECK(pread(s2, c2, 4, 1048576) == 4);
	say("two images after the storm %02x %02x %016" PRIx64, (unsigned char)b[0], (unsigned char)c2[0], h64(big, 1 << 21));
	CHECK(pwrite(img, "still-first", 11, 80000) == 11); close(s2); unlink(n2); close(img); close(nul);
}
