/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dirtytrack: write-protect dirty tracking of memory regions.
 *
 * /dev/dirtytrack answers DIRTYTRACK_IOC_API and DIRTYTRACK_IOC_CREATE_REGION.
 * A region fd (returned by CREATE_REGION) answers the region ioctls.
 * Any other command on either fd fails with ENOTTY.
 *
 * See Documentation/dirtytrack.rst for every field, errno and guarantee.
 */
#ifndef _UAPI_LINUX_DIRTYTRACK_H
#define _UAPI_LINUX_DIRTYTRACK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define DIRTYTRACK_API_VERSION		1

/* Features, negotiated with DIRTYTRACK_IOC_API. */
#define DIRTYTRACK_FEAT_REGIONS		(1ULL << 0)	/* regions, tracking, harvest */
#define DIRTYTRACK_FEAT_HARVEST_LIST	(1ULL << 1)	/* DIRTYTRACK_HARVEST_LIST */
#define DIRTYTRACK_FEAT_MANUAL_PROTECT	(1ULL << 2)	/* DIRTYTRACK_TRACK_MANUAL_PROTECT */
#define DIRTYTRACK_FEAT_PUNCH_HOLE	(1ULL << 3)	/* fallocate(PUNCH_HOLE) on regions */
#define DIRTYTRACK_FEAT_RW		(1ULL << 4)	/* read(2)/pwrite(2) on region fds */
#define DIRTYTRACK_FEAT_STREAM		(1ULL << 5)	/* STREAM and RECEIVE, wire v1 */
#define DIRTYTRACK_FEAT_THROTTLE	(1ULL << 6)	/* DIRTYTRACK_IOC_THROTTLE */
#define DIRTYTRACK_FEAT_STREAM_SENT	(1ULL << 7)	/* STREAM SRC_HARVEST reports @pages */

/**
 * struct dirtytrack_api - API handshake (DIRTYTRACK_IOC_API)
 * @api: in: DIRTYTRACK_API_VERSION; out: the module's version.
 * @reserved: must be zero.
 * @features: in: the features the caller wants (DIRTYTRACK_FEAT_*);
 *	out: every feature the module supports.
 *
 * Fails with EINVAL on another @api, a nonzero @reserved or a wanted
 * feature the module lacks; @features is then still set to what it supports.
 */
struct dirtytrack_api {
	__u32 api;
	__u32 reserved;
	__u64 features;
};

/**
 * struct dirtytrack_create - DIRTYTRACK_IOC_CREATE_REGION
 * @size: region size in bytes: a nonzero multiple of the page size, at most
 *	the module parameter max_region_mb.
 * @flags: must be zero.
 * @reserved: must be zero.
 *
 * Returns a new close-on-exec region fd.
 */
struct dirtytrack_create {
	__u64 size;
	__u32 flags;
	__u32 reserved;
	__u64 reserved2[2];
};

/* struct dirtytrack_track.flags */
#define DIRTYTRACK_TRACK_MANUAL_PROTECT	(1U << 0)	/* HARVEST reports only; CLEAR re-arms */

/**
 * struct dirtytrack_track - DIRTYTRACK_IOC_TRACK_START / _TRACK_STOP
 * @flags: TRACK_START: DIRTYTRACK_TRACK_*; TRACK_STOP: must be zero.
 * @reserved: must be zero.
 */
struct dirtytrack_track {
	__u32 flags;
	__u32 reserved;
	__u64 reserved2;
};

/* struct dirtytrack_harvest.flags */
#define DIRTYTRACK_HARVEST_LIST		(1U << 0)	/* @buf is a __u64 index list */

/* In a harvest list: the page is a hole and reads as zero. */
#define DIRTYTRACK_PAGE_ZERO		(1ULL << 63)
#define DIRTYTRACK_PAGE_INDEX_MASK	(DIRTYTRACK_PAGE_ZERO - 1)

/**
 * struct dirtytrack_harvest - DIRTYTRACK_IOC_HARVEST
 * @first_page: in: first page index of the range.
 * @npages: in: pages in the range (nonzero; the range must lie in the region).
 * @buf: in: user pointer. Bitmap mode: bit i (bit i%64 of __u64 word i/64)
 *	stands for page @first_page + i. List mode: an array of __u64 page
 *	indices, each ORed with DIRTYTRACK_PAGE_ZERO for a hole.
 * @buf_size: in: bytes at @buf. Bitmap mode needs 8 * DIV_ROUND_UP(npages, 64).
 *	List mode takes any multiple of 8 and stops when it is full.
 * @zero_buf: in: bitmap mode only, optional (0 = none): a second bitmap of
 *	@buf_size bytes; a set bit marks a reported page that is a hole.
 * @flags: in: DIRTYTRACK_HARVEST_*.
 * @reserved: must be zero.
 * @next_page: out: resume cursor, the first page not examined;
 *	@first_page + @npages once the whole range is done.
 * @dirty: out: pages reported by this call.
 */
struct dirtytrack_harvest {
	__u64 first_page;
	__u64 npages;
	__u64 buf;
	__u64 buf_size;
	__u64 zero_buf;
	__u32 flags;
	__u32 reserved;
	__u64 next_page;
	__u64 dirty;
	__u64 reserved2[2];
};

/**
 * struct dirtytrack_clear - DIRTYTRACK_IOC_CLEAR (manual-protect mode)
 * @first_page: in: first page index of the range.
 * @npages: in: pages in the range.
 * @bitmap: in: pages to clear, in the harvest bitmap layout; 0 = all pages
 *	of the range.
 * @bitmap_size: in: bytes at @bitmap (8 * DIV_ROUND_UP(npages, 64)), or 0.
 * @flags: must be zero.
 * @reserved: must be zero.
 * @cleared: out: dirty pages cleared and write-protected again.
 */
struct dirtytrack_clear {
	__u64 first_page;
	__u64 npages;
	__u64 bitmap;
	__u64 bitmap_size;
	__u32 flags;
	__u32 reserved;
	__u64 cleared;
	__u64 reserved2[2];
};

/* struct dirtytrack_stats.state */
#define DIRTYTRACK_STATE_TRACKING	(1U << 0)
#define DIRTYTRACK_STATE_MANUAL_PROTECT	(1U << 1)

/**
 * struct dirtytrack_stats - DIRTYTRACK_IOC_STATS (out only)
 * @size: region size in bytes.
 * @pages_populated: pages that currently hold memory.
 * @write_faults: tracked write faults (first write to a clean page).
 * @harvests: HARVEST calls that completed.
 * @pages_reported: pages reported dirty by HARVEST.
 * @harvest_ns: time spent in HARVEST and CLEAR, in nanoseconds.
 * @pages_protected: pages write-protected again by HARVEST and CLEAR.
 * @state: DIRTYTRACK_STATE_*.
 * @throttle_pps: the write-fault budget in force (THROTTLE), 0 if none.
 * @throttled: write faults that slept for the budget.
 * @throttle_ns: time they slept, in nanoseconds.
 * @pages_unshared: writes to a page in flight (held by a STREAM the peer has
 *	not acknowledged yet) that took a copy of it instead of waiting.
 */
struct dirtytrack_stats {
	__u64 size;
	__u64 pages_populated;
	__u64 write_faults;
	__u64 harvests;
	__u64 pages_reported;
	__u64 harvest_ns;
	__u64 pages_protected;
	__u32 state;
	__u32 reserved;
	__u64 throttle_pps;
	__u64 throttled;
	__u64 throttle_ns;
	__u64 pages_unshared;
};

/**
 * struct dirtytrack_throttle - DIRTYTRACK_IOC_THROTTLE
 * @pages_per_sec: write faults per second the region's writers may make
 *	while it is tracked; 0 removes the budget.
 * @flags: must be zero.
 * @reserved: must be zero.
 *
 * A write fault beyond the budget sleeps (killably, holding no page lock)
 * before it dirties its page. The budget belongs to the region file that
 * set it: it ends when that file is closed, or with 0.
 */
struct dirtytrack_throttle {
	__u64 pages_per_sec;
	__u32 flags;
	__u32 reserved;
	__u64 reserved2[2];
};

/*
 * Wire format v1 (Documentation/dirtytrack.rst, "Wire format"). Every field
 * is little-endian. A stream is one stream header, then records; each record
 * is a record header and, for a data page, page_size bytes of payload.
 * Checksums are CRC32C (Castagnoli; initial value and final XOR ~0, as
 * ~crc32c(~0, ...) in the kernel): the stream header's covers its first 60
 * bytes; a record's covers its first 28 bytes and then its payload.
 */
#define DIRTYTRACK_WIRE_MAGIC		0x4b525444	/* "DTRK" */
#define DIRTYTRACK_WIRE_VERSION		1

struct dirtytrack_wire_hdr {
	__le32 magic;		/* DIRTYTRACK_WIRE_MAGIC */
	__le16 version;		/* DIRTYTRACK_WIRE_VERSION */
	__le16 hdr_size;	/* sizeof(struct dirtytrack_wire_hdr): 64 */
	__le32 page_size;	/* bytes per page: 4096 */
	__le32 flags;		/* 0 */
	__le64 region_size;	/* bytes; the receiving region must have this size */
	__le64 reserved[4];	/* 0 */
	__le32 reserved2;	/* 0 */
	__le32 crc;		/* CRC32C of bytes 0..59 */
};

/* struct dirtytrack_wire_rec.kind */
#define DIRTYTRACK_REC_PAGE		1	/* page_size bytes of payload follow */
#define DIRTYTRACK_REC_ZERO		2	/* the page reads as zero; no payload */
#define DIRTYTRACK_REC_ROUND_END	3	/* end of a round; no payload */

struct dirtytrack_wire_rec {
	__le16 kind;		/* DIRTYTRACK_REC_* */
	__le16 reserved;	/* 0 */
	__le32 length;		/* payload bytes: page_size for PAGE, else 0 */
	__le64 index;		/* page index; ROUND_END: the round number */
	/* ROUND_END: PAGE and ZERO records since the last marker (or the
	 * stream header); else 0
	 */
	__le64 count;
	__le32 reserved2;	/* 0 */
	__le32 crc;		/* CRC32C of bytes 0..27, then of the payload */
};

/* struct dirtytrack_stream.flags: the source of pages (one of) */
#define DIRTYTRACK_STREAM_SRC_RANGE	0U	/* every page of the range */
#define DIRTYTRACK_STREAM_SRC_HARVEST	1U	/* dirty pages: harvest, re-protect, send */
#define DIRTYTRACK_STREAM_SRC_BITMAP	2U	/* @pages: a bitmap over the range */
#define DIRTYTRACK_STREAM_SRC_LIST	3U	/* @pages: __u64 page indices */
#define DIRTYTRACK_STREAM_SRC_MASK	3U
/* and modifiers */
#define DIRTYTRACK_STREAM_HEADER	(1U << 2)	/* send the stream header first */
#define DIRTYTRACK_STREAM_END_ROUND	(1U << 3)	/* when done, send ROUND_END @round */

/**
 * struct dirtytrack_stream - DIRTYTRACK_IOC_STREAM
 * @sockfd: in: a connected TCP socket.
 * @flags: in: DIRTYTRACK_STREAM_*.
 * @first_page: in: first page of the range.
 * @npages: in: pages in the range.
 * @pages: in: SRC_BITMAP: user pointer to a bitmap over the range (harvest
 *	layout); SRC_LIST: user pointer to __u64 page indices; SRC_HARVEST:
 *	0, or a user pointer to a bitmap over the range in which the call sets
 *	the bit of every page it harvests (DIRTYTRACK_FEAT_STREAM_SENT), so
 *	the caller knows what to send again if the connection fails before
 *	the peer has it all; else 0.
 * @pages_size: in: bytes at @pages (bitmap: 8 * DIV_ROUND_UP(npages, 64);
 *	list: a multiple of 8), else 0.
 * @budget: in: most bytes to queue in this call; 0 = no limit.
 * @round: in: the round number the END_ROUND marker carries.
 * @next: in: where to start (0 the first time): a page index for RANGE,
 *	HARVEST and BITMAP (at least @first_page), an entry index for LIST;
 *	out: the resume cursor.
 * @records: out: PAGE and ZERO records queued by this call.
 * @bytes: out: bytes queued by this call.
 * @done: out: 1 once the whole source (and the marker, if asked) is queued.
 * @reserved: must be zero.
 */
struct dirtytrack_stream {
	__s32 sockfd;
	__u32 flags;
	__u64 first_page;
	__u64 npages;
	__u64 pages;
	__u64 pages_size;
	__u64 budget;
	__u64 round;
	__u64 next;
	__u64 records;
	__u64 bytes;
	__u32 done;
	__u32 reserved;
	__u64 reserved2[2];
};

/* struct dirtytrack_receive.flags */
#define DIRTYTRACK_RECV_RESET		(1U << 0)	/* a new stream: expect a header */
#define DIRTYTRACK_RECV_ROUND		(1U << 1)	/* return after each ROUND_END */

/**
 * struct dirtytrack_receive - DIRTYTRACK_IOC_RECEIVE
 * @sockfd: in: a connected TCP socket.
 * @flags: in: DIRTYTRACK_RECV_*.
 * @budget: in: most bytes to read in this call; 0 = no limit.
 * @records: out: PAGE and ZERO records applied by this call.
 * @bytes: out: bytes read by this call.
 * @rounds: out: ROUND_END markers accepted by this call.
 * @last_round: out: the round number of the last marker accepted (ever).
 * @last_count: out: that marker's record count.
 * @eof: out: 1 if the peer closed the stream at a record boundary.
 * @reserved: must be zero.
 */
struct dirtytrack_receive {
	__s32 sockfd;
	__u32 flags;
	__u64 budget;
	__u64 records;
	__u64 bytes;
	__u64 rounds;
	__u64 last_round;
	__u64 last_count;
	__u32 eof;
	__u32 reserved;
	__u64 reserved2[2];
};

#define DIRTYTRACK_IOC_MAGIC		0xDB

/* On /dev/dirtytrack */
#define DIRTYTRACK_IOC_API		_IOWR(DIRTYTRACK_IOC_MAGIC, 0x00, struct dirtytrack_api)
#define DIRTYTRACK_IOC_CREATE_REGION	_IOW(DIRTYTRACK_IOC_MAGIC, 0x01, struct dirtytrack_create)

/* On a region fd */
#define DIRTYTRACK_IOC_TRACK_START	_IOW(DIRTYTRACK_IOC_MAGIC, 0x10, struct dirtytrack_track)
#define DIRTYTRACK_IOC_TRACK_STOP	_IOW(DIRTYTRACK_IOC_MAGIC, 0x11, struct dirtytrack_track)
#define DIRTYTRACK_IOC_HARVEST		_IOWR(DIRTYTRACK_IOC_MAGIC, 0x12, struct dirtytrack_harvest)
#define DIRTYTRACK_IOC_CLEAR		_IOWR(DIRTYTRACK_IOC_MAGIC, 0x13, struct dirtytrack_clear)
#define DIRTYTRACK_IOC_STATS		_IOR(DIRTYTRACK_IOC_MAGIC, 0x14, struct dirtytrack_stats)
#define DIRTYTRACK_IOC_THROTTLE		_IOW(DIRTYTRACK_IOC_MAGIC, 0x15, struct dirtytrack_throttle)
#define DIRTYTRACK_IOC_STREAM		_IOWR(DIRTYTRACK_IOC_MAGIC, 0x20, struct dirtytrack_stream)
#define DIRTYTRACK_IOC_RECEIVE		_IOWR(DIRTYTRACK_IOC_MAGIC, 0x21, struct dirtytrack_receive)

#endif /* _UAPI_LINUX_DIRTYTRACK_H */
