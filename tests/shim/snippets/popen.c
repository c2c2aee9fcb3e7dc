/* popen: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); CHECK(dup2(fd, 3) == 3); if (fd != 3) close(fd);
	CHECK(lseek(3, 1048576 - 2, SEEK_SET) >= 0); FILE *f = popen("od -An -tx1 -N4 <&3; sha256sum <&3", "r"); CHECK(f);
	char line[200]; while (fgets(line, sizeof line, f)) fputs(line, stdout); say("pclose %d", pclose(f));
	char cmd[4200]; snprintf(cmd, sizeof cmd, "dd of='%s' bs=1 seek=50 conv=notrunc status=none", P); f = popen(cmd, "w"); CHECK(f); fputs("popen-dd", f); say("pclose w %d", pclose(f)); close(3);
}
