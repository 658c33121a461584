/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _DIRTYTRACK_INTERNAL_H
#define _DIRTYTRACK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/memcontrol.h>
#include <linux/mutex.h>
#include <linux/pagevec.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/dirtytrack.h>

#include "compat.h"

#define DT_FEATURES	(DIRTYTRACK_FEAT_REGIONS | DIRTYTRACK_FEAT_HARVEST_LIST | \
			 DIRTYTRACK_FEAT_MANUAL_PROTECT | DIRTYTRACK_FEAT_PUNCH_HOLE | \
			 DIRTYTRACK_FEAT_RW | DIRTYTRACK_FEAT_STREAM | \
			 DIRTYTRACK_FEAT_THROTTLE | DIRTYTRACK_FEAT_STREAM_SENT)

/**
 * struct dt_region - a tracked memory region
 * @kref: one reference per open struct file of the region.
 * @refs: one reference for all the files, one per send the network stack
 *	still holds pages of; the last frees the region.
 * @inode: the region's own anon inode; its page cache holds the pages.
 * @mapping: @inode's address space.
 * @npages: region size in pages.
 * @dirty: one bit per page, set by every write since the page was last
 *	write-protected (with the page's folio locked), cleared by the harvest
 *	that write-protects it again (before it takes the folio lock).
 * @summary: one bit per word of @dirty that may be nonzero.
 * @batch: room for the one &struct dt_batch at work (@lock).
 * @memcg: the creator's memory cgroup, charged for every page.
 * @lock: serializes tracking state changes, harvests, clears and hole punches;
 *	never held across a wait for the network or for another task.
 * @tx_lock: serializes sends; held across socket waits (killable).
 * @rx_lock: serializes receives and @rx; held across socket waits.
 * @tracking: tracking is on.
 * @manual: manual-protect mode (HARVEST does not re-protect).
 * @inflight: per page, sends whose pages the network stack still holds
 *	(allocated by the first STREAM); their writers get a copy of the page
 *	(dt_folio_writable()).
 * @tx_plock: guards @tx_pending, which a file's close may take.
 * @tx_pending: a send not yet wholly queued on its socket (@tx_plock; a
 *	call under @tx_lock takes it out while it sends it).
 * @tx_torn: the socket of the last pending send a file's close dropped: its
 *	stream may end inside a record, so STREAM refuses it (@tx_plock; a
 *	reference).
 * @tx_records: PAGE and ZERO records sent since the last round marker
 *	(@tx_lock).
 * @rx: receive state (allocated by the first RECEIVE; @rx_lock).
 * @thr: the write-fault budget (throttle.c).
 */
struct dt_tx_batch;
struct dt_rx;
struct dt_batch_buf;

/**
 * struct dt_throttle - a region's write-fault budget (THROTTLE)
 * @lock: guards the fields below but the counters.
 * @interval_ns: one write fault per interval; 0: no budget.
 * @pps: the budget as set, pages per second.
 * @tat: when the next write fault may go (ktime ns): each one takes the
 *	slot at max(@tat, now) and moves @tat one interval on.
 * @gen: bumped by every change, which wakes the sleepers on @wq.
 * @owner: the region file that set the budget; its close removes it.
 * @throttled: write faults that slept.
 * @slept_ns: their sleep.
 */
struct dt_throttle {
	spinlock_t lock;	/* see @lock above */
	u64 interval_ns;
	u64 pps;
	u64 tat;
	unsigned int gen;
	const struct file *owner;
	wait_queue_head_t wq;
	atomic64_t throttled;
	atomic64_t slept_ns;
};

struct dt_region {
	struct kref kref;
	refcount_t refs;
	struct work_struct free_work;
	struct inode *inode;
	struct address_space *mapping;
	pgoff_t npages;
	unsigned long *dirty;
	unsigned long *summary;
	struct dt_batch_buf *batch;
	struct mem_cgroup *memcg;
	struct mutex lock;	/* see @lock above */
	struct mutex tx_lock;	/* see @tx_lock above */
	struct mutex rx_lock;	/* see @rx_lock above */
	bool tracking;
	bool manual;
	atomic_t *inflight;
	spinlock_t tx_plock;	/* see @tx_plock above */
	struct dt_tx_batch *tx_pending;
	struct sock *tx_torn;
	u64 tx_records;
	struct dt_rx *rx;
	struct dt_throttle thr;

	atomic64_t write_faults;
	atomic64_t harvests;
	atomic64_t pages_reported;
	atomic64_t harvest_ns;
	atomic64_t pages_protected;
	atomic64_t pages_unshared;
};

/* The region's inode number: how tracepoints and dt-stat name it. */
static inline unsigned long dt_ino(const struct dt_region *r)
{
	return r->inode->i_ino;
}

extern unsigned int dt_max_region_mb;
extern struct workqueue_struct *dt_wq;

int dt_region_create(const struct dirtytrack_create *args);

/*
 * Folios one batch holds locked at most, clean pages its protection walks
 * may cross to join two of them (dt_batch_gap()), and pages it spans per
 * folio on average (dt_batch_joins()). One walk and one TLB flush cover
 * the batch; a dense harvest pays about 3x less per page with 256 folios
 * than with 64.
 */
#define DT_BATCH		256
#define DT_BATCH_GAP		16
#define DT_BATCH_NARROW		32
#define DT_BATCH_WIDE_GAP	256
#define DT_BATCH_DENSITY	64
/*
 * Batches of at most this many folios are protected folio by folio, with
 * no more TLB flushes than the two walks of a larger one (dt_protect_ptes()).
 */
#define DT_BATCH_MKCLEAN	2

/**
 * struct dt_batch - locked folios whose ptes are write-protected together
 * @r: the region; pinned folios are marked dirty again after the protection.
 *	The folios are in @r->batch: one batch at a time, under @r->lock.
 * @protected_fn: optional; called for each folio once protected, still locked.
 * @priv: for @protected_fn.
 * @zap: zap the ptes instead of write-protecting them in place. STREAM's
 *	pages: a write to one while a send holds it then takes a plain fault,
 *	which maps the writer's copy at once (dt_fault()). Through a read-only
 *	pte it would take two faults and an unmap of its own (2.2x the time
 *	in writer_stall over virtio-net); the price is a full fault instead
 *	of a write-protect fault for the first write after the peer has the
 *	page (1.3x).
 */
struct dt_batch {
	struct dt_region *r;
	bool zap;
	pgoff_t first, last;
	unsigned int nr;
	u64 protected;
	void (*protected_fn)(struct dt_batch *b, struct folio *folio);
	void *priv;
};

/**
 * struct dt_batch_buf - a region's room for its &struct dt_batch
 * @folios: the batch's locked folios.
 * @ahead: referenced folios looked up ahead, in index order, from
 *	@ahead_next on: one page cache walk for a run of dirty pages
 *	(dt_batch_lookup()).
 * @seen: scratch bitmap for the clean walk, which spans at most
 *	DT_BATCH * DT_BATCH_DENSITY pages.
 */
struct dt_batch_buf {
	struct folio *folios[DT_BATCH];
	struct folio_batch ahead;
	unsigned int ahead_next;
	DECLARE_BITMAP(seen, DT_BATCH * DT_BATCH_DENSITY);
};

bool dt_batch_protect(struct dt_batch *b, pgoff_t idx, pgoff_t run_last);
void dt_batch_flush(struct dt_batch *b);

/**
 * struct dt_walk - a walk over the dirty pages of a range
 * @protect: clear each page's bit and write-protect it (through @batch).
 * @mask: CLEAR: only these pages (kernel copy), bit 0 = @mask_first.
 * @full: optional; stop before the next page when it returns true.
 * @hole_fn: optional; takes holes instead of the bitmap/list output.
 */
struct dt_walk {
	struct dt_region *r;
	struct dt_batch batch;
	bool protect;
	const unsigned long *mask;
	pgoff_t mask_first;
	bool (*full)(struct dt_walk *wk);
	void (*hole_fn)(struct dt_walk *wk, pgoff_t idx);
	void *priv;
	/* output of one step */
	unsigned long *bitmap, *zeromap;	/* bitmap mode */
	u64 *list;				/* list mode */
	unsigned int list_nr, list_max;
	pgoff_t base;				/* page of bit 0 in bitmap */
	u64 found;
};

void dt_walk_range(struct dt_walk *wk, pgoff_t *pos, pgoff_t end);
void dt_mark_dirty(struct dt_region *r, pgoff_t idx);
struct folio *dt_get_folio(struct dt_region *r, pgoff_t idx);
bool dt_page_present(struct dt_region *r, pgoff_t idx);
int dt_check_range(struct dt_region *r, u64 first, u64 npages);
void dt_region_put(struct dt_region *r);
void dt_region_put_async(struct dt_region *r);

/* throttle.c */
void dt_throttle_init(struct dt_region *r);
long dt_ioc_throttle(struct file *file, struct dirtytrack_throttle __user *uarg);
int dt_throttle_wait(struct dt_region *r);
void dt_throttle_file_closed(struct dt_region *r, const struct file *file);

/* stream.c */
long dt_ioc_stream(struct file *file, struct dirtytrack_stream __user *uarg);
long dt_ioc_receive(struct dt_region *r, struct dirtytrack_receive __user *uarg);
void dt_stream_file_closed(struct dt_region *r, const struct file *file);
void dt_stream_free(struct dt_region *r);

struct folio *dt_folio_writable(struct dt_region *r, struct folio *folio);

/*
 * A send holds @folio's page (the caller holds the folio lock). STREAM marks
 * each folio it counts in flight, under its lock: the count is per page
 * index, and a copy that took the page's place (dt_folio_writable()) is not
 * held by anyone. A stale mark costs at most one needless copy.
 */
static inline bool dt_folio_in_flight(struct dt_region *r, struct folio *folio)
{
	/* Pairs with the release that publishes the zeroed array. */
	atomic_t *inflight = smp_load_acquire(&r->inflight);

	return inflight && folio_test_checked(folio) &&
	       atomic_read(&inflight[folio->index]);
}

#endif /* _DIRTYTRACK_INTERNAL_H */
