/*
 * policy.c - every "should the shim act?" decision, and the message sink.
 *
 * Environment (read once, at setup; wrappers never call getenv):
 *   QCOWSHIM_DISABLE=1     the shim passes everything through.
 *   QCOWSHIM_MATCH=G1:G2   ':'-separated fnmatch(3) globs naming images
 *                          (default "*.qcow2").  A glob without '/' is
 *                          matched against the path's last component, one
 *                          with '/' against the whole path as the program
 *                          passed it (for fds inherited across exec: the
 *                          absolute path /proc/self/fd shows).  A matching file is an image only if it
 *                          starts with the QCOW2 magic, or is empty and opened
 *                          for writing (it becomes an image when written) or
 *                          created by this open.  /proc/P/fd/N, /dev/fd/N
 *                          and map_files links are judged by their target.
 *                          IMAGE/pN, where IMAGE matches, names partition N
 *                          of IMAGE's disk (parts.c).
 *   QCOWSHIM_DEBUG=1       one stderr line per image open, creation, refusal.
 *                          QCOWSHIM_DEBUG=resolve also lists, at start-up,
 *                          which object each interposed symbol resolved to.
 *   QCOWSHIM_NO_BACKING=1  refuse images that need a backing/data file.
 *   QCOWSHIM_SNAPSHOT=NAME (added) present every image read-only as its
 *                          internal snapshot NAME (or id); writes fail with
 *                          EROFS, an image without it is refused.
 *   QCOWSHIM_WAIT_MS=N     (added) how long an open or I/O waits for another
 *                          qcowshim process that is writing the same image
 *                          before failing with EBUSY; default 10000.
 *   QCOWSHIM_RECHECK_MS=N  (added) how often a process reading an image asks
 *                          the kernel whether a program outside the shim (or
 *                          of another user) changed it; shim writers of the
 *                          same user are seen at once.  Default 10.
 *   QCOWSHIM_FDS           (added, internal) set by the exec and spawn
 *                          wrappers for the new program: emulated O_APPEND/
 *                          O_DIRECT flags and private positions of inherited
 *                          image fds, "EPID:FD,FLAGS,POS;..." (valid if PID
 *                          is the program's own pid, after exec) or
 *                          "PPID:..." (valid if PID is its parent's, after
 *                          posix_spawn/system/popen); removed from the
 *                          environment by the program's constructor.
 * Programs that understand QCOW2 themselves run untouched: the shim disables
 * itself when /proc/self/exe's name starts with "qemu-" (qemu-img, qemu-io,
 * qemu-nbd, qemu-storage-daemon, qemu-system-*).
 */
#include "shim.h"

#include <dlfcn.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* env_enabled: QCOWSHIM_DISABLE does not say otherwise (read at setup);
 * exe_state: 0 = /proc/self/exe not read yet, 1 = not a qemu program,
 * 2 = a qemu program.  The exe is read only when something could concern
 * an image, so a process that never meets one makes no system call for it. */
static bool env_enabled;
static atomic_int exe_state;
static bool debug, debug_resolve, no_backing;
static int wait_ms = 10000;
static const char *snapshot;
static int recheck_ms = 10;
static char *patterns[32];
static int npatterns;
static char patbuf[1024]; /* QCOWSHIM_MATCH's copy: no malloc at start */
static char self_path[PATH_MAX];

static bool program_knows_qcow2(void);

bool policy_env_enabled(void)
{
	return env_enabled;
}

bool policy_enabled(void)
{
	if (!env_enabled)
		return false;
	int st = atomic_load_explicit(&exe_state, memory_order_relaxed);
	if (unlikely(st == 0)) {
		st = program_knows_qcow2() ? 2 : 1;
		atomic_store_explicit(&exe_state, st, memory_order_relaxed);
	}
	return st == 1;
}
bool policy_debug(void)
{
	return debug;
}
bool policy_debug_resolve(void)
{
	return debug_resolve;
}
bool policy_no_backing(void)
{
	return no_backing;
}
const char *policy_snapshot(void)
{
	return snapshot;
}
int policy_wait_ms(void)
{
	return wait_ms;
}
int policy_recheck_ms(void)
{
	return recheck_ms;
}
const char *policy_self_path(void)
{
	return self_path;
}

static bool program_knows_qcow2(void)
{
	char exe[PATH_MAX];
	int saved = errno;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	errno = saved;
	if (n <= 0)
		return false;
	exe[n] = 0;
	const char *base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	return strncmp(base, "qemu-", 5) == 0;
}

void policy_init(void)
{
	const char *e;
	Dl_info di;

	/* The name the loader was given: kept as is when absolute (no system
	 * call); a relative one is resolved now, against the first cwd. */
	if (dladdr((void *)policy_init, &di) && di.dli_fname &&
	    (di.dli_fname[0] == '/' || !realpath(di.dli_fname, self_path)))
		snprintf(self_path, sizeof self_path, "%s", di.dli_fname);
	e = getenv("QCOWSHIM_DEBUG");
	debug = e && *e && strcmp(e, "0") != 0;
	debug_resolve = e && strcmp(e, "resolve") == 0;
	e = getenv("QCOWSHIM_NO_BACKING");
	no_backing = e && *e && strcmp(e, "0") != 0;
	e = getenv("QCOWSHIM_SNAPSHOT");
	snapshot = e && *e ? e : NULL;
	e = getenv("QCOWSHIM_WAIT_MS");
	if (e && *e)
		wait_ms = atoi(e);
	e = getenv("QCOWSHIM_RECHECK_MS");
	if (e && *e && atoi(e) >= 0)
		recheck_ms = atoi(e);
	e = getenv("QCOWSHIM_DISABLE");
	env_enabled = !(e && *e && strcmp(e, "0") != 0);

	e = getenv("QCOWSHIM_MATCH");
	if (!e || !*e)
		e = "*.qcow2";
	char *copy = strlen(e) < sizeof patbuf ? strcpy(patbuf, e) : strdup(e);
	for (char *s = copy, *tok; copy && (tok = strsep(&s, ":"));)
		if (*tok && npatterns < (int)(sizeof patterns / sizeof patterns[0]))
			patterns[npatterns++] = tok;
}

bool policy_match(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	for (int i = 0; i < npatterns; i++) {
		const char *subject = strchr(patterns[i], '/') ? path : base;
		if (fnmatch(patterns[i], subject, 0) == 0)
			return true;
	}
	return false;
}

/*
 * "IMAGE/pN" (N a decimal >= 1 without leading zero) whose IMAGE matches the
 * globs: N, and *image_len = strlen(IMAGE); else 0.  Only the name is
 * checked: the caller decides (a real directory IMAGE wins, see parts.c).
 */
unsigned policy_part(const char *path, size_t *image_len)
{
	const char *slash = strrchr(path, '/');
	unsigned long n = 0;
	if (!slash || slash == path || slash[1] != 'p' || slash[2] < '1' || slash[2] > '9')
		return 0;
	for (const char *c = slash + 2; *c; c++) {
		if (*c < '0' || *c > '9' || n > 1000000)
			return 0;
		n = n * 10 + (unsigned long)(*c - '0');
	}
	char image[PATH_MAX];
	size_t len = (size_t)(slash - path);
	if (n > 1000000 || len >= sizeof image)
		return 0;
	memcpy(image, path, len);
	image[len] = 0;
	if (!policy_match(image))
		return 0;
	*image_len = len;
	return (unsigned)n;
}

/* "/dev/fd/N" and friends: the number, or -1. */
static int fd_alias(const char *path)
{
	static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
	const char *num = NULL;
	for (int i = 0; i < 3; i++)
		if (strcmp(path, std[i]) == 0)
			return i;
	if (strncmp(path, "/dev/fd/", 8) == 0)
		num = path + 8;
	else if (strncmp(path, "/proc/self/fd/", 14) == 0)
		num = path + 14;
	else if (strncmp(path, "/proc/thread-self/fd/", 21) == 0)
		num = path + 21;
	else if (strncmp(path, "/proc/", 6) == 0) {
		char *end;
		long pid = strtol(path + 6, &end, 10);
		if (end != path + 6 && pid == getpid() && strncmp(end, "/fd/", 4) == 0)
			num = end + 4;
	}
	if (!num || *num < '0' || *num > '9')
		return -1;
	char *end;
	long n = strtol(num, &end, 10);
	if (*end || n < 0 || n >= SHIM_FD_MAX)
		return -1;
	return (int)n;
}

/*
 * /proc/P/fd/N, /proc/P/task/T/fd/N (P a pid, "self" or "thread-self"):
 * 1; /proc/P/map_files/RANGE: 2; anything else: 0.  Only the shape.
 */
static int proc_link(const char *path)
{
	const char *c;
	if (strncmp(path, "/proc/", 6) != 0)
		return 0;
	c = strchr(path + 6, '/');
	if (!c)
		return 0;
	c++;
	if (strncmp(c, "task/", 5) == 0) {
		c = strchr(c + 5, '/');
		if (!c)
			return 0;
		c++;
	}
	int kind = strncmp(c, "fd/", 3) == 0 ? 1 : strncmp(c, "map_files/", 10) == 0 ? 2 : 0;
	c += kind == 1 ? 3 : kind == 2 ? 10 : 0;
	return kind && *c && !strchr(c, '/') ? kind : 0;
}

/*
 * A magic link (an fd of this or another process, a mapped file) leads to
 * an inode, whatever its name: decide by where it leads.  It is an image
 * when its target's name matches the globs (the caller still checks the
 * content) or it is an image this process already has open.  Costs a
 * readlink (and a stat when images are open), only for such paths.
 */
static enum shim_path_kind alias_kind_(const char *link, bool map);

static enum shim_path_kind alias_kind(const char *link, bool map)
{
	int saved = errno; /* a failed readlink/stat is no error of the caller's */
	enum shim_path_kind k = alias_kind_(link, map);
	errno = saved;
	return k;
}

static enum shim_path_kind alias_kind_(const char *link, bool map)
{
	char t[PATH_MAX];
	struct stat st;
	ssize_t n = readlink(link, t, sizeof t - 1);
	if (n <= 0 || t[0] != '/') /* pipe:[N], socket:[N], anon_inode:... */
		return SHIM_PATH_NO;
	t[n] = 0;
	static const char deleted[] = " (deleted)";
	if (n > (ssize_t)sizeof deleted && strcmp(t + n - (sizeof deleted - 1), deleted) == 0)
		t[n - (sizeof deleted - 1)] = 0;
	if (!policy_match(t) &&
	    (!fd_any_images() || real_stat(link, &st) < 0 || !S_ISREG(st.st_mode) ||
	     !img_known(st.st_dev, st.st_ino, NULL)))
		return SHIM_PATH_NO;
	return map ? SHIM_PATH_MAPFILE : SHIM_PATH_MATCH;
}

static enum shim_path_kind policy_classify_(const char *path, int *fdref);

/*
 * Is `path` (as a program passed it) something the shim must look at?
 * SHIM_PATH_FDREF: it names an open image fd of this process (*fdref);
 * SHIM_PATH_MATCH: the name matches the image globs, or it is a /proc or
 * /dev/fd link to such a file (the caller still checks the content);
 * SHIM_PATH_PART: it is IMAGE/pN for such a name (policy_part);
 * SHIM_PATH_MAPFILE: /proc/P/map_files/X of such a file.
 */
enum shim_path_kind policy_classify(const char *path, int *fdref)
{
	enum shim_path_kind k = policy_classify_(path, fdref);
	return k != SHIM_PATH_NO && !policy_enabled() ? SHIM_PATH_NO : k;
}

static enum shim_path_kind policy_classify_(const char *path, int *fdref)
{
	if (!env_enabled || !path)
		return SHIM_PATH_NO;
	if (path[0] == '/' && (path[1] == 'd' || path[1] == 'p')) {
		int n = fd_alias(path), k;
		if (n >= 0) {
			struct shim_ofd *o = atomic_load(&shim_fdtab[n]);
			if (o && o != SHIM_PRIVATE) {
				*fdref = n;
				return SHIM_PATH_FDREF;
			}
			char self[40]; /* /dev/stdin is itself a symlink: use the fd */
			snprintf(self, sizeof self, "/proc/self/fd/%d", n);
			return alias_kind(self, false);
		}
		if ((k = proc_link(path)))
			return alias_kind(path, k == 2);
	}
	if (policy_match(path))
		return SHIM_PATH_MATCH;
	size_t len;
	return policy_part(path, &len) ? SHIM_PATH_PART : SHIM_PATH_NO;
}

static void emit(const char *fmt, va_list ap)
{
	char buf[1200];
	int n = snprintf(buf, sizeof buf, "qcowshim: ");
	int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	/* Never write a message into an image that happens to be stderr. */
	if (shim_fd_special(2))
		return;
	int saved = errno;
	(void)!real_write(2, buf, (size_t)n);
	errno = saved;
}

void shim_msg(const char *fmt, ...)
{
	va_list ap;
	if (shim_quiet)
		return;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}

void shim_debug(const char *fmt, ...)
{
	if (!debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}
