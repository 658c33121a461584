// SPDX-License-Identifier: GPL-2.0
/*
 * Torture: random sequences of every region operation, from several
 * processes and threads at once, for a bounded time, checked by a model.
 *
 * - The checked region (in the test process): writer threads store, pwrite
 *   and punch random "hot" pages (each alone in its 64-page dirty word) and
 *   count every completed store in done[writer][page]. A harvester thread
 *   harvests (bitmap, list, auto and manual protect, CLEAR), restarts and
 *   stops tracking, and checks the never-lose-a-write rule on every harvest:
 *   with pre = done before the harvest and covered = done right after the
 *   last harvest that reported the page (or the last TRACK_START or CLEAR
 *   of it), a page whose pre exceeds covered by more than one (the one store
 *   per writer that may have landed before the harvest but been counted
 *   after it) must be reported. It also keeps a shadow copy, updated from
 *   every reported page after each harvest; at the end, with the writers
 *   stopped, a last harvest and copy must leave it byte-identical.
 * - Chaos processes (forked, SIGKILLed and respawned at random) share other
 *   regions and hammer them: mmap/munmap, stores, pwrite/pread, punch hole,
 *   TRACK_START/STOP, HARVEST, CLEAR, STATS, reopen through /proc/self/fd/N
 *   (also racing the last close), STREAM and RECEIVE over loopback TCP with
 *   random budgets, O_NONBLOCK, signals (SIGUSR1/SIGALRM without SA_RESTART)
 *   and connection resets (SO_LINGER 0).
 * - Nothing waits unbounded: a child or thread that does not finish in time
 *   is reported as a hang (with its kernel stack) and killed.
 *
 * DT_TORTURE_SEED (or argv[1] "seed=N"), DT_TORTURE_SECONDS (default 20),
 * DT_TORTURE_PROCS (chaos processes, default 2), DT_TORTURE_CKPAGES (checked
 * region pages, default 1 << 20: a big region widens restart races),
 * DT_TORTURE_SKIP (chaos operations to leave out, comma-separated names as
 * in the summary line, e.g. "punch,sigkill").
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"

/* ------------------------------------------------------------ common */

static uint64_t g_seed;
static int g_seconds = 20;
static uint64_t g_deadline;	/* CLOCK_MONOTONIC ns */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rndn(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static void noop_handler(int sig)
{
	(void)sig;
}

/* What every process of the run shares (MAP_SHARED | MAP_ANONYMOUS). */
enum {
	OP_MAP, OP_UNMAP, OP_STORE, OP_READ, OP_PWRITE, OP_PREAD, OP_PUNCH, OP_TRACK,
	OP_HARVEST, OP_CLEAR, OP_STATS, OP_REOPEN, OP_VICTIM, OP_STREAM, OP_RESUME,
	OP_RECEIVE, OP_RST, OP_RECV_DRAIN, OP_KILL, OP_MAX
};
static const char *const op_names[OP_MAX] = {
	"mmap", "munmap", "store", "read", "pwrite", "pread", "punch", "track",
	"harvest", "clear", "stats", "reopen", "reopen-vs-close", "stream", "stream-resume",
	"receive", "reset", "recv-drain", "sigkill",
};

struct shm {
	atomic_int stop;
	atomic_int failed;
	char msg[4096];
	atomic_ulong ops[OP_MAX];
	atomic_ulong unexpected;
	atomic_ulong stream_bytes, recv_records, eagain, eintr, ebusy, reset_errs;
	atomic_ulong reopen_ok, reopen_gone;
};
static struct shm *g_shm;

/* Record a failure (the first one's text is kept) and stop the run. */
static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int expected = 0;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	dprintf(1, "# torture FAILURE (seed %llu, pid %d): %s\n",
		(unsigned long long)g_seed, getpid(), buf);
	if (atomic_compare_exchange_strong(&g_shm->failed, &expected, 1))
		snprintf(g_shm->msg, sizeof(g_shm->msg), "%s", buf);
	atomic_store(&g_shm->stop, 1);
}

static bool stopping(void)
{
	return atomic_load(&g_shm->stop) || now_ns() >= g_deadline;
}

/* Print where the tasks of @pid sleep in the kernel (we are root in the VM). */
static void dump_stacks(pid_t pid)
{
	char path[512], buf[4096];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				char *st = strrchr(buf, ')');

				buf[n] = 0;
				dprintf(1, "#   task %s state %.1s\n", de->d_name, st ? st + 2 : "?");
			}
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				char *line, *save = NULL;

				buf[n] = 0;
				for (line = strtok_r(buf, "\n", &save); line;
				     line = strtok_r(NULL, "\n", &save))
					dprintf(1, "#     %s\n", line);
			}
		}
	}
	closedir(d);
}

/* waitpid with a timeout; returns the pid, 0 on timeout. */
static pid_t wait_timeout(pid_t pid, int *status, uint64_t timeout_ns)
{
	uint64_t end = now_ns() + timeout_ns;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return r;
		if (now_ns() >= end)
			return 0;
		usleep(10000);
	}
}

/* ------------------------------------------------------ checked region */

#define NHOT 16
#define NWRITERS 3

struct checked {
	int fd;
	uint64_t npages;
	char *map;			/* the harvester's own view */
	uint64_t hot[NHOT];
	char *shadow;			/* NHOT pages */
	atomic_ulong done[NWRITERS][NHOT];
	uint64_t covered[NWRITERS][NHOT];
	atomic_int stop_writers;
	bool tracking, manual;
	uint64_t *bitmap, *zero;
	/* statistics */
	unsigned long harvests, list_harvests, restarts, stops, clears, reported;
	unsigned long writer_ops[NWRITERS];
	int writers_alive;
	const char *last_op;
};
static struct checked *ck;

struct writer_arg {
	unsigned int id;
	pthread_t th;
	atomic_int finished;
};

static int hot_of_page(uint64_t p)
{
	for (int h = 0; h < NHOT; h++)
		if (ck->hot[h] == p)
			return h;
	return -1;
}

static void *ck_writer(void *p)
{
	struct writer_arg *wa = p;
	unsigned int w = wa->id;
	uint64_t s = splitmix(g_seed ^ (0x1000 + w));
	size_t len = ck->npages * PS;
	char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ck->fd, 0);
	unsigned long n = 0;

	if (map == MAP_FAILED) {
		fail("writer %u: mmap: %s", w, strerror(errno));
		goto out;
	}
	while (!atomic_load(&ck->stop_writers)) {
		uint64_t r = rnd(&s);
		/* Page 0 (the first dirty word: the widest restart window) half the time. */
		int h = r & 1 ? 0 : (int)((r >> 1) % NHOT);
		char *page = map + ck->hot[h] * PS;
		unsigned int op = (r >> 8) % 1000;
		bool counted = true;

		if (op < 930) {
			uint64_t slot = w + NWRITERS * ((r >> 20) % (PS / 8 / NWRITERS));

			((volatile uint64_t *)page)[slot] = r | 1;
		} else if (op < 970) {
			char buf[64];
			size_t l = 1 + (r >> 20) % sizeof(buf);
			off_t off = (off_t)(ck->hot[h] * PS + (r >> 30) % (PS - l));

			memset(buf, (int)(r >> 40) | 1, l);
			counted = pwrite(ck->fd, buf, l, off) > 0;
		} else if (op < 990) {
			/* A punch of a hole changes nothing: not counted, the data check covers it. */
			off_t off = (off_t)(ck->hot[h] * PS), l = PS;

			if (r >> 40 & 1) {
				off += (r >> 20) % (PS - 1);
				l = 1 + (r >> 32) % (ck->hot[h] * PS + PS - off);
			}
			if (fallocate(ck->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, l))
				fail("writer %u: punch: %s", w, strerror(errno));
			counted = false;
		} else if (op < 992) {
			/* A fresh view of the region. */
			munmap(map, len);
			map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, ck->fd, 0);
			if (map == MAP_FAILED) {
				fail("writer %u: mmap: %s", w, strerror(errno));
				goto out;
			}
			counted = false;
		} else {
			/* Read it, through the mapping. */
			(void)((volatile char *)page)[(r >> 20) % PS];
			counted = false;
		}
		/* Seq-cst RMW: the store above is complete before the count. */
		if (counted)
			atomic_fetch_add(&ck->done[w][h], 1);
		n++;
	}
	munmap(map, len);
out:
	ck->writer_ops[w] = n;
	atomic_store(&wa->finished, 1);
	return NULL;
}

static void snap(uint64_t out[NWRITERS][NHOT])
{
	for (int w = 0; w < NWRITERS; w++)
		for (int h = 0; h < NHOT; h++)
			out[w][h] = atomic_load(&ck->done[w][h]);
}

static void copy_hot(int h, uint64_t *s)
{
	char *dst = ck->shadow + (size_t)h * PS;

	if (rnd(s) & 1) {
		memcpy(dst, ck->map + ck->hot[h] * PS, PS);
	} else if (pread(ck->fd, dst, PS, (off_t)(ck->hot[h] * PS)) != (ssize_t)PS) {
		fail("checked: pread of page %llu: %s", (unsigned long long)ck->hot[h],
		     strerror(errno));
	}
}

/* TRACK_START (restart): everything covered as of now; round 0 copies all. */
static void ck_start(bool manual, uint64_t *s)
{
	uint64_t post[NWRITERS][NHOT];
	int err = dt_track_start(ck->fd, manual ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0);

	if (err) {
		fail("checked: TRACK_START: %s", strerror(-err));
		return;
	}
	snap(post);
	memcpy(ck->covered, post, sizeof(post));
	for (int h = 0; h < NHOT; h++)
		copy_hot(h, s);
	ck->tracking = true;
	ck->manual = manual;
	ck->restarts++;
}

/*
 * One harvest (bitmap or list, in one or more calls), then the copy, then the
 * never-lose-a-write check. Manual protect: CLEAR (all reported, a subset, or
 * everything followed by a full copy) before copying; @complete rules out the
 * subset, which leaves pages dirty and their copies stale.
 */
static void ck_harvest(uint64_t *s, const char *why, bool complete)
{
	uint64_t pre[NWRITERS][NHOT], post[NWRITERS][NHOT];
	bool rep[NHOT] = { 0 }, zero[NHOT] = { 0 }, clr[NHOT] = { 0 };
	bool list = rnd(s) & 1;
	uint64_t n = 0, spurious = ~0ULL;
	int err, h;

	snap(pre);
	if (list) {
		uint64_t buf[128], next = 0, max = 1 + rndn(s, 128);
		size_t k, i;

		ck->list_harvests++;
		while (next < ck->npages) {
			err = dt_harvest_list(ck->fd, next, ck->npages - next, buf, max, &k, &next);
			if (err) {
				fail("checked: HARVEST list: %s (%s)", strerror(-err), why);
				return;
			}
			for (i = 0; i < k; i++) {
				uint64_t p = buf[i] & DIRTYTRACK_PAGE_INDEX_MASK;

				h = hot_of_page(p);
				if (h < 0) {
					spurious = p;
					continue;
				}
				rep[h] = true;
				zero[h] = buf[i] & DIRTYTRACK_PAGE_ZERO;
			}
			n += k;
		}
	} else {
		bool zb = rnd(s) & 1;

		memset(ck->bitmap, 0, dt_bitmap_bytes(ck->npages));
		memset(ck->zero, 0, dt_bitmap_bytes(ck->npages));
		err = dt_harvest_bitmap(ck->fd, 0, ck->npages, ck->bitmap, zb ? ck->zero : NULL, &n);
		if (err) {
			fail("checked: HARVEST bitmap: %s (%s)", strerror(-err), why);
			return;
		}
		for (h = 0; h < NHOT; h++) {
			rep[h] = dt_bitmap_test(ck->bitmap, ck->hot[h]);
			zero[h] = zb && dt_bitmap_test(ck->zero, ck->hot[h]);
		}
		for (uint64_t p = dt_bitmap_next(ck->bitmap, ck->npages, 0); p < ck->npages;
		     p = dt_bitmap_next(ck->bitmap, ck->npages, p + 1))
			if (hot_of_page(p) < 0)
				spurious = p;
	}
	ck->harvests++;
	ck->reported += n;
	if (spurious != ~0ULL)
		fail("checked: harvest reported page %llu, never written (%s)",
		     (unsigned long long)spurious, why);

	/* The rule, for pages not reported (before anything is covered anew). */
	for (h = 0; h < NHOT; h++) {
		if (rep[h])
			continue;
		for (int w = 0; w < NWRITERS; w++) {
			if (pre[w][h] > ck->covered[w][h] + 1)
				fail("LOST WRITE: page %llu not reported by %s %s harvest #%lu (%s, %s "
				     "protect): writer %d completed %llu stores, %llu were covered "
				     "(restarts %lu)",
				     (unsigned long long)ck->hot[h], list ? "list" : "bitmap",
				     ck->manual ? "manual" : "auto", ck->harvests, why,
				     ck->manual ? "manual" : "auto", w,
				     (unsigned long long)pre[w][h],
				     (unsigned long long)ck->covered[w][h], ck->restarts);
		}
	}
	if (ck->manual) {
		unsigned int how = rndn(s, 4);
		uint64_t map[NHOT] = { 0 };

		if (complete && how == 1)
			how = 2;

		if (how == 0) {
			/* Clear everything, then copy everything. */
			err = dt_clear(ck->fd, 0, ck->npages, NULL, NULL);
			for (h = 0; h < NHOT; h++)
				clr[h] = true;
		} else {
			/* Clear the reported pages (or some of them), one by one or at once. */
			for (h = 0; h < NHOT; h++)
				clr[h] = rep[h] && (how != 1 || rnd(s) & 1);
			err = 0;
			for (h = 0; h < NHOT && !err; h++) {
				if (!clr[h])
					continue;
				map[0] = 1;
				err = dt_clear(ck->fd, ck->hot[h], 1, map, NULL);
			}
		}
		if (err) {
			fail("checked: CLEAR: %s (%s)", strerror(-err), why);
			return;
		}
		ck->clears++;
		snap(post);
		for (h = 0; h < NHOT; h++) {
			if (!clr[h])
				continue;
			copy_hot(h, s);
			for (int w = 0; w < NWRITERS; w++)
				ck->covered[w][h] = post[w][h];
		}
	} else {
		snap(post);
		for (h = 0; h < NHOT; h++) {
			if (!rep[h])
				continue;
			/* A hole when harvested: later writes fault and are reported. */
			if (zero[h])
				memset(ck->shadow + (size_t)h * PS, 0, PS);
			else
				copy_hot(h, s);
			for (int w = 0; w < NWRITERS; w++)
				ck->covered[w][h] = post[w][h];
		}
	}
}

/*
 * Harvest just the first dirty word (page 0), then restart at once: the
 * writers' faults on page 0, just re-protected, land while TRACK_START
 * forgets the old dirtiness. Then check page 0 for this harvest.
 */
static void ck_trigger(uint64_t *s)
{
	uint64_t pre[NWRITERS][NHOT], old[NWRITERS][NHOT], map[1] = { 0 };
	int err;

	memcpy(old, ck->covered, sizeof(old));
	snap(pre);
	err = dt_harvest_bitmap(ck->fd, 0, 64, map, NULL, NULL);
	if (err) {
		fail("checked: HARVEST of page 0..63: %s", strerror(-err));
		return;
	}
	ck->harvests++;
	ck_start(rnd(s) % 4 == 0, s);
	if (map[0] & ~1ULL)
		fail("checked: harvest reported pages %#llx of 0..63, never written",
		     (unsigned long long)(map[0] & ~1ULL));
	for (int w = 0; w < NWRITERS && !(map[0] & 1); w++)
		if (pre[w][0] > old[w][0] + 1)
			fail("LOST WRITE: page 0 not reported by the harvest of 0..63 (before restart): "
			     "writer %d completed %llu stores, %llu were covered",
			     w, (unsigned long long)pre[w][0], (unsigned long long)old[w][0]);
}

static void *ck_harvester(void *p)
{
	uint64_t s = splitmix(g_seed ^ 0x2000);
	atomic_int *finished = p;

	ck_start(false, &s);
	while (!stopping()) {
		unsigned int op = rndn(&s, 100);

		if (op < 30) {
			/* Trigger a restart race, then look for what it lost. */
			ck->last_op = "restart race";
			if (ck->tracking && !ck->manual)
				ck_trigger(&s);
			for (int i = rndn(&s, 2000); i > 0; i--)
				__asm__ volatile("pause");
			if (ck->tracking)
				ck_harvest(&s, "after restart race", false);
		} else if (op < 50) {
			ck->last_op = "harvest";
			if (ck->tracking)
				ck_harvest(&s, "plain", false);
		} else if (op < 75) {
			/* Restart right after a harvest re-protected pages: writers fault now. */
			int k = 1 + rndn(&s, 6);

			ck->last_op = "restart storm";
			for (int i = 0; i < k && !stopping(); i++) {
				if (ck->tracking)
					ck_harvest(&s, i ? "after restart" : "before restart", false);
				ck_start(rnd(&s) % 4 == 0, &s);
				if (rnd(&s) & 1)
					usleep(rndn(&s, 300));
			}
			if (ck->tracking)
				ck_harvest(&s, "after restart", false);
		} else if (op < 88) {
			ck->last_op = "restart";
			ck_start(rnd(&s) % 3 == 0, &s);
		} else if (op < 93) {
			int err;

			ck->last_op = "stop";
			if (ck->tracking) {
				err = dt_track_stop(ck->fd);
				if (err)
					fail("checked: TRACK_STOP: %s", strerror(-err));
				ck->tracking = false;
				ck->stops++;
				usleep(rndn(&s, 2000));
			}
			if (rnd(&s) & 1)
				ck_start(rnd(&s) & 1, &s);
		} else if (op < 96) {
			struct dirtytrack_stats st;

			ck->last_op = "stats";
			if (dt_stats(ck->fd, &st))
				fail("checked: STATS: %s", strerror(errno));
			else if (!!(st.state & DIRTYTRACK_STATE_TRACKING) != ck->tracking)
				fail("checked: STATS state %u, tracking %d", st.state, ck->tracking);
		} else {
			ck->last_op = "sleep";
			usleep(rndn(&s, 5000));
		}
		if (!ck->tracking && rnd(&s) % 4 == 0)
			ck_start(rnd(&s) & 1, &s);
	}
	ck->last_op = "finished";
	atomic_store(finished, 1);
	return NULL;
}

/* Writers stopped: one last round must leave the shadow identical. */
static void ck_final(void)
{
	uint64_t s = splitmix(g_seed ^ 0x3000);
	char *page = malloc(PS);

	if (!ck->tracking)
		ck_start(false, &s);
	/*
	 * Manual protect: the first may leave a subset dirty, so once more,
	 * clearing all it reports; those pages must be reported again.
	 */
	ck_harvest(&s, "final", false);
	if (ck->manual)
		ck_harvest(&s, "final", true);
	for (int h = 0; h < NHOT && page; h++) {
		if (pread(ck->fd, page, PS, (off_t)(ck->hot[h] * PS)) != (ssize_t)PS) {
			fail("checked: final pread: %s", strerror(errno));
			break;
		}
		if (memcmp(page, ck->shadow + (size_t)h * PS, PS)) {
			int off = 0;

			while (off < (int)PS && page[off] == ck->shadow[(size_t)h * PS + off])
				off++;
			fail("LOST WRITE (data): page %llu differs from its copy at byte %d after the "
			     "final harvest (%s protect)", (unsigned long long)ck->hot[h], off,
			     ck->manual ? "manual" : "auto");
		}
	}
	free(page);
}

/* ------------------------------------------------------------- chaos */

#define NSHARED 3
#define NPRIV 3
#define NREG (NSHARED + NPRIV)
#define XPAGES 128			/* every stream endpoint region has this size */
#define NWORKERS 3
#define NMAPS 4

static const uint64_t shared_pages[NSHARED] = { XPAGES, 64, 1024 };
static int g_shared_fd[NSHARED];

struct region {
	int fd;
	uint64_t npages;
	bool source;			/* streamed from: in-process only */
	bool dest;			/* received into */
};
static struct region R[NREG];

struct pair {
	pthread_mutex_t lock;		/* fds change under it; the drainer takes it */
	int tx, rx;
	int src, dst;			/* regions: stream source, receive destination */
	bool active, fresh, kernel_rx;
	bool need_resume;
	unsigned int resume_tries;
	uint64_t pause_until;		/* the drainer leaves rx alone until then */
	struct dirtytrack_stream s;
};

struct worker {
	int id;
	pthread_t th;
	pid_t tid;
	uint64_t s;
	atomic_int op;			/* what it is doing now (OP_*), -1 idle */
	atomic_ulong op_start;
	atomic_int finished;
	struct {
		char *addr;
		size_t len;
		int reg;
	} maps[NMAPS];
	struct pair pair;
};

static struct worker W[NWORKERS];
static atomic_int victim_fd = -1;
static atomic_int chaos_stop, aux_stop;
static pthread_t drainer_th, reopener_th[2], signaler_th;
static atomic_int drainer_finished, reopener_finished[2];

static void unexpected(struct worker *w, const char *what, int err)
{
	atomic_fetch_add(&g_shm->unexpected, 1);
	fail("chaos worker %d: %s: unexpected %s (%d)", w ? w->id : -1, what, strerror(err), err);
}

static bool chaos_stopping(void)
{
	return atomic_load(&chaos_stop) || stopping();
}

static bool aux_stopping(void)
{
	return atomic_load(&aux_stop) || atomic_load(&g_shm->stop);
}

/* DT_TORTURE_SKIP: chaos operations (names as in the summary) left out. */
static uint64_t g_skip;

static void parse_skip(void)
{
	const char *e = getenv("DT_TORTURE_SKIP");

	for (int i = 0; e && i < OP_MAX; i++) {
		const char *m = strstr(e, op_names[i]);
		size_t l = strlen(op_names[i]);

		/* Whole names only ("stream" is not "stream-resume"). */
		while (m && ((m != e && m[-1] != ',') || (m[l] && m[l] != ',')))
			m = strstr(m + 1, op_names[i]);
		if (m)
			g_skip |= 1ULL << i;
	}
}

static bool skipped(int op)
{
	return g_skip >> op & 1;
}

static void op_begin(struct worker *w, int op)
{
	atomic_store(&w->op_start, now_ns());
	atomic_store(&w->op, op);
	atomic_fetch_add(&g_shm->ops[op], 1);
}

/* A region this worker may write: not a stream source while it has a batch pending. */
static int pick_region(struct worker *w, bool writing)
{
	for (;;) {
		int i = rndn(&w->s, NREG);

		if (writing && R[i].source && w->pair.need_resume)
			continue;
		return i;
	}
}

static void random_range(struct worker *w, int reg, uint64_t *first, uint64_t *n)
{
	uint64_t np = R[reg].npages;

	*first = rndn(&w->s, np);
	*n = 1 + rndn(&w->s, rnd(&w->s) & 1 ? np - *first : (np - *first < 70 ? np - *first : 70));
}

static void do_map(struct worker *w)
{
	int i = rndn(&w->s, NMAPS), reg = pick_region(w, false);
	uint64_t first, n;
	void *want = NULL;
	int flags = MAP_SHARED;
	char *a;

	random_range(w, reg, &first, &n);
	if (w->maps[i].addr && rnd(&w->s) & 1 && n * PS <= w->maps[i].len) {
		/* Replace (part of) an old mapping in place. */
		want = w->maps[i].addr;
		flags |= MAP_FIXED;
	} else if (w->maps[i].addr) {
		munmap(w->maps[i].addr, w->maps[i].len);
		w->maps[i].addr = NULL;
	}
	a = mmap(want, n * PS, PROT_READ | PROT_WRITE, flags, R[reg].fd, (off_t)(first * PS));
	if (a == MAP_FAILED) {
		unexpected(w, "mmap", errno);
		if (want)
			w->maps[i].addr = NULL;	/* the old one is gone too */
		return;
	}
	if (want) {
		/* MAP_FIXED: the new part and the old tail; keep it simple: the new part. */
		munmap(a + n * PS, w->maps[i].len - n * PS);
	}
	w->maps[i].addr = a;
	w->maps[i].len = n * PS;
	w->maps[i].reg = reg;
}

static void do_unmap(struct worker *w)
{
	int i = rndn(&w->s, NMAPS);

	if (!w->maps[i].addr)
		return;
	if (rnd(&w->s) & 1 && w->maps[i].len > PS) {
		/* Punch a hole in the mapping: keep the first part. */
		size_t keep = PS * (1 + rndn(&w->s, w->maps[i].len / PS - 1));

		munmap(w->maps[i].addr + keep, w->maps[i].len - keep);
		w->maps[i].len = keep;
		return;
	}
	munmap(w->maps[i].addr, w->maps[i].len);
	w->maps[i].addr = NULL;
}

static void do_store(struct worker *w, bool write)
{
	int i = rndn(&w->s, NMAPS), k, n = 1 + rndn(&w->s, 32);

	if (!w->maps[i].addr)
		return;
	if (write && R[w->maps[i].reg].source && w->pair.need_resume)
		return;		/* our own pending batch would make us wait for ourselves */
	for (k = 0; k < n; k++) {
		size_t off = rndn(&w->s, w->maps[i].len / 8) * 8;

		if (write)
			*(volatile uint64_t *)(w->maps[i].addr + off) = rnd(&w->s);
		else
			(void)*(volatile uint64_t *)(w->maps[i].addr + off);
	}
}

static void do_pwrite(struct worker *w, bool write)
{
	static __thread char buf[3 * 4096];
	int reg = pick_region(w, write);
	uint64_t size = R[reg].npages * PS;
	size_t len = 1 + rndn(&w->s, sizeof(buf));
	off_t off = (off_t)rndn(&w->s, size);
	ssize_t r;

	if (rnd(&w->s) % 8 == 0)
		off = (off_t)(size - rndn(&w->s, 100));	/* across the end */
	memset(buf, (int)rnd(&w->s), len);
	r = write ? pwrite(R[reg].fd, buf, len, off) : pread(R[reg].fd, buf, len, off);
	if (r < 0 && errno != EINTR && !(write && errno == ENOSPC && (uint64_t)off >= size))
		unexpected(w, write ? "pwrite" : "pread", errno);
}

static void do_punch(struct worker *w)
{
	int reg = pick_region(w, true);
	uint64_t size = R[reg].npages * PS;
	off_t off = (off_t)rndn(&w->s, size), len = 1 + (off_t)rndn(&w->s, 8 * PS);

	if (rnd(&w->s) & 1) {		/* page-aligned */
		off &= ~(off_t)(PS - 1);
		len = (len + PS - 1) & ~(off_t)(PS - 1);
	}
	if (fallocate(R[reg].fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) &&
	    errno != EINTR)
		unexpected(w, "punch", errno);
}

static void do_track(struct worker *w, int fd)
{
	int err;

	if (rnd(&w->s) % 3 == 0) {
		err = dt_track_stop(fd);
		if (err && err != -EINVAL)
			unexpected(w, "TRACK_STOP", -err);
		return;
	}
	err = dt_track_start(fd, rnd(&w->s) & 1 ? DIRTYTRACK_TRACK_MANUAL_PROTECT : 0);
	if (err)
		unexpected(w, "TRACK_START", -err);
}

static void do_harvest(struct worker *w, int fd, uint64_t npages)
{
	uint64_t map[1024 / 64], zmap[1024 / 64], list[64], first, n, next;
	size_t k;
	int err;

	first = rndn(&w->s, npages);
	n = 1 + rndn(&w->s, npages - first);
	if (rnd(&w->s) & 1) {
		err = dt_harvest_list(fd, first, n, list, 1 + rndn(&w->s, 64), &k, &next);
		if (!err && (next > first + n || next < first || k > 64))
			fail("chaos: list harvest: next %llu k %zu for [%llu, +%llu)",
			     (unsigned long long)next, k, (unsigned long long)first,
			     (unsigned long long)n);
	} else {
		err = dt_harvest_bitmap(fd, first, n, map, rnd(&w->s) & 1 ? zmap : NULL, NULL);
	}
	if (err && err != -EINVAL)
		unexpected(w, "HARVEST", -err);
}

static void do_clear(struct worker *w, int fd, uint64_t npages)
{
	uint64_t map[1024 / 64], first = rndn(&w->s, npages), n = 1 + rndn(&w->s, npages - first);
	int err;

	for (unsigned int i = 0; i < sizeof(map) / 8; i++)
		map[i] = rnd(&w->s);
	err = dt_clear(fd, first, n, rnd(&w->s) & 1 ? map : NULL, NULL);
	if (err && err != -EINVAL)
		unexpected(w, "CLEAR", -err);
}

/* Open /proc/self/fd/N of a region and use the new file a little. */
static void do_reopen(struct worker *w)
{
	int reg = pick_region(w, false), fd;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", R[reg].fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		unexpected(w, "open /proc/self/fd", errno);
		return;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size != R[reg].npages * PS)
		fail("chaos: reopened region: size %lld, want %llu", (long long)st.st_size,
		     (unsigned long long)(R[reg].npages * PS));
	switch (rndn(&w->s, 4)) {
	case 0:
		do_harvest(w, fd, R[reg].npages);
		break;
	case 1: {
		char *a = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (a == MAP_FAILED) {
			unexpected(w, "mmap of reopened region", errno);
			break;
		}
		if (!(R[reg].source && w->pair.need_resume))
			*(volatile char *)a = 1;
		/* Keep it past the close sometimes: the mapping holds the file. */
		if (rnd(&w->s) & 1)
			munmap(a, PS);
		else if (!w->maps[0].addr)
			w->maps[0].addr = a, w->maps[0].len = PS, w->maps[0].reg = reg;
		else
			munmap(a, PS);
		break;
	}
	case 2:
		do_track(w, fd);
		break;
	default:
		break;
	}
	close(fd);
}

/* A fresh region whose last close races the reopener thread's open(/proc/self/fd/N). */
static void do_victim(struct worker *w, int dev)
{
	static __thread char *fill;
	uint64_t np = 1 + rndn(&w->s, 64);
	int fd = dt_region_create(dev, np * PS), expected;
	char *a = NULL;

	if (fd < 0) {
		unexpected(w, "CREATE_REGION", -fd);
		return;
	}
	/* Pages make the last close (truncate) slower: a wider window for the race. */
	if (!fill)
		fill = calloc(64, PS);
	if (fill && rnd(&w->s) & 1)
		(void)!pwrite(fd, fill, np * PS, 0);
	if (rnd(&w->s) & 1) {
		a = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a != MAP_FAILED)
			*a = 1;
		if (rnd(&w->s) & 1)
			dt_track_start(fd, 0);
	}
	expected = -1;
	atomic_compare_exchange_strong(&victim_fd, &expected, fd);
	for (int i = rndn(&w->s, 200); i > 0; i--)
		__asm__ volatile("pause");
	if (a && a != MAP_FAILED && rnd(&w->s) & 1) {
		close(fd);			/* the mapping is the last file */
		munmap(a, PS);
	} else {
		if (a && a != MAP_FAILED)
			munmap(a, PS);
		close(fd);
	}
	expected = fd;
	atomic_compare_exchange_strong(&victim_fd, &expected, -1);
}

static void *reopener(void *p)
{
	while (!aux_stopping()) {
		int v = atomic_load(&victim_fd), fd;
		char path[64];

		if (v < 0) {
			sched_yield();
			continue;
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", v);
		/* The number may already be something else (a socket: ENXIO). */
		fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd >= 0) {
			atomic_fetch_add(&g_shm->reopen_ok, 1);
			close(fd);
		} else {
			atomic_fetch_add(&g_shm->reopen_gone, 1);
		}
	}
	atomic_store(&reopener_finished[(intptr_t)p], 1);
	return NULL;
}

/* ---- streams ---- */

static int tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*tx = *rx = -1;
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		goto err;
	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*tx < 0 || connect(*tx, (struct sockaddr *)&a, sizeof(a)))
		goto err;
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*rx < 0)
		goto err;
	close(l);
	return 0;
err:
	len = errno;
	close(l);
	if (*tx >= 0)
		close(*tx);
	*tx = *rx = -1;
	return -(int)len;
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static void rst_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void pair_open(struct worker *w)
{
	struct pair *pr = &w->pair;
	sigset_t set, old;
	int tx, rx, err;

	/* Connecting is not what this test interrupts. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	err = tcp_pair(&tx, &rx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (err) {
		unexpected(w, "tcp pair", -err);
		return;
	}
	if (rnd(&w->s) & 1) {
		int small = 4096 << rndn(&w->s, 5);

		setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	if (rnd(&w->s) & 1)
		set_nonblock(rx, true);
	pthread_mutex_lock(&pr->lock);
	pr->tx = tx;
	pr->rx = rx;
	pr->src = NSHARED + rndn(&w->s, 2);	/* private regions 0 and 1 are sources */
	pr->dst = rnd(&w->s) & 1 ? 0 : NSHARED + 2;
	pr->active = true;
	pr->fresh = true;
	pr->kernel_rx = rnd(&w->s) % 3 != 0;
	pr->need_resume = false;
	pr->pause_until = 0;
	memset(&pr->s, 0, sizeof(pr->s));
	pthread_mutex_unlock(&pr->lock);
}

/* Close both ends, each with a reset or an orderly close. Never with a batch pending. */
static void pair_close(struct worker *w)
{
	struct pair *pr = &w->pair;

	pthread_mutex_lock(&pr->lock);
	if (pr->active) {
		if (rnd(&w->s) & 1)
			rst_close(pr->rx);
		else
			close(pr->rx);
		if (rnd(&w->s) & 1)
			rst_close(pr->tx);
		else
			close(pr->tx);
	}
	pr->active = false;
	pr->tx = pr->rx = -1;
	pthread_mutex_unlock(&pr->lock);
}

static bool stream_err_ok(int err)
{
	switch (err) {
	case 0: case -EAGAIN: case -EINTR: case -EBUSY: case -EPIPE: case -ECONNRESET:
	case -ENOTCONN: case -ENOMEM:
		return true;
	}
	return false;
}

/* One STREAM call: a new send, or the resume of one cut short. */
static void do_stream(struct worker *w, bool resume)
{
	struct pair *pr = &w->pair;
	struct dirtytrack_stream *s = &pr->s;
	uint64_t list[16], map[XPAGES / 64];
	int err;

	if (!pr->active) {
		if (resume)
			return;
		pair_open(w);
		if (!pr->active)
			return;
	}
	if (!pr->need_resume) {
		unsigned int src = rndn(&w->s, 4);

		memset(s, 0, sizeof(*s));
		s->sockfd = pr->tx;
		s->flags = src | (pr->fresh ? DIRTYTRACK_STREAM_HEADER : 0) |
			   (rnd(&w->s) & 1 ? DIRTYTRACK_STREAM_END_ROUND : 0);
		s->round = rndn(&w->s, 4);
		if (src == DIRTYTRACK_STREAM_SRC_LIST) {
			for (int i = 0; i < 16; i++)
				list[i] = rndn(&w->s, XPAGES);
			s->pages = (uintptr_t)list;
			s->pages_size = 8 * (1 + rndn(&w->s, 16));
		} else {
			s->first_page = rndn(&w->s, XPAGES);
			s->npages = 1 + rndn(&w->s, XPAGES - s->first_page);
			s->next = s->first_page;
			if (src == DIRTYTRACK_STREAM_SRC_BITMAP) {
				for (unsigned int i = 0; i < XPAGES / 64; i++)
					map[i] = rnd(&w->s);
				s->pages = (uintptr_t)map;
				s->pages_size = dt_bitmap_bytes(s->npages);
			}
		}
		pr->fresh = false;
	} else {
		/* The source buffers of a LIST/BITMAP stream are gone: finish as a RANGE. */
		if ((s->flags & DIRTYTRACK_STREAM_SRC_MASK) >= DIRTYTRACK_STREAM_SRC_BITMAP) {
			uint64_t first = rndn(&w->s, XPAGES);

			s->flags = (s->flags & ~DIRTYTRACK_STREAM_SRC_MASK) |
				   DIRTYTRACK_STREAM_SRC_RANGE;
			s->pages = s->pages_size = 0;
			s->first_page = first;
			s->npages = 1 + rndn(&w->s, XPAGES - first);
			s->next = first;
		}
		s->flags &= ~DIRTYTRACK_STREAM_HEADER;
	}
	s->budget = rnd(&w->s) & 1 ? 0 : 64 + 32 + PS + rndn(&w->s, 8 * (32 + PS));
	set_nonblock(pr->tx, rnd(&w->s) & 1);
	err = dt_xioctl(R[pr->src].fd, DIRTYTRACK_IOC_STREAM, s);
	atomic_fetch_add(&g_shm->stream_bytes, s->bytes);
	if (err == -EAGAIN)
		atomic_fetch_add(&g_shm->eagain, 1);
	else if (err == -EINTR)
		atomic_fetch_add(&g_shm->eintr, 1);
	else if (err == -EBUSY)
		atomic_fetch_add(&g_shm->ebusy, 1);
	else if (err == -EPIPE || err == -ECONNRESET)
		atomic_fetch_add(&g_shm->reset_errs, 1);
	bool no_harvest = err == -EINVAL &&
		(s->flags & DIRTYTRACK_STREAM_SRC_MASK) == DIRTYTRACK_STREAM_SRC_HARVEST;

	if (no_harvest)
		err = 0;	/* not tracking in auto-protect mode: fine */
	if (!stream_err_ok(err))
		unexpected(w, "STREAM", -err);
	/*
	 * Anything but a clean finish may leave a batch pending on this socket:
	 * resume it (or break the connection and resume to drop it) soon.
	 */
	if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN) {
		pr->need_resume = false;
		pair_close(w);
	} else if (err == -EBUSY) {
		pr->need_resume = false;	/* another thread's batch; ours is not pending */
	} else if (no_harvest) {
		/* A pending batch goes before the source is checked: none is left. */
		pr->need_resume = false;
	} else {
		pr->need_resume = err || !s->done;
	}
	pr->resume_tries = pr->need_resume ? pr->resume_tries + 1 : 0;
}

/* Break the connection: RST from the receiver; a pending batch is dropped by the next call. */
static void do_rst(struct worker *w)
{
	struct pair *pr = &w->pair;

	if (!pr->active)
		return;
	if (!pr->need_resume) {
		pair_close(w);
		return;
	}
	pthread_mutex_lock(&pr->lock);
	rst_close(pr->rx);
	pr->rx = -1;
	pthread_mutex_unlock(&pr->lock);
	/* The peer is gone: the resume fails and drops the batch (bounded by the RST). */
	for (int i = 0; i < 50 && pr->need_resume; i++) {
		do_stream(w, true);
		if (pr->need_resume)
			usleep(1000);
	}
	if (pr->need_resume)
		fail("chaos worker %d: STREAM still pending 50 calls after the peer reset it", w->id);
}

/* The drainer: reads every pair's receive end, with recv() or RECEIVE. */
static void *drainer(void *p)
{
	static char buf[65536];
	uint64_t s = splitmix(g_seed ^ 0x4000 ^ (uint64_t)getpid());

	while (!aux_stopping()) {
		bool any = false;

		for (int i = 0; i < NWORKERS; i++) {
			struct pair *pr = &W[i].pair;
			struct pollfd pfd;

			if (pthread_mutex_trylock(&pr->lock))
				continue;
			if (!pr->active || pr->rx < 0 || now_ns() < pr->pause_until) {
				pthread_mutex_unlock(&pr->lock);
				continue;
			}
			pfd = (struct pollfd){ .fd = pr->rx, .events = POLLIN };
			if (poll(&pfd, 1, 0) == 1) {
				any = true;
				if (pr->kernel_rx) {
					struct dirtytrack_receive r = {
						.sockfd = pr->rx,
						.budget = rnd(&s) & 1 ? 0 : 1 + rndn(&s, 65536),
						.flags = (rnd(&s) % 8 ? 0 : DIRTYTRACK_RECV_RESET) |
							 (rnd(&s) & 1 ? DIRTYTRACK_RECV_ROUND : 0),
					};
					int err;

					atomic_fetch_add(&g_shm->ops[OP_RECEIVE], 1);
					err = dt_receive(R[pr->dst].fd, &r);
					atomic_fetch_add(&g_shm->recv_records, r.records);
					/*
					 * Streams here start anywhere and resume as other
					 * sources: wire errors are expected; a reader stuck
					 * on one falls back to plain reads.
					 */
					if (err && err != -EAGAIN && err != -EINTR)
						pr->kernel_rx = rnd(&s) % 4 == 0;
					if (err == -EFAULT || err == -ENOTSOCK || err == -EBADF)
						unexpected(NULL, "RECEIVE", -err);
				} else {
					atomic_fetch_add(&g_shm->ops[OP_RECV_DRAIN], 1);
					(void)!recv(pr->rx, buf, 1 + rndn(&s, sizeof(buf)), MSG_DONTWAIT);
				}
				/* Now and then let the socket fill up. */
				if (rnd(&s) % 64 == 0)
					pr->pause_until = now_ns() + rndn(&s, 200) * 1000000ULL;
			}
			pthread_mutex_unlock(&pr->lock);
		}
		if (!any)
			usleep(500);
	}
	atomic_store(&drainer_finished, 1);
	return NULL;
}

/* Signals without SA_RESTART at random threads: interrupt whatever blocks. */
static void *signaler(void *p)
{
	uint64_t s = splitmix(g_seed ^ 0x5000 ^ (uint64_t)getpid());

	while (!aux_stopping()) {
		int i = rndn(&s, NWORKERS + 1);

		usleep(1000 + rndn(&s, 20000));
		if (i == NWORKERS)
			pthread_kill(drainer_th, rnd(&s) & 1 ? SIGUSR1 : SIGALRM);
		else if (!atomic_load(&W[i].finished))
			pthread_kill(W[i].th, rnd(&s) & 1 ? SIGUSR1 : SIGALRM);
		if (rnd(&s) % 16 == 0)
			alarm(1);	/* a process-wide one, to any thread */
	}
	return NULL;
}

static int g_dev;

static void *chaos_worker(void *p)
{
	struct worker *w = p;

	w->tid = gettid();
	while (!chaos_stopping()) {
		struct pair *pr = &w->pair;
		unsigned int op = rndn(&w->s, 100);
		int reg;

		/* A batch cut short is finished soon: other writers may wait for it. */
		if (pr->need_resume && (rnd(&w->s) & 1 || pr->resume_tries > 20)) {
			op_begin(w, OP_RESUME);
			do_stream(w, true);
			if (pr->need_resume && pr->resume_tries > 200) {
				op_begin(w, OP_RST);
				do_rst(w);
			}
			continue;
		}
		{
			static const unsigned char upto[] = { 8, 11, 24, 26, 32, 34, 40, 44, 54, 58,
							      59, 63, 70, 95, 100 };
			static const unsigned char what[] = { OP_MAP, OP_UNMAP, OP_STORE, OP_READ,
				OP_PWRITE, OP_PREAD, OP_PUNCH, OP_TRACK, OP_HARVEST, OP_CLEAR,
				OP_STATS, OP_REOPEN, OP_VICTIM, OP_STREAM, OP_RST };
			unsigned int k = 0;

			while (op >= upto[k])
				k++;
			if (skipped(what[k]))
				continue;
		}
		if (op < 8) {
			op_begin(w, OP_MAP);
			do_map(w);
		} else if (op < 11) {
			op_begin(w, OP_UNMAP);
			do_unmap(w);
		} else if (op < 24) {
			op_begin(w, OP_STORE);
			do_store(w, true);
		} else if (op < 26) {
			op_begin(w, OP_READ);
			do_store(w, false);
		} else if (op < 32) {
			op_begin(w, OP_PWRITE);
			do_pwrite(w, true);
		} else if (op < 34) {
			op_begin(w, OP_PREAD);
			do_pwrite(w, false);
		} else if (op < 40) {
			op_begin(w, OP_PUNCH);
			do_punch(w);
		} else if (op < 44) {
			op_begin(w, OP_TRACK);
			reg = pick_region(w, false);
			do_track(w, R[reg].fd);
		} else if (op < 54) {
			op_begin(w, OP_HARVEST);
			reg = pick_region(w, false);
			do_harvest(w, R[reg].fd, R[reg].npages);
		} else if (op < 58) {
			op_begin(w, OP_CLEAR);
			reg = pick_region(w, false);
			do_clear(w, R[reg].fd, R[reg].npages);
		} else if (op < 59) {
			struct dirtytrack_stats st;

			op_begin(w, OP_STATS);
			reg = pick_region(w, false);
			if (dt_stats(R[reg].fd, &st))
				unexpected(w, "STATS", errno);
		} else if (op < 63) {
			op_begin(w, OP_REOPEN);
			do_reopen(w);
		} else if (op < 70) {
			op_begin(w, OP_VICTIM);
			do_victim(w, g_dev);
		} else if (op < 95) {
			op_begin(w, OP_STREAM);
			do_stream(w, false);
		} else {
			op_begin(w, OP_RST);
			do_rst(w);
		}
		atomic_store(&w->op, -1);
	}
	/* Leave nothing pending or in flight: other threads may wait for it. */
	op_begin(w, OP_RST);
	if (w->pair.need_resume)
		do_rst(w);
	pair_close(w);
	atomic_store(&w->op, -1);
	atomic_store(&w->finished, 1);
	return NULL;
}

/* Join with a deadline; a thread still busy is reported with what it does. */
static bool join_by(pthread_t th, atomic_int *finished, uint64_t end)
{
	while (!atomic_load(finished)) {
		if (now_ns() >= end)
			return false;
		usleep(5000);
	}
	pthread_join(th, NULL);
	return true;
}

/* A chaos process: runs until the deadline (or until the parent kills it). */
static void chaos_main(int gen, int dev)
{
	struct sigaction sa = { .sa_handler = noop_handler };	/* no SA_RESTART */
	uint64_t end;
	int i;

	g_dev = dev;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < NSHARED; i++)
		R[i] = (struct region){ .fd = g_shared_fd[i], .npages = shared_pages[i],
					.dest = i == 0 };
	for (i = 0; i < NPRIV; i++) {
		int fd = dt_region_create(dev, XPAGES * PS);

		if (fd < 0) {
			unexpected(NULL, "CREATE_REGION", -fd);
			_exit(1);
		}
		R[NSHARED + i] = (struct region){ .fd = fd, .npages = XPAGES,
						  .source = i < 2, .dest = i == 2 };
	}
	for (i = 0; i < NWORKERS; i++) {
		W[i].id = gen * NWORKERS + i;
		W[i].s = splitmix(g_seed ^ ((uint64_t)gen << 32) ^ (uint64_t)i);
		atomic_store(&W[i].op, -1);
		pthread_mutex_init(&W[i].pair.lock, NULL);
		W[i].pair.tx = W[i].pair.rx = -1;
		pthread_create(&W[i].th, NULL, chaos_worker, &W[i]);
	}
	pthread_create(&drainer_th, NULL, drainer, NULL);
	pthread_create(&reopener_th[0], NULL, reopener, (void *)0);
	pthread_create(&reopener_th[1], NULL, reopener, (void *)1);
	pthread_create(&signaler_th, NULL, signaler, NULL);

	while (!stopping())
		usleep(20000);
	atomic_store(&chaos_stop, 1);
	/* Ops are short: 15 s after the deadline a worker still in one is stuck. */
	end = now_ns() + 15000000000ULL;
	for (i = 0; i < NWORKERS; i++) {
		if (!join_by(W[i].th, &W[i].finished, end)) {
			int op = atomic_load(&W[i].op);

			fail("HANG: chaos worker %d (tid %d) stuck in %s for %llu ms", W[i].id,
			     W[i].tid, op >= 0 ? op_names[op] : "?",
			     (unsigned long long)((now_ns() - atomic_load(&W[i].op_start)) / 1000000));
			dump_stacks(getpid());
			_exit(1);
		}
	}
	atomic_store(&aux_stop, 1);
	pthread_join(signaler_th, NULL);
	if (!join_by(drainer_th, &drainer_finished, end) ||
	    !join_by(reopener_th[0], &reopener_finished[0], end) ||
	    !join_by(reopener_th[1], &reopener_finished[1], end)) {
		fail("HANG: chaos drainer or reopener stuck");
		dump_stacks(getpid());
		_exit(1);
	}
	_exit(atomic_load(&g_shm->failed) ? 1 : 0);
}

/* ------------------------------------------------------------- the test */

struct child {
	pid_t pid;
	int gen;
};

static pid_t spawn_chaos(int gen, int dev)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		chaos_main(gen, dev);
	return pid;
}

/* A child that exited: fine if we killed it or it finished cleanly. */
static void child_status(struct child *c, int status, bool killed)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && killed)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFSIGNALED(status))
		fail("chaos process %d (gen %d) died of signal %d (%s)", c->pid, c->gen,
		     WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (!atomic_load(&g_shm->failed))
		fail("chaos process %d (gen %d) exited %d", c->pid, c->gen, WEXITSTATUS(status));
}

/* SIGKILL a child; it must be gone within 20 s, else it is stuck in the kernel. */
static void kill_child(struct child *c, const char *why)
{
	int status;

	kill(c->pid, SIGKILL);
	if (wait_timeout(c->pid, &status, 20000000000ULL) != c->pid) {
		fail("HANG: chaos process %d (gen %d) not dead 20 s after SIGKILL (%s)", c->pid,
		     c->gen, why);
		dump_stacks(c->pid);
		c->pid = 0;
		return;
	}
	child_status(c, status, true);
	c->pid = 0;
}

FIXTURE(torture) {
	int dev;
};

FIXTURE_SETUP(torture)
{
	const char *e = getenv("DT_TORTURE_SEED");

	self->dev = dt_open();
	ASSERT_LE(0, self->dev) TH_LOG("open /dev/dirtytrack: %s", strerror(-self->dev));
	if (e && *e)
		g_seed = strtoull(e, NULL, 0);
	if (!g_seed)
		g_seed = splitmix(now_ns() ^ ((uint64_t)getpid() << 32));
	e = getenv("DT_TORTURE_SECONDS");
	if (e && *e)
		g_seconds = atoi(e);
	if (g_seconds < 1)
		g_seconds = 1;
}

FIXTURE_TEARDOWN(torture)
{
	close(self->dev);
}

/* The harness's limit; the test bounds itself well below it. */
TEST_F_TIMEOUT(torture, run, 7200)
{
	int nprocs = 2, ngen = 0, i, status;
	const char *e = getenv("DT_TORTURE_PROCS");
	struct writer_arg wa[NWRITERS];
	atomic_int harvester_done = 0;
	struct child kids[8] = { 0 };
	pthread_t harvester_th;
	uint64_t s, end, kills = 0;
	bool hung = false;

	if (e && *e)
		nprocs = atoi(e);
	parse_skip();
	if (nprocs < 0 || nprocs > 8)
		nprocs = 2;
	g_shm = mmap(NULL, sizeof(*g_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, g_shm);
	ck = calloc(1, sizeof(*ck));
	ASSERT_NE(NULL, ck);
	ck->npages = 1ULL << 20;
	e = getenv("DT_TORTURE_CKPAGES");
	if (e && *e)
		ck->npages = strtoull(e, NULL, 0);
	if (ck->npages < 64 * NHOT)
		ck->npages = 64 * NHOT;
	s = splitmix(g_seed);
	TH_LOG("seed %llu (DT_TORTURE_SEED=%llu to repeat), %d s, %d chaos processes, checked region %llu pages",
	       (unsigned long long)g_seed, (unsigned long long)g_seed, g_seconds, nprocs,
	       (unsigned long long)ck->npages);
	g_deadline = now_ns() + (uint64_t)g_seconds * 1000000000ULL;

	/* Hot pages: page 0 and one page in each of NHOT - 1 other dirty words. */
	ck->hot[0] = 0;
	for (i = 1; i < NHOT; i++) {
		uint64_t words = ck->npages / 64, w = i == 1 ? 1 : i * (words / NHOT);

		ck->hot[i] = i == NHOT - 1 ? ck->npages - 1 : w * 64 + rndn(&s, 64);
	}
	ck->fd = dt_region_create(self->dev, ck->npages * PS);
	ASSERT_LE(0, ck->fd) TH_LOG("CREATE_REGION of %llu pages: %s",
				    (unsigned long long)ck->npages, strerror(-ck->fd));
	ck->map = mmap(NULL, ck->npages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, ck->fd, 0);
	ASSERT_NE(MAP_FAILED, ck->map);
	ck->shadow = calloc(NHOT, PS);
	ck->bitmap = malloc(dt_bitmap_bytes(ck->npages));
	ck->zero = malloc(dt_bitmap_bytes(ck->npages));
	ASSERT_TRUE(ck->shadow && ck->bitmap && ck->zero);

	for (i = 0; i < NSHARED; i++) {
		g_shared_fd[i] = dt_region_create(self->dev, shared_pages[i] * PS);
		ASSERT_LE(0, g_shared_fd[i]);
	}
	/* Chaos first: fork before this process has threads. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nprocs; i++) {
		kids[i].gen = ngen++;
		kids[i].pid = spawn_chaos(kids[i].gen, self->dev);
		ASSERT_LT(0, kids[i].pid);
	}
	for (i = 0; i < NWRITERS; i++) {
		wa[i].id = i;
		atomic_store(&wa[i].finished, 0);
		ASSERT_EQ(0, pthread_create(&wa[i].th, NULL, ck_writer, &wa[i]));
	}
	ASSERT_EQ(0, pthread_create(&harvester_th, NULL, ck_harvester, &harvester_done));

	/* Supervise: SIGKILL a chaos process now and then, and start another. */
	while (!stopping()) {
		usleep(200000 + rndn(&s, 1500000));
		for (i = 0; i < nprocs; i++) {
			if (kids[i].pid && waitpid(kids[i].pid, &status, WNOHANG) == kids[i].pid) {
				child_status(&kids[i], status, false);
				kids[i].pid = 0;
			}
		}
		if (stopping() || !nprocs)
			break;
		i = rndn(&s, nprocs);
		if (kids[i].pid && rnd(&s) & 1 && !skipped(OP_KILL)) {
			kill_child(&kids[i], "killed mid-run");
			atomic_fetch_add(&g_shm->ops[OP_KILL], 1);
			kills++;
		}
		if (!kids[i].pid && !stopping()) {
			kids[i].gen = ngen++;
			kids[i].pid = spawn_chaos(kids[i].gen, self->dev);
		}
	}

	/* Wind down: the harvester first, then the writers, then the chaos. */
	end = now_ns() + 30000000000ULL;
	if (!join_by(harvester_th, &harvester_done, end)) {
		fail("HANG: the checked region's harvester is stuck (last: %s)", ck->last_op);
		dump_stacks(getpid());
		hung = true;
	}
	atomic_store(&ck->stop_writers, 1);
	for (i = 0; i < NWRITERS; i++) {
		if (!join_by(wa[i].th, &wa[i].finished, end)) {
			fail("HANG: checked writer %d is stuck", i);
			hung = true;
		}
	}
	if (!hung && !atomic_load(&g_shm->failed))
		ck_final();
	for (i = 0; i < nprocs; i++) {
		if (!kids[i].pid)
			continue;
		if (wait_timeout(kids[i].pid, &status, 45000000000ULL) == kids[i].pid) {
			child_status(&kids[i], status, false);
			kids[i].pid = 0;
		} else {
			fail("HANG: chaos process %d (gen %d) did not finish 45 s after the deadline",
			     kids[i].pid, kids[i].gen);
			dump_stacks(kids[i].pid);
			kill_child(&kids[i], "did not finish");
		}
	}

	TH_LOG("checked: %lu harvests (%lu list), %lu restarts, %lu stops, %lu clears, %lu pages reported; writer ops %lu %lu %lu",
	       ck->harvests, ck->list_harvests, ck->restarts, ck->stops, ck->clears, ck->reported,
	       ck->writer_ops[0], ck->writer_ops[1], ck->writer_ops[2]);
	{
		char line[1024];
		int n = 0;

		for (i = 0; i < OP_MAX; i++)
			n += snprintf(line + n, sizeof(line) - n, " %s %lu", op_names[i],
				      (unsigned long)atomic_load(&g_shm->ops[i]));
		TH_LOG("chaos: %d processes started, %llu killed;%s", ngen, (unsigned long long)kills, line);
	}
	TH_LOG("chaos: stream %lu bytes (EAGAIN %lu, EINTR %lu, EBUSY %lu, reset %lu), received %lu records, reopen %lu ok / %lu gone",
	       (unsigned long)atomic_load(&g_shm->stream_bytes), (unsigned long)atomic_load(&g_shm->eagain),
	       (unsigned long)atomic_load(&g_shm->eintr), (unsigned long)atomic_load(&g_shm->ebusy),
	       (unsigned long)atomic_load(&g_shm->reset_errs),
	       (unsigned long)atomic_load(&g_shm->recv_records),
	       (unsigned long)atomic_load(&g_shm->reopen_ok),
	       (unsigned long)atomic_load(&g_shm->reopen_gone));
	ASSERT_EQ(0, atomic_load(&g_shm->failed))
		TH_LOG("seed %llu: %s", (unsigned long long)g_seed, g_shm->msg);
	if (hung)
		_exit(KSFT_FAIL);	/* threads stuck in the kernel: do not tear down */
	munmap(ck->map, ck->npages * PS);
	close(ck->fd);
	for (i = 0; i < NSHARED; i++)
		close(g_shared_fd[i]);
}

/* "seed=N" and "seconds=N" arguments; the rest goes to the harness. */
int main(int argc, char **argv)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "seed=", 5))
			setenv("DT_TORTURE_SEED", argv[i] + 5, 1);
		else if (!strncmp(argv[i], "seconds=", 8))
			setenv("DT_TORTURE_SECONDS", argv[i] + 8, 1);
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return test_harness_run(n, argv);
}
