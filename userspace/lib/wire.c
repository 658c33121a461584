// SPDX-License-Identifier: GPL-2.0
/*
 * The dirtytrack wire format v1 in userspace: encoders, validators, an
 * incremental reader and socket helpers. See dt_wire.h for the API and
 * Documentation/dirtytrack.rst, "Wire format", for the format itself.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "dt_wire.h"
#include "libdirtytrack.h"

_Static_assert(sizeof(struct dirtytrack_wire_hdr) == 64, "stream header is 64 bytes");
_Static_assert(sizeof(struct dirtytrack_wire_rec) == 32, "record header is 32 bytes");
_Static_assert(offsetof(struct dirtytrack_wire_hdr, crc) == 60, "header crc at 60");
_Static_assert(offsetof(struct dirtytrack_wire_rec, crc) == 28, "record crc at 28");

/* The bytes each CRC covers before any payload. */
#define HDR_CRC_LEN	offsetof(struct dirtytrack_wire_hdr, crc)
#define REC_CRC_LEN	offsetof(struct dirtytrack_wire_rec, crc)

/*
 * ISA-L's crc32_iscsi() is the bare CRC register update: it inverts neither
 * its initial value nor its result, so crc32_iscsi("123456789", 9, ~0) is
 * 0x1CF96D7C, the complement of the check value 0xE3069283 (it matches the
 * kernel's crc32c(), not ~crc32c(~0, ...)). Inverting on the way in and out
 * gives the standard value and lets a result be continued, as zlib's crc32().
 * Its length is an int: feed it at most 1 GiB at a time.
 */
uint32_t dt_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	unsigned int reg = ~crc;

	while (len) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		/* ISA-L takes a non-const pointer but only reads. */
		reg = crc32_iscsi((unsigned char *)p, n, reg);
		p += n;
		len -= (size_t)n;
	}
	return ~reg;
}

static uint32_t hdr_crc(const struct dirtytrack_wire_hdr *h)
{
	return dt_crc32c(0, h, HDR_CRC_LEN);
}

static uint32_t rec_crc(const struct dirtytrack_wire_rec *r, const void *payload, size_t len)
{
	return dt_crc32c(dt_crc32c(0, r, REC_CRC_LEN), payload, len);
}

void dt_wire_hdr_init(struct dirtytrack_wire_hdr *h, uint64_t region_size)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(DIRTYTRACK_WIRE_MAGIC);
	h->version = htole16(DIRTYTRACK_WIRE_VERSION);
	h->hdr_size = htole16(DT_WIRE_HDR_SIZE);
	h->page_size = htole32(DT_WIRE_PAGE_SIZE);
	h->region_size = htole64(region_size);
	h->crc = htole32(hdr_crc(h));
}

static void rec_init(struct dirtytrack_wire_rec *r, uint16_t kind, uint32_t length,
		     uint64_t index, uint64_t count)
{
	memset(r, 0, sizeof(*r));
	r->kind = htole16(kind);
	r->length = htole32(length);
	r->index = htole64(index);
	r->count = htole64(count);
}

void dt_wire_rec_page(struct dirtytrack_wire_rec *r, uint64_t index, const void *page)
{
	rec_init(r, DIRTYTRACK_REC_PAGE, DT_WIRE_PAGE_SIZE, index, 0);
	r->crc = htole32(rec_crc(r, page, DT_WIRE_PAGE_SIZE));
}

void dt_wire_rec_zero(struct dirtytrack_wire_rec *r, uint64_t index)
{
	rec_init(r, DIRTYTRACK_REC_ZERO, 0, index, 0);
	r->crc = htole32(rec_crc(r, NULL, 0));
}

void dt_wire_rec_round(struct dirtytrack_wire_rec *r, uint64_t round, uint64_t count)
{
	rec_init(r, DIRTYTRACK_REC_ROUND_END, 0, round, count);
	r->crc = htole32(rec_crc(r, NULL, 0));
}

/* The order of the checks, and so the errno of a bad stream, is the kernel's. */
int dt_wire_hdr_check(const struct dirtytrack_wire_hdr *h, uint64_t region_size)
{
	if (le32toh(h->crc) != hdr_crc(h))
		return -EBADMSG;
	if (le32toh(h->magic) != DIRTYTRACK_WIRE_MAGIC)
		return -EPROTO;
	if (le16toh(h->version) != DIRTYTRACK_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	/* Zero is zero in either byte order. */
	if (le16toh(h->hdr_size) != DT_WIRE_HDR_SIZE || h->flags || h->reserved[0] ||
	    h->reserved[1] || h->reserved[2] || h->reserved[3] || h->reserved2)
		return -EPROTO;
	if (le32toh(h->page_size) != DT_WIRE_PAGE_SIZE || le64toh(h->region_size) != region_size)
		return -EMSGSIZE;
	return 0;
}

int dt_wire_rec_check(const struct dirtytrack_wire_rec *r, uint64_t npages)
{
	uint16_t kind = le16toh(r->kind);
	uint32_t len = le32toh(r->length);

	if (r->reserved || r->reserved2)
		return -EPROTO;
	switch (kind) {
	case DIRTYTRACK_REC_PAGE:
	case DIRTYTRACK_REC_ZERO:
		if (len != (kind == DIRTYTRACK_REC_PAGE ? DT_WIRE_PAGE_SIZE : 0))
			return -EMSGSIZE;
		if (r->count)
			return -EPROTO;
		if (le64toh(r->index) >= npages)
			return -ERANGE;
		return 0;
	case DIRTYTRACK_REC_ROUND_END:
		/* round and count: stream state, see rd_check() */
		return len ? -EMSGSIZE : 0;
	default:
		return -EPROTO;
	}
}

int dt_wire_rec_verify(const struct dirtytrack_wire_rec *r, const void *payload)
{
	uint32_t len = le32toh(r->length);

	if (len && !payload)
		return -EINVAL;
	return le32toh(r->crc) == rec_crc(r, payload, len) ? 0 : -EBADMSG;
}

/* ---- the reader ---- */

int dt_wire_apply_mem(void *ctx, uint64_t index, const void *page)
{
	unsigned char *dst = (unsigned char *)ctx + index * DT_WIRE_PAGE_SIZE;

	if (page)
		memcpy(dst, page, DT_WIRE_PAGE_SIZE);
	else
		memset(dst, 0, DT_WIRE_PAGE_SIZE);
	return 0;
}

enum {
	RD_HDR,		/* buffering the stream header into u.raw */
	RD_REC,		/* buffering a record header into u.rec */
	RD_PAYLOAD,	/* buffering a PAGE payload into page */
	RD_FAILED,	/* err says why; sticky */
};

int dt_wire_reader_init(struct dt_wire_reader *rd, uint64_t region_size,
			dt_wire_apply_fn apply, void *ctx)
{
	memset(rd, 0, offsetof(struct dt_wire_reader, u));
	if (!region_size || region_size % DT_WIRE_PAGE_SIZE) {
		rd->state = RD_FAILED;
		rd->err = -EINVAL;
		return -EINVAL;
	}
	rd->region_size = region_size;
	rd->npages = region_size / DT_WIRE_PAGE_SIZE;
	rd->apply = apply;
	rd->ctx = ctx;
	rd->state = RD_HDR;
	return 0;
}

void dt_wire_reader_on_round(struct dt_wire_reader *rd, dt_wire_round_fn fn)
{
	rd->round_cb = fn;
}

static int rd_fail(struct dt_wire_reader *rd, int err)
{
	rd->state = RD_FAILED;
	rd->err = err;
	return err;
}

/* A whole record header is in u.rec: its fields, then the stream's sequence. */
static int rd_check(const struct dt_wire_reader *rd)
{
	const struct dirtytrack_wire_rec *r = &rd->u.rec;
	int ret = dt_wire_rec_check(r, rd->npages);

	if (ret || le16toh(r->kind) != DIRTYTRACK_REC_ROUND_END)
		return ret;
	if (le64toh(r->index) != rd->rounds)
		return -EILSEQ;		/* not the next round */
	if (le64toh(r->count) != rd->since_marker)
		return -EILSEQ;		/* the marker lies about its round */
	return 0;
}

/*
 * The record in u.rec passed rd_check() and payload holds its payload (NULL
 * for none): verify its CRC, then hand it to the callback. Counters move only
 * once the callback has succeeded.
 */
static int rd_apply(struct dt_wire_reader *rd, const void *payload)
{
	const struct dirtytrack_wire_rec *r = &rd->u.rec;
	uint64_t index = le64toh(r->index), count = le64toh(r->count);
	uint16_t kind = le16toh(r->kind);
	int ret = dt_wire_rec_verify(r, payload);

	if (ret)
		return ret;
	if (kind == DIRTYTRACK_REC_ROUND_END) {
		ret = rd->round_cb ? rd->round_cb(rd->ctx, index, count) : 0;
		if (ret < 0)
			return ret;
		rd->rounds++;
		rd->last_round = index;
		rd->last_count = count;
		rd->since_marker = 0;
		return 0;
	}
	ret = rd->apply ? rd->apply(rd->ctx, index, payload) : 0;
	if (ret < 0)
		return ret;
	rd->records++;
	rd->since_marker++;
	if (kind == DIRTYTRACK_REC_ZERO)
		rd->zero_records++;
	return 0;
}

/* The unit in the buffer is complete: act on it and pick the next state. */
static int rd_complete(struct dt_wire_reader *rd)
{
	int ret;

	switch (rd->state) {
	case RD_HDR:
		ret = dt_wire_hdr_check(&rd->u.hdr, rd->region_size);
		rd->state = RD_REC;
		return ret;
	case RD_REC:
		ret = rd_check(rd);
		if (ret)
			return ret;
		if (le16toh(rd->u.rec.kind) == DIRTYTRACK_REC_PAGE) {
			rd->state = RD_PAYLOAD;
			return 0;
		}
		return rd_apply(rd, NULL);
	default:	/* RD_PAYLOAD */
		rd->state = RD_REC;
		return rd_apply(rd, rd->page);
	}
}

ssize_t dt_wire_reader_feed(struct dt_wire_reader *rd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t left = len;
	int ret;

	if (rd->state == RD_FAILED)
		return rd->err;
	if (len > SSIZE_MAX)
		return -EINVAL;
	while (left) {
		unsigned char *dst = rd->state == RD_PAYLOAD ? rd->page : rd->u.raw;
		size_t want = rd->state == RD_HDR ? DT_WIRE_HDR_SIZE :
			      rd->state == RD_REC ? DT_WIRE_REC_SIZE : DT_WIRE_PAGE_SIZE;
		size_t n;

		if (rd->state == RD_PAYLOAD && !rd->have && left >= DT_WIRE_PAGE_SIZE) {
			/* The whole payload is at p: verify and apply it in place. */
			rd->state = RD_REC;
			rd->bytes += DT_WIRE_PAGE_SIZE;
			ret = rd_apply(rd, p);
			if (ret)
				return rd_fail(rd, ret);
			p += DT_WIRE_PAGE_SIZE;
			left -= DT_WIRE_PAGE_SIZE;
			continue;
		}
		n = want - rd->have < left ? want - rd->have : left;
		memcpy(dst + rd->have, p, n);
		rd->have += n;
		rd->bytes += n;
		p += n;
		left -= n;
		if (rd->have < want)
			break;
		rd->have = 0;
		ret = rd_complete(rd);
		if (ret)
			return rd_fail(rd, ret);
	}
	return (ssize_t)len;
}

int dt_wire_reader_finish(struct dt_wire_reader *rd)
{
	if (rd->state == RD_FAILED)
		return rd->err;
	/* Like the kernel's RECEIVE: an empty stream is a clean end. */
	if (rd->state == RD_PAYLOAD || rd->have)
		return rd_fail(rd, -ENODATA);
	return 0;
}

/* ---- senders and receiver ---- */

/*
 * Write all of iov[0..cnt) (which it consumes): sendmsg(MSG_NOSIGNAL) on a
 * socket, writev() on anything else; short writes and EINTR resume.
 */
static int send_iov(int fd, struct iovec *iov, int cnt)
{
	bool sock = true;

	for (;;) {
		ssize_t n;

		while (cnt && !iov->iov_len) {
			iov++;
			cnt--;
		}
		if (!cnt)
			return 0;
		if (sock) {
			struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };

			n = sendmsg(fd, &msg, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			n = writev(fd, iov, cnt);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return -EIO;	/* no progress and no error: give up */
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
}

int dt_wire_send(int fd, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return send_iov(fd, &iov, 1);
}

int dt_wire_send_hdr(int fd, uint64_t region_size)
{
	struct dirtytrack_wire_hdr h;

	dt_wire_hdr_init(&h, region_size);
	return dt_wire_send(fd, &h, sizeof(h));
}

int dt_wire_send_round(int fd, uint64_t round, uint64_t count)
{
	struct dirtytrack_wire_rec r;

	dt_wire_rec_round(&r, round, count);
	return dt_wire_send(fd, &r, sizeof(r));
}

static bool page_is_zero(const char *page)
{
	return !page[0] && !memcmp(page, page + 1, DT_WIRE_PAGE_SIZE - 1);
}

/* Pages per sendmsg: two iovecs each, within IOV_MAX (1024). */
#define SEND_BATCH	512

int dt_wire_send_pages(int fd, const char *map, uint64_t first, uint64_t npages,
		       const uint64_t *bitmap, uint64_t *records)
{
	struct dirtytrack_wire_rec recs[SEND_BATCH];
	struct iovec iov[2 * SEND_BATCH];
	uint64_t sent = 0, i;
	int n = 0, cnt = 0, ret = 0;

	for (i = bitmap ? dt_bitmap_next(bitmap, npages, 0) : 0; i < npages;
	     i = bitmap ? dt_bitmap_next(bitmap, npages, i + 1) : i + 1) {
		const char *page = map + (first + i) * DT_WIRE_PAGE_SIZE;
		struct dirtytrack_wire_rec *r = &recs[n++];

		iov[cnt++] = (struct iovec){ .iov_base = r, .iov_len = sizeof(*r) };
		if (page_is_zero(page)) {
			dt_wire_rec_zero(r, first + i);
		} else {
			dt_wire_rec_page(r, first + i, page);
			iov[cnt++] = (struct iovec){
				.iov_base = (void *)page, .iov_len = DT_WIRE_PAGE_SIZE,
			};
		}
		if (n == SEND_BATCH) {
			ret = send_iov(fd, iov, cnt);
			if (ret)
				goto out;
			sent += (uint64_t)n;
			n = cnt = 0;
		}
	}
	if (n) {
		ret = send_iov(fd, iov, cnt);
		if (!ret)
			sent += (uint64_t)n;
	}
out:
	if (records)
		*records = sent;
	return ret;
}

int dt_wire_recv_into(int fd, struct dt_wire_reader *rd)
{
	unsigned char buf[64 * 1024];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return dt_wire_reader_finish(rd);
		n = dt_wire_reader_feed(rd, buf, (size_t)n);
		if (n < 0)
			return (int)n;
	}
}
