/*
 * parts.c - IMAGE.qcow2/pN: partition N of the flat disk as a file.
 *
 * The path is only tried after the real open/stat of IMAGE/pN failed with
 * ENOTDIR, so a real directory named IMAGE.qcow2 (with a real file p1) is
 * always a plain path; and only when IMAGE matches the globs and is a
 * regular QCOW2 file.  The fd given to the program is a real fd on the
 * image file (like a whole-image fd; its kernel offset holds the position
 * inside the partition), registered on the image's shared translator, so
 * the whole disk and its partitions opened in one process stay coherent.
 * The partition table (parttab.c) is read at every open; the window found
 * then stays with the open file description (and crosses exec with it).
 *
 * Inside the window the fd behaves like a block device partition: size =
 * the partition's; reads at or past its end return 0; a write crossing the
 * end is short; one at or past it fails with ENOSPC; it cannot be resized
 * (ftruncate to its own size succeeds, larger: ENOSPC, smaller: EINVAL).
 * st_ino is the image's with N in bits 48-63, so p1, p2 and the image are
 * distinct files to cmp/cp.
 */
#include "shim.h"

#include <limits.h>
#include <string.h>

#include "parttab.h"

/* ---- the window, applied in one place */

uint64_t ofd_size(struct shim_ofd *o)
{
	uint64_t disk = img_size(o->img);
	if (!o->part)
		return disk;
	/* the disk may have shrunk since the open */
	if (o->base >= disk)
		return 0;
	return o->len < disk - o->base ? o->len : disk - o->base;
}

/* How much of [off, off + n) lies inside the window. */
static uint64_t room(struct shim_ofd *o, uint64_t off, uint64_t n)
{
	uint64_t size = ofd_size(o);
	return off >= size ? 0 : n < size - off ? n : size - off;
}

ssize_t ofd_pread(struct shim_ofd *o, void *buf, size_t n, uint64_t off)
{
	if (!o->part)
		return img_pread(o->img, buf, n, off);
	int r = img_ready(o->img, false);
	if (r < 0)
		return r;
	n = (size_t)room(o, off, n);
	return n ? img_pread(o->img, buf, n, o->base + off) : 0;
}

ssize_t ofd_pwrite(struct shim_ofd *o, const void *buf, size_t n, uint64_t off)
{
	if (!o->part)
		return img_pwrite(o->img, buf, n, off);
	if (n == 0)
		return 0;
	int r = img_ready(o->img, true);
	if (r < 0)
		return r;
	n = (size_t)room(o, off, n);
	/* at or past the end: ENOSPC, as a block device */
	return n ? img_pwrite(o->img, buf, n, o->base + off) : -ENOSPC;
}

int ofd_resize(struct shim_ofd *o, uint64_t size)
{
	if (!o->part)
		return img_resize(o->img, size);
	int r = img_ready(o->img, false);
	if (r < 0)
		return r;
	uint64_t cur = ofd_size(o);
	return size == cur ? 0 : size > cur ? -ENOSPC : -EINVAL;
}

int ofd_zero(struct shim_ofd *o, uint64_t off, uint64_t n, bool unmap)
{
	if (!o->part)
		return img_zero(o->img, off, n, unmap);
	int r = img_ready(o->img, true);
	if (r < 0)
		return r;
	n = room(o, off, n);
	return n ? img_zero(o->img, o->base + off, n, unmap) : 0;
}

int ofd_map(struct shim_ofd *o, uint64_t off, struct qcow_extent *e)
{
	if (!o->part)
		return img_map(o->img, off, e);
	int r = img_ready(o->img, false);
	if (r < 0)
		return r;
	if (!room(o, off, 1)) {
		*e = (struct qcow_extent){.len = 0, .kind = QCOW_EXT_ZERO};
		return 0;
	}
	if ((r = img_map(o->img, o->base + off, e)) == 0)
		e->len = room(o, off, e->len);
	return r;
}

int ofd_blocks(struct shim_ofd *o, uint64_t *blocks)
{
	int r = img_ready(o->img, false);
	if (r < 0)
		return r;
	return img_blocks(o->img, o->base, ofd_size(o), blocks);
}

uint64_t part_ino(uint64_t ino, unsigned part)
{
	return ino ^ ((uint64_t)(part & 0xffff) << 48);
}

/* ---- finding the window */

static int table_read(void *arg, void *buf, size_t n, uint64_t off)
{
	ssize_t got = img_pread(arg, buf, n, off);
	return got < 0 ? (int)got : (size_t)got == n ? 0 : -EIO;
}

/* Reads the table (img locked) and fills o's window; loud: say why not. */
static int find_window(struct shim_image *img, unsigned num, struct shim_ofd *o, bool loud)
{
	struct pt_part p;
	char why[256];
	int r = img_ready(img, false);
	if (r < 0)
		return r;
	r = pt_find(table_read, img, img_size(img), num, &p, why, sizeof why);
	if (r == -ENOENT && loud)
		shim_msg("%s: %s", img_path(img), why);
	else if (r < 0 && loud)
		shim_msg("%s: reading the partition table: %s", img_path(img), strerror(-r));
	if (r < 0)
		return r;
	if (p.clamped && loud)
		shim_msg("%s: partition %u ends past the end of the disk; it is cut there", img_path(img),
			 num);
	o->part = num;
	o->base = p.start;
	o->len = p.len;
	return 0;
}

/* IMAGE of IMAGE/pN, opened with flags (a regular QCOW2 file) and
 * registered: the image, *num and *fd; NULL with *err (-ENOTDIR: not ours). */
static struct shim_image *open_image(int dirfd, const char *path, int flags, bool is64,
				     unsigned *num, int *fd, int *err)
{
	char image[PATH_MAX];
	size_t len;
	struct stat st;
	*num = policy_part(path, &len);
	*err = -ENOTDIR;
	if (!*num)
		return NULL;
	memcpy(image, path, len);
	image[len] = 0;
	*fd = is64 ? real_openat64(dirfd, image, flags, 0) : real_openat(dirfd, image, flags, 0);
	if (*fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (real_fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || !shim_probe_magic(*fd) ||
	    *fd >= SHIM_FD_MAX) {
		*err = *fd >= SHIM_FD_MAX ? -EMFILE : -ENOTDIR;
		real_close(*fd);
		return NULL;
	}
	struct shim_image *img = img_register(*fd, &st, image, false, err);
	if (!img)
		real_close(*fd);
	return img;
}

int part_open(int dirfd, const char *path, int flags, mode_t mode, bool is64)
{
	(void)mode;
	int saved = errno, fd, err, r;
	unsigned num;
	/* Like a block device: it exists (O_CREAT creates nothing, O_EXCL with
	 * it fails), O_TRUNC is ignored, the name is not a symlink. */
	int fl = flags & ~(O_TRUNC | O_APPEND | O_DIRECT | O_CREAT | O_NOFOLLOW);
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		fl &= ~O_EXCL;
	struct shim_image *img = open_image(dirfd, path, fl, is64, &num, &fd, &err);
	if (!img) {
		errno = -err;
		return -1;
	}
	int acc = flags & O_ACCMODE;
	struct shim_ofd *o = ofd_new(img, acc, flags & (O_APPEND | O_DIRECT));
	if (o)
		o->opath = (flags & O_PATH) != 0; /* names the partition, no I/O */
	img_lock(img);
	r = o ? img_validate(img, img_path(img), acc != O_RDONLY) : -ENOMEM;
	if (r == 0)
		r = find_window(img, num, o, true);
	if (r == 0 && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		r = -EEXIST;
	img_op_done(img);
	img_unlock(img);
	if (r < 0) {
		free(o);
		img_unref(img);
		real_close(fd);
		errno = -r;
		return -1;
	}
	if ((r = fd_attach_opened(fd, o, flags)) < 0) {
		errno = -r;
		return -1;
	}
	if (fd < 3)
		stdio_std_after(fd);
	shim_debug("%s: partition %u, bytes %llu+%llu, on fd %d", img_path(img), num,
		   (unsigned long long)o->base, (unsigned long long)o->len, fd);
	errno = saved;
	return fd;
}

/*
 * /proc/PID/fd/N of another process's partition descriptor (mtools run by
 * syslinux reopens its parent's fd so): that partition again.  The exec
 * and spawn wrappers announce every partition fd of the process, inherited
 * or not, in QCOWSHIM_PARTS=PID:FD,PART,BASE,LEN,DEV,INO;... (wrap_proc.c),
 * which descendants keep; the entry must name this very image.
 */
void part_inherited_window(struct shim_ofd *o, const char *path, int fd)
{
	const char *e = getenv("QCOWSHIM_PARTS");
	char *end;
	struct stat st;
	if (!e || o->part || strncmp(path, "/proc/", 6) != 0)
		return;
	long pid = strtol(path + 6, &end, 10);
	if (end == path + 6 || strncmp(end, "/fd/", 4) != 0)
		return;
	long n = strtol(end + 4, &end, 10);
	if (*end || real_fstat(fd, &st) < 0)
		return;
	for (const char *s = e; s && *s;) {
		long p, f;
		unsigned part;
		unsigned long long base, len, dev, ino;
		if (sscanf(s, "%ld:%ld,%u,%llu,%llu,%llu,%llu", &p, &f, &part, &base, &len, &dev, &ino) == 7 &&
		    p == pid && f == n && dev == (unsigned long long)st.st_dev &&
		    ino == (unsigned long long)st.st_ino && part) {
			o->part = part;
			o->base = base;
			o->len = len;
			return;
		}
		s = strchr(s, ';');
		s = s ? s + 1 : NULL;
	}
}

void part_copy_window(struct shim_ofd *o, const char *path)
{
	int ref;
	if (policy_classify(path, &ref) != SHIM_PATH_FDREF)
		return;
	struct shim_ofd *src = fd_get_any(ref);
	if (!src)
		return;
	if (src->img == o->img) {
		o->part = src->part;
		o->base = src->base;
		o->len = src->len;
	}
	fd_put(src);
}

/* ---- stat of IMAGE/pN: the image file's, with the partition's size,
 * allocated blocks and st_ino.  Silent: a missing partition is ENOENT. */

static int part_view(int dirfd, const char *path, struct stat *st, unsigned *num, uint64_t *size,
		     uint64_t *blocks)
{
	int fd, err;
	struct shim_image *img =
		open_image(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, true, num, &fd, &err);
	if (!img)
		return err;
	struct shim_ofd view = {.img = img};
	int r = real_fstat(fd, st) < 0 ? -errno : 0;
	shim_quiet++;
	img_lock(img);
	if (r == 0)
		r = find_window(img, *num, &view, false);
	if (r == 0 && (r = ofd_blocks(&view, blocks)) == 0)
		*size = ofd_size(&view);
	img_unlock(img);
	shim_quiet--;
	img_unref(img);
	real_close(fd);
	st->st_ino = (ino_t)part_ino(st->st_ino, *num);
	return r;
}

static bool part_candidate(const char *path)
{
	int ref;
	if (unlikely(!atomic_load_explicit(&shim_ready, memory_order_acquire)))
		shim_setup();
	return !shim_depth && path && policy_classify(path, &ref) == SHIM_PATH_PART;
}

int part_statat(int dirfd, const char *path, int atflags, struct stat *st, int saved)
{
	(void)atflags; /* AT_SYMLINK_NOFOLLOW: pN is never a symlink */
	uint64_t size, blocks;
	unsigned num;
	struct stat tmp;
	if (!part_candidate(path))
		return -1;
	int r = part_view(dirfd, path, &tmp, &num, &size, &blocks);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	*st = tmp;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)blocks;
	errno = saved;
	return 0;
}

bool part_image(int dirfd, const char *path, char *image)
{
	uint64_t size, blocks;
	unsigned num;
	struct stat st;
	size_t len;
	if (!part_candidate(path) || !policy_part(path, &len))
		return false;
	int r = part_view(dirfd, path, &st, &num, &size, &blocks);
	if (r == -ENOENT || r == -ENOTDIR) {
		errno = -r;
		return false;
	}
	/* other failures (an image we may not read): the image file answers */
	memcpy(image, path, len);
	image[len] = 0;
	return true;
}

int part_statx(int dirfd, const char *path, int atflags, unsigned mask, struct statx *sx,
	       int saved)
{
	uint64_t size, blocks;
	unsigned num;
	struct stat st;
	char image[PATH_MAX];
	size_t len;
	if (!part_candidate(path) || !policy_part(path, &len))
		return -1;
	int r = part_view(dirfd, path, &st, &num, &size, &blocks);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	memcpy(image, path, len);
	image[len] = 0;
	if (real_statx(dirfd, image, atflags & ~AT_SYMLINK_NOFOLLOW, mask, sx) < 0)
		return -1;
	sx->stx_ino = (uint64_t)st.st_ino;
	sx->stx_size = size;
	sx->stx_blocks = blocks;
	errno = saved;
	return 0;
}
