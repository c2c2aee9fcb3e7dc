/* failsync.so - preloaded AFTER libqcowshim.so, it is what the shim finds as
 * the "real" fsync/fdatasync: both fail with EIO, as on a dying disk.  Used
 * by tests/integration/t_tools_fulldisk.sh. */
#include <errno.h>

int fsync(int fd);
int fdatasync(int fd);

int fsync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

int fdatasync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}
