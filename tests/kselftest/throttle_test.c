// SPDX-License-Identifier: GPL-2.0
/*
 * The write-fault budget (DIRTYTRACK_IOC_THROTTLE): argument checks, the
 * rate it lets through (against the module's own counters, with a generous
 * tolerance), a throttled writer dies at SIGKILL, removing the budget or
 * closing the file that set it wakes the sleepers, and untracked regions
 * are never throttled.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define NPAGES 4096

FIXTURE(throttle) {
	int dev, fd;
	char *map;
};

FIXTURE_SETUP(throttle)
{
	self->dev = dt_open();
	ASSERT_LE(0, self->dev) TH_LOG("open /dev/dirtytrack: %s", strerror(-self->dev));
	self->fd = dt_region_create(self->dev, NPAGES * PS);
	ASSERT_LE(0, self->fd);
	self->map = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, dt_track_start(self->fd, 0));
}

FIXTURE_TEARDOWN(throttle)
{
	munmap(self->map, NPAGES * PS);
	close(self->fd);
	close(self->dev);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t faults(int fd)
{
	struct dirtytrack_stats st;

	return dt_stats(fd, &st) ? ~0ULL : st.write_faults;
}

/*
 * A child that writes pages first..first+n-1 once each, then exits 0; it
 * closes its copy of fd other (-1: none) first.
 */
static pid_t writer_closing(char *map, uint64_t first, uint64_t n, int other)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (other >= 0)
			close(other);
		for (uint64_t p = first; p < first + n; p++)
			map[p * PS] = 1;
		_exit(0);
	}
	return pid;
}

static pid_t writer(char *map, uint64_t first, uint64_t n)
{
	return writer_closing(map, first, n, -1);
}

/* Reap pid within limit_s seconds: its exit status, or -1 if it is still there. */
static int reap_within(pid_t pid, double limit_s)
{
	double end = now_s() + limit_s;
	int st;

	while (now_s() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

TEST_F(throttle, bad_arguments)
{
	struct dirtytrack_throttle t = { .pages_per_sec = 10 };
	struct dirtytrack_stats st;

	t.flags = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_THROTTLE, &t));
	t.flags = 0;
	t.reserved = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_THROTTLE, &t));
	t.reserved = 0;
	t.reserved2[1] = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_THROTTLE, &t));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_THROTTLE, NULL));
	EXPECT_EQ(-ENOTTY, dt_xioctl(self->dev, DIRTYTRACK_IOC_THROTTLE, &t));
	/* Nothing took effect. */
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(0, st.throttle_pps);
	/* Any rate is valid, 0 removes it. */
	EXPECT_EQ(0, dt_throttle(self->fd, ~0ULL));
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(~0ULL, st.throttle_pps);
	EXPECT_EQ(0, dt_throttle(self->fd, 0));
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(0, st.throttle_pps);
	EXPECT_EQ(0, st.reserved);
	EXPECT_EQ(0, st.pages_unshared);
}

/* At 50 pages/s a writer gets about 50 faults a second: never more. */
TEST_F(throttle, budget_holds)
{
	struct dirtytrack_stats st;
	uint64_t f0, f1;
	double t0, t1;
	pid_t pid;

	ASSERT_EQ(0, dt_throttle(self->fd, 50));
	t0 = now_s();
	f0 = faults(self->fd);
	pid = writer(self->map, 0, NPAGES);
	ASSERT_LT(0, pid);
	sleep(3);
	f1 = faults(self->fd);
	t1 = now_s();
	kill(pid, SIGKILL);
	EXPECT_NE(-1, reap_within(pid, 10));
	TH_LOG("%llu faults in %.2f s at 50 pages/s", (unsigned long long)(f1 - f0), t1 - t0);
	/* One free slot, then one per 20 ms. */
	EXPECT_GE(50 * (t1 - t0) + 2, (double)(f1 - f0));
	EXPECT_LE(50 * (t1 - t0) / 4, (double)(f1 - f0));
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_LT(0, st.throttled);
	EXPECT_LT(0, st.throttle_ns);
}

/*
 * Writers asleep for their slots die at SIGKILL at once: 20 of them at 1
 * page/s hold slots up to 20 s ahead, and all are gone within 5 s.
 */
TEST_F(throttle, throttled_writers_are_killable)
{
	struct dirtytrack_stats s;
	pid_t pid[20];
	double end;
	int st, i;

	ASSERT_EQ(0, dt_throttle(self->fd, 1));
	for (i = 0; i < 20; i++) {
		pid[i] = writer(self->map, i, 1);
		ASSERT_LT(0, pid[i]);
	}
	/* Every one but the first asleep for its slot. */
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, dt_stats(self->fd, &s));
		if (s.throttled >= 19)
			break;
		usleep(10000);
	}
	ASSERT_LE(19, s.throttled);
	for (i = 0; i < 20; i++)
		kill(pid[i], SIGKILL);
	end = now_s() + 5;
	for (i = 0; i < 20; i++) {
		st = reap_within(pid[i], end - now_s());
		ASSERT_NE(-1, st) TH_LOG("writer %d outlived SIGKILL by 5 s", i);
		EXPECT_TRUE(WIFEXITED(st) || WTERMSIG(st) == SIGKILL);
	}
}

/* Removing the budget wakes the sleepers; the writer then runs free. */
TEST_F(throttle, removal_wakes_sleepers)
{
	pid_t pid;
	int st;

	ASSERT_EQ(0, dt_throttle(self->fd, 1));
	pid = writer(self->map, 0, 100);
	ASSERT_LT(0, pid);
	usleep(500000);
	EXPECT_EQ(-1, reap_within(pid, 0.5)) TH_LOG("the writer was not throttled");
	ASSERT_EQ(0, dt_throttle(self->fd, 0));
	st = reap_within(pid, 10);
	ASSERT_NE(-1, st) TH_LOG("the writer still crawls 10 s after the budget went");
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EXPECT_EQ(100, dt_dirty_count(self->fd, NPAGES));
}

/* The budget is the setting file's: closing it (a mover that died) ends it. */
TEST_F(throttle, closing_the_setter_ends_it)
{
	struct dirtytrack_stats st;
	char path[64];
	pid_t pid;
	int fd2, s;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->fd);
	fd2 = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, dt_throttle(fd2, 1));
	pid = writer_closing(self->map, 0, 100, fd2);
	ASSERT_LT(0, pid);
	usleep(500000);
	EXPECT_EQ(-1, reap_within(pid, 0.5)) TH_LOG("the writer was not throttled");
	close(fd2);
	s = reap_within(pid, 10);
	ASSERT_NE(-1, s) TH_LOG("the budget outlived the file that set it");
	EXPECT_TRUE(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(0, st.throttle_pps);
	/* Another file's close leaves a budget alone. */
	ASSERT_EQ(0, dt_throttle(self->fd, 7));
	fd2 = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	close(fd2);
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(7, st.throttle_pps);
}

/* Only a tracked region's writers are throttled. */
TEST_F(throttle, untracked_region_runs_free)
{
	pid_t pid;
	int st;

	ASSERT_EQ(0, dt_throttle(self->fd, 1));
	ASSERT_EQ(0, dt_track_stop(self->fd));
	pid = writer(self->map, 0, 100);
	ASSERT_LT(0, pid);
	st = reap_within(pid, 10);
	ASSERT_NE(-1, st) TH_LOG("an untracked region's writer was throttled");
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST_HARNESS_MAIN
