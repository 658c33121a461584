// SPDX-License-Identifier: GPL-2.0
/*
 * dt_splat: a test-only module that provokes a kernel splat at load time, to
 * prove that the checks of tests/vm/run.sh fire. Not part of dirtytrack.
 *
 *   insmod dt_splat.ko mode=warn      WARN_ON(1) (panics with panic_on_warn=1)
 *   insmod dt_splat.ko mode=redzone   writes one byte past a kmalloc(32) object
 *                                     and frees it: slub_debug=Z reports
 *                                     "Right Redzone overwritten" at kfree
 *                                     (and WARNs, in 6.12), or KFENCE does if
 *                                     it sampled the allocation
 *   insmod dt_splat.ko mode=hang      sleeps uninterruptibly for hang_secs
 *                                     (default 600) in module init: insmod
 *                                     is a hung task once the guest's
 *                                     hung_task_timeout_secs have passed
 *   insmod dt_splat.ko mode=lockdep   takes two mutexes in both orders, one
 *                                     after the other: lockdep (debug kernel
 *                                     only) reports a possible circular
 *                                     locking dependency; no deadlock
 *
 * Loading returns 0 in all cases (and with no or an unknown mode, after a
 * message), so that the harness, not insmod, has to notice the damage.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

static char *mode = "";
module_param(mode, charp, 0444);
MODULE_PARM_DESC(mode, "splat to provoke at load: warn, redzone, hang or lockdep");

static unsigned int hang_secs = 600;
module_param(hang_secs, uint, 0444);
MODULE_PARM_DESC(hang_secs, "mode=hang: seconds to sleep in D state");

static void splat_redzone(void)
{
	size_t size = 32;
	u8 *p = kmalloc(size, GFP_KERNEL);

	if (!p)
		return;
	/*
	 * Hide the size and the pointer, so that the compiler can neither object
	 * to the overflow nor drop it; WRITE_ONCE makes it a volatile store.
	 */
	OPTIMIZER_HIDE_VAR(size);
	OPTIMIZER_HIDE_VAR(p);
	WRITE_ONCE(p[size], 0x5a);
	kfree(p);
}

static DEFINE_MUTEX(splat_a);
static DEFINE_MUTEX(splat_b);

static void splat_lockdep(void)
{
	mutex_lock(&splat_a);
	mutex_lock(&splat_b);
	mutex_unlock(&splat_b);
	mutex_unlock(&splat_a);

	mutex_lock(&splat_b);
	mutex_lock(&splat_a);
	mutex_unlock(&splat_a);
	mutex_unlock(&splat_b);
}

static int __init splat_init(void)
{
	pr_info("mode=%s\n", mode);
	if (!strcmp(mode, "warn"))
		WARN_ON(1);
	else if (!strcmp(mode, "redzone"))
		splat_redzone();
	else if (!strcmp(mode, "hang"))
		schedule_timeout_uninterruptible((long)hang_secs * HZ);
	else if (!strcmp(mode, "lockdep"))
		splat_lockdep();
	else
		pr_info("unknown mode, no splat\n");
	return 0;
}

static void __exit splat_exit(void)
{
}

module_init(splat_init);
module_exit(splat_exit);

MODULE_DESCRIPTION("Test-only module that provokes kernel splats");
MODULE_LICENSE("GPL");
