// SPDX-License-Identifier: GPL-2.0
/*
 * dirtytrack regions: memfd-like files whose writes are caught by write
 * protection.
 *
 * A region's pages live in the page cache of its own anon inode. Every
 * mapping is MAP_SHARED with a ->page_mkwrite handler, so core mm maps pages
 * read-only and calls dt_page_mkwrite() on the first write to each; that sets
 * the page's bit in the dirty bitmap, under the folio lock, before the pte
 * becomes writable.
 *
 * Harvest clears a page's bit (a word of them at once), then takes its folio
 * lock (so any fault that set the bit has finished installing its pte) and
 * write-protects its ptes in place (dt_protect_ptes()), which fires mmu
 * notifiers for secondary MMUs. The next write faults again; reads do not.
 * Protection is batched over nearby pages so that one walk and one TLB flush
 * cover many of them (struct dt_batch). STREAM zaps
 * the ptes of the pages it sends instead, so that a write to one of them
 * while the network holds it maps a copy in a single fault (dt_fault()).
 *
 * Invariant: a page has a writable pte only while its dirty bit is set, but
 * inside the harvest that cleared the bit and reports the page.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/types.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "dirtytrack.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/* Pages examined per harvest step: one 4 KiB bitmap. */
#define DT_STEP		(8 * 4096)
/* List entries per harvest step. */
#define DT_LIST_STEP	512

static const struct file_operations dt_region_fops;

static inline struct dt_region *dt_file_region(struct file *file)
{
	return file->private_data;
}

/*
 * Mark a page written. Callers that make the page writable hold its folio
 * lock; anything may call it to report a page again.
 */
void dt_mark_dirty(struct dt_region *r, pgoff_t idx)
{
	if (test_bit(idx, r->dirty))
		return;
	/* test_and_set_bit() orders the page bit before the summary bit. */
	if (!test_and_set_bit(idx, r->dirty)) {
		if (!test_bit(BIT_WORD(idx), r->summary))
			set_bit(BIT_WORD(idx), r->summary);
		if (r->tracking) {
			atomic64_inc(&r->write_faults);
			trace_dirtytrack_write_fault(dt_ino(r), idx);
		}
	}
}

/* Drop a word's summary bit if the word is clean, without losing a racing set. */
static void dt_summary_settle(struct dt_region *r, unsigned long w)
{
	if (READ_ONCE(r->dirty[w]) || !test_bit(w, r->summary))
		return;
	clear_bit(w, r->summary);
	/* Order the clear before the re-read; pairs with dt_mark_dirty(). */
	smp_mb__after_atomic();
	if (READ_ONCE(r->dirty[w]))
		set_bit(w, r->summary);
}

/* Find, or create zero-filled, the locked folio at @idx, charged to the creator. */
struct folio *dt_get_folio(struct dt_region *r, pgoff_t idx)
{
	struct mem_cgroup *old = set_active_memcg(r->memcg);
	struct folio *folio;

	folio = dt_filemap_grab_folio(r->mapping, idx, mapping_gfp_mask(r->mapping));
	set_active_memcg(old);
	if (IS_ERR(folio))
		return folio;
	if (!folio_test_uptodate(folio)) {
		clear_highpage(folio_page(folio, 0));
		flush_dcache_folio(folio);
		folio_mark_uptodate(folio);
	}
	return folio;
}

/*
 * Write-protect the ptes of batch @b's pages in place: mmu notifiers fire
 * (secondary MMUs drop their mappings) and stale TLB entries are flushed.
 * A page that is only read keeps its pte, so reading it after a harvest
 * costs no fault. The ptes are also marked clean, as mprotect() and NUMA
 * hinting make a dirty read-only pte of a shared mapping writable again
 * without a fault (can_change_pte_writable()).
 *
 * A batch of up to DT_BATCH_MKCLEAN folios goes folio by folio through
 * folio_mkclean(), the rmap walk writeback and fb_defio use: it
 * write-protects and cleans in one pass, with one TLB flush per pte it
 * changes. A larger one goes through core mm's range walks for drivers
 * that track writes to shared mappings (vmwgfx), one to write-protect and
 * one to clean (whose bitmap is not needed), each with one TLB flush per
 * mapping. Each flush is an IPI to every other CPU running the process, so
 * a batch of two pays as many either way, and a lone page half the walks.
 *
 * With @b->zap, or on a kernel built without the walks
 * (CONFIG_MAPPING_DIRTY_HELPERS), a larger batch's ptes are zapped.
 */
static void dt_protect_ptes(struct dt_batch *b)
{
	struct dt_region *r = b->r;
	pgoff_t first = b->first, nr = b->last - b->first + 1;
	unsigned int i;

	if (!b->zap && b->nr <= DT_BATCH_MKCLEAN) {
		for (i = 0; i < b->nr; i++)
			folio_mkclean(r->batch->folios[i]);
		return;
	}
#if IS_ENABLED(CONFIG_MAPPING_DIRTY_HELPERS)
	if (!b->zap) {
		pgoff_t start = 0, end = 0;

		wp_shared_mapping_range(r->mapping, first, nr);
		clean_record_shared_mapping_range(r->mapping, first, nr, first,
						  r->batch->seen, &start, &end);
		return;
	}
#endif
	unmap_mapping_pages(r->mapping, first, nr, false);
}

/* Drop the folios looked up ahead. */
static void dt_batch_drop_ahead(struct dt_batch_buf *buf)
{
	while (buf->ahead_next < folio_batch_count(&buf->ahead))
		folio_put(buf->ahead.folios[buf->ahead_next++]);
	folio_batch_init(&buf->ahead);
	buf->ahead_next = 0;
}

/*
 * The referenced folio at @idx, or an ERR_PTR for a hole. One page cache
 * walk looks up the present pages of the run [@idx, @run_last] at once (up
 * to a folio_batch of them); they wait in @b's ahead for the calls that follow.
 */
static struct folio *dt_batch_lookup(struct dt_batch *b, pgoff_t idx, pgoff_t run_last)
{
	struct dt_batch_buf *buf = b->r->batch;
	struct folio_batch *fb = &buf->ahead;
	pgoff_t next = idx;

	while (buf->ahead_next < folio_batch_count(fb) &&
	       fb->folios[buf->ahead_next]->index < idx)
		folio_put(fb->folios[buf->ahead_next++]);
	if (buf->ahead_next < folio_batch_count(fb) && fb->folios[buf->ahead_next]->index == idx)
		return fb->folios[buf->ahead_next++];
	dt_batch_drop_ahead(buf);
	if (run_last > idx && filemap_get_folios_contig(b->r->mapping, &next, run_last, fb)) {
		if (fb->folios[0]->index == idx)
			return fb->folios[buf->ahead_next++];
		dt_batch_drop_ahead(buf);
	}
	return dt_filemap_get_folio(b->r->mapping, idx);
}

/*
 * Protect the batch's ptes (one TLB flush per mapping), give each
 * folio, still locked and now write-protected everywhere, to @b->protected_fn,
 * then unlock them.
 *
 * A folio pinned for DMA (an O_DIRECT read in flight, say) is written by the
 * device without a fault: it stays dirty, so every later harvest reports it
 * again until the pin is gone and one harvest takes its final bytes. A new
 * pin cannot appear meanwhile: FOLL_PIN with FOLL_WRITE needs a writable pte,
 * so it faults, and GUP-fast re-checks the pte after taking its pin.
 */
void dt_batch_flush(struct dt_batch *b)
{
	unsigned int i;

	dt_batch_drop_ahead(b->r->batch);
	if (!b->nr)
		return;
	dt_protect_ptes(b);
	/* The protection before the pin counts; pairs with GUP-fast's pte re-check. */
	smp_mb();
	for (i = 0; i < b->nr; i++) {
		struct folio *folio = b->r->batch->folios[i];

		if (folio_maybe_dma_pinned(folio))
			dt_mark_dirty(b->r, folio->index);
		if (b->protected_fn)
			b->protected_fn(b, folio);
		folio_unlock(folio);
		folio_put(folio);
	}
	b->protected += b->nr;
	b->nr = 0;
}

/*
 * Clean pages a batch's walks may cross to reach the next dirty one. x86
 * flushes up to 33 pages of TLB one by one and more with a flush of the
 * whole TLB: a batch that spans a few pages stays that small, unless its
 * next page is near; one that spans more pays the whole flush already, and
 * crossing clean ptes costs less than the flushes (an IPI each to every
 * other CPU running the process) and mmu notifier calls of a batch of its
 * own. These gaps were measured when every batch took the two walks; a
 * lone page now takes one rmap walk (dt_protect_ptes()). A zap crosses
 * few: it takes the clean pages' ptes too, and their next reads fault.
 */
static unsigned int dt_batch_gap(const struct dt_batch *b)
{
	if (b->zap || b->last - b->first < DT_BATCH_NARROW)
		return DT_BATCH_GAP;
	return DT_BATCH_WIDE_GAP;
}

/*
 * May page @idx join batch @b, or must @b be flushed first? A batch also
 * keeps to DT_BATCH_DENSITY pages per folio it holds on average, so that
 * its walks cross at most that many ptes per page they protect (and span
 * at most DT_BATCH * DT_BATCH_DENSITY pages).
 */
static bool dt_batch_joins(const struct dt_batch *b, pgoff_t idx)
{
	return b->nr < DT_BATCH && idx > b->last && idx <= b->last + dt_batch_gap(b) &&
	       idx - b->first < (b->nr + 1) * DT_BATCH_DENSITY;
}

/*
 * Lock the folio at @idx and queue it for write protection. Returns false if
 * the page is a hole. @run_last: the last of the pages from @idx on that the
 * caller will queue next, one by one (@idx if it does not know). Never sleeps
 * on a folio lock while holding others.
 */
bool dt_batch_protect(struct dt_batch *b, pgoff_t idx, pgoff_t run_last)
{
	struct folio *folio;

	lockdep_assert_held(&b->r->lock);
retry:
	folio = dt_batch_lookup(b, idx, run_last);
	if (IS_ERR(folio))
		return false;
	if (!folio_trylock(folio)) {
		dt_batch_flush(b);
		folio_lock(folio);
	}
	if (unlikely(folio->mapping != b->r->mapping)) {
		/* Punched, or a writer's copy took its place: look again. */
		folio_unlock(folio);
		folio_put(folio);
		run_last = idx;
		goto retry;
	}
	if (b->nr && !dt_batch_joins(b, idx))
		dt_batch_flush(b);
	if (!b->nr)
		b->first = idx;
	b->last = idx;
	b->r->batch->folios[b->nr++] = folio;
	return true;
}

/* Write-protect every populated page and forget all dirtiness. */
static void dt_protect_all(struct dt_region *r, struct dt_batch *b)
{
	unsigned long w, nwords = BITS_TO_LONGS(r->npages);
	struct folio_batch fbatch;
	pgoff_t index = 0;
	unsigned int i;

	/*
	 * Summary first: a fault that sets its page bit after this sees the
	 * summary bit clear and sets it again. Clearing the dirty words first
	 * would let a fault in between find a stale summary bit, skip it, and
	 * lose the page when the summary is then zeroed.
	 */
	bitmap_zero(r->summary, BITS_TO_LONGS(nwords) * BITS_PER_LONG);
	/* Pairs with the test_and_set_bit() in dt_mark_dirty(). */
	smp_mb();
	for (w = 0; w < nwords; w++)
		WRITE_ONCE(r->dirty[w], 0);
	/* Bits are gone before any folio is looked up and locked below. */
	smp_mb();

	folio_batch_init(&fbatch);
	while (filemap_get_folios(r->mapping, &index, r->npages - 1, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++)
			dt_batch_protect(b, fbatch.folios[i]->index, fbatch.folios[i]->index);
		folio_batch_release(&fbatch);
		cond_resched();
	}
	dt_batch_flush(b);
}

/* ---- harvest and clear ---- */

bool dt_page_present(struct dt_region *r, pgoff_t idx)
{
	struct folio *folio = dt_filemap_get_folio(r->mapping, idx);

	if (IS_ERR(folio))
		return false;
	folio_put(folio);
	return true;
}

/*
 * Take the bits of @want from @r's dirty word @w: returns those that were
 * set, now clear. One atomic operation for up to a word of pages.
 */
static unsigned long dt_take_dirty(struct dt_region *r, unsigned long w, unsigned long want)
{
	unsigned long old = READ_ONCE(r->dirty[w]);

	do {
		if (!(old & want))
			return 0;
	} while (!try_cmpxchg(&r->dirty[w], &old, old & ~want));
	return old & want;
}

/*
 * Handle one dirty page, whose bit the walk has taken if it protects; @run_last
 * is the last page of the run of dirty pages it is in. False when the output
 * is full.
 */
static bool dt_walk_page(struct dt_walk *wk, pgoff_t idx, pgoff_t run_last)
{
	struct dt_region *r = wk->r;
	bool hole;

	if (wk->list && wk->list_nr == wk->list_max)
		return false;
	if (wk->full && wk->full(wk))
		return false;
	if (wk->protect)
		hole = !dt_batch_protect(&wk->batch, idx, run_last);
	else
		hole = !dt_page_present(r, idx);
	wk->found++;
	if (wk->hole_fn) {
		if (hole)
			wk->hole_fn(wk, idx);
	} else if (wk->list) {
		wk->list[wk->list_nr++] = idx | (hole ? DIRTYTRACK_PAGE_ZERO : 0);
	} else if (wk->bitmap) {
		__set_bit(idx - wk->base, wk->bitmap);
		if (hole && wk->zeromap)
			__set_bit(idx - wk->base, wk->zeromap);
	}
	return true;
}

/* The bits of dirty word @w that the walk wants: in [pos, end) and in @wk->mask. */
static unsigned long dt_walk_want(struct dt_walk *wk, unsigned long w, pgoff_t pos, pgoff_t end)
{
	unsigned long want = ~0UL, b;
	pgoff_t base = w * BITS_PER_LONG;

	if (pos > base)
		want &= BITMAP_FIRST_WORD_MASK(pos - base);
	if (end < base + BITS_PER_LONG)
		want &= BITMAP_LAST_WORD_MASK(end - base);
	if (wk->mask) {
		unsigned long range = want;

		for_each_set_bit(b, &range, BITS_PER_LONG)
			if (!test_bit(base + b - wk->mask_first, wk->mask))
				want &= ~BIT(b);
	}
	return want;
}

/*
 * Walk the dirty pages in [*pos, end). Advances *pos to the first page not
 * handled: @end, or where the output filled up. A protecting walk takes a
 * word's bits at once; those of pages it did not get to are set again.
 */
void dt_walk_range(struct dt_walk *wk, pgoff_t *pos, pgoff_t end)
{
	struct dt_region *r = wk->r;
	unsigned long w, wend = BIT_WORD(end - 1) + 1;

	for (w = find_next_bit(r->summary, wend, BIT_WORD(*pos)); w < wend;
	     w = find_next_bit(r->summary, wend, w + 1)) {
		unsigned long want = dt_walk_want(wk, w, *pos, end), bits, b, run_end = 0;
		pgoff_t base = w * BITS_PER_LONG;
		bool full = false;

		if (wk->protect)
			bits = dt_take_dirty(r, w, want);
		else
			bits = READ_ONCE(r->dirty[w]) & want;
		for_each_set_bit(b, &bits, BITS_PER_LONG) {
			if (b >= run_end)
				run_end = find_next_zero_bit(&bits, BITS_PER_LONG, b);
			if (!dt_walk_page(wk, base + b, base + run_end - 1)) {
				*pos = base + b;
				full = true;
				break;
			}
		}
		if (full && wk->protect) {
			/* Not handled: dirty still (the summary bit is still set). */
			bits &= BITMAP_FIRST_WORD_MASK(b);
			for_each_set_bit(b, &bits, BITS_PER_LONG)
				set_bit(base + b, r->dirty);
		}
		if (wk->protect)
			dt_summary_settle(r, w);
		if (full)
			return;
		cond_resched();
	}
	*pos = end;
}

/* Report pages of a failed copy-out again: a lost report is a lost write. */
static void dt_walk_undo(struct dt_walk *wk)
{
	unsigned long b;
	unsigned int i;

	if (!wk->protect)
		return;
	if (wk->list) {
		for (i = 0; i < wk->list_nr; i++)
			dt_mark_dirty(wk->r, wk->list[i] & DIRTYTRACK_PAGE_INDEX_MASK);
		return;
	}
	for_each_set_bit(b, wk->bitmap, DT_STEP)
		dt_mark_dirty(wk->r, wk->base + b);
}

int dt_check_range(struct dt_region *r, u64 first, u64 npages)
{
	if (!npages || first >= r->npages || npages > r->npages - first)
		return -EINVAL;
	return 0;
}

static long dt_ioc_harvest(struct dt_region *r, struct dirtytrack_harvest __user *uarg)
{
	struct dirtytrack_harvest h;
	struct dt_walk wk = { .r = r };
	pgoff_t pos, end;
	u64 t0 = ktime_get_ns(), ns;
	bool list;
	long ret = 0;

	if (copy_from_user(&h, uarg, sizeof(h)))
		return -EFAULT;
	if ((h.flags & ~DIRTYTRACK_HARVEST_LIST) || h.reserved ||
	    h.reserved2[0] || h.reserved2[1])
		return -EINVAL;
	h.next_page = 0;
	h.dirty = 0;
	if (dt_check_range(r, h.first_page, h.npages))
		return -EINVAL;
	list = h.flags & DIRTYTRACK_HARVEST_LIST;
	if (!h.buf || (list && (h.zero_buf || !h.buf_size || h.buf_size % 8)))
		return -EINVAL;
	if (!list && h.buf_size < BITS_TO_LONGS(h.npages) * sizeof(long))
		return -ENOSPC;
	/* The answer must be deliverable before any page is taken. */
	if (copy_to_user(uarg, &h, sizeof(h)))
		return -EFAULT;

	if (list) {
		wk.list_max = min_t(u64, h.buf_size / 8, DT_LIST_STEP);
		wk.list = kmalloc_array(wk.list_max, sizeof(u64), GFP_KERNEL);
		if (!wk.list)
			return -ENOMEM;
	} else {
		wk.bitmap = bitmap_zalloc(DT_STEP, GFP_KERNEL);
		wk.zeromap = h.zero_buf ? bitmap_zalloc(DT_STEP, GFP_KERNEL) : NULL;
		if (!wk.bitmap || (h.zero_buf && !wk.zeromap)) {
			ret = -ENOMEM;
			goto out_free;
		}
	}

	if (mutex_lock_killable(&r->lock)) {
		ret = -EINTR;
		goto out_free;
	}
	if (!r->tracking) {
		ret = -EINVAL;
		goto out_unlock;
	}
	wk.protect = !r->manual;
	wk.batch.r = r;
	pos = h.first_page;
	end = h.first_page + h.npages;
	while (pos < end) {
		pgoff_t from = pos, step_end;
		u64 found = wk.found;
		int err = 0;

		if (list) {
			u64 room = h.buf_size / 8 - h.dirty;

			if (!room)
				break;
			wk.list_max = min_t(u64, room, DT_LIST_STEP);
			wk.list_nr = 0;
			step_end = end;
		} else {
			wk.base = pos;
			bitmap_zero(wk.bitmap, DT_STEP);
			if (wk.zeromap)
				bitmap_zero(wk.zeromap, DT_STEP);
			step_end = min_t(pgoff_t, end, pos + DT_STEP);
		}
		dt_walk_range(&wk, &pos, step_end);
		/* No folio lock may be held across a user copy. */
		dt_batch_flush(&wk.batch);

		if (list) {
			if (copy_to_user(u64_to_user_ptr(h.buf + h.dirty * 8), wk.list,
					 wk.list_nr * sizeof(u64)))
				err = -EFAULT;
		} else {
			u64 off = (from - h.first_page) / 8;
			size_t len = BITS_TO_LONGS(step_end - from) * sizeof(long);

			if (copy_to_user(u64_to_user_ptr(h.buf + off), wk.bitmap, len) ||
			    (wk.zeromap &&
			     copy_to_user(u64_to_user_ptr(h.zero_buf + off), wk.zeromap, len)))
				err = -EFAULT;
		}
		if (err) {
			dt_walk_undo(&wk);
			wk.found = found;
			pos = from;
			if (pos == h.first_page)
				ret = err;
			break;
		}
		h.dirty += wk.found - found;
	}
	h.next_page = pos;

	ns = ktime_get_ns() - t0;
	if (!ret) {
		atomic64_inc(&r->harvests);
		atomic64_add(h.dirty, &r->pages_reported);
	}
	atomic64_add(ns, &r->harvest_ns);
	atomic64_add(wk.batch.protected, &r->pages_protected);
	trace_dirtytrack_harvest(dt_ino(r), h.first_page, h.npages, h.dirty,
				 wk.batch.protected, ns, false);
out_unlock:
	mutex_unlock(&r->lock);
	if (!ret && copy_to_user(uarg, &h, sizeof(h)))
		ret = -EFAULT;	/* only if the caller unmapped it meanwhile */
out_free:
	kfree(wk.list);
	bitmap_free(wk.bitmap);
	bitmap_free(wk.zeromap);
	return ret;
}

static long dt_ioc_clear(struct dt_region *r, struct dirtytrack_clear __user *uarg)
{
	struct dirtytrack_clear c;
	struct dt_walk wk = { .r = r, .protect = true };
	unsigned long *mask = NULL;
	pgoff_t pos, end;
	u64 t0 = ktime_get_ns(), ns;
	long ret = 0;

	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	if (c.flags || c.reserved || c.reserved2[0] || c.reserved2[1])
		return -EINVAL;
	c.cleared = 0;
	if (dt_check_range(r, c.first_page, c.npages))
		return -EINVAL;
	if (!c.bitmap != !c.bitmap_size)
		return -EINVAL;
	if (copy_to_user(uarg, &c, sizeof(c)))
		return -EFAULT;
	if (c.bitmap) {
		if (c.bitmap_size < BITS_TO_LONGS(c.npages) * sizeof(long))
			return -ENOSPC;
		mask = bitmap_alloc(c.npages, GFP_KERNEL_ACCOUNT);
		if (!mask)
			return -ENOMEM;
		if (copy_from_user(mask, u64_to_user_ptr(c.bitmap),
				   BITS_TO_LONGS(c.npages) * sizeof(long))) {
			bitmap_free(mask);
			return -EFAULT;
		}
		wk.mask = mask;
		wk.mask_first = c.first_page;
	}
	if (mutex_lock_killable(&r->lock)) {
		bitmap_free(mask);
		return -EINTR;
	}
	if (!r->tracking) {
		ret = -EINVAL;
		goto out_unlock;
	}
	wk.batch.r = r;
	pos = c.first_page;
	end = c.first_page + c.npages;
	dt_walk_range(&wk, &pos, end);
	dt_batch_flush(&wk.batch);
	c.cleared = wk.found;
	ns = ktime_get_ns() - t0;
	atomic64_add(ns, &r->harvest_ns);
	atomic64_add(wk.batch.protected, &r->pages_protected);
	trace_dirtytrack_harvest(dt_ino(r), c.first_page, c.npages, c.cleared,
				 wk.batch.protected, ns, true);
out_unlock:
	mutex_unlock(&r->lock);
	if (!ret && copy_to_user(uarg, &c, sizeof(c)))
		ret = -EFAULT;
	bitmap_free(mask);
	return ret;
}

static long dt_ioc_track(struct dt_region *r, struct dirtytrack_track __user *uarg,
			 bool start)
{
	struct dirtytrack_track t;
	struct dt_batch batch = { .r = r };
	u32 valid = start ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0;

	if (copy_from_user(&t, uarg, sizeof(t)))
		return -EFAULT;
	if ((t.flags & ~valid) || t.reserved || t.reserved2)
		return -EINVAL;

	if (mutex_lock_killable(&r->lock))
		return -EINTR;
	if (start) {
		/* Restarting is allowed: it forgets what was dirty. */
		r->manual = t.flags & DIRTYTRACK_TRACK_MANUAL_PROTECT;
		WRITE_ONCE(r->tracking, true);
		dt_protect_all(r, &batch);
		atomic64_add(batch.protected, &r->pages_protected);
	} else {
		if (!r->tracking) {
			mutex_unlock(&r->lock);
			return -EINVAL;
		}
		WRITE_ONCE(r->tracking, false);
	}
	trace_dirtytrack_track(dt_ino(r), start, t.flags, r->mapping->nrpages);
	mutex_unlock(&r->lock);
	return 0;
}

static long dt_ioc_stats(struct dt_region *r, struct dirtytrack_stats __user *uarg)
{
	struct dirtytrack_stats s = {
		.size = (u64)r->npages << PAGE_SHIFT,
		.pages_populated = READ_ONCE(r->mapping->nrpages),
		.write_faults = atomic64_read(&r->write_faults),
		.harvests = atomic64_read(&r->harvests),
		.pages_reported = atomic64_read(&r->pages_reported),
		.harvest_ns = atomic64_read(&r->harvest_ns),
		.pages_protected = atomic64_read(&r->pages_protected),
		.throttle_pps = READ_ONCE(r->thr.pps),
		.throttled = atomic64_read(&r->thr.throttled),
		.throttle_ns = atomic64_read(&r->thr.slept_ns),
		.pages_unshared = atomic64_read(&r->pages_unshared),
	};

	if (READ_ONCE(r->tracking))
		s.state |= DIRTYTRACK_STATE_TRACKING;
	if (READ_ONCE(r->manual))
		s.state |= DIRTYTRACK_STATE_MANUAL_PROTECT;
	return copy_to_user(uarg, &s, sizeof(s)) ? -EFAULT : 0;
}

static long dt_region_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dt_region *r = dt_file_region(file);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case DIRTYTRACK_IOC_TRACK_START:
		return dt_ioc_track(r, uarg, true);
	case DIRTYTRACK_IOC_TRACK_STOP:
		return dt_ioc_track(r, uarg, false);
	case DIRTYTRACK_IOC_HARVEST:
		return dt_ioc_harvest(r, uarg);
	case DIRTYTRACK_IOC_CLEAR:
		return dt_ioc_clear(r, uarg);
	case DIRTYTRACK_IOC_STATS:
		return dt_ioc_stats(r, uarg);
	case DIRTYTRACK_IOC_THROTTLE:
		return dt_ioc_throttle(file, uarg);
	case DIRTYTRACK_IOC_STREAM:
		return dt_ioc_stream(file, uarg);
	case DIRTYTRACK_IOC_RECEIVE:
		return dt_ioc_receive(r, uarg);
	default:
		return -ENOTTY;
	}
}

/* ---- mappings ---- */

static vm_fault_t dt_fault(struct vm_fault *vmf)
{
	struct dt_region *r = dt_file_region(vmf->vma->vm_file);
	struct folio *folio;

	if (vmf->pgoff >= r->npages)
		return VM_FAULT_SIGBUS;
again:
	folio = dt_get_folio(r, vmf->pgoff);
	if (IS_ERR(folio))
		return vmf_error(PTR_ERR(folio));
	if ((vmf->flags & FAULT_FLAG_WRITE) && unlikely(dt_folio_in_flight(r, folio))) {
		/*
		 * A write to a page a send holds, whose pte STREAM zapped: map
		 * the writer's copy now, in this one fault. ->page_mkwrite()
		 * then marks the copy dirty as any other write.
		 */
		folio = dt_folio_writable(r, folio);
		if (IS_ERR(folio))	/* killed: see dt_page_mkwrite() */
			return VM_FAULT_SIGBUS;
		if (!folio)
			goto again;
	}
	vmf->page = folio_file_page(folio, vmf->pgoff);
	return VM_FAULT_LOCKED;
}

static vm_fault_t dt_page_mkwrite(struct vm_fault *vmf)
{
	struct dt_region *r = dt_file_region(vmf->vma->vm_file);
	struct folio *folio = page_folio(vmf->page);

	/* Over the write-fault budget: sleep first, holding no folio lock. */
	if (dt_throttle_wait(r))
		return VM_FAULT_SIGBUS;	/* being killed: see the inflight wait below */
	folio_lock(folio);
	if (folio->mapping != r->mapping) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	if (unlikely(dt_folio_in_flight(r, folio))) {
		/*
		 * Its bytes are on their way with a checksum: the page cache
		 * takes a copy in its place, and the fault, retried, maps
		 * that. The fault's own reference on @folio stays its own.
		 */
		folio_get(folio);
		folio = dt_folio_writable(r, folio);
		/*
		 * A dying task must not retry: a kernel-mode fault (copy_to_user
		 * into the page) would loop forever. SIGBUS makes the user copy
		 * fail with EFAULT; the task is being killed anyway.
		 */
		if (IS_ERR(folio))
			return VM_FAULT_SIGBUS;
		if (folio) {
			folio_unlock(folio);
			folio_put(folio);
		}
		return VM_FAULT_NOPAGE;
	}
	dt_mark_dirty(r, folio->index);
	return VM_FAULT_LOCKED;
}

static const struct vm_operations_struct dt_vm_ops = {
	.fault		= dt_fault,
	.map_pages	= filemap_map_pages,
	.page_mkwrite	= dt_page_mkwrite,
};

static int dt_mmap(struct file *file, struct vm_area_struct *vma)
{
	/* A private mapping would write to copies that are never tracked. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	file_accessed(file);
	vma->vm_ops = &dt_vm_ops;
	return 0;
}

/* ---- read, write, punch hole ---- */

static ssize_t dt_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct dt_region *r = dt_file_region(iocb->ki_filp);
	loff_t size = (loff_t)r->npages << PAGE_SHIFT;
	ssize_t done = 0;

	while (iov_iter_count(to) && iocb->ki_pos < size) {
		pgoff_t idx = iocb->ki_pos >> PAGE_SHIFT;
		size_t off = offset_in_page(iocb->ki_pos);
		size_t n = min_t(size_t, PAGE_SIZE - off, iov_iter_count(to));
		struct folio *folio = dt_filemap_get_folio(r->mapping, idx);
		size_t got;

		if (IS_ERR(folio)) {
			got = iov_iter_zero(n, to);
		} else {
			/* dt_get_folio() zeroes a new folio under its lock. */
			if (unlikely(!folio_test_uptodate(folio))) {
				if (folio_lock_killable(folio)) {
					folio_put(folio);
					return done ? done : -EINTR;
				}
				folio_unlock(folio);
			}
			if (folio_test_uptodate(folio))
				got = copy_page_to_iter(folio_page(folio, 0), off, n, to);
			else	/* truncated before it was ever filled */
				got = iov_iter_zero(n, to);
			folio_put(folio);
		}
		done += got;
		iocb->ki_pos += got;
		if (got < n) {
			if (!done)
				return -EFAULT;
			break;
		}
		if (fatal_signal_pending(current))
			return done ? done : -EINTR;
		cond_resched();
	}
	return done;
}

static ssize_t dt_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct dt_region *r = dt_file_region(iocb->ki_filp);
	loff_t size = (loff_t)r->npages << PAGE_SHIFT;
	ssize_t done = 0;

	if (!iov_iter_count(from))
		return 0;
	if (iocb->ki_pos >= size)
		return -ENOSPC;
	while (iov_iter_count(from) && iocb->ki_pos < size) {
		pgoff_t idx = iocb->ki_pos >> PAGE_SHIFT;
		size_t off = offset_in_page(iocb->ki_pos);
		size_t n = min_t(size_t, PAGE_SIZE - off, iov_iter_count(from));
		struct folio *folio;
		size_t got;

		/* Fault the source in first: no fault may happen under the folio lock. */
		if (fault_in_iov_iter_readable(from, n) == n) {
			if (!done)
				return -EFAULT;
			break;
		}
		folio = dt_get_folio(r, idx);
		if (!IS_ERR(folio))
			folio = dt_folio_writable(r, folio);
		if (IS_ERR(folio))
			return done ? done : PTR_ERR(folio);
		if (!folio)
			continue;
		got = copy_page_from_iter_atomic(folio_page(folio, 0), off, n, from);
		flush_dcache_folio(folio);
		if (got)
			dt_mark_dirty(r, idx);
		folio_unlock(folio);
		folio_put(folio);
		done += got;
		iocb->ki_pos += got;
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	return done;
}

/* Zero [start, end) within one page, as a tracked write. */
static int dt_zero_partial(struct dt_region *r, loff_t start, loff_t end)
{
	pgoff_t idx = start >> PAGE_SHIFT;
	struct folio *folio;

	do {
		folio = dt_filemap_lock_folio(r->mapping, idx);
		if (IS_ERR(folio))
			return 0;	/* a hole already reads as zero */
		folio = dt_folio_writable(r, folio);
		if (IS_ERR(folio))
			return PTR_ERR(folio);
	} while (!folio);
	if (folio->mapping == r->mapping) {	/* else punched: reads as zero */
		folio_zero_segment(folio, offset_in_page(start),
				   offset_in_page(end - 1) + 1);
		dt_mark_dirty(r, idx);
	}
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}

static long dt_fallocate(struct file *file, int mode, loff_t offset, loff_t len)
{
	struct dt_region *r = dt_file_region(file);
	loff_t size = (loff_t)r->npages << PAGE_SHIFT;
	loff_t end, pstart, pend;
	struct folio_batch fbatch;
	pgoff_t index;
	unsigned int i;
	int ret;

	if (mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (offset >= size)
		return 0;
	end = min(size, offset + len);
	pstart = round_up(offset, PAGE_SIZE);
	pend = round_down(end, PAGE_SIZE);

	if (pstart > pend)			/* within one page */
		return dt_zero_partial(r, offset, end);
	ret = offset < pstart ? dt_zero_partial(r, offset, pstart) : 0;
	if (!ret && pend < end)
		ret = dt_zero_partial(r, pend, end);
	if (ret || pstart == pend)
		return ret;

	/*
	 * Report every page that held data; holes stay holes. Under r->lock,
	 * no harvest runs between the report and the truncation: one would
	 * take the old bytes as the page's last.
	 */
	if (mutex_lock_killable(&r->lock))
		return -EINTR;
	folio_batch_init(&fbatch);
	index = pstart >> PAGE_SHIFT;
	while (filemap_get_folios(r->mapping, &index, (pend >> PAGE_SHIFT) - 1, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++)
			dt_mark_dirty(r, fbatch.folios[i]->index);
		folio_batch_release(&fbatch);
		cond_resched();
	}
	truncate_pagecache_range(file_inode(file), pstart, pend - 1);
	mutex_unlock(&r->lock);
	return 0;
}

/* ---- lifetime ---- */

static void dt_region_final(struct dt_region *r)
{
	dt_stream_free(r);
	mem_cgroup_put(r->memcg);
	kvfree(r->dirty);
	kvfree(r->summary);
	kfree(r->batch);
	kfree(r);
	dt_own_inode_done();
	module_put(THIS_MODULE);
}

/*
 * On dt_wq, which module exit destroys: this returns to the workqueue before
 * the module text can go, though module_put() above may let rmmod proceed.
 */
static void dt_region_free_work(struct work_struct *work)
{
	dt_region_final(container_of(work, struct dt_region, free_work));
}

void dt_region_put(struct dt_region *r)
{
	might_sleep();
	if (refcount_dec_and_test(&r->refs))
		dt_region_final(r);
}

/* From any context, e.g. a network completion in softirq. */
void dt_region_put_async(struct dt_region *r)
{
	if (refcount_dec_and_test(&r->refs))
		queue_work(dt_wq, &r->free_work);
}

/* The last file of the region is gone: no fd, no mapping. */
static void dt_region_close(struct kref *kref)
{
	struct dt_region *r = container_of(kref, struct dt_region, kref);

	/*
	 * Free the pages now, while the file still pins the module: nothing of
	 * the module may run when the inode is evicted. Pages that sends still
	 * hold stay alive through the network stack's own references.
	 */
	truncate_inode_pages(r->mapping, 0);
	spin_lock(&r->inode->i_lock);
	r->inode->i_private = NULL;
	spin_unlock(&r->inode->i_lock);
	dt_region_put(r);
}

/*
 * Reopen through /proc/PID/fd/N: the same region. The path pins the inode,
 * not the region: a last close may be running. It drops the region only
 * after clearing i_private under i_lock, so a region seen here under i_lock
 * is still allocated, and a kref already at zero means "closing".
 */
static int dt_region_open(struct inode *inode, struct file *file)
{
	struct dt_region *r;

	spin_lock(&inode->i_lock);
	r = inode->i_private;
	if (r && !kref_get_unless_zero(&r->kref))
		r = NULL;
	spin_unlock(&inode->i_lock);
	if (!r)
		return -ENOENT;
	file->private_data = r;
	return 0;
}

static int dt_region_release(struct inode *inode, struct file *file)
{
	struct dt_region *r = dt_file_region(file);

	dt_stream_file_closed(r, file);
	dt_throttle_file_closed(r, file);
	kref_put(&r->kref, dt_region_close);
	return 0;
}

static int dt_setattr(struct mnt_idmap *idmap, struct dentry *dentry,
		      struct iattr *attr)
{
	/* The size is fixed at creation. */
	if ((attr->ia_valid & ATTR_SIZE) &&
	    attr->ia_size != i_size_read(d_inode(dentry)))
		return -EPERM;
	return simple_setattr(idmap, dentry, attr);
}

static const struct inode_operations dt_region_iops = {
	.setattr	= dt_setattr,
	.getattr	= simple_getattr,
};

static const struct address_space_operations dt_aops = {
	.dirty_folio	= noop_dirty_folio,
	.migrate_folio	= filemap_migrate_folio,
};

static const struct file_operations dt_region_fops = {
	.owner		= THIS_MODULE,
	.open		= dt_region_open,
	.release	= dt_region_release,
	.mmap		= dt_mmap,
	.llseek		= generic_file_llseek,
	.read_iter	= dt_read_iter,
	.write_iter	= dt_write_iter,
	.fallocate	= dt_fallocate,
	.unlocked_ioctl	= dt_region_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

int dt_region_create(const struct dirtytrack_create *args)
{
	u64 max = (u64)dt_max_region_mb << 20;
	unsigned long nwords;
	struct dt_region *r;
	struct inode *inode;
	struct file *file;
	int fd, ret;

	if (!args->size || !PAGE_ALIGNED(args->size))
		return -EINVAL;
	if (args->size > max)
		return -EFBIG;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	r->npages = args->size >> PAGE_SHIFT;
	nwords = BITS_TO_LONGS(r->npages);
	r->dirty = kvcalloc(nwords, sizeof(long), GFP_KERNEL_ACCOUNT);
	r->summary = kvcalloc(BITS_TO_LONGS(nwords), sizeof(long), GFP_KERNEL_ACCOUNT);
	r->batch = kzalloc(sizeof(*r->batch), GFP_KERNEL_ACCOUNT);
	if (!r->dirty || !r->summary || !r->batch) {
		ret = -ENOMEM;
		goto err_free;
	}
	kref_init(&r->kref);
	refcount_set(&r->refs, 1);
	INIT_WORK(&r->free_work, dt_region_free_work);
	mutex_init(&r->lock);
	mutex_init(&r->tx_lock);
	spin_lock_init(&r->tx_plock);
	dt_throttle_init(r);
	mutex_init(&r->rx_lock);
	r->memcg = get_mem_cgroup_from_mm(current->mm);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_memcg;
	}
	file = dt_file_own_inode("[dirtytrack]", &dt_region_fops, r, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_fd;
	}
	file->f_mode |= FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE;
	/* Until the region is freed, which in-flight sends may delay. */
	__module_get(THIS_MODULE);

	inode = file_inode(file);
	r->inode = inode;
	r->mapping = inode->i_mapping;
	inode->i_private = r;
	inode->i_mode = S_IFREG | 0600;
	inode->i_op = &dt_region_iops;
	inode->i_fop = &dt_region_fops;
	inode->i_mapping->a_ops = &dt_aops;
	i_size_write(inode, args->size);
	mapping_set_gfp_mask(inode->i_mapping, GFP_HIGHUSER_MOVABLE);
	mapping_set_unevictable(inode->i_mapping);

	trace_dirtytrack_create(inode->i_ino, args->size);
	fd_install(fd, file);
	return fd;

err_fd:
	put_unused_fd(fd);
err_memcg:
	mem_cgroup_put(r->memcg);
err_free:
	kvfree(r->dirty);
	kvfree(r->summary);
	kfree(r->batch);
	kfree(r);
	return ret;
}
