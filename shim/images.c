/*
 * images.c - per-process registry: one translator (struct qcow) per image
 * (dev, ino), opened lazily, closed at every fork/exec/exit.
 *
 * The multi-process protocol (locks, stamps, publishing) is coherence.c's.
 * Everything here runs with img->mu held unless stated.
 */
#include "shim.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


struct shim_image {
	struct shim_image *next;
	dev_t dev;
	ino_t ino;
	int nref; /* ofds + temporary users; under reg_mu */
	struct shim_mutex mu;
	/* The names cost system calls (readlink, stat, getcwd), so they are
	 * worked out when first needed, which most opens never are: */
	/* absolute, symlinks resolved, or NULL (img_host_path): set once, by
	 * whichever thread needs it first, under reg_mu or mu (so atomic) */
	_Atomic(char *) path;
	char *shown; /* as the program first named it, for messages */
	char *named; /* absolute, symlinks kept, or NULL: relative backing names
		      * resolve here (img_named) */
	atomic_int hint_fd; /* the program's fd it was last registered through */
	/* The last st_blocks count (img_blocks): a program's fstat would map
	 * every L2 entry of the image each time (mcopy asks twice per run). */
	struct {
		bool ok; /* cleared by every change to the mapping or translator */
		uint64_t off, len, val;
	} blocks;
	struct stat host_st; /* open_host's fstat of trfd, for open_settled */
	bool host_st_valid;
	struct qcow *q;
	int trfd; /* private handle owned by q's backend; -1 when q is NULL */
	bool rw, writer, pending, opening, unpublished;
	/* This process was made without the fork handlers (a raw clone or
	 * fork system call) while its parent was writing: the parent still
	 * holds the image and its translator state (img_forked_child). */
	bool parent_writes;
	struct shim_stamp stamp;
	struct coh_state coh;
	char why[512]; /* first log line of the current open */
};

static struct shim_image *images;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- sysio: the real libc, with private-fd remapping */
static ssize_t sys_pread(int fd, void *b, size_t n, off_t o)
{
	ssize_t r = real_pread64(shim_priv_real(fd), b, n, o);
	return r;
}
static ssize_t sys_pwrite(int fd, const void *b, size_t n, off_t o)
{
	return real_pwrite64(shim_priv_real(fd), b, n, o);
}
static ssize_t sys_pwritev2(int fd, const struct iovec *v, int c, off_t o, int f)
{
	return real_pwritev2(shim_priv_real(fd), v, c, o, f);
}
static int sys_fdatasync(int fd)
{
	return real_fdatasync(shim_priv_real(fd));
}
static int sys_fstat(int fd, struct stat *st)
{
	return real_fstat(shim_priv_real(fd), st);
}
static int sys_ftruncate(int fd, off_t len)
{
	return real_ftruncate64(shim_priv_real(fd), len);
}
static int sys_fallocate(int fd, int mode, off_t o, off_t n)
{
	return real_fallocate64(shim_priv_real(fd), mode, o, n);
}
static int sys_close(int fd)
{
	int real = shim_priv_real(fd);
	fd_private_closed(fd);
	return real_close(real);
}
const struct qcow_sysio shim_sysio = {
	.pread = sys_pread,
	.pwrite = sys_pwrite,
	.fdatasync = sys_fdatasync,
	.fstat = sys_fstat,
	.ftruncate = sys_ftruncate,
	.fallocate = sys_fallocate,
	.close = sys_close,
	.pwritev2 = sys_pwritev2,
};

bool shim_probe_magic(int fd)
{
	unsigned char m[4];
	int saved = errno;
	ssize_t n = real_pread64(fd, m, 4, 0);
	if (n < 0 && errno == EBADF) { /* write-only fd: look through another */
		char p[64];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		int rfd = real_open(p, O_RDONLY | O_CLOEXEC, 0);
		if (rfd >= 0) {
			n = real_pread64(rfd, m, 4, 0);
			real_close(rfd);
		}
	}
	errno = saved;
	return n == 4 && memcmp(m, "QFI\xfb", 4) == 0;
}

/*
 * The one predicate (issue 24): is the regular file behind fd (st: its
 * fstat) an image?  The inode is the authority: an image this process has
 * registered is one whatever the name it arrives by (hard link, bind mount,
 * unlinked, renamed).  Otherwise the name (glob; name may be NULL) and the
 * content decide: the QCOW2 magic, or an empty file that this open may make
 * an image (opened for writing, or created).  Keeps errno.
 */
bool img_file_is_image(int fd, const struct stat *st, const char *name, bool may_create)
{
	if (!S_ISREG(st->st_mode))
		return false;
	bool known = img_known(st->st_dev, st->st_ino, NULL);
	if (!known && !(name && policy_match(name)))
		return false;
	return shim_probe_magic(fd) || (st->st_size == 0 && may_create);
}

/* /proc/self/fd/N's target without the kernel's " (deleted)" mark: an
 * unlinked image is still matched by its last name. */
void img_strip_deleted(char *path)
{
	size_t n = strlen(path), m = sizeof " (deleted)" - 1;
	if (n > m && !strcmp(path + n - m, " (deleted)"))
		path[n - m] = 0;
}

/* ---- registry */

static const char *img_host_path(struct shim_image *img);

static void reg_lock(void)
{
	shim_crit_enter();
	pthread_mutex_lock(&reg_mu);
}
static void reg_unlock(void)
{
	pthread_mutex_unlock(&reg_mu);
	shim_crit_leave();
}

bool img_known(dev_t dev, ino_t ino, char *path)
{
	bool found = false;
	if (!shim_images_were_used()) /* none yet, and no fork handler for reg_mu */
		return false;
	reg_lock();
	for (struct shim_image *i = images; i && !found; i = i->next)
		if ((found = i->dev == dev && i->ino == ino) && path) {
			const char *p = img_host_path(i);
			snprintf(path, PATH_MAX, "%s", p ? p : i->shown);
		}
	reg_unlock();
	return found;
}

static bool special_path(const char *p)
{
	return !strncmp(p, "/dev/", 5) || !strncmp(p, "/proc/", 6) || !strncmp(p, "/sys/", 5);
}

/* The image as the program named it, made absolute but with symlinks kept:
 * qemu resolves a relative backing or data-file name against that name's
 * directory (a symlink's, not its target's).  Only when the name still
 * designates this very file (not an fd alias, not relative to some other
 * dirfd); otherwise the real path. */
static char *naming_path(const char *shown, const struct stat *st, const char *real)
{
	struct stat s2;
	char cwd[PATH_MAX], *r;
	if (!shown || special_path(shown) || real_stat(shown, &s2) < 0 ||
	    s2.st_dev != st->st_dev || s2.st_ino != st->st_ino)
		return strdup(real);
	if (shown[0] == '/')
		return strdup(shown);
	if (!getcwd(cwd, sizeof cwd))
		return strdup(real);
	return asprintf(&r, "%s/%s", cwd, shown) < 0 ? NULL : r;
}

/* The absolute path of the file behind fd, if it is still this image. */
static char *fd_path(struct shim_image *img, int fd)
{
	char link[64], path[PATH_MAX];
	struct stat st;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0 || real_fstat(fd, &st) < 0 || st.st_dev != img->dev || st.st_ino != img->ino)
		return NULL;
	path[n] = 0;
	img_strip_deleted(path);
	return strdup(path);
}

/* The first fd of the program's, from `from` on, that is img; -1: none. */
static int img_fd_from(struct shim_image *img, int from)
{
	for (int i = from; i < SHIM_FD_MAX; i++) {
		struct shim_ofd *o = atomic_load(&shim_fdtab[i]);
		if (o && o != SHIM_PRIVATE && o->img == img)
			return i;
	}
	return -1;
}

/* img->path, found through the fd it was registered by or any fd of it in
 * the table; NULL if none is open.  Under reg_mu or img->mu. */
static const char *img_host_path(struct shim_image *img)
{
	char *p = atomic_load(&img->path), *none = NULL;
	if (p)
		return p;
	p = fd_path(img, atomic_load_explicit(&img->hint_fd, memory_order_relaxed));
	for (int i = img_fd_from(img, 0); i >= 0 && !p; i = img_fd_from(img, i + 1))
		p = fd_path(img, i);
	if (p && !atomic_compare_exchange_strong(&img->path, &none, p)) {
		free(p); /* another thread's is the same file's */
		p = none;
	}
	return p;
}

/* struct qcow_opts.get_path: img->named, worked out the first time an image
 * names a backing or data file relative to itself.  (If the program changed
 * directory since it opened the image by a relative name, that name no
 * longer designates the file, and the resolved path stands in.) */
static const char *img_named(void *arg)
{
	struct shim_image *img = arg;
	if (!img->named) {
		const char *real = img_host_path(img);
		struct stat st = {.st_dev = img->dev, .st_ino = img->ino};
		img->named = real ? naming_path(img->shown, &st, real) : NULL;
	}
	return img->named;
}

struct shim_image *img_register(int fd, const struct stat *stp, const char *shown, bool pending,
				int *err)
{
	struct stat st = *stp;
	if (unlikely(shim_in_vfork)) { /* would change the parent's registry */
		shim_msg("%s: refusing to open an image in a vfork child (its memory is "
			 "its parent's); fork instead", shown ? shown : "image");
		*err = -EPERM;
		return NULL;
	}
	shim_images_used();
	reg_lock();
	for (struct shim_image *i = images; i; i = i->next)
		if (i->dev == st.st_dev && i->ino == st.st_ino) {
			i->nref++;
			atomic_store_explicit(&i->hint_fd, fd, memory_order_relaxed);
			reg_unlock();
			return i;
		}
	struct shim_image *img = calloc(1, sizeof *img);
	if (img) {
		img->dev = st.st_dev;
		img->ino = st.st_ino;
		atomic_store_explicit(&img->hint_fd, fd, memory_order_relaxed);
		if (!shown) /* (adopted fds come with their /proc name) */
			shown = img_host_path(img);
		img->shown = strdup(shown ? shown : "image");
	}
	if (!img || !img->shown) {
		reg_unlock();
		if (img)
			free(img->path), free(img);
		*err = -ENOMEM;
		return NULL;
	}
	img->nref = 1;
	img->trfd = -1;
	img->coh.fd = -1;
	img->pending = pending;
	shim_mutex_init(&img->mu);
	img->next = images;
	images = img;
	reg_unlock();
	return img;
}

static void img_release(struct shim_image *img);

void img_unref(struct shim_image *img)
{
	reg_lock();
	if (--img->nref > 0) {
		reg_unlock();
		return;
	}
	for (struct shim_image **p = &images; *p; p = &(*p)->next)
		if (*p == img) {
			*p = img->next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	shim_mutex_lock(&img->mu); /* still in reg_lock's section */
	img_release(img);
	shim_mutex_unlock(&img->mu);
	shim_crit_leave();
	pthread_mutex_destroy(&img->mu.m);
	free(img->path);
	free(img->shown);
	free(img->named);
	free(img);
}

void img_lock(struct shim_image *img)
{
	shim_crit_enter();
	shim_mutex_lock(&img->mu);
	shim_depth++;
}
void img_unlock(struct shim_image *img)
{
	shim_depth--;
	shim_mutex_unlock(&img->mu);
	shim_crit_leave();
}
const char *img_path(struct shim_image *img)
{
	return img->shown;
}
bool img_pending(struct shim_image *img)
{
	return img->pending;
}

/* ---- opening the host file and the translator */

/* This process's /proc/self/fd, opened once (a private O_PATH handle):
 * reopening an fd through it is one path component, where the full
 * "/proc/self/fd/N" walk (self, its fd directory, each instantiated anew)
 * cost more than the rest of an image open.  "self" is fixed when it is
 * opened, so a forked child drops its copy (img_forked_child). */
static atomic_int proc_fd_dir = -1;

static int open_via_fd(int fd, int flags)
{
	char n[16];
	int h = atomic_load(&proc_fd_dir);
	if (h < 0) { /* the first image open; two threads at once: one keeps its */
		int d = real_open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC, 0), none = -1;
		if (d < 0)
			return -1;
		h = fd_make_private(d);
		if (!atomic_compare_exchange_strong(&proc_fd_dir, &none, h)) {
			fd_private_closed(h);
			real_close(shim_priv_real(h));
			h = none;
		}
	}
	snprintf(n, sizeof n, "%d", fd);
	return real_openat(shim_priv_real(h), n, flags, 0);
}

/* A new open file description on the image's host file, as a private fd;
 * its fstat is kept in img->host_st (host_stat, host_size). */
static int open_host(struct shim_image *img, int flags)
{
	struct stat st;
	/* Through the fd it was opened by (no name to look up, and right even
	 * if renamed since), else by its path; the inode decides. */
	const char *path = atomic_load(&img->path);
	int fd = path ? real_open(path, flags | O_CLOEXEC | O_NOCTTY, 0)
		      : open_via_fd(atomic_load_explicit(&img->hint_fd, memory_order_relaxed),
				    flags | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 && (real_fstat(fd, &st) < 0 || st.st_dev != img->dev ||
			st.st_ino != img->ino)) {
		real_close(fd);
		fd = -1;
	}
	if (fd < 0) /* renamed or unlinked: go through one of our fds */
		for (int i = img_fd_from(img, 0); fd < 0 && i >= 0; i = img_fd_from(img, i + 1))
			if ((fd = open_via_fd(i, flags | O_CLOEXEC | O_NOCTTY)) >= 0 &&
			    real_fstat(fd, &st) < 0) {
				real_close(fd);
				fd = -1;
			}
	img->host_st_valid = fd >= 0;
	if (fd < 0)
		return -(errno ? errno : ENOENT);
	img->host_st = st;
	return fd_make_private(fd);
}

/* open_host's fstat, once (the state before anything was read) */
static bool host_stat(struct shim_image *img, struct stat *st)
{
	if (!img->host_st_valid)
		return real_fstat(shim_priv_real(img->trfd), st) == 0;
	img->host_st_valid = false;
	*st = img->host_st;
	return true;
}

static void log_cb(void *arg, const char *msg)
{
	struct shim_image *img = arg;
	if (img->opening) {
		if (!img->why[0])
			snprintf(img->why, sizeof img->why, "%s", msg);
		shim_debug("%s: %s", img->shown, msg);
	} else {
		shim_msg("%s: %s", img->shown, msg);
	}
}

/* Does the open file live under /dev, /proc or /sys, whatever its name? */
static bool special_target(int fd)
{
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return true;
	target[n] = 0;
	return special_path(target);
}

/* struct qcow_opts.open_file: the backing/data file policy (issue 4). */
static int open_side_file(void *arg, const char *name, enum qcow_file_kind kind,
			  bool writable, struct qcow_backend *out)
{
	struct shim_image *img = arg;
	const char *what = kind == QCOW_FILE_BACKING ? "backing file" : "data file";
	struct stat st;
	if (policy_no_backing()) {
		log_cb(img, "image needs a backing or data file, refused (QCOWSHIM_NO_BACKING=1)");
		return -EPERM;
	}
	if (special_path(name)) {
		char m[PATH_MAX + 64];
		snprintf(m, sizeof m, "%s %s refused: device or /proc path", what, name);
		log_cb(img, m);
		return -EPERM;
	}
	int fd = real_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		char m[PATH_MAX + 64];
		snprintf(m, sizeof m, "cannot open %s %s: %s", what, name, strerror(e));
		log_cb(img, m);
		return -e;
	}
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		real_close(fd);
		char m[PATH_MAX + 64];
		snprintf(m, sizeof m, "%s %s refused: not a regular file", what, name);
		log_cb(img, m);
		return -EPERM;
	}
	if (special_target(fd)) { /* reached through symlinks or ".." */
		real_close(fd);
		char m[PATH_MAX + 64];
		snprintf(m, sizeof m, "%s %s refused: device or /proc path", what, name);
		log_cb(img, m);
		return -EPERM;
	}
	real_fcntl(fd, F_SETFL, (void *)(long)(writable ? O_RDWR : O_RDONLY));
	fd = fd_make_private(fd);
	int r = qcow_backend_fd(out, fd, &shim_sysio, QCOW_FD_OWN);
	if (r < 0)
		sys_close(fd);
	return r;
}

static void fill_opts(struct shim_image *img, struct qcow_opts *o, bool rw)
{
	memset(o, 0, sizeof *o);
	o->flags = rw ? 0 : QCOW_RDONLY;
	if (policy_no_backing())
		o->flags |= QCOW_NO_BACKING;
	o->path = img->named;
	o->get_path = img_named;
	o->snapshot = policy_snapshot();
	o->open_file = open_side_file;
	o->log = log_cb;
	o->arg = img;
}

static int report_open_failure(struct shim_image *img, int r)
{
	shim_msg("%s: %s", img->shown, img->why[0] ? img->why : strerror(-r));
	return r;
}

/*
 * qcow_open without the write lock may race a writer in another process
 * publishing its metadata: the file size it validated against can be older
 * than the L1 table it then read (an L1 entry naming a just-appended L2 table
 * looks past the end of the file).  When validation failed and the host file
 * changed meanwhile, read it again.
 */
static int open_settled(struct shim_image *img, struct qcow_backend be,
			const struct qcow_opts *o, bool rw)
{
	int real = shim_priv_real(img->trfd);
	for (int tries = 0;; tries++) {
		struct stat before, after;
		bool stamped = host_stat(img, &before);
		struct qcow_opts opts = *o;
		opts.file_size = stamped && before.st_size > 0 ? (uint64_t)before.st_size : 0;
		img->why[0] = 0;
		int r = qcow_open(&img->q, be, &opts);
		/* The host file as it was before its metadata was read: a change
		 * after that, even during the read, shows at the next check. */
		if (stamped)
			coh_stamp_set(&img->stamp, &before);
		else
			img->stamp.unsure = true;
		if (r != -EINVAL || rw || tries == 20 || !stamped || real_fstat(real, &after) < 0 ||
		    coh_same_state(&before, &after))
			return r;
	}
}

/* Open (or create, when the host file is empty) the translator on trfd. */
static int open_translator(struct shim_image *img, bool rw)
{
	struct qcow_backend be;
	struct qcow_opts o;
	struct stat st;
	int r = qcow_backend_fd(&be, img->trfd, &shim_sysio, QCOW_FD_OWN);
	if (r < 0)
		return r;
	fill_opts(img, &o, rw);
	img->why[0] = 0;
	img->opening = true;
	if (rw && host_stat(img, &st) && st.st_size == 0) {
		struct qcow_create_opts c = {.size = 0, .cluster_bits = 16, .version = 3};
		r = qcow_create(&img->q, be, &c, &o);
		if (r == 0)
			shim_debug("%s: created a new image", img->shown);
	} else {
		r = open_settled(img, be, &o, rw);
	}
	img->opening = false;
	if (r < 0) {
		img->q = NULL;
		be.ops->close(be.h);
		img->trfd = -1;
		return report_open_failure(img, r);
	}
	img->rw = rw;
	img->pending = false;
	img->blocks.ok = false; /* a new translator */
	shim_debug("%s: opened %s, virtual size %llu", img->shown, rw ? "read-write" : "read-only",
		   (unsigned long long)qcow_size(img->q));
	return 0;
}

static off_t host_size(struct shim_image *img)
{
	int fd = open_host(img, O_RDONLY);
	if (fd < 0)
		return fd;
	img->host_st_valid = false; /* this fd's (open_host), and it goes now */
	off_t size = img->host_st.st_size;
	sys_close(fd);
	return size;
}

static int become_writer(struct shim_image *img)
{
	int r;
	if (img->parent_writes) { /* waiting would only time out: it is our parent */
		shim_msg("%s: refusing to write: this process was made by a raw clone or fork system "
			 "call while its parent was writing the image, which the parent still holds "
			 "(fork() and posix_spawn run the shim's fork handlers)",
			 img->shown);
		return -EBUSY;
	}
	if (img->q) { /* a read-only translator: reopen read-write under the lock */
		qcow_close(img->q);
		img->q = NULL;
		img->trfd = -1;
		coh_detach(&img->coh);
	}
	r = open_host(img, O_RDWR);
	if (r < 0)
		return r == -EACCES ? -EBADF : r;
	img->trfd = r;
	if ((r = coh_lock_writer(img->shown, img->trfd)) < 0) {
		sys_close(img->trfd);
		img->trfd = -1;
		return r;
	}
	coh_attach(&img->coh, img->dev, img->ino);
	if ((r = open_translator(img, true)) < 0) {
		coh_detach(&img->coh);
		return r;
	}
	img->writer = true;
	return 0;
}

/*
 * Make img->q usable for reading, or (write) for writing with the locks held.
 * With a pending image (empty host file) and !write, img->q may stay NULL:
 * the virtual disk is then empty.  Returns 0 or -errno.
 */
int img_ready(struct shim_image *img, bool write)
{
	int r;
	if (likely(img->q && img->writer))
		return 0;
	if (write)
		return become_writer(img);
	if (!img->q) {
		if (img->pending) {
			off_t hs = host_size(img);
			if (hs <= 0)
				return hs < 0 ? (int)hs : 0;
			img->pending = false; /* someone made it an image meanwhile */
		}
		if ((r = open_host(img, O_RDONLY)) < 0)
			return r;
		img->trfd = r;
		if ((r = coh_check_no_writer(img->shown, img->trfd)) < 0) {
			sys_close(img->trfd);
			img->trfd = -1;
			return r;
		}
		coh_attach(&img->coh, img->dev, img->ino);
		coh_reader_register(&img->coh, img->trfd); /* before reading metadata */
		if ((r = open_translator(img, false)) < 0) {
			coh_detach(&img->coh);
			return r;
		}
		return 0; /* (open_settled took the stamp) */
	}
	if ((r = coh_reader_check(&img->coh, img->shown, img->trfd, &img->stamp)) < 0)
		return r;
	if (r) {
		if ((r = qcow_invalidate(img->q)) == -EINVAL) {
			/* read while a writer published (see open_settled): the
			 * translator is now unusable; open a fresh one, which retries */
			qcow_close(img->q);
			coh_detach(&img->coh);
			img->q = NULL;
			img->trfd = -1;
			return img_ready(img, false);
		}
		if (r < 0) {
			shim_msg("%s: re-reading the image after another process changed it: %s",
				 img->shown, strerror(-r));
			return r;
		}
		coh_stamp_record(img->trfd, &img->stamp);
		img->blocks.ok = false; /* re-read after another process wrote */
	}
	return 0;
}

__thread int img_release_err __attribute__((tls_model("initial-exec")));

/* Flush and close the translator, releasing the locks.  img->mu held. */
static void img_release(struct shim_image *img)
{
	if (!img->q)
		return;
	int r = qcow_close(img->q);
	if (r < 0) {
		shim_msg("%s: flushing the image failed: %s", img->shown, strerror(-r));
		img_release_err = r;
	}
	if (img->writer)
		coh_published(&img->coh);
	coh_detach(&img->coh);
	img->q = NULL;
	img->trfd = -1;
	img->writer = img->rw = false;
}

void img_op_done(struct shim_image *img)
{
	if (unlikely(shim_exiting)) {
		img_release(img);
		return;
	}
	if (img->unpublished && img->writer && coh_readers_elsewhere(&img->coh, img->trfd)) {
		int r = qcow_publish(img->q);
		if (r < 0)
			shim_msg("%s: writing metadata failed: %s", img->shown, strerror(-r));
		coh_published(&img->coh);
	}
	img->unpublished = false;
}

int img_validate(struct shim_image *img, const char *shown, bool writable)
{
	(void)shown;
	if (img->pending)
		return 0;
	int r = img_ready(img, false);
	if (r < 0 || !writable || img->writer || !img->q)
		return r;
	struct qcow_info info;
	if (qcow_info(img->q, &info) == 0 && info.corrupt) {
		/* qemu's rule: a corrupt image opens read-only only */
		shim_msg("%s: image is marked corrupt; open it read-only (or repair it with qemu-img check -r)",
			 img->shown);
		return -EACCES;
	}
	return coh_qemu_refuses_writer(img->shown, img->trfd);
}

uint64_t img_size(struct shim_image *img)
{
	return img->q ? qcow_size(img->q) : 0;
}

ssize_t img_pread(struct shim_image *img, void *buf, size_t n, uint64_t off)
{
	int r = img_ready(img, false);
	if (r < 0)
		return r;
	uint64_t size = img_size(img);
	if (off >= size || n == 0)
		return 0;
	if (n > size - off)
		n = (size_t)(size - off);
	size_t done = 0;
	while (done < n) {
		ssize_t got = qcow_read(img->q, (char *)buf + done, n - done, off + done);
		if (got < 0)
			return done ? (ssize_t)done : got;
		if (got == 0)
			break;
		done += (size_t)got;
	}
	return (ssize_t)done;
}

ssize_t img_pwrite(struct shim_image *img, const void *buf, size_t n, uint64_t off)
{
	int r = img_ready(img, true);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	if (off > (uint64_t)INT64_MAX - n)
		return -EFBIG;
	if (off + n > qcow_size(img->q) && (r = qcow_resize(img->q, off + n)) < 0)
		return r;
	img->unpublished = true;
	img->blocks.ok = false;
	ssize_t w = qcow_write(img->q, buf, n, off);
	return w;
}

int img_resize(struct shim_image *img, uint64_t size)
{
	int r = img_ready(img, true);
	if (r < 0)
		return r;
	if (size == qcow_size(img->q))
		return 0;
	img->unpublished = true;
	img->blocks.ok = false;
	return qcow_resize(img->q, size);
}

int img_zero(struct shim_image *img, uint64_t off, uint64_t n, bool unmap)
{
	int r = img_ready(img, true);
	if (r < 0)
		return r;
	uint64_t size = qcow_size(img->q);
	if (off >= size || n == 0)
		return 0;
	if (n > size - off)
		n = size - off;
	img->unpublished = true;
	img->blocks.ok = false;
	return qcow_zero(img->q, off, n, unmap ? QCOW_ZERO_UNMAP : 0);
}

int img_flush(struct shim_image *img)
{
	if (!img->q || !img->writer)
		return 0;
	int r = qcow_flush(img->q);
	coh_published(&img->coh);
	return r;
}

int img_map(struct shim_image *img, uint64_t off, struct qcow_extent *e)
{
	int r = img_ready(img, false);
	if (r < 0)
		return r;
	uint64_t size = img_size(img);
	if (off >= size) {
		e->len = 0;
		e->kind = QCOW_EXT_ZERO;
		e->allocated = false;
		return 0;
	}
	return qcow_map(img->q, off, size - off, e);
}

/* 512-byte units allocated in the image file for [off, off + len) of the disk. */
int img_blocks(struct shim_image *img, uint64_t off, uint64_t len, uint64_t *blocks)
{
	uint64_t alloc = 0, off0 = off, len0 = len;
	struct qcow_extent e;
	int r = img_ready(img, false);
	if (r < 0)
		return r;
	if (img->blocks.ok && img->blocks.off == off && img->blocks.len == len) {
		*blocks = img->blocks.val;
		return 0;
	}
	uint64_t size = img_size(img);
	if (off < size && len < size - off)
		size = off + len;
	while (off < size) {
		if ((r = qcow_map(img->q, off, size - off, &e)) < 0)
			return r;
		if (e.len == 0)
			break;
		if (e.allocated)
			alloc += e.len;
		off += e.len;
	}
	*blocks = (alloc + 511) / 512;
	img->blocks.ok = true;
	img->blocks.off = off0;
	img->blocks.len = len0;
	img->blocks.val = *blocks;
	return 0;
}

/* ---- whole-process events */

void img_release_all(void)
{
	/* A child in its parent's memory (raw vfork, clone with CLONE_VM) that
	 * exits or execs: the translators, their descriptors and locks are the
	 * parent's, still in use by it; flushing and closing them here would
	 * close the child's copies of the descriptors under the parent's feet. */
	if (unlikely(shim_vm_child()))
		return;
	reg_lock();
	for (struct shim_image *i = images; i; i = i->next) {
		shim_mutex_lock(&i->mu);
		img_release(i);
		shim_mutex_unlock(&i->mu);
	}
	reg_unlock();
	coh_pages_release();
}

/* Before fork: flush and close every translator (so the child starts
 * clean and an idle parent holds no lock), and hold every lock. */
void img_atfork_prepare(void)
{
	/* Lock order: reg_mu, each img->mu, then the fd table (closing a
	 * translator takes the table lock itself). */
	reg_lock();
	for (struct shim_image *i = images; i; i = i->next) {
		shim_mutex_lock(&i->mu);
		img_release(i);
	}
	fd_lock();
}

void img_atfork_parent(void)
{
	for (struct shim_image *i = images; i; i = i->next)
		shim_mutex_unlock(&i->mu);
	fd_unlock();
	reg_unlock();
}

/* A new process made without the atfork handlers (_Fork without the
 * wrapper, a raw fork or clone system call; wrap_signal.c notices it at the
 * first critical section): the locks may have been held by other threads of
 * the parent, and the translators are the parent's, half-way through its
 * writes, with its reservation and its lock-holding descriptors.  They are
 * dropped unflushed (the parent still owns them) and this process opens its
 * own, like any other process: it writes only once it gets the write lock,
 * which a parent that writes holds (then EBUSY after QCOWSHIM_WAIT_MS). */
void img_forked_child(void)
{
	coh_pages_forget();
	int h = atomic_exchange(&proc_fd_dir, -1);
	if (h >= 0) /* the parent's /proc/PID/fd */
		real_close(shim_priv_real(h));
	for (struct shim_image *i = images; i; i = i->next) {
		shim_mutex_init(&i->mu);
		/* Not reached after prepare, but never share the parent's
		 * translator state or its lock-owning descriptor. */
		if (i->q) {
			real_close(shim_priv_real(i->trfd));
			coh_forget(&i->coh);
			i->q = NULL; /* leaked on purpose: its fds are the parent's */
			i->trfd = -1;
			i->parent_writes = i->writer;
			i->writer = i->rw = false;
		}
	}
	pthread_mutex_init(&reg_mu, NULL);
	fd_atfork_child();
}

void img_atfork_child(void)
{
	img_forked_child();
	shim_crit_child();
}

/* ---- stat helpers */

int img_fd_stat(int fd, uint64_t *size, uint64_t *blocks, unsigned *part)
{
	struct shim_ofd *o = fd_get_any(fd); /* O_PATH fds stat as the image too */
	if (!o)
		return -ENOENT;
	img_lock(o->img);
	int r = 0;
	if (o->img->pending && (r = img_ready(o->img, false)) == 0 && !o->img->q) {
		r = -ENOENT; /* still empty: the host file's stat is right */
	} else if (r == 0 && (r = ofd_blocks(o, blocks)) == 0) {
		*size = ofd_size(o);
		*part = o->part;
	}
	img_op_done(o->img);
	img_unlock(o->img);
	fd_put(o);
	return r;
}

/* stat of an image path: size and blocks, or -errno (-ENOENT: not an image,
 * leave the host file's stat alone). */
int img_path_stat(int dirfd, const char *path, int atflags, uint64_t *size, uint64_t *blocks)
{
	int fl = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (atflags & AT_SYMLINK_NOFOLLOW)
		fl |= O_NOFOLLOW;
	int fd = real_openat(dirfd, path, fl, 0);
	if (fd < 0)
		return -ENOENT;
	struct stat st;
	int r = -ENOENT;
	if (real_fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && shim_probe_magic(fd)) {
		int err;
		shim_quiet++; /* a broken image stats as its host file, silently */
		struct shim_image *img = img_register(fd, &st, path, false, &err);
		if (img) {
			img_lock(img);
			if (img->pending)
				img->pending = false;
			if ((r = img_blocks(img, 0, UINT64_MAX, blocks)) == 0)
				*size = img_size(img);
			img_unlock(img);
			img_unref(img);
		}
		shim_quiet--;
	}
	real_close(fd);
	return r;
}
