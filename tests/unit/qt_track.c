/*
 * qt_track.c - random workloads whose expected outcome is tracked per byte
 * (known / stable), for fault-injection and crash tests.
 */
#include "qt.h"

void qt_track_init(struct qt_track *t, uint64_t size)
{
	memset(t, 0, sizeof *t);
	t->size = size;
	t->flat = calloc(size, 1);
	t->known = malloc(size);
	t->stable = malloc(size);
	memset(t->known, 1, size);
	memset(t->stable, 1, size);
}

void qt_track_fini(struct qt_track *t)
{
	free(t->flat);
	free(t->known);
	free(t->stable);
	free(t->synced);
	free(t->wcount);
}

static int check_read(struct qt_track *t, const uint8_t *buf, uint64_t off, uint64_t n,
		      const uint8_t *which, const char *when)
{
	for (uint64_t i = 0; i < n; i++)
		if (which[off + i] && buf[i] != t->flat[off + i]) {
			snprintf(t->err, sizeof t->err, "%s: byte %#llx is %#x, want %#x", when,
				 (unsigned long long)(off + i), buf[i], t->flat[off + i]);
			return -1;
		}
	return 0;
}

/* Before the first run: what the image holds now counts as flushed. */
static void track_start(struct qt_track *t)
{
	if (t->synced)
		return;
	t->synced = malloc(t->size);
	memcpy(t->synced, t->flat, t->size);
	t->wcount = calloc(t->size, 1);
}

void qt_track_touch(struct qt_track *t, uint64_t off, uint64_t len)
{
	track_start(t);
	for (uint64_t b = off; b < off + len && b < t->size; b++)
		t->wcount[b] += t->wcount[b] < 2;
}

int qt_track_run(struct qt_track *t, struct qcow *q, unsigned cs, uint64_t seed, unsigned nops)
{
	uint64_t rng = seed * 7919 + 17;
	uint8_t *buf = malloc(4 * cs + 1024);
	track_start(t);
	for (unsigned i = 0; i < nops; i++) {
		uint64_t k = qt_below(&rng, 100);
		uint64_t off = qt_below(&rng, t->size), len = 1 + qt_below(&rng, 3 * cs + 1000);
		if (qt_below(&rng, 2))
			off -= off % cs;
		if (len > t->size - off)
			len = t->size - off;
		if (k < 50 || (k >= 65 && k < 75)) {
			int r;
			if (k < 50) {
				qt_fill_pattern(buf, len, qt_rng(&rng));
				ssize_t w = qcow_write(q, buf, len, off);
				r = w == (ssize_t)len ? 0 : -1;
			} else {
				memset(buf, 0, len);
				r = qcow_zero(q, off, len, k < 70 ? 0 : QCOW_ZERO_UNMAP);
			}
			memset(t->stable + off, 0, len);
			qt_track_touch(t, off, len);
			if (r == 0) {
				memcpy(t->flat + off, buf, len);
				memset(t->known + off, 1, len);
			} else {
				t->errors++;
				memset(t->known + off, 0, len);
			}
			if (t->publish && qcow_publish(q) < 0)
				t->errors++;
		} else if (k < 85) {
			ssize_t r = qcow_read(q, buf, len, off);
			if (r < 0)
				t->errors++;
			else if (r != (ssize_t)len) {
				snprintf(t->err, sizeof t->err, "read(%#llx, %llu) = %zd",
					 (unsigned long long)off, (unsigned long long)len, r);
				free(buf);
				return -1;
			} else if (check_read(t, buf, off, len, t->known, "read")) {
				free(buf);
				return -1;
			}
		} else {
			if (qcow_flush(q) == 0) {
				memcpy(t->stable, t->known, t->size);
				memcpy(t->synced, t->flat, t->size);
				memset(t->wcount, 0, t->size);
			} else
				t->errors++;
		}
	}
	free(buf);
	return 0;
}

int qt_track_verify(struct qt_track *t, struct qcow *q, bool all_known)
{
	uint8_t *buf = malloc(t->size);
	ssize_t r = qcow_read(q, buf, t->size, 0);
	int ret = 0;
	if (r != (ssize_t)t->size) {
		snprintf(t->err, sizeof t->err, "verify: read = %zd", r);
		ret = -1;
	} else {
		ret = check_read(t, buf, 0, t->size, all_known ? t->known : t->stable,
				 all_known ? "after reopen (known data)" : "after reopen (flushed data)");
		for (uint64_t i = 0; !ret && !all_known && t->wcount && i < t->size; i++)
			if (!t->stable[i] && t->known[i] && t->wcount[i] == 1 &&
			    buf[i] != t->flat[i] && buf[i] != t->synced[i]) {
				snprintf(t->err, sizeof t->err,
					 "after reopen: byte %#llx written once since the last flush is "
					 "%#x, neither the old %#x nor the new %#x",
					 (unsigned long long)i, buf[i], t->synced[i], t->flat[i]);
				ret = -1;
			}
	}
	free(buf);
	return ret;
}
