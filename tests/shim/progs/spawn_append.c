/* spawn_append.c DISK: fd 3 opened O_APPEND on DISK; children started by
 * posix_spawnp, system and popen append to it through the inherited fd.
 * The emulated O_APPEND must reach them (QCOWSHIM_FDS=P<pid>). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	(void)argc;
	int fd = open(argv[1], O_WRONLY | O_APPEND);
	if (fd < 0 || dup2(fd, 3) != 3)
		return 1;
	if (fd != 3)
		close(fd);
	lseek(3, 0, SEEK_SET); /* O_APPEND writes ignore the position */
	char *av[] = {"sh", "-c", "printf 'by posix_spawn' >&3", NULL};
	pid_t pid;
	int st;
	if (posix_spawnp(&pid, "sh", NULL, NULL, av, environ) != 0 || waitpid(pid, &st, 0) != pid)
		return 2;
	lseek(3, 0, SEEK_SET);
	if (system("printf 'by system' >&3") != 0)
		return 3;
	lseek(3, 0, SEEK_SET);
	FILE *p = popen("cat >&3", "w");
	if (!p)
		return 4;
	fputs("by popen", p);
	if (pclose(p) != 0)
		return 5;
	puts("spawned");
	return 0;
}
