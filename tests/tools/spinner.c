// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: a workload that is always runnable. Counts in the first 8
 * bytes of FILE (mapped shared) as fast as it can, so that a test sees when
 * it runs again after a pause, until killed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	volatile uint64_t *n;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: spinner FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 4096)) {
		perror("spinner");
		return 1;
	}
	n = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (n == MAP_FAILED) {
		perror("spinner: mmap");
		return 1;
	}
	for (;;)
		(*n)++;
}
