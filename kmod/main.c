// SPDX-License-Identifier: GPL-2.0
/*
 * dirtytrack: /dev/dirtytrack, the API handshake and region creation.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "dirtytrack.h"

unsigned int dt_max_region_mb = 64 * 1024;
module_param_named(max_region_mb, dt_max_region_mb, uint, 0644);
MODULE_PARM_DESC(max_region_mb, "Largest region CREATE_REGION accepts, in MiB (default 65536)");

/* Frees regions whose last reference a network completion dropped. */
struct workqueue_struct *dt_wq;

static long dt_ioc_api(struct dirtytrack_api __user *uarg)
{
	struct dirtytrack_api api;
	long ret = 0;

	if (copy_from_user(&api, uarg, sizeof(api)))
		return -EFAULT;
	if (api.api != DIRTYTRACK_API_VERSION || api.reserved ||
	    (api.features & ~DT_FEATURES))
		ret = -EINVAL;
	api.api = DIRTYTRACK_API_VERSION;
	api.reserved = 0;
	api.features = DT_FEATURES;
	if (copy_to_user(uarg, &api, sizeof(api)))
		return -EFAULT;
	return ret;
}

static long dt_ioc_create(struct dirtytrack_create __user *uarg)
{
	struct dirtytrack_create args;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.reserved || args.reserved2[0] || args.reserved2[1])
		return -EINVAL;
	return dt_region_create(&args);
}

static long dt_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case DIRTYTRACK_IOC_API:
		return dt_ioc_api(uarg);
	case DIRTYTRACK_IOC_CREATE_REGION:
		return dt_ioc_create(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dt_dev_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= dt_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice dt_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "dirtytrack",
	.fops	= &dt_dev_fops,
	.mode	= 0600,
};

static int __init dt_init(void)
{
	int ret;

	/* The uapi is fixed-size and identical for 32- and 64-bit callers. */
	BUILD_BUG_ON(sizeof(struct dirtytrack_api) != 16);
	BUILD_BUG_ON(sizeof(struct dirtytrack_create) != 32);
	BUILD_BUG_ON(sizeof(struct dirtytrack_track) != 16);
	BUILD_BUG_ON(sizeof(struct dirtytrack_harvest) != 80);
	BUILD_BUG_ON(sizeof(struct dirtytrack_clear) != 64);
	BUILD_BUG_ON(sizeof(struct dirtytrack_stats) != 96);
	BUILD_BUG_ON(sizeof(struct dirtytrack_stream) != 104);
	BUILD_BUG_ON(sizeof(struct dirtytrack_receive) != 80);
	BUILD_BUG_ON(sizeof(struct dirtytrack_wire_hdr) != 64);
	BUILD_BUG_ON(sizeof(struct dirtytrack_wire_rec) != 32);

	dt_wq = alloc_workqueue("dirtytrack", 0, 0);
	if (!dt_wq)
		return -ENOMEM;
	ret = misc_register(&dt_miscdev);
	if (ret) {
		pr_err("cannot register /dev/dirtytrack: %d\n", ret);
		destroy_workqueue(dt_wq);
	}
	return ret;
}

static void __exit dt_exit(void)
{
	misc_deregister(&dt_miscdev);
	/*
	 * Every region is gone (each pins the module), but the send completion
	 * that queued the last free may still be returning (it runs under
	 * rcu_read_lock()), and the free work item may still be returning.
	 */
	synchronize_rcu();
	destroy_workqueue(dt_wq);
}

module_init(dt_init);
module_exit(dt_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Write-protect dirty tracking of memory regions for live migration");
MODULE_AUTHOR("The dirtytrack authors");
