// SPDX-License-Identifier: GPL-2.0
/* /dev/dirtytrack: the API handshake, region creation and argument checks. */
#include <sys/stat.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "dt_test.h"

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = dt_open();
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/dirtytrack: %s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST_F(dev, device_mode_0600)
{
	struct stat st;

	ASSERT_EQ(0, stat(DT_DEV_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 0777);
}

TEST_F(dev, api_handshake)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION };

	ASSERT_EQ(0, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
	EXPECT_EQ(DIRTYTRACK_API_VERSION, api.api);
	EXPECT_TRUE(api.features & DIRTYTRACK_FEAT_REGIONS);
	EXPECT_TRUE(api.features & DIRTYTRACK_FEAT_HARVEST_LIST);
	EXPECT_TRUE(api.features & DIRTYTRACK_FEAT_MANUAL_PROTECT);

	/* Asking for exactly what is supported succeeds. */
	ASSERT_EQ(0, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
}

TEST_F(dev, api_bad_version)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION + 1 };

	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
	EXPECT_EQ(DIRTYTRACK_API_VERSION, api.api);
	api.api = 0;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
}

TEST_F(dev, api_reserved_nonzero)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION, .reserved = 1 };

	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
}

TEST_F(dev, api_unknown_feature)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION, .features = 1ULL << 63 };

	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, &api));
	/* The answer still says what is supported. */
	EXPECT_TRUE(api.features & DIRTYTRACK_FEAT_REGIONS);
	EXPECT_FALSE(api.features & (1ULL << 63));
}

TEST_F(dev, api_bad_pointer)
{
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, NULL));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_API, (void *)8));
}

TEST_F(dev, unknown_command)
{
	char buf[64] = { 0 };

	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, _IOWR(DIRTYTRACK_IOC_MAGIC, 0x7f, buf), buf));
	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, _IO('T', 1), buf));
	/* Region commands are not device commands. */
	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, DIRTYTRACK_IOC_HARVEST, buf));
	EXPECT_EQ(-ENOTTY, dt_xioctl(self->fd, DIRTYTRACK_IOC_STATS, buf));
}

TEST_F(dev, create_region)
{
	int rfd = dt_region_create(self->fd, 16 * PS);
	struct stat st;

	ASSERT_LE(0, rfd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(rfd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, fstat(rfd, &st));
	EXPECT_EQ(16 * PS, st.st_size);
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(16 * PS, lseek(rfd, 0, SEEK_END));
	close(rfd);
}

TEST_F(dev, regions_have_own_inodes)
{
	int a = dt_region_create(self->fd, PS), b = dt_region_create(self->fd, PS);
	struct stat sa, sb;

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, fstat(a, &sa));
	ASSERT_EQ(0, fstat(b, &sb));
	EXPECT_NE(sa.st_ino, sb.st_ino);
	close(a);
	close(b);
}

TEST_F(dev, create_bad_size)
{
	EXPECT_EQ(-EINVAL, dt_region_create(self->fd, 0));
	EXPECT_EQ(-EINVAL, dt_region_create(self->fd, PS + 1));
	EXPECT_EQ(-EINVAL, dt_region_create(self->fd, 100));
	EXPECT_EQ(-EFBIG, dt_region_create(self->fd, 1ULL << 62));
	EXPECT_EQ(-EFBIG, dt_region_create(self->fd, UINT64_MAX & ~(PS - 1)));
}

TEST_F(dev, create_flags_and_reserved)
{
	struct dirtytrack_create c = { .size = PS, .flags = 1 };

	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CREATE_REGION, &c));
	c.flags = 0;
	c.reserved = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CREATE_REGION, &c));
	c.reserved = 0;
	c.reserved2[1] = 1;
	EXPECT_EQ(-EINVAL, dt_xioctl(self->fd, DIRTYTRACK_IOC_CREATE_REGION, &c));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->fd, DIRTYTRACK_IOC_CREATE_REGION, NULL));
}

TEST_F(dev, region_fd_rejects_device_commands)
{
	struct dirtytrack_api api = { .api = DIRTYTRACK_API_VERSION };
	struct dirtytrack_create c = { .size = PS };
	int rfd = dt_region_create(self->fd, PS);

	ASSERT_LE(0, rfd);
	EXPECT_EQ(-ENOTTY, dt_xioctl(rfd, DIRTYTRACK_IOC_API, &api));
	EXPECT_EQ(-ENOTTY, dt_xioctl(rfd, DIRTYTRACK_IOC_CREATE_REGION, &c));
	close(rfd);
}

TEST_HARNESS_MAIN
