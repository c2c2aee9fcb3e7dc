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
 *                          for writing (it becomes an image when written).
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

static bool enabled;
static bool debug, debug_resolve, no_backing;
static int wait_ms = 10000;
static const char *snapshot;
static int recheck_ms = 10;
static char *patterns[32];
static int npatterns;
static char self_path[PATH_MAX];

bool policy_enabled(void)
{
	return enabled;
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
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
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

	if (dladdr((void *)policy_init, &di) && di.dli_fname &&
	    !realpath(di.dli_fname, self_path))
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
	enabled = !(e && *e && strcmp(e, "0") != 0) && !program_knows_qcow2();

	e = getenv("QCOWSHIM_MATCH");
	if (!e || !*e)
		e = "*.qcow2";
	char *copy = strdup(e);
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
 * Is `path` (as a program passed it) something the shim must look at?
 * SHIM_PATH_FDREF: it names an open image fd (*fdref); SHIM_PATH_MATCH: the
 * name matches the image globs (the caller still checks the content);
 * SHIM_PATH_PART: it is IMAGE/pN for such a name (policy_part).
 */
enum shim_path_kind policy_classify(const char *path, int *fdref)
{
	if (!enabled || !path)
		return SHIM_PATH_NO;
	if (path[0] == '/' && (path[1] == 'd' || path[1] == 'p')) {
		int n = fd_alias(path);
		if (n >= 0) {
			struct shim_ofd *o = atomic_load(&shim_fdtab[n]);
			if (o && o != SHIM_PRIVATE) {
				*fdref = n;
				return SHIM_PATH_FDREF;
			}
			return SHIM_PATH_NO;
		}
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
