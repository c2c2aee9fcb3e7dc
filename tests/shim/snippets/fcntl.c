/* fcntl: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDWR); CHECK(fd >= 0); int d = fcntl(fd, F_DUPFD, 50); say("dupfd %d", d);
	CHECK(lseek(fd, 1048576, SEEK_SET) >= 0); say("shared pos %lld", (long long)lseek(d, 0, SEEK_CUR));
	say("getfl %o", fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND)); CHECK(fcntl(fd, F_SETFL, O_APPEND) == 0);
	say("getfl dup %o", fcntl(d, F_GETFL) & (O_ACCMODE | O_APPEND)); char *tl = xbuf(512, 0x74); CHECK(write(d, tl, 512) == 512);
	struct stat st; CHECK(fstat(fd, &st) == 0); say("appended size %lld pos %lld", (long long)st.st_size, (long long)lseek(fd, 0, SEEK_CUR));
	CHECK(fcntl(fd, F_SETFL, 0) == 0); CHECK(lseek(fd, 10, SEEK_SET) == 10); CHECK(write(fd, "mid", 3) == 3);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 4096};
	say("setlk %d", fcntl(fd, F_SETLK, &fl)); fl.l_type = F_RDLCK; say("getlk %d type %d", fcntl(fd, F_GETLK, &fl), fl.l_type == F_UNLCK);
	fl.l_type = F_UNLCK; say("unlock %d", fcntl(fd, F_SETLK, &fl)); say("getfd %d", fcntl(fd, F_GETFD)); close(d); close(fd);
}
