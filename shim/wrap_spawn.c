/*
 * wrap_spawn.c - posix_spawn(p) and its file actions.
 *
 * The child applies the file actions in the kernel, where no wrapper runs,
 * and then execs: the exec guard (wrap_proc.c exec_prepare) must know which
 * descriptors the new program will hold after the actions, not before.  So
 * every action the program adds is recorded here too (a shadow list per
 * posix_spawn_file_actions_t, keyed by its address), and posix_spawn
 * replays them over this process's image fds: dup2 of an image fd makes
 * the target an image fd, close and closefrom drop them, an open of an image
 * (by any name, relative to an earlier addchdir/addfchdir) adds one.
 * An open of an image is rewritten when it is added: read-only to the kernel
 * (like every image descriptor, fdtab.c fd_seal), without O_TRUNC (the shim
 * empties the virtual disk now), O_APPEND, O_DIRECT, O_CREAT or O_EXCL; the
 * child's constructor gets the access mode asked for from QCOWSHIM_FDS.
 */
#include "shim.h"

#include <limits.h>
#include <string.h>

enum fa_kind { FA_OPEN, FA_CLOSE, FA_DUP2, FA_CLOSEFROM };

struct fa_op {
	enum fa_kind kind;
	int fd, fd2;        /* FA_DUP2: fd -> fd2; FA_CLOSEFROM: fd and up */
	bool image, cloexec; /* FA_OPEN: of an image; O_CLOEXEC */
	int acc, eflags;     /* FA_OPEN of an image: as the program asked */
	dev_t dev;
	ino_t ino;
};

struct fa_shadow {
	const posix_spawn_file_actions_t *fa;
	struct fa_shadow *next;
	struct fa_op *ops;
	size_t n, cap;
	char *cwd;  /* after addchdir/addfchdir: where relative opens resolve */
	bool broken; /* an action could not be recorded: spawn is refused */
};

static struct fa_shadow *shadows;
static pthread_mutex_t fa_mu = PTHREAD_MUTEX_INITIALIZER;

/* fa_mu held */
static struct fa_shadow *shadow_of(const posix_spawn_file_actions_t *fa, bool make)
{
	for (struct fa_shadow *s = shadows; s; s = s->next)
		if (s->fa == fa)
			return s;
	if (!make)
		return NULL;
	struct fa_shadow *s = calloc(1, sizeof *s);
	if (s) {
		s->fa = fa;
		s->next = shadows;
		shadows = s;
	}
	return s;
}

static void shadow_drop(const posix_spawn_file_actions_t *fa)
{
	pthread_mutex_lock(&fa_mu);
	for (struct fa_shadow **p = &shadows; *p; p = &(*p)->next)
		if ((*p)->fa == fa) {
			struct fa_shadow *s = *p;
			*p = s->next;
			free(s->ops);
			free(s->cwd);
			free(s);
			break;
		}
	pthread_mutex_unlock(&fa_mu);
}

static void shadow_add(const posix_spawn_file_actions_t *fa, struct fa_op op)
{
	pthread_mutex_lock(&fa_mu);
	struct fa_shadow *s = shadow_of(fa, true);
	if (s && s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct fa_op *p = realloc(s->ops, cap * sizeof *p);
		if (p) {
			s->ops = p;
			s->cap = cap;
		}
	}
	if (s && s->n < s->cap)
		s->ops[s->n++] = op;
	else if (s)
		s->broken = true;
	pthread_mutex_unlock(&fa_mu);
	/* no shadow at all: nothing to mark; posix_spawn then finds none and
	 * refuses when images are open (shadow_missing) */
}

/* Only this process's image fds matter; without any, nothing is recorded
 * beyond what later opens need (the chdir state). */
static bool tracking(void)
{
	return atomic_load(&shim_ready) && policy_enabled() && !shim_depth;
}

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	shadow_drop(fa); /* a reused address starts a new list */
	int r = real_posix_spawn_file_actions_init(fa);
	if (r == 0 && tracking()) { /* known empty: the child need not look at its fds */
		pthread_mutex_lock(&fa_mu);
		shadow_of(fa, true);
		pthread_mutex_unlock(&fa_mu);
	}
	return r;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	shadow_drop(fa);
	return real_posix_spawn_file_actions_destroy(fa);
}

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *fa, int fd)
{
	int r = real_posix_spawn_file_actions_addclose(fa, fd);
	if (r == 0 && tracking())
		shadow_add(fa, (struct fa_op){.kind = FA_CLOSE, .fd = fd});
	return r;
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int fd2)
{
	int r = real_posix_spawn_file_actions_adddup2(fa, fd, fd2);
	if (r == 0 && tracking())
		shadow_add(fa, (struct fa_op){.kind = FA_DUP2, .fd = fd, .fd2 = fd2});
	return r;
}

int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa, int from)
{
	int r = real_posix_spawn_file_actions_addclosefrom_np(fa, from);
	if (r == 0 && tracking())
		shadow_add(fa, (struct fa_op){.kind = FA_CLOSEFROM, .fd = from});
	return r;
}

/* The directory later relative opens of fa resolve in (NULL: the cwd). */
static void shadow_chdir(const posix_spawn_file_actions_t *fa, const char *dir)
{
	pthread_mutex_lock(&fa_mu);
	struct fa_shadow *s = shadow_of(fa, true);
	if (s) {
		char *n = NULL, cwd[PATH_MAX];
		if (dir[0] == '/') {
			n = strdup(dir);
		} else {
			const char *base = s->cwd ? s->cwd : getcwd(cwd, sizeof cwd);
			if (base && asprintf(&n, "%s/%s", base, dir) < 0)
				n = NULL;
		}
		free(s->cwd);
		s->cwd = n;
		s->broken |= !n;
	}
	pthread_mutex_unlock(&fa_mu);
}

int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa, const char *dir)
{
	int r = real_posix_spawn_file_actions_addchdir_np(fa, dir);
	if (r == 0 && tracking())
		shadow_chdir(fa, dir);
	return r;
}

int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *fa, int dfd)
{
	int r = real_posix_spawn_file_actions_addfchdir_np(fa, dfd);
	if (r == 0 && tracking()) {
		char link[40], dir[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%d", dfd);
		ssize_t n = readlink(link, dir, sizeof dir - 1);
		dir[n > 0 ? n : 0] = 0;
		shadow_chdir(fa, n > 0 ? dir : "/nonexistent/fchdir");
	}
	return r;
}

/*
 * An open in the child of an image (by its name, a hard link, or any other
 * name leading to an image this process has open; resolved as the child
 * will, after the recorded chdirs) would run in the kernel: O_TRUNC would
 * destroy the QCOW2 structure and a writable descriptor would reach the host
 * bytes.  The shim opens it here first (O_TRUNC empties the virtual disk
 * now), and the child's open is made read-only without those flags.
 */
int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *p, int fl,
				     mode_t m)
{
	if (!tracking())
		return real_posix_spawn_file_actions_addopen(fa, fd, p, fl, m);
	char *full = NULL;
	pthread_mutex_lock(&fa_mu);
	struct fa_shadow *s = shadow_of(fa, false);
	if (s && s->cwd && p[0] != '/' && asprintf(&full, "%s/%s", s->cwd, p) < 0)
		full = NULL;
	bool lost = s && s->cwd && p[0] != '/' && !full;
	pthread_mutex_unlock(&fa_mu);
	if (lost)
		return ENOMEM;
	const char *at = full ? full : p;
	int saved = errno;
	int tfd = shim_open(AT_FDCWD, at, (fl & ~(O_APPEND | O_DIRECT | O_EXCL)) | O_CLOEXEC, m, true);
	struct fa_op op = {.kind = FA_OPEN, .fd = fd, .cloexec = (fl & O_CLOEXEC) != 0};
	struct shim_ofd *o = tfd >= 0 ? fd_get_any(tfd) : NULL;
	struct stat st;
	if (o && real_fstat(tfd, &st) == 0) {
		op.image = true;
		op.acc = fl & O_ACCMODE;
		op.eflags = fl & (O_APPEND | O_DIRECT);
		op.dev = st.st_dev;
		op.ino = st.st_ino;
		fl = (fl & ~(O_ACCMODE | O_TRUNC | O_APPEND | O_DIRECT | O_CREAT | O_EXCL)) | O_RDONLY;
	}
	if (o)
		fd_put(o);
	if (tfd >= 0)
		close(tfd);
	errno = saved;
	int r = real_posix_spawn_file_actions_addopen(fa, fd, at, fl, m);
	free(full);
	if (r == 0)
		shadow_add(fa, op);
	return r;
}

/* ---- replaying the actions at spawn */

struct child_fd {
	int fd;
	int src; /* this process's image fd it copies, or -1: opened (op) */
	const struct fa_op *op;
	bool cloexec;
};

struct plan {
	struct child_fd *v;
	size_t n, cap;
	bool oom;
	const struct fa_shadow *s;
};

static void plan_drop(struct plan *pl, int fd)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->v[i].fd == fd)
			pl->v[i--] = pl->v[--pl->n];
}

static void plan_set(struct plan *pl, struct child_fd c)
{
	plan_drop(pl, c.fd);
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 8;
		struct child_fd *v = realloc(pl->v, cap * sizeof *v);
		if (!v) {
			pl->oom = true;
			return;
		}
		pl->v = v;
		pl->cap = cap;
	}
	pl->v[pl->n++] = c;
}

static const struct child_fd *plan_get(struct plan *pl, int fd)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->v[i].fd == fd)
			return &pl->v[i];
	return NULL;
}

static void parent_fd_cb(int fd, struct shim_ofd *o, void *arg)
{
	(void)o;
	int fl = real_fcntl(fd, F_GETFD, NULL);
	plan_set(arg, (struct child_fd){.fd = fd, .src = fd, .cloexec = fl < 0 || (fl & FD_CLOEXEC)});
}

static void replay(struct inherit *in, void *arg)
{
	struct plan *pl = arg;
	fd_foreach(parent_fd_cb, pl);
	for (size_t i = 0; pl->s && i < pl->s->n; i++) {
		const struct fa_op *op = &pl->s->ops[i];
		switch (op->kind) {
		case FA_CLOSE:
			plan_drop(pl, op->fd);
			break;
		case FA_CLOSEFROM:
			for (size_t j = 0; j < pl->n; j++)
				if (pl->v[j].fd >= op->fd)
					pl->v[j--] = pl->v[--pl->n];
			break;
		case FA_DUP2: {
			const struct child_fd *c = plan_get(pl, op->fd);
			if (op->fd == op->fd2) { /* clears FD_CLOEXEC */
				if (c)
					plan_set(pl, (struct child_fd){op->fd2, c->src, c->op, false});
			} else if (c) {
				plan_set(pl, (struct child_fd){op->fd2, c->src, c->op, false});
			} else {
				plan_drop(pl, op->fd2);
			}
			break;
		}
		case FA_OPEN:
			if (op->image)
				plan_set(pl, (struct child_fd){op->fd, -1, op, op->cloexec});
			else
				plan_drop(pl, op->fd);
			break;
		}
	}
	if (pl->oom || (pl->s && pl->s->broken)) {
		inherit_fail(in);
		return;
	}
	for (size_t i = 0; i < pl->n; i++) {
		const struct child_fd *c = &pl->v[i];
		if (c->cloexec)
			continue;
		if (c->src < 0) {
			inherit_add(in, c->fd, c->op->eflags, -1, 0, 0, 0, c->op->acc, c->op->dev, c->op->ino);
			continue;
		}
		struct shim_ofd *o = fd_get_any(c->src);
		if (!o) { /* closed meanwhile by another thread */
			inherit_fail(in);
			continue;
		}
		inherit_ofd(in, c->src, c->fd, o);
		fd_put(o);
	}
}

static int spawn(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *at, char *const *av, char *const *ev, bool search)
{
	char **env, buf[PATH_MAX];
	EXEC_STACK(ev);
	struct plan pl = {0};
	struct fa_shadow copy = {0};
	if (fa) { /* a private copy: the program may change fa in another thread */
		pthread_mutex_lock(&fa_mu);
		struct fa_shadow *s = shadow_of(fa, false);
		if (s) {
			copy = *s;
			copy.ops = s->n ? malloc(s->n * sizeof *s->ops) : NULL;
			if (s->n && !copy.ops)
				copy.broken = true, copy.n = 0;
			else if (s->n)
				memcpy(copy.ops, s->ops, s->n * sizeof *s->ops);
		}
		pthread_mutex_unlock(&fa_mu);
		pl.s = &copy;
		/* actions added before the shim could record them: the child
		 * must look at every fd it has */
		stk.scan = !s;
	}
	int r = exec_prepare(search ? proc_resolve(p, buf, sizeof buf) : p, av, ev, &env, true, false,
			     &stk, replay, &pl);
	free(pl.v);
	free(copy.ops);
	if (r < 0)
		return -r;
	r = (search ? real_posix_spawnp : real_posix_spawn)(pid, p, fa, at, av, env ? env : ev);
	exec_cleanup(&stk);
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
