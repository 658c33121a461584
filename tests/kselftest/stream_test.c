// SPDX-License-Identifier: GPL-2.0
/*
 * STREAM and RECEIVE between two regions over loopback TCP: full and
 * incremental rounds, zero pages, crafted bad streams, broken peers,
 * signals, budgets, kernel TLS and argument checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tls.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"
#include "dt_wire.h"

#define NP 256
/*
 * The harness's 30 s is too short for the veth variant on a debug kernel
 * (KASAN, lockdep) under TCG on a busy host: its fixture makes two network
 * namespaces with five ip(8) runs while the previous test's are torn down,
 * and the quickest veth tests took 12 to 16 s there, the first over 30 s.
 * A hang still fails the test.
 */
#define XFER_TIMEOUT 120

FIXTURE(xfer) {
	int dev, src, dst, tx, rx;
	int ns_tx, ns_rx;		/* network namespaces of the ends, or -1 */
	char *smap, *dmap;
};

/* The two ends on loopback, or in two network namespaces joined by veth. */
FIXTURE_VARIANT(xfer) {
	bool veth;
};

FIXTURE_VARIANT_ADD(xfer, loopback) {
	.veth = false,
};

FIXTURE_VARIANT_ADD(xfer, veth) {
	.veth = true,
};

#define VETH_TX "10.211.0.1"
#define VETH_RX "10.211.0.2"

static int netns_new(void)
{
	if (unshare(CLONE_NEWNET))
		return -1;
	return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

/* Two fresh namespaces; veth dt0 (VETH_TX) in ns_tx, dt1 (VETH_RX) in ns_rx. */
static void veth_setup(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self)
{
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	char cmd[256];

	ASSERT_LE(0, home);
	self->ns_rx = netns_new();
	ASSERT_LE(0, self->ns_rx);
	self->ns_tx = netns_new();
	ASSERT_LE(0, self->ns_tx);
	snprintf(cmd, sizeof(cmd),
		 "ip link add dt0 type veth peer name dt1 netns /proc/%d/fd/%d && "
		 "ip addr add " VETH_TX "/24 dev dt0 && ip link set dt0 up",
		 getpid(), self->ns_rx);
	ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, setns(self->ns_rx, CLONE_NEWNET));
	ASSERT_EQ(0, system("ip addr add " VETH_RX "/24 dev dt1 && ip link set dt1 up"));
	ASSERT_EQ(0, setns(home, CLONE_NEWNET));
	close(home);
}

/* A TCP-MD5 key for @peer on @fd: such a socket gets no GSO, so no SG of its own. */
static int md5_key(int fd, in_addr_t peer)
{
	struct tcp_md5sig md5 = { .tcpm_keylen = 4, .tcpm_key = "dtk" };
	struct sockaddr_in *a = (struct sockaddr_in *)&md5.tcpm_addr;

	a->sin_family = AF_INET;
	a->sin_addr.s_addr = peer;
	return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &md5, sizeof(md5));
}

/*
 * A connected pair: self->tx sends, self->rx receives; @buf, if nonzero, is
 * their SO_SNDBUF and SO_RCVBUF, set before the connection (so the window
 * the receiver announces is small from the start); @md5 signs the
 * connection, which keeps TCP from adding scatter-gather to the route's
 * features (GSO is off for it).
 */
static void tcp_pair_opt(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self,
			 int buf, bool md5)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in local;
	socklen_t len = sizeof(a);
	int l;

	if (self->ns_rx >= 0) {
		a.sin_addr.s_addr = inet_addr(VETH_RX);
		ASSERT_EQ(0, setns(self->ns_rx, CLONE_NEWNET));
	}
	l = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, l);
	if (buf)
		ASSERT_EQ(0, setsockopt(l, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)));
	if (md5)
		ASSERT_EQ(0, md5_key(l, self->ns_tx >= 0 ? inet_addr(VETH_TX) :
				     htonl(INADDR_LOOPBACK)));
	ASSERT_EQ(0, bind(l, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(l, 1));
	ASSERT_EQ(0, getsockname(l, (struct sockaddr *)&a, &len));
	if (self->ns_tx >= 0)
		ASSERT_EQ(0, setns(self->ns_tx, CLONE_NEWNET));
	self->tx = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_LE(0, self->tx);
	if (buf)
		ASSERT_EQ(0, setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf)));
	if (md5)
		ASSERT_EQ(0, md5_key(self->tx, a.sin_addr.s_addr));
	ASSERT_EQ(0, connect(self->tx, (struct sockaddr *)&a, sizeof(a)));
	self->rx = accept(l, NULL, NULL);
	ASSERT_LE(0, self->rx);
	close(l);
	/* Over veth the sender's address is dt0's: the bytes cross the pair. */
	len = sizeof(local);
	ASSERT_EQ(0, getsockname(self->tx, (struct sockaddr *)&local, &len));
	ASSERT_EQ(self->ns_tx >= 0 ? inet_addr(VETH_TX) : htonl(INADDR_LOOPBACK),
		  local.sin_addr.s_addr);
}

static void tcp_pair(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self)
{
	tcp_pair_opt(_metadata, self, 0, false);
}

/* Close the pair and connect a new one (a fresh stream). */
static void tcp_repair(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self)
{
	close(self->tx);
	close(self->rx);
	tcp_pair(_metadata, self);
}

FIXTURE_SETUP(xfer)
{
	self->ns_tx = self->ns_rx = -1;
	if (variant->veth)
		veth_setup(_metadata, self);
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
	tcp_pair(_metadata, self);
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
	if (self->ns_tx >= 0)
		close(self->ns_tx);
	if (self->ns_rx >= 0)
		close(self->ns_rx);
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

/*
 * Call STREAM with @s (a send cut short before, say) until its round is
 * done, a receiver taking it.
 */
static void stream_finish(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self,
			  struct dirtytrack_stream *s)
{
	int big = 1 << 20, ret;
	struct rx_job rj;

	/* Buffers a cut-short send shrank: back to a size that moves quickly. */
	setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	do {
		ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, s);
	} while (!ret && !s->done);
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(s->npages, rj.r.last_count);
}

/* stream_finish(); the destination must then equal the source. */
static void stream_to_done(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self,
			   struct dirtytrack_stream *s)
{
	stream_finish(_metadata, self, s);
	ASSERT_EQ(NP, first_diff(self));
}

static void scribble(char *map, unsigned int seed, int n)
{
	for (int i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		map[(seed >> 8) % (NP * PS)] = (char)seed;
	}
}

/* One SRC_HARVEST round with @sent as its bitmap of what it harvested. */
static int harvest_round(FIXTURE_DATA(xfer) *self, uint64_t round, uint64_t budget,
			 uint64_t *sent, struct rx_job *rj, struct dirtytrack_stream *s)
{
	int ret;

	*s = (struct dirtytrack_stream){
		.sockfd = self->tx, .npages = NP, .round = round, .budget = budget,
		.flags = DIRTYTRACK_STREAM_SRC_HARVEST | DIRTYTRACK_STREAM_END_ROUND,
		.pages = (uintptr_t)sent, .pages_size = NP / 8,
	};
	rx_start(rj, self->dst, self->rx, DIRTYTRACK_RECV_ROUND);
	do {
		ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, s);
	} while (!ret && !s->done);
	pthread_join(rj->th, NULL);
	return ret;
}

/*
 * SRC_HARVEST tells the caller what it harvested: exactly the pages written,
 * or'ed into the caller's bitmap, whether one call or many (a budget) take
 * the round; and a bitmap it cannot write leaves those pages dirty for the
 * next harvest instead of losing them.
 */
TEST_F_TIMEOUT(xfer, harvest_reports_what_it_sent, XFER_TIMEOUT)
{
	static const int written[] = { 3, 7, 64, 100, 255 };
	uint64_t sent[NP / 64], want[NP / 64] = { 0 }, *map, n;
	struct dirtytrack_stream s;
	struct rx_job rj;
	void *gone;
	int err;

	memset(self->smap, 1, NP * PS);
	ASSERT_EQ(0, dt_track_start(self->src, 0));
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER,
				0, NULL, &rj));
	for (uint64_t budget = 0, round = 1; round <= 2; round++, budget = 2 * (PS + 32)) {
		memset(sent, 0, sizeof(sent));
		memset(want, 0, sizeof(want));
		sent[3] = want[3] = 1ULL << 8;		/* page 200: kept, not cleared */
		for (size_t i = 0; i < ARRAY_SIZE(written); i++) {
			self->smap[written[i] * PS] = (char)round;
			want[written[i] / 64] |= 1ULL << (written[i] % 64);
		}
		/* and a page punched out: a ZERO record */
		ASSERT_EQ(0, fallocate(self->src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (129 + round) * PS, PS));
		want[2] |= 1ULL << (1 + round);
		ASSERT_EQ(0, harvest_round(self, round, budget, sent, &rj, &s));
		ASSERT_EQ(0, rj.ret);
		EXPECT_EQ(ARRAY_SIZE(written) + 1, rj.r.last_count);
		for (int w = 0; w < NP / 64; w++) {
			EXPECT_EQ(want[w], sent[w]) TH_LOG("round %llu budget %llu word %d",
							   (unsigned long long)round,
							   (unsigned long long)budget, w);
		}
		ASSERT_EQ(NP, first_diff(self));
	}
	/* An unwritable bitmap: EFAULT, and pages 5 and 6 are dirty again. */
	gone = mmap(NULL, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, gone);
	self->smap[5 * PS] = 9;
	self->smap[6 * PS] = 9;
	EXPECT_EQ(-EFAULT, harvest_round(self, 3, 0, gone, &rj, &s));
	map = dt_harvest_all(self->src, NP, &n, &err);
	ASSERT_EQ(0, err);
	EXPECT_EQ(2, n);
	EXPECT_EQ(3ULL << 5, map[0]);
	free(map);
	munmap(gone, PS);
}

TEST_F_TIMEOUT(xfer, full_then_incremental_rounds, XFER_TIMEOUT)
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

TEST_F_TIMEOUT(xfer, zero_and_punched_pages, XFER_TIMEOUT)
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

TEST_F_TIMEOUT(xfer, caller_bitmap_and_list, XFER_TIMEOUT)
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

TEST_F_TIMEOUT(xfer, budget_of_one_page, XFER_TIMEOUT)
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

TEST_F_TIMEOUT(xfer, signal_and_nonblocking_resume, XFER_TIMEOUT)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	int small = 16384, ret;

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
	stream_to_done(_metadata, self, &s);
}

TEST_F_TIMEOUT(xfer, peer_closes, XFER_TIMEOUT)
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
	tcp_repair(_metadata, self);
	close(self->rx);
	self->rx = socket(AF_INET, SOCK_STREAM, 0);
	s.sockfd = self->tx;
	ret = dt_stream(self->src, &s);
	EXPECT_TRUE(ret == -EPIPE || ret == -ECONNRESET) TH_LOG("stream: %d", ret);
	EXPECT_EQ(0, s.done);
}

TEST_F_TIMEOUT(xfer, bad_sockets, XFER_TIMEOUT)
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

TEST_F_TIMEOUT(xfer, stream_bad_arguments, XFER_TIMEOUT)
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
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_HARVEST, .pages = (uintptr_t)map,
	      .pages_size = 8);				/* a sent bitmap too small */
	EXPECT_EQ(-ENOSPC, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	s = S(.npages = NP, .flags = DIRTYTRACK_STREAM_SRC_HARVEST, .pages_size = sizeof(map));
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

/* Bytes of a crafted stream, sent at once and also fed to the library's reader. */
struct wbuf {
	size_t len;
	char b[4 * (PS + 64)];
};

static void put(struct wbuf *w, const void *p, size_t n)
{
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

/* The library's verdict on the same bytes (validate only). */
static int library_verdict(const struct wbuf *w, uint64_t *records)
{
	static struct dt_wire_reader rd;
	ssize_t ret;

	dt_wire_reader_init(&rd, NP * PS, NULL, NULL);
	ret = dt_wire_reader_feed(&rd, w->b, w->len);
	*records = rd.records;
	return ret < 0 ? (int)ret : dt_wire_reader_finish(&rd);
}

TEST_F_TIMEOUT(xfer, crafted_bad_streams, XFER_TIMEOUT)
{
	static char page[PS], good[PS];
	static struct wbuf w;
	unsigned int i;

	for (i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		const struct crafted *c = &crafted[i];
		struct dirtytrack_receive r = { .sockfd = self->rx, .flags = DIRTYTRACK_RECV_RESET };
		bool hdr_case = c->spoil == bad_magic || c->spoil == bad_version ||
				c->spoil == bad_region;
		struct dirtytrack_wire_hdr h;
		struct dirtytrack_wire_rec g, bad;
		uint64_t lib_records;
		size_t n = PS;
		int ret;

		memset(good, 'g' + i, PS);
		memset(page, 'b', PS);
		memset(self->dmap + 7 * PS, 0, PS);
		dt_wire_hdr_init(&h, NP * PS);
		dt_wire_rec_page(&g, 2, good);		/* a good record before */
		dt_wire_rec_page(&bad, 7, page);
		c->spoil(&h, &bad, page, &n);
		w.len = 0;
		put(&w, &h, sizeof(h));
		if (!hdr_case) {
			put(&w, &g, sizeof(g));
			put(&w, good, PS);
			dt_wire_rec_zero(&g, 3);
			put(&w, &g, sizeof(g));
		}
		put(&w, &bad, sizeof(bad));
		put(&w, page, n);
		ASSERT_EQ(0, dt_wire_send(self->tx, w.b, w.len));
		if (c->spoil == truncated)
			shutdown(self->tx, SHUT_WR);
		ret = dt_receive(self->dst, &r);
		EXPECT_EQ(-c->err, ret) TH_LOG("%s: got %s", c->name, strerror(-ret));
		if (!hdr_case) {
			EXPECT_EQ(2, r.records) TH_LOG("%s", c->name);
			EXPECT_EQ(0, memcmp(self->dmap + 2 * PS, good, PS)) TH_LOG("%s", c->name);
		}
		EXPECT_EQ(0, self->dmap[7 * PS]) TH_LOG("%s: rejected page written", c->name);
		/* The library's reader says the same about the same bytes. */
		EXPECT_EQ(-c->err, library_verdict(&w, &lib_records)) TH_LOG("%s", c->name);
		EXPECT_EQ(r.records, lib_records) TH_LOG("%s", c->name);
		/* The error sticks until the stream is reset. */
		r.flags = 0;
		EXPECT_EQ(-c->err, dt_receive(self->dst, &r));
		tcp_repair(_metadata, self);	/* a fresh connection for the next case */
	}
}

/*
 * Differential check: a good stream with one random defect (a flipped byte
 * with or without a recomputed CRC, a field set to an edge value, a cut) goes
 * to the kernel's RECEIVE and to the library's reader. Both must give the
 * same errno and apply the same records, and the destination must equal the
 * reader's copy: the kernel wrote exactly the records the reader accepted.
 */
struct unit {
	size_t off, len;	/* the header or record header */
	size_t payload;		/* payload bytes after it */
};

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void reseal(struct wbuf *w, const struct unit *u)
{
	char *p = w->b + u->off;

	if (u->len == sizeof(struct dirtytrack_wire_hdr)) {
		struct dirtytrack_wire_hdr *h = (void *)p;

		h->crc = htole32(dt_crc32c(0, h, offsetof(struct dirtytrack_wire_hdr, crc)));
	} else {
		fix_rec((void *)p, p + u->len, u->payload);
	}
}

/* Set an aligned 2- or 4-byte field of unit @t (not its CRC) to an edge value. */
static void set_edge(struct wbuf *w, const struct unit *t, uint64_t *x)
{
	static const uint64_t edge[] = { 0, 1, 2, 3, NP - 1, NP, PS, 2 * PS,
					 NP * PS, UINT32_MAX, UINT64_MAX };
	uint64_t v = htole64(edge[rnd(x) % (sizeof(edge) / sizeof(edge[0]))]);
	size_t at = t->off + (rnd(x) % (t->len / 4 - 1)) * 4;

	memcpy(w->b + at, &v, rnd(x) & 1 ? 4 : 2);
}

/* 300 streams through both readers: minutes on the debug kernel, not 30 s. */
TEST_F_TIMEOUT(xfer, kernel_and_library_agree, 300)
{
	static struct wbuf base, w;
	static char pages[3][PS];
	char *shadow = malloc(NP * PS);
	struct dirtytrack_wire_hdr h;
	struct dirtytrack_wire_rec rec;
	struct unit u[8];
	int nu = 0, seed, agreed_errors = 0;

	ASSERT_NE(NULL, shadow);
	for (int k = 0; k < 3; k++)
		memset(pages[k], 0x41 + k, PS);
	dt_wire_hdr_init(&h, NP * PS);
#define UNIT(p, n, pl) do {						\
		u[nu++] = (struct unit){ base.len, n, pl ? PS : 0 };	\
		put(&base, p, n);					\
		if (pl)							\
			put(&base, pl, PS);				\
	} while (0)
	UNIT(&h, sizeof(h), NULL);
	dt_wire_rec_page(&rec, 2, pages[0]);
	UNIT(&rec, sizeof(rec), pages[0]);
	dt_wire_rec_zero(&rec, 3);
	UNIT(&rec, sizeof(rec), NULL);
	dt_wire_rec_page(&rec, 5, pages[1]);
	UNIT(&rec, sizeof(rec), pages[1]);
	dt_wire_rec_round(&rec, 0, 3);
	UNIT(&rec, sizeof(rec), NULL);
	dt_wire_rec_page(&rec, 7, pages[2]);
	UNIT(&rec, sizeof(rec), pages[2]);
	dt_wire_rec_round(&rec, 1, 1);
	UNIT(&rec, sizeof(rec), NULL);
#undef UNIT

	for (seed = 1; seed <= 300; seed++) {
		struct dirtytrack_receive r = { .sockfd = self->rx, .flags = DIRTYTRACK_RECV_RESET };
		static struct dt_wire_reader rd;
		uint64_t x = (uint64_t)seed * 0x9e3779b97f4a7c15ULL;
		const struct unit *t;
		size_t at;
		int kret, lret, op;
		ssize_t fret;

		rnd(&x);
		w = base;
		t = &u[rnd(&x) % nu];
		op = rnd(&x) % 6;
		switch (op) {
		case 0:		/* a flipped header byte; the CRC catches it */
		case 1:		/* the same with the CRC recomputed */
			at = t->off + rnd(&x) % t->len;
			w.b[at] ^= (char)(1 + rnd(&x) % 255);
			if (op == 1)
				reseal(&w, t);
			break;
		case 2:		/* one or two fields set to edge values, resealed */
		case 3:		/* (two: which defect is reported first) */
			for (int k = 0; k < op - 1; k++)
				set_edge(&w, t, &x);
			reseal(&w, t);
			break;
		case 4:		/* a flipped payload byte */
			if (t->payload) {
				w.b[t->off + t->len + rnd(&x) % PS] ^= 0x10;
				break;
			}
			/* fall through */
		default:	/* cut short: anywhere, or at a unit's start */
			w.len = rnd(&x) & 1 ? t->off : rnd(&x) % base.len;
			break;
		}
		memcpy(shadow, self->dmap, NP * PS);
		dt_wire_reader_init(&rd, NP * PS, dt_wire_apply_mem, shadow);
		fret = dt_wire_reader_feed(&rd, w.b, w.len);
		lret = fret < 0 ? (int)fret : dt_wire_reader_finish(&rd);

		ASSERT_EQ(0, dt_wire_send(self->tx, w.b, w.len));
		shutdown(self->tx, SHUT_WR);
		kret = dt_receive(self->dst, &r);
		ASSERT_EQ(lret, kret) TH_LOG("seed %d: library %s, kernel %s", seed,
					     strerror(-lret), strerror(-kret));
		ASSERT_EQ(rd.records, r.records) TH_LOG("seed %d", seed);
		ASSERT_EQ(rd.rounds, r.rounds) TH_LOG("seed %d", seed);
		ASSERT_EQ(0, memcmp(shadow, self->dmap, NP * PS)) TH_LOG("seed %d", seed);
		agreed_errors += !!kret;
		tcp_repair(_metadata, self);
	}
	/* The defects were real: most cases are rejections, not clean streams. */
	EXPECT_LT(150, agreed_errors);
	free(shadow);
}

/* The kernel's stream read by the library, the library's stream received by the kernel. */
struct lib_rx {
	int sock, ret;
	struct dt_wire_reader rd;
	char *copy;
};

static void *lib_rx_thread(void *p)
{
	struct lib_rx *l = p;

	l->ret = dt_wire_recv_into(l->sock, &l->rd);
	return NULL;
}

/* The library's sender streams the source, one round; kernel RECEIVE applies it. */
static void library_to_receive(struct __test_metadata *_metadata, FIXTURE_DATA(xfer) *self)
{
	struct rx_job rj;
	uint64_t recs;

	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	ASSERT_EQ(0, dt_wire_send_hdr(self->tx, NP * PS));
	ASSERT_EQ(0, dt_wire_send_pages(self->tx, self->smap, 0, NP, NULL, &recs));
	ASSERT_EQ(0, dt_wire_send_round(self->tx, 0, recs));
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, rj.ret) TH_LOG("kernel receive: %s", strerror(-rj.ret));
	EXPECT_EQ(NP, recs);
	EXPECT_EQ(NP, rj.r.records);
	EXPECT_EQ(NP, rj.r.last_count);
	EXPECT_EQ(NP, first_diff(self));
}

TEST_F_TIMEOUT(xfer, library_and_kernel_interoperate, XFER_TIMEOUT)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP, .round = 0,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	static struct lib_rx l;
	uint64_t holes = 0;
	pthread_t th;

	for (int p = 0; p < NP; p++) {
		if (p % 3)
			memset(self->smap + p * PS, p, PS);
		else
			holes++;
	}
	/* Kernel STREAM -> library reader. */
	l.sock = self->rx;
	l.copy = calloc(1, NP * PS);
	ASSERT_NE(NULL, l.copy);
	ASSERT_EQ(0, dt_wire_reader_init(&l.rd, NP * PS, dt_wire_apply_mem, l.copy));
	ASSERT_EQ(0, pthread_create(&th, NULL, lib_rx_thread, &l));
	ASSERT_EQ(0, dt_stream(self->src, &s));
	EXPECT_EQ(1, s.done);
	shutdown(self->tx, SHUT_WR);
	pthread_join(th, NULL);
	ASSERT_EQ(0, l.ret) TH_LOG("library reader: %s", strerror(-l.ret));
	EXPECT_EQ(NP, l.rd.records);
	EXPECT_EQ(holes, l.rd.zero_records);
	EXPECT_EQ(1, l.rd.rounds);
	EXPECT_EQ(NP, l.rd.last_count);
	EXPECT_EQ(0, memcmp(l.copy, self->smap, NP * PS));
	free(l.copy);

	/* Library sender -> kernel RECEIVE. */
	tcp_repair(_metadata, self);
	library_to_receive(_metadata, self);
}

/*
 * RECEIVE on a kernel TLS socket: the stream's bytes are the plaintext that
 * recvmsg() decrypts, not the TCP queue, which holds TLS records. RECEIVE
 * must read through recvmsg() there, not take the queue in place.
 */
TEST_F_TIMEOUT(xfer, receive_over_kernel_tls, XFER_TIMEOUT)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_2_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128 },
		.key = "dirtytrack-key!", .iv = "ivivivi", .salt = "sal",
	};

	if (setsockopt(self->tx, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		SKIP(return, "no kernel TLS here (%s)", strerror(errno));
	ASSERT_EQ(0, setsockopt(self->rx, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")));
	if (setsockopt(self->tx, SOL_TLS, TLS_TX, &ci, sizeof(ci)))
		SKIP(return, "no AES-GCM for kernel TLS here (%s)", strerror(errno));
	ASSERT_EQ(0, setsockopt(self->rx, SOL_TLS, TLS_RX, &ci, sizeof(ci)));
	for (int p = 0; p < NP; p++)
		if (p % 3)
			memset(self->smap + p * PS, p, PS);
	library_to_receive(_metadata, self);
}

/* A signal stops a blocked RECEIVE; the partial record waits for the next call. */
TEST_F_TIMEOUT(xfer, signal_during_receive, XFER_TIMEOUT)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct dirtytrack_receive r = { .sockfd = self->rx,
		.flags = DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND };
	struct dirtytrack_wire_hdr h;
	struct dirtytrack_wire_rec rec;
	char *page = self->smap + 5 * PS;
	int ret;

	memset(page, 0x5a, PS);
	dt_wire_hdr_init(&h, NP * PS);
	dt_wire_rec_page(&rec, 5, page);
	ASSERT_EQ(0, dt_wire_send(self->tx, &h, sizeof(h)));
	ASSERT_EQ(0, dt_wire_send(self->tx, &rec, sizeof(rec)));
	ASSERT_EQ(0, dt_wire_send(self->tx, page, 100));
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	/* Progress, then the wait is interrupted: the progress is reported. */
	alarm(1);
	ret = dt_receive(self->dst, &r);
	alarm(0);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(sizeof(h) + sizeof(rec) + 100, r.bytes);
	EXPECT_EQ(0, r.records);
	EXPECT_EQ(0, r.eof);
	EXPECT_EQ(0, self->dmap[5 * PS]);	/* half a payload: nothing written */
	/* No progress: the interrupted wait is -EINTR. */
	r.flags = DIRTYTRACK_RECV_ROUND;
	alarm(1);
	ret = dt_receive(self->dst, &r);
	alarm(0);
	EXPECT_EQ(-EINTR, ret);
	EXPECT_EQ(0, r.bytes);
	/* The rest of the record arrives; the next call completes the round. */
	ASSERT_EQ(0, dt_wire_send(self->tx, page + 100, PS - 100));
	ASSERT_EQ(0, dt_wire_send_round(self->tx, 0, 1));
	ASSERT_EQ(0, dt_receive(self->dst, &r));
	EXPECT_EQ(1, r.records);
	EXPECT_EQ(1, r.rounds);
	EXPECT_EQ(1, r.last_count);
	EXPECT_EQ(0, memcmp(self->dmap + 5 * PS, page, PS));
}

/* ---- regressions: each of these crashed, hung or lost data once ---- */

/* Run a shell command in the sender's network namespace. */
static int tx_ns_system(FIXTURE_DATA(xfer) *self, const char *cmd)
{
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), ret;

	if (self->ns_tx >= 0 && setns(self->ns_tx, CLONE_NEWNET))
		return -1;
	ret = system(cmd);
	if (self->ns_tx >= 0)
		setns(home, CLONE_NEWNET);
	close(home);
	return ret;
}

/* Scatter-gather on the sender's device. */
static int tx_sg(FIXTURE_DATA(xfer) *self, bool on)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ethtool -K %s sg %s >/dev/null 2>&1",
		 self->ns_tx >= 0 ? "dt0" : "lo", on ? "on" : "off");
	return tx_ns_system(self, cmd);
}

/*
 * Leave a batch of STREAM cut short (pending): tiny socket buffers, nobody
 * reading, a blocking send stopped by a signal. Returns the call's errno.
 */
static int cut_short(FIXTURE_DATA(xfer) *self, int rfd, struct dirtytrack_stream *s)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	int small = 4096, ret;

	setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	ret = dt_xioctl(rfd, DIRTYTRACK_IOC_STREAM, s);
	alarm(0);
	return ret;
}

/* waitpid() for at most @secs seconds; -1 (and the child killed) on timeout. */
static int wait_child(pid_t pid, int secs)
{
	int status;

	for (int i = 0; i < secs * 20; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	return -1;
}

/*
 * Defect 1: resuming a cut-short batch used it after the stack freed it.
 * Without scatter-gather on the route TCP copies the pages and keeps no
 * reference to the batch, so it is freed as soon as it is wholly queued.
 */
TEST_F_TIMEOUT(xfer, resume_without_scatter_gather, XFER_TIMEOUT)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	int ret;

	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p ^ 0x77, PS);
	/* Loopback's scatter-gather is fixed on: veth runs this one. */
	if (self->ns_tx < 0)
		SKIP(return, "lo cannot turn scatter-gather off");
	ASSERT_EQ(0, tx_sg(self, false));
	/* Route caps are taken at connect; TCP adds SG unless GSO is off. */
	close(self->tx);
	close(self->rx);
	tcp_pair_opt(_metadata, self, 0, true);
	s.sockfd = self->tx;
	ret = cut_short(self, self->src, &s);
	EXPECT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	EXPECT_EQ(0, s.done);
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	stream_to_done(_metadata, self, &s);
	tx_sg(self, true);
}

/*
 * Defect 9: the last batch, holding the round's marker, cut short; resuming
 * must finish that round, not add a second marker for it.
 */
TEST_F_TIMEOUT(xfer, resume_of_the_marker_batch, 300)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = 48,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	struct rx_job rj;
	int small = 4096, ret, calls = 0;

	for (int p = 0; p < 48; p++)
		memset(self->smap + p * PS, p + 1, PS);
	setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	ASSERT_EQ(0, fcntl(self->tx, F_SETFL, O_NONBLOCK));
	/*
	 * One batch: header, 48 pages and the marker (200 KB); the buffers,
	 * and the window the receiver announced before they shrank, take part.
	 */
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(48, s.records);
	ASSERT_EQ(0, s.done);
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	small = 1 << 20;	/* the batch is cut; now let it move */
	setsockopt(self->tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	while (!s.done && calls++ < 10000) {
		struct pollfd pfd = { .fd = self->tx, .events = POLLOUT };

		poll(&pfd, 1, 100);
		ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
		ASSERT_TRUE(ret == 0 || ret == -EAGAIN) TH_LOG("resume: %d", ret);
		if (!ret)
			EXPECT_EQ(0, s.records);	/* nothing repeated */
	}
	ASSERT_EQ(1, s.done);
	pthread_join(rj.th, NULL);
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(48, rj.r.last_count);
	/* The next round follows at once: a second marker 0 would be EILSEQ. */
	ASSERT_EQ(0, fcntl(self->tx, F_SETFL, 0));
	self->smap[3 * PS] = 42;
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE, 1, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	EXPECT_EQ(1, rj.r.last_round);
	ASSERT_EQ(NP, first_diff(self));
}

/*
 * Defect 6: a reset connection with a batch pending. STREAM on it says so
 * and re-reports the batch's pages; another socket is not refused; writers
 * of those pages do not wait forever; closing the socket closes it.
 */
TEST_F_TIMEOUT(xfer, reset_with_a_pending_batch, XFER_TIMEOUT)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_HARVEST | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint64_t *map, n;
	struct rx_job rj;
	pid_t pid;
	int ret, err;

	ASSERT_EQ(0, dt_track_start(self->src, 0));
	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p ^ 0x21, PS);
	ret = cut_short(self, self->src, &s);
	ASSERT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	ASSERT_EQ(0, s.done);
	/* The receiver resets the connection. */
	ASSERT_EQ(0, setsockopt(self->rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	close(self->rx);
	self->rx = -1;
	usleep(100000);
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	EXPECT_TRUE(ret == -ECONNRESET || ret == -EPIPE) TH_LOG("stream: %d", ret);
	/* Nothing sent arrived: the harvest reports every page again. */
	map = dt_harvest_all(self->src, NP, &n, &err);
	ASSERT_EQ(0, err);
	EXPECT_EQ(NP, n);
	free(map);
	/* A writer of the batch's first page does not wait forever. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		self->smap[0] = 1;
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid, 20));
	/* A new connection is not refused: the whole region goes again. */
	tcp_repair(_metadata, self);
	s = (struct dirtytrack_stream){ .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND);
	EXPECT_EQ(0, dt_stream(self->src, &s));
	pthread_join(rj.th, NULL);
	EXPECT_EQ(0, rj.ret);
	EXPECT_EQ(NP, first_diff(self));
}

/* Defect 6: closing the socket of a pending batch really closes it. */
TEST_F_TIMEOUT(xfer, close_with_a_pending_batch, XFER_TIMEOUT)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER };
	char buf[65536];
	ssize_t got;
	int ret, loops = 0;

	/* Payloads: 256 ZERO records alone (8 KiB) fit in the socket buffers. */
	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p + 1, PS);
	ret = cut_short(self, self->src, &s);
	ASSERT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	ASSERT_EQ(0, s.done);
	close(self->tx);
	self->tx = socket(AF_INET, SOCK_STREAM, 0);
	/* The receiver drains what was queued, then sees the end. */
	do {
		struct pollfd pfd = { .fd = self->rx, .events = POLLIN };

		ASSERT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("no end of stream: socket pinned?");
		got = read(self->rx, buf, sizeof(buf));
	} while (got > 0 && loops++ < 100000);
	EXPECT_TRUE(got == 0 || (got < 0 && errno == ECONNRESET));
}

/*
 * A send cut short through a file that is then closed (a mover reopened
 * the region through /proc and gave up): nothing can finish it, so the
 * close drops it, though the socket stays open and no STREAM follows. Its
 * pages are reported again. The stack still holds what was queued, until
 * the receiver has read it. The stream on that socket may end inside a
 * record: STREAM refuses the socket from then on.
 */
TEST_F_TIMEOUT(xfer, closing_the_sender_file_ends_a_pending_batch, XFER_TIMEOUT)
{
	struct dirtytrack_stream s = { .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_HARVEST | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	int snd, ret, err, queued = -1;
	uint64_t *map, n;
	char path[64];

	ASSERT_EQ(0, dt_track_start(self->src, 0));
	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p ^ 0x5a, PS);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->src);
	snd = open(path, O_RDWR);
	ASSERT_LE(0, snd);
	s.sockfd = self->tx;
	ret = cut_short(self, snd, &s);
	ASSERT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	ASSERT_EQ(0, s.done);
	close(snd);
	/*
	 * The receiver reads what was queued; nothing more comes. Until the
	 * stack has sent it all, it holds pages of the region (and the module).
	 */
	ASSERT_EQ(0, fcntl(self->rx, F_SETFL, O_NONBLOCK));
	for (int i = 0; i < 400 && queued; i++) {
		char buf[65536];

		while (read(self->rx, buf, sizeof(buf)) > 0)
			;
		ASSERT_EQ(0, ioctl(self->tx, SIOCOUTQ, &queued));
		if (queued)
			usleep(50000);
	}
	EXPECT_EQ(0, queued) TH_LOG("the sender's queue never drained");
	/* The dropped batch's pages, page 0 among them, are dirty again. */
	map = dt_harvest_all(self->src, NP, &n, &err);
	ASSERT_EQ(0, err);
	EXPECT_TRUE(map[0] & 1);
	EXPECT_LT(1, n);
	free(map);
	/* The torn stream cannot go on, through any file of the region. */
	s = (struct dirtytrack_stream){ .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE };
	EXPECT_EQ(-EPIPE, dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s));
	/* The region's own file was not the sender's: STREAM on it works. */
	tcp_repair(_metadata, self);
	s = (struct dirtytrack_stream){ .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	stream_to_done(_metadata, self, &s);
}

/*
 * Defects 4 and 5, gone with the wait itself: a writer of a page a send still
 * holds (a pending batch here: small socket buffers, nobody reading) does not
 * wait for the network. A store (nothing maps the page in the child: the
 * fault maps the copy), write(2), a partial punch, read(2) into the mapping
 * (a kernel-mode fault) and a store through a read-only pte (the child read
 * the page first: ->page_mkwrite() takes the copy and the fault is retried)
 * each get a copy of the page and go on, while no other ioctl of the region
 * waits either; STATS counts the five copies. The send then delivers
 * the bytes it checksummed, the harvest reports the written pages, and the
 * next round carries their new bytes.
 */
TEST_F_TIMEOUT(xfer, writers_of_pages_in_flight_do_not_wait, 300)
{
	static const char *const what[] = {
		"a store", "write(2)", "a partial punch", "read(2) into the mapping",
		"a store after a read",
	};
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_HARVEST | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	uint64_t sent[NP / 64] = { 0 };
	struct dirtytrack_stats st0, st1;
	char *before = malloc(5 * PS);
	struct rx_job rj;
	int ret, p[2];
	pid_t pid;

	ASSERT_NE(NULL, before);
	ASSERT_EQ(0, dt_track_start(self->src, 0));
	for (int i = 0; i < NP; i++)
		memset(self->smap + i * PS, i ^ 0x33, PS);
	memcpy(before, self->smap, 5 * PS);
	ret = cut_short(self, self->src, &s);
	ASSERT_TRUE(ret == 0 || ret == -EINTR) TH_LOG("stream: %d", ret);
	ASSERT_EQ(0, s.done);
	ASSERT_LT(0, s.records);
	/* Pages 0 to 4 are in the pending batch. */
	ASSERT_EQ(0, dt_stats(self->src, &st0));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(PS, write(p[1], self->smap + 9 * PS, PS));
	for (int w = 0; w < 5; w++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			char c = 'w';

			switch (w) {
			case 0:
				self->smap[7] = c;
				break;
			case 1:
				if (pwrite(self->src, &c, 1, PS + 7) != 1)
					_exit(1);
				break;
			case 2:
				if (fallocate(self->src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					      2 * PS + 10, 100))
					_exit(1);
				break;
			case 3:
				if (read(p[0], self->smap + 3 * PS, PS) != PS)
					_exit(1);
				break;
			case 4:
				if (((volatile char *)self->smap)[4 * PS + 7] == c)
					_exit(1);	/* the read maps the page read-only */
				((volatile char *)self->smap)[4 * PS + 7] = c;
				break;
			}
			_exit(0);
		}
		EXPECT_EQ(0, wait_child(pid, 20)) TH_LOG("%s waited for the send", what[w]);
	}
	close(p[0]);
	close(p[1]);
	EXPECT_EQ('w', self->smap[7]);
	EXPECT_EQ('w', self->smap[PS + 7]);
	EXPECT_EQ(0, self->smap[2 * PS + 10]);
	EXPECT_EQ(0, memcmp(self->smap + 3 * PS, self->smap + 9 * PS, PS));
	EXPECT_EQ('w', self->smap[4 * PS + 7]);
	ASSERT_EQ(0, dt_stats(self->src, &st1));
	EXPECT_EQ(5, st1.pages_unshared - st0.pages_unshared);
	/* The send finishes with the bytes it took: the receiver checks them. */
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	stream_finish(_metadata, self, &s);
	EXPECT_EQ(0, memcmp(self->dmap, before, 5 * PS));
	EXPECT_EQ(0, memcmp(self->dmap + 5 * PS, self->smap + 5 * PS, (NP - 5) * PS));
	/* The next round: exactly the written pages, with their new bytes. */
	ASSERT_EQ(0, harvest_round(self, 1, 0, sent, &rj, &s));
	EXPECT_EQ(0, rj.ret);
	EXPECT_EQ(0x1full, sent[0]);
	for (int i = 1; i < NP / 64; i++)
		EXPECT_EQ(0, sent[i]);
	EXPECT_EQ(NP, first_diff(self));
	free(before);
}

/* Defect 7: a list as long as the caller says is read a window at a time. */
TEST_F_TIMEOUT(xfer, huge_list_size, XFER_TIMEOUT)
{
	uint64_t list[4] = { 1, 2, 3, 4 };
	struct dirtytrack_stream s = { .sockfd = self->tx,
		.flags = DIRTYTRACK_STREAM_SRC_LIST | DIRTYTRACK_STREAM_HEADER,
		.pages = (uintptr_t)list, .pages_size = 1ULL << 32 };
	struct rx_job rj;
	int ret;

	rx_start(&rj, self->dst, self->rx, DIRTYTRACK_RECV_RESET);
	/* The entries after the four are whatever the stack holds: ERANGE. */
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	EXPECT_TRUE(ret == -ERANGE || ret == -EFAULT || ret == 0) TH_LOG("stream: %d", ret);
	EXPECT_EQ(0, s.done);
	s.pages_size = ~0ULL & ~7ULL;
	s.next = 0;
	s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
	EXPECT_TRUE(ret == -ERANGE || ret == -EFAULT || ret == 0) TH_LOG("stream: %d", ret);
	shutdown(self->tx, SHUT_WR);
	pthread_join(rj.th, NULL);
}

/* Defect 11: a ZERO record over a hole is a received page like any other. */
TEST_F_TIMEOUT(xfer, received_zero_pages_are_reported, XFER_TIMEOUT)
{
	struct dirtytrack_stream s;
	struct rx_job rj;
	uint64_t *map, n;
	int err;

	self->smap[7 * PS] = 1;			/* page 7 has data; the rest are holes */
	ASSERT_EQ(0, dt_track_start(self->dst, 0));
	ASSERT_EQ(0, round_trip(self, DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER,
				0, &s, &rj));
	ASSERT_EQ(0, rj.ret);
	ASSERT_EQ(NP, rj.r.last_count);
	map = dt_harvest_all(self->dst, NP, &n, &err);
	ASSERT_EQ(0, err);
	EXPECT_EQ(NP, n);
	free(map);
}

struct drain {
	int sock;
	atomic_int stop;
	uint64_t bytes;
	pthread_t th;
};

static void *drain_thread(void *p)
{
	struct drain *d = p;
	static char buf[65536];

	while (!atomic_load(&d->stop)) {
		struct pollfd pfd = { .fd = d->sock, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(d->sock, buf, sizeof(buf));
		if (n <= 0)
			break;
		d->bytes += n;
	}
	return NULL;
}

/* A TcpExt counter of /proc/net/netstat (this network namespace). */
static long long tcpext(const char *name)
{
	char keys[4096], vals[4096];
	FILE *f = fopen("/proc/net/netstat", "r");
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(keys, sizeof(keys), f) && fgets(vals, sizeof(vals), f)) {
		char *ks, *vs, *k = strtok_r(keys, " \n", &ks), *val = strtok_r(vals, " \n", &vs);

		if (strcmp(k, "TcpExt:"))
			continue;
		while ((k = strtok_r(NULL, " \n", &ks)) && (val = strtok_r(NULL, " \n", &vs)))
			if (!strcmp(k, name))
				v = atoll(val);
	}
	fclose(f);
	return v;
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * A fresh pair with 16 KiB buffers set before connecting, the sender
 * non-blocking, and a thread draining the receiver into @d.
 */
static void small_buffers_draining(struct __test_metadata *_metadata,
				   FIXTURE_DATA(xfer) *self, struct drain *d)
{
	close(self->tx);
	close(self->rx);
	tcp_pair_opt(_metadata, self, 16384, false);
	d->sock = self->rx;
	ASSERT_EQ(0, fcntl(self->tx, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(0, pthread_create(&d->th, NULL, drain_thread, d));
}

/*
 * Defect 10: non-blocking STREAM with small socket buffers and a reader
 * draining: after EAGAIN, poll(2) must report the socket writable again
 * (it once did not, and the stream crawled). write(2) of the same bytes,
 * the same way, is the peer the log line compares with; TCG's timing makes
 * the figures informative only.
 */
TEST_F_TIMEOUT(xfer, nonblocking_small_buffers_make_progress, 300)
{
	struct dirtytrack_stream s = { .sockfd = self->tx, .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	struct drain d = { 0 };
	int ret, waits = 0;
	long long prune0 = tcpext("PruneCalled"), col0 = tcpext("TCPRcvCollapsed");
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	struct timespec t0;
	double t_write, t_stream;
	size_t off = 0;

	for (int p = 0; p < NP; p++)
		memset(self->smap + p * PS, p + 3, PS);
	small_buffers_draining(_metadata, self, &d);
	s.sockfd = self->tx;
	/* The peer: write(2) of the region's bytes, the same way. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (off < NP * PS) {
		ssize_t n = write(self->tx, self->smap + off, NP * PS - off);
		struct pollfd pfd = { .fd = self->tx, .events = POLLOUT };

		if (n > 0) {
			off += n;
			continue;
		}
		ASSERT_EQ(EAGAIN, errno);
		ASSERT_EQ(1, poll(&pfd, 1, 10000));
	}
	while (d.bytes < NP * PS)
		usleep(1000);
	t_write = since(&t0);
	d.bytes = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!s.done) {
		ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
		if (ret == -EAGAIN) {
			struct pollfd pfd = { .fd = self->tx, .events = POLLOUT };

			waits++;
			ASSERT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("never writable again");
			continue;
		}
		ASSERT_EQ(0, ret);
		s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	}
	while (d.bytes < s.bytes)
		usleep(1000);
	t_stream = since(&t0);
	atomic_store(&d.stop, 1);
	pthread_join(d.th, NULL);
	ASSERT_EQ(0, getsockopt(self->tx, IPPROTO_TCP, TCP_INFO, &ti, &tl));
	TH_LOG("1 MiB: write(2) %.3f s, STREAM %.3f s (%.1fx), %d waits; retransmits %u, "
	       "receiver prunes %lld, collapses %lld", t_write, t_stream, t_stream / t_write,
	       waits, ti.tcpi_total_retrans, tcpext("PruneCalled") - prune0,
	       tcpext("TCPRcvCollapsed") - col0);
	EXPECT_EQ(1, s.done);
}

/*
 * Defect 10, reproduced: with 16 KiB buffers set before connecting and a
 * mostly sparse source (ZERO records between payloads), non-blocking STREAM
 * moved a few KiB per second, poll(2) timing out after EAGAIN, while
 * write(2) of the same bytes took a fraction of a second. Zerocopy charged
 * a page of truesize per 32-byte record header; the receiver (this host)
 * scaled its window by len/truesize to below the sender's MSS, so TCP sent
 * only on its probe timer. Every EAGAIN must be followed by POLLOUT, the
 * transfer must end within a bounded number of waits, and the receiver's
 * window clamp must still admit a full-sized segment.
 */
TEST_F_TIMEOUT(xfer, nonblocking_sparse_source_small_buffers, 300)
{
	struct dirtytrack_stream s = { .npages = NP,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	struct drain d = { 0 };
	int ret, waits = 0, clamp;
	socklen_t cl = sizeof(clamp);
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	struct timespec t0;
	double wait_max = 0;
	uint64_t sent = 0;

	/* One page in 8 holds data; the rest are holes: ZERO records. */
	for (int p = 0; p < NP; p += 8)
		memset(self->smap + p * PS, p + 3, PS);
	small_buffers_draining(_metadata, self, &d);
	s.sockfd = self->tx;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!s.done) {
		ret = dt_xioctl(self->src, DIRTYTRACK_IOC_STREAM, &s);
		if (ret == -EAGAIN) {
			struct pollfd pfd = { .fd = self->tx, .events = POLLOUT };
			struct timespec w0;

			/* A batch is at most 64 records: 256 pages need a few dozen. */
			ASSERT_GT(200, ++waits) TH_LOG("%lu of %lu bytes sent", (unsigned long)sent,
						       (unsigned long)(NP / 8 * PS + NP * 32 + 64));
			clock_gettime(CLOCK_MONOTONIC, &w0);
			ASSERT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("not writable for 10 s, wait %d",
								  waits);
			if (since(&w0) > wait_max)
				wait_max = since(&w0);
			continue;
		}
		ASSERT_EQ(0, ret);
		sent += s.bytes;
		s.flags &= ~DIRTYTRACK_STREAM_HEADER;
	}
	while (d.bytes < sent)
		usleep(1000);
	atomic_store(&d.stop, 1);
	pthread_join(d.th, NULL);
	ASSERT_EQ(0, getsockopt(self->tx, IPPROTO_TCP, TCP_INFO, &ti, &tl));
	ASSERT_EQ(0, getsockopt(self->rx, IPPROTO_TCP, TCP_WINDOW_CLAMP, &clamp, &cl));
	TH_LOG("%lu bytes in %.3f s, %d waits (longest %.3f s); receiver window clamp %d, "
	       "sender MSS %u, retransmits %u", (unsigned long)sent, since(&t0), waits, wait_max,
	       clamp, ti.tcpi_snd_mss, ti.tcpi_total_retrans);
	/* Below one MSS, TCP sends only when its probe timer fires. */
	EXPECT_LE(ti.tcpi_snd_mss, (unsigned int)clamp);
}

TEST_HARNESS_MAIN
