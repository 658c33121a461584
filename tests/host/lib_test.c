// SPDX-License-Identifier: GPL-2.0
/* Host-side unit tests of libdirtytrack: no module needed. */
#include <fcntl.h>
#include <stdlib.h>

#include "kselftest_harness.h"
#include "libdirtytrack.h"

TEST(bitmap_bytes)
{
	EXPECT_EQ(0, dt_bitmap_bytes(0));
	EXPECT_EQ(8, dt_bitmap_bytes(1));
	EXPECT_EQ(8, dt_bitmap_bytes(64));
	EXPECT_EQ(16, dt_bitmap_bytes(65));
	EXPECT_EQ(32768, dt_bitmap_bytes(262144));	/* 1 GiB of 4 KiB pages */
}

TEST(bitmap_set_test_count)
{
	uint64_t map[3] = { 0 };
	uint64_t bits[] = { 0, 1, 63, 64, 127, 128, 191 }, i;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		dt_bitmap_set(map, bits[i]);
	for (i = 0; i < 192; i++) {
		bool want = false;

		for (uint64_t j = 0; j < sizeof(bits) / sizeof(bits[0]); j++)
			want |= bits[j] == i;
		ASSERT_EQ(want, dt_bitmap_test(map, i)) TH_LOG("bit %llu", (unsigned long long)i);
	}
	EXPECT_EQ(7, dt_bitmap_count(map, 192));
	/* Bits past nbits do not count. */
	EXPECT_EQ(5, dt_bitmap_count(map, 128));
	EXPECT_EQ(3, dt_bitmap_count(map, 64));
	EXPECT_EQ(2, dt_bitmap_count(map, 63));
	/* The layout is the harvest layout: bit i is bit i%64 of word i/64. */
	EXPECT_EQ(0x8000000000000003ULL, map[0]);
	EXPECT_EQ(0x8000000000000001ULL, map[1]);
}

TEST(bitmap_next)
{
	uint64_t map[4] = { 0 };

	EXPECT_EQ(256, dt_bitmap_next(map, 256, 0));
	dt_bitmap_set(map, 5);
	dt_bitmap_set(map, 200);
	EXPECT_EQ(5, dt_bitmap_next(map, 256, 0));
	EXPECT_EQ(5, dt_bitmap_next(map, 256, 5));
	EXPECT_EQ(200, dt_bitmap_next(map, 256, 6));
	EXPECT_EQ(256, dt_bitmap_next(map, 256, 201));
	/* A set bit at or beyond nbits is not returned. */
	EXPECT_EQ(150, dt_bitmap_next(map, 150, 6));
}

TEST(open_missing_device)
{
	setenv("DIRTYTRACK_DEV", "/nonexistent/dirtytrack", 1);
	EXPECT_EQ(-ENOENT, dt_open());
	unsetenv("DIRTYTRACK_DEV");
}

TEST(wrong_fd_gets_enotty)
{
	uint64_t map[1], have = 0;
	int fd = open("/dev/null", O_RDWR);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOTTY, dt_api(fd, 0, &have));
	EXPECT_EQ(-ENOTTY, dt_region_create(fd, 4096));
	EXPECT_EQ(-ENOTTY, dt_harvest_bitmap(fd, 0, 64, map, NULL, NULL));
	EXPECT_EQ(-ENOTTY, dt_track_start(fd, 0));
	close(fd);
	EXPECT_EQ(-EBADF, dt_track_stop(fd));
}

TEST_HARNESS_MAIN
