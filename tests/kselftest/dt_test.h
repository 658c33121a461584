/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the dirtytrack kselftests. */
#ifndef DT_TEST_H
#define DT_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdirtytrack.h"

#define PS 4096UL

/* ioctl() that returns -errno. */
static inline int dt_xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* Harvest [0, npages) into a fresh bitmap; returns it (caller frees). */
static inline uint64_t *dt_harvest_all(int rfd, uint64_t npages, uint64_t *ndirty, int *err)
{
	uint64_t *map = calloc(1, dt_bitmap_bytes(npages));

	*err = map ? dt_harvest_bitmap(rfd, 0, npages, map, NULL, ndirty) : -ENOMEM;
	return map;
}

/* Pages reported dirty since the last harvest, as a count; -errno on failure. */
static inline long dt_dirty_count(int rfd, uint64_t npages)
{
	uint64_t n = 0;
	int err;
	uint64_t *map = dt_harvest_all(rfd, npages, &n, &err);

	free(map);
	return err ? err : (long)n;
}

#endif
