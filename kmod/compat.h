/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One API over the kernels dirtytrack builds for (Debian's 6.1 and 6.12).
 * What the kernel provides is probed at build time by kmod/configure, which
 * writes dt_config.h; nothing here looks at version numbers.
 */
#ifndef _DIRTYTRACK_COMPAT_H
#define _DIRTYTRACK_COMPAT_H

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/skbuff.h>
#include <net/sock.h>

#include "dt_config.h"

/*
 * Page cache lookups return ERR_PTR(-ENOENT) when the index holds nothing
 * (6.3), NULL before; dirtytrack tests IS_ERR(). With FGP_CREAT, NULL was
 * a failed allocation.
 */
static inline struct folio *dt_filemap_get_folio(struct address_space *mapping, pgoff_t idx)
{
	return filemap_get_folio(mapping, idx) ?: ERR_PTR(-ENOENT);
}

static inline struct folio *dt_filemap_lock_folio(struct address_space *mapping, pgoff_t idx)
{
	return filemap_lock_folio(mapping, idx) ?: ERR_PTR(-ENOENT);
}

static inline struct folio *dt_filemap_grab_folio(struct address_space *mapping, pgoff_t idx,
						  gfp_t gfp)
{
	return __filemap_get_folio(mapping, idx, FGP_LOCK | FGP_CREAT, gfp) ?: ERR_PTR(-ENOMEM);
}

/* ->setattr()'s first argument: struct mnt_idmap (6.3), user_namespace before. */
#ifndef DT_HAVE_MNT_IDMAP
#define mnt_idmap user_namespace
#endif

#ifndef DT_HAVE_REPLACE_PAGE_CACHE_FOLIO
static inline void replace_page_cache_folio(struct folio *old, struct folio *new)
{
	replace_page_cache_page(&old->page, &new->page);
}
#endif

#ifndef DT_HAVE_BVEC_SET_FOLIO
static inline void bvec_set_folio(struct bio_vec *bv, struct folio *folio,
				  unsigned int len, unsigned int offset)
{
	bvec_set_page(bv, &folio->page, len, offset);
}
#endif

/* Zerocopy completions: through ubuf_info->ops (6.9), ->callback before. */
#ifndef DT_HAVE_UBUF_INFO_OPS
struct ubuf_info_ops {
	void (*complete)(struct sk_buff *skb, struct ubuf_info *uarg, bool success);
};
#endif

static inline void dt_ubuf_set_ops(struct ubuf_info *uarg, const struct ubuf_info_ops *ops)
{
#ifdef DT_HAVE_UBUF_INFO_OPS
	uarg->ops = ops;
#else
	uarg->callback = ops->complete;
#endif
}

/*
 * msghdr->sg_from_iter(): STREAM's is dt_tx_sg_from_iter(). Before 6.6 the
 * hook also takes the socket and charges it for what it attached, as
 * __zerocopy_sg_from_iter() does for it since (and io_uring's hook did).
 */
int dt_tx_sg_from_iter(struct sk_buff *skb, struct iov_iter *from, size_t length);
#ifdef DT_HAVE_SG_FROM_ITER_NO_SK
#define dt_sg_from_iter dt_tx_sg_from_iter
#else
static inline int dt_sg_from_iter(struct sock *sk, struct sk_buff *skb,
				  struct iov_iter *from, size_t length)
{
	unsigned int truesize = skb->truesize;
	int ret = dt_tx_sg_from_iter(skb, from, length);

	truesize = skb->truesize - truesize;
	if (sk && sk->sk_type == SOCK_STREAM) {
		sk_wmem_queued_add(sk, truesize);
		if (!skb_zcopy_pure(skb))
			sk_mem_charge(sk, truesize);
	} else {
		refcount_add(truesize, &skb->sk->sk_wmem_alloc);
	}
	return ret;
}
#endif

/*
 * A file on an inode of its own, whose page cache holds a region's pages:
 * anon_inode_create_getfile() (6.7), else an inode of dirtytrack's own
 * pseudo file system (compat.c). dt_own_inode_done() once for each file
 * made, when its region is freed.
 */
struct file *dt_file_own_inode(const char *name, const struct file_operations *fops,
			       void *priv, int flags);
void dt_own_inode_done(void);

#endif /* _DIRTYTRACK_COMPAT_H */
