/*
 * qcow.h - the QCOW2 translator's public interface.
 *
 * An image is opened on a backend (a host file, memory, another image) and
 * presents a flat virtual disk of qcow_size() bytes.  Every call is
 * thread-safe (one lock per image).  Every fallible call returns 0 (or a
 * non-negative count) on success and -errno on failure; the library never
 * prints, never exits and never sets errno on purpose.  Human-readable
 * reasons for failures go to the optional log callback in struct qcow_opts.
 *
 * errno vocabulary:
 *   -EINVAL   malformed image found while opening (bad header, table out of
 *             bounds...), or an invalid argument
 *   -EIO      corruption found at run time; the image is then latched
 *             read-only (and marked corrupt on disk when writable)
 *   -ENOTSUP  a feature this library does not support (encryption, unknown
 *             incompatible feature bits...)
 *   -EACCES   the image is marked corrupt and a writable open was requested
 *   -EROFS    write to an image opened read-only
 *   -EFBIG    a table or size beyond the limits qemu itself enforces
 *   -ENOSPC   I/O beyond the virtual size (resize first)
 *   -ENOMEM   allocation failure
 *   others    passed through from the backend
 */
#ifndef QCOW_H
#define QCOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

struct qcow;

/*
 * A backend is what an image reads its bytes from.  pread returns the number
 * of bytes read (fewer than n only at end of file) or -errno; pwrite writes
 * all n bytes or fails.  punch (optional, may be NULL) releases host space;
 * the range must read back as zeros afterwards.  pwrite_sync (optional, may
 * be NULL or fail with -EOPNOTSUPP) is a pwrite that is durable when it
 * returns, together with the file size it implies, without making the rest
 * of the file durable (RWF_DSYNC); the library then uses pwrite + flush.
 */
struct qcow_backend_ops {
	ssize_t (*pread)(void *h, void *buf, size_t n, uint64_t off);
	ssize_t (*pwrite)(void *h, const void *buf, size_t n, uint64_t off);
	int (*flush)(void *h);
	int (*getsize)(void *h, uint64_t *size);
	int (*truncate)(void *h, uint64_t size);
	int (*punch)(void *h, uint64_t off, uint64_t n);
	void (*close)(void *h);
	ssize_t (*pwrite_sync)(void *h, const void *buf, size_t n, uint64_t off);
};

struct qcow_backend {
	const struct qcow_backend_ops *ops;
	void *h;
};

/*
 * Host-file backend.  All system calls go through a table so that an
 * interposing library can hand in the real libc functions and tests can
 * inject faults.  qcow_sysio_default() returns libc's own.
 */
struct qcow_sysio {
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	int (*fdatasync)(int fd);
	int (*fstat)(int fd, struct stat *st);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len); /* may be NULL */
	int (*close)(int fd);
	/* may be NULL: durable writes then cost a whole fdatasync */
	ssize_t (*pwritev2)(int fd, const struct iovec *iov, int cnt, off_t off, int flags);
};

#define QCOW_FD_OWN 1u /* close the fd when the backend is closed */

const struct qcow_sysio *qcow_sysio_default(void);
/* Wraps fd; the sysio table must outlive the backend. Returns 0 or -errno. */
int qcow_backend_fd(struct qcow_backend *be, int fd, const struct qcow_sysio *sys,
		    unsigned flags);
/* A growable in-memory file, initially a copy of data[0..len). */
int qcow_backend_mem(struct qcow_backend *be, const void *data, size_t len);
/* The current contents of a memory backend (valid until its next write). */
const void *qcow_backend_mem_data(struct qcow_backend be, size_t *len);

/* Kinds of side files an image can name (struct qcow_opts.open_file). */
enum qcow_file_kind {
	QCOW_FILE_BACKING = 1, /* opened read-only */
	QCOW_FILE_DATA = 2,    /* external data file: writable iff the image is */
};

/* Flags for struct qcow_opts. */
#define QCOW_RDONLY 1u     /* never write to the image */
#define QCOW_NO_BACKING 2u /* refuse images that need a backing or data file */

struct qcow_opts {
	unsigned flags;
	/* The image's own path: used to resolve relative backing-file names
	 * and in log messages.  May be NULL. */
	const char *path;
	/* With path NULL: asked for it (copied) the first time a relative
	 * name must be resolved, so a caller need not work it out for the
	 * images that name no other file.  May be NULL, and may return NULL. */
	const char *(*get_path)(void *arg);
	/* The image file's size, when the caller has just asked the system;
	 * 0: the library asks the backend. */
	uint64_t file_size;
	/* Cache budgets in bytes; 0 picks the defaults. */
	size_t l2_cache_bytes;
	size_t refblock_cache_bytes;
	/*
	 * Opens a file named by the image (a backing file or external data
	 * file).  The name has already been resolved against the directory of
	 * `path`.  This is the security-relevant decision, so it is the
	 * caller's: it may refuse with -EPERM.  NULL: such images are refused.
	 */
	int (*open_file)(void *arg, const char *name, enum qcow_file_kind kind,
			 bool writable, struct qcow_backend *out);
	/* Receives one line (no newline) per failure reason.  May be NULL. */
	void (*log)(void *arg, const char *msg);
	void *arg;
	/* Non-NULL: present the internal snapshot with this name (or, when no
	 * name matches, this id) instead of the active image; read-only (a
	 * writable open fails with -EROFS).  Not applied to backing files.
	 * The string must stay valid while the image is open. */
	const char *snapshot;
};

struct qcow_create_opts {
	uint64_t size;          /* virtual size in bytes */
	unsigned cluster_bits;  /* 9..21; 0 = 16 (64 KiB) */
	unsigned version;       /* 2 or 3; 0 = 3 */
	unsigned refcount_bits; /* 1,2,4,...,64; 0 = 16 (v2 allows only 16) */
	bool extended_l2;       /* v3, cluster_bits >= 14 */
	bool lazy_refcounts;    /* v3 */
	const char *backing_file; /* NULL = none */
	const char *backing_fmt;  /* "qcow2", "raw" or NULL */
};

/* Open an existing image.  On success the image owns the backend (closed by
 * qcow_close); on failure the backend is left to the caller. */
int qcow_open(struct qcow **q, struct qcow_backend be, const struct qcow_opts *o);
/* Format the (empty or to be overwritten) backend as a new image and open
 * it.  Ownership of the backend as for qcow_open. */
int qcow_create(struct qcow **q, struct qcow_backend be, const struct qcow_create_opts *c,
		const struct qcow_opts *o);
/* Flush, close the backend(s) and free.  Returns the flush result. */
int qcow_close(struct qcow *q);

/* Read n bytes at voff.  Returns the count read: short only at the virtual end. */
ssize_t qcow_read(struct qcow *q, void *buf, size_t n, uint64_t voff);
/* Write n bytes at voff; all of [voff, voff+n) must lie within the virtual
 * size (-ENOSPC otherwise).  Returns n or -errno. */
ssize_t qcow_write(struct qcow *q, const void *buf, size_t n, uint64_t voff);

#define QCOW_ZERO_UNMAP 1u /* also release the host clusters (discard) */
/* Make [voff, voff+n) read as zeros (never as backing data). */
int qcow_zero(struct qcow *q, uint64_t voff, uint64_t n, unsigned flags);
/* Make everything written so far durable, in crash-safe order. */
int qcow_flush(struct qcow *q);
/* qcow_flush, then give the reserve back (qcow_info's reserved_*): the file
 * is then a clean image, as after qcow_close, and the handle stays open. */
int qcow_checkpoint(struct qcow *q);
/* Write cached metadata so that other readers of the file see every
 * completed write; crash-safe (refcounts reach the disk before references
 * to them) but guest data is not made durable, so cheaper than a flush. */
int qcow_publish(struct qcow *q);
/* Grow or shrink the virtual size.  Bytes beyond the old size read as zeros. */
int qcow_resize(struct qcow *q, uint64_t size);
uint64_t qcow_size(struct qcow *q);

/*
 * Allocation status of the run starting at voff (at most n bytes): the
 * longest prefix that is uniformly data or uniformly zero.  Returns 0 and
 * fills *e (e->len == 0 only when voff is at or past the virtual end).
 */
enum qcow_extent_kind {
	QCOW_EXT_DATA = 1, /* may hold non-zero bytes (this layer or backing) */
	QCOW_EXT_ZERO = 2, /* known to read as zeros */
};
struct qcow_extent {
	uint64_t len;
	enum qcow_extent_kind kind;
	bool allocated; /* occupies clusters in this image's file */
};
int qcow_map(struct qcow *q, uint64_t voff, uint64_t n, struct qcow_extent *e);

struct qcow_info {
	uint64_t size;
	unsigned version;
	unsigned cluster_bits;
	unsigned refcount_bits;
	bool extended_l2;
	bool read_only;
	bool corrupt;  /* latched after finding corruption */
	bool dirty;    /* lazy-refcount dirty bit */
	unsigned compression_type; /* 0 deflate, 1 zstd */
	unsigned nb_snapshots;
	char backing_file[1024];   /* "" if none */
	char backing_fmt[32];
	/* Host clusters this handle holds in reserve for its next allocations:
	 * refcount 1, referenced by nothing, given back at close.  Until then
	 * a check of the file counts them as leaked. */
	uint64_t reserved_offset, reserved_bytes;
};
int qcow_info(struct qcow *q, struct qcow_info *i);

/*
 * Another process may have changed the file: flush, drop every cache and
 * re-read the header and tables.  Returns 0 or -errno.
 */
int qcow_invalidate(struct qcow *q);

/* An open image as a backend (read-only view), e.g. as another image's base.
 * Closing that backend closes the image. */
struct qcow_backend qcow_as_backend(struct qcow *q);

#endif
