/*
 * shim.h - internals shared by the interposition layer's files.
 *
 * Core rule (see docs/ARCHITECTURE.md): position = per open file description, kept in
 * the kernel offset of the program's own fd; translator state = per process,
 * opened lazily and closed at every fork/exec/exit; locks = on the
 * translator's private fd (its own open file description, CLOEXEC).
 *
 * Wrappers call real_* (resolved from syms.def) for everything that is not
 * an image; they never set errno on success.  Internal functions return
 * 0/>=0 or -errno and never touch errno; only the wrappers do (shim_ret).
 */
#ifndef SHIM_H
#define SHIM_H

#ifdef _FILE_OFFSET_BITS
#error "shim/ must be compiled without _FILE_OFFSET_BITS"
#endif

#include "libc.h"

#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <mntent.h>
#include <semaphore.h>
#include <utmp.h>
#include <utmpx.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/xattr.h>

#include "qcow.h"

#if SHIM_GLIBC
#include <fts.h> /* wrap_walk.c; musl has none */
#endif

#if !SHIM_GLIBC
#include "libc_musl.h"
#endif

/* The shim's hot locks (the fd table, each image) are not taken while the
 * process has one thread, like the translator's (qcow_int.h says why that
 * is safe): a cached 4 KiB read of a single-threaded program took six
 * uncontended lock operations, a tenth of its cost. */
/* A thread made by a program's own clone(CLONE_VM) call leaves glibc's flag
 * alone (glibc's malloc then takes no locks either); the clone wrapper
 * notices it and the shim locks from then on. */
extern bool shim_raw_threads;
#if SHIM_GLIBC && __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define SHIM_SINGLE_THREADED() (__libc_single_threaded != 0 && !shim_raw_threads)
#else
#define SHIM_SINGLE_THREADED() false
#endif
struct shim_mutex {
	pthread_mutex_t m;
	bool held; /* read and written by the holder only */
};
#define SHIM_MUTEX_INIT {PTHREAD_MUTEX_INITIALIZER, false}
static inline void shim_mutex_lock(struct shim_mutex *mu)
{
	if (SHIM_SINGLE_THREADED())
		return;
	pthread_mutex_lock(&mu->m);
	mu->held = true;
}
static inline void shim_mutex_unlock(struct shim_mutex *mu)
{
	if (!mu->held)
		return;
	mu->held = false;
	pthread_mutex_unlock(&mu->m);
}
static inline void shim_mutex_init(struct shim_mutex *mu)
{
	pthread_mutex_init(&mu->m, NULL);
	mu->held = false;
}

/* glibc entry points its headers declare only under _FORTIFY_SOURCE (or no
 * longer): the shim defines them, so it declares them. */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);
ssize_t __read_chk(int, void *, size_t, size_t);
ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);
int __xstat(int, const char *, struct stat *);
int __xstat64(int, const char *, struct stat64 *);
int __lxstat(int, const char *, struct stat *);
int __lxstat64(int, const char *, struct stat64 *);
int __fxstat(int, int, struct stat *);
int __fxstat64(int, int, struct stat64 *);
int __fxstatat(int, int, const char *, struct stat *, int);
int __fxstatat64(int, int, const char *, struct stat64 *, int);
/* <sys/mount.h> clashes with <linux/fs.h> (wrap_ioctl.c) on glibc 2.36;
 * <sys/swap.h> is declared here with it for the same one file. */
int mount(const char *, const char *, const char *, unsigned long, const void *);
int swapon(const char *, int);
int pidfd_getfd(int, int, unsigned int); /* glibc 2.36 <sys/pidfd.h>; not musl */
/* glibc's exported second names of interposed functions (wrap_alias.c) and
 * its fortified dprintf (wrap_fmt.c): no header declares them */
int __open(const char *, int, ...);
int __open64(const char *, int, ...);
ssize_t __read(int, void *, size_t);
ssize_t __write(int, const void *, size_t);
int __close(int);
ssize_t __pread64(int, void *, size_t, off64_t);
ssize_t __pwrite64(int, const void *, size_t, off64_t);
off_t __lseek(int, off_t, int);
int __fcntl(int, int, ...);
int __dup2(int, int);
int __dprintf_chk(int, int, const char *, ...);
int __vdprintf_chk(int, int, const char *, va_list);
FILE *__setmntent(const char *, const char *); /* setmntent's second name */
/* liburing's entry points (syms.def SYMU rows), without <liburing.h> */
int io_uring_queue_init(unsigned, void *, unsigned);
int io_uring_queue_init_params(unsigned, void *, void *);
int io_uring_setup(unsigned, void *);

_Static_assert(sizeof(off_t) == 8, "qcow.h's sysio table needs a 64-bit off_t");

#define SHIM_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- real_* pointers, one per syms.def row (init.c) */
#define SYM(name, ret, params, args) extern SHIM_HIDDEN ret(*real_##name) params;
#define SYMV(name, params, args) extern SHIM_HIDDEN void(*real_##name) params;
#include "syms.def"
#undef SYM
#undef SYMV

/* The wrappers themselves: exported (everything else is hidden). */
#define SYM(name, ret, params, args) extern __typeof__(name) name __attribute__((visibility("default")));
#define SYMV(name, params, args) SYM(name, , , )
#if !SHIM_GLIBC /* musl: the glibc-only rows stay hidden (syms.def) */
#define SYM64(name, base, ret, params, args)
#define SYMG(name, ret, params, args)
#define SYMVG(name, params, args)
#endif
#include "syms.def"
#undef SYM
#undef SYMV
#undef SYM64
#undef SYMG
#undef SYMVG

/* Variables every process reads or writes at start or exit: kept in .data,
 * whose page the loader has already written (relocations), instead of
 * two more .bss pages, each a page fault in every process. */
#define SHIM_HOT __attribute__((section(".data.qcowshim_hot")))

/* ---- init.c */
void shim_init(void);            /* resolve real_*; idempotent, async-safe enough */
/* p is what a lookup of name found: the row's wrapper when p is the very
 * function the row wraps (its real_*), else p (wrap_dl.c). */
void *shim_sym_wrapper(const char *name, void *p);

void shim_setup(void);           /* policy + adoption; once */
void shim_images_used(void);     /* an image is registered: fork handlers on */
bool shim_images_were_used(void);
extern atomic_bool shim_ready;   /* shim_setup() finished */
extern __thread int shim_depth __attribute__((tls_model("initial-exec")));
extern __thread int shim_quiet __attribute__((tls_model("initial-exec"))); /* >0: silent */
extern bool shim_exiting;        /* destructor ran: flush after every write */
/* wrap_proc.c: this thread is a vfork child's, running in the parent's memory */
extern __thread bool shim_in_vfork __attribute__((tls_model("initial-exec")));
/* Fail-wrapper convention: returns -1 with errno = -r when r < 0, else r. */
static inline long shim_ret(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ---- policy.c */
/* MAPFILE: /proc/PID/map_files/X whose target is (named as) an image. */
enum shim_path_kind { SHIM_PATH_NO = 0, SHIM_PATH_MATCH, SHIM_PATH_FDREF, SHIM_PATH_PART,
		      SHIM_PATH_MAPFILE };
bool policy_enabled(void);                 /* shim active in this process */
bool policy_env_enabled(void);             /* not disabled by the environment (no system call) */
void policy_init(void);
enum shim_path_kind policy_classify(const char *path, int *fdref);
bool policy_match(const char *path);
unsigned policy_part(const char *path, size_t *image_len); /* IMAGE/pN: N, else 0 */
bool policy_no_backing(void);
const char *policy_snapshot(void);
int policy_wait_ms(void);
int policy_recheck_ms(void);
bool policy_debug(void);
bool policy_debug_resolve(void);
void shim_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *policy_self_path(void);       /* absolute path of libqcowshim.so */
bool policy_exec_probe(void);             /* QCOWSHIM_EXEC_PROBE=1: check an exec, run nothing */

/* ---- fdtab.c: fd -> open-file-description entry */
#define SHIM_FD_MAX 65536
struct shim_image;
struct shim_ofd {
	struct shim_image *img;
	atomic_int refs;       /* fds in this process referring to it */
	int accmode;           /* O_RDONLY / O_WRONLY / O_RDWR as opened */
	int eflags;            /* emulated: O_APPEND | O_DIRECT */
	bool upos;             /* position kept here (beyond host s_maxbytes) */
	uint64_t pos;
	/* IMAGE/pN (parts.c): part = N, and the fd sees only the window
	 * [base, base + len) of the disk; part = 0: the whole disk. */
	unsigned part;
	uint64_t base, len;
	int parked; /* fdtab.c: table references displaced by private fds */
	/* An O_PATH descriptor of the image: it names the image (stat, reopen
	 * through /proc/self/fd/N, dup, exec) but does no I/O, so fd_get()
	 * does not return it and I/O wrappers leave it to the kernel (EBADF). */
	bool opath;
	/* Received from another process (recvmsg, recvmmsg, pidfd_getfd) as
	 * read-only: the access mode it was opened with stayed with the sender
	 * (every image fd is read-only to the kernel: fd_seal), so a write is
	 * refused with one line instead of a bare EBADF (wrap_rw.c). */
	bool received;
	/* Record locks of this open file description (wrap_fd.c): held on a
	 * private descriptor of the same file opened with the program's access
	 * mode, as the program's own is read-only to the kernel (fd_seal) and
	 * F_WRLCK needs write access.  Handle + 1 (private fd), 0: none yet. */
	atomic_int lockh;
};
#define SHIM_PRIVATE ((struct shim_ofd *)1)
extern SHIM_HIDDEN struct shim_ofd *_Atomic shim_fdtab[SHIM_FD_MAX];
extern SHIM_HIDDEN atomic_int shim_nimages_ever;

/* The fast path: true for fds the shim must look at (images, private fds). */
static inline bool shim_fd_special(int fd)
{
	return (unsigned)fd < SHIM_FD_MAX &&
	       atomic_load_explicit(&shim_fdtab[fd], memory_order_relaxed) != NULL;
}
#define SHIM_PASS(fd) likely(!shim_fd_special(fd))

struct shim_ofd *fd_get(int fd);          /* ref'd image entry (not O_PATH) or NULL */
struct shim_ofd *fd_get_any(int fd);      /* the same, O_PATH entries too */
void fd_put(struct shim_ofd *o);
bool fd_is_private(int fd);
int fd_seal(int fd);                      /* kernel access mode O_RDONLY (issue 24) */
int fd_attach(int fd, struct shim_ofd *o); /* fd_seal, then table[fd] = o (ref taken) */
int fd_attach_opened(int fd, struct shim_ofd *o, int fl); /* just opened with flags fl */
void fd_forget(int fd);                   /* fd closed: drop entry */
void fd_forget_closed(int fd, struct shim_ofd *o); /* same, unless reused */
int fd_dup_entry(int oldfd, int newfd);   /* newfd now shares oldfd's entry */
int fd_make_private(int fd);              /* moves fd high + CLOEXEC, marks it */
void fd_private_closed(int fd);
int shim_priv_real(int handle);          /* private handle -> current fd */
int fd_evacuate(int fd);                  /* move a private fd away from `fd` */
int ofd_lockfd(int fd, struct shim_ofd *o); /* the real fd holding o's record locks, or -errno */
struct shim_ofd *ofd_new(struct shim_image *img, int accmode, int eflags);
bool fd_any_images(void);
/* Iterate image fds (for exec): calls cb(fd, ofd) under the table lock. */
void fd_foreach(void (*cb)(int fd, struct shim_ofd *o, void *arg), void *arg);
void fd_lock(void);
void fd_unlock(void);
void fd_atfork_child(void);
void fd_adopt_inherited(void);           /* constructor: inherited image fds */
void fd_adopt_received(int fd);           /* SCM_RIGHTS, pidfd_getfd: maybe an image */

/* ---- coherence.c: locks and change detection between processes */
struct shim_stamp {
	struct stat st; /* size, mtime and ctime are compared */
	bool unsure; /* taken within one coarse tick of a change: re-read anyway */
};
/* One process's view of an image's shared change page (see coherence.c). */
struct coh_state {
	struct coh_page *page; /* NULL: no shared page, check with syscalls */
	struct page_slot *slot; /* the process-wide attachment it borrows, or NULL */
	int fd;                /* private handle holding the page's shared lock */
	bool counted;          /* we added ourselves to page->readers */
	uint64_t seen;         /* page->gen when our metadata was last current */
	int64_t next_full;     /* CLOCK_MONOTONIC_COARSE ns of the next full check */
	char name[64];
};
void coh_stamp_record(int trfd, struct shim_stamp *sp);
void coh_stamp_set(struct shim_stamp *sp, const struct stat *st);
bool coh_stamp_changed(int trfd, const struct shim_stamp *sp);
bool coh_same_state(const struct stat *a, const struct stat *b); /* no write between */
int coh_check_no_writer(const char *shown, int fd);
int coh_lock_writer(const char *shown, int fd);
void coh_attach(struct coh_state *c, dev_t dev, ino_t ino);
void coh_detach(struct coh_state *c);
void coh_forget(struct coh_state *c);
void coh_pages_release(void); /* exit, exec: idle pages given back */
void coh_pages_forget(void);  /* a forked child: drop the parent's */
void coh_reader_register(struct coh_state *c, int fd);
int coh_reader_check(struct coh_state *c, const char *shown, int fd,
		     const struct shim_stamp *sp);
bool coh_readers_elsewhere(struct coh_state *c, int fd);
void coh_published(struct coh_state *c);
int coh_qemu_refuses_writer(const char *shown, int fd);

/* ---- wrap_signal.c: critical sections (the shim's locks held): the
 * program's signal handlers are deferred to the end, cancellation waits */
void shim_crit_enter(void);
void shim_crit_leave(void);
void shim_crit_child(void);   /* a new process: no section open */
void shim_fork_watch(void);   /* setup: notice children made without atfork handlers */
bool shim_vm_child(void);     /* a child in its parent's memory (raw vfork, CLONE_VM) */
void shim_cancel_point(void); /* a pending cancel acts here, outside any section */

/* ---- images.c: one translator per image per process */
struct shim_image *img_register(int fd, const struct stat *st, const char *shown_path, bool pending,
				int *err); /* st: fd's fstat */
void img_unref(struct shim_image *img);
/* -errno of the last failed flush when this thread closed a translator
 * (img_unref of the last reference); close() reports it. */
extern __thread int img_release_err __attribute__((tls_model("initial-exec")));
void img_lock(struct shim_image *img);
void img_unlock(struct shim_image *img);
/* All below: img locked.  Return 0/>=0 or -errno. */
int img_ready(struct shim_image *img, bool write);
uint64_t img_size(struct shim_image *img);
ssize_t img_pread(struct shim_image *img, void *buf, size_t n, uint64_t off);
ssize_t img_pwrite(struct shim_image *img, const void *buf, size_t n, uint64_t off);
int img_resize(struct shim_image *img, uint64_t size);
int img_zero(struct shim_image *img, uint64_t off, uint64_t n, bool unmap);
int img_flush(struct shim_image *img);
int img_map(struct shim_image *img, uint64_t off, struct qcow_extent *e);
int img_blocks(struct shim_image *img, uint64_t off, uint64_t len, uint64_t *blocks);
int img_validate(struct shim_image *img, const char *shown, bool writable);
void img_op_done(struct shim_image *img); /* after an op: exit-time flush */
const char *img_path(struct shim_image *img);
bool img_pending(struct shim_image *img);
void img_release_all(void);               /* flush+close every translator */
void img_atfork_prepare(void);
void img_atfork_parent(void);
void img_atfork_child(void);
void img_forked_child(void); /* a child made without the atfork handlers */
/* A path-level view: stat of an image path not open here.  0 or -errno. */
int img_path_stat(int dirfd, const char *path, int atflags, uint64_t *size, uint64_t *blocks);
int img_fd_stat(int fd, uint64_t *size, uint64_t *blocks, unsigned *part);
bool shim_probe_magic(int fd);
bool img_file_is_image(int fd, const struct stat *st, const char *name, bool may_create);
void img_strip_deleted(char *path);
/* An image registered in this process?  path (PATH_MAX bytes, or NULL)
 * gets its real path. */
bool img_known(dev_t dev, ino_t ino, char *path);
extern SHIM_HIDDEN const struct qcow_sysio shim_sysio;

/* ---- parts.c: what an open file description sees of its image (the whole
 * disk, or a partition's window).  All with the image locked, like img_*;
 * offsets are relative to the window; call img_ready before ofd_size. */
uint64_t ofd_size(struct shim_ofd *o);
ssize_t ofd_pread(struct shim_ofd *o, void *buf, size_t n, uint64_t off);
ssize_t ofd_pwrite(struct shim_ofd *o, const void *buf, size_t n, uint64_t off);
int ofd_resize(struct shim_ofd *o, uint64_t size);
int ofd_zero(struct shim_ofd *o, uint64_t off, uint64_t n, bool unmap);
int ofd_map(struct shim_ofd *o, uint64_t off, struct qcow_extent *e);
int ofd_blocks(struct shim_ofd *o, uint64_t *blocks);
/* open(2) of IMAGE/pN once the real open failed with ENOTDIR: fd, or -1
 * with errno (ENOTDIR again when the path is not a partition of an image). */
int part_open(int dirfd, const char *path, int flags, mode_t mode, bool is64);
void part_copy_window(struct shim_ofd *o, const char *path); /* /dev/fd/N of a partition */
void part_inherited_window(struct shim_ofd *o, const char *path, int fd); /* /proc/PID/fd/N */
/* stat/statx of IMAGE/pN after the real call failed with ENOTDIR; saved:
 * errno before that call (restored on success). */
int part_statat(int dirfd, const char *path, int atflags, struct stat *st, int saved);
int part_statx(int dirfd, const char *path, int atflags, unsigned mask, struct statx *sx,
	       int saved);
uint64_t part_ino(uint64_t ino, unsigned part); /* a partition's own st_ino */
/* After a path call failed with ENOTDIR: is path an existing IMAGE/pN?
 * Then image = IMAGE (PATH_MAX bytes); else false with errno ENOTDIR or
 * ENOENT (no such partition). */
bool part_image(int dirfd, const char *path, char *image);

/* ---- fd-level operations shared by wrappers and stdio cookies */
ssize_t shim_read(int fd, void *buf, size_t n);
ssize_t shim_write(int fd, const void *buf, size_t n);
ssize_t shim_pread(int fd, void *buf, size_t n, int64_t off);
ssize_t shim_pwrite(int fd, const void *buf, size_t n, int64_t off);
ssize_t shim_preadv(int fd, const struct iovec *v, int c, int64_t off, int flags);
ssize_t shim_pwritev(int fd, const struct iovec *v, int c, int64_t off, int flags);
int64_t shim_lseek(int fd, int64_t off, int whence);
int shim_open(int dirfd, const char *path, int flags, mode_t mode, bool is64);
int shim_close(int fd);
int shim_fstat(int fd, struct stat *st);
int shim_ftruncate(int fd, int64_t len);
int shim_fcntl(int fd, int cmd, void *arg, bool is64);
int64_t ofd_getpos(int fd, struct shim_ofd *o);
int ofd_setpos(int fd, struct shim_ofd *o, uint64_t pos);

/* ---- wrap_stdio.c */
extern SHIM_HIDDEN atomic_int shim_ncookies;
FILE *stdio_cookie(int fd, const char *mode);
void stdio_adopt_std(void);
void stdio_std_before(int fd);            /* fd 0..2 about to change */
void stdio_std_after(int fd);             /* fd 0..2 changed */
bool stdio_std_replace(FILE *f, FILE *nf); /* f a standard stream: nf replaces it */
void stdio_std_flush(void);               /* musl: flush standard streams on images */
FILE *stdio_std_reopen(const char *p, const char *m, int oflags, bool cand, FILE *f,
		       FILE *(*realfn)(const char *, const char *, FILE *)); /* musl */
void stdio_flush_all(void);
bool stdio_stream_on(int fd);             /* fd >= 3 is an open stdio stream's (glibc) */

/* ---- reach.c: ways to hand the kernel an image descriptor */
/* Does fd (not necessarily in the table) lead to an image?  Its path (for
 * messages) goes to path (PATH_MAX bytes). */
bool reach_fd_is_image(int fd, char *path);
bool reach_path_is_image(int dirfd, const char *path, int atflags); /* by name + magic */
/* One "qcowshim: PATH: refusing WHAT: ...; use INSTEAD" line; returns -err. */
int reach_refuse(const char *path, const char *what, const char *instead, int err);

/* ---- wrap_sys.c: syscall() numbers routed to their wrappers; true when
 * nr is one (*ret: the call's result, errno set by the wrapper) */
bool sys_route(long nr, const long *a, long *ret);

/* ---- wrap_proc.c: the exec guard (wrap_spawn.c uses it too) */
struct inherit; /* the image fds a new program will hold */
typedef void (*exec_plan_fn)(struct inherit *in, void *arg);
/* Where exec_prepare builds the new environment: on the caller's stack
 * (a vfork child must not allocate from the parent's heap); only the
 * announcements of a process with image fds, which never vforks, go to
 * heap[] (freed by exec_cleanup when the exec failed). */
#define EXEC_EXTRA 24 /* LD_PRELOAD, QCOWSHIM_FDS, _PARTS, the QCOWSHIM_* settings, NULL */
#define EXEC_VAR 48
#define EXEC_PRE (2 * 4096 + 64)
struct exec_stack {
	char **env, *var, *pre;
	char *heap[2];
	bool scan; /* the child gets fds we cannot list: "*" makes it look */
};
size_t proc_env_len(char *const *envp);
#define EXEC_STACK(ev)                                                         \
	char *stk_env[proc_env_len(ev) + EXEC_EXTRA];                          \
	char stk_var[EXEC_VAR], stk_pre[EXEC_PRE];                             \
	struct exec_stack stk = {stk_env, stk_var, stk_pre, {NULL, NULL}, false}
int exec_prepare(const char *path, char *const *av, char *const *envp, char ***newenv, bool spawn,
		 bool quiet, struct exec_stack *stk, exec_plan_fn plan, void *arg);
void exec_cleanup(struct exec_stack *stk);
void inherit_ofd(struct inherit *in, int fd, int as, struct shim_ofd *o);
void inherit_add(struct inherit *in, int fd, int eflags, long long pos, unsigned part,
		 uint64_t base, uint64_t len, int acc, dev_t dev, ino_t ino);
void inherit_fail(struct inherit *in);
int proc_release_for_spawn(const char *cmd);
const char *proc_resolve(const char *file, char *buf, size_t len); /* PATH search */

#endif
