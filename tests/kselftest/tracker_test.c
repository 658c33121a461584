// SPDX-License-Identifier: GPL-2.0
/*
 * The library's tracker backends (dt_tracker.h) on the running kernel: each
 * reports exactly the pages written, nothing for reads, and (if atomic)
 * never loses a write made while it harvests.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"
#include "dt_tracker.h"

#define NPAGES 512

FIXTURE(trk) {
	struct dt_tracker *t;
	char *mem;
	uint64_t *map;
};

FIXTURE_VARIANT(trk) {
	enum dt_tracker_kind kind;
};

FIXTURE_VARIANT_ADD(trk, dirtytrack) { .kind = DT_TRACKER_DIRTYTRACK };
FIXTURE_VARIANT_ADD(trk, uffd_wp) { .kind = DT_TRACKER_UFFD_WP };
FIXTURE_VARIANT_ADD(trk, soft_dirty) { .kind = DT_TRACKER_SOFT_DIRTY };
FIXTURE_VARIANT_ADD(trk, mprotect) { .kind = DT_TRACKER_MPROTECT };

FIXTURE_SETUP(trk)
{
	char why[160];
	int err;

	/* Debian's 6.12 has every backend: unavailable is a failure here. */
	ASSERT_EQ(0, dt_tracker_probe(variant->kind, why, sizeof(why))) TH_LOG("%s", why);
	self->t = dt_tracker_create(variant->kind, NPAGES * PS, &err);
	ASSERT_NE(NULL, self->t) TH_LOG("create: %s", strerror(-err));
	self->mem = dt_tracker_mem(self->t);
	self->map = calloc(1, dt_bitmap_bytes(NPAGES));
	ASSERT_NE(NULL, self->map);
	for (int p = 0; p < NPAGES; p++)
		self->mem[p * PS] = 1;		/* populated */
	ASSERT_EQ(0, dt_tracker_start(self->t));
}

FIXTURE_TEARDOWN(trk)
{
	dt_tracker_destroy(self->t);
	free(self->map);
}

/*
 * 5807 first writes, each re-protected by a harvest. The mprotect tracker
 * pays a SIGSEGV and a VMA split for each write and a VMA merge for each
 * re-protection: under TCG on the debug kernel (KASAN, lockdep, slub_debug)
 * that is about 6 ms a page, well past the default 30 s. Allow minutes.
 */
TEST_F_TIMEOUT(trk, exactly_the_pages_written, 300)
{
	uint64_t n, want[NPAGES / 64] = { 0 };
	volatile char sink;

	EXPECT_EQ(NPAGES, dt_tracker_npages(self->t));
	EXPECT_EQ(variant->kind == DT_TRACKER_DIRTYTRACK, dt_tracker_fd(self->t) >= 0);
	ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
	EXPECT_EQ(0, n);			/* start protected everything */
	for (int i = 0; i < 100; i++) {
		/* Reads never dirty; writes do, once per page. */
		for (int p = 0; p < NPAGES; p += 3)
			sink = self->mem[p * PS + 5];
		memset(want, 0, sizeof(want));
		for (int p = i % 7; p < NPAGES; p += 5 + i % 11) {
			self->mem[p * PS + i] = (char)i;
			self->mem[p * PS + 100] = (char)i;
			dt_bitmap_set(want, p);
		}
		ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
		ASSERT_EQ(0, memcmp(want, self->map, sizeof(want))) TH_LOG("round %d", i);
		EXPECT_EQ(dt_bitmap_count(want, NPAGES), n);
		/* Clean after a harvest. */
		ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
		ASSERT_EQ(0, n) TH_LOG("round %d", i);
	}
	(void)sink;
}

/* Runs of written pages, one page to all of them, between clean gaps. */
TEST_F_TIMEOUT(trk, exactly_the_runs_written, 300)
{
	uint64_t n, want[NPAGES / 64];

	ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
	for (int i = 0; i < 40; i++) {
		int p = i % 13, len;

		memset(want, 0, sizeof(want));
		while (p < NPAGES) {
			len = i % 5 ? 1 + (i * 7 + p) % 97 : NPAGES;
			for (; len && p < NPAGES; len--, p++) {
				self->mem[p * PS + i] = (char)i;
				dt_bitmap_set(want, p);
			}
			p += 1 + (i + p) % 5;
		}
		ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
		ASSERT_EQ(0, memcmp(want, self->map, sizeof(want))) TH_LOG("round %d", i);
		EXPECT_EQ(dt_bitmap_count(want, NPAGES), n);
		ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
		ASSERT_EQ(0, n) TH_LOG("round %d", i);
	}
}

struct writer {
	char *mem;
	atomic_bool stop;
	atomic_ulong writes;
};

/* Every write stores a new value: a lost report leaves a stale copy. */
static void *writer(void *p)
{
	struct writer *w = p;
	uint64_t x = 88172645463325252ULL;
	unsigned long v = 0;

	while (!atomic_load(&w->stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v++;
		((volatile unsigned long *)(w->mem + (x % NPAGES) * PS))[x % 512] = v;
		atomic_store(&w->writes, v);
	}
	return NULL;
}

TEST_F_TIMEOUT(trk, no_write_lost_while_harvesting, 300)
{
	char *copy = malloc(NPAGES * PS);
	struct writer w = { .mem = self->mem };
	pthread_t th;
	int rounds = 0, progressed = 0, stale;

	if (!dt_tracker_atomic(variant->kind))
		SKIP(return, "harvest is not atomic against writers (stop them first)");
	ASSERT_NE(NULL, copy);
	memcpy(copy, self->mem, NPAGES * PS);
	ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, NULL));
	ASSERT_EQ(0, pthread_create(&th, NULL, writer, &w));
	/*
	 * Pre-copy: harvest, then copy what was reported, while writes go on.
	 * Each round first lets the writer in (at most 1 s): a harvest loop
	 * that retakes a tracker's lock at once (mprotect's) can starve a
	 * writer waiting for it in its fault, and a race that never happens
	 * tests nothing.
	 */
	for (rounds = 0; rounds < 200 || atomic_load(&w.writes) < 20000; rounds++) {
		unsigned long before = atomic_load(&w.writes);
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			sched_yield();
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while (atomic_load(&w.writes) == before && t.tv_sec - t0.tv_sec < 2);
		if (atomic_load(&w.writes) != before)
			progressed++;
		ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, NULL));
		for (uint64_t p = dt_bitmap_next(self->map, NPAGES, 0); p < NPAGES;
		     p = dt_bitmap_next(self->map, NPAGES, p + 1))
			memcpy(copy + p * PS, self->mem + p * PS, PS);
		if (rounds > 5000)
			break;
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	/* Stop-and-copy: the last harvest, then the copy must be the memory. */
	ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, NULL));
	for (uint64_t p = dt_bitmap_next(self->map, NPAGES, 0); p < NPAGES;
	     p = dt_bitmap_next(self->map, NPAGES, p + 1))
		memcpy(copy + p * PS, self->mem + p * PS, PS);
	for (stale = 0; stale < NPAGES; stale++)
		if (memcmp(copy + stale * PS, self->mem + stale * PS, PS))
			break;
	ASSERT_EQ(NPAGES, stale) TH_LOG("page %d: a write was not reported (%lu writes, %d rounds)",
					 stale, atomic_load(&w.writes), rounds);
	/* The writer raced nearly every harvest (a few scheduler hiccups aside). */
	EXPECT_LE(rounds * 9 / 10, progressed) TH_LOG("the writer wrote between only %d of %d harvests",
						       progressed, rounds);
	TH_LOG("%lu writes over %d harvests", atomic_load(&w.writes), rounds);
	free(copy);
}

TEST_F(trk, stop_ends_tracking)
{
	uint64_t n;

	ASSERT_EQ(0, dt_tracker_stop(self->t));
	EXPECT_EQ(-EINVAL, dt_tracker_harvest(self->t, self->map, &n));
	self->mem[7 * PS] = 3;		/* writable again, and not a fault */
	ASSERT_EQ(0, dt_tracker_start(self->t));
	EXPECT_EQ(-EBUSY, dt_tracker_start(self->t));
	self->mem[9 * PS] = 3;
	ASSERT_EQ(0, dt_tracker_harvest(self->t, self->map, &n));
	EXPECT_EQ(1, n);
	EXPECT_TRUE(dt_bitmap_test(self->map, 9));
}

TEST(bad_arguments)
{
	char why[160], *mem = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err;

	EXPECT_EQ(NULL, dt_tracker_create(DT_TRACKER_NKINDS, PS, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(NULL, dt_tracker_create(DT_TRACKER_UFFD_WP, PS + 1, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(NULL, dt_tracker_create(DT_TRACKER_MPROTECT, 0, &err));
	EXPECT_EQ(-EINVAL, err);
	/* A region's memory is the module's: attach is for anonymous memory. */
	EXPECT_EQ(NULL, dt_tracker_attach(DT_TRACKER_DIRTYTRACK, mem, 4 * PS, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(NULL, dt_tracker_attach(DT_TRACKER_SOFT_DIRTY, mem + 1, 4 * PS, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(-EINVAL, dt_tracker_probe(DT_TRACKER_NKINDS, why, sizeof(why)));
	EXPECT_EQ(DT_TRACKER_UFFD_WP, dt_tracker_kind("uffd-wp"));
	EXPECT_EQ(-EINVAL, dt_tracker_kind("nope"));
	EXPECT_STREQ("soft-dirty", dt_tracker_name(DT_TRACKER_SOFT_DIRTY));
	munmap(mem, 4 * PS);
}

TEST(attach_to_anonymous_memory)
{
	char *mem = mmap(NULL, 64 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t map[1], n;
	int err;

	ASSERT_NE(MAP_FAILED, mem);
	memset(mem, 1, 64 * PS);
	for (int k = DT_TRACKER_UFFD_WP; k < DT_TRACKER_NKINDS; k++) {
		struct dt_tracker *t = dt_tracker_attach(k, mem, 64 * PS, &err);

		ASSERT_NE(NULL, t) TH_LOG("%s: %s", dt_tracker_name(k), strerror(-err));
		EXPECT_EQ(mem, dt_tracker_mem(t));
		ASSERT_EQ(0, dt_tracker_start(t));
		mem[3 * PS] = 2;
		mem[63 * PS] = 2;
		ASSERT_EQ(0, dt_tracker_harvest(t, map, &n));
		EXPECT_EQ(2, n) TH_LOG("%s", dt_tracker_name(k));
		EXPECT_EQ((1ULL << 3) | (1ULL << 63), map[0]) TH_LOG("%s", dt_tracker_name(k));
		dt_tracker_destroy(t);
		/* Not unmapped: the caller's memory stays, writable. */
		mem[5 * PS] = 4;
	}
	munmap(mem, 64 * PS);
}

TEST_HARNESS_MAIN
