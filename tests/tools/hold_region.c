// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: create a region and hold it until killed.
 * "map": keep only a mapping (the fd is closed); "fd": keep only the fd.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdirtytrack.h"

int main(int argc, char **argv)
{
	int dev = dt_open(), fd;
	char *m;

	if (argc != 2 || (strcmp(argv[1], "map") && strcmp(argv[1], "fd"))) {
		fprintf(stderr, "usage: hold_region map|fd\n");
		return 2;
	}
	if (dev < 0 || (fd = dt_region_create(dev, 1 << 20)) < 0) {
		perror("hold_region: create");
		return 1;
	}
	close(dev);
	if (!strcmp(argv[1], "map")) {
		m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			perror("hold_region: mmap");
			return 1;
		}
		m[0] = 1;
		close(fd);
	}
	for (;;)
		pause();
}
