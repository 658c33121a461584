// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: a memfd workload that punches holes while it is migrated.
 * Maps a memfd of NPAGES pages shared, fills each page with its index + 1,
 * optionally registers the mapping for async uffd-wp (--uffd-wp, for
 * dt-migrate --tracker pagemap-scan), prints /proc/PID/fd/N, waits
 * DELAY_MS, punches pages [FIRST, FIRST + COUNT) with fallocate (a balloon
 * would), says so on stdout, and sleeps until killed.
 * Usage: punch_workload [--uffd-wp] NPAGES DELAY_MS FIRST COUNT
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PS 4096UL

int main(int argc, char **argv)
{
	int uffd_wp = argc > 1 && !strcmp(argv[1], "--uffd-wp"), fd;
	unsigned long n, delay, first, count;
	char *m;

	argv += uffd_wp;
	argc -= uffd_wp;
	if (argc != 5) {
		fprintf(stderr, "usage: punch_workload [--uffd-wp] NPAGES DELAY_MS FIRST COUNT\n");
		return 2;
	}
	n = strtoul(argv[1], NULL, 0);
	delay = strtoul(argv[2], NULL, 0);
	first = strtoul(argv[3], NULL, 0);
	count = strtoul(argv[4], NULL, 0);
	fd = memfd_create("punch", 0);
	if (fd < 0 || ftruncate(fd, (off_t)(n * PS)))
		return perror("punch_workload: memfd"), 1;
	m = mmap(NULL, n * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return perror("punch_workload: mmap"), 1;
	for (unsigned long p = 0; p < n; p++)
		memset(m + p * PS, (int)(p + 1), PS);
	if (uffd_wp) {
		struct uffdio_api api = { .api = UFFD_API,
			.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
		struct uffdio_register reg = { .range = { (unsigned long)m, n * PS },
			.mode = UFFDIO_REGISTER_MODE_WP };
		int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

		if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg))
			return perror("punch_workload: uffd-wp"), 3;
	}
	printf("/proc/%d/fd/%d\n", (int)getpid(), fd);
	fflush(stdout);
	usleep(delay * 1000);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(first * PS),
		      (off_t)(count * PS)))
		return perror("punch_workload: fallocate"), 1;
	printf("punched %lu pages from %lu\n", count, first);
	fflush(stdout);
	for (;;)
		pause();
}
