// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz every ioctl of /dev/dirtytrack and of a region fd with random
 * arguments: valid templates with random fields set to random or edge values
 * (0, 1, page-1, npages, 2^32, 2^63, ~0, ...), structures and buffers that
 * are NULL, unmapped, PROT_NONE, read-only, kernel addresses, misaligned or
 * cut short by a guard page, sockets of every wrong kind, unknown command
 * numbers. Each call must return 0 or an errno that
 * Documentation/dirtytrack.rst lists for that ioctl, and the one the
 * arguments call for where the documentation pins it down (unknown flags or
 * nonzero reserved fields: EINVAL; a bad structure pointer: EFAULT; an unknown
 * command: ENOTTY; a valid call succeeds, output fields given as input are
 * ignored). After every call the region must still be consistent: STATS sane
 * and monotonic, no page populated or changed, every page written since its
 * last report still reported by a later HARVEST ("never lose a write", also
 * across failed calls). At the end the region must work normally: exact
 * harvests, manual protect, and a STREAM/RECEIVE round trip.
 *
 * DT_FUZZ_SEED=N fixes the seed (printed), DT_FUZZ_ITERS (default 20000) and
 * DT_FUZZ_SECONDS (default 40) bound the run, DT_FUZZ_TRACE=1 prints every
 * call before it is made (to find the call that crashed a kernel).
 *
 * Huge sizes stay safe for a 2 GiB guest: a size the kernel would allocate
 * (STREAM SRC_LIST) is kept below 1 MiB or pushed beyond INT_MAX, where
 * kvmalloc() refuses instead of eating the guest's memory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"

#define NP		512			/* pages of the fuzzed region: 2 MiB */
#define KADDR		0xffff888000000000ULL	/* the direct map */
#define GOOD_PAGES	16			/* good buffer: 64 KiB, then a guard */
#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

typedef unsigned __int128 eset;		/* a set of errnos (all below 128) */
#define E(e)		((eset)1 << (e))
#define WIRE_ERRS	(E(EBADMSG) | E(EPROTO) | E(EPROTONOSUPPORT) | E(EMSGSIZE) | \
			 E(ERANGE) | E(EILSEQ) | E(ENODATA))

enum op {
	OP_API, OP_CREATE, OP_TRACK_START, OP_TRACK_STOP, OP_HARVEST, OP_CLEAR,
	OP_STATS, OP_STREAM, OP_RECEIVE, OP_THROTTLE, OP_UNKNOWN, OP_CROSS, NOPS
};

static const char *const op_name[] = {
	"API", "CREATE_REGION", "TRACK_START", "TRACK_STOP", "HARVEST", "CLEAR",
	"STATS", "STREAM", "RECEIVE", "THROTTLE", "unknown cmd", "other fd's cmd",
};

/* Documentation/dirtytrack.rst, per ioctl ("Errors:" lines and the common rules). */
static const eset documented[NOPS] = {
	[OP_API] = E(EINVAL) | E(EFAULT),
	[OP_CREATE] = E(EINVAL) | E(EFBIG) | E(ENOMEM) | E(EMFILE) | E(EFAULT),
	[OP_TRACK_START] = E(EINVAL) | E(EFAULT),
	[OP_TRACK_STOP] = E(EINVAL) | E(EFAULT),
	[OP_HARVEST] = E(EINVAL) | E(ENOSPC) | E(EFAULT) | E(ENOMEM),
	[OP_CLEAR] = E(EINVAL) | E(ENOSPC) | E(EFAULT),
	[OP_STATS] = E(EFAULT),
	[OP_STREAM] = E(EINVAL) | E(ENOSPC) | E(ERANGE) | E(EFAULT) | E(ENOTSOCK) |
		      E(EBADF) | E(EOPNOTSUPP) | E(ENOTCONN) | E(EBUSY) | E(EPIPE) |
		      E(ECONNRESET) | E(EAGAIN) | E(EINTR),
	/*
	 * RECEIVE's section lists only the wire errors, EINVAL/EFAULT (common
	 * rules) and EAGAIN/EINTR ("Signals and O_NONBLOCK"); its socket errors
	 * are taken to be STREAM's (sockfd is "a connected TCP socket" in both).
	 */
	[OP_RECEIVE] = WIRE_ERRS | E(EINVAL) | E(EFAULT) | E(EAGAIN) | E(EINTR) |
		       E(ENOTSOCK) | E(EBADF) | E(EOPNOTSUPP) | E(ENOTCONN) | E(ECONNRESET),
	[OP_THROTTLE] = E(EINVAL) | E(EFAULT),
	[OP_UNKNOWN] = E(ENOTTY),
	[OP_CROSS] = E(ENOTTY),
};

/* ---- random numbers ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return dt_rand(&rng_state);
}

static uint64_t below(uint64_t n)
{
	return dt_rand_below(&rng_state, n);
}

static bool chance(unsigned int pct)
{
	return below(100) < pct;
}

static uint64_t edge(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 7, 8, 63, 64, 65, PS - 1, PS, PS + 1, NP - 1, NP, NP + 1,
		2 * NP, NP * PS, NP * PS - 1, 0x7fffffffULL, 0x80000000ULL,
		0xffffffffULL, 1ULL << 32, (1ULL << 32) + 8, 1ULL << 48, 1ULL << 62,
		(1ULL << 63) - 1, 1ULL << 63, ~7ULL, ~0ULL, KADDR,
	};

	switch (below(5)) {
	case 0:
		return rnd();
	case 1:
		return below(2 * NP);
	case 2:
		return rnd() >> below(64);
	default:
		return v[below(ARRAY_LEN(v))];
	}
}

/* ---- the fuzzer's state ---- */

enum sk_kind {
	SK_OK,		/* connected TCP, blocking, peer drained */
	SK_NB,		/* connected TCP, O_NONBLOCK, small buffers, peer drained */
	SK_RX_IDLE,	/* connected TCP, O_NONBLOCK, the peer never writes */
	SK_RX_JUNK,	/* connected TCP, the peer wrote junk and shut down */
	SK_CLOSED,	/* connected TCP whose peer has closed */
	SK_UDP, SK_UNIX, SK_UNCONN, SK_LISTEN,
	SK_PIPE, SK_EVENTFD, SK_FILE, SK_DEV, SK_REGION,
	SK_BADFD,	/* no such fd */
	NSK
};

static const char *const sk_name[NSK] = {
	"tcp", "tcp-nonblock", "tcp-idle-nonblock", "tcp-junk-eof", "tcp-peer-closed",
	"udp", "unix-stream", "tcp-unconnected", "tcp-listening", "pipe", "eventfd",
	"regular-file", "/dev/dirtytrack", "region-fd", "bad-fd",
};

enum ptr_kind {
	P_GOOD, P_MISALIGNED, P_SHORT, P_NULL, P_UNMAPPED, P_NONE, P_RO, P_KERNEL,
	P_NONCANON, P_LOW, NPK
};

static const char *const pk_name[NPK] = {
	"good", "misaligned", "short", "NULL", "unmapped", "PROT_NONE", "read-only",
	"kernel", "non-canonical", "low",
};

struct fz {
	int dev, rfd;
	char *map;			/* the region, mapped */
	char *good, *good2;		/* GOOD_PAGES RW pages, then a PROT_NONE guard */
	char *ro, *none, *hole;		/* 4 pages each: PROT_READ, PROT_NONE, unmapped */
	char *arg;			/* RW page + PROT_NONE guard: the ioctl's structure */
	char *arg_ro;			/* one page, read-only but for our copies */
	int sk[NSK];
	int sk_peer_ok, sk_peer_nb;	/* drained by the drain thread */
	int sk_peer_idle, sk_peer_junk;
	pthread_t drain;
	atomic_int stop;

	uint64_t features, max_region;
	bool tracking, manual;
	uint64_t pps;			/* the write-fault budget set */
	uint64_t expect[NP / 64];	/* written since last reported: must be reported */
	uint64_t populated;		/* pages holding memory, constant */
	struct dirtytrack_stats st;	/* the last STATS */

	uint64_t seed;
	long iter;
	bool trace;
	int failures;
	long calls[NOPS], ok[NOPS];
	long errs[NOPS][128];
	char cur[768];			/* the call under way, for the watchdog */
};

static struct fz *F;

#define fail(fmt, ...) do {							\
	F->failures++;								\
	if (F->failures <= 30)							\
		fprintf(stderr, "# FAIL seed %llu iter %ld: " fmt "\n#   call: %s\n", \
			(unsigned long long)F->seed, F->iter, ##__VA_ARGS__, F->cur); \
} while (0)

static void on_watchdog(int sig)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg),
			 "# FAIL seed %llu iter %ld: call hung for 30 s: %s\n",
			 (unsigned long long)F->seed, F->iter, F->cur);

	(void)sig;
	if (write(2, msg, n) < 0)
		_exit(3);
	_exit(2);
}

/* ---- setup ---- */

static char *map_area(size_t pages, int prot)
{
	char *p = mmap(NULL, pages * PS, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void *drain_thread(void *p)
{
	struct fz *f = p;
	static char buf[1 << 16];

	while (!atomic_load(&f->stop)) {
		struct pollfd pfd[2] = { { .fd = f->sk_peer_ok, .events = POLLIN },
					 { .fd = f->sk_peer_nb, .events = POLLIN } };

		if (poll(pfd, 2, 50) <= 0)
			continue;
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN &&
			    read(pfd[i].fd, buf, sizeof(buf)) <= 0)
				pfd[i].fd = -1;
	}
	return NULL;
}

static int make_sockets(struct fz *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int small = 8192, p[2], peer, sv[2];
	char junk[300];

	if (dt_tcp_pair(&f->sk[SK_OK], &f->sk_peer_ok) ||
	    dt_tcp_pair(&f->sk[SK_NB], &f->sk_peer_nb) ||
	    dt_tcp_pair(&f->sk[SK_RX_IDLE], &f->sk_peer_idle) ||
	    dt_tcp_pair(&f->sk[SK_RX_JUNK], &f->sk_peer_junk) ||
	    dt_tcp_pair(&f->sk[SK_CLOSED], &peer))
		return -1;
	setsockopt(f->sk[SK_NB], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(f->sk[SK_NB], F_SETFL, O_NONBLOCK);
	fcntl(f->sk[SK_RX_IDLE], F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)rnd();
	if (write(f->sk_peer_junk, junk, sizeof(junk)) != sizeof(junk))
		return -1;
	shutdown(f->sk_peer_junk, SHUT_WR);
	close(peer);
	f->sk[SK_UDP] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	f->sk[SK_UNIX] = sv[0];
	f->sk[SK_UNCONN] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f->sk[SK_LISTEN] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(f->sk[SK_LISTEN], (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(f->sk[SK_LISTEN], 1))
		return -1;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return -1;
	f->sk[SK_PIPE] = p[0];
	f->sk[SK_EVENTFD] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->sk[SK_FILE] = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	f->sk[SK_DEV] = f->dev;
	f->sk[SK_REGION] = f->rfd;
	f->sk[SK_BADFD] = 9999;
	for (int i = 0; i < NSK; i++)
		if (f->sk[i] < 0)
			return -1;
	return pthread_create(&f->drain, NULL, drain_thread, f);
}

/* Page i's contents: a pattern for two pages in three, holes for the rest. */
static bool page_populated(uint64_t i)
{
	return i % 3 != 0;
}

static char page_byte(uint64_t i)
{
	return (char)(i * 7 + 1) | 1;
}

static const uint64_t sentinels[] = { 1, 64, 254, 256, NP - 1 };

/* Write a byte of the region with its own value: a write, no change. */
static void touch(char *p)
{
	volatile char *v = p;

	*v = *v;
}

/* ---- helpers around the region ---- */

static bool bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static void setbit(uint64_t *map, uint64_t i, bool v)
{
	if (v)
		map[i / 64] |= 1ULL << (i % 64);
	else
		map[i / 64] &= ~(1ULL << (i % 64));
}

/* A send left pending (O_NONBLOCK) keeps pages in flight: finish it. */
static void flush_pending(struct fz *f)
{
	for (int k = 0; k < 2; k++) {
		int sk = f->sk[k ? SK_OK : SK_NB];
		struct dirtytrack_stream s = { .sockfd = sk, .npages = 1,
					       .flags = DIRTYTRACK_STREAM_SRC_RANGE };
		int ret;

		fcntl(sk, F_SETFL, 0);
		ret = dt_xioctl(f->rfd, DIRTYTRACK_IOC_STREAM, &s);
		if (sk == f->sk[SK_NB])
			fcntl(sk, F_SETFL, O_NONBLOCK);
		if (ret && ret != -EBUSY)
			fail("flush on %s: %s", k ? "tcp" : "tcp-nonblock", strerror(-ret));
	}
}

/* Write the sentinel pages again (same bytes): they must be reported. */
static void rearm(struct fz *f)
{
	if (!f->tracking)
		return;
	snprintf(f->cur, sizeof(f->cur), "re-writing the sentinel pages");
	flush_pending(f);
	alarm(30);
	for (size_t i = 0; i < ARRAY_LEN(sentinels); i++) {
		touch(f->map + sentinels[i] * PS + below(PS));
		setbit(f->expect, sentinels[i], true);
	}
	alarm(0);
}

static void check_stats(struct fz *f, const struct dirtytrack_stats *s)
{
	uint32_t state = (f->tracking ? DIRTYTRACK_STATE_TRACKING : 0) |
			 (f->tracking && f->manual ? DIRTYTRACK_STATE_MANUAL_PROTECT : 0);

	if (s->size != NP * PS)
		fail("STATS size %llu, not %lu", (unsigned long long)s->size, NP * PS);
	if (s->pages_populated != f->populated)
		fail("STATS pages_populated %llu, not %llu",
		     (unsigned long long)s->pages_populated, (unsigned long long)f->populated);
	/* MANUAL_PROTECT while stopped is not pinned down: compare TRACKING only then. */
	if ((f->tracking ? s->state : s->state & DIRTYTRACK_STATE_TRACKING) != state)
		fail("STATS state %#x, expected %#x", s->state, state);
	if (s->write_faults < f->st.write_faults || s->harvests < f->st.harvests ||
	    s->pages_reported < f->st.pages_reported || s->harvest_ns < f->st.harvest_ns ||
	    s->pages_protected < f->st.pages_protected || s->pages_unshared < f->st.pages_unshared)
		fail("STATS counters went backwards");
	if (s->reserved)
		fail("STATS reserved fields not zero");
	if (s->throttle_pps != f->pps || s->throttled < f->st.throttled ||
	    s->throttle_ns < f->st.throttle_ns)
		fail("STATS throttle_pps %llu (set %llu), or its counters went backwards",
		     (unsigned long long)s->throttle_pps, (unsigned long long)f->pps);
	f->st = *s;
}

static void stats_now(struct fz *f)
{
	struct dirtytrack_stats s;

	memset(&s, 0xa5, sizeof(s));
	if (dt_xioctl(f->rfd, DIRTYTRACK_IOC_STATS, &s))
		fail("STATS with a good pointer failed");
	else
		check_stats(f, &s);
}

/* ---- pointers ---- */

/*
 * Four pages nothing is mapped at. An unmapped range is free for any later
 * mmap (a thread's stack, a library's buffer): if anything was mapped there
 * since, a pointer into it would be a good one, and the fuzz would expect
 * EFAULT from a call that reads or writes real memory. So check before
 * each use, and take a fresh hole when the old one is gone.
 */
static char *hole(struct fz *f)
{
	char *h;

	for (int i = 0; i < 4; i++)
		if (!msync(f->hole + i * PS, PS, MS_ASYNC) || errno != ENOMEM)
			goto remap;
	return f->hole;
remap:
	h = map_area(4, PROT_NONE);
	if (!h || munmap(h, 4 * PS))
		fail("no unmapped range for the fuzz's bad pointers");
	else
		f->hole = h;
	return f->hole;
}

/*
 * A buffer pointer of kind k; *rd and *wr get how many bytes from it the
 * kernel can read and write (0 for bad pointers), capped at cap.
 */
static uint64_t gen_ptr_in(struct fz *f, char *good, enum ptr_kind k, uint64_t need,
			   uint64_t *rd, uint64_t *wr)
{
	const uint64_t glen = GOOD_PAGES * PS;
	uint64_t off;

	*rd = *wr = 0;
	switch (k) {
	case P_GOOD:
		*rd = *wr = glen;
		return (uintptr_t)good;
	case P_MISALIGNED:
		off = 1 + below(7);
		*rd = *wr = glen - off;
		return (uintptr_t)good + off;
	case P_SHORT:		/* ends at the guard page */
		off = below((need < glen ? need : glen) + 1);
		*rd = *wr = off;
		return (uintptr_t)good + glen - off;
	case P_NULL:
		return 0;
	case P_UNMAPPED:
		return (uintptr_t)hole(f) + below(4 * PS);
	case P_NONE:
		return (uintptr_t)f->none + 8 * below(PS / 2);
	case P_RO:
		off = 8 * below(64);
		*rd = 4 * PS - off;
		return (uintptr_t)f->ro + off;
	case P_KERNEL:
		return KADDR + 8 * below(1024);
	case P_NONCANON:
		return chance(50) ? 0x0000800000000000ULL : 0xdead000000000000ULL;
	default:
		return below(PS);
	}
}

static uint64_t gen_ptr(struct fz *f, enum ptr_kind k, uint64_t need, uint64_t *rd, uint64_t *wr)
{
	return gen_ptr_in(f, f->good, k, need, rd, wr);
}

static enum ptr_kind pick_ptr(void)
{
	return chance(70) ? (chance(80) ? P_GOOD : P_MISALIGNED) : (enum ptr_kind)below(NPK);
}

/*
 * How many bytes at address p the kernel can read (*rd) and write (*wr):
 * true if we know, false for an address of unknown use (a mutated pointer
 * may land on any of our mappings), where nothing is pinned down.
 */
static bool span(struct fz *f, uint64_t p, uint64_t *rd, uint64_t *wr)
{
	uint64_t g = (uintptr_t)f->good, g2 = (uintptr_t)f->good2, r = (uintptr_t)f->ro;
	uint64_t n = (uintptr_t)f->none, h = (uintptr_t)f->hole;

	*rd = *wr = 0;
	if (p >= g && p < g + GOOD_PAGES * PS)
		*rd = *wr = g + GOOD_PAGES * PS - p;
	else if (p >= g2 && p < g2 + GOOD_PAGES * PS)
		*rd = *wr = g2 + GOOD_PAGES * PS - p;
	else if (p >= r && p < r + 4 * PS)
		*rd = r + 4 * PS - p;
	else if (!((p >= n && p < n + 4 * PS) || (p >= h && p < h + 4 * PS) ||
		   p < 0x10000 || p >= 0x0000800000000000ULL))
		return false;
	return true;
}

/* ---- calls ---- */

enum arg_kind { A_GOOD, A_MISALIGNED, A_RO, A_STRADDLE, A_NULL, A_UNMAPPED, A_KERNEL, NAK };

static const char *const ak_name[NAK] = {
	"good", "misaligned", "read-only", "straddling a guard", "NULL", "unmapped", "kernel",
};

struct call {
	enum op op;
	int fd;
	unsigned long cmd;
	enum arg_kind ak;
	size_t size;
	union {
		struct dirtytrack_api api;
		struct dirtytrack_create create;
		struct dirtytrack_track track;
		struct dirtytrack_harvest harvest;
		struct dirtytrack_clear clear;
		struct dirtytrack_stats stats;
		struct dirtytrack_stream stream;
		struct dirtytrack_receive receive;
		struct dirtytrack_throttle throttle;
		unsigned char raw[512];
	} in, out;
	bool have_out;		/* out holds what the kernel wrote back */
	char note[256];
	eset viol, may;		/* the verdict, see judge() */
	bool strict;
};

static bool arg_readable(enum arg_kind k)
{
	return k == A_GOOD || k == A_MISALIGNED || k == A_RO;
}

static bool arg_writable(enum arg_kind k)
{
	return k == A_GOOD || k == A_MISALIGNED;
}

static enum arg_kind pick_arg(void)
{
	return chance(80) ? A_GOOD : (enum arg_kind)below(NAK);
}

static void describe(struct fz *f, struct call *c)
{
	int n = snprintf(f->cur, sizeof(f->cur), "%s cmd %#lx on %s, arg %s:",
			 op_name[c->op], c->cmd, c->fd == f->dev ? "dev" : "region",
			 ak_name[c->ak]);

	for (size_t i = 0; i < c->size && i < 104 && n < (int)sizeof(f->cur) - 40; i += 8) {
		uint64_t v;

		memcpy(&v, c->in.raw + i, 8);
		n += snprintf(f->cur + n, sizeof(f->cur) - n, " %llx", (unsigned long long)v);
	}
	if (c->note[0] && n < (int)sizeof(f->cur) - 2)
		snprintf(f->cur + n, sizeof(f->cur) - n, " (%s)", c->note);
}

static int issue(struct fz *f, struct call *c)
{
	void *arg;
	int ret;

	switch (c->ak) {
	case A_GOOD:
		arg = f->arg;
		break;
	case A_MISALIGNED:
		arg = f->arg + 1 + below(7);
		break;
	case A_RO:
		mprotect(f->arg_ro, PS, PROT_READ | PROT_WRITE);
		arg = f->arg_ro;
		break;
	case A_STRADDLE:
		arg = f->arg + PS - (c->size ? 1 + below(c->size - 1) : 1);
		break;
	case A_NULL:
		arg = NULL;
		break;
	case A_UNMAPPED:
		arg = hole(f) + 8 * below(PS / 8);
		break;
	default:
		arg = (void *)(uintptr_t)(KADDR + 8 * below(512));
		break;
	}
	if (arg_readable(c->ak) || c->ak == A_STRADDLE)
		memcpy(arg, c->in.raw, c->ak == A_STRADDLE ? (size_t)(f->arg + PS - (char *)arg) : c->size);
	if (c->ak == A_RO)
		mprotect(f->arg_ro, PS, PROT_READ);
	describe(f, c);
	if (f->trace) {
		fprintf(stderr, "# iter %ld: %s\n", f->iter, f->cur);
		fflush(stderr);
	}
	alarm(30);
	ret = ioctl(c->fd, c->cmd, arg);
	ret = ret < 0 ? -errno : ret;
	alarm(0);
	c->have_out = arg_writable(c->ak);
	if (c->have_out)
		memcpy(c->out.raw, arg, c->size);
	return ret;
}

static bool in_set(eset s, int e)
{
	return e > 0 && e < 128 && (s >> e & 1);
}

static void list_set(char *buf, size_t len, eset s)
{
	size_t n = 0;

	buf[0] = 0;
	for (int e = 1; e < 128 && n < len - 24; e++)
		if (in_set(s, e))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", strerrorname_np(e));
}

/*
 * The verdict: with a violation (viol) the call must fail with one of viol
 * or may; strict: with exactly one of viol. Without one it must succeed or
 * fail with one of may. And never with an errno the documentation lacks.
 */
static bool judge(struct fz *f, struct call *c, int ret)
{
	eset allowed = c->strict ? c->viol : c->viol | c->may;
	int e = ret < 0 ? -ret : 0;
	char a[256];

	f->calls[c->op]++;
	if (ret >= 0)
		f->ok[c->op]++;
	else if (e < 128)
		f->errs[c->op][e]++;
	if (ret < 0 && !in_set(documented[c->op], e)) {
		fail("%s returned %s, which its documentation does not list",
		     op_name[c->op], strerrorname_np(e) ?: "?");
		return false;
	}
	if (c->viol && ret >= 0) {
		list_set(a, sizeof(a), c->viol);
		fail("%s succeeded; expected %s", op_name[c->op], a);
		return false;
	}
	if (ret < 0 && !in_set(allowed, e)) {
		list_set(a, sizeof(a), allowed);
		fail("%s returned %s; expected %s%s%s", op_name[c->op], strerrorname_np(e) ?: "?",
		     c->viol ? "" : "success", !c->viol && a[0] ? " or " : "", a);
		return false;
	}
	return ret >= 0;
}

/* Common prologue: the structure pointer and what it implies. */
static void begin(struct fz *f, struct call *c, enum op op, int fd, unsigned long cmd,
		  size_t size, bool writes_back)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->fd = fd;
	c->cmd = cmd;
	c->size = size;
	c->ak = pick_arg();
	(void)writes_back;
	(void)f;
	for (size_t i = 0; i < size; i++)	/* outputs: random garbage */
		c->in.raw[i] = (unsigned char)rnd();
}

/*
 * After the fields are set: an unreadable structure is EFAULT and nothing
 * else; a read-only one fails once the kernel writes back.
 */
static void finish_verdict(struct call *c, bool writes_back, bool flags_bad)
{
	if (!arg_readable(c->ak)) {
		c->viol = E(EFAULT);
		c->may = 0;
		c->strict = true;
		return;
	}
	if (flags_bad) {
		c->viol = E(EINVAL);
		c->may = 0;
		c->strict = true;
		return;
	}
	if (writes_back && c->ak == A_RO)
		c->viol |= E(EFAULT);
}

/* Mutate a few fields of the structure (each given as offset/width). */
struct field {
	unsigned short off, width;
};

static void mutate(struct call *c, const struct field *fl, size_t n)
{
	int k = chance(30) ? 0 : 1 + below(3);

	while (k--) {
		const struct field *x = &fl[below(n)];
		uint64_t v = edge();

		memcpy(c->in.raw + x->off, &v, x->width);
	}
}

#define FLD(type, m) { offsetof(type, m), sizeof(((type *)0)->m) }

/* ---- API and CREATE_REGION ---- */

static void fuzz_api(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_api, api), FLD(struct dirtytrack_api, reserved),
		FLD(struct dirtytrack_api, features),
	};
	struct call c;
	struct dirtytrack_api *a = &c.in.api;
	int ret;

	begin(f, &c, OP_API, f->dev, DIRTYTRACK_IOC_API, sizeof(*a), true);
	a->api = DIRTYTRACK_API_VERSION;
	a->reserved = 0;
	a->features = rnd() & f->features;
	mutate(&c, fl, ARRAY_LEN(fl));
	if (a->api != DIRTYTRACK_API_VERSION || a->reserved || (a->features & ~f->features))
		c.viol = E(EINVAL);
	finish_verdict(&c, true, false);
	ret = issue(f, &c);
	judge(f, &c, ret);
	if (c.have_out && (ret == 0 || ret == -EINVAL) &&
	    (c.out.api.api != DIRTYTRACK_API_VERSION || c.out.api.features != f->features))
		fail("API wrote back api %u features %#llx", c.out.api.api,
		     (unsigned long long)c.out.api.features);
}

static void fuzz_create(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_create, size), FLD(struct dirtytrack_create, size),
		FLD(struct dirtytrack_create, flags), FLD(struct dirtytrack_create, reserved),
		FLD(struct dirtytrack_create, reserved2[0]), FLD(struct dirtytrack_create, reserved2[1]),
	};
	struct call c;
	struct dirtytrack_create *a = &c.in.create;
	bool flags_bad;
	struct stat st;
	int ret;

	begin(f, &c, OP_CREATE, f->dev, DIRTYTRACK_IOC_CREATE_REGION, sizeof(*a), false);
	memset(a, 0, sizeof(*a));
	a->size = PS * (1 + below(64));
	mutate(&c, fl, ARRAY_LEN(fl));
	if (chance(10))		/* the largest sizes that are still allowed */
		a->size = f->max_region - PS * below(2);
	flags_bad = a->flags || a->reserved || a->reserved2[0] || a->reserved2[1];
	if (!a->size || a->size % PS)
		c.viol |= E(EINVAL);
	if (a->size > f->max_region)
		c.viol |= E(EFBIG);
	c.may = E(ENOMEM) | E(EMFILE);
	finish_verdict(&c, false, flags_bad);
	ret = issue(f, &c);
	if (!judge(f, &c, ret))
		return;
	if (fstat(ret, &st) || (uint64_t)st.st_size != a->size)
		fail("CREATE_REGION of %llu bytes: fstat says %lld",
		     (unsigned long long)a->size, (long long)st.st_size);
	if (!(fcntl(ret, F_GETFD) & FD_CLOEXEC))
		fail("region fd without close-on-exec");
	close(ret);
}

/* ---- tracking ---- */

static void fuzz_track(struct fz *f, bool start)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_track, flags), FLD(struct dirtytrack_track, reserved),
		FLD(struct dirtytrack_track, reserved2),
	};
	struct call c;
	struct dirtytrack_track *a = &c.in.track;
	bool flags_bad;
	int ret;

	begin(f, &c, start ? OP_TRACK_START : OP_TRACK_STOP, f->rfd,
	      start ? DIRTYTRACK_IOC_TRACK_START : DIRTYTRACK_IOC_TRACK_STOP, sizeof(*a), false);
	memset(a, 0, sizeof(*a));
	a->flags = start && chance(40) ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0;
	if (chance(50))
		mutate(&c, fl, ARRAY_LEN(fl));
	flags_bad = (a->flags & ~(start ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0)) ||
		    a->reserved || a->reserved2;
	if (!start && !f->tracking)
		c.viol = E(EINVAL);
	finish_verdict(&c, false, flags_bad);
	ret = issue(f, &c);
	if (!judge(f, &c, ret))
		return;
	/* Starting forgets all dirtiness; stopping too (a restart forgets). */
	memset(f->expect, 0, sizeof(f->expect));
	f->tracking = start;
	if (start)
		f->manual = a->flags & DIRTYTRACK_TRACK_MANUAL_PROTECT;
	rearm(f);
}

/* ---- HARVEST ---- */

static uint64_t bitmap_bytes(uint64_t npages)
{
	return 8 * ((npages + 63) / 64);
}

static bool range_ok(uint64_t first, uint64_t npages)
{
	return npages && first < NP && npages <= NP - first;
}

/* A sentinel in [from, to) expected dirty: reported, or it was lost. */
static void check_reported(struct fz *f, const char *what, uint64_t from, uint64_t to,
			   bool (*reported)(struct fz *f, uint64_t page, void *ctx), void *ctx,
			   bool consume)
{
	for (size_t i = 0; i < ARRAY_LEN(sentinels); i++) {
		uint64_t p = sentinels[i];

		if (p < from || p >= to || !bit(f->expect, p))
			continue;
		if (!reported(f, p, ctx))
			fail("%s: page %llu, written since its last report, not reported "
			     "(range done [%llu, %llu))", what, (unsigned long long)p,
			     (unsigned long long)from, (unsigned long long)to);
		if (consume)
			setbit(f->expect, p, false);
	}
}

struct hv_out {
	const struct dirtytrack_harvest *h;
	const unsigned char *buf, *zbuf;
	uint64_t rd, zrd;		/* readable bytes at buf, zbuf */
};

static bool hv_reported(struct fz *f, uint64_t p, void *ctx)
{
	struct hv_out *o = ctx;
	const struct dirtytrack_harvest *h = o->h;
	uint64_t i = p - h->first_page;

	(void)f;
	if (h->flags & DIRTYTRACK_HARVEST_LIST) {
		for (uint64_t k = 0; k < h->dirty && (k + 1) * 8 <= o->rd; k++) {
			uint64_t v;

			memcpy(&v, o->buf + k * 8, 8);
			if (v == p)
				return true;
		}
		return false;
	}
	if (i / 8 >= o->rd)
		return false;
	if (o->zbuf && i / 8 < o->zrd && (o->zbuf[i / 8] >> (i % 8) & 1))
		return false;		/* reported as a hole: it is not one */
	return o->buf[i / 8] >> (i % 8) & 1;
}

static void fuzz_harvest(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_harvest, first_page), FLD(struct dirtytrack_harvest, npages),
		FLD(struct dirtytrack_harvest, buf), FLD(struct dirtytrack_harvest, buf_size),
		FLD(struct dirtytrack_harvest, buf_size), FLD(struct dirtytrack_harvest, zero_buf),
		FLD(struct dirtytrack_harvest, flags), FLD(struct dirtytrack_harvest, reserved),
		FLD(struct dirtytrack_harvest, reserved2[0]), FLD(struct dirtytrack_harvest, reserved2[1]),
	};
	struct call c;
	struct dirtytrack_harvest *h = &c.in.harvest;
	const struct dirtytrack_harvest *o = &c.out.harvest;
	uint64_t brd, bwr, zrd = 0, zwr = 0, need, end;
	enum ptr_kind bk = pick_ptr(), zk = pick_ptr();
	bool list, flags_bad, bad_out, known;
	struct hv_out ho;
	int ret;

	begin(f, &c, OP_HARVEST, f->rfd, DIRTYTRACK_IOC_HARVEST, sizeof(*h), true);
	list = chance(35);
	h->first_page = chance(50) ? 0 : below(NP);
	h->npages = chance(50) ? NP - h->first_page : 1 + below(NP - h->first_page);
	need = bitmap_bytes(h->npages);
	h->flags = list ? DIRTYTRACK_HARVEST_LIST : 0;
	h->buf = gen_ptr(f, bk, need, &brd, &bwr);
	h->buf_size = list ? 8 * (1 + below(chance(50) ? 4 : NP)) : need + 8 * below(3);
	h->zero_buf = !list && chance(30) ? gen_ptr_in(f, f->good2, zk, need, &zrd, &zwr) : 0;
	h->reserved = 0;
	h->reserved2[0] = h->reserved2[1] = 0;
	mutate(&c, fl, ARRAY_LEN(fl));
	/* what the (maybe mutated) pointers point to */
	known = span(f, h->buf, &brd, &bwr);
	known &= span(f, h->zero_buf, &zrd, &zwr);
	list = h->flags & DIRTYTRACK_HARVEST_LIST;
	flags_bad = (h->flags & ~DIRTYTRACK_HARVEST_LIST) || h->reserved ||
		    h->reserved2[0] || h->reserved2[1];
	if (!range_ok(h->first_page, h->npages) || !h->buf ||
	    (list && (h->zero_buf || !h->buf_size || h->buf_size % 8)) || !f->tracking)
		c.viol |= E(EINVAL);
	need = range_ok(h->first_page, h->npages) ? bitmap_bytes(h->npages) : 0;
	if (!list && range_ok(h->first_page, h->npages) && h->buf_size < need)
		c.viol |= E(ENOSPC);
	/* Outputs it cannot write: EFAULT, or a partial result. */
	bad_out = list ? bwr < h->buf_size : bwr < need || (h->zero_buf && zwr < need);
	c.may = E(ENOMEM) | (bad_out ? E(EFAULT) : 0);
	snprintf(c.note, sizeof(c.note), "buf %s, zero_buf %s", pk_name[bk], pk_name[zk]);
	finish_verdict(&c, true, flags_bad);
	memset(f->good, 0xa5, GOOD_PAGES * PS);
	memset(f->good2, 0xa5, GOOD_PAGES * PS);
	ret = issue(f, &c);
	if (!judge(f, &c, ret) || !c.have_out)
		return;
	end = h->first_page + h->npages;
	if (!known) {		/* output we cannot read: what it took is gone */
		for (size_t i = 0; i < ARRAY_LEN(sentinels) && !f->manual; i++)
			if (sentinels[i] >= h->first_page && sentinels[i] < end)
				setbit(f->expect, sentinels[i], false);
		return;
	}
	if (o->next_page < h->first_page || o->next_page > end ||
	    o->dirty > o->next_page - h->first_page ||
	    (list && o->dirty > h->buf_size / 8)) {
		fail("HARVEST output next_page %llu dirty %llu out of bounds",
		     (unsigned long long)o->next_page, (unsigned long long)o->dirty);
		return;
	}
	if (!bad_out && o->next_page != end && !(list && o->dirty == h->buf_size / 8))
		fail("HARVEST stopped at %llu with room left", (unsigned long long)o->next_page);
	/* Never lose a write: every sentinel in the examined range is reported. */
	ho = (struct hv_out){ .h = h, .buf = (void *)(uintptr_t)h->buf, .rd = bwr,
			      .zbuf = (void *)(uintptr_t)h->zero_buf, .zrd = zwr };
	if (!h->zero_buf)
		ho.zbuf = NULL;
	if (list) {
		struct dirtytrack_harvest hh = *h;

		hh.dirty = o->dirty;
		ho.h = &hh;
		uint64_t pv = 0;

		for (uint64_t k = 0; k < o->dirty && (k + 1) * 8 <= bwr; k++) {
			uint64_t v;

			memcpy(&v, ho.buf + k * 8, 8);
			if ((v & DIRTYTRACK_PAGE_INDEX_MASK) < h->first_page ||
			    (v & DIRTYTRACK_PAGE_INDEX_MASK) >= o->next_page ||
			    (k && (v & DIRTYTRACK_PAGE_INDEX_MASK) <= (pv & DIRTYTRACK_PAGE_INDEX_MASK)))
				fail("HARVEST list entry %llu = %#llx", (unsigned long long)k,
				     (unsigned long long)v);
			pv = v;
		}
		check_reported(f, "HARVEST list", h->first_page, o->next_page, hv_reported, &ho,
			       !f->manual);
	} else {
		check_reported(f, "HARVEST bitmap", h->first_page, o->next_page, hv_reported, &ho,
			       !f->manual);
		/* nothing written past the bitmap */
		if (bwr >= need + 8 && h->buf_size >= need + 8 &&
		    ((unsigned char *)(uintptr_t)h->buf)[need] != 0xa5)
			fail("HARVEST wrote past the %llu bitmap bytes", (unsigned long long)need);
	}
}

/* ---- CLEAR ---- */

struct clr_ctx {
	const struct dirtytrack_clear *c;
	const unsigned char *mask;
};

static bool clr_selected(struct fz *f, uint64_t p, void *ctx)
{
	struct clr_ctx *x = ctx;
	uint64_t i = p - x->c->first_page;

	(void)f;
	if (!x->mask)
		return true;
	return x->mask[i / 8] >> (i % 8) & 1;
}

static void fuzz_clear(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_clear, first_page), FLD(struct dirtytrack_clear, npages),
		FLD(struct dirtytrack_clear, bitmap), FLD(struct dirtytrack_clear, bitmap_size),
		FLD(struct dirtytrack_clear, flags), FLD(struct dirtytrack_clear, reserved),
		FLD(struct dirtytrack_clear, reserved2[0]), FLD(struct dirtytrack_clear, reserved2[1]),
	};
	struct call c;
	struct dirtytrack_clear *a = &c.in.clear;
	enum ptr_kind bk = pick_ptr();
	uint64_t rd = 0, wr, need;
	bool flags_bad, known;
	static unsigned char mask[GOOD_PAGES * PS];
	struct clr_ctx x;
	int ret;

	begin(f, &c, OP_CLEAR, f->rfd, DIRTYTRACK_IOC_CLEAR, sizeof(*a), true);
	a->first_page = chance(50) ? 0 : below(NP);
	a->npages = chance(50) ? NP - a->first_page : 1 + below(NP - a->first_page);
	need = bitmap_bytes(a->npages);
	a->bitmap = chance(50) ? gen_ptr(f, bk, need, &rd, &wr) : 0;
	a->bitmap_size = a->bitmap ? need + 8 * below(2) : 0;
	a->flags = a->reserved = 0;
	a->reserved2[0] = a->reserved2[1] = 0;
	/* a->cleared: an output, left random */
	mutate(&c, fl, ARRAY_LEN(fl));
	known = span(f, a->bitmap, &rd, &wr);
	flags_bad = a->flags || a->reserved || a->reserved2[0] || a->reserved2[1];
	if (!range_ok(a->first_page, a->npages) || !a->bitmap != !a->bitmap_size || !f->tracking)
		c.viol |= E(EINVAL);
	if (range_ok(a->first_page, a->npages) && a->bitmap && a->bitmap_size) {
		need = bitmap_bytes(a->npages);
		if (a->bitmap_size < need)
			c.viol |= E(ENOSPC);
		else if (!known)
			c.may |= E(EFAULT);
		else if (rd < need)
			c.viol |= E(EFAULT);
	}
	snprintf(c.note, sizeof(c.note), "bitmap %s", pk_name[bk]);
	finish_verdict(&c, true, flags_bad);
	for (size_t i = 0; i < sizeof(mask); i++)
		f->good[i] = (char)rnd();
	memcpy(mask, f->good, sizeof(mask));
	ret = issue(f, &c);
	if (!judge(f, &c, ret))
		return;
	if (c.have_out && c.out.clear.cleared > a->npages)
		fail("CLEAR cleared %llu of %llu pages", (unsigned long long)c.out.clear.cleared,
		     (unsigned long long)a->npages);
	/* The pages it cleared are clean now; which ones it saw we cannot tell. */
	x.c = a;
	x.mask = NULL;		/* unknown: take every page as cleared */
	if (a->bitmap && known && rd >= bitmap_bytes(a->npages))
		x.mask = a->bitmap >= (uintptr_t)f->good &&
			 a->bitmap < (uintptr_t)f->good + sizeof(mask) ?
			 mask + (a->bitmap - (uintptr_t)f->good) : (const unsigned char *)(uintptr_t)a->bitmap;
	for (size_t i = 0; i < ARRAY_LEN(sentinels); i++) {
		uint64_t p = sentinels[i];

		if (p >= a->first_page && p < a->first_page + a->npages && clr_selected(f, p, &x))
			setbit(f->expect, p, false);
	}
}

/* ---- STATS ---- */

static void fuzz_stats(struct fz *f)
{
	struct call c;
	int ret;

	begin(f, &c, OP_STATS, f->rfd, DIRTYTRACK_IOC_STATS, sizeof(struct dirtytrack_stats), true);
	finish_verdict(&c, true, false);
	ret = issue(f, &c);
	if (judge(f, &c, ret) && c.have_out)
		check_stats(f, &c.out.stats);
}

/* ---- THROTTLE ---- */

static void fuzz_throttle(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_throttle, pages_per_sec),
		FLD(struct dirtytrack_throttle, flags), FLD(struct dirtytrack_throttle, reserved),
		FLD(struct dirtytrack_throttle, reserved2[0]),
		FLD(struct dirtytrack_throttle, reserved2[1]),
	};
	struct dirtytrack_throttle off = { 0 };
	struct dirtytrack_throttle *a;
	struct call c;
	int ret;

	begin(f, &c, OP_THROTTLE, f->rfd, DIRTYTRACK_IOC_THROTTLE, sizeof(*a), false);
	a = &c.in.throttle;
	a->pages_per_sec = chance(30) ? 0 : chance(50) ? edge() : 100000 + below(1000000);
	a->flags = a->reserved = 0;
	a->reserved2[0] = a->reserved2[1] = 0;
	mutate(&c, fl, ARRAY_LEN(fl));
	finish_verdict(&c, false, a->flags || a->reserved || a->reserved2[0] || a->reserved2[1]);
	ret = issue(f, &c);
	if (!judge(f, &c, ret))
		return;
	f->pps = a->pages_per_sec;
	/* A budget this small would make our own writes crawl: lift it at once. */
	if (f->pps && f->pps < 100000) {
		if (ioctl(f->rfd, DIRTYTRACK_IOC_THROTTLE, &off))
			fail("THROTTLE 0 after %llu: %s", (unsigned long long)f->pps,
			     strerror(errno));
		f->pps = 0;
	}
}

/* ---- STREAM ---- */

static enum sk_kind stream_sock(void)
{
	static const enum sk_kind k[] = {
		SK_OK, SK_OK, SK_OK, SK_OK, SK_NB, SK_NB, SK_CLOSED, SK_UDP, SK_UNIX,
		SK_UNCONN, SK_LISTEN, SK_PIPE, SK_EVENTFD, SK_FILE, SK_DEV, SK_REGION, SK_BADFD,
	};

	return k[below(ARRAY_LEN(k))];
}

/*
 * A mutated sockfd: the kind of our fd it now names; an fd that is not one
 * of ours, or one that could block the call or keep pages in flight (a
 * peer that never reads), becomes the bad fd.
 */
static enum sk_kind resolve_sock(struct fz *f, int *fd, enum sk_kind k, bool stream)
{
	if (*fd == f->sk[k])
		return k;
	if (*fd < 0 || fcntl(*fd, F_GETFD) < 0)
		return SK_BADFD;
	for (int i = 0; i < NSK; i++) {
		if (*fd != f->sk[i])
			continue;
		if (stream ? i != SK_RX_IDLE && i != SK_RX_JUNK : i != SK_OK)
			return (enum sk_kind)i;
		break;
	}
	*fd = f->sk[SK_BADFD];
	return SK_BADFD;
}

/* The socket's verdict (STREAM and RECEIVE share it). */
static eset sock_viol(enum sk_kind k)
{
	switch (k) {
	case SK_BADFD:
		return E(EBADF);
	case SK_PIPE: case SK_EVENTFD: case SK_FILE: case SK_DEV: case SK_REGION:
		return E(ENOTSOCK);
	case SK_UDP: case SK_UNIX:
		return E(EOPNOTSUPP);
	case SK_UNCONN: case SK_LISTEN:
		return E(ENOTCONN);
	default:
		return 0;
	}
}

/* Keep what STREAM SRC_LIST allocates (pages_size - next * 8) off the danger zone. */
static void alloc_guard(struct dirtytrack_stream *s)
{
	uint64_t bytes;

	if ((s->flags & DIRTYTRACK_STREAM_SRC_MASK) != DIRTYTRACK_STREAM_SRC_LIST ||
	    s->pages_size % 8 || s->next > s->pages_size / 8)
		return;
	bytes = s->pages_size - s->next * 8;
	if (bytes > (1 << 20) && bytes <= 0x7fffffffULL) {
		s->next = 0;
		s->pages_size += 1ULL << 32;
	}
}

static void fuzz_stream(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_stream, sockfd), FLD(struct dirtytrack_stream, flags),
		FLD(struct dirtytrack_stream, first_page), FLD(struct dirtytrack_stream, npages),
		FLD(struct dirtytrack_stream, pages), FLD(struct dirtytrack_stream, pages_size),
		FLD(struct dirtytrack_stream, pages_size), FLD(struct dirtytrack_stream, budget),
		FLD(struct dirtytrack_stream, round), FLD(struct dirtytrack_stream, next),
		FLD(struct dirtytrack_stream, next), FLD(struct dirtytrack_stream, reserved),
		FLD(struct dirtytrack_stream, reserved2[0]), FLD(struct dirtytrack_stream, reserved2[1]),
	};
	struct call c;
	struct dirtytrack_stream *s = &c.in.stream;
	const struct dirtytrack_stream *o = &c.out.stream;
	enum sk_kind sk = stream_sock();
	enum ptr_kind pk = pick_ptr();
	uint64_t rd = 0, wr, need, end, next_in, min_budget;
	static uint64_t pages[GOOD_PAGES * PS / 8];
	uint32_t src;
	bool flags_bad, bad_ptr, harvest_state_bad = false, known, only_pending;
	eset deferred = 0;	/* violations found only when the source is read */
	int ret;

	begin(f, &c, OP_STREAM, f->rfd, DIRTYTRACK_IOC_STREAM, sizeof(*s), true);
	src = below(4);
	s->sockfd = f->sk[sk];
	s->flags = src | (chance(30) ? DIRTYTRACK_STREAM_HEADER : 0) |
		   (chance(40) ? DIRTYTRACK_STREAM_END_ROUND : 0);
	if (src == DIRTYTRACK_STREAM_SRC_LIST) {
		s->first_page = s->npages = 0;
		s->pages_size = 8 * (1 + below(chance(80) ? 8 : 64));
		s->pages = gen_ptr(f, pk, s->pages_size, &rd, &wr);
		s->next = chance(70) ? 0 : below(s->pages_size / 8 + 1);
	} else {
		s->first_page = below(NP);
		s->npages = 1 + below(chance(70) ? 16 : NP - s->first_page);
		if (s->npages > NP - s->first_page)
			s->npages = NP - s->first_page;
		s->next = s->first_page + (chance(70) ? 0 : below(s->npages + 1));
		s->pages = s->pages_size = 0;
		/* BITMAP's source; HARVEST's report of what it took, at times */
		if (src == DIRTYTRACK_STREAM_SRC_BITMAP ||
		    (src == DIRTYTRACK_STREAM_SRC_HARVEST && chance(40))) {
			s->pages_size = bitmap_bytes(s->npages);
			s->pages = gen_ptr(f, pk, s->pages_size, &rd, &wr);
		}
	}
	s->budget = chance(50) ? 0 : 4128 + 64 + below(5 * 4128);
	s->round = chance(50) ? 0 : rnd();
	s->reserved = 0;
	s->reserved2[0] = s->reserved2[1] = 0;
	mutate(&c, fl, ARRAY_LEN(fl));
	alloc_guard(s);
	known = span(f, s->pages, &rd, &wr);
	sk = resolve_sock(f, &s->sockfd, sk, true);
	src = s->flags & DIRTYTRACK_STREAM_SRC_MASK;
	flags_bad = (s->flags & ~(DIRTYTRACK_STREAM_SRC_MASK | DIRTYTRACK_STREAM_HEADER |
				  DIRTYTRACK_STREAM_END_ROUND)) ||
		    s->reserved || s->reserved2[0] || s->reserved2[1];
	min_budget = PS + 32 + ((s->flags & DIRTYTRACK_STREAM_HEADER) ? 64 : 0);
	if (s->budget && s->budget < min_budget)
		c.viol |= E(EINVAL);
	/* The list or bitmap: mostly pages in range, some edge values. */
	for (size_t i = 0; i < ARRAY_LEN(pages); i++)
		pages[i] = src == DIRTYTRACK_STREAM_SRC_LIST ?
			   (chance(97) ? below(NP) : edge()) : (chance(10) ? rnd() : 0);
	memcpy(f->good, pages, sizeof(pages));
	bad_ptr = false;
	if (src == DIRTYTRACK_STREAM_SRC_LIST) {
		if (s->first_page || s->npages || !s->pages || !s->pages_size ||
		    s->pages_size % 8 || s->next > s->pages_size / 8) {
			c.viol |= E(EINVAL);
		} else {
			uint64_t bytes = s->pages_size - s->next * 8, avail;
			/* readable bytes from pages + next * 8 */
			bool lknown = span(f, s->pages + s->next * 8, &avail, &wr);

			/*
			 * The list may be read as it is sent: only an
			 * unreadable first entry is sure to fail (EFAULT);
			 * an unreadable later one may stop the call, or a
			 * budget may stop it first. EINVAL: "sizes".
			 */
			if (!lknown || avail < bytes) {
				bad_ptr = true;
				c.may |= E(EFAULT) | E(EINVAL);
			}
			if (!lknown)
				c.may |= E(ERANGE);
			if (lknown && bytes >= 8 && avail < 8) {
				c.viol |= E(EFAULT);
				deferred |= E(EFAULT);
			}
			/* an entry past the region, if the call gets that far */
			for (uint64_t i = 0; i < bytes / 8 && (i + 1) * 8 <= avail; i++) {
				uint64_t v;

				memcpy(&v, (char *)(uintptr_t)s->pages + (s->next + i) * 8, 8);
				if (v >= NP)
					c.may |= E(ERANGE);
			}
		}
	} else {
		if (!range_ok(s->first_page, s->npages) || s->next < s->first_page ||
		    s->next > s->first_page + s->npages)
			c.viol |= E(EINVAL);
		if (src == DIRTYTRACK_STREAM_SRC_HARVEST && (s->pages || s->pages_size)) {
			/*
			 * Written at the end, only the words of pages taken:
			 * a bitmap not all writable may fail the call (EFAULT,
			 * the pages dirty again), or not.
			 */
			if (!s->pages) {
				c.viol |= E(EINVAL);
			} else if (range_ok(s->first_page, s->npages)) {
				need = bitmap_bytes(s->npages);
				if (s->pages_size < need)
					c.viol |= E(ENOSPC);
				else if (!known || wr < need)
					c.may |= E(EFAULT), bad_ptr = true;
			}
		} else if (src != DIRTYTRACK_STREAM_SRC_BITMAP) {
			if (s->pages || s->pages_size)
				c.viol |= E(EINVAL);
		} else if (!s->pages) {
			c.viol |= E(EINVAL);
		} else if (range_ok(s->first_page, s->npages)) {
			need = bitmap_bytes(s->npages);
			if (s->pages_size < need)
				c.viol |= E(ENOSPC);
			else if (!known)
				c.may |= E(EFAULT);
			else if (rd < need)
				c.viol |= E(EFAULT), bad_ptr = true;
		}
		/* (checked under the region lock, when the source is read) */
		harvest_state_bad = src == DIRTYTRACK_STREAM_SRC_HARVEST &&
				    (!f->tracking || f->manual);
		if (harvest_state_bad) {
			c.viol |= E(EINVAL);
			deferred |= E(EINVAL);
		}
	}
	c.viol |= sock_viol(sk);
	c.may |= E(EBUSY);
	if (sk == SK_NB)
		c.may |= E(EAGAIN);
	if (sk == SK_CLOSED)
		c.may |= E(EPIPE) | E(ECONNRESET) | E(ENOTCONN);
	(void)bad_ptr;
	snprintf(c.note, sizeof(c.note), "socket %s, pages %s", sk_name[sk], pk_name[pk]);
	finish_verdict(&c, true, flags_bad);
	next_in = s->next;
	ret = issue(f, &c);
	/*
	 * A call that only finished a send left pending on this socket (bytes,
	 * no record, next unchanged) returns 0 before it looks at the source:
	 * progress first, the source's verdict comes with the next call. If
	 * that batch held its round's marker, the call returns done = 1: the
	 * earlier call's source was done, whatever this call's cursor says.
	 */
	only_pending = !ret && c.have_out && o->bytes && !o->records && o->next == next_in;
	if (only_pending && c.viol && !(c.viol & ~deferred))
		c.viol = 0;
	judge(f, &c, ret);
	/*
	 * What a harvesting source took is clean now (or dirty again if
	 * dropped); a report of it that failed leaves it dirty.
	 */
	if (src == DIRTYTRACK_STREAM_SRC_HARVEST && f->tracking && !f->manual &&
	    !(ret == -EFAULT && s->pages)) {
		end = c.have_out && o->next <= s->first_page + s->npages ? o->next
								 : s->first_page + s->npages;
		for (size_t i = 0; i < ARRAY_LEN(sentinels); i++)
			if (sentinels[i] >= next_in && sentinels[i] < end)
				setbit(f->expect, sentinels[i], false);
	}
	if (ret < 0 || !c.have_out)
		return;
	/*
	 * The budget bounds what the call queues of its own; finishing a batch
	 * an earlier call left pending (O_NONBLOCK) is not counted against it
	 * (up to a batch: 64 records, a header and a marker).
	 */
	if (o->done > 1 || (s->budget && o->bytes > s->budget +
			    (sk == SK_NB ? 64 * (PS + 32) + 64 + 32 : 0))) {
		fail("STREAM done %u bytes %llu (budget %llu)", o->done,
		     (unsigned long long)o->bytes, (unsigned long long)s->budget);
		return;
	}
	end = src == DIRTYTRACK_STREAM_SRC_LIST ? s->pages_size / 8 : s->first_page + s->npages;
	if (o->next < next_in || o->next > end || (o->done && o->next != end && !only_pending)) {
		fail("STREAM next %llu (from %llu, end %llu, done %u)",
		     (unsigned long long)o->next, (unsigned long long)next_in,
		     (unsigned long long)end, o->done);
		return;
	}
	if ((src == DIRTYTRACK_STREAM_SRC_RANGE || src == DIRTYTRACK_STREAM_SRC_LIST) &&
	    o->records != o->next - next_in)
		fail("STREAM %llu records for entries %llu..%llu", (unsigned long long)o->records,
		     (unsigned long long)next_in, (unsigned long long)o->next);
	if (o->records > o->next - next_in)
		fail("STREAM %llu records for pages %llu..%llu", (unsigned long long)o->records,
		     (unsigned long long)next_in, (unsigned long long)o->next);
}

/* ---- RECEIVE ---- */

static void fuzz_receive(struct fz *f)
{
	static const struct field fl[] = {
		FLD(struct dirtytrack_receive, sockfd), FLD(struct dirtytrack_receive, flags),
		FLD(struct dirtytrack_receive, budget), FLD(struct dirtytrack_receive, reserved),
		FLD(struct dirtytrack_receive, reserved2[0]), FLD(struct dirtytrack_receive, reserved2[1]),
	};
	static const enum sk_kind kinds[] = {
		SK_NB, SK_RX_IDLE, SK_RX_IDLE, SK_RX_JUNK, SK_RX_JUNK, SK_CLOSED, SK_UDP,
		SK_UNIX, SK_UNCONN, SK_LISTEN, SK_PIPE, SK_EVENTFD, SK_FILE, SK_DEV,
		SK_REGION, SK_BADFD,
	};
	struct call c;
	struct dirtytrack_receive *a = &c.in.receive;
	const struct dirtytrack_receive *o = &c.out.receive;
	enum sk_kind sk = kinds[below(ARRAY_LEN(kinds))];
	bool flags_bad;
	int ret;

	begin(f, &c, OP_RECEIVE, f->rfd, DIRTYTRACK_IOC_RECEIVE, sizeof(*a), true);
	a->sockfd = f->sk[sk];
	a->flags = below(4);
	a->budget = chance(50) ? 0 : edge();
	a->reserved = 0;
	a->reserved2[0] = a->reserved2[1] = 0;
	mutate(&c, fl, ARRAY_LEN(fl));
	sk = resolve_sock(f, &a->sockfd, sk, false);
	flags_bad = (a->flags & ~(DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND)) ||
		    a->reserved || a->reserved2[0] || a->reserved2[1];
	c.viol = sock_viol(sk);
	if (!c.viol || sk == SK_UNCONN || sk == SK_LISTEN)
		c.may = WIRE_ERRS;	/* the sticky verdict on an earlier stream */
	if (sk == SK_NB || sk == SK_RX_IDLE)
		c.may |= E(EAGAIN);
	if (sk == SK_CLOSED)
		c.may |= E(ECONNRESET);
	snprintf(c.note, sizeof(c.note), "socket %s", sk_name[sk]);
	finish_verdict(&c, true, flags_bad);
	ret = issue(f, &c);
	if (!judge(f, &c, ret) || !c.have_out)
		return;
	if (o->eof > 1 || o->records * 32 > o->bytes || o->rounds * 32 > o->bytes)
		fail("RECEIVE records %llu rounds %llu bytes %llu eof %u",
		     (unsigned long long)o->records, (unsigned long long)o->rounds,
		     (unsigned long long)o->bytes, o->eof);
}

/* ---- unknown commands ---- */

static const unsigned long known_cmds[] = {
	DIRTYTRACK_IOC_API, DIRTYTRACK_IOC_CREATE_REGION, DIRTYTRACK_IOC_TRACK_START,
	DIRTYTRACK_IOC_TRACK_STOP, DIRTYTRACK_IOC_HARVEST, DIRTYTRACK_IOC_CLEAR,
	DIRTYTRACK_IOC_STATS, DIRTYTRACK_IOC_STREAM, DIRTYTRACK_IOC_RECEIVE,
	DIRTYTRACK_IOC_THROTTLE,
};

static bool is_known(unsigned long cmd)
{
	for (size_t i = 0; i < ARRAY_LEN(known_cmds); i++)
		if (cmd == known_cmds[i])
			return true;
	return false;
}

static void fuzz_unknown(struct fz *f, bool cross)
{
	struct call c;
	unsigned long cmd;
	bool dev = chance(50);
	int ret;

	if (cross) {
		/* a region command on the device, or a device command on a region */
		cmd = dev ? known_cmds[2 + below(ARRAY_LEN(known_cmds) - 2)] : known_cmds[below(2)];
	} else {
		do {
			unsigned int nr = chance(50) ? below(0x30) : below(256);

			if (chance(50))		/* a known number with another size or direction */
				nr = _IOC_NR(known_cmds[below(ARRAY_LEN(known_cmds))]);
			cmd = _IOC(below(4), DIRTYTRACK_IOC_MAGIC, nr,
				   chance(50) ? below(256) : below(1 << _IOC_SIZEBITS));
		} while (is_known(cmd));
	}
	begin(f, &c, cross ? OP_CROSS : OP_UNKNOWN, dev ? f->dev : f->rfd, cmd, 256, false);
	c.viol = E(ENOTTY);
	c.strict = true;
	if (c.ak == A_STRADDLE)
		c.ak = A_GOOD;
	ret = issue(f, &c);
	judge(f, &c, ret);
	if (ret >= 0 && cross && dev && cmd == DIRTYTRACK_IOC_CREATE_REGION)
		close(ret);
}

/* ---- the run ---- */

static void fuzz_one(struct fz *f)
{
	static const unsigned char weight[NOPS] = {
		[OP_API] = 4, [OP_CREATE] = 6, [OP_TRACK_START] = 7, [OP_TRACK_STOP] = 3,
		[OP_HARVEST] = 22, [OP_CLEAR] = 12, [OP_STATS] = 4, [OP_STREAM] = 22,
		[OP_RECEIVE] = 10, [OP_THROTTLE] = 4, [OP_UNKNOWN] = 7, [OP_CROSS] = 3,
	};
	unsigned int total = 0, r;
	int op = 0;

	for (int i = 0; i < NOPS; i++)
		total += weight[i];
	r = below(total);
	while (r >= weight[op])
		r -= weight[op++];
	switch (op) {
	case OP_API: fuzz_api(f); break;
	case OP_CREATE: fuzz_create(f); break;
	case OP_TRACK_START: fuzz_track(f, true); break;
	case OP_TRACK_STOP: fuzz_track(f, false); break;
	case OP_HARVEST: fuzz_harvest(f); break;
	case OP_CLEAR: fuzz_clear(f); break;
	case OP_STATS: fuzz_stats(f); break;
	case OP_STREAM: fuzz_stream(f); break;
	case OP_RECEIVE: fuzz_receive(f); break;
	case OP_THROTTLE: fuzz_throttle(f); break;
	case OP_UNKNOWN: fuzz_unknown(f, false); break;
	default: fuzz_unknown(f, true); break;
	}
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(fz) {
	struct fz f;
};

FIXTURE_SETUP(fz)
{
	struct fz *f = &self->f;
	struct sigaction sa = { .sa_handler = on_watchdog };
	char buf[64];
	FILE *p;

	F = f;
	f->seed = env_u64("DT_FUZZ_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	rng_state = f->seed;
	f->trace = env_u64("DT_FUZZ_TRACE", 0);
	sigaction(SIGALRM, &sa, NULL);
	f->dev = dt_open();
	ASSERT_LE(0, f->dev);
	ASSERT_EQ(0, dt_api(f->dev, 0, &f->features));
	f->max_region = 65536ULL << 20;
	p = fopen("/sys/module/dirtytrack/parameters/max_region_mb", "r");
	if (p && fgets(buf, sizeof(buf), p))
		f->max_region = strtoull(buf, NULL, 10) << 20;
	if (p)
		fclose(p);
	f->rfd = dt_region_create(f->dev, NP * PS);
	ASSERT_LE(0, f->rfd);
	f->map = mmap(NULL, NP * PS, PROT_READ | PROT_WRITE, MAP_SHARED, f->rfd, 0);
	ASSERT_NE(MAP_FAILED, f->map);
	for (uint64_t i = 0; i < NP; i++) {
		if (page_populated(i)) {
			memset(f->map + i * PS, page_byte(i), PS);
			f->populated++;
		}
	}
	f->good = map_area(GOOD_PAGES + 1, PROT_READ | PROT_WRITE);
	f->good2 = map_area(GOOD_PAGES + 1, PROT_READ | PROT_WRITE);
	f->ro = map_area(4, PROT_READ | PROT_WRITE);
	f->none = map_area(4, PROT_NONE);
	f->hole = map_area(4, PROT_NONE);
	f->arg = map_area(2, PROT_READ | PROT_WRITE);
	f->arg_ro = map_area(1, PROT_READ);
	ASSERT_TRUE(f->good && f->good2 && f->ro && f->none && f->hole && f->arg && f->arg_ro);
	ASSERT_EQ(0, mprotect(f->good + GOOD_PAGES * PS, PS, PROT_NONE));
	ASSERT_EQ(0, mprotect(f->good2 + GOOD_PAGES * PS, PS, PROT_NONE));
	memset(f->ro, 0x5a, 4 * PS);
	ASSERT_EQ(0, mprotect(f->ro, 4 * PS, PROT_READ));
	ASSERT_EQ(0, munmap(f->hole, 4 * PS));
	ASSERT_EQ(0, mprotect(f->arg + PS, PS, PROT_NONE));
	ASSERT_EQ(0, make_sockets(f));
}

FIXTURE_TEARDOWN(fz)
{
	struct fz *f = &self->f;

	atomic_store(&f->stop, 1);
	if (f->drain)
		pthread_join(f->drain, NULL);
}

/* A fresh region receives the fuzzed one's stream; both must match. */
static void round_trip(struct __test_metadata *_metadata, struct fz *f)
{
	int d = dt_region_create(f->dev, NP * PS), tx, rx;
	struct dirtytrack_stream s = { .npages = NP, .flags = DIRTYTRACK_STREAM_SRC_RANGE |
				       DIRTYTRACK_STREAM_HEADER | DIRTYTRACK_STREAM_END_ROUND };
	struct dirtytrack_receive r;
	char *dmap;
	pid_t pid;
	int status;

	ASSERT_LE(0, d);
	ASSERT_EQ(0, dt_tcp_pair(&tx, &rx));
	dmap = mmap(NULL, NP * PS, PROT_READ, MAP_SHARED, d, 0);
	ASSERT_NE(MAP_FAILED, dmap);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		s.sockfd = tx;
		_exit(dt_stream(f->rfd, &s) ? 1 : s.done ? 0 : 2);
	}
	r = (struct dirtytrack_receive){ .sockfd = rx,
		.flags = DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND };
	EXPECT_EQ(0, dt_receive(d, &r));
	EXPECT_EQ(1, r.rounds);
	EXPECT_EQ(NP, r.last_count);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, memcmp(dmap, f->map, NP * PS));
	/* ... and the fuzzed region still receives (after a reset). */
	close(tx);
	close(rx);
	ASSERT_EQ(0, dt_tcp_pair(&tx, &rx));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		s.sockfd = tx;
		s.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			  DIRTYTRACK_STREAM_END_ROUND;
		s.next = 0;
		_exit(dt_stream(d, &s) ? 1 : 0);
	}
	r = (struct dirtytrack_receive){ .sockfd = rx,
		.flags = DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND };
	EXPECT_EQ(0, dt_receive(f->rfd, &r));
	EXPECT_EQ(NP, r.records);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, memcmp(dmap, f->map, NP * PS));
	close(tx);
	close(rx);
	munmap(dmap, NP * PS);
	close(d);
}

TEST_F_TIMEOUT(fz, ioctls, 3600)
{
	struct fz *f = &self->f;
	uint64_t iters = env_u64("DT_FUZZ_ITERS", 20000);
	double secs = env_u64("DT_FUZZ_SECONDS", getenv("DT_FUZZ_ITERS") ? 3000 : 40);
	double t0 = now();
	uint64_t *map, n;
	int err;

	TH_LOG("seed %llu (rerun: DT_FUZZ_SEED=%llu), up to %llu calls in %.0f s",
	       (unsigned long long)f->seed, (unsigned long long)f->seed,
	       (unsigned long long)iters, secs);
	/* Before the loop: tracking on, the sentinels written (so dirty). */
	ASSERT_EQ(0, dt_track_start(f->rfd, 0));
	f->tracking = true;
	rearm(f);
	stats_now(f);
	for (f->iter = 0; f->iter < (long)iters && now() - t0 < secs; f->iter++) {
		fuzz_one(f);
		snprintf(f->cur, sizeof(f->cur), "STATS after the call");
		stats_now(f);
		if (f->iter % 64 == 63)
			rearm(f);
	}
	TH_LOG("%ld calls in %.1f s", f->iter, now() - t0);
	for (int op = 0; op < NOPS; op++) {
		char line[512];
		int k = snprintf(line, sizeof(line), "%-16s %5ld calls, %5ld ok", op_name[op],
				 f->calls[op], f->ok[op]);

		for (int e = 1; e < 128; e++)
			if (f->errs[op][e] && k < (int)sizeof(line) - 32)
				k += snprintf(line + k, sizeof(line) - k, ", %ld %s",
					      f->errs[op][e], strerrorname_np(e));
		TH_LOG("%s", line);
	}

	/* The region afterwards: contents and population untouched... */
	f->iter = -1;
	snprintf(f->cur, sizeof(f->cur), "final checks");
	flush_pending(f);
	for (uint64_t i = 0; i < NP; i++) {
		static char p[PS];	/* pread: a read fault would fill the holes */
		char want = page_populated(i) ? page_byte(i) : 0;

		if (pread(f->rfd, p, PS, i * PS) != PS || p[0] != want || memcmp(p, p + 1, PS - 1))
			fail("page %llu changed", (unsigned long long)i);
	}
	/* ... the sentinels still dirty are reported by a final harvest ... */
	if (f->tracking) {
		map = dt_harvest_all(f->rfd, NP, &n, &err);
		ASSERT_EQ(0, err);
		for (size_t i = 0; i < ARRAY_LEN(sentinels); i++)
			if (bit(f->expect, sentinels[i]) && !bit(map, sentinels[i]))
				fail("final harvest: page %llu lost", (unsigned long long)sentinels[i]);
		free(map);
	}
	/* ... tracking is exact ... */
	ASSERT_EQ(0, dt_track_start(f->rfd, 0));
	f->tracking = true;
	f->manual = false;
	ASSERT_EQ(0, dt_xioctl(f->rfd, DIRTYTRACK_IOC_HARVEST, &(struct dirtytrack_harvest){
		.npages = NP, .buf = (uintptr_t)f->good, .buf_size = NP / 8 }));
	EXPECT_EQ(0, dt_dirty_count(f->rfd, NP));
	touch(f->map + 5 * PS);
	touch(f->map + 301 * PS + 7);
	map = dt_harvest_all(f->rfd, NP, &n, &err);
	ASSERT_EQ(0, err);
	EXPECT_EQ(2, n);
	EXPECT_TRUE(bit(map, 5) && bit(map, 301));
	free(map);
	EXPECT_EQ(0, dt_dirty_count(f->rfd, NP));
	/* ... manual protect works ... */
	ASSERT_EQ(0, dt_track_start(f->rfd, DIRTYTRACK_TRACK_MANUAL_PROTECT));
	f->manual = true;
	touch(f->map + 7 * PS);
	EXPECT_EQ(1, dt_dirty_count(f->rfd, NP));
	EXPECT_EQ(1, dt_dirty_count(f->rfd, NP));
	ASSERT_EQ(0, dt_clear(f->rfd, 0, NP, NULL, &n));
	EXPECT_EQ(1, n);
	EXPECT_EQ(0, dt_dirty_count(f->rfd, NP));
	stats_now(f);
	/* ... and it streams and receives. */
	round_trip(_metadata, f);
	EXPECT_EQ(0, f->failures) TH_LOG("seed %llu: %d failures (the first 30 above)",
					 (unsigned long long)f->seed, f->failures);
}

TEST_HARNESS_MAIN
