// SPDX-License-Identifier: GPL-2.0
/*
 * Tracked regions: mapping semantics, every way a page can be written,
 * harvest modes, argument checks and region lifetime.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define NPAGES 64

FIXTURE(region) {
	int dev, fd;
	uint64_t npages;
	char *map;
};

FIXTURE_SETUP(region)
{
	self->dev = dt_open();
	ASSERT_LE(0, self->dev) TH_LOG("open /dev/dirtytrack: %s", strerror(-self->dev));
	self->npages = NPAGES;
	self->fd = dt_region_create(self->dev, NPAGES * PS);
	ASSERT_LE(0, self->fd);
	self->map = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, dt_track_start(self->fd, 0));
}

FIXTURE_TEARDOWN(region)
{
	munmap(self->map, NPAGES * PS);
	close(self->fd);
	close(self->dev);
}

/* Harvest the whole region; return the bitmap's first word (64 pages). */
static uint64_t harvest64(int fd)
{
	uint64_t map[1] = { 0 }, n;

	if (dt_harvest_bitmap(fd, 0, NPAGES, map, NULL, &n))
		return ~0ULL;
	if (n != (uint64_t)__builtin_popcountll(map[0]))
		return ~0ULL;
	return map[0];
}

#define BIT(n) (1ULL << (n))

TEST_F(region, fresh_pages_read_zero)
{
	uint64_t i;

	for (i = 0; i < NPAGES * PS; i += 512)
		ASSERT_EQ(0, self->map[i]);
	EXPECT_EQ(0, harvest64(self->fd));
}

TEST_F(region, map_private_refused)
{
	void *p = mmap(NULL, PS, PROT_READ, MAP_PRIVATE, self->fd, 0);

	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(region, write_reported_once)
{
	self->map[3 * PS + 17] = 1;
	EXPECT_EQ(BIT(3), harvest64(self->fd));
	EXPECT_EQ(0, harvest64(self->fd));
	self->map[3 * PS] = 2;
	self->map[63 * PS] = 2;
	EXPECT_EQ(BIT(3) | BIT(63), harvest64(self->fd));
}

TEST_F(region, reads_never_dirty)
{
	volatile char sum = 0;
	uint64_t i;

	self->map[5 * PS] = 1;
	harvest64(self->fd);
	for (i = 0; i < NPAGES * PS; i += 64)
		sum += self->map[i];
	EXPECT_EQ(0, harvest64(self->fd));
	(void)sum;
}

/*
 * 10000 write-harvest cycles: under KASAN and lockdep in TCG, on a busy host,
 * longer than the harness' default 30 s.
 */
TEST_F_TIMEOUT(region, ten_thousand_cycles, 300)
{
	int i;

	for (i = 0; i < 10000; i++) {
		int page = i % NPAGES;

		if (i % 2)
			self->map[page * PS + i % PS] = (char)i;
		ASSERT_EQ(i % 2 ? BIT(page) : 0, harvest64(self->fd)) TH_LOG("cycle %d", i);
	}
}

TEST_F(region, second_mapping_same_process)
{
	char *m2 = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 8 * PS);

	ASSERT_NE(MAP_FAILED, m2);
	m2[PS] = 7;			/* page 9 */
	EXPECT_EQ(7, self->map[9 * PS]);
	EXPECT_EQ(BIT(9), harvest64(self->fd));
	self->map[9 * PS] = 8;		/* re-protected in both mappings */
	EXPECT_EQ(BIT(9), harvest64(self->fd));
	m2[PS] = 9;
	EXPECT_EQ(BIT(9), harvest64(self->fd));
	munmap(m2, 4 * PS);
}

TEST_F(region, fork_parent_and_child)
{
	int status;
	pid_t pid;

	self->map[1 * PS] = 1;
	harvest64(self->fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		self->map[1 * PS] = 2;	/* shared mapping: no COW */
		self->map[2 * PS] = 2;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	self->map[4 * PS] = 3;
	EXPECT_EQ(BIT(1) | BIT(2) | BIT(4), harvest64(self->fd));
	EXPECT_EQ(2, self->map[2 * PS]);
}

TEST_F(region, second_process_mapping)
{
	int sv[2], status, fd;
	pid_t pid;
	char c;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *m = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED,
			       self->fd, 0);

		if (m == MAP_FAILED || read(sv[1], &c, 1) != 1)
			_exit(1);
		m[10 * PS] = 1;		/* after the parent's harvest */
		_exit(write(sv[1], &c, 1) == 1 ? 0 : 1);
	}
	self->map[11 * PS] = 1;
	EXPECT_EQ(BIT(11), harvest64(self->fd));
	ASSERT_EQ(1, write(sv[0], "x", 1));
	ASSERT_EQ(1, read(sv[0], &c, 1));
	EXPECT_EQ(BIT(10), harvest64(self->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	close(sv[1]);
	fd = -1;
	(void)fd;
}

TEST_F(region, read_from_pipe_into_mapping)
{
	int p[2];

	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(5, write(p[1], "hello", 5));
	ASSERT_EQ(5, read(p[0], self->map + 12 * PS + 100, 5));
	EXPECT_EQ(BIT(12), harvest64(self->fd));
	EXPECT_EQ(0, memcmp(self->map + 12 * PS + 100, "hello", 5));
	close(p[0]);
	close(p[1]);
}

TEST_F(region, process_vm_writev)
{
	char buf[8] = "remote!";
	struct iovec local = { buf, sizeof(buf) };
	struct iovec remote = { self->map + 13 * PS + 8, sizeof(buf) };
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid)
		_exit(process_vm_writev(getppid(), &local, 1, &remote, 1, 0) == sizeof(buf) ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(BIT(13), harvest64(self->fd));
	EXPECT_EQ(0, strcmp(self->map + 13 * PS + 8, "remote!"));
}

TEST_F(region, pwrite_and_read)
{
	char buf[2 * PS];

	memset(buf, 'a', sizeof(buf));
	/* Spans pages 14, 15 and 16. */
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 14 * PS + 10));
	EXPECT_EQ(BIT(14) | BIT(15) | BIT(16), harvest64(self->fd));
	EXPECT_EQ('a', self->map[16 * PS + 9]);
	EXPECT_EQ(0, self->map[16 * PS + 10]);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(PS, pread(self->fd, buf, PS, 15 * PS));
	EXPECT_EQ('a', buf[0]);
	EXPECT_EQ(0, harvest64(self->fd));	/* reads do not dirty */
	/* Past the end: nothing written, nothing reported. */
	EXPECT_EQ(-1, pwrite(self->fd, buf, 1, NPAGES * PS));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(0, pread(self->fd, buf, 1, NPAGES * PS));
	EXPECT_EQ(0, harvest64(self->fd));
}

TEST_F(region, pwrite_from_own_mapping)
{
	/* The source is a page of the region itself: no deadlock, both tracked. */
	self->map[20 * PS] = 'z';
	harvest64(self->fd);
	ASSERT_EQ(PS, pwrite(self->fd, self->map + 20 * PS, PS, 21 * PS));
	EXPECT_EQ(BIT(21), harvest64(self->fd));
	EXPECT_EQ('z', self->map[21 * PS]);
}

TEST_F(region, mprotect_cycles)
{
	int i;

	self->map[6 * PS] = 1;
	EXPECT_EQ(BIT(6), harvest64(self->fd));
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ));
		ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ | PROT_WRITE));
		EXPECT_EQ(0, harvest64(self->fd));
		if (i % 2) {
			self->map[6 * PS] = (char)i;
			ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ));
			ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ | PROT_WRITE));
			EXPECT_EQ(BIT(6), harvest64(self->fd));
		}
	}
	/* A write after mprotect RW, with the pte dirty from before, is still caught. */
	self->map[7 * PS] = 1;
	ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ));
	EXPECT_EQ(BIT(7), harvest64(self->fd));
	ASSERT_EQ(0, mprotect(self->map, NPAGES * PS, PROT_READ | PROT_WRITE));
	self->map[7 * PS] = 2;
	EXPECT_EQ(BIT(7), harvest64(self->fd));
}

TEST_F(region, munmap_and_remap)
{
	self->map[22 * PS] = 1;
	ASSERT_EQ(0, munmap(self->map, NPAGES * PS));
	self->map = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	EXPECT_EQ(1, self->map[22 * PS]);	/* content survives */
	EXPECT_EQ(BIT(22), harvest64(self->fd));
	self->map[22 * PS] = 2;
	EXPECT_EQ(BIT(22), harvest64(self->fd));
}

TEST_F(region, map_fixed_over_window)
{
	char *w;

	self->map[24 * PS] = 1;
	harvest64(self->fd);
	/* Map pages 40..43 over the window that showed pages 24..27. */
	w = mmap(self->map + 24 * PS, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 self->fd, 40 * PS);
	ASSERT_EQ(self->map + 24 * PS, w);
	w[0] = 5;
	EXPECT_EQ(BIT(40), harvest64(self->fd));
	EXPECT_EQ(1, pread(self->fd, (char[1]){0}, 1, 24 * PS));
	w[PS] = 6;
	EXPECT_EQ(BIT(41), harvest64(self->fd));
}

TEST_F(region, punch_hole)
{
	uint64_t list[8], next;
	size_t n;
	uint64_t map[1] = { 0 }, zero[1] = { 0 }, nd;

	self->map[30 * PS] = 1;
	self->map[31 * PS] = 1;
	self->map[33 * PS + 100] = 1;
	self->map[33 * PS + 300] = 1;
	harvest64(self->fd);
	/* Pages 30, 31 whole, and part of 33; page 32 was never touched. */
	ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       30 * PS, 3 * PS + 200));
	/* Pages still holes at harvest time are reported as zero pages. */
	ASSERT_EQ(0, dt_harvest_list(self->fd, 0, NPAGES, list, 8, &n, &next));
	ASSERT_EQ(3, n);
	EXPECT_EQ(NPAGES, next);
	EXPECT_EQ(30 | DIRTYTRACK_PAGE_ZERO, list[0]);
	EXPECT_EQ(31 | DIRTYTRACK_PAGE_ZERO, list[1]);
	EXPECT_EQ(33, list[2]);		/* partly zeroed: still holds data */
	EXPECT_EQ(0, self->map[30 * PS]);
	EXPECT_EQ(0, self->map[33 * PS + 100]);
	EXPECT_EQ(1, self->map[33 * PS + 300]);
	EXPECT_EQ(0, harvest64(self->fd));	/* reading a hole does not dirty it */

	/* The bitmap form says the same with zero_buf. */
	self->map[34 * PS] = 1;
	ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       34 * PS, PS));
	ASSERT_EQ(0, dt_harvest_bitmap(self->fd, 0, NPAGES, map, zero, &nd));
	EXPECT_EQ(BIT(34), map[0]);
	EXPECT_EQ(BIT(34), zero[0]);
	EXPECT_EQ(1, nd);

	/* Other modes are not supported. */
	EXPECT_EQ(-1, fallocate(self->fd, 0, 0, PS));
	EXPECT_EQ(EOPNOTSUPP, errno);
}

TEST_F(region, close_fd_mappings_remain)
{
	char path[64];
	int fd2;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->fd);
	fd2 = open(path, O_RDWR);
	ASSERT_LE(0, fd2);
	close(self->fd);
	self->map[35 * PS] = 1;
	self->fd = fd2;
	EXPECT_EQ(BIT(35), harvest64(self->fd));
}

TEST_F(region, writer_exits)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		self->map[36 * PS] = 1;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(BIT(36), harvest64(self->fd));
}

TEST_F(region, proc_fd_reopen_same_region)
{
	struct stat a, b;
	char path[64];
	char *m;
	int fd2;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), self->fd);
	fd2 = open(path, O_RDWR);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, fstat(self->fd, &a));
	ASSERT_EQ(0, fstat(fd2, &b));
	EXPECT_EQ(a.st_ino, b.st_ino);
	EXPECT_EQ(a.st_size, b.st_size);
	m = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 37 * PS);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 4;
	EXPECT_EQ(4, self->map[37 * PS]);
	EXPECT_EQ(BIT(37), harvest64(self->fd));
	/* Harvest works through either fd. */
	self->map[38 * PS] = 1;
	EXPECT_EQ(BIT(38), harvest64(fd2));
	munmap(m, PS);
	close(fd2);
}

TEST_F(region, scm_rights)
{
	int sv[2], status;
	pid_t pid;
	char c = 0;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &c, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		char *m;
		int fd;

		close(self->fd);
		munmap(self->map, NPAGES * PS);
		if (recvmsg(sv[1], &mh, 0) != 1)
			_exit(1);
		cm = CMSG_FIRSTHDR(&mh);
		if (!cm || cm->cmsg_type != SCM_RIGHTS)
			_exit(2);
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		m = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 39 * PS);
		if (m == MAP_FAILED)
			_exit(3);
		m[0] = 9;
		_exit(0);
	} else {
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { &c, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &self->fd, sizeof(int));
		ASSERT_EQ(1, sendmsg(sv[0], &mh, 0));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(BIT(39), harvest64(self->fd));
	EXPECT_EQ(9, self->map[39 * PS]);
	close(sv[0]);
	close(sv[1]);
}

TEST_F(region, size_is_fixed)
{
	EXPECT_EQ(-1, ftruncate(self->fd, 2 * NPAGES * PS));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, ftruncate(self->fd, NPAGES * PS));
}

TEST_F(region, access_past_end_is_sigbus)
{
	char *m = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		       (NPAGES - 1) * PS);
	int status;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, m);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		m[PS] = 1;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	munmap(m, 2 * PS);
}

/* A run of dirty pages is looked up at once: its holes are still holes. */
TEST_F(region, holes_inside_a_dirty_run)
{
	uint64_t map[1] = { 0 }, zero[1] = { 0 }, holes = BIT(5) | BIT(31) | BIT(32) | BIT(63), n;
	int p;

	for (p = 0; p < NPAGES; p++)
		self->map[p * PS] = 1;
	for (p = 0; p < NPAGES; p++)
		if (holes & BIT(p))
			ASSERT_EQ(0, fallocate(self->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					       p * PS, PS));
	ASSERT_EQ(0, dt_harvest_bitmap(self->fd, 0, NPAGES, map, zero, &n));
	EXPECT_EQ(~0ULL, map[0]);
	EXPECT_EQ(holes, zero[0]);
	EXPECT_EQ(NPAGES, n);
	EXPECT_EQ(0, harvest64(self->fd));
	/* Every page of the run was protected again, holes refilled or not. */
	for (p = 0; p < NPAGES; p += 2)
		self->map[p * PS] = 2;
	EXPECT_EQ(0x5555555555555555ULL, harvest64(self->fd));
}

TEST_F(region, list_mode_partial_and_resume)
{
	uint64_t list[3], next = 0, got[NPAGES] = { 0 }, total = 0;
	size_t n, i;
	int pages[] = { 0, 5, 6, 7, 40, 41, 62, 63 };

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		self->map[pages[i] * PS] = 1;
	do {
		ASSERT_EQ(0, dt_harvest_list(self->fd, next, NPAGES - next, list, 3, &n, &next));
		ASSERT_LE(n, 3);
		for (i = 0; i < n; i++) {
			ASSERT_FALSE(list[i] & DIRTYTRACK_PAGE_ZERO);
			got[list[i]]++;
			total++;
		}
	} while (next < NPAGES);
	EXPECT_EQ(8, total);
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		EXPECT_EQ(1, got[pages[i]]);
	EXPECT_EQ(0, harvest64(self->fd));
}

TEST_F(region, sub_range_harvest)
{
	uint64_t map[1] = { 0 }, n;

	self->map[2 * PS] = 1;
	self->map[50 * PS] = 1;
	/* Range 40..59: bit 10 is page 50; page 2 stays dirty. */
	ASSERT_EQ(0, dt_harvest_bitmap(self->fd, 40, 20, map, NULL, &n));
	EXPECT_EQ(1, n);
	EXPECT_EQ(BIT(10), map[0]);
	EXPECT_EQ(BIT(2), harvest64(self->fd));
}

TEST_F(region, manual_protect)
{
	uint64_t map[1], cleared;
	struct dirtytrack_stats st;

	ASSERT_EQ(0, dt_track_start(self->fd, DIRTYTRACK_TRACK_MANUAL_PROTECT));
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(DIRTYTRACK_STATE_TRACKING | DIRTYTRACK_STATE_MANUAL_PROTECT, st.state);
	self->map[1 * PS] = 1;
	self->map[2 * PS] = 1;
	EXPECT_EQ(BIT(1) | BIT(2), harvest64(self->fd));
	/* Harvest does not re-protect: still reported. */
	EXPECT_EQ(BIT(1) | BIT(2), harvest64(self->fd));
	map[0] = BIT(1);
	ASSERT_EQ(0, dt_clear(self->fd, 0, NPAGES, map, &cleared));
	EXPECT_EQ(1, cleared);
	EXPECT_EQ(BIT(2), harvest64(self->fd));
	self->map[1 * PS] = 2;		/* faults again after CLEAR */
	EXPECT_EQ(BIT(1) | BIT(2), harvest64(self->fd));
	ASSERT_EQ(0, dt_clear(self->fd, 0, NPAGES, NULL, &cleared));
	EXPECT_EQ(2, cleared);
	EXPECT_EQ(0, harvest64(self->fd));
}

TEST_F(region, stats)
{
	struct dirtytrack_stats st;

	self->map[0] = 1;
	self->map[PS] = 1;
	self->map[PS + 1] = 1;		/* same page: one fault */
	(void)*(volatile char *)&self->map[2 * PS];	/* populated, not dirty */
	harvest64(self->fd);
	ASSERT_EQ(0, dt_stats(self->fd, &st));
	EXPECT_EQ(NPAGES * PS, st.size);
	EXPECT_EQ(3, st.pages_populated);
	EXPECT_EQ(2, st.write_faults);
	EXPECT_EQ(1, st.harvests);
	EXPECT_EQ(2, st.pages_reported);
	EXPECT_LE(2, st.pages_protected);
	EXPECT_EQ(DIRTYTRACK_STATE_TRACKING, st.state);
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_STATS, NULL));
}

TEST_F(region, track_stop_and_restart)
{
	uint64_t map[1];

	self->map[3 * PS] = 1;
	ASSERT_EQ(0, dt_track_stop(self->fd));
	EXPECT_EQ(-EINVAL, dt_harvest_bitmap(self->fd, 0, NPAGES, map, NULL, NULL));
	EXPECT_EQ(-EINVAL, dt_track_stop(self->fd));
	self->map[4 * PS] = 1;
	/* Start forgets what was dirty and protects every page again. */
	ASSERT_EQ(0, dt_track_start(self->fd, 0));
	EXPECT_EQ(0, harvest64(self->fd));
	self->map[3 * PS] = 2;
	EXPECT_EQ(BIT(3), harvest64(self->fd));
}

/* ---- argument checks: each leaves the dirty state as it was ---- */

static struct dirtytrack_harvest hv(uint64_t *buf)
{
	return (struct dirtytrack_harvest){ .first_page = 0, .npages = NPAGES,
		.buf = (uintptr_t)buf, .buf_size = 8 };
}

TEST_F(region, harvest_bad_arguments)
{
	uint64_t buf[4];
	struct dirtytrack_harvest h;

	self->map[8 * PS] = 1;
	h = hv(buf); h.flags = 1U << 5;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.reserved = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.reserved2[0] = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.npages = 0;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.npages = NPAGES + 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.first_page = NPAGES;
	h.npages = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.first_page = 1;
	h.npages = UINT64_MAX;			/* first + npages overflows */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.first_page = UINT64_MAX;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(NULL);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.buf_size = 4;		/* bitmap too small */
	EXPECT_EQ(-ENOSPC, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.flags = DIRTYTRACK_HARVEST_LIST;
	h.buf_size = 12;			/* not a whole entry */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(buf); h.flags = DIRTYTRACK_HARVEST_LIST;
	h.zero_buf = (uintptr_t)buf;		/* bitmap-only field */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, NULL));
	/* None of that touched the dirty state. */
	EXPECT_EQ(BIT(8), harvest64(self->fd));
}

TEST_F(region, harvest_unmapped_buffer_loses_nothing)
{
	void *hole = mmap(NULL, PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct dirtytrack_harvest h;

	ASSERT_NE(MAP_FAILED, hole);
	self->map[9 * PS] = 1;
	self->map[60 * PS] = 1;
	h = hv(hole);
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv(hole); h.flags = DIRTYTRACK_HARVEST_LIST;
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	h = hv((uint64_t *)8);
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	/* Read-only buffer: the kernel cannot write it. */
	ASSERT_EQ(0, mprotect(hole, PS, PROT_READ));
	h = hv(hole);
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, &h));
	/* The argument struct itself read-only: nothing can be answered. */
	uint64_t out[1];
	struct dirtytrack_harvest *ro = mmap(NULL, PS, PROT_READ | PROT_WRITE,
					     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, ro);
	*ro = hv(out);
	ASSERT_EQ(0, mprotect(ro, PS, PROT_READ));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, ro));
	EXPECT_EQ(BIT(9) | BIT(60), harvest64(self->fd));
	munmap(ro, PS);
	munmap(hole, PS);
}

TEST_F(region, clear_bad_arguments)
{
	struct dirtytrack_clear c = { .first_page = 0, .npages = NPAGES };
	uint64_t map[1] = { ~0ULL };

	ASSERT_EQ(0, dt_track_start(self->fd, DIRTYTRACK_TRACK_MANUAL_PROTECT));
	self->map[8 * PS] = 1;
	c.flags = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	c.flags = 0;
	c.reserved = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	c.reserved = 0;
	c.npages = 0;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	c.npages = NPAGES;
	c.bitmap = (uintptr_t)map;		/* bitmap without a size */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	c.bitmap_size = 4;
	EXPECT_EQ(-ENOSPC, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	c.bitmap = 8;
	c.bitmap_size = 8;
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	EXPECT_EQ(BIT(8), harvest64(self->fd));
	EXPECT_EQ(BIT(8), harvest64(self->fd));
}

TEST_F(region, track_bad_arguments)
{
	struct dirtytrack_track t = { .flags = 1U << 7 };

	self->map[8 * PS] = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_TRACK_START, &t));
	t.flags = 0;
	t.reserved = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_TRACK_START, &t));
	t.reserved = 0;
	t.reserved2 = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_TRACK_STOP, &t));
	t.reserved2 = 0;
	t.flags = DIRTYTRACK_TRACK_MANUAL_PROTECT;	/* start-only flag */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_TRACK_STOP, &t));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_TRACK_START, NULL));
	EXPECT_EQ(BIT(8), harvest64(self->fd));
}

TEST_F(region, unknown_region_command)
{
	char buf[64] = { 0 };

	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, _IOWR(DIRTYTRACK_IOC_MAGIC, 0x7e, buf), buf));
	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, _IO('f', 1), buf));
}

/* Defect 12: output fields hold anything on input; the struct is reusable. */
TEST_F(region, clear_output_field_ignored_on_input)
{
	struct dirtytrack_clear c = { .first_page = 0, .npages = NPAGES, .cleared = 77 };

	ASSERT_EQ(0, dt_track_start(self->fd, DIRTYTRACK_TRACK_MANUAL_PROTECT));
	self->map[8 * PS] = 1;
	EXPECT_EQ(BIT(8), harvest64(self->fd));
	ASSERT_EQ(0, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));
	EXPECT_EQ(1, c.cleared);
	self->map[9 * PS] = 1;
	ASSERT_EQ(0, dt_xioctl(self->fd, DIRTYTRACK_IOC_CLEAR, &c));	/* reused */
	EXPECT_EQ(1, c.cleared);
	EXPECT_EQ(0, harvest64(self->fd));
}

/*
 * A harvest's batches cross up to 256 clean pages once they span 32 (16
 * before), while they average at most 64 pages per page they hold: the
 * widest batch (256 folios over 16384 pages, what the clean walk's bitmap
 * holds), a wide batch ended by a gap of 257, and one cut by the average.
 * The crossed pages are mapped, read-only and clean: they must not be
 * reported, and every written page must be protected again, round after
 * round, crossed pages written too at last.
 */
#define WIDE_NP (24 * 1024)
/* Minutes, not the harness's 30 s, on a debug kernel (KASAN) under TCG. */
TEST_F_TIMEOUT(region, widest_batches_report_and_protect_exactly, 600)
{
	size_t bytes = WIDE_NP / 8;
	uint64_t *want = calloc(1, bytes), *map = calloc(1, bytes), n, nw = 0, p;
	int dev = dt_open(), fd;
	volatile char *m;

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, map);
	ASSERT_LE(0, dev);
	fd = dt_region_create(dev, WIDE_NP * PS);
	ASSERT_LE(0, fd);
	m = mmap(NULL, WIDE_NP * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, m);
	for (p = 0; p < WIDE_NP; p++)	/* every pte present, read-only, clean */
		(void)m[p * PS];
	ASSERT_EQ(0, dt_track_start(fd, 0));
	/*
	 * Pages 0, 16, 32, then 255 + 64 * j up to 16383: each as far as the
	 * average lets it (256 folios). A run of 41 from 16400, 10 pages 256
	 * apart, 257 to a run of 41 from 19257, then pages 256 apart.
	 */
	for (p = 0; p <= 32; p += 16)
		dt_bitmap_set(want, p);
	for (p = 255; p < 16384; p += 64)
		dt_bitmap_set(want, p);
	for (int run = 0; run < 2; run++) {
		uint64_t q = run ? 19257 : 16400;

		for (p = q; p <= q + 40; p++)
			dt_bitmap_set(want, p);
		for (p = q + 40 + 256; p < (run ? WIDE_NP : q + 40 + 2561); p += 256)
			dt_bitmap_set(want, p);
	}
	nw = dt_bitmap_count(want, WIDE_NP);
	for (int round = 1; round <= 3; round++) {
		if (round == 3) {	/* and a page inside each gap */
			for (p = 41; p < WIDE_NP; p += 64)
				if (!dt_bitmap_test(want, p)) {
					dt_bitmap_set(want, p);
					nw++;
				}
		}
		for (p = 0; p < WIDE_NP; p++)
			if (dt_bitmap_test(want, p))
				m[p * PS] = (char)round;
		memset(map, 0, bytes);
		ASSERT_EQ(0, dt_harvest_bitmap(fd, 0, WIDE_NP, map, NULL, &n));
		EXPECT_EQ(nw, n) TH_LOG("round %d", round);
		for (p = 0; p < WIDE_NP / 64; p++)
			ASSERT_EQ(want[p], map[p]) TH_LOG("round %d, pages %llu..", round,
							  (unsigned long long)p * 64);
	}
	ASSERT_EQ(0, dt_harvest_bitmap(fd, 0, WIDE_NP, map, NULL, &n));
	EXPECT_EQ(0, n);
	munmap((void *)m, WIDE_NP * PS);
	close(fd);
	close(dev);
	free(want);
	free(map);
}

TEST_HARNESS_MAIN
