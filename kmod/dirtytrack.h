/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _DIRTYTRACK_INTERNAL_H
#define _DIRTYTRACK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/memcontrol.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/dirtytrack.h>

#define DT_FEATURES	(DIRTYTRACK_FEAT_REGIONS | DIRTYTRACK_FEAT_HARVEST_LIST | \
			 DIRTYTRACK_FEAT_MANUAL_PROTECT | DIRTYTRACK_FEAT_PUNCH_HOLE | \
			 DIRTYTRACK_FEAT_RW)

/**
 * struct dt_region - a tracked memory region
 * @kref: one reference per open struct file of the region.
 * @inode: the region's own anon inode; its page cache holds the pages.
 * @mapping: @inode's address space.
 * @npages: region size in pages.
 * @dirty: one bit per page, set by every write since the page was last
 *	write-protected; set and cleared only with the page's folio locked.
 * @summary: one bit per word of @dirty that may be nonzero.
 * @memcg: the creator's memory cgroup, charged for every page.
 * @lock: serializes tracking state changes, harvests, clears and hole punches.
 * @tracking: tracking is on.
 * @manual: manual-protect mode (HARVEST does not re-protect).
 */
struct dt_region {
	struct kref kref;
	struct inode *inode;
	struct address_space *mapping;
	pgoff_t npages;
	unsigned long *dirty;
	unsigned long *summary;
	struct mem_cgroup *memcg;
	struct mutex lock;	/* see @lock above */
	bool tracking;
	bool manual;

	atomic64_t write_faults;
	atomic64_t harvests;
	atomic64_t pages_reported;
	atomic64_t harvest_ns;
	atomic64_t pages_protected;
};

extern unsigned int dt_max_region_mb;

int dt_region_create(const struct dirtytrack_create *args);

#endif /* _DIRTYTRACK_INTERNAL_H */
