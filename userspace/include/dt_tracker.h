/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_tracker: one interface over the dirty trackers a VMM or a migration
 * tool can use on Linux, so that they can be swapped and compared:
 *
 *   dirtytrack  the module's regions (write protection in page_mkwrite,
 *               harvest and re-protect in one ioctl)
 *   uffd-wp     userfaultfd write protection in async mode with PAGEMAP_SCAN
 *               (Linux 6.7+), on anonymous memory
 *   soft-dirty  clear_refs 4 and bit 55 of /proc/self/pagemap, on anonymous
 *               memory; the whole process's soft-dirty bits are cleared at
 *               each harvest, and harvest is not atomic against concurrent
 *               writers (see dt_tracker_atomic())
 *   mprotect    mprotect(PROT_READ) and a SIGSEGV handler that records the
 *               page and makes it writable again
 *
 * Every function returns 0 (or a pointer) on success and a negative errno
 * (NULL with *err set) on failure.
 */
#ifndef DT_TRACKER_H
#define DT_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dt_tracker_kind {
	DT_TRACKER_DIRTYTRACK,
	DT_TRACKER_UFFD_WP,
	DT_TRACKER_SOFT_DIRTY,
	DT_TRACKER_MPROTECT,
	DT_TRACKER_NKINDS,
};

struct dt_tracker;

/* "dirtytrack", "uffd-wp", "soft-dirty", "mprotect". */
const char *dt_tracker_name(enum dt_tracker_kind kind);
/* The kind named @name, or -EINVAL. */
int dt_tracker_kind(const char *name);
/*
 * 0 if @kind works on the running kernel, else -errno with a sentence in
 * @why saying what is missing (e.g. "needs Linux 6.7: UFFD_FEATURE_WP_ASYNC").
 */
int dt_tracker_probe(enum dt_tracker_kind kind, char *why, size_t len);
/*
 * Harvest is atomic against writers running at the same time (no write made
 * during a harvest is lost). False for soft-dirty, whose pagemap read and
 * clear_refs are two steps: stop the writers around its harvest, as CRIU does.
 */
bool dt_tracker_atomic(enum dt_tracker_kind kind);

/*
 * @bytes (a multiple of the page size) of zero-filled memory for @kind: a
 * dirtytrack region mapped MAP_SHARED, else private anonymous memory. Not
 * tracked until dt_tracker_start().
 */
struct dt_tracker *dt_tracker_create(enum dt_tracker_kind kind, size_t bytes, int *err);
/*
 * Track the caller's private anonymous memory (not for dirtytrack); it gets
 * MADV_NOHUGEPAGE, so that pages are tracked one by one.
 */
struct dt_tracker *dt_tracker_attach(enum dt_tracker_kind kind, void *addr, size_t bytes,
				     int *err);
void *dt_tracker_mem(const struct dt_tracker *t);
uint64_t dt_tracker_npages(const struct dt_tracker *t);
/* The region fd (dirtytrack), else -1. */
int dt_tracker_fd(const struct dt_tracker *t);

/* Write-protect everything; from the return on, every first write is recorded. */
int dt_tracker_start(struct dt_tracker *t);
/*
 * The pages written since start or the last harvest, as a bitmap in the
 * harvest layout of libdirtytrack.h (dt_bitmap_bytes(npages) bytes, fully
 * overwritten), re-protected; *ndirty (may be NULL) gets their number.
 */
int dt_tracker_harvest(struct dt_tracker *t, uint64_t *bitmap, uint64_t *ndirty);
int dt_tracker_stop(struct dt_tracker *t);
/*
 * The uffd-wp harvest on any process: PAGEMAP_SCAN on @pagemap (an open
 * /proc/PID/pagemap) over @npages pages from address @start. Sets the bits
 * of the written pages in @bitmap (harvest layout; others are left alone)
 * and, with @wp, write-protects them again in the same walk. -EPERM if a
 * mapping there is not registered for async uffd-wp, -ENOTTY (or -EINVAL)
 * without PAGEMAP_SCAN (before Linux 6.7).
 */
int dt_pagemap_scan(int pagemap, uint64_t start, uint64_t npages, bool wp, uint64_t *bitmap);
/* Stop, release the memory (if created here) and free @t. */
void dt_tracker_destroy(struct dt_tracker *t);

#endif /* DT_TRACKER_H */
