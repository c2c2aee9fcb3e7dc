/*
 * wrap_proc.c - fork, vfork, _exit, the exec family, posix_spawn(p), system, popen.
 *
 * fork: the pthread_atfork handlers (images.c) flush and close every
 * translator first, so the child starts with no translator state and an idle
 * parent holds no lock.  vfork is the real one while no image fd is open
 * (the child then changes nothing of the shim's: see vfork), else fork.
 * _exit/_Exit flush first, as exit() does through the destructor.
 * exec: translators are flushed and closed (exec runs no destructor).  The
 * exec guard (exec_prepare) works out which image fds the new program will
 * hold and which images its arguments name; if any, a target that cannot
 * load the shim (static, setuid/setgid, file capabilities, another loader
 * or ELF class) is refused with EPERM and one message.  Its environment
 * gets LD_PRELOAD back if it was dropped, and QCOWSHIM_FDS announces the
 * image fds it inherits (none: "E<pid>:", so it need not look at its fds).
 * posix_spawn (wrap_spawn.c), system and popen get the same treatment.
 * Executing an image itself (execve of its path, fexecve of its fd) fails
 * with EACCES.
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

/* What the new program will hold: image fds that survive the exec. */
struct inherit {
	int first_fd; /* an image fd that stays open, or -1 */
	char *fds;    /* QCOWSHIM_FDS value */
	size_t len, cap;
	bool oom;
	char parts[1024]; /* this process's partition fds, for QCOWSHIM_PARTS */
};

/* Every partition fd of this process, close-on-exec or not: a descendant
 * may reopen it as /proc/PID/fd/N (parts.c part_inherited_window). */
static void parts_cb(int fd, struct shim_ofd *o, void *arg)
{
	struct inherit *in = arg;
	struct stat st;
	size_t l = strlen(in->parts);
	if (!o->part || real_fstat(fd, &st) < 0 || l > sizeof in->parts - 128)
		return;
	snprintf(in->parts + l, sizeof in->parts - l, "%d:%d,%u,%llu,%llu,%llu,%llu;", (int)getpid(),
		 fd, o->part, (unsigned long long)o->base, (unsigned long long)o->len,
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

void inherit_add(struct inherit *in, int fd, int eflags, long long pos, unsigned part,
			uint64_t base, uint64_t len, int acc, dev_t dev, ino_t ino)
{
	if (in->first_fd < 0)
		in->first_fd = fd;
	char item[192];
	int n = snprintf(item, sizeof item, "%d,%d,%lld,%u,%llu,%llu,%d,%llu,%llu;", fd, eflags, pos,
			 part, (unsigned long long)base, (unsigned long long)len, acc,
			 (unsigned long long)dev, (unsigned long long)ino);
	if (in->len + (size_t)n + 1 > in->cap) {
		size_t cap = (in->cap + (size_t)n + 1) * 2;
		char *p = realloc(in->fds, cap);
		if (!p) {
			in->oom = true;
			return;
		}
		in->fds = p;
		in->cap = cap;
	}
	memcpy(in->fds + in->len, item, (size_t)n + 1);
	in->len += (size_t)n;
}

/* The image fd `fd` of this process, held by the new program as `as`. */
void inherit_ofd(struct inherit *in, int fd, int as, struct shim_ofd *o)
{
	struct stat st;
	if (real_fstat(fd, &st) < 0) {
		inherit_fail(in); /* cannot describe it: fail closed */
		return;
	}
	inherit_add(in, as, o->eflags, o->upos ? (long long)o->pos : -1LL, o->part, o->base, o->len,
		    o->accmode, st.st_dev, st.st_ino);
}

void inherit_fail(struct inherit *in)
{
	in->oom = true;
}

/* This process's image fd: a partition fd is announced (parts_cb); one that
 * stays open across the exec is inherited, unless plan (posix_spawn's file
 * actions) says what the child holds. */
struct exec_scan {
	struct inherit *in;
	bool plan;
};

static void exec_fd_cb(int fd, struct shim_ofd *o, void *arg)
{
	struct exec_scan *sc = arg;
	parts_cb(fd, o, sc->in);
	if (sc->plan)
		return;
	int fl = real_fcntl(fd, F_GETFD, NULL);
	if (fl < 0 || (fl & FD_CLOEXEC))
		return;
	inherit_ofd(sc->in, fd, fd, o);
}

/* Why `path` would not load the shim, or NULL if it would (or if it cannot
 * be inspected: then the exec itself fails). */
static const char *target_problem(const char *path, int depth, char *why, size_t whylen)
{
	struct stat st;
	unsigned char hdr[256];
	int fd = real_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) /* no such program: the exec fails by itself */
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == ENAMETOOLONG
			       ? NULL
			       : "it cannot be read to check that it loads the shim";
	if (real_fstat(fd, &st) < 0) {
		real_close(fd);
		return "it cannot be read to check that it loads the shim";
	}
	if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getegid())) {
		real_close(fd);
		return "it is setuid/setgid (the loader ignores LD_PRELOAD)";
	}
	if (fgetxattr(fd, "security.capability", NULL, 0) > 0) {
		real_close(fd);
		return "it has file capabilities (the loader ignores LD_PRELOAD)";
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
const char *proc_resolve(const char *file, char *buf, size_t len)
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

/* Does an argument name an image?  The whole argument and each word in it
 * (split at blanks, shell operators, quotes, '=' and ','), so that
 * `sh -c 'echo hi > x.qcow2'` and `dd of=x.qcow2` count.  By name only: a
 * program that cannot load the shim must not be handed even a new one. */
static bool argv_names_image(char *const *av, char *what, size_t len)
{
	static const char seps[] = " \t\n<>|&;()'\"`=,";
	int ref;
	for (size_t i = 1; av && av[i]; i++) {
		for (const char *s = av[i]; *s;) {
			size_t n = strcspn(s, seps);
			if (n && n < PATH_MAX) {
				char tok[PATH_MAX];
				memcpy(tok, s, n);
				tok[n] = 0;
				if (policy_classify(tok, &ref) != SHIM_PATH_NO) {
					snprintf(what, len, "%s", tok);
					return true;
				}
			}
			s += n;
			s += strspn(s, seps);
		}
	}
	return false;
}

/* Is NAME=... in env? */
static bool env_has(char *const *env, const char *name, size_t nl)
{
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], name, nl) && env[i][nl] == '=')
			return true;
	return false;
}

/* Does the environment load the shim (LD_PRELOAD names it)? */
static bool env_loads_shim(char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], "LD_PRELOAD=", 11))
			return has_shim(envp[i] + 11);
	return false;
}

size_t proc_env_len(char *const *envp)
{
	size_t n = 0;
	while (envp && envp[n])
		n++;
	return n;
}

/*
 * The environment of the new program, built in the caller's exec_stack (a
 * vfork child, see vfork, must not allocate from our heap; it has no image
 * fd, so only the announcement strings of a process with images, which
 * never vforks, are allocated): the shim stays preloaded (an LD_PRELOAD
 * that was dropped or replaced gets it back, with this process's QCOWSHIM_*
 * settings), and the image fds it inherits are announced (QCOWSHIM_FDS; none:
 * "E<pid>:") with the partition fds its descendants may reopen
 * (QCOWSHIM_PARTS).  quiet (system/popen, which put the result in environ):
 * nothing to do when there is nothing to announce.  0 (*newenv NULL: envp as
 * it is) or -ENOMEM.
 */
static int exec_env(char *const *envp, const struct inherit *in, bool spawn, bool quiet,
		    struct exec_stack *stk, char ***newenv)
{
	bool preload = env_loads_shim(envp);
	if (quiet && preload && in->first_fd < 0 && !in->parts[0] && !stk->scan)
		return 0;
	size_t n = proc_env_len(envp), k = 0, room = n + EXEC_EXTRA - 4;
	char **env = stk->env;
	if (in->parts[0]) { /* ours first, then the entries of our ancestors */
		const char *old = NULL;
		for (size_t i = 0; i < n && !old; i++)
			if (!strncmp(envp[i], "QCOWSHIM_PARTS=", 15))
				old = envp[i] + 15;
		char keep[2048] = "", me[24]; /* minus our own earlier entries */
		int ml = snprintf(me, sizeof me, "%d:", (int)getpid());
		for (const char *e = old; e && *e;) {
			size_t l = strcspn(e, ";"), kl = strlen(keep);
			if (strncmp(e, me, (size_t)ml) && kl + l + 2 < sizeof keep)
				snprintf(keep + kl, sizeof keep - kl, "%.*s;", (int)l, e);
			e += l + (e[l] == ';');
		}
		if (asprintf(&stk->heap[1], "QCOWSHIM_PARTS=%s%s", in->parts, keep) < 0)
			return stk->heap[1] = NULL, -ENOMEM;
	}
	const char *scan = stk->scan ? "*;" : "";
	if (in->first_fd >= 0) {
		if (asprintf(&stk->heap[0], "QCOWSHIM_FDS=%c%d:%s%s", spawn ? 'P' : 'E', (int)getpid(),
			     in->fds ? in->fds : "", scan) < 0)
			return stk->heap[0] = NULL, -ENOMEM;
	} else {
		snprintf(stk->var, EXEC_VAR, "QCOWSHIM_FDS=%c%d:%s", spawn ? 'P' : 'E', (int)getpid(), scan);
	}
	const char *self = policy_self_path();
	bool had = false;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(envp[i], "QCOWSHIM_FDS=", 13) ||
		    (stk->heap[1] && !strncmp(envp[i], "QCOWSHIM_PARTS=", 15)))
			continue;
		if (!strncmp(envp[i], "LD_PRELOAD=", 11) && !has_shim(envp[i] + 11)) {
			had = true;
			if ((size_t)snprintf(stk->pre, EXEC_PRE, "LD_PRELOAD=%s:%s", self, envp[i] + 11) >=
			    EXEC_PRE)
				return -ENOMEM;
			env[k++] = stk->pre;
			continue;
		}
		had |= !strncmp(envp[i], "LD_PRELOAD=", 11);
		env[k++] = envp[i];
	}
	if (!had) {
		if ((size_t)snprintf(stk->pre, EXEC_PRE, "LD_PRELOAD=%s", self) >= EXEC_PRE)
			return -ENOMEM;
		env[k++] = stk->pre;
	}
	if (!preload) /* the shim was dropped: its settings went with it */
		for (char **e = environ; e && *e && k < room; e++) {
			size_t nl = strcspn(*e, "=");
			if (!strncmp(*e, "QCOWSHIM_", 9) && strncmp(*e, "QCOWSHIM_FDS=", 13) &&
			    strncmp(*e, "QCOWSHIM_PARTS=", 15) && !env_has(envp, *e, nl))
				env[k++] = *e;
		}
	env[k++] = stk->heap[0] ? stk->heap[0] : stk->var;
	if (stk->heap[1])
		env[k++] = stk->heap[1];
	env[k] = NULL;
	*newenv = env;
	return 0;
}

/* Was the file at path the one refused last?  (Then say nothing more: the
 * program already got one line for it.) */
static bool repeated_refusal(const char *path)
{
	static _Atomic unsigned long long last_dev, last_ino;
	struct stat st;
	if (!path || real_stat(path, &st) < 0)
		return false;
	bool same = atomic_load(&last_dev) == (unsigned long long)st.st_dev &&
		    atomic_load(&last_ino) == (unsigned long long)st.st_ino;
	atomic_store(&last_dev, (unsigned long long)st.st_dev);
	atomic_store(&last_ino, (unsigned long long)st.st_ino);
	return same;
}

/*
 * Before exec of `path` (argv av, environment envp): flush everything, work
 * out which image fds the new program will hold (plan: from posix_spawn's
 * file actions, wrap_spawn.c; else this process's fds that are not
 * close-on-exec) and which images its arguments name; if either, the target
 * must be able to load the shim.  Fails closed: whatever cannot be checked
 * is refused.  Returns 0 (*newenv: NULL = use envp unchanged) or -errno.
 */
int exec_prepare(const char *path, char *const *av, char *const *envp, char ***newenv, bool spawn,
		 bool quiet, struct exec_stack *stk, exec_plan_fn plan, void *arg)
{
	*newenv = NULL;
	/* execve/fexecve of an image: the kernel would load the host bytes */
	if (path && atomic_load(&shim_ready) && reach_path_is_image(AT_FDCWD, path, 0))
		return reach_refuse(path, "to execute an image",
				    "boot it (qemu-system-*) or run a program from inside it", EACCES);
	if (!atomic_load(&shim_ready) || !policy_env_enabled())
		return 0;
	struct inherit in = {.first_fd = -1};
	bool images = fd_any_images();
	if (plan)
		plan(&in, arg);
	if (images) { /* one pass over the fd table */
		fd_foreach(exec_fd_cb, &(struct exec_scan){&in, plan != NULL});
		/* A vfork child (another thread opened an image between the vfork
		 * wrapper's check and the system call) must not close its parent's
		 * translators: they live in the memory it shares. */
		if (!shim_in_vfork)
			img_release_all();
	}
	char named[PATH_MAX], why[PATH_MAX + 64];
	bool names = argv_names_image(av, named, sizeof named);
	int r = 0;
	if (in.oom) {
		shim_msg("refusing to run %s: out of memory while working out which images it would get",
			 path ? path : "a program");
		r = -ENOMEM;
	} else if (in.first_fd >= 0 || names) {
		const char *problem = path ? target_problem(path, 0, why, sizeof why)
					   : "its file is unknown";
		if (problem && repeated_refusal(path))
			; /* a shell's PATH search met the same file again (/bin -> /usr/bin) */
		else if (problem && in.first_fd >= 0)
			shim_msg("refusing to run %s: %s, and it would see raw QCOW2 bytes on image fd %d "
				 "(close the image or mark it close-on-exec)",
				 path ? path : "a program", problem, in.first_fd);
		else if (problem)
			shim_msg("refusing to run %s: %s, and it names the image %s, which it would see "
				 "as raw QCOW2 bytes (use a dynamically linked program)",
				 path ? path : "a program", problem, named);
		if (problem)
			r = -EPERM;
	}
	if (r == 0 && (r = exec_env(envp, &in, spawn, quiet, stk, newenv)) < 0)
		shim_msg("refusing to run %s: out of memory while preparing its environment",
			 path ? path : "a program");
	free(in.fds);
	return r;
}

/* Frees what exec_prepare allocated (only reached when exec failed). */
void exec_cleanup(struct exec_stack *stk)
{
	free(stk->heap[0]);
	free(stk->heap[1]);
	stk->heap[0] = stk->heap[1] = NULL;
}

static int do_execve(const char *path, char *const *av, char *const *ev)
{
	char **env;
	EXEC_STACK(ev);
	int r = exec_prepare(path, av, ev, &env, false, false, &stk, NULL, NULL);
	if (unlikely(policy_exec_probe()))
		real__exit(r < 0 ? 126 : 0); /* the wrapper's question answered */
	if (r < 0)
		return (int)shim_ret(r);
	r = real_execve(path, av, env ? env : ev);
	int e = errno;
	exec_cleanup(&stk);
	errno = e;
	return r;
}

static int do_execvpe(const char *file, char *const *av, char *const *ev)
{
	char **env, buf[PATH_MAX];
	EXEC_STACK(ev);
	int r = exec_prepare(proc_resolve(file, buf, sizeof buf), av, ev, &env, false, false, &stk, NULL,
			     NULL);
	if (unlikely(policy_exec_probe()))
		real__exit(r < 0 ? 126 : 0); /* the wrapper's question answered */
	if (r < 0)
		return (int)shim_ret(r);
	r = real_execvpe(file, av, env ? env : ev);
	int e = errno;
	exec_cleanup(&stk);
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
	int r = exec_prepare(p, av, ev, &env, false, false, &stk, NULL, NULL);
	if (r < 0)
		return (int)shim_ret(r);
	r = real_fexecve(fd, av, env ? env : ev);
	int e = errno;
	exec_cleanup(&stk);
	errno = e;
	return r;
}

int execveat(int dfd, const char *p, char *const *av, char *const *ev, int fl)
{
	char **env, path[PATH_MAX + 64];
	EXEC_STACK(ev);
	__asm__("" : "+r"(p)); /* declared nonnull, but syscall(SYS_execveat) may pass NULL */
	if (p && !p[0] && (fl & AT_EMPTY_PATH))
		snprintf(path, sizeof path, "/proc/self/fd/%d", dfd);
	else if (p && p[0] != '/' && dfd != AT_FDCWD)
		snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dfd, p);
	else
		snprintf(path, sizeof path, "%s", p ? p : "");
	int r = exec_prepare(path, av, ev, &env, false, false, &stk, NULL, NULL);
	if (r < 0)
		return (int)shim_ret(r);
	r = real_execveat(dfd, p, av, env ? env : ev, fl);
	int e = errno;
	exec_cleanup(&stk);
	errno = e;
	return r;
}

/* system/popen run /bin/sh (dynamic) with environ: flush, and make sure
 * inherited image fds keep the shim.  0 or -errno (refused). */
int proc_release_for_spawn(const char *cmd)
{
	char **env;
	char *av[] = {"sh", "-c", (char *)cmd, NULL};
	EXEC_STACK(environ);
	int r = exec_prepare("/bin/sh", av, environ, &env, true, true, &stk, NULL, NULL);
	if (r == 0 && env) {
		/* environ is what the shell gets: a dropped LD_PRELOAD comes
		 * back, and QCOWSHIM_FDS (P<our pid>) reaches our direct child
		 * only; it is rewritten at every later spawn or exec, and
		 * system/popen remove it once the shell has it (a later child
		 * of ours exec'd without the wrappers must not take that list
		 * for its own).  The strings are copied: environ keeps them. */
		const char *cur = getenv("LD_PRELOAD");
		for (size_t i = 0; env[i]; i++)
			if ((!strncmp(env[i], "LD_PRELOAD=", 11) && !has_shim(cur)) ||
			    !strncmp(env[i], "QCOWSHIM_FDS=", 13) || !strncmp(env[i], "QCOWSHIM_PARTS=", 15)) {
				char *copy = strdup(env[i]);
				if (!copy || putenv(copy) != 0) {
					free(copy);
					r = -ENOMEM;
				}
			}
	}
	exec_cleanup(&stk);
	return r;
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
	int r = cmd ? proc_release_for_spawn(cmd) : 0;
	if (r < 0)
		return (int)shim_ret(r);
	r = real_system(cmd);
	spawned();
	return r;
}

FILE *popen(const char *cmd, const char *m)
{
	int r = proc_release_for_spawn(cmd);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	FILE *f = real_popen(cmd, m);
	spawned();
	return f;
}
