/* recvmsg: see ../snip.h.  An image fd received over a socket (SCM_RIGHTS)
 * from another process reads as the flat disk, like one opened here. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/socket.h>

static void child(void) {}

static void snippet(void)
{
	int sv[2]; CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(P, O_RDONLY); char c = 'x';
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u = {0};
		struct iovec v = {&c, 1};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m); h->cmsg_level = SOL_SOCKET; h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int)); memcpy(CMSG_DATA(h), &fd, sizeof fd);
		_exit(fd >= 0 && sendmsg(sv[1], &m, 0) == 1 ? 0 : 1);
	}
	char c; union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec v = {&c, 1};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
	errno = 4321; CHECK(recvmsg(sv[0], &m, 0) == 1); CHECK(errno == 4321);
	struct cmsghdr *h = CMSG_FIRSTHDR(&m); CHECK(h && h->cmsg_type == SCM_RIGHTS);
	int fd; memcpy(&fd, CMSG_DATA(h), sizeof fd);
	struct stat st; CHECK(fstat(fd, &st) == 0);
	char *b = xbuf(65536, 0); CHECK(pread(fd, b, 65536, 1048576) == 65536);
	say("received fd: size %lld, 64k at 1M %016" PRIx64, (long long)st.st_size, h64(b, 65536));
	int s; CHECK(waitpid(pid, &s, 0) == pid && WEXITSTATUS(s) == 0); close(fd);
}
