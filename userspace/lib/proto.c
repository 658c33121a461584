// SPDX-License-Identifier: GPL-2.0
/*
 * dt-migrate's control protocol: framing, checksums and authentication.
 * See dt_proto.h and Documentation/dirtytrack.rst, "Migration protocol".
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dt_proto.h"
#include "dt_wire.h"

_Static_assert(sizeof(struct dt_msg_hdr) == 16, "frame header is 16 bytes");
/* The sizes Documentation/dirtytrack.rst, "Migration protocol", gives. */
_Static_assert(sizeof(struct dt_msg_challenge) == 40, "CHALLENGE is 40 bytes");
_Static_assert(sizeof(struct dt_msg_hello) == 144, "HELLO is 144 bytes");
_Static_assert(sizeof(struct dt_msg_welcome) == 56, "WELCOME is 56 bytes");
_Static_assert(sizeof(struct dt_msg_refuse) == 208, "REFUSE is 208 bytes");
_Static_assert(sizeof(struct dt_msg_reserve) == 16, "RESERVE is 16 bytes");
_Static_assert(sizeof(struct dt_msg_attach) == 48, "ATTACH is 48 bytes");
_Static_assert(sizeof(struct dt_msg_round_ack) == 32, "ROUND_ACK is 32 bytes");
_Static_assert(sizeof(struct dt_msg_commit_req) == 32, "COMMIT_REQ is 32 bytes");
_Static_assert(sizeof(struct dt_msg_activated) == 40, "ACTIVATED is 40 bytes");
_Static_assert(sizeof(struct dt_msg_ping) == 24, "PING is 24 bytes");

#define HDR_CRC_LEN	offsetof(struct dt_msg_hdr, crc)

static const char *const stage_names[] = {
	"pre-migration", "reservation", "iterative pre-copy", "stop-and-copy",
	"commitment", "activation",
};

static const char *const msg_names[DT_MSG_NTYPES] = {
	[DT_MSG_CHALLENGE] = "CHALLENGE", [DT_MSG_HELLO] = "HELLO",
	[DT_MSG_WELCOME] = "WELCOME", [DT_MSG_REFUSE] = "REFUSE",
	[DT_MSG_RESERVE] = "RESERVE", [DT_MSG_RESERVED] = "RESERVED",
	[DT_MSG_ATTACH] = "ATTACH", [DT_MSG_ROUND_ACK] = "ROUND_ACK",
	[DT_MSG_META] = "META", [DT_MSG_COMMIT_REQ] = "COMMIT_REQ",
	[DT_MSG_VERIFIED] = "VERIFIED", [DT_MSG_COMMIT] = "COMMIT",
	[DT_MSG_ACTIVATED] = "ACTIVATED", [DT_MSG_PING] = "PING",
	[DT_MSG_PONG] = "PONG",
	[DT_MSG_PAUSE] = "PAUSE",
	[DT_MSG_RESUME] = "RESUME",
	[DT_MSG_REJOIN] = "REJOIN",
	[DT_MSG_REJOINED] = "REJOINED",
};

const char *dt_stage_name(int stage)
{
	if (stage < 0 || stage >= (int)(sizeof(stage_names) / sizeof(stage_names[0])))
		return "?";
	return stage_names[stage];
}

const char *dt_msg_name(int type)
{
	if (type <= 0 || type >= DT_MSG_NTYPES)
		return "unknown message";
	return msg_names[type];
}

static uint32_t msg_crc(const struct dt_msg_hdr *h, const void *payload)
{
	return dt_crc32c(dt_crc32c(0, h, HDR_CRC_LEN), payload, h->len);
}

static volatile sig_atomic_t *stop_flag;

void dt_proto_set_stop_flag(volatile sig_atomic_t *flag)
{
	stop_flag = flag;
}

int dt_proto_sendv(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	while (mh.msg_iovlen) {
		ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR && !(stop_flag && *stop_flag))
				continue;
			return -errno;
		}
		while (mh.msg_iovlen && (size_t)k >= mh.msg_iov->iov_len) {
			k -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + k;
			mh.msg_iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int dt_msg_send(int fd, int type, const void *payload, uint32_t len)
{
	struct dt_msg_hdr h = {
		.magic = DT_PROTO_MAGIC,
		.type = (uint16_t)type,
		.version = DT_PROTO_VERSION,
		.len = len,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};

	if (len > DT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	h.crc = msg_crc(&h, payload);
	return dt_proto_sendv(fd, iov, len ? 2 : 1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read exactly len bytes by the deadline (-1: none). Waits in steps of at
 * most 200 ms, so that the stop flag is seen even when its signal landed
 * just before poll(): -EINTR.
 */
static int read_full(int fd, void *buf, size_t len, int64_t deadline)
{
	char *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = deadline < 0 ? 200 : (int)(deadline - now_ms());
		ssize_t n;

		if (stop_flag && *stop_flag)
			return -EINTR;
		if (deadline >= 0 && wait <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, wait < 200 ? wait : 200);
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int dt_msg_recv(int fd, struct dt_msg *m, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int ret;

	ret = read_full(fd, &m->hdr, sizeof(m->hdr), deadline);
	if (ret)
		return ret;
	if (m->hdr.magic != DT_PROTO_MAGIC)
		return -EPROTO;
	if (m->hdr.version != DT_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (m->hdr.len > DT_PROTO_MAX_PAYLOAD)
		return -EMSGSIZE;
	ret = read_full(fd, m->buf, m->hdr.len, deadline);
	if (ret)
		return ret;
	if (msg_crc(&m->hdr, m->buf) != m->hdr.crc)
		return -EBADMSG;
	if (m->hdr.type == 0 || m->hdr.type >= DT_MSG_NTYPES)
		return -EPROTO;
	return 0;
}

int dt_msg_expect(const struct dt_msg *m, int type, void *out, size_t want)
{
	if (m->hdr.type != type)
		return -EPROTO;
	if (m->hdr.len != want)
		return -EMSGSIZE;
	memcpy(out, m->buf, want);
	return 0;
}

int dt_proto_mac(const uint8_t *token, size_t token_len, const char *label,
		 const void *a, size_t alen, const void *b, size_t blen,
		 uint8_t mac[DT_PROTO_MAC])
{
	unsigned char buf[256];
	size_t llen = strlen(label);
	unsigned int outlen = 0;

	if (llen + alen + blen > sizeof(buf))
		return -EINVAL;
	memcpy(buf, label, llen);
	memcpy(buf + llen, a, alen);
	memcpy(buf + llen + alen, b, blen);
	if (!HMAC(EVP_sha256(), token, (int)token_len, buf, llen + alen + blen, mac, &outlen) ||
	    outlen != DT_PROTO_MAC)
		return -EIO;
	return 0;
}

int dt_proto_mac_cmp(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, DT_PROTO_MAC) ? -EACCES : 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int dt_proto_token_read(const char *path, uint8_t *token, size_t *len)
{
	char text[2 * DT_PROTO_MAX_TOKEN + 8];
	size_t n, i;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	if (n < 32 || n % 2 || n / 2 > DT_PROTO_MAX_TOKEN)
		return -EINVAL;	/* at least 16 bytes, in hex */
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		token[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}
