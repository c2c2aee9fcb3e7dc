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
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;

void fd_lock(void)
{
	pthread_mutex_lock(&tab_mu);
}
void fd_unlock(void)
{
	pthread_mutex_unlock(&tab_mu);
}
void fd_atfork_child(void)
{
	pthread_mutex_init(&tab_mu, NULL);
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
	pthread_mutex_lock(&tab_mu);
	struct shim_ofd *o = atomic_load(&shim_fdtab[fd]);
	if (o == SHIM_PRIVATE)
		o = NULL;
	if (o)
		atomic_fetch_add(&o->refs, 1);
	pthread_mutex_unlock(&tab_mu);
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

void fd_put(struct shim_ofd *o)
{
	if (atomic_fetch_sub(&o->refs, 1) == 1) {
		img_unref(o->img);
		free(o);
	}
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
	pthread_mutex_lock(&tab_mu);
	old = atomic_load(&shim_fdtab[fd]);
	if (old == SHIM_PRIVATE || (only && old != only)) { /* private: evacuated before */
		/* A private fd took the number first and parked the table's
		 * reference to only (fd_make_private): drop it here.  Any
		 * closer of only may drop any parked reference; each is one
		 * table reference, owned by nobody else. */
		bool put = only && !o && only->parked > 0;
		if (put)
			only->parked--;
		pthread_mutex_unlock(&tab_mu);
		if (put)
			fd_put(only);
		return;
	}
	if (o)
		atomic_fetch_add(&o->refs, 1), atomic_fetch_add(&nimage_fds, 1);
	if (old)
		atomic_fetch_sub(&nimage_fds, 1);
	atomic_store(&shim_fdtab[fd], o);
	pthread_mutex_unlock(&tab_mu);
	if (old)
		fd_put(old);
}

static void tab_set(int fd, struct shim_ofd *o)
{
	tab_set_if(fd, o, NULL);
}

int fd_attach(int fd, struct shim_ofd *o)
{
	if ((unsigned)fd >= SHIM_FD_MAX)
		return -EMFILE;
	atomic_fetch_add(&shim_nimages_ever, 1);
	tab_set(fd, o);
	return 0;
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
	pthread_mutex_lock(&tab_mu);
	for (int fd = 0; fd < SHIM_FD_MAX; fd++) {
		struct shim_ofd *o = atomic_load(&shim_fdtab[fd]);
		if (o && o != SHIM_PRIVATE)
			cb(fd, o, arg);
	}
	pthread_mutex_unlock(&tab_mu);
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
	pthread_mutex_lock(&tab_mu);
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
	pthread_mutex_unlock(&tab_mu);
	return fd;
}

int shim_priv_real(int handle)
{
	if (likely(atomic_load_explicit(&nremap, memory_order_relaxed) == 0))
		return handle;
	int r = handle;
	pthread_mutex_lock(&tab_mu);
	for (int i = 0; i < atomic_load(&nremap); i++)
		if (remap[i].handle == handle)
			r = remap[i].real;
	pthread_mutex_unlock(&tab_mu);
	return r;
}

void fd_private_closed(int handle)
{
	pthread_mutex_lock(&tab_mu);
	int n = atomic_load(&nremap);
	for (int i = 0; i < n; i++)
		if (remap[i].handle == handle) {
			int real = remap[i].real;
			if ((unsigned)real < SHIM_FD_MAX)
				atomic_store(&shim_fdtab[real], NULL);
			remap[i] = remap[n - 1];
			atomic_store(&nremap, n - 1);
			pthread_mutex_unlock(&tab_mu);
			return;
		}
	if ((unsigned)handle < SHIM_FD_MAX && atomic_load(&shim_fdtab[handle]) == SHIM_PRIVATE)
		atomic_store(&shim_fdtab[handle], NULL);
	pthread_mutex_unlock(&tab_mu);
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
	pthread_mutex_lock(&tab_mu);
	int i, n = atomic_load(&nremap), handle = fd;
	for (i = 0; i < n; i++)
		if (remap[i].real == fd)
			break;
	if (i == n) {
		if (n == (int)(sizeof remap / sizeof remap[0])) {
			pthread_mutex_unlock(&tab_mu);
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
	pthread_mutex_unlock(&tab_mu);
	/* The program's dup2 now closes the old number for us. */
	return 0;
}

/* ---- adoption of inherited image fds (constructor) */

/*
 * QCOWSHIM_FDS=[EP]PID:FD,EFLAGS,POS,PART,BASE,LEN,DEV,INO;... from the
 * exec/spawn wrappers (wrap_proc.c) of a parent under the shim: every image
 * fd this program inherits (none: "E123:").  Valid only in the program it
 * was made for: E, this pid (set by our own image before exec); P, the
 * parent's pid (posix_spawn, system, popen).  With a valid announcement
 * only the fds it names are looked at, each checked to be still the same
 * file (dev, ino); without one (the first process under the shim, or a
 * parent that exec'd without the wrappers), or with one ending in "*",
 * every open fd is.
 */
static SHIM_HOT char *handoff; /* the list after "PID:", or NULL */
extern char **environ;

/* o gets the emulated flags, position and partition window of fd. */
static void handoff_flags(int fd, struct shim_ofd *o)
{
	for (char *s = handoff; s && *s;) {
		int f, fl;
		long long p;
		unsigned part;
		unsigned long long base, len;
		if (sscanf(s, "%d,%d,%lld,%u,%llu,%llu", &f, &fl, &p, &part, &base, &len) == 6 &&
		    f == fd) {
			o->eflags = fl & (O_APPEND | O_DIRECT);
			if (p >= 0) {
				o->upos = true;
				o->pos = (uint64_t)p;
			}
			o->part = part;
			o->base = base;
			o->len = len;
			return;
		}
		s = strchr(s, ';');
		s = s ? s + 1 : NULL;
	}
}

/* An fd that arrived without an open here (inherited; or received, when
 * !inherited): an image entry if its file is an image by name or inode. */
static void adopt_one(int fd, bool inherited)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return;
	path[n] = 0;
	if (path[0] != '/' || real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (!policy_match(path) && !img_known(st.st_dev, st.st_ino, NULL))
		return;
	int fl = real_fcntl(fd, F_GETFL, NULL);
	if (fl < 0)
		return;
	int acc = fl & O_ACCMODE;
	bool pending = false;
	if (!shim_probe_magic(fd)) { /* (reads an O_PATH fd through /proc) */
		if (st.st_size != 0 || acc == O_RDONLY || (fl & O_PATH))
			return;
		pending = true;
	}
	int err = 0;
	struct shim_image *img = img_register(fd, path, pending, &err);
	if (!img)
		return;
	struct shim_ofd *o = ofd_new(img, acc, 0);
	if (!o) {
		img_unref(img);
		return;
	}
	o->opath = (fl & O_PATH) != 0; /* names the image, no I/O */
	if (inherited)
		handoff_flags(fd, o);
	fd_attach(fd, o); /* the ofd owns the image reference now */
	shim_debug("%s: %s image on fd %d", path, inherited ? "inherited" : "received", fd);
}

void fd_adopt_received(int fd)
{
	if ((unsigned)fd < SHIM_FD_MAX && !shim_fd_special(fd))
		adopt_one(fd, false);
}

static void adopt_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int dfd = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		int fd = atoi(de->d_name);
		if (fd != dfd && fd < SHIM_FD_MAX)
			adopt_one(fd, true);
	}
	closedir(d);
}

/* One announced entry at s: its fd, dev and ino; the length (with the
 * ';'), or 0 if it is not an entry this shim writes. */
static int announced_entry(const char *s, int *fd, unsigned long long *dev, unsigned long long *ino)
{
	int n = 0, fl;
	long long pos;
	unsigned part;
	unsigned long long base, len;
	if (sscanf(s, "%d,%d,%lld,%u,%llu,%llu,%llu,%llu%n", fd, &fl, &pos, &part, &base, &len, dev,
		   ino, &n) != 8 ||
	    !n || s[n] != ';')
		return 0;
	return n + 1;
}

/* The announced fds that are still the files announced; false if the
 * list is not one this shim writes, or ends in "*" (posix_spawn with file
 * actions: fds the parent could not list), then every fd is looked at. */
static bool adopt_announced(void)
{
	int fd, n;
	unsigned long long dev, ino;
	const char *s;
	for (s = handoff; *s; s += n)
		if (!(n = announced_entry(s, &fd, &dev, &ino)))
			return false;
	for (s = handoff; *s; s += n) {
		struct stat st;
		n = announced_entry(s, &fd, &dev, &ino);
		if ((unsigned)fd < SHIM_FD_MAX && real_fstat(fd, &st) == 0 &&
		    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
			adopt_one(fd, true);
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
		adopt_all();
}
