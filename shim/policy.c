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
 *   QCOWSHIM_EXEC_PROBE=1  (internal, the qcowshim wrapper) the first exec
 *                          wrapper call only runs the exec guard: the process
 *                          exits 0 if the program would be run, 126 after the
 *                          refusal line if not; nothing is executed.
 *   QCOWSHIM_FDS           (added, internal) set by the exec and spawn
 *                          wrappers for every new program that loads the
 *                          shim: the image fds it inherits (none: "E123:"),
 *                          with emulated O_APPEND/O_DIRECT flags, private
 *                          positions, partition windows and dev/ino,
 *                          "EPID:FD,FLAGS,POS,PART,BASE,LEN,DEV,INO;..."
 *                          (valid if PID is the program's own pid, after
 *                          exec) or "PPID:..." (valid if PID is its
 *                          parent's, after posix_spawn/system/popen); a
 *                          valid one spares the program a look at every fd
 *                          it has (fdtab.c); removed from the environment
 *                          by the program's constructor.
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
static SHIM_HOT bool env_enabled;
static atomic_int exe_state;
static SHIM_HOT bool debug, debug_resolve, no_backing, exec_probe;
static int wait_ms = 10000;
static SHIM_HOT const char *snapshot;
static int recheck_ms = 10;
static SHIM_HOT char *patterns[32];
static SHIM_HOT int npatterns;
static char patbuf[1024]; /* QCOWSHIM_MATCH's copy: no malloc */
static SHIM_HOT char default_pattern[] = "*.qcow2";
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
bool policy_exec_probe(void)
{
	return exec_probe;
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

/* The library's own path: the name the loader was given, kept as is when
 * absolute; a relative one is resolved against the cwd at start-up. */
static void self_path_init(void)
{
	Dl_info di;
	if (dladdr((void *)policy_init, &di) && di.dli_fname &&
	    (di.dli_fname[0] == '/' || !realpath(di.dli_fname, self_path))) {
		size_t n = strlen(di.dli_fname);
		n = n < sizeof self_path - 1 ? n : sizeof self_path - 1;
		memcpy(self_path, di.dli_fname, n);
		self_path[n] = 0;
	}
}

static pthread_once_t self_once = PTHREAD_ONCE_INIT;

const char *policy_self_path(void)
{
	pthread_once(&self_once, self_path_init);
	return self_path;
}

/* QCOWSHIM_MATCH, split at the first match (the environment is read at
 * start-up: a later setenv of the program's does not count). */
static SHIM_HOT const char *match_env;
static pthread_once_t match_once = PTHREAD_ONCE_INIT;

/* A pattern "*SUFFIX" without other glob characters (the default
 * "*.qcow2"): matched by comparing the name's end, without fnmatch. */
static SHIM_HOT signed char suffix_len[32]; /* -1: use fnmatch */

static void patterns_init(void)
{
	const char *e = match_env && *match_env ? match_env : NULL;
	char *copy = !e ? default_pattern : strlen(e) < sizeof patbuf ? strcpy(patbuf, e) : strdup(e);
	for (char *s = copy, *tok; copy && (tok = strsep(&s, ":"));)
		if (*tok && npatterns < (int)(sizeof patterns / sizeof patterns[0])) {
			size_t n = strlen(tok);
			suffix_len[npatterns] = tok[0] == '*' && n < 100 && !strpbrk(tok + 1, "*?[\\/")
							? (signed char)(n - 1)
							: -1;
			patterns[npatterns++] = tok;
		}
}

/* Setup reads the environment only, in one pass and without reading a
 * string constant (each first touch of a page of ours is a page fault):
 * whatever needs a system call, a library call that pages in code, or a
 * page of data waits for the first use (policy_self_path, policy_match,
 * policy_enabled). */
/* The names, in .data: a string constant would be one more page read. */
static SHIM_HOT char env_names[] = "LD_PRELOAD=\0QCOWSHIM_\0DEBUG=\0NO_BACKING=\0SNAPSHOT=\0"
				   "WAIT_MS=\0RECHECK_MS=\0DISABLE=\0MATCH=\0libqcowshim.so\0EXEC_PROBE=";
enum { N_PRELOAD, N_PREFIX, N_DEBUG, N_NO_BACKING, N_SNAPSHOT, N_WAIT, N_RECHECK, N_DISABLE, N_MATCH,
       N_LIBNAME, N_EXEC_PROBE };

static const char *env_name(int k)
{
	const char *n = env_names;
	while (k--)
		n += strlen(n) + 1;
	return n;
}

/* If e starts with name k: what follows it, else NULL. */
static const char *env_is(const char *e, int k)
{
	const char *n = env_name(k);
	while (*n && *e == *n)
		e++, n++;
	return *n ? NULL : e;
}
#define ENV_IS(e, k) ((v = env_is(e, k)) != NULL)
void policy_init(void)
{
	extern char **environ;
	const char *e, *v;

	env_enabled = true;
	for (char **ep = environ; ep && (e = *ep); ep++) {
		if (ENV_IS(e, N_PRELOAD)) { /* a relative name of ours: resolve it now */
			for (const char *p = strstr(v, env_name(N_LIBNAME)); p; p = NULL) {
				while (p > v && p[-1] != ':' && p[-1] != ' ')
					p--;
				if (*p != '/')
					policy_self_path();
			}
			continue;
		}
		if (!ENV_IS(e, N_PREFIX))
			continue;
		e = v;
		if (ENV_IS(e, N_DEBUG)) {
			debug = *v && strcmp(v, "0") != 0;
			debug_resolve = strcmp(v, "resolve") == 0;
		} else if (ENV_IS(e, N_NO_BACKING)) {
			no_backing = *v && strcmp(v, "0") != 0;
		} else if (ENV_IS(e, N_SNAPSHOT)) {
			snapshot = *v ? v : NULL;
		} else if (ENV_IS(e, N_WAIT)) {
			if (*v)
				wait_ms = atoi(v);
		} else if (ENV_IS(e, N_RECHECK)) {
			if (*v && atoi(v) >= 0)
				recheck_ms = atoi(v);
		} else if (ENV_IS(e, N_DISABLE)) {
			env_enabled = !(*v && strcmp(v, "0") != 0);
		} else if (ENV_IS(e, N_MATCH)) {
			match_env = v;
		} else if (ENV_IS(e, N_EXEC_PROBE)) {
			exec_probe = strcmp(v, "1") == 0;
		}
	}
}

bool policy_match(const char *path)
{
	pthread_once(&match_once, patterns_init);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t blen = 0;
	for (int i = 0; i < npatterns; i++) {
		if (suffix_len[i] >= 0) {
			size_t n = (size_t)suffix_len[i];
			if (!blen)
				blen = strlen(base);
			if (blen >= n && memcmp(base + blen - n, patterns[i] + 1, n) == 0)
				return true;
			continue;
		}
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
