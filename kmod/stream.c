// SPDX-License-Identifier: GPL-2.0
/*
 * dirtytrack streams: region pages to a TCP socket and back, in the wire
 * format of Documentation/dirtytrack.rst, without a copy through userspace.
 *
 * Send: each page is write-protected (as a harvest does), counted in
 * flight, checksummed, and attached to the socket with MSG_ZEROCOPY and our
 * own ubuf_info, whose completion runs when the stack has dropped every
 * reference to the batch's pages. Until then, a writer of one of those pages
 * gets a copy of it in its place (dt_folio_writable()), so the bytes on the
 * wire match their checksum and nobody waits for the network. A page written
 * while it is sent is dirty again and goes out in a later round.
 *
 * Receive: record headers are validated, a payload is read into a fresh page
 * and checked against its CRC; only then does it become the region's page
 * (a hole takes the new page as is) or is copied into it. Queued bytes are
 * taken straight from the socket's skbs (tcp_read_sock()); sock_recvmsg()
 * waits when none are queued, or reads a socket TLS or a sockmap stands in.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crc32c.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/net.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/wait_bit.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "dirtytrack.h"
#include "trace.h"

#define DT_HDR_SIZE	sizeof(struct dirtytrack_wire_hdr)
#define DT_REC_SIZE	sizeof(struct dirtytrack_wire_rec)
#define DT_PAGE_REC	(DT_REC_SIZE + PAGE_SIZE)
/* Records per send: their headers share one page with the stream header. */
#define DT_TX_RECS	64

static u32 dt_crc(u32 crc, const void *p, size_t len)
{
	return crc32c(crc, p, len);
}

/* ---- in-flight pages ---- */

static atomic_t *dt_inflight_array(struct dt_region *r)
{
	/* Pairs with the release below: the array is zeroed before it is seen. */
	atomic_t *a = smp_load_acquire(&r->inflight);

	if (a)
		return a;
	a = kvcalloc(r->npages, sizeof(atomic_t), GFP_KERNEL_ACCOUNT);
	if (!a)
		return NULL;
	/* Under r->tx_lock, only one sender allocates; pairs with the acquires. */
	smp_store_release(&r->inflight, a);
	return a;
}

/* Wait until no send holds page @idx. Returns -EINTR on a fatal signal. */
static int dt_wait_inflight(struct dt_region *r, pgoff_t idx)
{
	/* Pairs with the release in dt_inflight_array(). */
	atomic_t *a = smp_load_acquire(&r->inflight);

	if (!a)
		return 0;
	return wait_var_event_killable(&a[idx], !atomic_read(&a[idx]));
}

/*
 * A send holds @old's page, locked by the caller, on its way with a checksum:
 * give the page cache a copy in its place, so that a writer goes on at once
 * instead of waiting for the network. The send keeps the old page, and its
 * bytes still match their CRC, until its completion frees it.
 *
 * The swap, with @old locked throughout (so no fault, read or write of ours
 * can look at the index in between): zap every pte of it, if it has any,
 * which fires the mmu notifiers (a secondary MMU drops its mappings too:
 * it has none where the process has none); copy the page; put
 * the copy in its place in the page cache (replace_page_cache_folio(), as FUSE's
 * fuse_try_move_folio() does; the copy is charged to @old's memcg). A fault
 * then finds the copy; a lookup that got @old before finds its mapping gone
 * once it holds its lock, and looks again.
 *
 * Returns the copy, locked, with a reference; NULL if there is none: no memory
 * at once (a writer may then wait for the send, as it did before), or a DMA pin
 * on @old, whose holder would go on reading the old page.
 */
static struct folio *dt_folio_unshare(struct dt_region *r, struct folio *old)
{
	struct folio *copy;

	if (folio_maybe_dma_pinned(old))
		return NULL;
	copy = filemap_alloc_folio(mapping_gfp_mask(r->mapping) | __GFP_NORETRY |
				   __GFP_NOWARN, 0);
	if (!copy)
		return NULL;
	/* Locked, @old cannot be mapped anew (fault-around only trylocks). */
	if (folio_mapped(old))
		unmap_mapping_pages(r->mapping, old->index, 1, false);
	copy_highpage(folio_page(copy, 0), folio_page(old, 0));
	flush_dcache_folio(copy);
	/* Not yet visible to anyone: the non-atomic flag setters are fine. */
	__folio_set_locked(copy);
	__folio_mark_uptodate(copy);
	replace_page_cache_folio(old, copy);
	folio_add_lru(copy);
	atomic64_inc(&r->pages_unshared);
	trace_dirtytrack_unshare(dt_ino(r), copy->index);
	return copy;
}

/*
 * The folio a writer of @folio's page may write: @folio itself (locked, the
 * caller's reference) when no send holds it; else a copy that took its place
 * in the page cache (locked, a reference; @folio is unlocked and put). NULL
 * when there is no copy and the send has released the page meanwhile: look
 * it up again. ERR_PTR(-EINTR): killed while waiting.
 */
struct folio *dt_folio_writable(struct dt_region *r, struct folio *folio)
{
	pgoff_t idx = folio->index;
	struct folio *copy;

	if (likely(!dt_folio_in_flight(r, folio)))
		return folio;
	copy = dt_folio_unshare(r, folio);
	folio_unlock(folio);
	folio_put(folio);
	if (copy)
		return copy;
	return dt_wait_inflight(r, idx) ? ERR_PTR(-EINTR) : NULL;
}

/* ---- send ---- */

struct dt_tx_batch {
	struct ubuf_info ubuf;
	struct dt_region *r;
	struct sock *sk;		/* pending on this socket (a reference) */
	const struct file *owner;	/* pending: the region file of the call */
	struct page *hdrs;		/* stream header, then record headers */
	unsigned int hdr_used;		/* bytes of @hdrs used */
	unsigned int nbv, npages, nrecs, nheld;
	bool marker;			/* ends with a ROUND_END marker */
	u64 round;			/* the marker's round */
	size_t len, sent;
	pgoff_t idx[DT_TX_RECS];	/* pages counted in flight */
	pgoff_t rec_idx[DT_TX_RECS];	/* every PAGE and ZERO record's page */
	struct page *held[DT_TX_RECS];	/* our reference on each payload page */
	struct bio_vec bv[2 * DT_TX_RECS + 2];
};

/*
 * The network stack dropped its last reference to the batch's pages. Any
 * context; module exit waits for this read-side section (see dt_exit()).
 */
static void dt_tx_complete(struct sk_buff *skb, struct ubuf_info *uarg, bool success)
{
	struct dt_tx_batch *b = container_of(uarg, struct dt_tx_batch, ubuf);
	struct dt_region *r = b->r;
	unsigned int i;

	if (!refcount_dec_and_test(&uarg->refcnt))
		return;
	rcu_read_lock();
	for (i = 0; i < b->npages; i++) {
		atomic_t *a = &r->inflight[b->idx[i]];

		if (atomic_dec_and_test(a))
			wake_up_var(a);
	}
	for (i = 0; i < b->nheld; i++)
		put_page(b->held[i]);
	__free_page(b->hdrs);
	kfree(b);
	dt_region_put_async(r);
	rcu_read_unlock();
}

static const struct ubuf_info_ops dt_tx_ops = {
	.complete = dt_tx_complete,
};

static struct dt_tx_batch *dt_tx_alloc(struct dt_region *r)
{
	struct dt_tx_batch *b = kzalloc(sizeof(*b), GFP_KERNEL);

	if (!b)
		return NULL;
	b->hdrs = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!b->hdrs) {
		kfree(b);
		return NULL;
	}
	dt_ubuf_set_ops(&b->ubuf, &dt_tx_ops);
	b->ubuf.flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&b->ubuf.refcnt, 1);	/* ours, until wholly queued */
	b->r = r;
	refcount_inc(&r->refs);
	return b;
}

/* Drop our reference: the completion runs once the stack is done too. */
static void dt_tx_release(struct dt_tx_batch *b)
{
	if (b->sk)
		sock_put(b->sk);
	net_zcopy_put(&b->ubuf);	/* may free @b */
}

static void *dt_tx_hdr(struct dt_tx_batch *b, unsigned int size)
{
	void *p = page_address(b->hdrs) + b->hdr_used;

	bvec_set_page(&b->bv[b->nbv++], b->hdrs, size, b->hdr_used);
	b->hdr_used += size;
	b->len += size;
	return p;
}

static void dt_tx_add_stream_hdr(struct dt_tx_batch *b)
{
	struct dirtytrack_wire_hdr *h = dt_tx_hdr(b, DT_HDR_SIZE);

	h->magic = cpu_to_le32(DIRTYTRACK_WIRE_MAGIC);
	h->version = cpu_to_le16(DIRTYTRACK_WIRE_VERSION);
	h->hdr_size = cpu_to_le16(DT_HDR_SIZE);
	h->page_size = cpu_to_le32(PAGE_SIZE);
	h->region_size = cpu_to_le64((u64)b->r->npages << PAGE_SHIFT);
	h->crc = cpu_to_le32(~dt_crc(~0U, h, offsetof(struct dirtytrack_wire_hdr, crc)));
}

static struct dirtytrack_wire_rec *
dt_tx_add_rec(struct dt_tx_batch *b, u16 kind, u64 index, u64 count)
{
	struct dirtytrack_wire_rec *rec = dt_tx_hdr(b, DT_REC_SIZE);

	rec->kind = cpu_to_le16(kind);
	rec->length = cpu_to_le32(kind == DIRTYTRACK_REC_PAGE ? PAGE_SIZE : 0);
	rec->index = cpu_to_le64(index);
	rec->count = cpu_to_le64(count);
	return rec;
}

static void dt_tx_rec_crc(struct dirtytrack_wire_rec *rec, const void *payload)
{
	u32 crc = dt_crc(~0U, rec, offsetof(struct dirtytrack_wire_rec, crc));

	if (payload)
		crc = dt_crc(crc, payload, PAGE_SIZE);
	rec->crc = cpu_to_le32(~crc);
}

static void dt_tx_add_zero(struct dt_tx_batch *b, pgoff_t idx)
{
	dt_tx_rec_crc(dt_tx_add_rec(b, DIRTYTRACK_REC_ZERO, idx, 0), NULL);
	b->rec_idx[b->nrecs++] = idx;
}

/*
 * A locked, write-protected folio: count it in flight and attach it. The
 * batch holds a reference on the page until its completion: a hole punched
 * before the stack takes its own must not free it. A folio pinned for DMA
 * can change under the checksum whatever its ptes say: send a copy of it
 * instead (dt_batch_flush() has marked it dirty again).
 */
static void dt_tx_add_page(struct dt_tx_batch *b, struct folio *folio)
{
	struct dirtytrack_wire_rec *rec;
	struct page *page = folio_page(folio, 0);
	struct page *copy = NULL;
	void *kaddr;

	if (unlikely(folio_maybe_dma_pinned(folio)))
		copy = alloc_page(GFP_KERNEL);
	if (copy) {
		copy_highpage(copy, page);
		page = copy;
	} else {
		get_page(page);
		/* In flight: counted, and marked (see dt_folio_in_flight()). */
		folio_set_checked(folio);
		atomic_inc(&b->r->inflight[folio->index]);
		b->idx[b->npages++] = folio->index;
	}
	b->held[b->nheld++] = page;
	rec = dt_tx_add_rec(b, DIRTYTRACK_REC_PAGE, folio->index, 0);
	kaddr = kmap_local_page(page);
	dt_tx_rec_crc(rec, kaddr);
	kunmap_local(kaddr);
	bvec_set_page(&b->bv[b->nbv++], page, PAGE_SIZE, 0);
	b->len += PAGE_SIZE;
	b->rec_idx[b->nrecs++] = folio->index;
}

/*
 * The stream broke with the batch partly queued: it never fully arrives, so
 * report its pages dirty again (a harvest source had cleared them).
 */
static void dt_tx_abort(struct dt_tx_batch *b)
{
	unsigned int i;

	for (i = 0; i < b->nrecs; i++)
		dt_mark_dirty(b->r, b->rec_idx[i]);
	dt_tx_release(b);
}

/* Errors after which a send can be resumed by calling again. */
static bool dt_tx_resumable(int err)
{
	return err == -EAGAIN || err == -ERESTARTSYS || err == -EINTR;
}

static bool dt_tx_sock_ok(struct socket *sock)
{
	struct sock *sk = sock->sk;

	return sock->type == SOCK_STREAM && sk && sk_is_tcp(sk) &&
	       sk->sk_prot->sendmsg == tcp_sendmsg &&
	       test_bit(SOCK_SUPPORT_ZC, &sock->flags);
}

/* Can more be sent on @sk? (CLOSE_WAIT: the peer half-closed, it may read.) */
static bool dt_tx_sk_open(struct sock *sk)
{
	return READ_ONCE(sk->sk_socket) && !READ_ONCE(sk->sk_err) &&
	       ((1 << READ_ONCE(sk->sk_state)) & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT));
}

/*
 * Attach the batch's pages to @skb (msg->sg_from_iter) as
 * zerocopy_fill_skb_from_iter() does, but charge their length to truesize,
 * as splicing does, not a whole page per segment: each 32-byte record
 * header counted as 4 KiB, a run of ZERO records 128 times its bytes. A
 * receiver on this host (loopback, veth) scales its window by len/truesize:
 * it fell below the sender's MSS, and with small socket buffers the stream
 * crawled on TCP's probe timer, poll(2) seldom reporting POLLOUT. Each
 * segment lies in one page; contiguous ones (ZERO records) share a frag.
 */
int dt_tx_sg_from_iter(struct sk_buff *skb, struct iov_iter *from, size_t length)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	int frag = shinfo->nr_frags;
	size_t copied = 0;
	int ret = 0;

	length = min(length, iov_iter_count(from));
	while (length) {
		const struct bio_vec *bv = from->bvec;
		unsigned int off = bv->bv_offset + from->iov_offset;
		unsigned int len = min_t(size_t, length, bv->bv_len - from->iov_offset);
		skb_frag_t *last = frag ? &shinfo->frags[frag - 1] : NULL;

		if (last && skb_frag_page(last) == bv->bv_page &&
		    skb_frag_off(last) + skb_frag_size(last) == off) {
			skb_frag_size_add(last, len);
		} else {
			if (frag == MAX_SKB_FRAGS) {
				ret = -EMSGSIZE;
				break;
			}
			get_page(bv->bv_page);
			skb_fill_page_desc_noacc(skb, frag++, bv->bv_page, off, len);
		}
		iov_iter_advance(from, len);
		length -= len;
		copied += len;
	}
	skb->data_len += copied;
	skb->len += copied;
	skb->truesize += copied;
	return ret;
}

/*
 * Queue the rest of @b on @sock. 0 when it is all queued, else a negative
 * errno. Either way the batch is dealt with: released, left pending on
 * @sock (a resumable error), or aborted.
 */
static int dt_tx_send(struct dt_region *r, struct dt_tx_batch *b, struct socket *sock,
		      const struct file *file, u64 *bytes)
{
	struct msghdr msg = {
		.msg_flags = MSG_ZEROCOPY | MSG_NOSIGNAL,
		.msg_ubuf = &b->ubuf,
		.sg_from_iter = dt_sg_from_iter,
	};
	int ret = 0;

	if (sock->file->f_flags & O_NONBLOCK)
		msg.msg_flags |= MSG_DONTWAIT;
	while (b->sent < b->len) {
		iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, b->bv, b->nbv, b->len);
		iov_iter_advance(&msg.msg_iter, b->sent);
		ret = sock_sendmsg(sock, &msg);
		if (ret <= 0) {
			ret = ret ? ret : -EPIPE;
			break;
		}
		b->sent += ret;
		*bytes += ret;
		ret = 0;
	}
	if (!ret) {
		trace_dirtytrack_stream_batch(dt_ino(r), b->nrecs, b->len, b->marker, b->round);
		dt_tx_release(b);
	} else if (dt_tx_resumable(ret)) {
		/* Committed to the stream: the next call on @sock finishes it. */
		if (!b->sk) {
			b->sk = sock->sk;
			sock_hold(b->sk);
		}
		b->owner = file;
		spin_lock(&r->tx_plock);
		r->tx_pending = b;
		spin_unlock(&r->tx_plock);
	} else {
		dt_tx_abort(b);
	}
	return ret;
}

/*
 * A send cut short before goes on first, on its own socket only. Returns 0
 * to go on, 1 when it ended the round (its marker is out), or an errno. A
 * batch whose connection is gone (reset, or its socket closed) is dropped,
 * its pages dirty again, so that it cannot wedge the region. The call owns
 * the batch while it sends it: it is no longer pending meanwhile.
 */
static int dt_tx_resume(struct dt_region *r, struct socket *sock, const struct file *file,
			struct dirtytrack_stream *s)
{
	struct dt_tx_batch *b;
	bool marker;
	int ret;

	spin_lock(&r->tx_plock);
	b = r->tx_pending;
	if (b && b->sk != sock->sk && dt_tx_sk_open(b->sk)) {
		spin_unlock(&r->tx_plock);
		return -EBUSY;
	}
	r->tx_pending = NULL;
	spin_unlock(&r->tx_plock);
	if (!b)
		return 0;
	if (b->sk != sock->sk) {
		dt_tx_abort(b);
		return 0;
	}
	marker = b->marker;
	ret = dt_tx_send(r, b, sock, file, &s->bytes);
	if (ret)
		return ret;
	if (marker) {
		s->done = 1;	/* the source was done when the marker went in */
		return 1;
	}
	return 0;
}

struct dt_tx_ctx {
	struct dt_region *r;
	const struct file *file;	/* the region file of the call */
	struct dt_tx_batch *b;
	u64 budget, planned;	/* bytes: the call's budget, queued or batched */
	unsigned long *bitmap;	/* SRC_BITMAP: the caller's bitmap */
	unsigned long *sent;	/* SRC_HARVEST with @pages: what it harvested */
	pgoff_t first;		/* @sent: the page of bit 0 */
	pgoff_t sent_lo, sent_hi;	/* the bits set in @sent lie in [lo, hi) */
	u64 list[DT_TX_RECS];	/* SRC_LIST: the entries from the cursor on */
	u64 list_nr;		/* SRC_LIST: entries in the caller's list */
};

/*
 * Would one more page overflow the batch or the budget? @zap_pending pages
 * wait in the zap batch; @unplanned chosen pages are not yet in @planned.
 */
static bool dt_tx_full(struct dt_tx_ctx *tx, unsigned int zap_pending, u64 unplanned)
{
	if (tx->b->nrecs + zap_pending >= DT_TX_RECS - 1)
		return true;
	return tx->budget && tx->planned + (unplanned + 1) * DT_PAGE_REC > tx->budget;
}

/* A harvested page, for the caller's bitmap (dt_tx_report_sent()). */
static void dt_tx_sent(struct dt_tx_ctx *tx, pgoff_t bit)
{
	if (!tx->sent)
		return;
	__set_bit(bit, tx->sent);
	tx->sent_lo = min(tx->sent_lo, bit);
	tx->sent_hi = max(tx->sent_hi, bit + 1);
}

static void dt_tx_protected(struct dt_batch *zb, struct folio *folio)
{
	struct dt_tx_ctx *tx = zb->priv;

	dt_tx_add_page(tx->b, folio);
	dt_tx_sent(tx, folio->index - tx->first);
}

static bool dt_tx_walk_full(struct dt_walk *wk)
{
	struct dt_tx_ctx *tx = wk->priv;

	return dt_tx_full(tx, wk->batch.nr, wk->found);
}

static void dt_tx_walk_hole(struct dt_walk *wk, pgoff_t idx)
{
	struct dt_tx_ctx *tx = wk->priv;

	/* Records in page order: the pages waiting to be zapped go first. */
	dt_batch_flush(&wk->batch);
	dt_tx_add_zero(tx->b, idx);
	dt_tx_sent(tx, idx - tx->first);
}

/* One page of a RANGE, BITMAP or LIST source: protect and attach, or zero. */
static void dt_tx_one(struct dt_tx_ctx *tx, struct dt_batch *zb, pgoff_t idx)
{
	tx->planned += DT_PAGE_REC;
	if (!dt_batch_protect(zb, idx, idx)) {
		/* Records in page order: the pages waiting to be zapped go first. */
		dt_batch_flush(zb);
		dt_tx_add_zero(tx->b, idx);
	}
}

/*
 * Fill the batch from the source, under r->lock. Returns 1 when the source
 * is done, 0 when the batch or budget is full, or an errno.
 */
static int dt_tx_fill(struct dt_tx_ctx *tx, struct dirtytrack_stream *s)
{
	struct dt_region *r = tx->r;
	u32 src = s->flags & DIRTYTRACK_STREAM_SRC_MASK;
	pgoff_t end = s->first_page + s->npages;
	struct dt_batch zb = {
		.r = r, .zap = true, .protected_fn = dt_tx_protected, .priv = tx,
	};
	u64 n = 0, i = 0;
	int ret = 0;

	if (src == DIRTYTRACK_STREAM_SRC_LIST) {
		/* A bounded window of the list: no allocation the caller sizes. */
		n = min_t(u64, tx->list_nr - s->next, DT_TX_RECS);
		if (copy_from_user(tx->list, u64_to_user_ptr(s->pages + s->next * 8),
				   n * sizeof(u64)))
			return -EFAULT;
	}
	if (mutex_lock_killable(&r->lock))
		return -EINTR;
	if (src == DIRTYTRACK_STREAM_SRC_HARVEST) {
		struct dt_walk wk = {
			.r = r, .protect = true, .priv = tx, .batch = zb,
			.full = dt_tx_walk_full, .hole_fn = dt_tx_walk_hole,
		};
		pgoff_t pos = s->next;

		if (!r->tracking || r->manual) {
			ret = -EINVAL;	/* harvesting needs auto-protect tracking */
			goto out;
		}
		dt_walk_range(&wk, &pos, end);
		dt_batch_flush(&wk.batch);
		tx->planned += (u64)wk.found * DT_PAGE_REC;
		s->next = pos;
		ret = pos == end;
	} else if (src == DIRTYTRACK_STREAM_SRC_LIST) {
		while (i < n && !dt_tx_full(tx, zb.nr, 0)) {
			if (tx->list[i] >= r->npages) {
				ret = -ERANGE;
				break;
			}
			dt_tx_one(tx, &zb, tx->list[i++]);
		}
		dt_batch_flush(&zb);
		s->next += i;
		if (!ret)
			ret = s->next == tx->list_nr;
	} else {
		while (s->next < end && !dt_tx_full(tx, zb.nr, 0)) {
			pgoff_t idx = s->next;

			if (tx->bitmap) {
				idx = find_next_bit(tx->bitmap, s->npages,
						    s->next - s->first_page);
				idx += s->first_page;
				if (idx >= end) {
					s->next = end;
					break;
				}
			}
			dt_tx_one(tx, &zb, idx);
			s->next = idx + 1;
		}
		dt_batch_flush(&zb);
		ret = s->next == end;
	}
out:
	mutex_unlock(&r->lock);
	return ret;
}

static int dt_stream_check(struct dt_region *r, struct dirtytrack_stream *s,
			   struct dt_tx_ctx *tx)
{
	u32 src = s->flags & DIRTYTRACK_STREAM_SRC_MASK;
	size_t bytes;

	if ((s->flags & ~(DIRTYTRACK_STREAM_SRC_MASK | DIRTYTRACK_STREAM_HEADER |
			  DIRTYTRACK_STREAM_END_ROUND)) ||
	    s->reserved || s->reserved2[0] || s->reserved2[1])
		return -EINVAL;
	if (s->budget && s->budget < DT_PAGE_REC +
	    ((s->flags & DIRTYTRACK_STREAM_HEADER) ? DT_HDR_SIZE : 0))
		return -EINVAL;		/* not even one record fits */
	if (src == DIRTYTRACK_STREAM_SRC_LIST) {
		if (s->first_page || s->npages || !s->pages || !s->pages_size ||
		    s->pages_size % 8 || s->next > s->pages_size / 8)
			return -EINVAL;
		tx->list_nr = s->pages_size / 8;
		return 0;
	}
	if (dt_check_range(r, s->first_page, s->npages))
		return -EINVAL;
	if (s->next < s->first_page || s->next > s->first_page + s->npages)
		return -EINVAL;
	bytes = BITS_TO_LONGS(s->npages) * sizeof(long);
	if (src == DIRTYTRACK_STREAM_SRC_HARVEST && (s->pages || s->pages_size)) {
		if (!s->pages)
			return -EINVAL;
		if (s->pages_size < bytes)
			return -ENOSPC;
		/* Filled under r->lock, copied out with no lock held. */
		tx->sent = kvzalloc(bytes, GFP_KERNEL_ACCOUNT);
		if (!tx->sent)
			return -ENOMEM;
		tx->first = s->first_page;
		tx->sent_lo = s->npages;
		return 0;
	}
	if (src != DIRTYTRACK_STREAM_SRC_BITMAP)
		return (s->pages || s->pages_size) ? -EINVAL : 0;
	if (!s->pages)
		return -EINVAL;
	if (s->pages_size < bytes)
		return -ENOSPC;
	/* At most a bit per page of the region, which CREATE bounded. */
	tx->bitmap = kvmalloc(bytes, GFP_KERNEL_ACCOUNT);
	if (!tx->bitmap)
		return -ENOMEM;
	if (copy_from_user(tx->bitmap, u64_to_user_ptr(s->pages), bytes))
		return -EFAULT;
	return 0;
}

/* Fill and send batches until the source, the budget or the socket stops us. */
static long dt_tx_run(struct dt_tx_ctx *tx, struct socket *sock, struct dirtytrack_stream *s)
{
	struct dt_region *r = tx->r;
	bool end_round = s->flags & DIRTYTRACK_STREAM_END_ROUND;

	for (;;) {
		struct dt_tx_batch *b;
		bool marker = false;
		int done, err;

		b = dt_tx_alloc(r);
		if (!b)
			return -ENOMEM;
		tx->b = b;
		if (s->flags & DIRTYTRACK_STREAM_HEADER) {
			dt_tx_add_stream_hdr(b);
			tx->planned += DT_HDR_SIZE;
			s->flags &= ~DIRTYTRACK_STREAM_HEADER;
			r->tx_records = 0;
		}
		done = dt_tx_fill(tx, s);
		r->tx_records += b->nrecs;
		s->records += b->nrecs;
		if (done == 1 && end_round &&
		    (!tx->budget || tx->planned + DT_REC_SIZE <= tx->budget)) {
			dt_tx_rec_crc(dt_tx_add_rec(b, DIRTYTRACK_REC_ROUND_END, s->round,
						    r->tx_records), NULL);
			r->tx_records = 0;
			tx->planned += DT_REC_SIZE;
			marker = true;
			b->marker = true;
			b->round = s->round;
		}
		tx->b = NULL;
		if (!b->len) {
			dt_tx_release(b);
		} else {
			err = dt_tx_send(r, b, sock, tx->file, &s->bytes);
			if (err)
				return err;
		}
		if (done < 0)
			return done;
		if (done) {
			s->done = marker || !end_round;
			return 0;
		}
		if (tx->budget && tx->planned + DT_PAGE_REC > tx->budget)
			return 0;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
}

/*
 * SRC_HARVEST with @pages: set the bits of what this call harvested in the
 * caller's bitmap (or them in: the caller clears it). A page the caller
 * cannot be told about must not be lost: every page the call harvested is
 * then marked dirty again, for a later harvest, and the call fails with
 * EFAULT. No lock is held: the bitmap may be anywhere, even in a region.
 */
static int dt_tx_report_sent(struct dt_tx_ctx *tx, const struct dirtytrack_stream *s)
{
	unsigned long buf[32], w, end, n, i, bit;
	unsigned long __user *up;

	if (!tx->sent || tx->sent_lo >= tx->sent_hi)
		return 0;
	end = BITS_TO_LONGS(tx->sent_hi);
	for (w = BIT_WORD(tx->sent_lo); w < end; w += n) {
		n = min_t(unsigned long, end - w, ARRAY_SIZE(buf));
		up = (unsigned long __user *)u64_to_user_ptr(s->pages) + w;
		if (copy_from_user(buf, up, n * sizeof(long)))
			goto fault;
		for (i = 0; i < n; i++)
			buf[i] |= tx->sent[w + i];
		if (copy_to_user(up, buf, n * sizeof(long)))
			goto fault;
	}
	return 0;
fault:
	bit = tx->sent_lo;
	for_each_set_bit_from(bit, tx->sent, tx->sent_hi)
		dt_mark_dirty(tx->r, tx->first + bit);
	return -EFAULT;
}

/* Was the stream on @sk cut inside a record by a file's close (dt_stream_file_closed())? */
static bool dt_tx_torn(struct dt_region *r, struct sock *sk)
{
	bool torn;

	spin_lock(&r->tx_plock);
	torn = r->tx_torn == sk;
	spin_unlock(&r->tx_plock);
	return torn;
}

long dt_ioc_stream(struct file *file, struct dirtytrack_stream __user *uarg)
{
	struct dt_region *r = file->private_data;
	struct dirtytrack_stream s;
	struct dt_tx_ctx tx = { .r = r, .file = file };
	struct socket *sock;
	long ret;
	int err;

	if (copy_from_user(&s, uarg, sizeof(s)))
		return -EFAULT;
	s.records = 0;
	s.bytes = 0;
	s.done = 0;
	ret = dt_stream_check(r, &s, &tx);
	if (ret)
		goto out_free;
	if (copy_to_user(uarg, &s, sizeof(s))) {
		ret = -EFAULT;
		goto out_free;
	}
	sock = sockfd_lookup(s.sockfd, &err);
	if (!sock) {
		ret = err;
		goto out_free;
	}
	if (!dt_tx_sock_ok(sock)) {
		ret = -EOPNOTSUPP;
		goto out_sock;
	}
	if (dt_tx_torn(r, sock->sk)) {
		ret = -EPIPE;
		goto out_sock;
	}
	tx.budget = s.budget;

	/* Held across socket waits: other sends wait, killable; nothing else. */
	if (mutex_lock_killable(&r->tx_lock)) {
		ret = -EINTR;
		goto out_sock;
	}
	if (!dt_inflight_array(r)) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	/*
	 * Whatever this call's source, a batch left pending goes first: a
	 * source gone bad since (tracking stopped) must not wedge it.
	 */
	ret = dt_tx_resume(r, sock, file, &s);
	if (ret) {
		if (ret == 1)
			ret = 0;
		goto out_report;
	}
	if (!dt_tx_sk_open(sock->sk)) {
		err = READ_ONCE(sock->sk->sk_err);
		ret = err ? -err : -ENOTCONN;
		goto out_unlock;
	}
	ret = dt_tx_run(&tx, sock, &s);
out_report:
	/* Progress is reported even when the call stops on an error. */
	if (ret && (s.records || s.bytes) && dt_tx_resumable(ret))
		ret = 0;
out_unlock:
	mutex_unlock(&r->tx_lock);
	err = dt_tx_report_sent(&tx, &s);
	if (err && !ret)
		ret = err;
	if (copy_to_user(uarg, &s, sizeof(s)) && !ret)
		ret = -EFAULT;
out_sock:
	sockfd_put(sock);
out_free:
	kvfree(tx.bitmap);
	kvfree(tx.sent);
	return ret;
}

/*
 * A region file is closed. A send it left pending (cut short by a signal
 * or a full socket buffer) can be finished only by a call through a file
 * that is still open: if it was this one, nothing will finish it, and its
 * pages' writers would wait for good. Drop it, its pages dirty again, and
 * remember its socket: the stream there may end inside a record, and the
 * marker's count includes records that never went, so STREAM refuses that
 * socket (EPIPE) for good. Called for every file, without r->tx_lock: a
 * send on another file may hold that across socket waits.
 */
void dt_stream_file_closed(struct dt_region *r, const struct file *file)
{
	struct dt_tx_batch *b;

	struct sock *old = NULL;

	spin_lock(&r->tx_plock);
	b = r->tx_pending;
	if (b && b->owner == file) {
		r->tx_pending = NULL;
		old = r->tx_torn;
		r->tx_torn = b->sk;
		sock_hold(b->sk);
	} else {
		b = NULL;
	}
	spin_unlock(&r->tx_plock);
	if (old)
		sock_put(old);
	if (b)
		dt_tx_abort(b);
}

/* ---- receive ---- */

struct dt_rx {
	int err;			/* sticky: the stream was rejected */
	bool started;			/* stream header accepted */
	unsigned int have;		/* bytes of @buf, then of the payload */
	bool in_payload;
	u64 records;			/* since the last marker */
	u64 next_round;
	u64 last_round, last_count;
	struct folio *payload;		/* fresh page the payload lands in */
	union {
		struct dirtytrack_wire_hdr hdr;
		struct dirtytrack_wire_rec rec;
		u8 buf[64];
	};
};

static int dt_rx_check_hdr(struct dt_region *r, const struct dirtytrack_wire_hdr *h)
{
	u32 crc = ~dt_crc(~0U, h, offsetof(struct dirtytrack_wire_hdr, crc));

	if (crc != le32_to_cpu(h->crc))
		return -EBADMSG;
	if (le32_to_cpu(h->magic) != DIRTYTRACK_WIRE_MAGIC)
		return -EPROTO;
	if (le16_to_cpu(h->version) != DIRTYTRACK_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (le16_to_cpu(h->hdr_size) != DT_HDR_SIZE || h->flags || h->reserved[0] ||
	    h->reserved[1] || h->reserved[2] || h->reserved[3] || h->reserved2)
		return -EPROTO;
	if (le32_to_cpu(h->page_size) != PAGE_SIZE ||
	    le64_to_cpu(h->region_size) != (u64)r->npages << PAGE_SHIFT)
		return -EMSGSIZE;
	return 0;
}

static int dt_rx_check_rec(struct dt_region *r, struct dt_rx *rx,
			   const struct dirtytrack_wire_rec *rec)
{
	u16 kind = le16_to_cpu(rec->kind);
	u32 len = le32_to_cpu(rec->length);
	u64 index = le64_to_cpu(rec->index), count = le64_to_cpu(rec->count);

	if (rec->reserved || rec->reserved2)
		return -EPROTO;
	switch (kind) {
	case DIRTYTRACK_REC_PAGE:
	case DIRTYTRACK_REC_ZERO:
		if (len != (kind == DIRTYTRACK_REC_PAGE ? PAGE_SIZE : 0))
			return -EMSGSIZE;
		if (count)
			return -EPROTO;
		if (index >= r->npages)
			return -ERANGE;
		return 0;
	case DIRTYTRACK_REC_ROUND_END:
		if (len)
			return -EMSGSIZE;
		if (index != rx->next_round || count != rx->records)
			return -EILSEQ;
		return 0;
	default:
		return -EPROTO;
	}
}

static u32 dt_rx_rec_crc(const struct dirtytrack_wire_rec *rec, struct folio *payload)
{
	u32 crc = dt_crc(~0U, rec, offsetof(struct dirtytrack_wire_rec, crc));

	if (payload) {
		void *kaddr = kmap_local_folio(payload, 0);

		crc = dt_crc(crc, kaddr, PAGE_SIZE);
		kunmap_local(kaddr);
	}
	return ~crc;
}

static struct folio *dt_rx_alloc_payload(struct dt_region *r)
{
	struct mem_cgroup *old = set_active_memcg(r->memcg);
	struct folio *folio = filemap_alloc_folio(mapping_gfp_mask(r->mapping), 0);

	set_active_memcg(old);
	return folio;
}

/* Apply a verified PAGE (@payload) or ZERO (@payload NULL) record. */
static int dt_rx_apply(struct dt_region *r, struct dt_rx *rx, pgoff_t idx,
		       struct folio *payload)
{
	struct folio *folio;

	if (payload) {
		struct mem_cgroup *old;
		int err;

		/* A hole takes the received page itself: no copy. */
		__folio_set_locked(payload);
		__folio_mark_uptodate(payload);
		old = set_active_memcg(r->memcg);
		err = filemap_add_folio(r->mapping, payload, idx, mapping_gfp_mask(r->mapping));
		set_active_memcg(old);
		if (!err) {
			dt_mark_dirty(r, idx);
			folio_unlock(payload);
			folio_put(payload);
			rx->payload = NULL;
			return 0;
		}
		__folio_clear_locked(payload);
		if (err != -EEXIST)
			return err;
	}
	do {
		folio = payload ? dt_get_folio(r, idx) : dt_filemap_lock_folio(r->mapping, idx);
		if (IS_ERR(folio) && !payload) {
			/* A hole is zero already; still a received page. */
			dt_mark_dirty(r, idx);
			return 0;
		}
		if (!IS_ERR(folio))
			folio = dt_folio_writable(r, folio);
		if (IS_ERR(folio))
			return PTR_ERR(folio);
	} while (!folio);
	if (payload)
		copy_highpage(folio_page(folio, 0), folio_page(payload, 0));
	else
		clear_highpage(folio_page(folio, 0));
	flush_dcache_folio(folio);
	dt_mark_dirty(r, idx);
	folio_unlock(folio);
	folio_put(folio);
	return 0;
}

struct dt_rx_ctx {
	struct dt_region *r;
	struct dt_rx *rx;
	struct dirtytrack_receive *a;
	int ret;		/* why it stopped: 1 at a round's end, or -errno */
	bool ready;		/* @rx->rec is verified, to be applied */
	bool queued;		/* more bytes may be queued on the socket */
};

/* The verified record: apply it and count it; -errno rejects the stream. */
static int dt_rx_apply_ready(struct dt_rx_ctx *c)
{
	struct dt_rx *rx = c->rx;
	bool page = le16_to_cpu(rx->rec.kind) == DIRTYTRACK_REC_PAGE;
	int ret;

	c->ready = false;
	ret = dt_rx_apply(c->r, rx, le64_to_cpu(rx->rec.index), page ? rx->payload : NULL);
	if (ret) {
		rx->err = ret;
		return ret;
	}
	rx->records++;
	c->a->records++;
	return 0;
}

/* Whether to read on: a budget stops the call between records only. */
static bool dt_rx_want(const struct dt_rx *rx, const struct dirtytrack_receive *a)
{
	return !a->budget || a->bytes < a->budget || rx->have || rx->in_payload;
}

/* Bytes until the header being read, or the payload, is complete. */
static unsigned int dt_rx_room(const struct dt_rx *rx)
{
	if (rx->in_payload)
		return PAGE_SIZE - rx->have;
	return (rx->started ? DT_REC_SIZE : DT_HDR_SIZE) - rx->have;
}

/* A page for the next payload, before any byte of its record is read. */
static int dt_rx_prepare(struct dt_region *r, struct dt_rx *rx)
{
	if (!rx->payload)
		rx->payload = dt_rx_alloc_payload(r);
	return rx->payload ? 0 : -ENOMEM;
}

/*
 * @n more bytes landed where dt_rx_room() said: check a complete header or
 * record; a verified PAGE or ZERO record is then @c->ready, for
 * dt_rx_apply_ready(). Returns 0 to read on, 1 at a round's end where the
 * caller stops (DIRTYTRACK_RECV_ROUND), or -errno: the stream is rejected
 * until the caller resets it, and nothing of the record is applied.
 */
static int dt_rx_advance(struct dt_rx_ctx *c, unsigned int n)
{
	struct dt_rx *rx = c->rx;
	bool whole = n == dt_rx_room(rx);
	int ret;

	c->a->bytes += n;
	rx->have += n;
	if (!whole)
		return 0;
	rx->have = 0;
	if (rx->in_payload) {
		rx->in_payload = false;
		ret = -EBADMSG;
		if (dt_rx_rec_crc(&rx->rec, rx->payload) != le32_to_cpu(rx->rec.crc))
			goto out;
		c->ready = true;
		return 0;
	}
	if (!rx->started) {
		ret = dt_rx_check_hdr(c->r, &rx->hdr);
		rx->started = !ret;
		goto out;
	}
	ret = dt_rx_check_rec(c->r, rx, &rx->rec);
	if (ret)
		goto out;
	if (le16_to_cpu(rx->rec.kind) == DIRTYTRACK_REC_PAGE) {
		rx->in_payload = true;
		return 0;
	}
	ret = -EBADMSG;
	if (dt_rx_rec_crc(&rx->rec, NULL) != le32_to_cpu(rx->rec.crc))
		goto out;
	if (le16_to_cpu(rx->rec.kind) == DIRTYTRACK_REC_ZERO) {
		c->ready = true;
		return 0;
	}
	/* ROUND_END */
	rx->last_round = rx->next_round++;
	rx->last_count = rx->records;
	trace_dirtytrack_receive_round(dt_ino(c->r), rx->last_round, rx->last_count);
	rx->records = 0;
	c->a->rounds++;
	return c->a->flags & DIRTYTRACK_RECV_ROUND ? 1 : 0;
out:
	rx->err = ret;		/* 0 (it was), or the stream is rejected */
	return ret;
}

/*
 * One sock_recvmsg() of the next header or payload bytes: it waits for data
 * as recv() does (O_NONBLOCK, SO_RCVTIMEO, signals). Returns 0 to read on,
 * 1 to stop (end of stream between records, or a round's end), or -errno.
 */
static int dt_rx_recvmsg(struct socket *sock, struct dt_rx_ctx *c, bool nonblock)
{
	struct dt_rx *rx = c->rx;
	struct msghdr msg = {};
	struct bio_vec bv;
	struct kvec kv;
	int n;

	if (rx->in_payload) {
		bvec_set_folio(&bv, rx->payload, dt_rx_room(rx), rx->have);
		iov_iter_bvec(&msg.msg_iter, ITER_DEST, &bv, 1, bv.bv_len);
	} else {
		kv.iov_base = rx->buf + rx->have;
		kv.iov_len = dt_rx_room(rx);
		iov_iter_kvec(&msg.msg_iter, ITER_DEST, &kv, 1, kv.iov_len);
	}
	n = sock_recvmsg(sock, &msg, nonblock ? MSG_DONTWAIT : 0);
	/* It takes what is queued, up to the room: less, and none is left. */
	c->queued = n > 0 && !iov_iter_count(&msg.msg_iter);
	if (n > 0)
		return dt_rx_advance(c, n);
	if (n < 0)
		return n;
	if (!rx->have && !rx->in_payload) {
		c->a->eof = 1;
		return 1;
	}
	rx->err = -ENODATA;		/* truncated inside a record */
	return rx->err;
}

/* tcp_read_sock()'s actor: feed the queued bytes of @skb to the stream. */
static int dt_rx_actor(read_descriptor_t *desc, struct sk_buff *skb,
		       unsigned int off, size_t len)
{
	struct dt_rx_ctx *c = desc->arg.data;
	struct dt_rx *rx = c->rx;
	size_t done = 0;

	while (done < len && !c->ret && !c->ready && dt_rx_want(rx, c->a)) {
		unsigned int n = min_t(size_t, len - done, dt_rx_room(rx));
		void *dst;
		int err;

		if (rx->in_payload)
			dst = kmap_local_folio(rx->payload, rx->have);
		else
			dst = rx->buf + rx->have;
		err = skb_copy_bits(skb, off + done, dst, n);
		if (rx->in_payload)
			kunmap_local(dst);
		if (WARN_ON_ONCE(err)) {	/* within skb->len: cannot fail */
			c->ret = err;
			break;
		}
		done += n;
		c->ret = dt_rx_advance(c, n);
	}
	return done;
}

/*
 * Plain TCP, not TLS or a sockmap, which stand between the queue and
 * recvmsg(): its queued bytes may be read in place with tcp_read_sock().
 */
static bool dt_rx_plain_tcp(struct socket *sock)
{
	return sock->ops->read_sock == tcp_read_sock &&
	       READ_ONCE(sock->sk->sk_prot)->recvmsg == tcp_prot.recvmsg;
}

/*
 * Take what the socket has queued, up to the next verified record, without
 * waiting: tcp_read_sock() hands the queued skbs to dt_rx_actor() under the
 * socket lock, as nvme-tcp reads. One call takes a page's header and payload
 * where sock_recvmsg() takes two. The caller applies the record once the
 * lock is dropped: applying may wait for a page in flight, and a send on
 * this socket may be what it waits for.
 * Returns the bytes taken (0: none queued), or -errno from the socket.
 */
static int dt_rx_read_queued(struct socket *sock, struct dt_rx_ctx *c)
{
	read_descriptor_t desc = { .arg.data = c, .count = 1 };
	int n;

	lock_sock(sock->sk);
	n = tcp_read_sock(sock->sk, &desc, dt_rx_actor);
	release_sock(sock->sk);
	return n;
}

long dt_ioc_receive(struct dt_region *r, struct dirtytrack_receive __user *uarg)
{
	struct dirtytrack_receive a;
	struct dt_rx_ctx c;
	struct socket *sock;
	struct dt_rx *rx;
	bool nonblock, fast;
	long ret = 0;
	int err;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if ((a.flags & ~(DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND)) ||
	    a.reserved || a.reserved2[0] || a.reserved2[1])
		return -EINVAL;
	a.records = 0;
	a.bytes = 0;
	a.rounds = 0;
	a.eof = 0;
	if (copy_to_user(uarg, &a, sizeof(a)))
		return -EFAULT;
	sock = sockfd_lookup(a.sockfd, &err);
	if (!sock)
		return err;
	if (sock->type != SOCK_STREAM || !sock->sk || !sk_is_tcp(sock->sk)) {
		ret = -EOPNOTSUPP;
		goto out_sock;
	}
	nonblock = sock->file->f_flags & O_NONBLOCK;
	fast = dt_rx_plain_tcp(sock);

	/* Held across socket waits: other receives wait, killable; nothing else. */
	if (mutex_lock_killable(&r->rx_lock)) {
		ret = -EINTR;
		goto out_sock;
	}
	rx = r->rx;
	if (!rx) {
		rx = kzalloc(sizeof(*rx), GFP_KERNEL_ACCOUNT);
		if (!rx) {
			ret = -ENOMEM;
			goto out_unlock;
		}
		r->rx = rx;
	}
	if (a.flags & DIRTYTRACK_RECV_RESET) {
		struct folio *keep = rx->payload;

		memset(rx, 0, sizeof(*rx));
		rx->payload = keep;
	}
	if (rx->err) {
		ret = rx->err;
		goto out_report;
	}

	c = (struct dt_rx_ctx){ .r = r, .rx = rx, .a = &a, .queued = true };
	while (!ret && dt_rx_want(rx, &a)) {
		ret = dt_rx_prepare(r, rx);
		if (ret)
			break;
		/* What is queued, in place; sock_recvmsg() when it must wait. */
		if (fast && c.queued && dt_rx_read_queued(sock, &c) > 0) {
			ret = c.ret;
			/* It stopped at a record, or where the queue ran out. */
			c.queued = c.ready;
		} else {
			ret = dt_rx_recvmsg(sock, &c, nonblock);
		}
		if (c.ready)
			ret = dt_rx_apply_ready(&c);
		/* A sender that never pauses must not hide a signal. */
		if (!ret && signal_pending(current))
			break;
	}
	if (ret == 1)
		ret = 0;
	if (ret && (a.records || a.bytes) &&
	    (ret == -EAGAIN || ret == -ERESTARTSYS || ret == -EINTR))
		ret = 0;	/* progress first; the wait is reported next call */
out_report:
	a.last_round = rx->last_round;
	a.last_count = rx->last_count;
out_unlock:
	mutex_unlock(&r->rx_lock);
	if (copy_to_user(uarg, &a, sizeof(a)) && !ret)
		ret = -EFAULT;
out_sock:
	sockfd_put(sock);
	return ret;
}

/* The region is being freed. */
void dt_stream_free(struct dt_region *r)
{
	if (r->rx) {
		if (r->rx->payload)
			folio_put(r->rx->payload);
		kfree(r->rx);
	}
	if (r->tx_torn)
		sock_put(r->tx_torn);
	kvfree(r->inflight);
}
