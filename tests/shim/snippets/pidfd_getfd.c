/* pidfd_getfd: see ../snip.h.  An image fd taken from another process
 * reads as the flat disk, like one opened here. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/pidfd.h>

static void child(void) {}

static void snippet(void)
{
	int go[2], ready[2]; CHECK(pipe(go) == 0 && pipe(ready) == 0);
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) { /* holds the disk on fd 9 until the parent is done */
		int fd = open(P, O_RDONLY); if (fd < 0 || dup2(fd, 9) != 9) _exit(1);
		char c = 1; close(go[1]); if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0) _exit(1);
		_exit(0);
	}
	char c; CHECK(read(ready[0], &c, 1) == 1);
	int pfd = pidfd_open(pid, 0), fd = pfd >= 0 ? pidfd_getfd(pfd, 9, 0) : -1;
	if (fd < 0) { /* no permission here: nothing to compare */
		say("pidfd_getfd unavailable");
	} else {
		struct stat st; CHECK(fstat(fd, &st) == 0);
		char *b = xbuf(65536, 0); CHECK(pread(fd, b, 65536, 1048576) == 65536);
		say("taken fd: size %lld, 64k at 1M %016" PRIx64, (long long)st.st_size, h64(b, 65536));
		close(fd);
	}
	close(go[1]); int s; CHECK(waitpid(pid, &s, 0) == pid);
}
