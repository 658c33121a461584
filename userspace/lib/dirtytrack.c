// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "libdirtytrack.h"

static int dt_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

int dt_open(void)
{
	const char *path = getenv("DIRTYTRACK_DEV");
	int fd = open(path && *path ? path : DT_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int dt_api(int devfd, uint64_t want, uint64_t *have)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION, .features = want };
	int ret = dt_ioctl(devfd, DIRTYTRACK_IOC_API, &api);

	if (have)
		*have = api.features;
	return ret;
}

int dt_region_create(int devfd, uint64_t size)
{
	struct dirtytrack_create c = { .size = size };

	return dt_ioctl(devfd, DIRTYTRACK_IOC_CREATE_REGION, &c);
}

int dt_track_start(int rfd, uint32_t flags)
{
	struct dirtytrack_track t = { .flags = flags };

	return dt_ioctl(rfd, DIRTYTRACK_IOC_TRACK_START, &t);
}

int dt_track_stop(int rfd)
{
	struct dirtytrack_track t = { 0 };

	return dt_ioctl(rfd, DIRTYTRACK_IOC_TRACK_STOP, &t);
}

int dt_harvest_bitmap(int rfd, uint64_t first, uint64_t npages, uint64_t *bitmap,
		      uint64_t *zero, uint64_t *ndirty)
{
	uint64_t pos = first, end = first + npages, total = 0;

	while (pos < end) {
		/* Bitmap harvests stop only at word boundaries of the range. */
		uint64_t skip = (pos - first) / 64;
		struct dirtytrack_harvest h = {
			.first_page = first + skip * 64,
			.npages = end - (first + skip * 64),
			.buf = (uintptr_t)(bitmap + skip),
			.buf_size = dt_bitmap_bytes(end - (first + skip * 64)),
			.zero_buf = zero ? (uintptr_t)(zero + skip) : 0,
		};
		int ret = dt_ioctl(rfd, DIRTYTRACK_IOC_HARVEST, &h);

		if (ret < 0)
			return ret;
		total += h.dirty;
		if (h.next_page <= pos || (h.next_page < end && (h.next_page - first) % 64))
			return -EIO;	/* the kernel broke its own contract */
		pos = h.next_page;
	}
	if (ndirty)
		*ndirty = total;
	return 0;
}

int dt_harvest_list(int rfd, uint64_t first, uint64_t npages, uint64_t *list,
		    size_t max, size_t *n, uint64_t *next)
{
	struct dirtytrack_harvest h = {
		.first_page = first,
		.npages = npages,
		.buf = (uintptr_t)list,
		.buf_size = max * sizeof(uint64_t),
		.flags = DIRTYTRACK_HARVEST_LIST,
	};
	int ret = dt_ioctl(rfd, DIRTYTRACK_IOC_HARVEST, &h);

	if (ret < 0)
		return ret;
	if (n)
		*n = h.dirty;
	if (next)
		*next = h.next_page;
	return 0;
}

int dt_clear(int rfd, uint64_t first, uint64_t npages, const uint64_t *bitmap,
	     uint64_t *cleared)
{
	struct dirtytrack_clear c = {
		.first_page = first,
		.npages = npages,
		.bitmap = (uintptr_t)bitmap,
		.bitmap_size = bitmap ? dt_bitmap_bytes(npages) : 0,
	};
	int ret = dt_ioctl(rfd, DIRTYTRACK_IOC_CLEAR, &c);

	if (!ret && cleared)
		*cleared = c.cleared;
	return ret;
}

int dt_stats(int rfd, struct dirtytrack_stats *st)
{
	memset(st, 0, sizeof(*st));
	return dt_ioctl(rfd, DIRTYTRACK_IOC_STATS, st);
}

int dt_throttle(int rfd, uint64_t pages_per_sec)
{
	struct dirtytrack_throttle t = { .pages_per_sec = pages_per_sec };

	return dt_ioctl(rfd, DIRTYTRACK_IOC_THROTTLE, &t);
}

uint64_t dt_bitmap_count(const uint64_t *map, uint64_t nbits)
{
	uint64_t n = 0, i;

	for (i = 0; i < nbits / 64; i++)
		n += (uint64_t)__builtin_popcountll(map[i]);
	if (nbits % 64)
		n += (uint64_t)__builtin_popcountll(map[i] & ((1ULL << (nbits % 64)) - 1));
	return n;
}

uint64_t dt_bitmap_next(const uint64_t *map, uint64_t nbits, uint64_t from)
{
	while (from < nbits) {
		uint64_t w = map[from / 64] >> (from % 64);

		if (w) {
			from += (uint64_t)__builtin_ctzll(w);
			return from < nbits ? from : nbits;
		}
		from = (from / 64 + 1) * 64;
	}
	return nbits;
}

int dt_stream(int rfd, struct dirtytrack_stream *s)
{
	uint64_t records = 0, bytes = 0;
	int ret;

	for (;;) {
		ret = dt_ioctl(rfd, DIRTYTRACK_IOC_STREAM, s);
		records += s->records;
		bytes += s->bytes;
		if (ret < 0 || s->done || s->budget)
			break;
		/* The header goes once per stream. */
		s->flags &= ~DIRTYTRACK_STREAM_HEADER;
	}
	s->records = records;
	s->bytes = bytes;
	return ret < 0 ? ret : 0;
}

int dt_receive(int rfd, struct dirtytrack_receive *rcv)
{
	return dt_ioctl(rfd, DIRTYTRACK_IOC_RECEIVE, rcv);
}
