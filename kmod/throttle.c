// SPDX-License-Identifier: GPL-2.0
/*
 * dirtytrack: the write-fault budget (DIRTYTRACK_IOC_THROTTLE).
 *
 * A migration that cannot keep up with a workload's writes slows the
 * writers, not the whole workload: each write fault on a tracked region
 * takes the next slot of a schedule of one fault per interval (a generic
 * cell rate algorithm with no burst), and sleeps until its slot comes if
 * that is in the future. The sleep happens in ->page_mkwrite before the
 * folio is locked, killable, so a writer holds nothing another task waits
 * for but the mmap (or VMA) read lock its fault already holds. Readers and
 * faults on pages already dirty never pay.
 *
 * The budget belongs to the region file that set it: a mover that dies
 * leaves no workload throttled. Every change wakes the sleepers, which then
 * go on with the slot they took.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "dirtytrack.h"
#include "trace.h"

void dt_throttle_init(struct dt_region *r)
{
	spin_lock_init(&r->thr.lock);
	init_waitqueue_head(&r->thr.wq);
}

/*
 * Set the budget (0: none) for @owner, or with @if_owner only while that
 * file still holds it; wakes every sleeper.
 */
static void dt_throttle_set(struct dt_region *r, u64 pps, const struct file *owner,
			    const struct file *if_owner)
{
	struct dt_throttle *t = &r->thr;

	spin_lock(&t->lock);
	if (if_owner && t->owner != if_owner) {
		spin_unlock(&t->lock);
		return;
	}
	t->pps = pps;
	/* Above a billion a second, a nanosecond each: no budget worth the name. */
	WRITE_ONCE(t->interval_ns, pps ? max_t(u64, NSEC_PER_SEC / pps, 1) : 0);
	t->tat = ktime_get_ns();
	t->owner = pps ? owner : NULL;
	t->gen++;
	spin_unlock(&t->lock);
	wake_up_all(&t->wq);
	trace_dirtytrack_throttle(dt_ino(r), pps);
}

long dt_ioc_throttle(struct file *file, struct dirtytrack_throttle __user *uarg)
{
	struct dt_region *r = file->private_data;
	struct dirtytrack_throttle t;

	if (copy_from_user(&t, uarg, sizeof(t)))
		return -EFAULT;
	if (t.flags || t.reserved || t.reserved2[0] || t.reserved2[1])
		return -EINVAL;
	dt_throttle_set(r, t.pages_per_sec, file, NULL);
	return 0;
}

/*
 * Called by ->page_mkwrite before it takes the folio lock: sleep until this
 * fault's slot. Returns 0, or -ERESTARTSYS for a task being killed.
 */
int dt_throttle_wait(struct dt_region *r)
{
	struct dt_throttle *t = &r->thr;
	DEFINE_WAIT(wait);
	unsigned int gen;
	u64 now, slot;
	ktime_t until;
	int ret = 0;

	if (likely(!READ_ONCE(t->interval_ns)) || !READ_ONCE(r->tracking))
		return 0;
	spin_lock(&t->lock);
	now = ktime_get_ns();
	slot = max(t->tat, now);
	if (t->interval_ns)
		t->tat = slot + t->interval_ns;
	else
		slot = now;	/* removed meanwhile */
	gen = t->gen;
	spin_unlock(&t->lock);
	if (slot <= now)
		return 0;
	atomic64_inc(&t->throttled);
	/* An hrtimer, not jiffies: slots can be microseconds apart. */
	until = ns_to_ktime(slot);
	for (;;) {
		prepare_to_wait(&t->wq, &wait, TASK_KILLABLE);
		if (READ_ONCE(t->gen) != gen || ktime_get_ns() >= slot)
			break;
		if (fatal_signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		schedule_hrtimeout_range(&until, 20 * NSEC_PER_USEC, HRTIMER_MODE_ABS);
	}
	finish_wait(&t->wq, &wait);
	atomic64_add(ktime_get_ns() - now, &t->slept_ns);
	return ret;
}

/* A region file's release: the budget it set ends with it. */
void dt_throttle_file_closed(struct dt_region *r, const struct file *file)
{
	dt_throttle_set(r, 0, NULL, file);
}
