// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: a workload that is always runnable. Counts in the first 8
 * bytes of FILE (mapped shared) as fast as it can, so that a test sees when
 * it runs again after a pause, until killed. With SLEEPERS, that many more
 * threads wake every millisecond (stopping or freezing the process wakes
 * them to park them).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	struct timespec ms = { 0, 1000000 };

	(void)arg;
	for (;;)
		nanosleep(&ms, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	volatile uint64_t *n;
	int fd, sleepers = argc == 3 ? atoi(argv[2]) : 0;
	pthread_t th;

	if (argc < 2 || argc > 3 || sleepers < 0) {
		fprintf(stderr, "usage: spinner FILE [SLEEPERS]\n");
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
	for (int i = 0; i < sleepers; i++)
		if (pthread_create(&th, NULL, sleeper, NULL)) {
			perror("spinner: pthread_create");
			return 1;
		}
	for (;;)
		(*n)++;
}
