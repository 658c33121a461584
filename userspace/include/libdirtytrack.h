/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libdirtytrack: a thin C library over the dirtytrack uapi.
 *
 * Every function returns 0 (or a non-negative value such as an fd) on
 * success and a negative errno on failure; errno is left as the syscall set it.
 */
#ifndef LIBDIRTYTRACK_H
#define LIBDIRTYTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/dirtytrack.h>

#define DT_DEV_PATH "/dev/dirtytrack"

/* Open the device ($DIRTYTRACK_DEV, else /dev/dirtytrack); -errno on failure. */
int dt_open(void);
/* API handshake: want features; *have gets what the module supports. */
int dt_api(int devfd, uint64_t want, uint64_t *have);
/* Create a region of size bytes; returns its fd. */
int dt_region_create(int devfd, uint64_t size);

int dt_track_start(int rfd, uint32_t flags);
int dt_track_stop(int rfd);

/*
 * Harvest [first, first + npages) into a bitmap of dt_bitmap_bytes(npages)
 * bytes (zero, optional, marks holes). *ndirty gets the pages reported.
 * Loops over partial results until the range is done.
 */
int dt_harvest_bitmap(int rfd, uint64_t first, uint64_t npages, uint64_t *bitmap,
		      uint64_t *zero, uint64_t *ndirty);
/*
 * Harvest into a list of at most max page indices (DIRTYTRACK_PAGE_ZERO marks
 * holes). *n gets the count; *next the resume cursor.
 */
int dt_harvest_list(int rfd, uint64_t first, uint64_t npages, uint64_t *list,
		    size_t max, size_t *n, uint64_t *next);
/* Manual-protect mode: clear and re-protect the pages set in bitmap (NULL = all). */
int dt_clear(int rfd, uint64_t first, uint64_t npages, const uint64_t *bitmap,
	     uint64_t *cleared);
int dt_stats(int rfd, struct dirtytrack_stats *st);
/*
 * Write-fault budget (DIRTYTRACK_IOC_THROTTLE): while tracked, writers of
 * the region fault at most pages_per_sec times a second; 0 removes it. It
 * lasts until this fd is closed.
 */
int dt_throttle(int rfd, uint64_t pages_per_sec);

/*
 * Send pages of a region to a connected TCP socket (DIRTYTRACK_IOC_STREAM):
 * fill *s (sockfd, flags, range or pages, budget, round, next); on return
 * s->next, s->records, s->bytes and s->done say how far it got. Loops until
 * done unless a budget is set or an error (-errno) stops it.
 */
int dt_stream(int rfd, struct dirtytrack_stream *s);
/* Apply records from a socket to a region (DIRTYTRACK_IOC_RECEIVE), one call. */
int dt_receive(int rfd, struct dirtytrack_receive *rcv);

/* Bitmaps in the harvest layout: bit i is bit i % 64 of word i / 64. */
static inline size_t dt_bitmap_bytes(uint64_t npages)
{
	return (size_t)((npages + 63) / 64) * 8;
}

static inline bool dt_bitmap_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static inline void dt_bitmap_set(uint64_t *map, uint64_t i)
{
	map[i / 64] |= 1ULL << (i % 64);
}

uint64_t dt_bitmap_count(const uint64_t *map, uint64_t nbits);
/* Next set bit at or after from, or nbits. */
uint64_t dt_bitmap_next(const uint64_t *map, uint64_t nbits, uint64_t from);

#endif /* LIBDIRTYTRACK_H */
