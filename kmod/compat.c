// SPDX-License-Identifier: GPL-2.0
/*
 * What kmod/compat.h cannot do inline: a file with an inode of its own on a
 * kernel without anon_inode_create_getfile().
 */

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>

#include "compat.h"

#ifdef DT_HAVE_ANON_INODE_CREATE_GETFILE

struct file *dt_file_own_inode(const char *name, const struct file_operations *fops,
			       void *priv, int flags)
{
	return anon_inode_create_getfile(name, fops, priv, flags, NULL);
}

void dt_own_inode_done(void)
{
}

#else

#include <linux/pseudo_fs.h>

/* "dtrk" */
#define DT_FS_MAGIC	0x6474726b

/*
 * A pseudo file system, as DRM's drm_fs_inode_new(): mounted internally
 * (never in the mount tree) while a region exists, one inode per region.
 * Each region pins the mount (simple_pin_fs()); the mount's superblock
 * pins the module (the type's owner) until the last path into it, a
 * region's file or a reopen of it, is gone.
 */
static struct vfsmount *dt_mnt;
static int dt_mnt_count;

/* /proc/PID/maps and fd links read as with anon_inode_create_getfile(). */
static char *dt_dname(struct dentry *dentry, char *buf, int len)
{
	static const char name[] = "anon_inode:[dirtytrack]";

	if (len < sizeof(name))
		return ERR_PTR(-ENAMETOOLONG);
	return memcpy(buf + len - sizeof(name), name, sizeof(name));
}

static const struct dentry_operations dt_dops = {
	.d_dname	= dt_dname,
};

static int dt_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, DT_FS_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->dops = &dt_dops;
	return 0;
}

static struct file_system_type dt_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "dirtytrack",
	.init_fs_context	= dt_init_fs_context,
	.kill_sb		= kill_anon_super,
};

struct file *dt_file_own_inode(const char *name, const struct file_operations *fops,
			       void *priv, int flags)
{
	struct inode *inode;
	struct file *file;
	int ret;

	ret = simple_pin_fs(&dt_fs_type, &dt_mnt, &dt_mnt_count);
	if (ret)
		return ERR_PTR(ret);
	inode = alloc_anon_inode(dt_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		file = ERR_CAST(inode);
		goto err;
	}
	/*
	 * The file's reference on @fops' module, which its last fput() drops
	 * (alloc_file_pseudo() takes none). Our caller runs in the module.
	 */
	__module_get(fops->owner);
	file = alloc_file_pseudo(inode, dt_mnt, name, flags, fops);
	if (IS_ERR(file)) {
		module_put(fops->owner);
		iput(inode);
		goto err;
	}
	file->private_data = priv;
	return file;
err:
	simple_release_fs(&dt_mnt, &dt_mnt_count);
	return file;
}

/*
 * A region made by dt_file_own_inode() is freed. The last unpin may free
 * the superblock here; the region's own module reference is dropped after.
 */
void dt_own_inode_done(void)
{
	simple_release_fs(&dt_mnt, &dt_mnt_count);
}

#endif
