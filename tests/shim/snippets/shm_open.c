/* shm_open: see ../snip.h.  glibc's shm_open opens /dev/shm/NAME with its
 * own open, which no wrapper sees: an image there is served like any other
 * image path (O_TRUNC empties the virtual disk, reads are the flat disk). */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	char name[128], path[256], cmd[8600];
	snprintf(name, sizeof name, "/qcs-snip-%d%s", (int)getpid(), strrchr(P, '.'));
	snprintf(path, sizeof path, "/dev/shm%s", name);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", P, path); CHECK(system(cmd) == 0);
	int fd = shm_open(name, O_RDONLY, 0); CHECK(fd >= 0); char b[4]; struct stat st;
	CHECK(fstat(fd, &st) == 0); CHECK(pread(fd, b, 4, 1048576) == 4); say("size %lld, at 1 MiB %02x", (long long)st.st_size, (unsigned char)b[0]); close(fd);
	fd = shm_open(name, O_RDWR | O_TRUNC, 0); CHECK(fd >= 0); CHECK(fstat(fd, &st) == 0); say("after O_TRUNC %lld", (long long)st.st_size);
	char *w = xbuf(512, 0x3c); CHECK(write(fd, w, 512) == 512); CHECK(fstat(fd, &st) == 0); say("written %lld", (long long)st.st_size); close(fd); free(w);
	if (IMG) { snprintf(cmd, sizeof cmd, "qemu-img check -q '%s'", path); EXPECT(system(cmd) == 0); }
	errno = 0; say("bad name: %d errno %d", shm_open("a/b", O_RDONLY, 0), errno);
	CHECK(shm_unlink(name) == 0);
}
