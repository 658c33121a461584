// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty tracker backends behind one interface: see dt_tracker.h.
 *
 * <linux/fs.h> and <linux/userfaultfd.h> come from the 6.12 uapi (the
 * Makefile installs them with the kernel's headers_install.sh): bookworm's
 * libc headers predate PAGEMAP_SCAN and UFFD_FEATURE_WP_ASYNC.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dt_tracker.h"
#include "libdirtytrack.h"

#define PS 4096UL

struct dt_tracker {
	enum dt_tracker_kind kind;
	char *mem;
	size_t bytes;
	uint64_t npages;
	bool owned;		/* mem was mapped here */
	bool tracking;
	int dev, fd;		/* dirtytrack: device and region; uffd-wp: the uffd */
	int pagemap;		/* uffd-wp, soft-dirty: /proc/self/pagemap */
	/* mprotect */
	_Atomic uint64_t *bits;
	atomic_flag lock;
};

static const char *const names[DT_TRACKER_NKINDS] = {
	[DT_TRACKER_DIRTYTRACK] = "dirtytrack",
	[DT_TRACKER_UFFD_WP] = "uffd-wp",
	[DT_TRACKER_SOFT_DIRTY] = "soft-dirty",
	[DT_TRACKER_MPROTECT] = "mprotect",
};

const char *dt_tracker_name(enum dt_tracker_kind kind)
{
	return kind < DT_TRACKER_NKINDS ? names[kind] : "?";
}

int dt_tracker_kind(const char *name)
{
	for (int k = 0; k < DT_TRACKER_NKINDS; k++)
		if (!strcmp(name, names[k]))
			return k;
	return -EINVAL;
}

bool dt_tracker_atomic(enum dt_tracker_kind kind)
{
	return kind != DT_TRACKER_SOFT_DIRTY;
}

/* ---- uffd-wp async + PAGEMAP_SCAN ---- */

static int uffd_open(int *fd)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};

	*fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0)
		return -errno;
	if (ioctl(*fd, UFFDIO_API, &api)) {
		int ret = -errno;

		close(*fd);
		*fd = -1;
		return ret;
	}
	return 0;
}

static int uffd_wp(struct dt_tracker *t, bool on)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)t->mem, .len = t->bytes },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(t->fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

static int uffd_setup(struct dt_tracker *t)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)t->mem, .len = t->bytes },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int ret = uffd_open(&t->fd);

	if (ret)
		return ret;
	if (ioctl(t->fd, UFFDIO_REGISTER, &reg))
		return -errno;
	t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return t->pagemap < 0 ? -errno : 0;
}

#define SCAN_VEC 1024

int dt_pagemap_scan(int pagemap, uint64_t start, uint64_t npages, bool wp, uint64_t *bitmap)
{
	struct page_region vec[SCAN_VEC];
	uint64_t end = start + npages * PS;
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = PM_SCAN_CHECK_WPASYNC | (wp ? PM_SCAN_WP_MATCHING : 0),
		.start = start, .end = end,
		.vec = (uintptr_t)vec, .vec_len = SCAN_VEC,
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};

	while (a.start < end) {
		long n = ioctl(pagemap, PAGEMAP_SCAN, &a);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++)
			for (uint64_t p = (vec[i].start - start) / PS; p < (vec[i].end - start) / PS; p++)
				dt_bitmap_set(bitmap, p);
		a.start = a.walk_end;
	}
	return 0;
}

/* PAGEMAP_SCAN: written pages, write-protected again in the same walk. */
static int uffd_harvest(struct dt_tracker *t, uint64_t *bitmap)
{
	return dt_pagemap_scan(t->pagemap, (uintptr_t)t->mem, t->npages, true, bitmap);
}

/* ---- soft-dirty ---- */

#define PM_SOFT_DIRTY (1ULL << 55)

static int clear_refs(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static int soft_dirty_harvest(struct dt_tracker *t, uint64_t *bitmap)
{
	uint64_t ent[4096];

	for (uint64_t p = 0; p < t->npages; p += 4096) {
		uint64_t n = t->npages - p < 4096 ? t->npages - p : 4096;
		off_t off = (off_t)(((uintptr_t)t->mem / PS + p) * 8);
		ssize_t got = pread(t->pagemap, ent, n * 8, off);

		if (got != (ssize_t)(n * 8))
			return got < 0 ? -errno : -EIO;
		for (uint64_t i = 0; i < n; i++)
			if (ent[i] & PM_SOFT_DIRTY)
				dt_bitmap_set(bitmap, p + i);
	}
	return clear_refs();	/* not atomic with the read: see dt_tracker.h */
}

/* ---- mprotect + SIGSEGV ---- */

#define MAX_MPROTECT 8
static _Atomic(struct dt_tracker *) mp_trackers[MAX_MPROTECT];
static struct sigaction mp_old;
static atomic_int mp_installed;

static void mp_lock(struct dt_tracker *t)
{
	while (atomic_flag_test_and_set_explicit(&t->lock, memory_order_acquire))
		;
}

static void mp_unlock(struct dt_tracker *t)
{
	atomic_flag_clear_explicit(&t->lock, memory_order_release);
}

static void mp_handler(int sig, siginfo_t *si, void *uc)
{
	char *addr = si->si_addr;

	for (int i = 0; i < MAX_MPROTECT; i++) {
		struct dt_tracker *t = atomic_load(&mp_trackers[i]);
		uint64_t p;

		if (!t || addr < t->mem || addr >= t->mem + t->bytes)
			continue;
		p = (uint64_t)(addr - t->mem) / PS;
		mp_lock(t);
		atomic_fetch_or(&t->bits[p / 64], 1ULL << (p % 64));
		if (mprotect(t->mem + p * PS, PS, PROT_READ | PROT_WRITE))
			abort();	/* e.g. vm.max_map_count: nothing safe to do */
		mp_unlock(t);
		return;
	}
	/* Not ours: the previous disposition takes the re-executed fault. */
	if (mp_old.sa_flags & SA_SIGINFO && mp_old.sa_sigaction) {
		mp_old.sa_sigaction(sig, si, uc);
		return;
	}
	signal(SIGSEGV, mp_old.sa_handler == SIG_IGN ? SIG_DFL : mp_old.sa_handler);
}

static int mp_setup(struct dt_tracker *t)
{
	int expected = 0;

	t->bits = calloc(1, dt_bitmap_bytes(t->npages));
	if (!t->bits)
		return -ENOMEM;
	atomic_flag_clear(&t->lock);
	if (atomic_compare_exchange_strong(&mp_installed, &expected, 1)) {
		struct sigaction sa = { .sa_sigaction = mp_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };

		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, &mp_old)) {
			atomic_store(&mp_installed, 0);
			return -errno;
		}
	}
	for (int i = 0; i < MAX_MPROTECT; i++) {
		struct dt_tracker *none = NULL;

		if (atomic_compare_exchange_strong(&mp_trackers[i], &none, t))
			return 0;
	}
	return -EBUSY;
}

static void mp_forget(struct dt_tracker *t)
{
	for (int i = 0; i < MAX_MPROTECT; i++) {
		struct dt_tracker *me = t;

		atomic_compare_exchange_strong(&mp_trackers[i], &me, NULL);
	}
	free((void *)t->bits);
	t->bits = NULL;
}

/* mprotect each run of set bits in @map (NULL: everything). */
static int protect_runs(struct dt_tracker *t, const uint64_t *map, int prot)
{
	uint64_t p;

	if (!map)
		return mprotect(t->mem, t->bytes, prot) ? -errno : 0;
	for (p = dt_bitmap_next(map, t->npages, 0); p < t->npages;) {
		uint64_t e = p + 1;

		while (e < t->npages && dt_bitmap_test(map, e))
			e++;
		if (mprotect(t->mem + p * PS, (e - p) * PS, prot))
			return -errno;
		p = dt_bitmap_next(map, t->npages, e);
	}
	return 0;
}

/*
 * Under the lock the handler takes: take the bits, write-protect their
 * pages. A write before the lock is in the bits; one after finds the page
 * protected and faults into the next harvest. (A page reported here may be
 * written before it is protected again: it is reported now, and read later.)
 */
static int mp_harvest(struct dt_tracker *t, uint64_t *bitmap)
{
	int ret;

	mp_lock(t);
	for (uint64_t w = 0; w < (t->npages + 63) / 64; w++)
		bitmap[w] = atomic_exchange(&t->bits[w], 0);
	ret = protect_runs(t, bitmap, PROT_READ);
	mp_unlock(t);
	return ret;
}

/* ---- the interface ---- */

int dt_tracker_probe(enum dt_tracker_kind kind, char *why, size_t len)
{
	uint64_t have = 0;
	int fd, ret = 0;

	snprintf(why, len, "available");
	switch (kind) {
	case DT_TRACKER_DIRTYTRACK:
		fd = dt_open();
		if (fd < 0) {
			snprintf(why, len, "cannot open /dev/dirtytrack (%s): is dirtytrack.ko loaded?",
				 strerror(-fd));
			return fd;
		}
		ret = dt_api(fd, DIRTYTRACK_FEAT_REGIONS, &have);
		close(fd);
		if (ret)
			snprintf(why, len, "dirtytrack API handshake failed: %s", strerror(-ret));
		return ret;
	case DT_TRACKER_UFFD_WP:
		ret = uffd_open(&fd);
		if (ret == -ENOSYS)
			snprintf(why, len, "kernel built without userfaultfd (CONFIG_USERFAULTFD)");
		else if (ret == -EPERM)
			snprintf(why, len, "userfaultfd not permitted (vm.unprivileged_userfaultfd=0)");
		else if (ret == -EINVAL)
			snprintf(why, len,
				 "needs Linux 6.7+: no UFFD_FEATURE_WP_ASYNC/WP_UNPOPULATED");
		else if (ret)
			snprintf(why, len, "userfaultfd: %s", strerror(-ret));
		if (ret)
			return ret;
		close(fd);
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			struct pm_scan_arg a = { .size = sizeof(a) };

			/* An empty range: 0 if PAGEMAP_SCAN exists, ENOTTY if not. */
			if (ioctl(fd, PAGEMAP_SCAN, &a) < 0 && errno == ENOTTY) {
				snprintf(why, len, "needs Linux 6.7+: no PAGEMAP_SCAN");
				ret = -ENOTTY;
			}
			close(fd);
		}
		return ret;
	case DT_TRACKER_SOFT_DIRTY: {
		char *m = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t ent = 0;

		if (m == MAP_FAILED)
			return -errno;
		m[0] = 1;
		ret = clear_refs();
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (!ret && fd >= 0) {
			m[0] = 2;
			if (pread(fd, &ent, 8, (off_t)((uintptr_t)m / PS * 8)) != 8)
				ret = -errno;
			else if (!(ent & PM_SOFT_DIRTY))
				ret = -EOPNOTSUPP;
		} else if (!ret) {
			ret = -errno;
		}
		if (fd >= 0)
			close(fd);
		munmap(m, PS);
		if (ret == -EOPNOTSUPP)
			snprintf(why, len, "kernel built without soft-dirty (CONFIG_MEM_SOFT_DIRTY)");
		else if (ret)
			snprintf(why, len, "clear_refs/pagemap: %s", strerror(-ret));
		return ret;
	}
	case DT_TRACKER_MPROTECT:
		return 0;
	default:
		snprintf(why, len, "unknown tracker");
		return -EINVAL;
	}
}

static struct dt_tracker *tracker_new(enum dt_tracker_kind kind, void *addr, size_t bytes,
				      int *err)
{
	struct dt_tracker *t;

	*err = 0;
	if (kind >= DT_TRACKER_NKINDS || !bytes || bytes % PS || (uintptr_t)addr % PS) {
		*err = -EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	t->kind = kind;
	t->mem = addr;
	t->bytes = bytes;
	t->npages = bytes / PS;
	t->dev = t->fd = t->pagemap = -1;
	return t;
}

static int tracker_setup(struct dt_tracker *t)
{
	/* Anonymous memory is tracked page by page, not by transparent huge page. */
	if (t->kind != DT_TRACKER_DIRTYTRACK && madvise(t->mem, t->bytes, MADV_NOHUGEPAGE))
		return -errno;
	switch (t->kind) {
	case DT_TRACKER_UFFD_WP:
		return uffd_setup(t);
	case DT_TRACKER_SOFT_DIRTY:
		t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		return t->pagemap < 0 ? -errno : 0;
	case DT_TRACKER_MPROTECT:
		return mp_setup(t);
	default:
		return 0;
	}
}

struct dt_tracker *dt_tracker_attach(enum dt_tracker_kind kind, void *addr, size_t bytes,
				     int *err)
{
	struct dt_tracker *t;

	if (kind == DT_TRACKER_DIRTYTRACK) {
		*err = -EINVAL;		/* its memory is a region: dt_tracker_create() */
		return NULL;
	}
	t = tracker_new(kind, addr, bytes, err);
	if (!t)
		return NULL;
	*err = tracker_setup(t);
	if (*err) {
		dt_tracker_destroy(t);
		return NULL;
	}
	return t;
}

struct dt_tracker *dt_tracker_create(enum dt_tracker_kind kind, size_t bytes, int *err)
{
	struct dt_tracker *t = tracker_new(kind, NULL, bytes, err);

	if (!t)
		return NULL;
	t->owned = true;
	if (kind == DT_TRACKER_DIRTYTRACK) {
		t->dev = dt_open();
		*err = t->dev < 0 ? t->dev : 0;
		if (!*err) {
			t->fd = dt_region_create(t->dev, bytes);
			*err = t->fd < 0 ? t->fd : 0;
		}
		if (!*err) {
			t->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
			if (t->mem == MAP_FAILED)
				*err = -errno;
		}
	} else {
		t->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		*err = t->mem == MAP_FAILED ? -errno : tracker_setup(t);
	}
	if (t->mem == MAP_FAILED)
		t->mem = NULL;
	if (*err) {
		dt_tracker_destroy(t);
		return NULL;
	}
	return t;
}

void *dt_tracker_mem(const struct dt_tracker *t)
{
	return t->mem;
}

uint64_t dt_tracker_npages(const struct dt_tracker *t)
{
	return t->npages;
}

int dt_tracker_fd(const struct dt_tracker *t)
{
	return t->kind == DT_TRACKER_DIRTYTRACK ? t->fd : -1;
}

int dt_tracker_start(struct dt_tracker *t)
{
	int ret;

	if (t->tracking)
		return -EBUSY;
	switch (t->kind) {
	case DT_TRACKER_DIRTYTRACK:
		ret = dt_track_start(t->fd, 0);
		break;
	case DT_TRACKER_UFFD_WP:
		ret = uffd_wp(t, true);
		break;
	case DT_TRACKER_SOFT_DIRTY:
		ret = clear_refs();
		break;
	default:
		memset((void *)t->bits, 0, dt_bitmap_bytes(t->npages));
		ret = protect_runs(t, NULL, PROT_READ);
		break;
	}
	t->tracking = !ret;
	return ret;
}

int dt_tracker_harvest(struct dt_tracker *t, uint64_t *bitmap, uint64_t *ndirty)
{
	int ret;

	if (!t->tracking)
		return -EINVAL;
	memset(bitmap, 0, dt_bitmap_bytes(t->npages));
	switch (t->kind) {
	case DT_TRACKER_DIRTYTRACK:
		ret = dt_harvest_bitmap(t->fd, 0, t->npages, bitmap, NULL, NULL);
		break;
	case DT_TRACKER_UFFD_WP:
		ret = uffd_harvest(t, bitmap);
		break;
	case DT_TRACKER_SOFT_DIRTY:
		ret = soft_dirty_harvest(t, bitmap);
		break;
	default:
		ret = mp_harvest(t, bitmap);
		break;
	}
	if (ndirty)
		*ndirty = ret ? 0 : dt_bitmap_count(bitmap, t->npages);
	return ret;
}

int dt_tracker_stop(struct dt_tracker *t)
{
	int ret = 0;

	if (!t->tracking)
		return 0;
	switch (t->kind) {
	case DT_TRACKER_DIRTYTRACK:
		ret = dt_track_stop(t->fd);
		break;
	case DT_TRACKER_UFFD_WP:
		ret = uffd_wp(t, false);
		break;
	case DT_TRACKER_SOFT_DIRTY:
		break;
	default:
		mp_lock(t);
		ret = protect_runs(t, NULL, PROT_READ | PROT_WRITE);
		mp_unlock(t);
		break;
	}
	t->tracking = false;
	return ret;
}

void dt_tracker_destroy(struct dt_tracker *t)
{
	if (!t)
		return;
	dt_tracker_stop(t);
	if (t->kind == DT_TRACKER_MPROTECT && t->bits)
		mp_forget(t);
	if (t->owned && t->mem)
		munmap(t->mem, t->bytes);
	if (t->fd >= 0)
		close(t->fd);
	if (t->dev >= 0)
		close(t->dev);
	if (t->pagemap >= 0)
		close(t->pagemap);
	free(t);
}
