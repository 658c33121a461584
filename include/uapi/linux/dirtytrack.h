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
	__u64 reserved2[4];
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

#endif /* _UAPI_LINUX_DIRTYTRACK_H */
