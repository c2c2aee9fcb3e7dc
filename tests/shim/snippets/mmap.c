/* mmap: see ../snip.h. */
#define _GNU_SOURCE
#include "../snip.h"

static void child(void) {}

static void snippet(void)
{
	int fd = open(P, O_RDONLY); CHECK(fd >= 0); struct stat st; CHECK(fstat(fd, &st) == 0);
	errno = 0; char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0); EXPECT(m == MAP_FAILED && errno == ENODEV);
	char *b = malloc((size_t)st.st_size); CHECK(b);
	if (m == MAP_FAILED) CHECK(pread(fd, b, (size_t)st.st_size, 0) == st.st_size); else { memcpy(b, m, (size_t)st.st_size); munmap(m, (size_t)st.st_size); }
	say("mmap content %016" PRIx64, h64(b, (size_t)st.st_size)); void *a = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); say("anon ok %d", a != MAP_FAILED); close(fd);
}
