// SPDX-License-Identifier: GPL-2.0
/*
 * Writes that land through a short-term pin: an O_DIRECT read from a slow
 * block device into a region is in flight across harvests. The pin's own
 * write fault reports each page once; the device writes later, without a
 * fault. Harvests must keep reporting a pinned page until the pin is gone,
 * so that the round after the I/O completes carries its data: the shadow a
 * migration would build from the reported pages must end equal to the
 * region, and to what the device holds.
 *
 * The slow device is null_blk (memory backed, bandwidth-throttled so that
 * the read takes seconds), made through configfs. QEMU does the same with
 * cache=none disk reads into guest RAM during pre-copy.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define NPG 480
#define NULLB "/sys/kernel/config/nullb/dtslow"

static int put(const char *attr, const char *val)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), NULLB "/%s", attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ret = write(fd, val, strlen(val)) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/*
 * A memory-backed null_blk of 4 MiB that moves @mbps MB/s. A device made
 * through configfs is named after its directory: /dev/dtslow.
 */
static int slow_disk(const char *mbps)
{
	if (access("/sys/kernel/config/nullb", F_OK))
		mount("none", "/sys/kernel/config", "configfs", 0, NULL);
	rmdir(NULLB);
	if (mkdir(NULLB, 0755))
		return -errno;
	/*
	 * The throttle grants mbps/50 MB every 20 ms and a request larger than
	 * that never passes: one page per request.
	 */
	if (put("memory_backed", "1") || put("blocksize", "4096") || put("size", "4") ||
	    put("max_sectors", "8") || put("mbps", mbps) || put("power", "1"))
		return -EIO;
	for (int i = 0; i < 100 && access("/dev/dtslow", F_OK); i++)
		usleep(20000);		/* devtmpfs adds the node */
	return 0;
}

struct dio {
	int fd;
	char *dst;
	ssize_t ret;
	atomic_int done;
};

static void *dio_read(void *p)
{
	struct dio *d = p;

	d->ret = pread(d->fd, d->dst, NPG * PS, 0);
	atomic_store(&d->done, 1);
	return NULL;
}

/* Harvest and copy every reported page into @shadow; pages copied. */
static uint64_t round_copy(int rfd, char *map, char *shadow)
{
	uint64_t bits[(NPG + 63) / 64] = { 0 }, n = 0;

	if (dt_harvest_bitmap(rfd, 0, NPG, bits, NULL, &n))
		return ~0ULL;
	for (uint64_t p = 0; p < NPG; p++)
		if (bits[p / 64] >> (p % 64) & 1)
			memcpy(shadow + p * PS, map + p * PS, PS);
	return n;
}

FIXTURE(dio) {
	int unused;
};

FIXTURE_SETUP(dio)
{
}

FIXTURE_TEARDOWN(dio)
{
}

/* TCG and the throttle make this take seconds: not the default 30 s. */
TEST_F_TIMEOUT(dio, odirect_read_across_harvests, 180)
{
	const char *dev = "/dev/dtslow";
	char *pattern, *map, *shadow;
	struct dio d = { 0 };
	int devfd, dtdev, rfd, rounds = 0;
	uint64_t p, copied = 0, n;
	pthread_t th;

	ASSERT_EQ(0, slow_disk("1")) TH_LOG("null_blk through configfs");
	devfd = open(dev, O_RDWR | O_DIRECT);
	ASSERT_LE(0, devfd) TH_LOG("%s: %s", dev, strerror(errno));
	/* The device's contents: every byte says which page it belongs to. */
	ASSERT_EQ(0, posix_memalign((void **)&pattern, PS, NPG * PS));
	for (p = 0; p < NPG; p++)
		memset(pattern + p * PS, (int)(p * 7 + 1), PS);
	ASSERT_EQ(NPG * PS, pwrite(devfd, pattern, NPG * PS, 0));

	dtdev = dt_open();
	ASSERT_LE(0, dtdev);
	rfd = dt_region_create(dtdev, NPG * PS);
	ASSERT_LE(0, rfd);
	map = mmap(NULL, NPG * PS, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	ASSERT_NE(MAP_FAILED, map);
	shadow = calloc(NPG, PS);
	ASSERT_NE(NULL, shadow);
	memset(map, 0, NPG * PS);
	ASSERT_EQ(0, dt_track_start(rfd, 0));

	/* Pre-copy rounds while the read is in flight (about 2 s at 1 MB/s). */
	d.fd = devfd;
	d.dst = map;
	ASSERT_EQ(0, pthread_create(&th, NULL, dio_read, &d));
	while (!atomic_load(&d.done)) {
		n = round_copy(rfd, map, shadow);
		ASSERT_NE(~0ULL, n);
		copied += n;
		rounds++;
		usleep(20000);
	}
	pthread_join(th, NULL);
	ASSERT_EQ(NPG * PS, d.ret) TH_LOG("O_DIRECT read: %s", strerror(errno));
	/* Stop-and-copy, the I/O quiesced. */
	n = round_copy(rfd, map, shadow);
	ASSERT_NE(~0ULL, n);
	copied += n;
	TH_LOG("%d rounds during the read, %llu pages copied", rounds,
	       (unsigned long long)copied);
	EXPECT_LT(1, rounds);
	ASSERT_EQ(0, memcmp(map, pattern, NPG * PS)) TH_LOG("the read itself went wrong");
	for (p = 0; p < NPG; p++)
		if (memcmp(shadow + p * PS, map + p * PS, PS))
			break;
	EXPECT_EQ(NPG, p) TH_LOG("page %llu lost the device's write",
				 (unsigned long long)p);
	for (n = 0; p < NPG; p++)
		n += !!memcmp(shadow + p * PS, map + p * PS, PS);
	EXPECT_EQ(0, n) TH_LOG("%llu pages lost", (unsigned long long)n);

	munmap(map, NPG * PS);
	free(shadow);
	free(pattern);
	close(rfd);
	close(dtdev);
	close(devfd);
	put("power", "0");
	rmdir(NULLB);
}

TEST_HARNESS_MAIN
