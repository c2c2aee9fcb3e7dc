/*
 * backing.c - backing files and external data files.
 *
 * The image only names these files; whether a name may be opened is the
 * caller's decision (struct qcow_opts.open_file), since the name comes from
 * untrusted input.  Here: resolve relative names against the image's
 * directory, cap the chain depth (which also ends loops), pick the format
 * (header extension, else probe the magic), open qcow2 bases read-only
 * through the same library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow_int.h"

QC_HIDDEN int qc_open_depth(struct qcow **out, struct qcow_backend be, const struct qcow_opts *o,
			    int depth);

static char *resolve(const char *base, const char *name)
{
	const char *slash = base ? strrchr(base, '/') : NULL;
	char *s;
	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&s, "%.*s/%s", (int)(slash - base), base, name) < 0)
		return NULL;
	return s;
}

static int open_named(struct qcow *q, const char *name, enum qcow_file_kind kind, bool writable,
		      struct qcow_backend *be, char **resolved)
{
	const char *what = kind == QCOW_FILE_BACKING ? "backing file" : "data file";
	if (!q->opts.open_file || (q->opts.flags & QCOW_NO_BACKING)) {
		qc_log(q, "image needs %s '%s', which is not allowed here", what, name);
		return -EPERM;
	}
	if (!q->path && name[0] != '/' && q->opts.get_path) {
		const char *p = q->opts.get_path(q->opts.arg);
		if (p && !(q->path = strdup(p)))
			return -ENOMEM;
	}
	if (!(*resolved = resolve(q->path, name)))
		return -ENOMEM;
	int r = q->opts.open_file(q->opts.arg, *resolved, kind, writable, be);
	if (r < 0)
		qc_log(q, "cannot open %s '%s'", what, *resolved);
	return r;
}

int qc_backing_open(struct qcow *q)
{
	struct qcow_backend be;
	char *name = NULL;
	uint8_t magic[4] = {0};
	int r;
	if (!q->backing_name[0])
		return 0;
	if (q->depth + 1 >= QC_MAX_CHAIN) {
		qc_log(q, "backing chain deeper than %d images (or a loop)", QC_MAX_CHAIN);
		return -ELOOP;
	}
	if ((r = open_named(q, q->backing_name, QCOW_FILE_BACKING, false, &be, &name)) < 0)
		goto out;
	bool qcow2;
	if (q->backing_fmt[0]) {
		qcow2 = !strcmp(q->backing_fmt, "qcow2");
		if (!qcow2 && strcmp(q->backing_fmt, "raw")) {
			qc_log(q, "backing file format '%s' is not supported", q->backing_fmt);
			be.ops->close(be.h);
			r = -ENOTSUP;
			goto out;
		}
	} else {
		ssize_t n = be.ops->pread(be.h, magic, 4, 0);
		qcow2 = n == 4 && be32_get(magic) == QCOW_MAGIC;
	}
	if (qcow2) {
		struct qcow_opts o = q->opts;
		struct qcow *base;
		o.flags |= QCOW_RDONLY;
		o.path = name;
		o.get_path = NULL;
		o.file_size = 0;
		o.snapshot = NULL; /* a snapshot is the top image's */
		if ((r = qc_open_depth(&base, be, &o, q->depth + 1)) < 0) {
			be.ops->close(be.h);
			goto out;
		}
		q->backing_size = qcow_size(base);
		q->backing = qcow_as_backend(base);
	} else {
		if ((r = be.ops->getsize(be.h, &q->backing_size)) < 0) {
			be.ops->close(be.h);
			goto out;
		}
		q->backing = be;
	}
	r = 0;
out:
	free(name);
	return r;
}

/* Backing contents of [voff, voff+n); zeros where there is no backing data. */
int qc_backing_read(struct qcow *q, uint8_t *buf, uint64_t n, uint64_t voff)
{
	uint64_t avail = 0;
	if (q->backing.ops && voff < q->backing_size)
		avail = q->backing_size - voff < n ? q->backing_size - voff : n;
	uint64_t done = 0;
	while (done < avail) {
		ssize_t r = q->backing.ops->pread(q->backing.h, buf + done, avail - done, voff + done);
		if (r < 0)
			return (int)r;
		if (r == 0)
			break;
		done += (uint64_t)r;
	}
	memset(buf + done, 0, n - done);
	return 0;
}

int qc_data_file_open(struct qcow *q, bool writable)
{
	char *name = NULL;
	if (!(q->incompat & QC_INCOMPAT_DATA_FILE))
		return 0;
	if (!q->data_file_name || !q->data_file_name[0]) {
		qc_log(q, "image uses an external data file but does not name it");
		return -EINVAL;
	}
	int r = open_named(q, q->data_file_name, QCOW_FILE_DATA, writable, &q->data_be, &name);
	free(name);
	if (r < 0)
		return r;
	q->has_data_file = true;
	return 0;
}
