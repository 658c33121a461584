// SPDX-License-Identifier: GPL-2.0
/*
 * STREAM and RECEIVE between two regions over loopback TCP: full and
 * incremental rounds, zero pages, crafted bad streams, broken peers,
 * signals, budgets and argument checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "kselftest_harness.h"
#include "dt_test.h"
#include "dt_wire.h"

#define NP 256

FIXTURE(xfer) {
	int dev, src, dst, tx, rx;
	char *smap, *dmap;
};

static void tcp_pair(struct __test_metadata *_metadata, int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 1));
	ASSERT_EQ(0, getsockname(l, (struct sockaddr *)&a, &len));
	*tx = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, *tx);
	ASSERT_EQ(0, connect(*tx, (struct sockaddr *)&a, sizeof(a)));
	*rx = accept(l, NULL, NULL);
	ASSERT_LE(0, *rx);
	close(l);
}

FIXTURE_SETUP(xfer)
{
	self->dev = dt_open();
	ASSERT_LE(0, self->dev);
	self->src = dt_region_create(self->dev, NP * PS);
	self->dst = dt_region_create(self->dev, NP * PS);
	ASSERT_LE(0, self->src);
	ASSERT_LE(0, self->dst);
	self->smap = mmap(NULL, NP * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->src, 0);
	self->dmap = mmap(NULL, NP * PS, PROT_READ | PROT_WRITE, MAP_SHARED, self->dst, 0);
	ASSERT_NE(MAP_FAILED, self->smap);
	ASSERT_NE(MAP_FAILED, self->dmap);
	tcp_pair(_metadata, &self->tx, &self->rx);
}

FIXTURE_TEARDOWN(xfer)
{
	close(self->tx);
	close(self->rx);
	munmap(self->smap, NP * PS);
	munmap(self->dmap, NP * PS);
	close(self->src);
	close(self->dst);
	close(self->dev);
}

struct rx_job {
	int dst, sock;
	uint32_t flags;
	int ret;
	struct dirtytrack_receive r;
	pthread_t th;
};

static void *rx_thread(void *p)
{
	struct rx_job *j = p;

	j->r = (struct dirtytrack_receive){ .sockfd = j->sock, .flags = j->flags };
	j->ret = dt_receive(j->dst, &j->r);
	return NULL;
}

static void rx_start(struct rx_job *j, int dst, int sock, uint32_t flags)
{
	*j = (struct rx_job){ .dst = dst, .sock = sock, .flags = flags };
	pthread_create(&j->th, NULL, rx_thread, j);
}

/* One round: stream with @flags, receive up to its marker. */
static int round_trip(FIXTURE_DATA(xfer) *self, uint32_t flags, uint64_t round,
		      struct dirtytrack_stream *out, struct rx_job *rj)
{
	struct dirtytrack_stream s = {
		.sockfd = self->tx, .flags = flags | DIRTYTRACK_STREAM_END_ROUND,
		.first_page = 0, .npages = NP, .round = round,
	};
	int ret;

	rx_start(rj, self->dst, self->rx,
		 DIRTYTRACK_RECV_ROUND | ((flags & DIRTYTRACK_STREAM_HEADER) ? DIRTYTRACK_RECV_RESET : 0));
	ret = dt_stream(self->src, &s);
	pthread_join(rj->th, NULL);
	if (out)
		*out = s;
	return ret;
}

/* First page that differs between the regions, or NP. */
static int first_diff(FIXTURE_DATA(xfer) *self)
{
	int p;

	for (p = 0; p < NP; p++)
		if (memcmp(self->smap + p * PS, self->dmap + p * PS, PS))
			return p;
	return NP;
}

static void scribble(char *map, unsigned int seed, int n)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		map[(seed >> 8) % (NP * PS)] = (char)seed;
	}
}

TEST_F(xfer, full_then_incremental_rounds)
{
	struct dirtytrack_stream s;
	struct rx_job rj;
	uint64_t r;

	for (int p = 0; p < NP; p += 3)		/* every third page: data; others holes */
		memset(self->smap + p * PS, p + 1, PS);
	ASSERT_EQ(0, dt_track_start(self->src, 0));
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER,
				0, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(NP, s.records);
	EXPECT_EQ(1, s.done);
	EXPECT_EQ(NP, rj.r.records);
	EXPECT_EQ(1, rj.r.rounds);
	EXPECT_EQ(0, rj.r.last_round);
	EXPECT_EQ(NP, rj.r.last_count);
	ASSERT_EQ(NP, first_diff(self));
	for (r = 1; r <= 5; r++) {
		scribble(self->smap, r, 40);
		ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_HARVEST, r, &s, &rj));
		ASSERT_EQ(0, rj.ret);
		EXPECT_LE(1, s.records);
		EXPECT_GE(40, s.records);
		EXPECT_EQ(s.records, rj.r.last_count);
		EXPECT_EQ(r, rj.r.last_round);
		ASSERT_EQ(NP, first_diff(self)) TH_LOG("round %llu", (unsigned long long)r);
	}
	/* Nothing written: an empty round. */
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_HARVEST, 6, &s, &rj));
	EXPECT_EQ(0, s.records);
	EXPECT_EQ(0, rj.r.last_count);
}

struct writer {
	char *map;
	atomic_int stop;
	unsigned long writes;
};

static void *writer_thread(void *p)
{
	struct writer *w = p;
	unsigned int seed = 7;

	while (!atomic_load(&w->stop)) {
		seed = seed * 1103515245 + 12345;
		((volatile uint64_t *)w->map)[(seed >> 4) % (NP * PS / 8)] = seed;
		w->writes++;
	}
	return NULL;
}

TEST_F_TIMEOUT(xfer, rounds_while_writing, 300)
{
	struct writer w = { .map = self->smap };
	struct dirtytrack_stream s;
	struct rx_job rj;
	pthread_t th;
	uint64_t r;

	ASSERT_EQ(0, dt_track_start(self->src, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, writer_thread, &w));
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER,
				0, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	for (r = 1; r < 20; r++) {
		ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_HARVEST, r, &s, &rj));
		ASSERT_EQ(0, rj.ret) TH_LOG("round %llu: %s", (unsigned long long)r, strerror(-rj.ret));
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	/* Stop-and-copy. */
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_HARVEST, r, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	TH_LOG("%lu writes during 20 rounds", w.writes);
	ASSERT_EQ(NP, first_diff(self));
}

TEST_F(xfer, zero_and_punched_pages)
{
	struct dirtytrack_stream s;
	struct rx_job rj;

	memset(self->dmap, 0x5a, NP * PS);		/* the destination had junk */
	memset(self->smap + 5 * PS, 1, PS);
	ASSERT_EQ(0, fallocate(self->src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * PS, PS));
	memset(self->smap + 9 * PS, 2, PS);
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER,
				0, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	ASSERT_EQ(NP, first_diff(self));
	EXPECT_EQ(0, self->dmap[5 * PS]);
	EXPECT_EQ(2, self->dmap[9 * PS]);
	/* Only pages with data cost a payload: 254 zero records, 2 pages... */
	EXPECT_EQ(64 + NP * 32 + 1 * PS + 32, s.bytes);
}

TEST_F(xfer, caller_bitmap_and_list)
{
	uint64_t map[NP / 64] = { 0 }, list[3] = { 200, 3, 100 };
	struct dirtytrack_stream s = { .sockfd = self->tx };
	struct rx_job rj;

	for (int p = 0; p < NP; p++)
		self->smap[p * PS] = (char)(p + 1);
	map[0] = 1ULL << 10;
	map[3] = 1ULL << 63;				/* page 255 */
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	s = (struct dirtytrack_stream){ .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_BITMAP | DIRTYTRACK_STREAM_HEADER,
		.pages = (uintptr_t)map, .pages_size = sizeof(map) };
	ASSERT_EQ(0, dt_stream(self->src, &s));
	EXPECT_EQ(2, s.records);
	s = (struct dirtytrack_stream){ .sockfd = self->tx,
		.flags = DIRTYTRACK_STREAM_SRC_LIST | DIRTYTRACK_STREAM_END_ROUND,
		.pages = (uintptr_t)list, .pages_size = sizeof(list) };
	ASSERT_EQ(0, dt_stream(self->src, &s));
	EXPECT_EQ(3, s.records);
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(5, rj.r.records);
	EXPECT_EQ(5, rj.r.last_count);
	for (int p = 0; p < NP; p++) {
		bool sent = p == 10 || p == 255 || p == 200 || p == 3 || p == 100;

		ASSERT_EQ(sent ? (char)(p + 1) : 0, self->dmap[p * PS]) TH_LOG("page %d", p);
	}
}

TEST_F(xfer, budget_of_one_page)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND,
		.budget = 64 + 32 + PS };
	struct rx_job rj;
	int calls = 0;

	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p, PS);
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	do {
		ASSERT_EQ(0, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
		ASSERT_LE(s.bytes, s.budget);
		if (!s.done)
			ASSERT_EQ(1, s.records);
		s.flags &= ~DIRTYTRACK_STREAM_HEADER;
		s.budget = 32 + PS;
		calls++;
	} while (!s.done);
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(NP + 1, calls);	/* one page a call, then the marker alone */
	ASSERT_EQ(NP, first_diff(self));
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(xfer, signal_and_nonblocking_resume)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	int small = 16384, ret;
	struct rx_job rj;

	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p ^ 0x33, PS);
	setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	/* Nobody reads: a blocking send stops at the alarm, with progress. */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarm(1);
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	alarm(0);
	EXPECT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	EXPECT_EQ(0, s.done);
	EXPECT_LT(0, s.bytes);
	/* Non-blocking: EAGAIN or a little more progress, never a loss. */
	ASSERT_EQ(0, fcntl(self->tx, F_SETFL, O_NONBLOCK));
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	EXPECT_TRUE(ret == 0 || ret == -EAGAIN) TH_LOG("nonblocking stream: %d", ret);
	/* The region's pages in flight make writers wait: not tested here. */
	ASSERT_EQ(0, fcntl(self->tx, F_SETFL, 0));
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	do {
		ASSERT_EQ(0, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	} while (!s.done);
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(NP, rj.r.last_count);
	ASSERT_EQ(NP, first_diff(self));
}

TEST_F(xfer, peer_closes)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER };
	struct dirtytrack_receive r = { .sockfd = self->rx };
	struct dirtytrack_wire_hdr h;
	struct dirtytrack_wire_rec rec;
	int ret;

	for (int p = 0; p < NP; p++)
		self->smap[p * PS] = 1;
	/* Receiver side: the sender stops inside a record. */
	dt_wire_hdr_init(&h, NP * PS);
	dt_wire_rec_page(&rec, 1, self->smap + PS);
	ASSERT_EQ(0, dt_wire_send(self->tx, &h, sizeof(h)));
	ASSERT_EQ(0, dt_wire_send(self->tx, &rec, sizeof(rec)));
	ASSERT_EQ(0, dt_wire_send(self->tx, self->smap + PS, 100));
	shutdown(self->tx, SHUT_WR);
	EXPECT_EQ(-ENODATA, dt_receive(self->dst, &r));
	EXPECT_EQ(0, r.records);
	EXPECT_EQ(0, self->dmap[PS]);		/* not half-written */
	/* Sender side, on a new connection: the receiver is gone. */
	close(self->tx);
	close(self->rx);
	tcp_pair(_metadata, &self->tx, &self->rx);
	close(self->rx);
	self->rx = socket(AF_INET, SOCK_STREAM, 0);
	s.sockfd = self->tx;
	ret = dt_stream(self->src, &s);
	EXPECT_TRUE(ret == -EPIPE || ret == -ECONNRESET) TH_LOG("stream: %d", ret);
	EXPECT_EQ(0, s.done);
}

TEST_F(xfer, bad_sockets)
{
	struct dirtytrack_stream s = { .npages = NP, .flags = DIRTYTRACK_STREAM_SRC_RANGE };
	struct dirtytrack_receive r = { 0 };
	int p[2], udp = socket(AF_INET, SOCK_DGRAM, 0), tcp = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT_EQ(0, pipe(p));
	s.sockfd = p[1];
	EXPECT_EQ(-ENOTSOCK, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s.sockfd = udp;
	EXPECT_EQ(-EOPNOTSUPP, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s.sockfd = tcp;
	EXPECT_EQ(-ENOTCONN, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s.sockfd = 9999;
	EXPECT_EQ(-EBADF, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	r.sockfd = p[0];
	EXPECT_EQ(-ENOTSOCK, dt_receive(self->dst, &r));
	r.sockfd = udp;
	EXPECT_EQ(-EOPNOTSUPP, dt_receive(self->dst, &r));
	r.sockfd = tcp;
	EXPECT_EQ(-ENOTCONN, dt_receive(self->dst, &r));
	close(p[0]);
	close(p[1]);
	close(udp);
	close(tcp);
}

TEST_F(xfer, stream_bad_arguments)
{
	uint64_t map[NP / 64];
	struct dirtytrack_stream s;

#define S(...) (struct dirtytrack_stream){ .sockfd = self->tx, __VA_ARGS__ }
	s = S(.npages = NP, .flags = 1U << 9);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .reserved = 1);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP + 1);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .next = NP + 1);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .budget = 100);			/* not one record */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_BITMAP, .pages = (uintptr_t)map, .pages_size = 8);
	EXPECT_EQ(-ENOSPC, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_BITMAP, .pages = 8, .pages_size = sizeof(map));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_RANGE, .pages = (uintptr_t)map);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.flags = DIRTYTRACK_STREAM_SRC_LIST, .pages = (uintptr_t)map, .pages_size = 12);
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_HARVEST);	/* not tracking */
	EXPECT_EQ(-EINVAL, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	EXPECT_EQ(-EFAULT, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, NULL));
	map[0] = NP;				/* a list entry out of range */
	s = (struct dirtytrack_stream){ .sockfd = self->tx, .flags = DIRTYTRACK_STREAM_SRC_LIST,
		.pages = (uintptr_t)map, .pages_size = 8 };
	EXPECT_EQ(-ERANGE, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
#undef S
}

/* ---- crafted streams: each rejected with its errno, earlier pages kept ---- */

struct crafted {
	const char *name;
	int err;
	void (*spoil)(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *rec,
		      char *page, size_t *payload);
};

static void fix_hdr(struct dirtytrack_wire_hdr *h)
{
	h->crc = htole32(dt_crc32c(0, h, 60));
}

static void fix_rec(struct dirtytrack_wire_rec *r, const char *page, size_t payload)
{
	uint32_t crc = dt_crc32c(0, r, 28);

	r->crc = htole32(payload ? dt_crc32c(crc, page, payload) : crc);
}

static void bad_magic(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	h->magic = htole32(0x12345678);
	fix_hdr(h);
}

static void bad_version(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	h->version = htole16(2);
	fix_hdr(h);
}

static void bad_region(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	h->region_size = htole64(2 * NP * PS);
	fix_hdr(h);
}

static void bad_index(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	r->index = htole64(NP);
	fix_rec(r, p, PS);
}

static void bad_crc(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	p[100] ^= 1;				/* payload changed after the CRC */
}

static void oversize(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	r->length = htole32(2 * PS);
	fix_rec(r, p, PS);
}

static void truncated(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	*n = 1000;
}

static void reserved(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	r->reserved2 = htole32(1);
	fix_rec(r, p, PS);
}

static void lying_round(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	dt_wire_rec_round(r, 0, 5);		/* two records came, not five */
	*n = 0;
}

static void skipped_round(struct dirtytrack_wire_hdr *h, struct dirtytrack_wire_rec *r, char *p, size_t *n)
{
	dt_wire_rec_round(r, 1, 2);		/* round 0 never ended */
	*n = 0;
}

static const struct crafted crafted[] = {
	{ "wrong magic", EPROTO, bad_magic },
	{ "wrong version", EPROTONOSUPPORT, bad_version },
	{ "wrong region size", EMSGSIZE, bad_region },
	{ "index out of range", ERANGE, bad_index },
	{ "bad checksum", EBADMSG, bad_crc },
	{ "oversize length", EMSGSIZE, oversize },
	{ "truncated payload", ENODATA, truncated },
	{ "nonzero reserved", EPROTO, reserved },
	{ "lying round marker", EILSEQ, lying_round },
	{ "skipped round number", EILSEQ, skipped_round },
};

TEST_F(xfer, crafted_bad_streams)
{
	static char page[PS], good[PS];
	unsigned int i;

	for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		const struct crafted *c = &crafted[i];
		struct dirtytrack_receive r = { .sockfd = self->rx, .flags = DIRTYTRACK_RECV_RESET };
		struct dirtytrack_wire_hdr h;
		struct dirtytrack_wire_rec g, bad;
		size_t n = PS;
		int ret;

		memset(good, 'g' + i, PS);
		memset(page, 'b', PS);
		memset(self->dmap + 7 * PS, 0, PS);
		dt_wire_hdr_init(&h, NP * PS);
		dt_wire_rec_page(&g, 2, good);		/* a good record before */
		dt_wire_rec_page(&bad, 7, page);
		c->spoil(&h, &bad, page, &n);
		ASSERT_EQ(0, dt_wire_send(self->tx, &h, sizeof(h)));
		if (c->spoil != bad_magic && c->spoil != bad_version && c->spoil != bad_region) {
			ASSERT_EQ(0, dt_wire_send(self->tx, &g, sizeof(g)));
			ASSERT_EQ(0, dt_wire_send(self->tx, good, PS));
			dt_wire_rec_zero(&g, 3);
			ASSERT_EQ(0, dt_wire_send(self->tx, &g, sizeof(g)));
		}
		ASSERT_EQ(0, dt_wire_send(self->tx, &bad, sizeof(bad)));
		if (n)
			ASSERT_EQ(0, dt_wire_send(self->tx, page, n));
		if (c->spoil == truncated)
			shutdown(self->tx, SHUT_WR);
		ret = dt_receive(self->dst, &r);
		EXPECT_EQ(-c->err, ret) TH_LOG("%s: got %s", c->name, strerror(-ret));
		if (c->spoil != bad_magic && c->spoil != bad_version && c->spoil != bad_region) {
			EXPECT_EQ(2, r.records) TH_LOG("%s", c->name);
			EXPECT_EQ(0, memcmp(self->dmap + 2 * PS, good, PS)) TH_LOG("%s", c->name);
		}
		EXPECT_EQ(0, self->dmap[7 * PS]) TH_LOG("%s: rejected page written", c->name);
		/* The error sticks until the stream is reset. */
		r.flags = 0;
		EXPECT_EQ(-c->err, dt_receive(self->dst, &r));
		/* A fresh connection for the next case. */
		close(self->tx);
		close(self->rx);
		tcp_pair(_metadata, &self->tx, &self->rx);
	}
}

TEST_HARNESS_MAIN
