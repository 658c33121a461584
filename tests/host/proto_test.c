// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side tests of dt-migrate's control protocol (userspace/lib/proto.c):
 * framing, every rejection dt_msg_recv() documents, authentication and the
 * token file. No module needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "dt_proto.h"
#include "dt_wire.h"

FIXTURE(pair)
{
	int fd[2];
	struct dt_msg m;
};

FIXTURE_SETUP(pair)
{
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, self->fd));
	self->m.buf = malloc(DT_PROTO_MAX_PAYLOAD);
	ASSERT_NE(NULL, self->m.buf);
}

FIXTURE_TEARDOWN(pair)
{
	close(self->fd[0]);
	close(self->fd[1]);
	free(self->m.buf);
}

/* A raw frame with the given header fields and a correct or broken CRC. */
static void raw_frame(int fd, uint32_t magic, uint16_t type, uint16_t version, uint32_t len,
		      const void *payload, size_t plen, int bad_crc)
{
	struct dt_msg_hdr h = { .magic = magic, .type = type, .version = version, .len = len };

	h.crc = dt_crc32c(dt_crc32c(0, &h, 12), payload, plen) ^ (bad_crc ? 1 : 0);
	if (write(fd, &h, sizeof(h)) != sizeof(h) ||
	    (plen && write(fd, payload, plen) != (ssize_t)plen))
		abort();
}

TEST_F(pair, round_trip)
{
	struct dt_msg_round_ack a = { .round = 7, .records = 3, .total_records = 99, .bytes = 5 },
		b;

	ASSERT_EQ(0, dt_msg_send(self->fd[0], DT_MSG_ROUND_ACK, &a, sizeof(a)));
	ASSERT_EQ(0, dt_msg_send(self->fd[0], DT_MSG_VERIFIED, NULL, 0));
	ASSERT_EQ(0, dt_msg_recv(self->fd[1], &self->m, 1000));
	ASSERT_EQ(0, dt_msg_expect(&self->m, DT_MSG_ROUND_ACK, &b, sizeof(b)));
	EXPECT_EQ(0, memcmp(&a, &b, sizeof(a)));
	ASSERT_EQ(0, dt_msg_recv(self->fd[1], &self->m, 1000));
	EXPECT_EQ(DT_MSG_VERIFIED, self->m.hdr.type);
	EXPECT_EQ(0, self->m.hdr.len);
	/* The wrong type or size for what the caller expects. */
	EXPECT_EQ(-EPROTO, dt_msg_expect(&self->m, DT_MSG_COMMIT, NULL, 0));
	EXPECT_EQ(-EMSGSIZE, dt_msg_expect(&self->m, DT_MSG_VERIFIED, &b, sizeof(b)));
}

TEST_F(pair, bad_magic)
{
	char p[8] = "payload";

	raw_frame(self->fd[0], DT_PROTO_MAGIC ^ 1, DT_MSG_PING, DT_PROTO_VERSION, 8, p, 8, 0);
	EXPECT_EQ(-EPROTO, dt_msg_recv(self->fd[1], &self->m, 1000));
}

TEST_F(pair, bad_version)
{
	raw_frame(self->fd[0], DT_PROTO_MAGIC, DT_MSG_PING, DT_PROTO_VERSION - 1, 0, NULL, 0, 0);
	EXPECT_EQ(-EPROTONOSUPPORT, dt_msg_recv(self->fd[1], &self->m, 1000));
}

TEST_F(pair, too_long)
{
	raw_frame(self->fd[0], DT_PROTO_MAGIC, DT_MSG_META, DT_PROTO_VERSION, DT_PROTO_MAX_PAYLOAD + 1, NULL, 0,
		  0);
	EXPECT_EQ(-EMSGSIZE, dt_msg_recv(self->fd[1], &self->m, 1000));
	EXPECT_EQ(-EMSGSIZE, dt_msg_send(self->fd[0], DT_MSG_META, self->m.buf,
					 DT_PROTO_MAX_PAYLOAD + 1));
}

TEST_F(pair, bad_crc)
{
	char p[8] = "payload";

	raw_frame(self->fd[0], DT_PROTO_MAGIC, DT_MSG_META, DT_PROTO_VERSION, 8, p, 8, 1);
	EXPECT_EQ(-EBADMSG, dt_msg_recv(self->fd[1], &self->m, 1000));
}

TEST_F(pair, unknown_type)
{
	raw_frame(self->fd[0], DT_PROTO_MAGIC, DT_MSG_NTYPES, DT_PROTO_VERSION, 0, NULL, 0, 0);
	EXPECT_EQ(-EPROTO, dt_msg_recv(self->fd[1], &self->m, 1000));
}

TEST_F(pair, truncated_then_closed)
{
	char p[8] = "payload";

	raw_frame(self->fd[0], DT_PROTO_MAGIC, DT_MSG_META, DT_PROTO_VERSION, 16, p, 8, 0);
	close(self->fd[0]);
	self->fd[0] = open("/dev/null", O_RDONLY);
	EXPECT_EQ(-ECONNRESET, dt_msg_recv(self->fd[1], &self->m, 1000));
}

TEST_F(pair, silence_times_out)
{
	EXPECT_EQ(-ETIMEDOUT, dt_msg_recv(self->fd[1], &self->m, 300));
}

TEST_F(pair, stop_flag_interrupts)
{
	static volatile sig_atomic_t flag = 1;

	dt_proto_set_stop_flag(&flag);
	EXPECT_EQ(-EINTR, dt_msg_recv(self->fd[1], &self->m, -1));
	dt_proto_set_stop_flag(NULL);
}

TEST(mac)
{
	uint8_t t1[16] = "0123456789abcde", t2[16] = "0123456789abcdX";
	uint8_t a[DT_PROTO_MAC], b[DT_PROTO_MAC], c[DT_PROTO_MAC], d[DT_PROTO_MAC];

	ASSERT_EQ(0, dt_proto_mac(t1, 16, "l", "xy", 2, "z", 1, a));
	ASSERT_EQ(0, dt_proto_mac(t1, 16, "l", "xy", 2, "z", 1, b));
	ASSERT_EQ(0, dt_proto_mac(t2, 16, "l", "xy", 2, "z", 1, c));
	ASSERT_EQ(0, dt_proto_mac(t1, 16, "m", "xy", 2, "z", 1, d));
	EXPECT_EQ(0, dt_proto_mac_cmp(a, b));
	EXPECT_EQ(-EACCES, dt_proto_mac_cmp(a, c));	/* another token */
	EXPECT_EQ(-EACCES, dt_proto_mac_cmp(a, d));	/* another label */
	/* RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") */
	ASSERT_EQ(0, dt_proto_mac((const uint8_t *)"Jefe", 4, "what do ya want ",
				  "for nothing", 11, "?", 1, a));
	EXPECT_EQ(0x5b, a[0]);
	EXPECT_EQ(0xdc, a[1]);
	EXPECT_EQ(0x43, a[31]);
}

static int token_from(const char *text, uint8_t *tok, size_t *len)
{
	char path[] = "/tmp/dt-proto-test.XXXXXX";
	int fd = mkstemp(path), ret;

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		return -EIO;
	close(fd);
	ret = dt_proto_token_read(path, tok, len);
	unlink(path);
	return ret;
}

TEST(token_file)
{
	uint8_t tok[DT_PROTO_MAX_TOKEN];
	size_t len = 0;

	ASSERT_EQ(0, token_from("00112233445566778899AABBCCDDEEFF\n", tok, &len));
	EXPECT_EQ(16, len);
	EXPECT_EQ(0x00, tok[0]);
	EXPECT_EQ(0xff, tok[15]);
	EXPECT_EQ(-EINVAL, token_from("0011223344556677", tok, &len));	/* 8 bytes: too short */
	EXPECT_EQ(-EINVAL, token_from("00112233445566778899AABBCCDDEEFG", tok, &len));
	EXPECT_EQ(-EINVAL, token_from("00112233445566778899AABBCCDDEEF", tok, &len));	/* odd */
	EXPECT_EQ(-ENOENT, dt_proto_token_read("/nonexistent/token", tok, &len));
}

TEST(stage_names)
{
	EXPECT_STREQ("pre-migration", dt_stage_name(0));
	EXPECT_STREQ("activation", dt_stage_name(5));
	EXPECT_STREQ("?", dt_stage_name(6));
	EXPECT_STREQ("COMMIT_REQ", dt_msg_name(DT_MSG_COMMIT_REQ));
}

TEST_HARNESS_MAIN
