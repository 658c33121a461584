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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

/* A connected loopback TCP pair: *a connects, *b accepted; 0 or -1. */
static inline int dt_tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		return -1;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	*b = accept(l, NULL, NULL);
	close(l);
	return *b < 0 ? -1 : 0;
}

/* Seeded pseudo-random numbers (splitmix64) for the fuzz and torture tests. */
static inline uint64_t dt_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t dt_rand_below(uint64_t *state, uint64_t n)
{
	return n ? dt_rand(state) % n : 0;
}

#endif
