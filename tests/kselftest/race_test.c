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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

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

TEST_HARNESS_MAIN
