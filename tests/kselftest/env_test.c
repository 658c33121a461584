// SPDX-License-Identifier: GPL-2.0
/*
 * Regions in their environment: memory cgroup charging and tracepoints.
 */
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define CG "/tmp/dt-cgroup"
#define TRACING "/sys/kernel/tracing"

static int put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -EIO;
}

static long long get_ll(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoll(buf) : -1;
}

static void join(const char *cg)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), CG "/%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (put(path, pid))
		_exit(99);
}

/* Pages touched by a process of cgroup b are charged to the creator's cgroup a. */
TEST(memcg_charges_creator)
{
	const long pages = 2048;	/* 8 MiB */
	long long a0, a1, b1;
	int ready[2], done[2], status;
	char c;
	pid_t pid;

	mkdir(CG, 0755);
	if (mount("none", CG, "cgroup2", 0, NULL) && errno != EBUSY)
		SKIP(return, "cannot mount cgroup2: %s", strerror(errno));
	ASSERT_EQ(0, put(CG "/cgroup.subtree_control", "+memory"));
	mkdir(CG "/a", 0755);
	mkdir(CG "/b", 0755);
	a0 = get_ll(CG "/a/memory.current");
	ASSERT_LE(0, a0);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {			/* the creator, in a */
		int dev, fd;
		pid_t t;

		join("a");
		dev = dt_open();
		fd = dev < 0 ? -1 : dt_region_create(dev, pages * PS);
		if (fd < 0)
			_exit(1);
		t = fork();
		if (!t) {		/* the toucher, in b */
			char *m;

			join("b");
			m = mmap(NULL, pages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED)
				_exit(2);
			for (long i = 0; i < pages; i++)
				m[i * PS] = 1;
			_exit(0);
		}
		waitpid(t, &status, 0);
		if (write(ready[1], WIFEXITED(status) && !WEXITSTATUS(status) ? "y" : "n", 1) != 1 ||
		    read(done[0], &c, 1) != 1)
			_exit(3);
		_exit(0);		/* the region goes with the creator's fd */
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ('y', c);
	a1 = get_ll(CG "/a/memory.current");
	b1 = get_ll(CG "/b/memory.current");
	ASSERT_EQ(1, write(done[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	TH_LOG("a: %lld -> %lld bytes, b: %lld bytes", a0, a1, b1);
	EXPECT_LE(a0 + pages * (long long)PS, a1);
	EXPECT_GT(pages * (long long)PS / 4, b1);
	rmdir(CG "/a");
	rmdir(CG "/b");
}

/* The tracepoints fire with the fields the eBPF tools read. */
TEST(tracepoints)
{
	char buf[65536] = { 0 }, *m;
	int dev, fd, tfd;
	ssize_t n;
	uint64_t map[1];

	if (access(TRACING "/events/dirtytrack", F_OK))
		SKIP(return, "no tracefs at " TRACING);
	ASSERT_EQ(0, put(TRACING "/trace", ""));
	ASSERT_EQ(0, put(TRACING "/events/dirtytrack/enable", "1"));
	dev = dt_open();
	ASSERT_LE(0, dev);
	fd = dt_region_create(dev, 4 * PS);
	ASSERT_LE(0, fd);
	m = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	ASSERT_EQ(0, dt_track_start(fd, 0));
	m[2 * PS] = 1;
	ASSERT_EQ(0, dt_harvest_bitmap(fd, 0, 4, map, NULL, NULL));
	ASSERT_EQ(0, dt_track_stop(fd));
	ASSERT_EQ(0, put(TRACING "/events/dirtytrack/enable", "0"));
	tfd = open(TRACING "/trace", O_RDONLY);
	ASSERT_LE(0, tfd);
	n = read(tfd, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	close(tfd);
	EXPECT_NE(NULL, strstr(buf, "dirtytrack_create: region="));
	EXPECT_NE(NULL, strstr(buf, "size=16384"));
	EXPECT_NE(NULL, strstr(buf, "dirtytrack_track: region="));
	EXPECT_NE(NULL, strstr(buf, " start flags=0x0"));
	EXPECT_NE(NULL, strstr(buf, " stop flags=0x0"));
	EXPECT_NE(NULL, strstr(buf, "dirtytrack_write_fault: region="));
	EXPECT_NE(NULL, strstr(buf, " page=2"));
	EXPECT_NE(NULL, strstr(buf, "dirtytrack_harvest: region="));
	EXPECT_NE(NULL, strstr(buf, "harvest first=0 npages=4 dirty=1 protected=1"));
	munmap(m, 4 * PS);
	close(fd);
	close(dev);
}

TEST_HARNESS_MAIN
