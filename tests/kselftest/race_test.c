// SPDX-License-Identifier: GPL-2.0
/*
 * Never lose a write: writer threads store to random pages while the main
 * thread harvests and copies every reported page into a shadow buffer, as a
 * migration's pre-copy rounds do. After the writers stop, one last harvest
 * and copy must leave the shadow byte-identical to the region. A write whose
 * report was lost leaves its page different. Every store also bumps a
 * per-page counter, so the check knows how many writes it covered.
 *
 * DT_RACE_WRITES (default 1000000) sets the total number of page writes.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define RPAGES 512
#define WRITERS 3
/* Writers keep going until the harvester has run this many rounds. */
#define MIN_ROUNDS 40

struct race {
	int fd;
	char *map;
	char *shadow;
	uint64_t per_writer;
	atomic_int running;
	atomic_ulong writes;
	atomic_ulong rounds;
};

struct writer_arg {
	struct race *race;
	unsigned int id;
};

static void *writer(void *p)
{
	struct writer_arg *wa = p;
	struct race *race = wa->race;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (wa->id + 1), i;

	for (i = 0; i < race->per_writer || atomic_load(&race->rounds) < MIN_ROUNDS; i++) {
		uint64_t page, slot;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		page = seed % RPAGES;
		/* Each writer owns its own 8-byte slots in every page. */
		slot = (seed >> 20) % (PS / 8 / WRITERS) * WRITERS + wa->id;
		((volatile uint64_t *)(race->map + page * PS))[slot] = i + 1;
	}
	atomic_fetch_add(&race->writes, i);
	atomic_fetch_sub(&race->running, 1);
	return NULL;
}

/* Harvest once (auto or manual protect) and copy what was reported. */
static int round_copy(struct race *race, bool manual, bool list, uint64_t *copied)
{
	uint64_t map[RPAGES / 64], n = 0, p;
	int err;

	if (list) {
		uint64_t idx[64], next = 0;
		size_t k, i;

		while (next < RPAGES) {
			err = dt_harvest_list(race->fd, next, RPAGES - next, idx, 64, &k, &next);
			if (err)
				return err;
			for (i = 0; i < k; i++) {
				p = idx[i] & DIRTYTRACK_PAGE_INDEX_MASK;
				memcpy(race->shadow + p * PS, race->map + p * PS, PS);
			}
			n += k;
		}
		*copied += n;
		return 0;
	}
	memset(map, 0, sizeof(map));
	err = dt_harvest_bitmap(race->fd, 0, RPAGES, map, NULL, &n);
	if (err)
		return err;
	/* Manual protect: re-protect each chunk right before copying it. */
	for (p = 0; p < RPAGES; p += 64) {
		uint64_t chunk[1] = { map[p / 64] };

		if (!chunk[0])
			continue;
		if (manual) {
			err = dt_clear(race->fd, p, 64, chunk, NULL);
			if (err)
				return err;
		}
		for (uint64_t b = 0; b < 64; b++)
			if (chunk[0] >> b & 1)
				memcpy(race->shadow + (p + b) * PS, race->map + (p + b) * PS, PS);
	}
	*copied += n;
	return 0;
}

static void run_race(struct __test_metadata *_metadata, bool manual, bool list)
{
	const char *env = getenv("DT_RACE_WRITES");
	uint64_t total = env ? strtoull(env, NULL, 0) : 1000000, copied = 0;
	struct writer_arg wa[WRITERS];
	pthread_t th[WRITERS];
	struct race race = { 0 };
	int dev = dt_open(), i;
	uint64_t p;

	ASSERT_LE(0, dev);
	race.fd = dt_region_create(dev, RPAGES * PS);
	ASSERT_LE(0, race.fd);
	race.map = mmap(NULL, RPAGES * PS, PROT_READ | PROT_WRITE, MAP_SHARED, race.fd, 0);
	ASSERT_NE(MAP_FAILED, race.map);
	race.shadow = calloc(RPAGES, PS);
	ASSERT_NE(NULL, race.shadow);
	race.per_writer = total / WRITERS + 1;

	ASSERT_EQ(0, dt_track_start(race.fd, manual ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0));
	atomic_store(&race.running, WRITERS);
	for (i = 0; i < WRITERS; i++) {
		wa[i] = (struct writer_arg){ &race, (unsigned int)i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, writer, &wa[i]));
	}
	while (atomic_load(&race.running)) {
		ASSERT_EQ(0, round_copy(&race, manual, list, &copied));
		atomic_fetch_add(&race.rounds, 1);
	}
	for (i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	/* Stop-and-copy: the writers are stopped; one last round. */
	ASSERT_EQ(0, round_copy(&race, manual, list, &copied));

	for (p = 0; p < RPAGES; p++)
		if (memcmp(race.shadow + p * PS, race.map + p * PS, PS))
			break;
	ASSERT_EQ(RPAGES, p) TH_LOG("page %llu differs: a write was lost", (unsigned long long)p);
	ASSERT_LE(total, atomic_load(&race.writes));
	TH_LOG("%lu page writes, %lu rounds, %llu pages copied",
	       (unsigned long)atomic_load(&race.writes),
	       (unsigned long)atomic_load(&race.rounds), (unsigned long long)copied);

	munmap(race.map, RPAGES * PS);
	free(race.shadow);
	close(race.fd);
	close(dev);
}

FIXTURE(race) {
	int unused;
};

FIXTURE_SETUP(race)
{
}

FIXTURE_TEARDOWN(race)
{
}

/* TCG makes every fault slow: allow minutes, not the default 30 s. */
TEST_F_TIMEOUT(race, bitmap_auto_protect, 600)
{
	run_race(_metadata, false, false);
}

TEST_F_TIMEOUT(race, list_auto_protect, 600)
{
	run_race(_metadata, false, true);
}

TEST_F_TIMEOUT(race, manual_protect, 600)
{
	run_race(_metadata, true, false);
}

/* ---- regressions: races that once crashed the kernel or lost a write ---- */

struct page0_writer {
	volatile char *page;
	atomic_int stop;
	atomic_ulong stores;
};

/* Store to page 0 every few microseconds: sometimes inside TRACK_START. */
static void *write_page0(void *p)
{
	struct page0_writer *w = p;

	while (!atomic_load(&w->stop)) {
		w->page[0]++;
		atomic_fetch_add(&w->stores, 1);
		for (volatile int spin = 0; spin < 2000; spin++)
			;
	}
	return NULL;
}

/*
 * Defect 3: a write racing a restart of tracking (TRACK_START on a tracking
 * region) was lost: it set its page bit while TRACK_START was between
 * zeroing the dirty words and zeroing the summary. The region is large and
 * sparse so that TRACK_START spends long between the two; page 0 is clean
 * (harvested) when it starts, so the writer's next store faults.
 */
TEST_F_TIMEOUT(race, restart_racing_a_writer, 600)
{
	const uint64_t npages = 1ULL << 20;	/* 4 GiB, nothing populated */
	int dev = dt_open(), fd, tries = 300, lost = 0;
	struct page0_writer w = { 0 };
	uint64_t bits[1], n;
	pthread_t th;
	char *map;

	ASSERT_LE(0, dev);
	fd = dt_region_create(dev, npages * PS);
	ASSERT_LE(0, fd);
	map = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	w.page = map;
	ASSERT_EQ(0, dt_track_start(fd, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, write_page0, &w));
	for (int i = 0; i < tries; i++) {
		unsigned long before;

		ASSERT_EQ(0, dt_harvest_bitmap(fd, 0, 64, bits, NULL, &n));
		ASSERT_EQ(0, dt_track_start(fd, 0));
		/* A store that completes after TRACK_START returned. */
		before = atomic_load(&w.stores);
		while (atomic_load(&w.stores) < before + 2)
			sched_yield();
		bits[0] = 0;
		ASSERT_EQ(0, dt_harvest_bitmap(fd, 0, 64, bits, NULL, &n));
		if (!(bits[0] & 1))
			lost++;
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	EXPECT_EQ(0, lost) TH_LOG("%d of %d restarts lost page 0's write", lost, tries);
	munmap(map, PS);
	close(fd);
	close(dev);
}

struct reopen_arg {
	atomic_int fd;
	atomic_int stop;
	unsigned long opened, refused;
};

static void *reopen_loop(void *p)
{
	struct reopen_arg *a = p;
	char path[64];

	while (!atomic_load(&a->stop)) {
		int fd = atomic_load(&a->fd), nfd;

		if (fd < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, O_RDWR);
		if (nfd >= 0) {
			a->opened++;
			close(nfd);
		} else {
			a->refused++;
		}
	}
	return NULL;
}

/*
 * Defect 2: a reopen through /proc racing the region's last close took a
 * reference on a region already being freed (refcount_t: addition on 0).
 */
TEST_F_TIMEOUT(race, reopen_racing_last_close, 600)
{
	struct reopen_arg a = { .fd = -1 };
	int dev = dt_open(), i;
	time_t t0;
	pthread_t th;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, pthread_create(&th, NULL, reopen_loop, &a));
	/* 20000 rounds, or a minute: the debug kernel on one vCPU is slow. */
	for (i = 0, t0 = time(NULL); i < 20000 && time(NULL) - t0 < 60; i++) {
		int fd = dt_region_create(dev, PS);

		ASSERT_LE(0, fd);
		atomic_store(&a.fd, fd);
		for (int spin = 0; spin < (i & 63); spin++)
			sched_yield();
		atomic_store(&a.fd, -1);
		close(fd);
	}
	atomic_store(&a.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%d closes, %lu reopens, %lu refused", i, a.opened, a.refused);
	EXPECT_LT(0, a.opened);
	close(dev);
}

struct fresh_reader {
	int fd;
	atomic_int stop;
	atomic_ulong bad, reads;
};

static void *read_page1(void *p)
{
	struct fresh_reader *fr = p;
	static char buf[PS];

	while (!atomic_load(&fr->stop)) {
		if (pread(fr->fd, buf, PS, PS) != PS)
			continue;
		atomic_fetch_add(&fr->reads, 1);
		for (size_t i = 0; i < PS; i++)
			if (buf[i] != 0 && buf[i] != 1) {
				atomic_fetch_add(&fr->bad, 1);
				break;
			}
	}
	return NULL;
}

/*
 * Defect 8: read(2) returned a page being created before it was zeroed
 * (visible with init_on_alloc=0, which the test VM boots with).
 */
TEST_F_TIMEOUT(race, read_never_sees_a_page_before_it_is_zeroed, 600)
{
	struct fresh_reader fr = { 0 };
	int dev = dt_open(), i;
	pthread_t th;
	char *map;

	ASSERT_LE(0, dev);
	fr.fd = dt_region_create(dev, 2 * PS);
	ASSERT_LE(0, fr.fd);
	map = mmap(NULL, 2 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fr.fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, pthread_create(&th, NULL, read_page1, &fr));
	for (i = 0; i < 20000; i++) {
		/* A hole, then a fault creates the page: zeroes, then 1s at most. */
		ASSERT_EQ(0, fallocate(fr.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PS, PS));
		map[PS + (i % PS)] = 1;
	}
	atomic_store(&fr.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%lu reads", (unsigned long)atomic_load(&fr.reads));
	EXPECT_EQ(0, atomic_load(&fr.bad));
	munmap(map, 2 * PS);
	close(fr.fd);
	close(dev);
}

TEST_HARNESS_MAIN
