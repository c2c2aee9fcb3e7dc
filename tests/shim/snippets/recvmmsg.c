/* recvmmsg: see ../snip.h.  Two messages received in one call, each with
 * an image fd (SCM_RIGHTS) from another process: both read as the flat
 * disk, like one opened here. */
#define _GNU_SOURCE
#include "../snip.h"
#include <sys/socket.h>

static void child(void) {}

static void snippet(void)
{
	int sv[2]; CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	pid_t pid = fork(); CHECK(pid >= 0);
	if (pid == 0) {
		for (int k = 0; k < 2; k++) {
			int fd = open(P, O_RDONLY); char c = (char)('a' + k);
			union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u = {0};
			struct iovec v = {&c, 1};
			struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
			struct cmsghdr *h = CMSG_FIRSTHDR(&m); h->cmsg_level = SOL_SOCKET; h->cmsg_type = SCM_RIGHTS;
			h->cmsg_len = CMSG_LEN(sizeof(int)); memcpy(CMSG_DATA(h), &fd, sizeof fd);
			if (fd < 0 || sendmsg(sv[1], &m, 0) != 1) _exit(1);
			close(fd);
		}
		_exit(0);
	}
	int s; CHECK(waitpid(pid, &s, 0) == pid && WEXITSTATUS(s) == 0);
	char c[2]; union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u[2];
	struct iovec v[2] = {{&c[0], 1}, {&c[1], 1}};
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof mm);
	for (int k = 0; k < 2; k++) {
		mm[k].msg_hdr.msg_iov = &v[k]; mm[k].msg_hdr.msg_iovlen = 1;
		mm[k].msg_hdr.msg_control = u[k].b; mm[k].msg_hdr.msg_controllen = sizeof u[k].b;
	}
	errno = 4321; CHECK(recvmmsg(sv[0], mm, 2, 0, NULL) == 2); CHECK(errno == 4321);
	for (int k = 0; k < 2; k++) {
		struct cmsghdr *h = CMSG_FIRSTHDR(&mm[k].msg_hdr); CHECK(h && h->cmsg_type == SCM_RIGHTS);
		int fd; memcpy(&fd, CMSG_DATA(h), sizeof fd);
		struct stat st; CHECK(fstat(fd, &st) == 0);
		char *b = xbuf(65536, 0); CHECK(pread(fd, b, 65536, 1048576) == 65536);
		say("message %c: fd size %lld, 64k at 1M %016" PRIx64 ", first bytes %02x", c[k],
		    (long long)st.st_size, h64(b, 65536), (unsigned char)(pread(fd, b, 4, 0) == 4 ? b[0] : 0));
		free(b); close(fd);
	}
}
