/*
 * coherence.c - how processes under the shim share one image, and how they
 * interoperate with qemu's image locking.
 *
 * Locks (all OFD locks on the translator's private fd, so a forked child or
 * an exec'd program never inherits them):
 *   - a process that writes takes qemu's read-write set {100,101,103,201,203}
 *     (shared) plus an exclusive lock on byte SHIM_LOCK_BYTE, from its first
 *     write until it releases the image (last close, fork, exec, exit): it
 *     flushes (qcow_close) before the fd, and so the locks, go away.  qemu
 *     therefore refuses the image meanwhile, and a second shim writer waits
 *     (QCOWSHIM_WAIT_MS) for the exclusive byte.
 *   - a process that only reads holds a shared lock on SHIM_READER_BYTE
 *     while its translator is open (never conflicting with anyone); before
 *     every operation it checks that qemu is not writing (byte 101 held
 *     without SHIM_LOCK_BYTE) and compares the host file's (mtime, ctime,
 *     size) with what it saw last; on a change (or when the last stamp was
 *     taken within one coarse clock tick, which a later write could leave
 *     unchanged) it re-reads the metadata (qcow_invalidate).
 *   - a writer that sees SHIM_READER_BYTE held by someone else pushes its
 *     cached metadata to the file after every write operation (without
 *     fdatasync: visibility, not durability), so concurrent readers (a
 *     pipeline) see every completed write, as with a raw file.  Data is
 *     written before the L2 entry that maps it and L2 tables before L1
 *     entries, so a reader racing a write sees the old or the new mapping.
 * A process that only has the image open, or only reads it, therefore never
 * blocks another; a writer stops blocking at its next fork, exec or close.
 * Known limit: a reader that starts while another process is in the middle
 * of writing sees that writer's earlier writes once the writer does its
 * next write, fsync or close (it publishes only while it sees a reader).
 * Publishing after every write regardless costs about 2x on streaming
 * writes, so it is not done.  Two writers at once: the second waits
 * QCOWSHIM_WAIT_MS, then gets EBUSY and a message.
 */
#include "shim.h"

#include <string.h>
#include <time.h>

#define SHIM_LOCK_BYTE (1LL << 60) /* shim writers' exclusive byte */
#define SHIM_READER_BYTE (SHIM_LOCK_BYTE + 1) /* shared: a shim reader has it open */
#define QEMU_PERM_BASE 100         /* "uses permission i" */
#define QEMU_SHARE_BASE 200        /* "does not share permission i" */

void coh_stamp_record(int trfd, struct shim_stamp *sp)
{
	struct stat st;
	struct timespec now;
	if (trfd < 0 || real_fstat(shim_priv_real(trfd), &st) < 0) {
		sp->unsure = true;
		return;
	}
	sp->mtim = st.st_mtim;
	sp->ctim = st.st_ctim;
	sp->size = st.st_size;
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	/* A write in the same coarse tick would leave mtime unchanged. */
	int64_t age = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000000000 +
		      (now.tv_nsec - st.st_mtim.tv_nsec);
	sp->unsure = age < 50 * 1000000;
}

bool coh_stamp_changed(int trfd, const struct shim_stamp *sp)
{
	struct stat st;
	if (sp->unsure || real_fstat(shim_priv_real(trfd), &st) < 0)
		return true;
	return st.st_mtim.tv_sec != sp->mtim.tv_sec || st.st_mtim.tv_nsec != sp->mtim.tv_nsec ||
	       st.st_ctim.tv_sec != sp->ctim.tv_sec || st.st_ctim.tv_nsec != sp->ctim.tv_nsec ||
	       st.st_size != sp->size;
}

/* ---- qemu-compatible locks */

static int lock_byte(int fd, int cmd, short type, off_t byte)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	return real_fcntl(shim_priv_real(fd), cmd, &fl) < 0 ? -errno : 0;
}

/* Does another open file description hold a lock on `byte`? */
static bool held_elsewhere(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	if (real_fcntl(shim_priv_real(fd), F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Reader check: nobody may be writing.  0 or -EBUSY (after a message). */
int coh_check_no_writer(const char *shown, int fd)
{
	for (int waited = 0;; waited += 10) {
		if (!held_elsewhere(fd, QEMU_PERM_BASE + 1))
			return 0;
		if (held_elsewhere(fd, SHIM_LOCK_BYTE))
			return 0; /* a shim writer: it publishes every write to us */
		if (waited >= 100) {
			shim_msg("%s: image is locked for writing by another program (qemu?)",
				 shown);
			return -EBUSY;
		}
		sleep_ms(10); /* or a shim writer between its two lock calls */
	}
}

static const int rw_bytes[] = {QEMU_PERM_BASE + 0, QEMU_PERM_BASE + 1, QEMU_PERM_BASE + 3,
			       QEMU_SHARE_BASE + 1, QEMU_SHARE_BASE + 3};

static void unlock_all(int fd)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	real_fcntl(shim_priv_real(fd), F_OFD_SETLK, &fl);
}

/* Writer locks, qemu's way: take ours, then look for conflicts. */
int coh_lock_writer(const char *shown, int fd)
{
	int r;
	for (int waited = 0;; waited += 10) {
		r = lock_byte(fd, F_OFD_SETLK, F_WRLCK, SHIM_LOCK_BYTE);
		if (r == 0)
			break;
		if (r != -EAGAIN && r != -EACCES)
			return r;
		if (waited >= policy_wait_ms()) {
			shim_msg("%s: image is being written by another qcowshim process", shown);
			return -EBUSY;
		}
		sleep_ms(10);
	}
	for (size_t i = 0; i < sizeof rw_bytes / sizeof rw_bytes[0]; i++)
		if ((r = lock_byte(fd, F_OFD_SETLK, F_RDLCK, rw_bytes[i])) < 0)
			goto conflict;
	/* Someone using write/resize, or refusing to share them: qemu. */
	if (held_elsewhere(fd, QEMU_PERM_BASE + 1) || held_elsewhere(fd, QEMU_PERM_BASE + 3) ||
	    held_elsewhere(fd, QEMU_SHARE_BASE + 1) || held_elsewhere(fd, QEMU_SHARE_BASE + 3))
		goto conflict;
	return 0;
conflict:
	unlock_all(fd);
	shim_msg("%s: image is in use by another program (qemu?): cannot get the write lock",
		 shown);
	return -EBUSY;
}


/* A reader announces itself (shared lock, conflicts with nobody). */
void coh_reader_register(int fd)
{
	lock_byte(fd, F_OFD_SETLK, F_RDLCK, SHIM_READER_BYTE);
}

/* Does another process read this image (so a writer must publish)? */
bool coh_readers_elsewhere(int fd)
{
	return held_elsewhere(fd, SHIM_READER_BYTE);
}

/* Opening for writing: qemu holding the image, even read-only, refuses to
 * share writing.  0 or -EBUSY (after a message). */
int coh_qemu_refuses_writer(const char *shown, int fd)
{
	if ((held_elsewhere(fd, QEMU_SHARE_BASE + 1) || held_elsewhere(fd, QEMU_PERM_BASE + 1)) &&
	    !held_elsewhere(fd, SHIM_LOCK_BYTE)) {
		shim_msg("%s: image is in use by another program (qemu?): cannot get the write lock",
			 shown);
		return -EBUSY;
	}
	return 0;
}
