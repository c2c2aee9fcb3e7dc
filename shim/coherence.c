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
 *   - a process that only reads holds shared locks on SHIM_READER_BYTE and on
 *     qemu's byte 201 ("does not share write") while its translator is open,
 *     like a qemu reader: qemu cannot start writing under it.  Shim writers
 *     tell shim readers from qemu readers by byte 100 (consistent read),
 *     which every qemu reader holds and a shim reader does not.
 *   - a writer that sees shim readers pushes its cached metadata to the file
 *     after every write operation (without fdatasync: visibility, not
 *     durability), so concurrent readers (a pipeline) see every completed
 *     write, as with a raw file.  Data is written before the L2 entry that
 *     maps it and L2 tables before L1 entries, so a reader racing a write
 *     sees the old or the new mapping.
 *
 * The shared change page.  Asking the kernel on every read whether someone
 * wrote (a lock query and an fstat) would triple the system calls of a
 * cached 4 KiB read, so processes of one user share a small page per image,
 * /dev/shm/qcowshim.DEV.INO (mode 0600, never trusted when owned by someone
 * else): `gen` counts publications by writers, `readers` tells writers
 * whether anyone needs them.  A reader's check is then one memory load;
 * the full system-call check (qemu writer? host file changed by a program
 * outside the shim?) still runs every QCOWSHIM_RECHECK_MS, which bounds how
 * long a change by a writer that cannot reach the page (another user, a
 * program without the shim) goes unnoticed.  `readers` is a hint: a reader
 * killed with -9 leaves it high, and a writer that finds no reader lock
 * resets it.  Without /dev/shm every operation does the full check.
 * Every user of the page holds a shared lock on its byte 0; the last one
 * out (the one that can take it exclusively) unlinks it; a newcomer that
 * locked a page just unlinked sees the name gone and retries.  A process
 * killed with SIGKILL (or by the OOM killer) loses its lock without
 * unlinking, so the first attach of every process also sweeps /dev/shm:
 * any trusted page of ours that it can lock exclusively has no user left,
 * and it unlinks it exactly as a last user would (page_sweep).
 *
 * Known limit: a reader that starts while another process is in the middle
 * of writing sees that writer's earlier writes once the writer does its
 * next write, fsync or close (it publishes only while it sees a reader).
 * Publishing after every write regardless costs about 2x on streaming
 * writes, so it is not done.  Two writers at once: the second waits
 * QCOWSHIM_WAIT_MS, then gets EBUSY and a message.
 */
#include "shim.h"

#include <dirent.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SHIM_LOCK_BYTE (1LL << 60) /* shim writers' exclusive byte */
#define SHIM_READER_BYTE (SHIM_LOCK_BYTE + 1) /* shared: a shim reader has it open */
#define QEMU_PERM_BASE 100         /* "uses permission i" */
#define QEMU_SHARE_BASE 200        /* "does not share permission i" */
#define COH_PAGE_MAGIC 0x71637368636f6831ull /* "qcshcoh1" */
#define COH_PAGE_SIZE 4096

struct coh_page {
	uint64_t magic;
	_Atomic uint64_t gen;     /* publications by shim writers */
	_Atomic uint64_t readers; /* shim readers registered (a hint, see above) */
};

static int64_t recheck_ns(void)
{
	return policy_recheck_ms() * 1000000LL;
}

static int64_t coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void coh_stamp_record(int trfd, struct shim_stamp *sp)
{
	struct stat st;
	if (trfd < 0 || real_fstat(shim_priv_real(trfd), &st) < 0) {
		sp->unsure = true;
		return;
	}
	coh_stamp_set(sp, &st);
}

/* The stamp from an fstat already made (before the metadata was read). */
void coh_stamp_set(struct shim_stamp *sp, const struct stat *st)
{
	struct timespec now;
	sp->st = *st;
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	/* A write in the same coarse tick would leave mtime unchanged. */
	int64_t age = (int64_t)(now.tv_sec - st->st_mtim.tv_sec) * 1000000000 +
		      (now.tv_nsec - st->st_mtim.tv_nsec);
	sp->unsure = age < 50 * 1000000;
}

/* Size, mtime and ctime unchanged: no write in between, unless within one
 * timestamp tick (coh_stamp_record's unsure covers that). */
bool coh_same_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

bool coh_stamp_changed(int trfd, const struct shim_stamp *sp)
{
	struct stat st;
	if (sp->unsure || real_fstat(shim_priv_real(trfd), &st) < 0)
		return true;
	return !coh_same_state(&st, &sp->st);
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

/* A qemu reader refuses to share write (201) and reads consistently (100);
 * shim readers hold only 201. */
static bool qemu_reader_elsewhere(int fd)
{
	return held_elsewhere(fd, QEMU_SHARE_BASE + 1) && held_elsewhere(fd, QEMU_PERM_BASE + 0);
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
	    qemu_reader_elsewhere(fd) || held_elsewhere(fd, QEMU_SHARE_BASE + 3))
		goto conflict;
	return 0;
conflict:
	unlock_all(fd);
	shim_msg("%s: image is in use by another program (qemu?): cannot get the write lock",
		 shown);
	return -EBUSY;
}


/* Opening for writing: qemu holding the image, even read-only, refuses to
 * share writing.  0 or -EBUSY (after a message). */
int coh_qemu_refuses_writer(const char *shown, int fd)
{
	if ((qemu_reader_elsewhere(fd) || held_elsewhere(fd, QEMU_PERM_BASE + 1)) &&
	    !held_elsewhere(fd, SHIM_LOCK_BYTE)) {
		shim_msg("%s: image is in use by another program (qemu?): cannot get the write lock",
			 shown);
		return -EBUSY;
	}
	return 0;
}

/* ---- the shared change page */

/* A page we may use or remove: a plain file of ours that nobody else can
 * write, and still linked.  Anything else is someone else's: left alone. */
static bool page_trusted(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 077) &&
	       st->st_nlink == 1;
}

/* "qcowshim.DEV.INO", both in lower-case hex, as coh_attach names pages. */
static bool page_name(const char *n)
{
	static const char prefix[] = "qcowshim.";
	size_t d1 = 0, d2 = 0;
	if (strncmp(n, prefix, sizeof prefix - 1) != 0)
		return false;
	n += sizeof prefix - 1;
	for (; *n && *n != '.'; n++, d1++)
		if (!((*n >= '0' && *n <= '9') || (*n >= 'a' && *n <= 'f')))
			return false;
	if (*n++ != '.')
		return false;
	for (; *n; n++, d2++)
		if (!((*n >= '0' && *n <= '9') || (*n >= 'a' && *n <= 'f')))
			return false;
	return d1 && d1 <= 16 && d2 && d2 <= 16;
}

/* Remove `path` if no process uses it: the last-user protocol of coh_detach.
 * Exclusive lock first, so nobody is attached; then the name must still be
 * this file (only an exclusive holder unlinks, so it stays so until ours).
 * A newcomer that opened it before our unlink locks it after our close,
 * finds the name gone and makes a fresh page (page_open). */
static void page_reap(const char *path)
{
	struct stat st, cur;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	int fd = real_open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0)
		return;
	if (real_fstat(fd, &st) == 0 && page_trusted(&st) && real_fcntl(fd, F_OFD_SETLK, &fl) == 0 &&
	    real_lstat(path, &cur) == 0 && cur.st_ino == st.st_ino && cur.st_dev == st.st_dev)
		unlink(path);
	real_close(fd);
}

/* Once per process (its first attach): remove the pages of processes that
 * died without detaching.  A few system calls per page, not per I/O. */
static void page_sweep(void)
{
	static atomic_bool swept;
	char path[300];
	if (atomic_exchange(&swept, true))
		return;
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (!page_name(e->d_name))
			continue;
		snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
		page_reap(path);
	}
	closedir(d);
}

/* Open, lock and verify the page; the fd or -1 (then: no page). */
static int page_open(const char *name)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat st, cur;
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		int fd = real_open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
				   0600);
		if (fd < 0)
			return -1;
		/* Someone else's page, or not a plain private file: do not trust it. */
		if (real_fstat(fd, &st) < 0 || !page_trusted(&st)) {
			real_close(fd);
			return -1;
		}
		if (real_fcntl(fd, F_OFD_SETLK, &fl) < 0) {
			real_close(fd); /* the last user is unlinking it */
			sleep_ms(1);
			continue;
		}
		/* Unlinked between our open and our lock: take the new one. */
		if (real_lstat(name, &cur) < 0 || cur.st_ino != st.st_ino || cur.st_dev != st.st_dev) {
			real_close(fd);
			continue;
		}
		if (st.st_size < COH_PAGE_SIZE && real_ftruncate64(fd, COH_PAGE_SIZE) < 0) {
			real_close(fd);
			return -1;
		}
		return fd;
	}
	return -1;
}

/*
 * Pages stay attached for the life of the process (up to PAGE_SLOTS images,
 * least recently closed evicted first): a program that opens the same image
 * again and again (mkfs.ext4 about ten times, a tool per partition) would
 * otherwise create, lock, map, unlock and unlink the page at every open and
 * close, 13 of the 40 system calls of an image open.  An attached page not
 * in use by an open image only holds its shared lock, so the last user of
 * the image elsewhere does not unlink it; it counts as no reader (`readers`
 * is decremented at the image's close, as before).  Released at exit and
 * exec (coh_pages_release, the last user's unlink), forgotten in a forked
 * child (its copy of the descriptor shares our lock).  A process killed
 * before releasing leaves its pages to the next sweep, as before.
 */
#define PAGE_SLOTS 4
struct page_slot {
	struct coh_page *page; /* NULL: free */
	int fd;                /* private handle holding the page's shared lock */
	dev_t dev;
	ino_t ino;
	bool busy;             /* an image of this process uses it now */
	uint64_t used;         /* when it was last given back (LRU) */
	char name[64];
};
static struct page_slot slots[PAGE_SLOTS];
static struct shim_mutex slot_mu = SHIM_MUTEX_INIT;
static uint64_t slot_tick;

/* Create (or join) the page of (dev, ino), mapped and locked; NULL: none. */
static struct coh_page *page_map(const char *name, int *handle)
{
	int fd = page_open(name);
	if (fd < 0)
		return NULL;
	struct coh_page *p = real_mmap(NULL, COH_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		real_close(fd);
		return NULL;
	}
	uint64_t zero = 0; /* a fresh page: stamp it; a foreign format: ignore it */
	__atomic_compare_exchange_n(&p->magic, &zero, COH_PAGE_MAGIC, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&p->magic, __ATOMIC_SEQ_CST) != COH_PAGE_MAGIC) {
		munmap(p, COH_PAGE_SIZE);
		real_close(fd);
		return NULL;
	}
	*handle = fd_make_private(fd);
	return p;
}

/* Unmap and let go of a page; the last user anywhere unlinks it. */
static void page_unmap(struct coh_page *page, int handle, const char *name)
{
	munmap(page, COH_PAGE_SIZE);
	int fd = shim_priv_real(handle);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	if (real_fcntl(fd, F_OFD_SETLK, &fl) == 0)
		unlink(name); /* nobody else uses it */
	fd_private_closed(handle);
	real_close(fd);
}

/* A slot for a new page: a free one, else the least recently used idle one
 * (released); NULL if every slot is in use. */
static struct page_slot *slot_take(void)
{
	struct page_slot *best = NULL;
	for (int i = 0; i < PAGE_SLOTS; i++) {
		struct page_slot *sl = &slots[i];
		if (!sl->page)
			return sl;
		if (!sl->busy && (!best || sl->used < best->used))
			best = sl;
	}
	if (best) {
		page_unmap(best->page, best->fd, best->name);
		best->page = NULL;
	}
	return best;
}

void coh_attach(struct coh_state *c, dev_t dev, ino_t ino)
{
	int saved = errno;
	memset(c, 0, sizeof *c);
	c->fd = -1;
	snprintf(c->name, sizeof c->name, "/dev/shm/qcowshim.%llx.%llx", (unsigned long long)dev,
		 (unsigned long long)ino);
	shim_mutex_lock(&slot_mu);
	for (int i = 0; i < PAGE_SLOTS; i++) {
		struct page_slot *sl = &slots[i];
		if (sl->page && !sl->busy && sl->dev == dev && sl->ino == ino) {
			sl->busy = true;
			c->slot = sl;
			c->page = sl->page;
			c->fd = sl->fd;
			goto out;
		}
	}
	page_sweep();
	int h;
	struct coh_page *p = page_map(c->name, &h);
	if (!p)
		goto out;
	c->page = p;
	c->fd = h;
	struct page_slot *sl = slot_take();
	if (sl) {
		*sl = (struct page_slot){.page = p, .fd = h, .dev = dev, .ino = ino, .busy = true};
		snprintf(sl->name, sizeof sl->name, "%s", c->name);
		c->slot = sl;
	}
out:
	shim_mutex_unlock(&slot_mu);
	errno = saved;
}

void coh_detach(struct coh_state *c)
{
	if (!c->page)
		return;
	int saved = errno;
	if (c->counted) { /* saturating: a writer may have reset a stale count */
		uint64_t n = atomic_load(&c->page->readers);
		while (n && !atomic_compare_exchange_weak(&c->page->readers, &n, n - 1))
			;
	}
	if (c->slot) {
		shim_mutex_lock(&slot_mu);
		c->slot->busy = false;
		c->slot->used = ++slot_tick;
		shim_mutex_unlock(&slot_mu);
	} else {
		page_unmap(c->page, c->fd, c->name);
	}
	memset(c, 0, sizeof *c);
	c->fd = -1;
	errno = saved;
}

/* After fork, in the child: the parent's page state is not ours. */
void coh_forget(struct coh_state *c)
{
	if (c->page && !c->slot) {
		munmap(c->page, COH_PAGE_SIZE);
		real_close(shim_priv_real(c->fd));
	}
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

/* Exit or exec: give every idle page back (the last user unlinks it). */
void coh_pages_release(void)
{
	shim_mutex_lock(&slot_mu);
	for (int i = 0; i < PAGE_SLOTS; i++) {
		struct page_slot *sl = &slots[i];
		if (sl->page && !sl->busy) {
			page_unmap(sl->page, sl->fd, sl->name);
			sl->page = NULL;
		}
	}
	shim_mutex_unlock(&slot_mu);
}

/* In a forked child: the slots' descriptors are copies sharing the parent's
 * open file descriptions, so their locks are the parent's; close our copies
 * without the last-user check (which our own lock would always pass). */
void coh_pages_forget(void)
{
	shim_mutex_init(&slot_mu);
	for (int i = 0; i < PAGE_SLOTS; i++) {
		struct page_slot *sl = &slots[i];
		if (sl->page) {
			munmap(sl->page, COH_PAGE_SIZE);
			real_close(shim_priv_real(sl->fd));
			sl->page = NULL;
		}
	}
}

/* A reader announces itself before it reads any metadata, like a qemu
 * reader (never conflicting with another reader or a shim writer). */
void coh_reader_register(struct coh_state *c, int fd)
{
	lock_byte(fd, F_OFD_SETLK, F_RDLCK, SHIM_READER_BYTE);
	lock_byte(fd, F_OFD_SETLK, F_RDLCK, QEMU_SHARE_BASE + 1);
	if (c->page) {
		atomic_fetch_add(&c->page->readers, 1);
		c->counted = true;
		c->seen = atomic_load(&c->page->gen);
	}
	c->next_full = coarse_now() + recheck_ns();
}

/* Before a reader's operation: 1 if its metadata must be re-read, 0 if
 * current, -EBUSY if qemu writes the image. */
int coh_reader_check(struct coh_state *c, const char *shown, int fd, const struct shim_stamp *sp)
{
	bool changed = false;
	if (likely(c->page != NULL)) {
		uint64_t g = atomic_load_explicit(&c->page->gen, memory_order_acquire);
		if (g != c->seen) {
			c->seen = g;
			changed = true;
		}
		int64_t now = coarse_now();
		if (likely(now < c->next_full))
			return changed;
		c->next_full = now + recheck_ns();
	}
	int r = coh_check_no_writer(shown, fd);
	if (r < 0)
		return r;
	return changed || coh_stamp_changed(fd, sp);
}

/* Does another process read this image (so a writer must publish)? */
bool coh_readers_elsewhere(struct coh_state *c, int fd)
{
	if (!c->page)
		return held_elsewhere(fd, SHIM_READER_BYTE);
	uint64_t n = atomic_load(&c->page->readers);
	if (likely(n == 0))
		return false;
	int64_t now = coarse_now();
	if (now < c->next_full)
		return true;
	c->next_full = now + recheck_ns();
	if (held_elsewhere(fd, SHIM_READER_BYTE))
		return true;
	/* Only readers killed before they could sign off: forget them, unless
	 * a new one registered meanwhile (it locks before it counts). */
	atomic_compare_exchange_strong(&c->page->readers, &n, 0);
	return false;
}

/* A writer made its changes visible in the host file. */
void coh_published(struct coh_state *c)
{
	if (c->page)
		atomic_fetch_add_explicit(&c->page->gen, 1, memory_order_release);
}
