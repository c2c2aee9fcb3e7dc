/* sem_open: see ../snip.h.  glibc's sem_open opens /dev/shm/sem.NAME with
 * its own open and maps its first bytes as the semaphore: an image there is
 * refused with one line (EACCES), the image untouched; on the raw twin the
 * semaphore opens. */
#define _GNU_SOURCE
#include "../snip.h"
#include <semaphore.h>

static void child(void) {}
static char path[256];
static void cleanup(void) { unlink(path); } /* also after a failed CHECK */

static void snippet(void)
{
	char name[128], cmd[8600];
	snprintf(name, sizeof name, "/qcs-snip-%d%s", (int)getpid(), strrchr(P, '.'));
	snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1); atexit(cleanup);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", P, path); CHECK(system(cmd) == 0);
	errno = 0; sem_t *s = sem_open(name, O_RDWR);
	EXPECT(s == SEM_FAILED && errno == EACCES);
	if (!IMG) CHECK(s != SEM_FAILED);
	if (s != SEM_FAILED) CHECK(sem_close(s) == 0);
	if (IMG) { snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", path); EXPECT(system(cmd) == 0); }
	say("sem_open checked");
	errno = 0; s = sem_open("/qcs-no-such-semaphore", O_RDWR); int e = errno;
	say("missing: %s errno %d", s == SEM_FAILED ? "SEM_FAILED" : "opened?", e);
	CHECK(unlink(path) == 0);
}
