// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: dt_workload PAGES ROUNDS
 * Creates a region of PAGES pages, starts tracking, and ROUNDS times writes
 * every page then harvests: PAGES * ROUNDS write faults, ROUNDS harvests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdirtytrack.h"

int main(int argc, char **argv)
{
	uint64_t pages, rounds, r, p, n, *map;
	struct stat st;
	int dev, fd, err;
	char *m;

	if (argc != 3 || !(pages = strtoull(argv[1], NULL, 0)) ||
	    !(rounds = strtoull(argv[2], NULL, 0))) {
		fprintf(stderr, "usage: dt_workload PAGES ROUNDS\n");
		return 2;
	}
	dev = dt_open();
	fd = dev < 0 ? dev : dt_region_create(dev, pages * 4096);
	if (fd < 0) {
		fprintf(stderr, "dt_workload: create: %s\n", strerror(-fd));
		return 1;
	}
	m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	map = calloc(1, dt_bitmap_bytes(pages));
	if (m == MAP_FAILED || !map || fstat(fd, &st) || (err = dt_track_start(fd, 0))) {
		perror("dt_workload: setup");
		return 1;
	}
	printf("region inode %lu\n", (unsigned long)st.st_ino);
	for (r = 0; r < rounds; r++) {
		for (p = 0; p < pages; p++)
			m[p * 4096] = (char)r;
		err = dt_harvest_bitmap(fd, 0, pages, map, NULL, &n);
		if (err || n != pages) {
			fprintf(stderr, "dt_workload: round %llu: harvest %d, %llu dirty\n",
				(unsigned long long)r, err, (unsigned long long)n);
			return 1;
		}
	}
	return 0;
}
