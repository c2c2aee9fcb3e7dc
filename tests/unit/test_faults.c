/*
 * test_faults.c - backend failures at every point of a workload: the Nth
 * pread / pwrite / flush / truncate / punch fails (once, or from then on).
 * The error must reach the caller (never swallowed), reads that succeed
 * return the right data, and afterwards the image opens read-write, has no
 * corruption (leaks are allowed), and every flushed byte is intact.
 * Also: the host-file backend survives short reads/writes and EINTR.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <unistd.h>

#include <sys/uio.h>

#include "qt.h"

#define SIZE (1u << 20)
#define NOPS 80

/* geometry of the scenario image: set per test */
static unsigned CB = 12, VERSION = 3, RBITS = 16;

static uint8_t *base_image(size_t *len, struct qt_track *t)
{
	struct qcow_create_opts c = { .size = SIZE, .cluster_bits = CB, .version = VERSION,
				      .refcount_bits = RBITS };
	struct qcow_backend be;
	struct qcow *q = qt_create_mem(&c, &be);
	cr_assert(q);
	qt_track_init(t, SIZE);
	qt_fill_pattern(t->flat, SIZE / 2, 4242);
	cr_assert_eq(qcow_write(q, t->flat, SIZE / 2, 0), SIZE / 2);
	cr_assert_eq(qcow_checkpoint(q), 0);
	uint8_t *b = qt_mem_copy(be, len);
	cr_assert_eq(qcow_close(q), 0);
	return b;
}

/* One scenario; returns the number of calls of `op` the run made. */
static unsigned long scenario(enum qt_op op, unsigned long n, bool sticky, uint64_t seed)
{
	size_t len;
	struct qt_track t;
	uint8_t *img = base_image(&len, &t);
	struct qt_fault f = { 0 };
	cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
	f.fail_at[op] = n;
	f.sticky = sticky;
	struct qcow *q = NULL;
	int r = qcow_open(&q, qt_fault_backend(&f), NULL);
	bool failed = r < 0;
	if (r == 0) {
		if (qt_track_run(&t, q, 1u << CB, seed, NOPS))
			cr_assert_fail("op %d #%lu%s: %s", op, n, sticky ? "+" : "", t.err);
		int cr = qcow_close(q);
		failed = failed || cr < 0 || t.errors > 0;
	}
	unsigned long calls = f.count[op];
	/* punch is advisory (qemu ignores failed discards of the host file);
	 * every other failure must reach the caller */
	if (f.fired && op != QT_PUNCH)
		cr_expect(failed, "op %d #%lu%s: %lu injected failures, but every call succeeded",
			  op, n, sticky ? "+" : "", f.fired);
	size_t n2;
	uint8_t *after = qt_mem_copy(f.inner, &n2);
	f.inner.ops->close(f.inner.h);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(after, n2, &chk), 0, "op %d #%lu: %s", op, n, chk.msg);
	cr_expect_eq(chk.errors, 0, "op %d #%lu%s: corruption after a failure: %s", op, n,
		     sticky ? "+" : "", chk.msg);
	cr_expect(!chk.corrupt, "op %d #%lu%s: I/O error marked the image corrupt", op, n,
		  sticky ? "+" : "");
	int err;
	q = qt_open_mem(after, n2, 0, NULL, &err);
	cr_assert(q, "op %d #%lu%s: reopen = %d", op, n, sticky ? "+" : "", err);
	if (qt_track_verify(&t, q, !f.fired))
		cr_assert_fail("op %d #%lu%s: %s", op, n, sticky ? "+" : "", t.err);
	qcow_close(q);
	free(after);
	free(img);
	qt_track_fini(&t);
	return calls;
}

static void every_point(enum qt_op op, bool sticky, unsigned long max_runs)
{
	unsigned long total = scenario(op, 0, false, 1);
	if (op == QT_PREAD || op == QT_PWRITE || op == QT_FLUSH)
		cr_assert_gt(total, 0, "workload made no calls of op %d", op);
	unsigned long step = total / max_runs + 1;
	for (unsigned long n = 1; n <= total; n += step)
		scenario(op, n, sticky, 1);
}

Test(faults, pread_once) { every_point(QT_PREAD, false, 120); }
Test(faults, pwrite_once) { every_point(QT_PWRITE, false, qt_reps(50, 150)); }
Test(faults, flush_once) { every_point(QT_FLUSH, false, 100); }
Test(faults, truncate_once) { every_point(QT_TRUNCATE, false, 50); }
Test(faults, punch_once) { every_point(QT_PUNCH, false, 50); }
Test(faults, pwrite_from_then_on) { every_point(QT_PWRITE, true, qt_reps(20, 60)); }
Test(faults, flush_from_then_on) { every_point(QT_FLUSH, true, 40); }
Test(faults, pread_from_then_on) { every_point(QT_PREAD, true, 40); }

/* other geometries: tiny clusters with 1-bit refcounts (many refblocks),
 * 64-bit refcounts, and a v2 image */
static void geometry(unsigned cb, unsigned version, unsigned rbits)
{
	CB = cb;
	VERSION = version;
	RBITS = rbits;
	every_point(QT_PWRITE, false, qt_reps(20, 80));
	every_point(QT_FLUSH, false, qt_reps(10, 40));
	every_point(QT_PREAD, false, qt_reps(10, 40));
}

Test(faults, geometry_512_rb1) { geometry(9, 3, 1); }
Test(faults, geometry_512_rb64) { geometry(9, 3, 64); }
Test(faults, geometry_64k_v2) { geometry(16, 2, 16); }

/* Out of space: ENOSPC from the backend comes back as ENOSPC. */
Test(faults, enospc_passed_through)
{
	size_t len;
	struct qt_track t;
	uint8_t *img = base_image(&len, &t);
	struct qt_fault f = { 0 };
	cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
	f.close_inner = true;
	struct qcow *q = NULL;
	cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0);
	f.fail_at[QT_PWRITE] = f.count[QT_PWRITE] + 1;
	f.fail_errno[QT_PWRITE] = ENOSPC;
	f.sticky = true;
	uint8_t buf[4096];
	memset(buf, 1, sizeof buf);
	ssize_t r = qcow_write(q, buf, sizeof buf, SIZE - 4096);
	if (r >= 0)
		r = qcow_flush(q);
	cr_expect_eq(r, -ENOSPC, "write on a full disk = %zd", r);
	qcow_close(q);
	free(img);
	qt_track_fini(&t);
}

/*
 * A full disk for one write, then room again (another writer freed space):
 * the write that hit ENOSPC gives back the clusters it had been given, so
 * once the workload ends with a successful close the image has no leaked
 * cluster (issue 24: before, every data or L2-table write that failed after
 * its allocation left one behind).  Every pwrite of the workload in turn.
 */
static void enospc_once_no_leak(unsigned cb, unsigned version, unsigned rbits, unsigned max_runs)
{
	CB = cb;
	VERSION = version;
	RBITS = rbits;
	unsigned long total = scenario(QT_PWRITE, 0, false, 7), step = total / max_runs + 1;
	unsigned checked = 0;
	for (unsigned long n = 1; n <= total; n += step) {
		size_t len;
		struct qt_track t;
		uint8_t *img = base_image(&len, &t);
		struct qt_fault f = { 0 };
		cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
		f.fail_at[QT_PWRITE] = n;
		f.fail_errno[QT_PWRITE] = ENOSPC;
		struct qcow *q = NULL;
		cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0);
		if (qt_track_run(&t, q, 1u << CB, 7, NOPS))
			cr_assert_fail("ENOSPC at pwrite #%lu: %s", n, t.err);
		int cr = qcow_close(q);
		size_t n2;
		uint8_t *after = qt_mem_copy(f.inner, &n2);
		f.inner.ops->close(f.inner.h);
		struct qt_check chk;
		cr_assert_eq(qt_check_image(after, n2, &chk), 0, "#%lu: %s", n, chk.msg);
		cr_expect_eq(chk.errors, 0, "ENOSPC at pwrite #%lu: corruption: %s", n, chk.msg);
		if (cr == 0) { /* the close wrote everything back: nothing may leak */
			cr_expect_eq(chk.leaks, 0, "cb %u v%u rb %u: ENOSPC at pwrite #%lu of %lu, "
				     "then a clean close: %llu leaked: %s", cb, version, rbits, n, total,
				     (unsigned long long)chk.leaks, chk.msg);
			checked++;
		}
		free(after);
		free(img);
		qt_track_fini(&t);
	}
	cr_expect_gt(checked, 0, "no run ended with a clean close");
}

Test(faults, enospc_once_no_leak_4k) { enospc_once_no_leak(12, 3, 16, qt_reps(60, 200)); }
Test(faults, enospc_once_no_leak_512_rb1) { enospc_once_no_leak(9, 3, 1, qt_reps(30, 100)); }
Test(faults, enospc_once_no_leak_64k_v2) { enospc_once_no_leak(16, 2, 16, qt_reps(30, 100)); }
/* 512-byte clusters, 64-bit refcounts: the refcount table grows (2 MiB per
 * table cluster) */
Test(faults, enospc_once_no_leak_512_rb64) { enospc_once_no_leak(9, 3, 64, qt_reps(60, 200)); }

/* 512-byte clusters with 64-bit refcounts: one refcount-table cluster covers
 * 2 MiB, so writing 3 MiB grows the table (new blocks and table laid out at
 * the end of the file, where a full disk hits).  ENOSPC at each pwrite in
 * turn, the failed chunk written again: no corruption, never marked corrupt
 * (the clusters a failed growth had marked as metadata are free again and
 * get data later), and no leak after a clean close. */
Test(faults, enospc_reftable_grow)
{
	struct qcow_create_opts c = { .size = 8u << 20, .cluster_bits = 9, .version = 3,
				      .refcount_bits = 64 };
	struct qcow_backend be;
	struct qcow *q0 = qt_create_mem(&c, &be);
	cr_assert(q0);
	cr_assert_eq(qcow_checkpoint(q0), 0); /* as closed: no reservation left */
	size_t len;
	uint8_t *img = qt_mem_copy(be, &len);
	cr_assert_eq(qcow_close(q0), 0);
	uint8_t *chunk = malloc(65536);
	cr_assert(chunk);
	unsigned long total = 0, checked = 0;
	for (unsigned long n = 0; n == 0 || n <= total; n += n < 40 ? 1 : total / 60 + 1) {
		struct qt_fault f = { 0 };
		cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
		f.fail_at[QT_PWRITE] = n;
		f.fail_errno[QT_PWRITE] = ENOSPC;
		struct qcow *q = NULL;
		cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0);
		for (uint64_t off = 0; off < (3u << 20); off += 65536) {
			memset(chunk, (int)(off >> 16) + 1, 65536);
			ssize_t w = qcow_write(q, chunk, 65536, off);
			if (w < 0) /* room again: the same chunk once more */
				w = qcow_write(q, chunk, 65536, off);
			cr_assert_eq(w, 65536, "ENOSPC at pwrite #%lu: write at %llu = %zd", n,
				     (unsigned long long)off, w);
		}
		if (!n)
			total = f.count[QT_PWRITE];
		int cr = qcow_close(q);
		size_t n2;
		uint8_t *after = qt_mem_copy(f.inner, &n2);
		f.inner.ops->close(f.inner.h);
		struct qt_check chk;
		cr_assert_eq(qt_check_image(after, n2, &chk), 0, "#%lu: %s", n, chk.msg);
		cr_expect_eq(chk.errors, 0, "ENOSPC at pwrite #%lu: corruption: %s", n, chk.msg);
		cr_expect(!chk.corrupt, "ENOSPC at pwrite #%lu: the image was marked corrupt", n);
		bool header_switch = f.fired && (f.failed_off == QH_L1_SIZE ||
						 f.failed_off == QH_RT_OFF);
		if (cr == 0 && !header_switch) {
			cr_expect_eq(chk.leaks, 0, "ENOSPC at pwrite #%lu of %lu, then a clean close: "
				     "%llu leaked: %s", n, total, (unsigned long long)chk.leaks, chk.msg);
			checked++;
		}
		free(after);
	}
	cr_expect_gt(checked, 1, "no run ended with a clean close");
	free(chunk);
	free(img);
}

/* The same for a resize that grows L1 (a new table of 64 clusters): ENOSPC
 * at each of its writes in turn, then a clean close leaks nothing, except
 * when the write that failed is the header's switch to the new table: that
 * 12-byte write may have reached the file in part before failing, so the
 * new table is kept counted (leaked), as a crash there would leave it. */
Test(faults, enospc_l1_grow_no_leak)
{
	CB = 12;
	VERSION = 3;
	RBITS = 16;
	unsigned long total = 0, checked = 0;
	for (unsigned long n = 0; n == 0 || n <= total; n++) {
		size_t len;
		struct qt_track t;
		uint8_t *img = base_image(&len, &t);
		struct qt_fault f = { 0 };
		cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
		struct qcow *q = NULL;
		cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0);
		unsigned long before = f.count[QT_PWRITE];
		f.fail_at[QT_PWRITE] = n ? before + n : 0;
		f.fail_errno[QT_PWRITE] = ENOSPC;
		int rr = qcow_resize(q, 64ull << 30);
		if (!n)
			total = f.count[QT_PWRITE] - before;
		int cr = qcow_close(q);
		size_t n2;
		uint8_t *after = qt_mem_copy(f.inner, &n2);
		f.inner.ops->close(f.inner.h);
		struct qt_check chk;
		cr_assert_eq(qt_check_image(after, n2, &chk), 0, "#%lu: %s", n, chk.msg);
		cr_expect_eq(chk.errors, 0, "ENOSPC at resize pwrite #%lu: corruption: %s", n, chk.msg);
		bool header_switch = f.fired && f.failed_off == QH_L1_SIZE;
		if (cr == 0 && !header_switch) {
			cr_expect_eq(chk.leaks, 0, "ENOSPC at resize pwrite #%lu of %lu (resize %d), then "
				     "a clean close: %llu leaked: %s", n, total, rr,
				     (unsigned long long)chk.leaks, chk.msg);
			checked++;
		}
		free(after);
		free(img);
		qt_track_fini(&t);
	}
	cr_expect_gt(total, 0, "the resize wrote nothing");
	cr_expect_gt(checked, 1, "no failed resize ended with a clean close");
}

/* A backend without punch: discard still reads back as zeros and frees. */
Test(faults, no_punch_support)
{
	size_t len;
	struct qt_track t;
	uint8_t *img = base_image(&len, &t);
	struct qt_fault f = { .no_punch = true };
	cr_assert_eq(qcow_backend_mem(&f.inner, img, len), 0);
	struct qcow *q = NULL;
	cr_assert_eq(qcow_open(&q, qt_fault_backend(&f), NULL), 0);
	cr_assert_eq(qcow_zero(q, 4096, SIZE / 4, QCOW_ZERO_UNMAP), 0);
	memset(t.flat + 4096, 0, SIZE / 4);
	cr_assert(!qt_track_verify(&t, q, true), "%s", t.err);
	const char *m = qt_check_open(q, f.inner, false);
	cr_expect(!m, "%s", m);
	qcow_close(q);
	f.inner.ops->close(f.inner.h);
	free(img);
	qt_track_fini(&t);
}

/* ---- host-file backend with short I/O and EINTR ----------------------- */

static __thread unsigned long io_calls;

static ssize_t short_pread(int fd, void *buf, size_t n, off_t off)
{
	if (++io_calls % 5 == 0) {
		errno = EINTR;
		return -1;
	}
	return pread(fd, buf, n > 1000 ? 1000 : n, off);
}

static ssize_t short_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (++io_calls % 7 == 0) {
		errno = EINTR;
		return -1;
	}
	return pwrite(fd, buf, n > 700 ? 700 : n, off);
}

/* The durable write (RWF_DSYNC), short and interrupted as well. */
static ssize_t short_pwritev2(int fd, const struct iovec *v, int cnt, off_t off, int flags)
{
	if (++io_calls % 7 == 0) {
		errno = EINTR;
		return -1;
	}
	struct iovec one = {v[0].iov_base, v[0].iov_len > 700 ? 700 : v[0].iov_len};
	(void)cnt;
	return pwritev2(fd, &one, 1, off, flags);
}

static ssize_t sys_pwritev2(int fd, const struct iovec *v, int cnt, off_t off, int flags)
{
	return pwritev2(fd, v, cnt, off, flags);
}

static int sys_fdatasync(int fd) { return fdatasync(fd); }
static int sys_fstat(int fd, struct stat *st) { return fstat(fd, st); }
static int sys_ftruncate(int fd, off_t len) { return ftruncate(fd, len); }
static int sys_close(int fd) { return close(fd); }

static const struct qcow_sysio short_io = {
	short_pread, short_pwrite, sys_fdatasync, sys_fstat, sys_ftruncate, NULL, sys_close,
	short_pwritev2,
};

Test(faults, fd_backend_short_io_eintr)
{
	char path[] = "/tmp/qt_fdXXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	struct qcow_backend be;
	cr_assert_eq(qcow_backend_fd(&be, fd, &short_io, QCOW_FD_OWN), 0);
	struct qcow_create_opts c = { .size = 2 << 20, .cluster_bits = 12 };
	struct qcow *q = NULL;
	cr_assert_eq(qcow_create(&q, be, &c, NULL), 0);
	struct qcow_backend none = { 0 };
	struct qt_mirror m;
	qt_mirror_init(&m, q, none, c.size, 2 * c.size, 77);
	m.resize = true;
	for (int i = 0; i < 1500; i++)
		cr_assert(!qt_mirror_step(&m), "%s", m.err);
	cr_assert(!qt_mirror_verify(&m), "%s", m.err);
	cr_assert_eq(qcow_flush(q), 0);
	cr_assert_gt(io_calls, 100);
	/* the bytes on disk form an image without errors (the reservation is
	 * still held: its clusters count as leaks until close) ... */
	int keep = dup(fd);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	uint8_t *img = malloc((size_t)st.st_size);
	cr_assert_eq(pread(fd, img, (size_t)st.st_size, 0), st.st_size);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(img, (size_t)st.st_size, &chk), 0, "%s", chk.msg);
	cr_expect(chk.errors == 0, "%s", chk.msg);
	free(img);
	cr_assert_eq(qcow_close(q), 0);
	qt_mirror_fini(&m);
	cr_expect_eq(fcntl(fd, F_GETFD), -1, "QCOW_FD_OWN: fd not closed");
	/* ... and a clean one after close */
	cr_assert_eq(fstat(keep, &st), 0);
	img = malloc((size_t)st.st_size);
	cr_assert_eq(pread(keep, img, (size_t)st.st_size, 0), st.st_size);
	cr_assert_eq(qt_check_image(img, (size_t)st.st_size, &chk), 0, "%s", chk.msg);
	cr_expect(chk.errors == 0 && chk.leaks == 0, "%s", chk.msg);
	free(img);
	close(keep);
}

/* fdatasync failing must fail qcow_flush. */
static int failing_fdatasync(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

static ssize_t sys_pread(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

static const struct qcow_sysio bad_sync = {
	sys_pread, sys_pwrite, failing_fdatasync, sys_fstat, sys_ftruncate, NULL, sys_close,
	sys_pwritev2,
};

Test(faults, fdatasync_error_reported)
{
	char path[] = "/tmp/qt_fdXXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	struct qcow_backend be;
	cr_assert_eq(qcow_backend_fd(&be, fd, &bad_sync, QCOW_FD_OWN), 0);
	struct qcow_create_opts c = { .size = 1 << 20 };
	struct qcow *q = NULL;
	int r = qcow_create(&q, be, &c, NULL);
	if (r < 0) { /* create may flush: then it must report the error */
		cr_expect_eq(r, -EIO);
		be.ops->close(be.h); /* on failure the backend stays the caller's */
		return;
	}
	uint8_t buf[512] = { 1 };
	cr_assert_eq(qcow_write(q, buf, sizeof buf, 0), 512);
	cr_expect_eq(qcow_flush(q), -EIO, "flush with a failing fdatasync");
	cr_expect_eq(qcow_close(q), -EIO, "close with a failing fdatasync");
}

/* ---- a host file system that fills up --------------------------------- */

/* The host file may not grow past `room` bytes: a write that crosses it is
 * short (what fits), the next one fails with ENOSPC, as on a full disk;
 * overwriting bytes below the end of the file always works. */
static uint64_t room;
static unsigned long full_hits;

static ssize_t full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	uint64_t limit = room > (uint64_t)st.st_size ? room : (uint64_t)st.st_size;
	if ((uint64_t)off + n <= limit)
		return pwrite(fd, buf, n, off);
	full_hits++;
	if ((uint64_t)off >= limit) {
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, limit - (uint64_t)off, off);
}

static const struct qcow_sysio full_io = {
	sys_pread, full_pwrite, sys_fdatasync, sys_fstat, sys_ftruncate, NULL, sys_close,
	NULL, /* durable writes fall back to pwrite (which fills up) + fdatasync */
};

/* The disk fills up `extra` bytes past the base image, in the middle of a
 * workload: every failure is ENOSPC, the image on disk has no corruption and
 * is not marked corrupt, flushed data is intact, and once there is room again
 * the same image (reopened) takes writes and ends clean but for leaks. */
static void fill_up(uint64_t extra, uint64_t seed)
{
	size_t len;
	struct qt_track t;
	uint8_t *img = base_image(&len, &t);
	char path[] = "/tmp/qt_fullXXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(pwrite(fd, img, len, 0), (ssize_t)len);
	room = len + extra;
	full_hits = 0;
	struct qcow_backend be;
	int keep = dup(fd);
	cr_assert_eq(qcow_backend_fd(&be, fd, &full_io, QCOW_FD_OWN), 0);
	struct qcow *q = NULL;
	cr_assert_eq(qcow_open(&q, be, NULL), 0);
	if (qt_track_run(&t, q, 1u << CB, seed, NOPS))
		cr_assert_fail("room +%llu: %s", (unsigned long long)extra, t.err);
	/* one more large write must now fail with ENOSPC, or fit */
	uint8_t *big = malloc(SIZE / 2);
	qt_fill_pattern(big, SIZE / 2, seed + 1);
	ssize_t w = qcow_write(q, big, SIZE / 2, SIZE / 4);
	int fr = qcow_flush(q);
	cr_expect(w == SIZE / 2 || w == -ENOSPC, "room +%llu: write = %zd", (unsigned long long)extra, w);
	cr_expect(fr == 0 || fr == -ENOSPC, "room +%llu: flush = %d", (unsigned long long)extra, fr);
	if (w == SIZE / 2 && fr == 0) {
		memcpy(t.flat + SIZE / 4, big, SIZE / 2);
		memset(t.stable + SIZE / 4, 1, SIZE / 2);
	} else {
		memset(t.known + SIZE / 4, 0, SIZE / 2);
		memset(t.stable + SIZE / 4, 0, SIZE / 2);
	}
	if (full_hits == 0)
		cr_expect(t.errors == 0 && w == SIZE / 2, "room +%llu: failures without a full disk",
			  (unsigned long long)extra);
	qcow_close(q);
	/* the bytes on the (full) disk */
	struct stat st;
	cr_assert_eq(fstat(keep, &st), 0);
	/* ftruncate may extend the file sparsely: count allocated blocks */
	cr_expect_leq((uint64_t)st.st_blocks * 512, (room > len ? room : len) + 4096,
		      "room +%llu: %llu bytes allocated past the disk's %llu", (unsigned long long)extra,
		      (unsigned long long)st.st_blocks * 512, (unsigned long long)room);
	uint8_t *after = malloc((size_t)st.st_size);
	cr_assert_eq(pread(keep, after, (size_t)st.st_size, 0), st.st_size);
	close(keep);
	struct qt_check chk;
	cr_assert_eq(qt_check_image(after, (size_t)st.st_size, &chk), 0, "%s", chk.msg);
	cr_expect_eq(chk.errors, 0, "room +%llu: corruption on a full disk: %s",
		     (unsigned long long)extra, chk.msg);
	cr_expect(!chk.corrupt, "room +%llu: a full disk marked the image corrupt",
		  (unsigned long long)extra);
	/* room again: reopen, flushed data intact, writes work */
	int err;
	struct qcow_backend mbe;
	q = qt_open_mem(after, (size_t)st.st_size, 0, &mbe, &err);
	cr_assert(q, "room +%llu: reopen = %d", (unsigned long long)extra, err);
	if (qt_track_verify(&t, q, false))
		cr_assert_fail("room +%llu: %s", (unsigned long long)extra, t.err);
	cr_expect_eq(qcow_write(q, big, SIZE / 2, SIZE / 4), SIZE / 2);
	const char *m = qt_check_open(q, mbe, true);
	cr_expect(!m, "room +%llu: after more writes: %s", (unsigned long long)extra, m);
	qcow_close(q);
	free(big);
	free(after);
	free(img);
	qt_track_fini(&t);
}

Test(faults, disk_fills_up)
{
	unsigned long hit = 0;
	for (uint64_t extra = 0; extra < SIZE / 2; extra += 4096 * 5 + 512 * 3) {
		fill_up(extra, extra + 5);
		hit += full_hits != 0;
	}
	cr_expect_geq(hit, 10, "the disk filled up in only %lu runs", hit);
}

Test(faults, disk_fills_up_small_clusters)
{
	CB = 9;
	RBITS = 1;
	unsigned long hit = 0;
	for (uint64_t extra = 0; extra < SIZE / 4; extra += 512 * 23) {
		fill_up(extra, extra + 9);
		hit += full_hits != 0;
	}
	cr_expect_geq(hit, 10, "the disk filled up in only %lu runs", hit);
}
