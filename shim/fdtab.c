/*
 * fdtab.c - fd -> open-file-description entry, private fds, exec adoption.
 *
 * shim_fdtab[fd] is NULL for every fd the shim does not care about (the
 * one-load fast path of every fd wrapper), SHIM_PRIVATE for the shim's own
 * descriptors (translator and backing files), or a refcounted shim_ofd
 * shared by all dups of one open of an image in this process.
 * Private fds live at high numbers, CLOEXEC.  The program may close or
 * dup2 over them: close is pretended, dup2 first moves ours elsewhere and
 * records the move in a small remap table that the sysio functions consult.
 * Invariants: the table lock is never held while calling into images.c
 * except through fd_put (which may drop an image).
 */
#include "shim.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct shim_ofd *_Atomic shim_fdtab[SHIM_FD_MAX];
atomic_int shim_nimages_ever;
static SHIM_HOT atomic_int nimage_fds;
static struct shim_mutex tab_mu = SHIM_MUTEX_INIT;

/* Held inside a critical section (images.c): a signal handler using an
 * image fd meanwhile would deadlock on the table lock. */
void fd_lock(void)
{
	shim_crit_enter();
	shim_mutex_lock(&tab_mu);
}
void fd_unlock(void)
{
	shim_mutex_unlock(&tab_mu);
	shim_crit_leave();
}
void fd_atfork_child(void)
{
	shim_mutex_init(&tab_mu);
}

struct shim_ofd *ofd_new(struct shim_image *img, int accmode, int eflags)
{
	struct shim_ofd *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->img = img;
	o->accmode = accmode;
	o->eflags = eflags;
	atomic_init(&o->refs, 0);
	return o;
}

struct shim_ofd *fd_get_any(int fd)
{
	/* No entry: no lock (fcntl of any fd comes here; and before the first
	 * image there is no fork handler that would reset the lock) */
	if ((unsigned)fd >= SHIM_FD_MAX || !atomic_load(&shim_fdtab[fd]))
		return NULL;
	fd_lock();
	struct shim_ofd *o = atomic_load(&shim_fdtab[fd]);
	if (o == SHIM_PRIVATE)
		o = NULL;
	if (o)
		atomic_fetch_add(&o->refs, 1);
	fd_unlock();
	return o;
}

/* I/O wrappers get no O_PATH entry: the kernel answers EBADF for them,
 * as for any O_PATH descriptor, and no byte is read or written. */
struct shim_ofd *fd_get(int fd)
{
	struct shim_ofd *o = fd_get_any(fd);
	if (o && o->opath) {
		fd_put(o);
		return NULL;
	}
	return o;
}

static void close_private(int handle)
{
	int real = shim_priv_real(handle);
	fd_private_closed(handle);
	real_close(real);
}

void fd_put(struct shim_ofd *o)
{
	if (atomic_fetch_sub(&o->refs, 1) == 1) {
		int h = atomic_load(&o->lockh);
		if (h > 0)
			close_private(h - 1);
		img_unref(o->img);
		free(o);
	}
}

/* The private descriptor that holds o's record locks, opened at the first
 * lock request through the program's fd, with the program's access mode
 * (so F_WRLCK on a read-only open still fails with EBADF, as on a file).
 * Shared by dups and, across fork, by the child, like the program's own
 * open file description; closed with the last reference to o. */
int ofd_lockfd(int fd, struct shim_ofd *o)
{
	int h = atomic_load(&o->lockh);
	if (h > 0)
		return shim_priv_real(h - 1);
	char p[40];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int nfd = real_open(p, (o->accmode == O_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY, 0);
	if (nfd < 0)
		return -errno;
	nfd = fd_make_private(nfd);
	int expect = 0;
	if (!atomic_compare_exchange_strong(&o->lockh, &expect, nfd + 1)) {
		close_private(nfd); /* another thread's won */
		return shim_priv_real(expect - 1);
	}
	return shim_priv_real(nfd);
}

bool fd_is_private(int fd)
{
	return (unsigned)fd < SHIM_FD_MAX && atomic_load(&shim_fdtab[fd]) == SHIM_PRIVATE;
}

bool fd_any_images(void)
{
	return atomic_load(&nimage_fds) > 0;
}

/* Replace the entry of fd (its previous file was closed by the kernel);
 * with only, just if the entry still is only. */
static void tab_set_if(int fd, struct shim_ofd *o, struct shim_ofd *only)
{
	struct shim_ofd *old;
	fd_lock();
	old = atomic_load(&shim_fdtab[fd]);
	if (old == SHIM_PRIVATE || (only && old != only)) { /* private: evacuated before */
		/* A private fd took the number first and parked the table's
		 * reference to only (fd_make_private): drop it here.  Any
		 * closer of only may drop any parked reference; each is one
		 * table reference, owned by nobody else. */
		bool put = only && !o && only->parked > 0;
		if (put)
			only->parked--;
		fd_unlock();
		if (put)
			fd_put(only);
		return;
	}
	if (o)
		atomic_fetch_add(&o->refs, 1), atomic_fetch_add(&nimage_fds, 1);
	if (old)
		atomic_fetch_sub(&nimage_fds, 1);
	atomic_store(&shim_fdtab[fd], o);
	fd_unlock();
	if (old)
		fd_put(old);
}

static void tab_set(int fd, struct shim_ofd *o)
{
	tab_set_if(fd, o, NULL);
}

/*
 * Issue 24, "safe by construction": no descriptor a program holds may write
 * an image's host file in the kernel.  A call that gets past the wrappers (a
 * raw system call, glibc's internal calls, io_uring, a static child, a
 * plugin bound with RTLD_DEEPBIND) then gets EBADF and finds nothing it can
 * damage.  So the program's descriptor is replaced by a read-only open file
 * description of the same file (reopened through /proc/self/fd, which gives
 * the same inode, and moved onto the same number with dup3, keeping
 * FD_CLOEXEC and the offset, the position that dups, forked children and
 * exec'd programs share).  The access mode the program asked for lives in
 * the table entry (shim_ofd.accmode); writes reach the file only through the
 * translator's private descriptors.  Raw reads still see the host bytes: a
 * descriptor that fails reads too (O_PATH) keeps no offset (ARCHITECTURE.md).
 * Returns 0 or -errno (fd unchanged).
 */
/* fd's file status flags fl, descriptor flags fdfl and offset pos are
 * known: reopen it read-only onto the same number. */
static int seal(int fd, int fl, int fdfl, off64_t pos)
{
	char p[40];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int keep = fl & (O_NONBLOCK | O_NOATIME | O_SYNC | O_DSYNC);
	int ro = real_open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | keep, 0);
	if (ro < 0 && (keep & O_NOATIME)) /* O_NOATIME needs ownership */
		ro = real_open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | (keep & ~O_NOATIME), 0);
	if (ro < 0)
		return -errno;
	int r = 0;
	if ((pos > 0 && real_lseek64(ro, pos, SEEK_SET) != pos) ||
	    real_dup3(ro, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
		r = -(errno ? errno : EIO);
	real_close(ro);
	return r;
}

static bool sealed(int fl)
{
	return (fl & O_PATH) || (fl & O_ACCMODE) == O_RDONLY;
}

int fd_seal(int fd)
{
	int fl = real_fcntl(fd, F_GETFL, NULL);
	if (fl < 0)
		return -errno;
	if (sealed(fl))
		return 0;
	int fdfl = real_fcntl(fd, F_GETFD, NULL);
	if (fdfl < 0)
		return -errno;
	return seal(fd, fl, fdfl, real_lseek64(fd, 0, SEEK_CUR));
}

/* seal_r: what sealing fd gave (fd_seal). */
static int attach(int fd, struct shim_ofd *o, int seal_r)
{
	if (seal_r < 0) {
		shim_msg("%s: refusing the descriptor: it cannot be made read-only to the kernel (%s)",
			 img_path(o->img), strerror(-seal_r));
		return seal_r;
	}
	atomic_fetch_add(&shim_nimages_ever, 1);
	tab_set(fd, o);
	return 0;
}

int fd_attach(int fd, struct shim_ofd *o)
{
	if ((unsigned)fd >= SHIM_FD_MAX)
		return -EMFILE;
	return attach(fd, o, fd_seal(fd));
}

/* An fd this process has just opened with the kernel flags fl (offset 0):
 * sealed without asking the kernel what it already said.  On failure o
 * (and its image reference) and fd are disposed of.  0 or -errno. */
int fd_attach_opened(int fd, struct shim_ofd *o, int fl)
{
	int r = (unsigned)fd >= SHIM_FD_MAX ? -EMFILE
		: attach(fd, o, sealed(fl) ? 0 : seal(fd, fl, (fl & O_CLOEXEC) ? FD_CLOEXEC : 0, 0));
	if (r < 0) {
		img_unref(o->img);
		free(o);
		real_close(fd);
	}
	return r;
}

void fd_forget(int fd)
{
	if ((unsigned)fd < SHIM_FD_MAX && atomic_load(&shim_fdtab[fd]))
		tab_set(fd, NULL);
}

/*
 * fd, whose entry was o (held by the caller), was closed by the kernel: drop
 * the entry, unless another thread's open already got the number back and
 * set its own entry, which must stay (else its I/O reaches the host file raw).
 */
void fd_forget_closed(int fd, struct shim_ofd *o)
{
	if ((unsigned)fd < SHIM_FD_MAX)
		tab_set_if(fd, NULL, o);
}

int fd_dup_entry(int oldfd, int newfd)
{
	struct shim_ofd *o = fd_get_any(oldfd);
	if ((unsigned)newfd >= SHIM_FD_MAX) {
		if (o)
			fd_put(o);
		return o ? -EMFILE : 0;
	}
	tab_set(newfd, o);
	if (o)
		fd_put(o);
	return 0;
}

void fd_foreach(void (*cb)(int fd, struct shim_ofd *o, void *arg), void *arg)
{
	if (!fd_any_images())
		return;
	fd_lock();
	for (int fd = 0; fd < SHIM_FD_MAX; fd++) {
		struct shim_ofd *o = atomic_load(&shim_fdtab[fd]);
		if (o && o != SHIM_PRIVATE)
			cb(fd, o, arg);
	}
	fd_unlock();
}

/* ---- private descriptors */

/* Where private fds go: 800, or 3/4 of a lower RLIMIT_NOFILE.  Read once
 * (a getrlimit per image open otherwise); private_dup asks again when the
 * program lowered its limit since. */
static atomic_int base_cache;

static int private_base(void)
{
	int b = atomic_load_explicit(&base_cache, memory_order_relaxed);
	if (b)
		return b;
	struct rlimit rl;
	long base = 800;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 1024)
		base = (long)rl.rlim_cur * 3 / 4;
	atomic_store_explicit(&base_cache, (int)base, memory_order_relaxed);
	return (int)base;
}

/* F_DUPFD_CLOEXEC of fd at or above the private base. */
static int private_dup(int fd)
{
	int nfd = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(long)private_base());
	if (nfd < 0 && errno == EINVAL) { /* the limit went down: ask again */
		atomic_store_explicit(&base_cache, 0, memory_order_relaxed);
		nfd = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(long)private_base());
	}
	return nfd;
}

/* Moves of private fds: handle (the number the backend knows) -> real fd. */
static struct {
	int handle, real;
} remap[64];
static atomic_int nremap;

/* Is n the handle of a moved private fd (so a new private fd must not
 * take that number)?  Table lock held. */
static bool is_handle(int n)
{
	for (int i = 0; i < atomic_load(&nremap); i++)
		if (remap[i].handle == n)
			return true;
	return false;
}

int fd_make_private(int fd)
{
	int nfd = private_dup(fd);
	if (nfd >= 0 && nfd < SHIM_FD_MAX) {
		real_close(fd);
		fd = nfd;
	} else {
		if (nfd >= 0)
			real_close(nfd);
		real_fcntl(fd, F_SETFD, (void *)(long)FD_CLOEXEC);
		if ((unsigned)fd >= SHIM_FD_MAX)
			return fd; /* cannot protect it; still usable */
	}
	fd_lock();
	while (atomic_load(&nremap) && is_handle(fd)) {
		int nfd2 = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(long)(fd + 1));
		if (nfd2 < 0 || nfd2 >= SHIM_FD_MAX) {
			if (nfd2 >= 0)
				real_close(nfd2);
			break;
		}
		real_close(fd);
		fd = nfd2;
	}
	/* An image entry here belongs to a close in flight (the kernel freed
	 * the number, the closer has not dropped the entry yet).  Dropping
	 * its reference here could release that image under the caller's
	 * image lock, so the closer does it (tab_set_if). */
	struct shim_ofd *old = atomic_load(&shim_fdtab[fd]);
	if (old && old != SHIM_PRIVATE) {
		old->parked++;
		atomic_fetch_sub(&nimage_fds, 1);
	}
	atomic_store(&shim_fdtab[fd], SHIM_PRIVATE);
	fd_unlock();
	return fd;
}

int shim_priv_real(int handle)
{
	if (likely(atomic_load_explicit(&nremap, memory_order_relaxed) == 0))
		return handle;
	int r = handle;
	fd_lock();
	for (int i = 0; i < atomic_load(&nremap); i++)
		if (remap[i].handle == handle)
			r = remap[i].real;
	fd_unlock();
	return r;
}

void fd_private_closed(int handle)
{
	fd_lock();
	int n = atomic_load(&nremap);
	for (int i = 0; i < n; i++)
		if (remap[i].handle == handle) {
			int real = remap[i].real;
			if ((unsigned)real < SHIM_FD_MAX)
				atomic_store(&shim_fdtab[real], NULL);
			remap[i] = remap[n - 1];
			atomic_store(&nremap, n - 1);
			fd_unlock();
			return;
		}
	if ((unsigned)handle < SHIM_FD_MAX && atomic_load(&shim_fdtab[handle]) == SHIM_PRIVATE)
		atomic_store(&shim_fdtab[handle], NULL);
	fd_unlock();
}

/*
 * The program is about to make `fd` one of its own (dup2/dup3 target) while
 * the shim has a private descriptor there: move ours away first.
 * Returns 0 or -errno.
 */
int fd_evacuate(int fd)
{
	if (!fd_is_private(fd))
		return 0;
	int nfd = private_dup(fd);
	if (nfd < 0)
		return -errno;
	fd_lock();
	int i, n = atomic_load(&nremap), handle = fd;
	for (i = 0; i < n; i++)
		if (remap[i].real == fd)
			break;
	if (i == n) {
		if (n == (int)(sizeof remap / sizeof remap[0])) {
			fd_unlock();
			real_close(nfd);
			return -EBUSY;
		}
		remap[i].handle = handle;
		atomic_store(&nremap, n + 1);
	}
	remap[i].real = nfd;
	if ((unsigned)nfd < SHIM_FD_MAX)
		atomic_store(&shim_fdtab[nfd], SHIM_PRIVATE);
	atomic_store(&shim_fdtab[fd], NULL);
	fd_unlock();
	/* The program's dup2 now closes the old number for us. */
	return 0;
}

/* ---- adoption of inherited image fds (constructor) */

/*
 * QCOWSHIM_FDS=[EP]PID:FD,EFLAGS,POS,PART,BASE,LEN,ACC,DEV,INO;... from the
 * exec/spawn wrappers (wrap_proc.c) of a parent under the shim: every image
 * fd this program inherits (none: "E123:"), by inode, with the access mode
 * the program asked for (the kernel's is O_RDONLY, fd_seal), the emulated
 * flags, position and partition window.  Valid only in the program it was
 * made for: E, this pid (set by our own image before exec); P, the parent's
 * pid (posix_spawn, system, popen).  With a valid announcement only the fds
 * it names are looked at, each checked to be still the same file (dev,
 * ino), then, if there were any, the others by inode (a hard link of an
 * announced image); without one (the first process under the shim, or a
 * parent that exec'd without the wrappers), or with one ending in "*",
 * every open fd is.
 */
static SHIM_HOT char *handoff; /* the list after "PID:", or NULL */
extern char **environ;

/* One fd announced by the exec/spawn wrappers. */
struct handoff {
	int fd, eflags, acc;
	long long pos;
	unsigned part;
	unsigned long long base, len, dev, ino;
};

/* The entry at s: its length with the ';', or 0 if it is not one this shim
 * writes. */
static int handoff_entry(const char *s, struct handoff *h)
{
	int n = 0;
	if (sscanf(s, "%d,%d,%lld,%u,%llu,%llu,%d,%llu,%llu%n", &h->fd, &h->eflags, &h->pos,
		   &h->part, &h->base, &h->len, &h->acc, &h->dev, &h->ino, &n) != 9 ||
	    !n || s[n] != ';')
		return 0;
	return n + 1;
}

static bool handoff_find(int fd, struct handoff *h)
{
	int n;
	for (const char *s = handoff; s && *s; s += n)
		if (!(n = handoff_entry(s, h)) || h->fd == fd)
			return n != 0;
	return false;
}

/*
 * An fd that arrived without an open here (inherited; or received, when
 * !inherited): an image entry if img_file_is_image says so, or if the
 * parent announced it with this very inode.  Sealed like every image fd
 * (fd_attach): a descriptor received from a process outside the shim may
 * be writable.  by_inode_only: the second pass (names decided already).
 */
static void adopt_one(int fd, bool inherited, bool by_inode_only)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	struct handoff h;
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	path[n > 0 ? n : 0] = 0;
	img_strip_deleted(path);
	int fl = real_fcntl(fd, F_GETFL, NULL);
	if (fl < 0)
		return;
	int acc = fl & O_ACCMODE;
	bool announced = inherited && handoff_find(fd, &h) && h.dev == (unsigned long long)st.st_dev &&
			 h.ino == (unsigned long long)st.st_ino;
	if (announced)
		acc = h.acc & O_ACCMODE;
	bool may_create = acc != O_RDONLY && !(fl & O_PATH);
	bool pending = !shim_probe_magic(fd); /* (reads an O_PATH fd through /proc) */
	if (!announced) {
		if (by_inode_only && !img_known(st.st_dev, st.st_ino, NULL))
			return;
		if (!img_file_is_image(fd, &st, path[0] == '/' ? path : NULL, may_create))
			return;
	} else if (pending && (st.st_size != 0 || !may_create)) {
		return; /* no longer an image (rewritten meanwhile) */
	}
	int err = 0;
	struct shim_image *img = img_register(fd, &st, path[0] ? path : link, pending, &err);
	if (!img)
		return;
	struct shim_ofd *o = ofd_new(img, acc, 0);
	if (!o) {
		img_unref(img);
		return;
	}
	o->opath = (fl & O_PATH) != 0; /* names the image, no I/O */
	o->received = !inherited && acc == O_RDONLY;
	if (announced) {
		o->eflags = h.eflags & (O_APPEND | O_DIRECT);
		if (h.pos >= 0) {
			o->upos = true;
			o->pos = (uint64_t)h.pos;
		}
		o->part = h.part;
		o->base = h.base;
		o->len = h.len;
	}
	if (fd_attach(fd, o) < 0) { /* the ofd owns the image reference once attached */
		/* Refused (fd_attach said so): left open, the descriptor would
		 * reach the host bytes writable and unseen. */
		free(o);
		img_unref(img);
		real_close(fd);
		return;
	}
	shim_debug("%s: %s image on fd %d", path, inherited ? "inherited" : "received", fd);
}

void fd_adopt_received(int fd)
{
	if ((unsigned)fd < SHIM_FD_MAX && !shim_fd_special(fd))
		adopt_one(fd, false, false);
}

/* Every open fd, in two passes: a hard link (or any name outside the globs)
 * of an image is decided by its inode, which the first pass may only then
 * have registered from another fd of the same file.  by_inode_only: the
 * second pass alone (after the announced fds). */
static void adopt_all(bool by_inode_only)
{
	for (int pass = by_inode_only; pass < 2; pass++) {
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			return;
		int dfd = dirfd(d);
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			int fd = atoi(de->d_name);
			if (fd != dfd && fd < SHIM_FD_MAX && !shim_fd_special(fd))
				adopt_one(fd, true, pass == 1);
		}
		closedir(d);
		if (!fd_any_images())
			return; /* nothing an inode could lead to */
	}
}

/* The announced fds that are still the files announced; false if the list
 * is not one this shim writes, or ends in "*" (fds the parent could not
 * list), then every fd is looked at. */
static bool adopt_announced(void)
{
	struct handoff h;
	int n;
	const char *s;
	for (s = handoff; *s; s += n)
		if (!(n = handoff_entry(s, &h)))
			return false;
	for (s = handoff; *s; s += n) {
		struct stat st;
		n = handoff_entry(s, &h);
		if ((unsigned)h.fd < SHIM_FD_MAX && real_fstat(h.fd, &st) == 0 &&
		    (unsigned long long)st.st_dev == h.dev && (unsigned long long)st.st_ino == h.ino)
			adopt_one(h.fd, true, false);
	}
	return true;
}

void fd_adopt_inherited(void)
{
	char *e = NULL;
	bool valid = false;
	for (char **p = environ; *p && !e; p++) /* getenv, without a string constant */
		if ((*p)[0] == 'Q' && (*p)[1] == 'C' && !strncmp(*p, "QCOWSHIM_FDS=", 13))
			e = *p + 13;
	if (e && (*e == 'E' || *e == 'P')) {
		char *end;
		long pid = strtol(e + 1, &end, 10);
		valid = *end == ':' && pid == (*e == 'E' ? getpid() : getppid());
		if (valid && end[1])
			handoff = strdup(end + 1);
		valid = valid && (!end[1] || handoff);
	}
	if (e) /* unsetenv, without its lock's page: nothing else runs yet */
		for (char **p = environ; *p; p++)
			if (!strncmp(*p, "QCOWSHIM_FDS=", 13)) {
				char **q = p;
				do
					q[0] = q[1];
				while (*q++);
				p--;
			}
	if (valid && !handoff)
		return; /* the parent announced none: no system call here */
	if (!policy_enabled()) /* a qemu tool: its fds are its own business */
		return;
	if (!valid || !adopt_announced())
		adopt_all(false);
	else if (fd_any_images())
		adopt_all(true); /* other names of the announced images */
}
