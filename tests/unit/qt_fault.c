/*
 * qt_fault.c - a backend wrapper that fails the Nth call of a chosen op.
 * A failed call has no effect on the inner backend (nothing is written).
 */
#include "qt.h"

static int fault_hit(struct qt_fault *f, enum qt_op op)
{
	unsigned long n = ++f->count[op];
	if (f->fail_at[op] && (n == f->fail_at[op] || (f->sticky && n > f->fail_at[op]))) {
		f->fired++;
		return -(f->fail_errno[op] ? f->fail_errno[op] : EIO);
	}
	return 0;
}

static ssize_t f_pread(void *h, void *buf, size_t n, uint64_t off)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_PREAD);
	return r ? r : f->inner.ops->pread(f->inner.h, buf, n, off);
}

static ssize_t f_pwrite(void *h, const void *buf, size_t n, uint64_t off)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_PWRITE);
	if (r)
		f->failed_off = off;
	return r ? r : f->inner.ops->pwrite(f->inner.h, buf, n, off);
}

static int f_flush(void *h)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_FLUSH);
	return r ? r : f->inner.ops->flush(f->inner.h);
}

static int f_getsize(void *h, uint64_t *size)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_GETSIZE);
	return r ? r : f->inner.ops->getsize(f->inner.h, size);
}

static int f_truncate(void *h, uint64_t size)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_TRUNCATE);
	return r ? r : f->inner.ops->truncate(f->inner.h, size);
}

static int f_punch(void *h, uint64_t off, uint64_t n)
{
	struct qt_fault *f = h;
	int r = fault_hit(f, QT_PUNCH);
	if (r)
		return r;
	if (!f->inner.ops->punch)
		return -EOPNOTSUPP;
	return f->inner.ops->punch(f->inner.h, off, n);
}

static void f_close(void *h)
{
	struct qt_fault *f = h;
	if (f->close_inner)
		f->inner.ops->close(f->inner.h);
}

static const struct qcow_backend_ops fault_ops = {
	f_pread, f_pwrite, f_flush, f_getsize, f_truncate, f_punch, f_close, NULL,
};
static const struct qcow_backend_ops fault_ops_nopunch = {
	f_pread, f_pwrite, f_flush, f_getsize, f_truncate, NULL, f_close, NULL,
};

struct qcow_backend qt_fault_backend(struct qt_fault *f)
{
	struct qcow_backend be = { f->no_punch ? &fault_ops_nopunch : &fault_ops, f };
	return be;
}
