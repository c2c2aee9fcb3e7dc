/*
 * wrap_proc.c - fork, vfork, _exit, the exec family, posix_spawn(p), system, popen.
 *
 * fork: the pthread_atfork handlers (images.c) flush and close every
 * translator first, so the child starts with no translator state and an idle
 * parent holds no lock.  vfork is the real one while no image fd is open
 * (the child then changes nothing of the shim's: see vfork), else fork.
 * _exit/_Exit flush first, as exit() does through the destructor.
 * exec: translators are flushed and closed (exec runs no destructor).  When
 * image fds stay open across the exec, the target must load the shim: its
 * environment gets LD_PRELOAD back if it was dropped, and QCOWSHIM_FDS
 * carries the emulated per-fd flags; a static, setuid/setgid, foreign-
 * loader or 32-bit target is refused with EPERM and one message, since it
 * would see (and could write) raw QCOW2 bytes.  posix_spawn/system/popen
 * get the same treatment where the shim can see the target.  Executing an
 * image itself (execve of its path, fexecve of its fd) fails with EACCES.
 */
#include "shim.h"

#include <elf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

extern char **environ;

#define SHIM_STR_(x) #x
#define SHIM_STR(x) SHIM_STR_(x)

pid_t fork(void)
{
	return real_fork(); /* atfork handlers do the work */
}

/*
 * vfork: the real one (the raw system call, as glibc makes it) while this
 * process has no image fd: a shell that runs a program pays for copying
 * nothing, as without the shim.  The child runs in our memory until it
 * execs or exits, so while it runs (shim_in_vfork, set in this thread's
 * storage, which the child shares; cleared when the parent resumes) the
 * shim changes no state of ours: an exec announces "no image fds" from the
 * stack (exec_prepare), an image open fails with EPERM (img_register), and
 * _exit releases nothing.  With image fds open, vfork is fork, as before.
 * The wrapper has no stack frame: the child returns through the same stack.
 */
__thread bool shim_in_vfork __attribute__((tls_model("initial-exec")));

__attribute__((used)) int shim_vfork_begin(void)
{
	if (!atomic_load(&shim_ready) || fd_any_images())
		return 0;
	shim_in_vfork = true;
	return 1;
}

__attribute__((used)) void shim_vfork_end(void)
{
	shim_in_vfork = false;
}

__attribute__((used)) pid_t shim_vfork_fork(void)
{
	return real_fork();
}

#if defined(__x86_64__) && defined(SYS_vfork)
__attribute__((naked)) pid_t vfork(void)
{
	__asm__("sub $8, %rsp\n\t"
		"call shim_vfork_begin\n\t"
		"add $8, %rsp\n\t"
		"test %eax, %eax\n\t"
		"jz 2f\n\t"
		"pop %rdi\n\t" /* the return address: the child may overwrite its slot */
		"mov $" SHIM_STR(SYS_vfork) ", %eax\n\t"
		"syscall\n\t"
		"push %rdi\n\t"
		"test %rax, %rax\n\t"
		"jz 1f\n\t" /* the child */
		"push %rax\n\t"
		"call shim_vfork_end\n\t"
		"pop %rax\n\t"
		"cmp $-4095, %rax\n\t"
		"jae 2f\n" /* refused (seccomp...): fork instead */
		"1:\tret\n"
		"2:\tjmp shim_vfork_fork\n");
}
#else
pid_t vfork(void)
{
	return real_fork();
}
#endif

void _exit(int st)
{
	if (atomic_load(&shim_ready) && shim_images_were_used() && !shim_in_vfork)
		img_release_all();
	real__exit(st);
	__builtin_unreachable();
}

void _Exit(int st)
{
	if (atomic_load(&shim_ready) && shim_images_were_used() && !shim_in_vfork)
		img_release_all();
	real__Exit(st);
	__builtin_unreachable();
}

/* ---- the exec guard */

struct inherit {
	int first_fd; /* an image fd that stays open, or -1 */
	char *fds;    /* QCOWSHIM_FDS value */
	size_t len, cap;
};

static void inherit_cb(int fd, struct shim_ofd *o, void *arg)
{
	struct inherit *in = arg;
	struct stat st;
	int fl = real_fcntl(fd, F_GETFD, NULL);
	if (fl < 0 || (fl & FD_CLOEXEC) || real_fstat(fd, &st) < 0)
		return;
	if (in->first_fd < 0)
		in->first_fd = fd;
	char item[192];
	int n = snprintf(item, sizeof item, "%d,%d,%lld,%u,%llu,%llu,%llu,%llu;", fd, o->eflags,
			 o->upos ? (long long)o->pos : -1LL, o->part, (unsigned long long)o->base,
			 (unsigned long long)o->len, (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
	if (in->len + (size_t)n + 1 > in->cap) {
		size_t cap = (in->cap + (size_t)n + 1) * 2;
		char *p = realloc(in->fds, cap);
		if (!p)
			return;
		in->fds = p;
		in->cap = cap;
	}
	memcpy(in->fds + in->len, item, (size_t)n + 1);
	in->len += (size_t)n;
}

/* Why `path` would not load the shim, or NULL if it would (or if it cannot
 * be inspected: then the exec itself fails). */
static const char *target_problem(const char *path, int depth, char *why, size_t whylen)
{
	struct stat st;
	unsigned char hdr[256];
	int fd = real_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (real_fstat(fd, &st) < 0) {
		real_close(fd);
		return NULL;
	}
	if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getegid())) {
		real_close(fd);
		return "it is setuid/setgid (the loader ignores LD_PRELOAD)";
	}
	ssize_t n = real_pread64(fd, hdr, sizeof hdr - 1, 0);
	const char *res = NULL;
	if (n >= 2 && hdr[0] == '#' && hdr[1] == '!') {
		hdr[n] = 0;
		char *p = (char *)hdr + 2, *e;
		while (*p == ' ' || *p == '\t')
			p++;
		for (e = p; *e && *e != ' ' && *e != '\t' && *e != '\n'; e++)
			;
		*e = 0;
		real_close(fd);
		return depth < 4 && *p ? target_problem(p, depth + 1, why, whylen) : NULL;
	}
	if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(hdr, ELFMAG, SELFMAG) != 0) {
		real_close(fd);
		return NULL;
	}
	if (hdr[EI_CLASS] != ELFCLASS64) {
		real_close(fd);
		return "it is a 32-bit program";
	}
	Elf64_Ehdr eh;
	memcpy(&eh, hdr, sizeof eh);
	res = "it is statically linked";
	for (int i = 0; i < eh.e_phnum && i < 256; i++) {
		Elf64_Phdr ph;
		if (real_pread64(fd, &ph, sizeof ph, (off64_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof ph)
			break;
		if (ph.p_type != PT_INTERP)
			continue;
		char interp[PATH_MAX];
		size_t len = ph.p_filesz < sizeof interp - 1 ? ph.p_filesz : sizeof interp - 1;
		ssize_t got = real_pread64(fd, interp, len, (off64_t)ph.p_offset);
		interp[got > 0 ? got : 0] = 0;
		if (strstr(interp, SHIM_LOADER)) {
			res = NULL;
		} else {
			snprintf(why, whylen, "it uses another dynamic loader (%s)", interp);
			res = why;
		}
		break;
	}
	real_close(fd);
	return res;
}

/* PATH search as execvp does, for inspection only. */
static const char *resolve(const char *file, char *buf, size_t len)
{
	if (strchr(file, '/'))
		return file;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (const char *p = path; *p;) {
		const char *e = strchr(p, ':');
		size_t dl = e ? (size_t)(e - p) : strlen(p);
		snprintf(buf, len, "%.*s%s%s", (int)dl, p, dl ? "/" : "", file);
		if (access(buf, X_OK) == 0)
			return buf;
		p += dl + (e ? 1 : 0);
		if (!e)
			break;
	}
	return file;
}

static bool has_shim(const char *v)
{
	return v && strstr(v, "libqcowshim.so");
}

/* Does the environment load the shim (LD_PRELOAD names it)? */
static bool env_loads_shim(char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], "LD_PRELOAD=", 11))
			return has_shim(envp[i] + 11);
	return false;
}

static size_t env_len(char *const *envp)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	return n;
}

/* Room for an environment announcing no image fd, on the caller's stack:
 * a vfork child (see vfork below) must not allocate from our heap. */
#define EXEC_STACK(ev)                                                         \
	char *stk_env[env_len(ev) + 2];                                        \
	char stk_var[48];                                                      \
	struct exec_stack stk = {stk_env, stk_var, false}
struct exec_stack {
	char **env, *var;
	bool scan; /* the child gets fds we cannot list (spawn file actions) */
};

/*
 * Before exec of `path` with environment `envp`: flush everything; if image
 * fds stay open, check the target and build the environment to use.  A
 * target that loads the shim is always told which image fds it inherits
 * (QCOWSHIM_FDS, none: "E123:", built in stk), so it need not look at every
 * fd it has (fdtab.c), unless quiet (system/popen, which put it in environ)
 * and there are none.  Returns 0 (*newenv: NULL = use envp unchanged) or -EPERM.
 */
static int exec_prepare(const char *path, char *const *envp, char ***newenv, bool spawn,
			bool quiet, struct exec_stack *stk)
{
	*newenv = NULL;
	/* execve/fexecve of an image: the kernel would load the host bytes */
	if (path && atomic_load(&shim_ready) && reach_path_is_image(AT_FDCWD, path, 0))
		return reach_refuse(path, "to execute an image",
				    "boot it (qemu-system-*) or run a program from inside it", EACCES);
	if (!atomic_load(&shim_ready) || !policy_env_enabled())
		return 0;
	bool images = fd_any_images();
	if (!images && (quiet || !env_loads_shim(envp) || !policy_enabled()))
		return 0;
	struct inherit in = {.first_fd = -1};
	if (images) {
		fd_foreach(inherit_cb, &in);
		img_release_all();
	}
	if (in.first_fd < 0) {
		free(in.fds);
		if (quiet || !env_loads_shim(envp))
			return 0;
		size_t k = 0;
		for (size_t i = 0; envp && envp[i]; i++)
			if (strncmp(envp[i], "QCOWSHIM_FDS=", 13))
				stk->env[k++] = envp[i];
		snprintf(stk->var, 48, "QCOWSHIM_FDS=%c%d:%s", spawn ? 'P' : 'E', (int)getpid(),
			 stk->scan ? "*;" : "");
		stk->env[k++] = stk->var;
		stk->env[k] = NULL;
		*newenv = stk->env;
		return 0;
	}
	char why[PATH_MAX + 64];
	const char *problem =
		path && in.first_fd >= 0 ? target_problem(path, 0, why, sizeof why) : NULL;
	if (problem) {
		shim_msg("refusing to run %s: %s, and it would see raw QCOW2 bytes on image fd %d "
			 "(close the image or mark it close-on-exec)",
			 path, problem, in.first_fd);
		free(in.fds);
		return -EPERM;
	}
	size_t n = 0;
	while (envp && envp[n])
		n++;
	char **env = calloc(n + 3, sizeof *env);
	char *pre = NULL, *fds = NULL;
	/* E<pid>: for this process after exec; P<pid>: for a child it spawns */
	if (!env || asprintf(&fds, "QCOWSHIM_FDS=%c%d:%s%s", spawn ? 'P' : 'E', (int)getpid(),
			     in.fds ? in.fds : "", stk->scan ? "*;" : "") < 0) {
		free(env);
		free(in.fds);
		return 0; /* best effort: exec as asked */
	}
	free(in.fds);
	size_t k = 0;
	bool preload = false;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(envp[i], "QCOWSHIM_FDS=", 13))
			continue;
		if (!strncmp(envp[i], "LD_PRELOAD=", 11)) {
			if (!has_shim(envp[i] + 11) &&
			    asprintf(&pre, "LD_PRELOAD=%s:%s", policy_self_path(), envp[i] + 11) > 0) {
				env[k++] = pre;
			} else {
				env[k++] = envp[i];
			}
			preload = true;
			continue;
		}
		env[k++] = envp[i];
	}
	if (!preload && asprintf(&pre, "LD_PRELOAD=%s", policy_self_path()) > 0)
		env[k++] = pre;
	env[k++] = fds;
	env[k] = NULL;
	*newenv = env;
	return 0;
}

/* Frees what exec_prepare allocated (only reached when exec failed). */
static void exec_cleanup(char **env, char *const *envp, struct exec_stack *stk)
{
	if (!env || env == stk->env)
		return;
	for (size_t i = 0; env[i]; i++) {
		bool orig = false;
		for (size_t j = 0; envp && envp[j]; j++)
			if (env[i] == envp[j])
				orig = true;
		if (!orig)
			free(env[i]);
	}
	free(env);
}

static int do_execve(const char *path, char *const *av, char *const *ev)
{
	char **env;
	EXEC_STACK(ev);
	int r = exec_prepare(path, ev, &env, false, false, &stk);
	if (r < 0)
		return (int)shim_ret(r);
	r = real_execve(path, av, env ? env : ev);
	int e = errno;
	exec_cleanup(env, ev, &stk);
	errno = e;
	return r;
}

static int do_execvpe(const char *file, char *const *av, char *const *ev)
{
	char **env, buf[PATH_MAX];
	EXEC_STACK(ev);
	int r = exec_prepare(resolve(file, buf, sizeof buf), ev, &env, false, false, &stk);
	if (r < 0)
		return (int)shim_ret(r);
	r = real_execvpe(file, av, env ? env : ev);
	int e = errno;
	exec_cleanup(env, ev, &stk);
	errno = e;
	return r;
}

int execve(const char *p, char *const *av, char *const *ev)
{
	return do_execve(p, av, ev);
}

int execv(const char *p, char *const *av)
{
	return do_execve(p, av, environ);
}

int execvp(const char *p, char *const *av)
{
	return do_execvpe(p, av, environ);
}

int execvpe(const char *p, char *const *av, char *const *ev)
{
	return do_execvpe(p, av, ev);
}

/* execl family: collect the arguments, then as execv*. */
#define COLLECT_ARGS(a0, argv, ap)                                             \
	size_t n_ = 1;                                                         \
	va_start(ap, a0);                                                      \
	while (va_arg(ap, const char *))                                       \
		n_++;                                                          \
	va_end(ap);                                                            \
	const char **argv = __builtin_alloca((n_ + 1) * sizeof *argv);         \
	va_start(ap, a0);                                                      \
	argv[0] = a0;                                                          \
	for (size_t i_ = 1; i_ <= n_; i_++)                                    \
		argv[i_] = va_arg(ap, const char *);

int execl(const char *p, const char *a0, ...)
{
	va_list ap;
	COLLECT_ARGS(a0, argv, ap)
	va_end(ap);
	return do_execve(p, (char *const *)argv, environ);
}

int execlp(const char *p, const char *a0, ...)
{
	va_list ap;
	COLLECT_ARGS(a0, argv, ap)
	va_end(ap);
	return do_execvpe(p, (char *const *)argv, environ);
}

int execle(const char *p, const char *a0, ...)
{
	va_list ap;
	COLLECT_ARGS(a0, argv, ap)
	char *const *ev = va_arg(ap, char *const *);
	va_end(ap);
	return do_execve(p, (char *const *)argv, ev);
}

int fexecve(int fd, char *const *av, char *const *ev)
{
	char **env, p[64];
	EXEC_STACK(ev);
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int r = exec_prepare(p, ev, &env, false, false, &stk);
	if (r < 0)
		return (int)shim_ret(r);
	r = real_fexecve(fd, av, env ? env : ev);
	int e = errno;
	exec_cleanup(env, ev, &stk);
	errno = e;
	return r;
}

static int spawn(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *at, char *const *av, char *const *ev, bool search)
{
	char **env, buf[PATH_MAX];
	EXEC_STACK(ev);
	/* file actions open or dup fds in the child that no list of ours
	 * names: "*" makes the child look at every fd it has */
	stk.scan = fa != NULL;
	int r = exec_prepare(search ? resolve(p, buf, sizeof buf) : p, ev, &env, true, false, &stk);
	if (r < 0)
		return -r;
	r = (search ? real_posix_spawnp : real_posix_spawn)(pid, p, fa, at, av, env ? env : ev);
	exec_cleanup(env, ev, &stk);
	return r;
}

int posix_spawn(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,
		const posix_spawnattr_t *at, char *const *av, char *const *ev)
{
	return spawn(pid, p, fa, at, av, ev, false);
}

int posix_spawnp(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *at, char *const *av, char *const *ev)
{
	return spawn(pid, p, fa, at, av, ev, true);
}

/*
 * A spawn file action opening an image would reach the kernel with
 * O_TRUNC/O_APPEND/O_DIRECT in the child, where no wrapper runs: O_TRUNC
 * would destroy the QCOW2 structure.  Strip them for existing images and
 * empty the virtual disk now (O_TRUNC), through the shim's own open.
 */
int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *p, int fl,
				     mode_t m)
{
	int ref;
	if (!atomic_load(&shim_ready) || shim_depth || !(fl & (O_TRUNC | O_APPEND | O_DIRECT)) ||
	    policy_classify(p, &ref) == SHIM_PATH_NO)
		return real_posix_spawn_file_actions_addopen(fa, fd, p, fl, m);
	int saved = errno;
	int tfd = shim_open(AT_FDCWD, p, (fl & ~(O_APPEND | O_DIRECT | O_EXCL)) | O_CLOEXEC, m, true);
	bool image = tfd >= 0 && shim_fd_special(tfd);
	if (tfd >= 0)
		close(tfd);
	errno = saved;
	if (image)
		fl &= ~(O_TRUNC | O_APPEND | O_DIRECT | O_CREAT | O_EXCL);
	return real_posix_spawn_file_actions_addopen(fa, fd, p, fl, m);
}

/* system/popen run /bin/sh (dynamic) with environ: flush, and make sure
 * inherited image fds keep the shim. */
void proc_release_for_spawn(void)
{
	char **env;
	EXEC_STACK(environ);
	if (exec_prepare("/bin/sh", environ, &env, true, true, &stk) == 0 && env) {
		/* environ is what the shell gets: a dropped LD_PRELOAD comes
		 * back, and QCOWSHIM_FDS (P<our pid>) reaches our direct child
		 * only; it is rewritten at every later spawn or exec, and
		 * system/popen remove it once the shell has it (a later child
		 * of ours exec'd without the wrappers must not take that list
		 * for its own). */
		const char *cur = getenv("LD_PRELOAD");
		for (size_t i = 0; env[i]; i++)
			if ((!strncmp(env[i], "LD_PRELOAD=", 11) && !has_shim(cur)) ||
			    !strncmp(env[i], "QCOWSHIM_FDS=", 13))
				putenv(env[i]); /* deliberately kept: environ owns it now */
		free(env);
	}
}

static void spawned(void)
{
	if (getenv("QCOWSHIM_FDS")) {
		int saved = errno;
		unsetenv("QCOWSHIM_FDS");
		errno = saved;
	}
}

int system(const char *cmd)
{
	proc_release_for_spawn();
	int r = real_system(cmd);
	spawned();
	return r;
}

FILE *popen(const char *cmd, const char *m)
{
	proc_release_for_spawn();
	FILE *f = real_popen(cmd, m);
	spawned();
	return f;
}
