/*
 * safety_plugin.c - a plugin that pwrites, for safety.c's deepbind mode:
 * dlopen'ed with RTLD_DEEPBIND, its own dependencies (libc) come before the
 * global scope, so its pwrite is libc's, not the preloaded shim's.
 */
#define _GNU_SOURCE
#include <unistd.h>

ssize_t plugin_pwrite(int fd, const void *b, size_t n, off_t o);

ssize_t plugin_pwrite(int fd, const void *b, size_t n, off_t o)
{
	return pwrite(fd, b, n, o);
}
