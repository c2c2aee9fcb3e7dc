/* posix_spawn_file_actions_addopen: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) { char b[4]; ssize_t n = read(3, b, 4); say("child read %zd: %02x pos %lld", n, n > 0 ? (unsigned char)b[0] : 0, (long long)lseek(3, 0, SEEK_CUR));}

static void snippet(void)
{
	posix_spawn_file_actions_t fa; CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 3, P, O_RDWR | O_APPEND, 0) == 0);
	char *av[] = {"snip", (char *)P, "child", NULL}; pid_t pid; fflush(stdout);
	CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0); int st; CHECK(waitpid(pid, &st, 0) == pid);
	say("child status %d", WEXITSTATUS(st)); posix_spawn_file_actions_destroy(&fa);
	const char *n = sibling("fa"); int t = open(n, O_RDWR | O_CREAT | O_TRUNC, 0644); CHECK(t >= 0); char *b = xbuf(8192, 0x6b);
	CHECK(write(t, b, 8192) == 8192); close(t); CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_addopen(&fa, 3, n, O_RDWR | O_TRUNC, 0) == 0); CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, av, environ) == 0);
	CHECK(waitpid(pid, &st, 0) == pid); struct stat s2; CHECK(stat(n, &s2) == 0); say("truncated by the action: %lld", (long long)s2.st_size);
	if (IMG) { char cmd[8300]; snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", n); EXPECT(system(cmd) == 0); } unlink(n); posix_spawn_file_actions_destroy(&fa);
}
