// SPDX-License-Identifier: GPL-2.0
/*
 * dt-bench: dirtytrack against the kernel's own trackers and userspace
 * transfer, side by side in one boot. See usage() for the manual; the
 * figures land in OUTDIR/raw.jsonl for scripts/bench-report.py.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "dt_tracker.h"
#include "dt_wire.h"
#include "libdirtytrack.h"

#define PS 4096UL
#define MAXV 8

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    dt-bench - dirtytrack against uffd-wp, soft-dirty, mprotect and userspace\n"
"    transfer, side by side\n"
"\n"
"SYNOPSIS\n"
"    dt-bench -o OUTDIR [--smoke] [-r REPS] [-s SEED] [-f FIGURE,...]\n"
"             [--accel NAME] [--machine TEXT] [--git REV]\n"
"    dt-bench -o OUTDIR --peer IP:PORT [--link NAME] [--smoke] [-r REPS]\n"
"             [-f send_link,receive_link,writer_stall] ...\n"
"    dt-bench --serve IP:PORT\n"
"\n"
"DESCRIPTION\n"
"    Measures, with every backend in the same boot:\n"
"      fault         ns per first write to a write-protected page, 1 and 2\n"
"                    threads (dirtytrack, uffd-wp, soft-dirty, mprotect)\n"
"      clean_read    ns per first read of a page after a harvest\n"
"                    re-protected it (all backends)\n"
"      harvest       harvest + re-protect time against region size x dirty\n"
"                    fraction x pattern (uniform, sequential, hotset, all)\n"
"      harvest_flat  harvest time at a fixed dirty count as the region grows\n"
"      send          GiB/s and CPU s/GiB over loopback TCP: module STREAM,\n"
"                    copy+send(), writev() from the mapping, vmsplice+splice\n"
"      receive       module RECEIVE against recv() into the mapping\n"
"      precopy       one pre-copy cycle (harvest + send + receive) while a\n"
"                    writer dirties pages at a fixed rate, and its time per\n"
"                    page sent\n"
"    With --peer, it measures instead, against a dt-bench --serve on another\n"
"    host (the two-VM benchmark, tests/vm/bench_link.sh, joins two VMs by a\n"
"    virtio-net link):\n"
"      send_link     GiB/s and CPU s/GiB of each sender above to the peer,\n"
"                    which discards the bytes (once first applied and\n"
"                    checksummed)\n"
"      receive_link  the peer's receiver: module RECEIVE against recv()\n"
"                    into the mapping, STREAM sending; the peer's times\n"
"      writer_stall  ns per first write to a page that STREAM (64 pages a\n"
"                    call) has just queued to the peer and that the peer\n"
"                    has not acknowledged yet (the write takes a copy),\n"
"                    against a write to a page a harvest re-protected; the\n"
"                    writer runs on the last CPU, the stream on CPU 0\n"
"    Every tracker run compares the harvested set with the pages the\n"
"    benchmark wrote, and every transfer is checked byte for byte once: a\n"
"    backend that misreports is recorded as failed, without a number. A\n"
"    backend the kernel lacks is recorded as unavailable, with the reason.\n"
"    Progress goes to stderr.\n"
"\n"
"OPTIONS\n"
"    -o, --out OUTDIR     where raw.jsonl and meta.json go (created)\n"
"        --smoke          tiny sizes and 2 repetitions: checks the code, not\n"
"                         the machine (make bench-smoke)\n"
"    -r, --reps N         repetitions per figure (default 3; smoke 2)\n"
"    -s, --seed N         seed of the write patterns (default 1)\n"
"    -f, --figures LIST   comma-separated subset of the figures above\n"
"        --accel NAME     recorded in meta.json (TCG or KVM)\n"
"        --machine TEXT   the host machine, recorded in meta.json\n"
"        --git REV        the source revision, recorded in meta.json\n"
"        --peer IP:PORT   run the link figures against dt-bench --serve there\n"
"        --link NAME      the link's name in the figures' params (default\n"
"                         loopback)\n"
"        --serve IP:PORT  serve the link figures of one --peer run, then exit;\n"
"                         needs no OUTDIR\n"
"        --mprotect-max-mb N  skip the mprotect backend in the harvest figure\n"
"                         above N MiB (default 1024): under TCG each of its\n"
"                         faults costs ~0.2 ms, hours at 4 GiB\n"
"    -h, --help           this text\n"
"\n"
"FILES\n"
"    OUTDIR/raw.jsonl     one JSON object per figure, backend and parameters:\n"
"                         figure, metric, unit, better, backend, params and\n"
"                         samples, or unavailable/failed with a reason\n"
"    OUTDIR/meta.json     kernel, machine, accelerator, CPUs, memory, date\n"
"\n"
"EXIT STATUS\n"
"    0 when every figure ran (unavailable backends included); 1 if a backend\n"
"    failed its correctness check or an error stopped the run; 2 on bad\n"
"    usage.\n"
"\n"
"REQUIREMENTS\n"
"    dirtytrack.ko loaded, root (soft-dirty's clear_refs, userfaultfd), and\n"
"    memory for the largest region (4 GiB without --smoke). The mprotect\n"
"    backend splits VMAs: raise vm.max_map_count for large regions.\n");
}

/* ---- configuration and output ---- */

static struct {
	bool smoke;
	int reps;
	uint64_t seed;
	const char *figures;
	uint64_t mprotect_max_mb;
	const char *peer, *link;
	FILE *raw;
	int failures;
} cfg = { .reps = 3, .seed = 1, .mprotect_max_mb = 1024, .link = "loopback" };

static bool want(const char *fig)
{
	const char *p = cfg.figures;
	size_t n = strlen(fig);

	if (!p)
		return true;
	for (; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (!strncmp(p, fig, n) && (p[n] == ',' || !p[n]))
			return true;
	}
	return false;
}

static double now(void);
static double t_start;

/* Progress on stderr, with the seconds since the start. */
#define progress(...) (fprintf(stderr, "%7.1fs ", now() - t_start), fprintf(stderr, __VA_ARGS__))

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One line of raw.jsonl: samples, or a status ("unavailable"/"failed") and why. */
static void emit(const char *fig, const char *metric, const char *unit, const char *better,
		 const char *backend, const char *params, const double *v, int n,
		 const char *status, const char *why)
{
	fprintf(cfg.raw, "{\"figure\": \"%s\", \"metric\": \"%s\", \"unit\": \"%s\", "
		"\"better\": \"%s\", \"backend\": \"%s\", \"params\": {%s}", fig, metric, unit,
		better, backend, params);
	if (status) {
		fprintf(cfg.raw, ", \"%s\": \"", status);
		for (const char *c = why; *c; c++)
			fprintf(cfg.raw, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
		fprintf(cfg.raw, "\"}\n");
		fprintf(stderr, "  %-18s %s: %s\n", backend, status, why);
		if (!strcmp(status, "failed"))
			cfg.failures++;
	} else {
		double s[64];

		fprintf(cfg.raw, ", \"samples\": [");
		for (int i = 0; i < n; i++)
			fprintf(cfg.raw, "%s%.6g", i ? ", " : "", v[i]);
		fprintf(cfg.raw, "]}\n");
		memcpy(s, v, sizeof(*v) * (size_t)n);
		qsort(s, (size_t)n, sizeof(*s), cmp_double);
		fprintf(stderr, "  %-18s %-16s min %.4g  median %.4g %s\n", backend, metric, s[0],
			n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, unit);
	}
	fflush(cfg.raw);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "dt-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* ---- trackers ---- */

static char why_unavail[DT_TRACKER_NKINDS][160];
static bool avail[DT_TRACKER_NKINDS];

static void probe_all(void)
{
	for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
		avail[k] = !dt_tracker_probe(k, why_unavail[k], sizeof(why_unavail[k]));
		fprintf(stderr, "tracker %-10s %s\n", dt_tracker_name(k), why_unavail[k]);
	}
}

/* Write one byte in every page set in @map (and change it). */
static void write_pages(char *mem, const uint64_t *map, uint64_t n, unsigned char v)
{
	for (uint64_t p = dt_bitmap_next(map, n, 0); p < n; p = dt_bitmap_next(map, n, p + 1))
		mem[p * PS + (p % 64) * 8] = (char)(v + p);
}

/* The written set against the harvested one; 0, or a sentence in @why. */
static int compare_sets(const uint64_t *wrote, const uint64_t *got, uint64_t n, char *why,
			size_t len)
{
	uint64_t missing = 0, extra = 0;

	for (uint64_t w = 0; w < (n + 63) / 64; w++) {
		missing += (uint64_t)__builtin_popcountll(wrote[w] & ~got[w]);
		extra += (uint64_t)__builtin_popcountll(got[w] & ~wrote[w]);
	}
	if (!missing && !extra)
		return 0;
	snprintf(why, len, "misreported: wrote %llu pages, harvest missed %llu and added %llu",
		 (unsigned long long)dt_bitmap_count(wrote, n), (unsigned long long)missing,
		 (unsigned long long)extra);
	return -1;
}

/*
 * A populated, tracked tracker of @mb MiB: every page written once, then
 * tracking started and a first harvest taken (nothing dirty after it).
 */
static struct dt_tracker *tracked(int kind, uint64_t mb, char *why, size_t len)
{
	uint64_t n = mb << 20 >> 12, *map;
	struct dt_tracker *t;
	int err;
	char *mem;

	t = dt_tracker_create(kind, mb << 20, &err);
	if (!t) {
		snprintf(why, len, "create: %s", strerror(-err));
		return NULL;
	}
	mem = dt_tracker_mem(t);
	for (uint64_t p = 0; p < n; p++)
		mem[p * PS] = 1;
	map = malloc(dt_bitmap_bytes(n));
	err = map ? dt_tracker_start(t) : -ENOMEM;
	if (!err)
		err = dt_tracker_harvest(t, map, NULL);
	free(map);
	if (err) {
		snprintf(why, len, "start: %s", strerror(-err));
		dt_tracker_destroy(t);
		return NULL;
	}
	return t;
}

/* -- fault -- */

struct fault_job {
	char *mem;
	uint64_t first, n;
	pthread_barrier_t *bar;
	double secs;
};

static void *fault_thread(void *p)
{
	struct fault_job *j = p;
	double t0;

	pthread_barrier_wait(j->bar);
	t0 = now();
	for (uint64_t i = j->first; i < j->first + j->n; i++)
		j->mem[i * PS + 8] = 7;
	j->secs = now() - t0;
	return NULL;
}

/*
 * One sample of a per-tracker figure on @t (rep @r): ns, or -1 with the
 * reason in @why when the backend misreported.
 */
typedef double (*sample_fn)(struct dt_tracker *t, int r, void *arg, char *why, size_t len);

/*
 * Each backend: a tracked region of @mb MiB, cfg.reps samples of @fn, one
 * row. The repetitions take turns across the backends (rep 1 of each, then
 * rep 2, ...), so that a slow spell of the host lands on all of them alike.
 */
static void per_tracker(const char *fig, const char *metric, const char *params, uint64_t mb,
			sample_fn fn, void *arg)
{
	struct dt_tracker *t[DT_TRACKER_NKINDS] = {};
	char why[DT_TRACKER_NKINDS][200] = {};
	double v[DT_TRACKER_NKINDS][64];
	int done[DT_TRACKER_NKINDS] = {};

	for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
		if (!avail[k])
			continue;
		t[k] = tracked(k, mb, why[k], sizeof(why[k]));
		if (!t[k])
			die(why[k], EIO);
	}
	for (int r = 0; r < cfg.reps; r++)
		for (int k = 0; k < DT_TRACKER_NKINDS; k++)
			if (t[k] && !why[k][0])
				v[k][done[k]++] = fn(t[k], r, arg, why[k], sizeof(why[k]));
	for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
		if (!avail[k]) {
			emit(fig, metric, "ns", "lower", dt_tracker_name(k), params, NULL, 0,
			     "unavailable", why_unavail[k]);
			continue;
		}
		emit(fig, metric, "ns", "lower", dt_tracker_name(k), params, v[k], done[k],
		     why[k][0] ? "failed" : NULL, why[k]);
		dt_tracker_destroy(t[k]);
	}
}

/* The pages of a region of n pages: all written, or none. */
struct page_sets {
	uint64_t n, *all, *none, *got;
	int threads;
};

static void page_sets_init(struct page_sets *ps, uint64_t n)
{
	*ps = (struct page_sets){ .n = n, .all = calloc(1, dt_bitmap_bytes(n)),
				  .none = calloc(1, dt_bitmap_bytes(n)),
				  .got = malloc(dt_bitmap_bytes(n)) };
	if (!ps->all || !ps->none || !ps->got)
		die("bitmaps", ENOMEM);
	for (uint64_t p = 0; p < n; p++)
		dt_bitmap_set(ps->all, p);
}

static void page_sets_free(struct page_sets *ps)
{
	free(ps->all);
	free(ps->none);
	free(ps->got);
}

/* Harvest @t: it must report exactly @want; 0, or -1 with the reason in @why. */
static int harvest_is(struct dt_tracker *t, const struct page_sets *ps, const uint64_t *want,
		      char *why, size_t len)
{
	int ret = dt_tracker_harvest(t, ps->got, NULL);

	if (ret)
		die("harvest", ret);
	return compare_sets(want, ps->got, ps->n, why, len);
}

/* fault: every page written once, by ps->threads threads, then harvested. */
static double fault_sample(struct dt_tracker *t, int r, void *arg, char *why, size_t len)
{
	struct page_sets *ps = arg;
	int threads = ps->threads;
	struct fault_job j[2];
	pthread_barrier_t bar;
	pthread_t th[2];
	double wall = 0;

	(void)r;
	pthread_barrier_init(&bar, NULL, (unsigned int)threads);
	for (int i = 0; i < threads; i++) {
		j[i] = (struct fault_job){ dt_tracker_mem(t), ps->n / threads * i,
					   ps->n / threads, &bar, 0 };
		pthread_create(&th[i], NULL, fault_thread, &j[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		wall = j[i].secs > wall ? j[i].secs : wall;
	}
	pthread_barrier_destroy(&bar);
	if (harvest_is(t, ps, ps->all, why, len))
		return -1;
	return wall * 1e9 * threads / (double)ps->n;	/* ns a thread spends per fault */
}

static void fig_fault(void)
{
	uint64_t mb = cfg.smoke ? 4 : 64;
	struct page_sets ps;

	page_sets_init(&ps, mb << 20 >> 12);
	for (ps.threads = 1; ps.threads <= 2; ps.threads++) {
		char params[96];

		snprintf(params, sizeof(params), "\"threads\": %d, \"region_mb\": %llu",
			 ps.threads, (unsigned long long)mb);
		progress("[fault] %d thread(s), %llu MiB\n", ps.threads, (unsigned long long)mb);
		per_tracker("fault", "write_fault_ns", params, mb, fault_sample, &ps);
	}
	page_sets_free(&ps);
}

/*
 * clean_read: every page written and harvested (re-protected), then each
 * read once, timed; the harvest after the reads must report nothing.
 */
static double clean_read_sample(struct dt_tracker *t, int r, void *arg, char *why, size_t len)
{
	struct page_sets *ps = arg;
	volatile char *mem = dt_tracker_mem(t);
	double t0, ns;

	write_pages(dt_tracker_mem(t), ps->all, ps->n, (unsigned char)r);
	if (harvest_is(t, ps, ps->all, why, len))
		return -1;
	t0 = now();
	for (uint64_t p = 0; p < ps->n; p++)
		(void)mem[p * PS + 16];
	ns = (now() - t0) * 1e9 / (double)ps->n;
	return harvest_is(t, ps, ps->none, why, len) ? -1 : ns;
}

/* What pages that are only read pay for the protection of a harvest. */
static void fig_clean_read(void)
{
	uint64_t mb = cfg.smoke ? 4 : 64;
	struct page_sets ps;
	char params[64];

	page_sets_init(&ps, mb << 20 >> 12);
	snprintf(params, sizeof(params), "\"region_mb\": %llu", (unsigned long long)mb);
	progress("[clean_read] %llu MiB\n", (unsigned long long)mb);
	per_tracker("clean_read", "clean_read_ns", params, mb, clean_read_sample, &ps);
	page_sets_free(&ps);
}

/* -- harvest -- */

enum pattern { UNIFORM, SEQUENTIAL, HOTSET, ALL };
static const char *const pattern_names[] = { "uniform", "sequential", "hotset", "all" };

/* @k distinct pages of [0, n) in @map, spread as @pat says. */
static void make_pattern(uint64_t *map, uint64_t n, uint64_t k, enum pattern pat, uint64_t *x)
{
	uint64_t base = 0, span = n, got = 0;

	memset(map, 0, dt_bitmap_bytes(n));
	if (pat == ALL || k >= n) {
		for (uint64_t p = 0; p < n; p++)
			dt_bitmap_set(map, p);
		return;
	}
	if (pat == SEQUENTIAL) {
		base = rnd(x) % (n - k + 1);
		for (uint64_t p = base; p < base + k; p++)
			dt_bitmap_set(map, p);
		return;
	}
	if (pat == HOTSET) {	/* k pages among a window of 4k: a hot working set */
		span = 4 * k < n ? 4 * k : n;
		base = rnd(x) % (n - span + 1);
	}
	while (got < k) {
		uint64_t p = base + rnd(x) % span;

		if (!dt_bitmap_test(map, p)) {
			dt_bitmap_set(map, p);
			got++;
		}
	}
}

/* Median-free core: @reps timed harvests of pattern @pat with @k pages. */
static int time_harvest(struct dt_tracker *t, uint64_t k, enum pattern pat, uint64_t *x,
			double *v, char *why, size_t len)
{
	uint64_t n = dt_tracker_npages(t);
	uint64_t *wrote = malloc(dt_bitmap_bytes(n)), *got = malloc(dt_bitmap_bytes(n));
	int r, ret, bad = 0;

	for (r = 0; r < cfg.reps && !bad; r++) {
		double t0;

		make_pattern(wrote, n, k, pat, x);
		write_pages(dt_tracker_mem(t), wrote, n, (unsigned char)r);
		t0 = now();
		ret = dt_tracker_harvest(t, got, NULL);
		if (ret)
			die("harvest", ret);
		v[r] = (now() - t0) * 1e3;
		bad = compare_sets(wrote, got, n, why, len);
	}
	free(wrote);
	free(got);
	return bad ? -1 : r;
}

/* Region sizes of the harvest figures, in MiB. */
static const uint64_t harvest_mb[] = { 256, 1024, 4096 }, smoke_harvest_mb[] = { 4, 16 };

static void fig_harvest(void)
{
	static const double full_fr[] = { 0.001, 0.01, 0.1, 1.0 }, smoke_fr[] = { 0.01, 1.0 };
	const uint64_t *sizes = cfg.smoke ? smoke_harvest_mb : harvest_mb;
	const double *fracs = cfg.smoke ? smoke_fr : full_fr;
	int nsizes = cfg.smoke ? 2 : 3, nfracs = cfg.smoke ? 2 : 4;
	uint64_t x = cfg.seed * 0x9e3779b97f4a7c15ULL + 1;

	for (int si = 0; si < nsizes; si++) {
		uint64_t mb = sizes[si], n = mb << 20 >> 12;

		for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
			char why[200], params[128];
			struct dt_tracker *t = NULL;

			if (avail[k] && k == DT_TRACKER_MPROTECT && mb > cfg.mprotect_max_mb) {
				snprintf(why, sizeof(why), "skipped above --mprotect-max-mb %llu: a "
					 "SIGSEGV round trip per page is too slow for this size",
					 (unsigned long long)cfg.mprotect_max_mb);
			} else if (avail[k]) {
				progress("[harvest] %s, %llu MiB: populating\n",
					dt_tracker_name(k), (unsigned long long)mb);
				t = tracked(k, mb, why, sizeof(why));
				if (!t)
					die(why, EIO);
			}
			for (int fi = 0; fi < nfracs; fi++) {
				for (int pat = 0; pat <= ALL; pat++) {
					uint64_t pages = (uint64_t)(fracs[fi] * (double)n + 0.5);
					double v[64];
					int r;

					if ((fracs[fi] >= 1.0) != (pat == ALL))
						continue;
					snprintf(params, sizeof(params),
						 "\"region_mb\": %llu, \"fraction\": %g, \"pattern\": \"%s\"",
						 (unsigned long long)mb, fracs[fi], pattern_names[pat]);
					if (!t) {
						emit("harvest", "harvest_ms", "ms", "lower", dt_tracker_name(k),
						     params, NULL, 0, "unavailable",
						     avail[k] ? why : why_unavail[k]);
						continue;
					}
					progress("[harvest] %llu MiB, %g dirty, %s\n",
						(unsigned long long)mb, fracs[fi], pattern_names[pat]);
					r = time_harvest(t, pages ? pages : 1, pat, &x, v, why, sizeof(why));
					emit("harvest", "harvest_ms", "ms", "lower", dt_tracker_name(k), params,
					     v, r, r < 0 ? "failed" : NULL, why);
				}
			}
			dt_tracker_destroy(t);
		}
	}
}

static void fig_harvest_flat(void)
{
	const uint64_t *sizes = cfg.smoke ? smoke_harvest_mb : harvest_mb;
	uint64_t pages = cfg.smoke ? 64 : 2048;
	uint64_t x = cfg.seed * 0x9e3779b97f4a7c15ULL + 2;

	for (int si = 0; si < (cfg.smoke ? 2 : 3); si++) {
		uint64_t mb = sizes[si];
		char params[96];

		snprintf(params, sizeof(params), "\"region_mb\": %llu, \"dirty_pages\": %llu",
			 (unsigned long long)mb, (unsigned long long)pages);
		progress("[harvest_flat] %llu MiB, %llu dirty pages\n",
			(unsigned long long)mb, (unsigned long long)pages);
		for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
			struct dt_tracker *t;
			char why[200];
			double v[64];
			int r;

			if (!avail[k]) {
				emit("harvest_flat", "harvest_ms", "ms", "lower", dt_tracker_name(k),
				     params, NULL, 0, "unavailable", why_unavail[k]);
				continue;
			}
			t = tracked(k, mb, why, sizeof(why));
			if (!t)
				die(why, EIO);
			r = time_harvest(t, pages, UNIFORM, &x, v, why, sizeof(why));
			emit("harvest_flat", "harvest_ms", "ms", "lower", dt_tracker_name(k), params,
			     v, r, r < 0 ? "failed" : NULL, why);
			dt_tracker_destroy(t);
		}
	}
}

/* ---- transfer ---- */

static void tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		die("listen", errno);
	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*tx < 0 || connect(*tx, (struct sockaddr *)&a, sizeof(a)))
		die("connect", errno);
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*rx < 0)
		die("accept", errno);
	close(l);
}

/* The pages to send: all of [0, n), or those set in @map. */
#define FOR_PAGES(p, map, n) \
	for (uint64_t p = (map) ? dt_bitmap_next(map, n, 0) : 0; p < (n); \
	     p = (map) ? dt_bitmap_next(map, n, p + 1) : p + 1)

#define BATCH 64

/* Copy each page with its record into a buffer, then send(): a snapshot per page. */
static int send_copy(int fd, const char *mem, uint64_t n, const uint64_t *map, uint64_t *recs)
{
	static char buf[BATCH * (DT_WIRE_REC_SIZE + PS)];
	size_t len = 0;
	int ret = 0;

	*recs = 0;
	FOR_PAGES(p, map, n) {
		struct dirtytrack_wire_rec *r = (void *)(buf + len);
		char *page = buf + len + DT_WIRE_REC_SIZE;

		memcpy(page, mem + p * PS, PS);
		dt_wire_rec_page(r, p, page);
		len += DT_WIRE_REC_SIZE + PS;
		(*recs)++;
		if (len == sizeof(buf)) {
			ret = dt_wire_send(fd, buf, len);
			if (ret)
				return ret;
			len = 0;
		}
	}
	return len ? dt_wire_send(fd, buf, len) : 0;
}

/* CRIU's page-server way: vmsplice the record and the page into a pipe, splice to the socket. */
static int send_vmsplice(int fd, const char *mem, uint64_t n, struct dirtytrack_wire_rec *recs)
{
	struct iovec iov[2 * BATCH];
	int pipefd[2], cnt = 0, ret = 0;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	for (uint64_t p = 0; p < n && !ret; p++) {
		dt_wire_rec_page(&recs[p], p, mem + p * PS);
		iov[cnt++] = (struct iovec){ &recs[p], DT_WIRE_REC_SIZE };
		iov[cnt++] = (struct iovec){ (void *)(mem + p * PS), PS };
		if (cnt < 2 * BATCH && p + 1 < n)
			continue;
		for (int i = 0; i < cnt && !ret;) {
			ssize_t in = vmsplice(pipefd[1], &iov[i], (unsigned long)(cnt - i), 0);

			if (in < 0) {
				ret = -errno;
				break;
			}
			/* Move what went in on to the socket. */
			for (ssize_t left = in; left > 0;) {
				ssize_t out = splice(pipefd[0], NULL, fd, NULL, (size_t)left,
						     SPLICE_F_MOVE | SPLICE_F_MORE);

				if (out <= 0) {
					ret = out < 0 ? -errno : -EPIPE;
					break;
				}
				left -= out;
			}
			/* Skip the iovecs consumed, keep the rest of a partial one. */
			while (in > 0 && i < cnt) {
				if ((size_t)in >= iov[i].iov_len) {
					in -= (ssize_t)iov[i].iov_len;
					i++;
				} else {
					iov[i].iov_base = (char *)iov[i].iov_base + in;
					iov[i].iov_len -= (size_t)in;
					in = 0;
				}
			}
		}
		cnt = 0;
	}
	close(pipefd[0]);
	close(pipefd[1]);
	return ret;
}

/*
 * The userspace receiver: each record header with recv(), each payload
 * straight into the mapping with recv(), then checked. Returns after a
 * ROUND_END (0), at EOF before a record (1), or on an error; *records
 * counts PAGE and ZERO records.
 */
static int recv_into_mapping(int fd, char *mem, uint64_t n, bool hdr, uint64_t round,
			     uint64_t *records)
{
	struct dirtytrack_wire_hdr h;
	struct dirtytrack_wire_rec r;
	int ret;

	if (hdr) {
		if (recv(fd, &h, sizeof(h), MSG_WAITALL) != sizeof(h))
			return -EIO;
		ret = dt_wire_hdr_check(&h, n * PS);
		if (ret)
			return ret;
	}
	for (*records = 0;;) {
		ssize_t got = recv(fd, &r, sizeof(r), MSG_WAITALL);
		char *page;

		if (!got)
			return 1;
		if (got != sizeof(r))
			return -ENODATA;
		ret = dt_wire_rec_check(&r, n);
		if (ret)
			return ret;
		switch (le16toh(r.kind)) {
		case DIRTYTRACK_REC_PAGE:
			page = mem + le64toh(r.index) * PS;
			if (recv(fd, page, PS, MSG_WAITALL) != (ssize_t)PS)
				return -ENODATA;
			ret = dt_wire_rec_verify(&r, page);
			break;
		case DIRTYTRACK_REC_ZERO:
			ret = dt_wire_rec_verify(&r, NULL);
			if (!ret)
				memset(mem + le64toh(r.index) * PS, 0, PS);
			break;
		default:
			ret = dt_wire_rec_verify(&r, NULL);
			if (!ret && (le64toh(r.index) != round || le64toh(r.count) != *records))
				ret = -EILSEQ;
			return ret;
		}
		if (ret)
			return ret;
		(*records)++;
	}
}

enum method { M_STREAM, M_COPY, M_WRITEV, M_VMSPLICE, M_NSEND };
static const char *const method_names[] = { "module-stream", "copy-send", "writev",
					    "vmsplice-splice" };

struct xfer {
	int src_fd, dst_fd;		/* dirtytrack regions */
	char *src, *dst;		/* their mappings */
	uint64_t n;
	struct dirtytrack_wire_rec *recs;
	int tx, rx;
	enum method m;
	bool kernel_rx, discard;
	int ret;
	double secs, cpu;
};

static int send_all(struct xfer *x)
{
	struct dirtytrack_stream s = { .sockfd = x->tx, .npages = x->n,
		.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
			 DIRTYTRACK_STREAM_END_ROUND };
	uint64_t recs = x->n;
	int ret;

	if (x->m == M_STREAM)
		return dt_stream(x->src_fd, &s);
	ret = dt_wire_send_hdr(x->tx, x->n * PS);
	if (!ret && x->m == M_COPY)
		ret = send_copy(x->tx, x->src, x->n, NULL, &recs);
	else if (!ret && x->m == M_WRITEV)
		ret = dt_wire_send_pages(x->tx, x->src, 0, x->n, NULL, &recs);
	else if (!ret)
		ret = send_vmsplice(x->tx, x->src, x->n, x->recs);
	return ret ? ret : dt_wire_send_round(x->tx, 0, recs);
}

static void *sender(void *p)
{
	struct xfer *x = p;
	double c0 = thread_cpu(), t0 = now();

	x->ret = send_all(x);
	shutdown(x->tx, SHUT_WR);
	x->secs = now() - t0;
	x->cpu = thread_cpu() - c0;
	return NULL;
}

/* Discard (timing the sender), or apply with the kernel or recv() (timing the receiver). */
static void *receiver(void *p)
{
	struct xfer *x = p;
	double c0 = thread_cpu(), t0 = now();
	static char sink[1 << 20];
	uint64_t recs;

	if (x->discard) {
		ssize_t got;

		while ((got = recv(x->rx, sink, sizeof(sink), 0)) > 0)
			;
		x->ret = got < 0 ? -errno : 0;
	} else if (x->kernel_rx) {
		struct dirtytrack_receive r = { .sockfd = x->rx,
			.flags = DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND };

		do {
			x->ret = dt_receive(x->dst_fd, &r);
			r.flags = DIRTYTRACK_RECV_ROUND;
		} while (!x->ret && !r.rounds && !r.eof);
	} else {
		x->ret = recv_into_mapping(x->rx, x->dst, x->n, true, 0, &recs);
		if (x->ret > 0)
			x->ret = -ENODATA;	/* no ROUND_END */
	}
	x->secs = now() - t0;
	x->cpu = thread_cpu() - c0;
	return NULL;
}

/* One transfer; the sender's and the receiver's times and CPU. */
static int transfer(struct xfer *snd, struct xfer *rcv)
{
	pthread_t a, b;

	tcp_pair(&snd->tx, &snd->rx);
	rcv->tx = snd->tx;
	rcv->rx = snd->rx;
	pthread_create(&b, NULL, receiver, rcv);
	pthread_create(&a, NULL, sender, snd);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	close(snd->tx);
	close(snd->rx);
	return snd->ret ? snd->ret : rcv->ret;
}

static void fill_source(char *mem, uint64_t n)
{
	for (uint64_t p = 0; p < n; p++)
		for (uint64_t o = 0; o < PS; o += 512)
			mem[p * PS + o] = (char)(p * 7 + o / 512 + 1);
}

static int map_region(int dev, uint64_t bytes, int *fd, char **mem)
{
	*fd = dt_region_create(dev, bytes);
	if (*fd < 0)
		return *fd;
	*mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	return *mem == MAP_FAILED ? -errno : 0;
}

static void fig_transfer(bool do_send, bool do_receive)
{
	uint64_t mb = cfg.smoke ? 8 : 256, n = mb << 20 >> 12;
	double gib = (double)(n * PS) / (1 << 30);
	struct xfer base = { .n = n };
	char params[64];
	int dev = dt_open();

	if (dev < 0)
		die("open /dev/dirtytrack", dev);
	if (map_region(dev, n * PS, &base.src_fd, &base.src) ||
	    map_region(dev, n * PS, &base.dst_fd, &base.dst))
		die("region", errno);
	base.recs = malloc(n * sizeof(*base.recs));
	fill_source(base.src, n);
	memset(base.dst, 0, n * PS);
	snprintf(params, sizeof(params), "\"region_mb\": %llu", (unsigned long long)mb);

	for (int m = 0; do_send && m < M_NSEND; m++) {
		double gbps[64], cpu[64];
		char why[200] = "";
		int r, ret;

		progress("[send] %s, %llu MiB\n", method_names[m], (unsigned long long)mb);
		/* Once with the kernel receiving and checking every byte. */
		{
			struct xfer s = base, rc = base;

			s.m = (enum method)m;
			rc.kernel_rx = true;
			memset(base.dst, 0, n * PS);
			ret = transfer(&s, &rc);
			if (ret)
				snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
			else if (memcmp(base.src, base.dst, n * PS))
				snprintf(why, sizeof(why), "destination differs from the source");
		}
		for (r = 0; r < cfg.reps && !why[0]; r++) {
			struct xfer s = base, rc = base;

			s.m = (enum method)m;
			rc.discard = true;
			ret = transfer(&s, &rc);
			if (ret)
				snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
			gbps[r] = gib / s.secs;
			cpu[r] = s.cpu / gib;
		}
		emit("send", "throughput_gibps", "GiB/s", "higher", method_names[m], params, gbps, r,
		     why[0] ? "failed" : NULL, why);
		emit("send", "cpu_s_per_gib", "s/GiB", "lower", method_names[m], params, cpu, r,
		     why[0] ? "failed" : NULL, why);
	}
	for (int kernel = 1; do_receive && kernel >= 0; kernel--) {
		const char *name = kernel ? "module-receive" : "recv-into-mapping";
		double gbps[64], cpu[64];
		char why[200] = "";
		int r, ret;

		progress("[receive] %s, %llu MiB\n", name, (unsigned long long)mb);
		for (r = 0; r < cfg.reps && !why[0]; r++) {
			struct xfer s = base, rc = base;

			s.m = M_STREAM;
			rc.kernel_rx = kernel;
			memset(base.dst, r + 1, n * PS);	/* populated, and not yet equal */
			ret = transfer(&s, &rc);
			if (ret)
				snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
			else if (memcmp(base.src, base.dst, n * PS))
				snprintf(why, sizeof(why), "destination differs from the source");
			gbps[r] = gib / rc.secs;
			cpu[r] = rc.cpu / gib;
		}
		emit("receive", "throughput_gibps", "GiB/s", "higher", name, params, gbps, r,
		     why[0] ? "failed" : NULL, why);
		emit("receive", "cpu_s_per_gib", "s/GiB", "lower", name, params, cpu, r,
		     why[0] ? "failed" : NULL, why);
	}
	munmap(base.src, n * PS);
	munmap(base.dst, n * PS);
	close(base.src_fd);
	close(base.dst_fd);
	close(dev);
	free(base.recs);
}

/* ---- the two-VM link: --serve and --peer ---- */

/*
 * Each transfer is a connection of its own: the peer (--peer) sends a
 * command, its side of the transfer, and reads a reply; the server (--serve)
 * runs the receiver the command names on a region of its own and replies
 * with the receiver's times and a checksum of what it applied.
 */
#define LINK_MAGIC 0x424c5444u	/* "DTLB" */
enum link_rx { LINK_DISCARD, LINK_MODULE, LINK_RECV, LINK_QUIT };

struct link_cmd {
	uint32_t magic, rx;
	uint64_t npages;
};

struct link_reply {
	double secs, cpu;
	int32_t ret;
	uint32_t pad;
	uint32_t crc;		/* crc32c of the region after the receive */
	uint32_t pad2;
};

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(ip) || !colon[1])
		return -EINVAL;
	snprintf(ip, sizeof(ip), "%.*s", (int)(colon - s), s);
	*a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 && atoi(colon + 1) > 0 ? 0 : -EINVAL;
}

static uint32_t region_crc(const char *mem, uint64_t n)
{
	return dt_crc32c(0, mem, n * PS);
}

static int link_serve(const char *addr)
{
	struct sockaddr_in a;
	int l, dev, one = 1, dst_fd = -1;
	uint64_t have = 0;
	char *dst = NULL;

	if (parse_addr(addr, &a))
		die("--serve: not IP:PORT", EINVAL);
	dev = dt_open();
	if (dev < 0)
		die("open /dev/dirtytrack", dev);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
		die("--serve: listen", errno);
	fprintf(stderr, "dt-bench: serving on %s\n", addr);
	for (;;) {
		struct link_reply rep = { 0 };
		struct link_cmd c;
		struct xfer x;
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			die("accept", errno);
		if (recv(fd, &c, sizeof(c), MSG_WAITALL) != sizeof(c) || c.magic != LINK_MAGIC ||
		    c.rx > LINK_QUIT || !c.npages || c.npages > (1ULL << 24)) {
			fprintf(stderr, "dt-bench: --serve: a bad command, connection dropped\n");
			close(fd);
			continue;
		}
		if (c.rx == LINK_QUIT) {
			close(fd);
			break;
		}
		if (c.npages != have) {
			if (dst) {
				munmap(dst, have * PS);
				close(dst_fd);
			}
			if (map_region(dev, c.npages * PS, &dst_fd, &dst))
				die("region", errno);
			have = c.npages;
		}
		x = (struct xfer){ .n = c.npages, .rx = fd, .dst_fd = dst_fd, .dst = dst,
				   .discard = c.rx == LINK_DISCARD, .kernel_rx = c.rx == LINK_MODULE };
		if (!x.discard)
			memset(dst, 1, have * PS);	/* populated, and not the source */
		receiver(&x);
		rep = (struct link_reply){ .secs = x.secs, .cpu = x.cpu, .ret = x.ret,
					   .crc = x.discard ? 0 : region_crc(dst, have) };
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep))
			fprintf(stderr, "dt-bench: --serve: reply: %s\n", strerror(errno));
		close(fd);
	}
	close(l);
	close(dev);
	return 0;
}

static int link_connect(void)
{
	struct sockaddr_in a;
	int fd;

	if (parse_addr(cfg.peer, &a))
		die("--peer: not IP:PORT", EINVAL);
	/* The peer may still be starting: retry a refused connection for a minute. */
	for (int i = 0;; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket", errno);
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		if ((errno != ECONNREFUSED && errno != EHOSTUNREACH) || i == 600)
			die(cfg.peer, errno);
		close(fd);
		usleep(100000);
	}
}

/* One transfer to the peer: our sender in @snd, its receiver @rx; 0 or -errno. */
static int link_transfer(struct xfer *snd, enum link_rx rx, struct link_reply *rep)
{
	struct link_cmd c = { .magic = LINK_MAGIC, .rx = rx, .npages = snd->n };
	int fd = link_connect();

	if (send(fd, &c, sizeof(c), MSG_NOSIGNAL) != sizeof(c))
		die("--peer: command", errno);
	snd->tx = fd;
	sender(snd);
	if (recv(fd, rep, sizeof(*rep), MSG_WAITALL) != sizeof(*rep))
		rep->ret = -EPROTO;
	close(fd);
	return snd->ret ? snd->ret : rep->ret;
}

static void link_quit(void)
{
	struct link_cmd c = { .magic = LINK_MAGIC, .rx = LINK_QUIT, .npages = 1 };
	int fd = link_connect();

	if (send(fd, &c, sizeof(c), MSG_NOSIGNAL) != sizeof(c))
		fprintf(stderr, "dt-bench: --peer: quit: %s\n", strerror(errno));
	close(fd);
}

/*
 * send_link: each sender to the peer's discarding receiver (once first to
 * its module receiver, and the checksum compared); receive_link: STREAM to
 * the peer's module receiver and to its recv(), the receiver's times.
 */
static void fig_link(bool do_send, bool do_receive)
{
	uint64_t mb = cfg.smoke ? 8 : 256, n = mb << 20 >> 12;
	double gib = (double)(n * PS) / (1 << 30);
	struct xfer base = { .n = n };
	char params[128];
	uint32_t crc;
	int dev = dt_open();

	if (dev < 0)
		die("open /dev/dirtytrack", dev);
	if (map_region(dev, n * PS, &base.src_fd, &base.src))
		die("region", errno);
	base.recs = malloc(n * sizeof(*base.recs));
	fill_source(base.src, n);
	crc = region_crc(base.src, n);
	snprintf(params, sizeof(params), "\"region_mb\": %llu, \"link\": \"%s\"",
		 (unsigned long long)mb, cfg.link);

	for (int m = 0; do_send && m < M_NSEND; m++) {
		double gbps[64], cpu[64];
		char why[200] = "";
		struct link_reply rep;
		struct xfer s = base;
		int r, ret;

		progress("[send_link] %s, %llu MiB to %s (%s)\n", method_names[m],
			 (unsigned long long)mb, cfg.peer, cfg.link);
		s.m = (enum method)m;
		ret = link_transfer(&s, LINK_MODULE, &rep);
		if (ret)
			snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
		else if (rep.crc != crc)
			snprintf(why, sizeof(why), "the peer's region differs from the source");
		for (r = 0; r < cfg.reps && !why[0]; r++) {
			s = base;
			s.m = (enum method)m;
			ret = link_transfer(&s, LINK_DISCARD, &rep);
			if (ret)
				snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
			gbps[r] = gib / s.secs;
			cpu[r] = s.cpu / gib;
		}
		emit("send_link", "throughput_gibps", "GiB/s", "higher", method_names[m], params,
		     gbps, r, why[0] ? "failed" : NULL, why);
		emit("send_link", "cpu_s_per_gib", "s/GiB", "lower", method_names[m], params,
		     cpu, r, why[0] ? "failed" : NULL, why);
	}
	for (int kernel = 1; do_receive && kernel >= 0; kernel--) {
		const char *name = kernel ? "module-receive" : "recv-into-mapping";
		double gbps[64], cpu[64];
		char why[200] = "";
		int r, ret;

		progress("[receive_link] %s, %llu MiB from %s (%s)\n", name,
			 (unsigned long long)mb, cfg.peer, cfg.link);
		for (r = 0; r < cfg.reps && !why[0]; r++) {
			struct link_reply rep;
			struct xfer s = base;

			s.m = M_STREAM;
			ret = link_transfer(&s, kernel ? LINK_MODULE : LINK_RECV, &rep);
			if (ret)
				snprintf(why, sizeof(why), "transfer: %s", strerror(-ret));
			else if (rep.crc != crc)
				snprintf(why, sizeof(why), "the peer's region differs from the source");
			gbps[r] = gib / rep.secs;
			cpu[r] = rep.cpu / gib;
		}
		emit("receive_link", "throughput_gibps", "GiB/s", "higher", name, params, gbps, r,
		     why[0] ? "failed" : NULL, why);
		emit("receive_link", "cpu_s_per_gib", "s/GiB", "lower", name, params, cpu, r,
		     why[0] ? "failed" : NULL, why);
	}
	munmap(base.src, n * PS);
	close(base.src_fd);
	close(dev);
	free(base.recs);
}

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * writer_stall's writer: on a CPU of its own when there are two, as a VMM's
 * vCPU threads run apart from its migration thread and from the NIC's
 * interrupts (bench_link_guest.sh sends those to CPU 0). It writes one byte
 * in each page of [from, to) when told, timing each write. With @rfd >= 0,
 * STATS after each write tells whether it took a copy of a page in flight
 * (pages_unshared went up): those times go to lat[], the others to rest[];
 * else every time goes to lat[].
 */
struct stall_writer {
	pthread_t th;
	sem_t go, done;
	char *mem;
	double *lat, *rest;
	uint64_t from, to, k, j;
	int rfd, err;
	char val;
	bool quit;
	int cpu;		/* -1: not pinned */
};

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static void *stall_writer_thread(void *arg)
{
	struct stall_writer *w = arg;
	struct dirtytrack_stats st;
	uint64_t copies = 0;

	if (pin_self(w->cpu))
		die("writer_stall: pin the writer", errno);
	for (;;) {
		while (sem_wait(&w->go) && errno == EINTR)
			;
		if (w->quit)
			return NULL;
		if (w->rfd >= 0 && !w->err) {
			w->err = dt_stats(w->rfd, &st);
			copies = st.pages_unshared;
		}
		for (uint64_t p = w->from; p < w->to && !w->err; p++) {
			double t0 = now(), t;

			w->mem[p * PS + 8] = w->val;
			t = (now() - t0) * 1e9;
			if (w->rfd < 0) {
				w->lat[w->k++] = t;
				continue;
			}
			w->err = dt_stats(w->rfd, &st);
			if (st.pages_unshared != copies)
				w->lat[w->k++] = t;
			else
				w->rest[w->j++] = t;
			copies = st.pages_unshared;
		}
		sem_post(&w->done);
	}
}

/* Has the writer write [from, to) with @val; returns once it has. */
static int stall_write(struct stall_writer *w, uint64_t from, uint64_t to, char val)
{
	w->from = from;
	w->to = to;
	w->val = val;
	sem_post(&w->go);
	while (sem_wait(&w->done) && errno == EINTR)
		;
	return w->err;
}

/*
 * writer_stall: ns per first write to a page in flight (a STREAM to the peer
 * has just queued it, the peer has not acknowledged it yet, and the write
 * takes a copy: STATS' pages_unshared says which writes did), against the
 * same write to a page a harvest re-protected. STREAM goes 64 pages a call
 * (its budget); after each call the writer writes the pages it took, timing
 * each write, while the streaming thread waits. A sample is the median of
 * one pass over the region. The writes whose page the peer had already
 * acknowledged (a fault that maps the page STREAM unmapped) are *streamed*;
 * in_flight_pct is the share of in-flight writes among all. With two CPUs
 * or more, the stream runs on CPU 0 and the writer on the last CPU; with
 * one, both share it, and the network's softirq work lands in the writer's
 * faults.
 */
static void fig_writer_stall(void)
{
	uint64_t mb = cfg.smoke ? 8 : 64, n = mb << 20 >> 12, *map;
	double flight[64], prot[64], streamed[64], pct[64];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct stall_writer w = { .lat = malloc(n * sizeof(double)),
				  .rest = malloc(n * sizeof(double)),
				  .cpu = ncpu > 1 ? (int)ncpu - 1 : -1 };
	char params[160], why[200] = "";
	struct link_reply rep;
	int dev = dt_open(), fd, r, ret = 0;
	cpu_set_t all;

	if (dev < 0)
		die("open /dev/dirtytrack", dev);
	if (map_region(dev, n * PS, &fd, &w.mem))
		die("region", errno);
	map = malloc(dt_bitmap_bytes(n));
	if (!w.lat || !w.rest || !map)
		die("writer_stall", ENOMEM);
	fill_source(w.mem, n);
	if (dt_track_start(fd, 0))
		die("track start", errno);
	if (sched_getaffinity(0, sizeof(all), &all) || pin_self(w.cpu < 0 ? -1 : 0))
		die("writer_stall: pin the stream", errno);
	sem_init(&w.go, 0, 0);
	sem_init(&w.done, 0, 0);
	if (pthread_create(&w.th, NULL, stall_writer_thread, &w))
		die("writer_stall: thread", EAGAIN);
	snprintf(params, sizeof(params), "\"region_mb\": %llu, \"link\": \"%s\", \"writer\": \"%s\"",
		 (unsigned long long)mb, cfg.link, w.cpu < 0 ? "same-cpu" : "own-cpu");
	progress("[writer_stall] %llu MiB, streamed to %s (%s), writer on %s\n",
		 (unsigned long long)mb, cfg.peer, cfg.link,
		 w.cpu < 0 ? "the stream's CPU" : "a CPU of its own");
	for (r = 0; r < cfg.reps && !ret; r++) {
		struct link_cmd c = { .magic = LINK_MAGIC, .rx = LINK_DISCARD, .npages = n };
		struct dirtytrack_stream s = { .npages = n, .budget = 64 * (PS + DT_WIRE_REC_SIZE),
			.flags = DIRTYTRACK_STREAM_SRC_RANGE | DIRTYTRACK_STREAM_HEADER |
				 DIRTYTRACK_STREAM_END_ROUND };

		/* Without a stream: every page re-protected by a harvest. */
		ret = dt_harvest_bitmap(fd, 0, n, map, NULL, NULL);
		w.k = w.j = 0;
		w.rfd = -1;
		ret = ret ?: stall_write(&w, 0, n, (char)r);
		prot[r] = w.k ? median_of(w.lat, (int)w.k) : 0;
		/* The same writes, each just after STREAM queued its page. */
		s.sockfd = link_connect();
		if (send(s.sockfd, &c, sizeof(c), MSG_NOSIGNAL) != sizeof(c))
			die("--peer: command", errno);
		w.k = w.j = 0;
		w.rfd = fd;
		while (!ret && !s.done) {
			uint64_t from = s.next;

			ret = dt_stream(fd, &s);
			ret = ret ?: stall_write(&w, from, s.next < n ? s.next : n, (char)(r + 100));
			s.flags &= ~DIRTYTRACK_STREAM_HEADER;
		}
		shutdown(s.sockfd, SHUT_WR);
		if (recv(s.sockfd, &rep, sizeof(rep), MSG_WAITALL) != sizeof(rep))
			rep.ret = -EPROTO;
		close(s.sockfd);
		if (!ret)
			ret = rep.ret;
		if (!ret && !w.k)
			ret = -ENODATA;	/* no write found its page in flight */
		flight[r] = w.k ? median_of(w.lat, (int)w.k) : 0;
		streamed[r] = w.j ? median_of(w.rest, (int)w.j) : 0;
		pct[r] = 100.0 * (double)w.k / (double)(w.k + w.j ?: 1);
	}
	w.quit = true;
	sem_post(&w.go);
	pthread_join(w.th, NULL);
	sched_setaffinity(0, sizeof(all), &all);
	if (ret)
		snprintf(why, sizeof(why), "stream: %s", strerror(-ret));
	emit("writer_stall", "write_fault_ns", "ns", "lower", "in-flight", params, flight, r,
	     why[0] ? "failed" : NULL, why);
	emit("writer_stall", "write_fault_ns", "ns", "lower", "protected", params, prot, r,
	     why[0] ? "failed" : NULL, why);
	emit("writer_stall", "write_fault_ns", "ns", "lower", "streamed", params, streamed, r,
	     why[0] ? "failed" : NULL, why);
	emit("writer_stall", "in_flight_pct", "%", "higher", "in-flight", params, pct, r,
	     why[0] ? "failed" : NULL, why);
	sem_destroy(&w.go);
	sem_destroy(&w.done);
	dt_track_stop(fd);
	munmap(w.mem, n * PS);
	close(fd);
	close(dev);
	free(map);
	free(w.lat);
	free(w.rest);
}

/* ---- pre-copy ---- */

struct writer {
	char *mem;
	uint64_t n, rate, seed;
	atomic_bool stop, pause, paused;
	pthread_t th;
};

/* Dirty @rate random pages per second, in 1 ms steps, until stopped. */
static void *writer_thread(void *p)
{
	struct writer *w = p;
	uint64_t x = w->seed, per_ms = w->rate / 1000 ? w->rate / 1000 : 1, v = 0;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&w->stop)) {
		if (atomic_load(&w->pause)) {
			atomic_store(&w->paused, true);
			while (atomic_load(&w->pause) && !atomic_load(&w->stop))
				;
			atomic_store(&w->paused, false);
			clock_gettime(CLOCK_MONOTONIC, &next);
		}
		for (uint64_t i = 0; i < per_ms; i++) {
			uint64_t pg = rnd(&x) % w->n;

			v++;
			w->mem[pg * PS + (v % 512) * 8] = (char)v;
		}
		next.tv_nsec += 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

struct pc_rx {
	int sock, dst_fd;
	char *dst;
	uint64_t n;
	bool kernel;
	atomic_uint_fast64_t rounds;
	int ret;
};

static void *pc_receiver(void *p)
{
	struct pc_rx *c = p;
	struct dirtytrack_receive r = { .sockfd = c->sock,
		.flags = DIRTYTRACK_RECV_RESET | DIRTYTRACK_RECV_ROUND };

	for (uint64_t round = 0;; round++) {
		uint64_t recs;

		if (c->kernel) {
			do {
				c->ret = dt_receive(c->dst_fd, &r);
				r.flags = DIRTYTRACK_RECV_ROUND;
			} while (!c->ret && !r.rounds && !r.eof);
			if (r.eof)
				return NULL;
		} else {
			c->ret = recv_into_mapping(c->sock, c->dst, c->n, !round, round, &recs);
			if (c->ret > 0) {	/* the sender closed after its last round */
				c->ret = 0;
				return NULL;
			}
		}
		if (c->ret)
			return NULL;
		atomic_fetch_add(&c->rounds, 1);
	}
}

/*
 * One round from tracker @t: harvest, send, and wait until it is applied.
 * @recs: the pages the round sent (PAGE and ZERO records).
 */
static int pc_round(struct dt_tracker *t, struct pc_rx *c, int tx, uint64_t round,
		    uint64_t *map, uint64_t *recs)
{
	uint64_t n = dt_tracker_npages(t);
	int ret;

	*recs = 0;
	if (dt_tracker_fd(t) >= 0) {
		struct dirtytrack_stream s = { .sockfd = tx, .npages = n, .round = round,
			.flags = (round ? DIRTYTRACK_STREAM_SRC_HARVEST : DIRTYTRACK_STREAM_SRC_RANGE |
				  DIRTYTRACK_STREAM_HEADER) | DIRTYTRACK_STREAM_END_ROUND };

		ret = dt_stream(dt_tracker_fd(t), &s);
		*recs = s.records;
	} else {
		ret = 0;
		if (round) {
			ret = dt_tracker_harvest(t, map, NULL);
		} else {
			memset(map, 0xff, dt_bitmap_bytes(n));
			if (n % 64)
				map[n / 64] = (1ULL << (n % 64)) - 1;
			ret = dt_wire_send_hdr(tx, n * PS);
		}
		if (!ret)
			ret = send_copy(tx, dt_tracker_mem(t), n, map, recs);
		if (!ret)
			ret = dt_wire_send_round(tx, round, *recs);
	}
	if (ret)
		return ret;
	while (atomic_load(&c->rounds) <= round) {
		if (c->ret)
			return c->ret;
		usleep(100);
	}
	return c->ret;
}

static void fig_precopy(void)
{
	uint64_t mb = cfg.smoke ? 8 : 256, n = mb << 20 >> 12, rate = cfg.smoke ? 2000 : 5000;
	int cycles = cfg.smoke ? 2 : 5, interval_ms = 200;
	uint64_t *map = malloc(dt_bitmap_bytes(n));
	char params[96];
	int dev = dt_open();

	snprintf(params, sizeof(params), "\"region_mb\": %llu, \"rate_pps\": %llu",
		 (unsigned long long)mb, (unsigned long long)rate);
	progress("[precopy] %llu MiB, writer at %llu pages/s, %d cycles of %d ms\n",
		(unsigned long long)mb, (unsigned long long)rate, cycles, interval_ms);
	for (int k = 0; k < DT_TRACKER_NKINDS; k++) {
		struct writer w = { .n = n, .rate = rate, .seed = cfg.seed + 99 };
		struct pc_rx c = { .n = n, .kernel = k == DT_TRACKER_DIRTYTRACK, .dst_fd = -1 };
		bool quiesce = !dt_tracker_atomic(k);
		struct dt_tracker *t;
		char why[200] = "";
		pthread_t rth;
		double v[64], per[64];
		uint64_t recs;
		int tx, i, nper = 0, ret = 0;

		if (!avail[k]) {
			emit("precopy", "cycle_ms", "ms", "lower", dt_tracker_name(k), params, NULL, 0,
			     "unavailable", why_unavail[k]);
			emit("precopy", "round_us_per_page", "us", "lower", dt_tracker_name(k), params,
			     NULL, 0, "unavailable", why_unavail[k]);
			continue;
		}
		t = tracked(k, mb, why, sizeof(why));
		if (!t)
			die(why, EIO);
		if (c.kernel) {
			if (map_region(dev, n * PS, &c.dst_fd, &c.dst))
				die("region", errno);
		} else {
			c.dst = mmap(NULL, n * PS, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		}
		tcp_pair(&tx, &c.sock);
		pthread_create(&rth, NULL, pc_receiver, &c);
		w.mem = dt_tracker_mem(t);
		/* Round 0: everything, before the writer starts. */
		ret = pc_round(t, &c, tx, 0, map, &recs);
		pthread_create(&w.th, NULL, writer_thread, &w);
		for (i = 0; i < cycles && !ret; i++) {
			double t0;

			usleep(interval_ms * 1000);
			t0 = now();
			if (quiesce) {	/* soft-dirty: stop the writer, as CRIU freezes */
				atomic_store(&w.pause, true);
				while (!atomic_load(&w.paused))
					;
			}
			ret = pc_round(t, &c, tx, (uint64_t)i + 1, map, &recs);
			atomic_store(&w.pause, false);
			v[i] = (now() - t0) * 1e3;
			if (recs)
				per[nper++] = v[i] * 1e3 / (double)recs;
		}
		/* Stop-and-copy, then the destination must be the source. */
		atomic_store(&w.stop, true);
		pthread_join(w.th, NULL);
		if (!ret)
			ret = pc_round(t, &c, tx, (uint64_t)cycles + 1, map, &recs);
		shutdown(tx, SHUT_WR);
		pthread_join(rth, NULL);
		if (ret)
			snprintf(why, sizeof(why), "round: %s", strerror(-ret));
		else if (memcmp(dt_tracker_mem(t), c.dst, n * PS))
			snprintf(why, sizeof(why), "destination differs from the source after "
				 "stop-and-copy: a write was lost");
		emit("precopy", "cycle_ms", "ms", "lower", dt_tracker_name(k), params, v, i,
		     why[0] ? "failed" : NULL, why);
		emit("precopy", "round_us_per_page", "us", "lower", dt_tracker_name(k), params, per,
		     nper, why[0] ? "failed" : NULL, why);
		close(tx);
		close(c.sock);
		munmap(c.dst, n * PS);
		if (c.dst_fd >= 0)
			close(c.dst_fd);
		dt_tracker_destroy(t);
	}
	close(dev);
	free(map);
}

/* ---- main ---- */

static void write_meta(const char *dir, const char *accel, const char *machine, const char *git)
{
	char path[4096], date[32];
	struct utsname u;
	struct sysinfo si;
	time_t tt = time(NULL);
	FILE *f;

	snprintf(path, sizeof(path), "%s/meta.json", dir);
	f = fopen(path, "w");
	if (!f)
		die(path, errno);
	uname(&u);
	sysinfo(&si);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
	fprintf(f, "{\"kernel\": \"%s\", \"machine\": \"%s\", \"cpus\": %ld, \"mem_mb\": %llu, "
		"\"accel\": \"%s\", \"date\": \"%s\", \"smoke\": %s, \"seed\": %llu, "
		"\"reps\": %d, \"git\": \"%s\"}\n", u.release, machine, sysconf(_SC_NPROCESSORS_ONLN),
		(unsigned long long)si.totalram * si.mem_unit >> 20, accel, date,
		cfg.smoke ? "true" : "false", (unsigned long long)cfg.seed, cfg.reps, git);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' }, { "smoke", no_argument, NULL, 'S' },
		{ "reps", required_argument, NULL, 'r' }, { "seed", required_argument, NULL, 's' },
		{ "figures", required_argument, NULL, 'f' }, { "accel", required_argument, NULL, 'A' },
		{ "machine", required_argument, NULL, 'M' }, { "git", required_argument, NULL, 'G' },
		{ "mprotect-max-mb", required_argument, NULL, 'P' },
		{ "serve", required_argument, NULL, 'V' }, { "peer", required_argument, NULL, 'E' },
		{ "link", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *out = NULL, *accel = "unknown", *machine = "unknown", *git = "unknown";
	const char *serve = NULL;
	bool reps_set = false;
	char path[4096];
	int c;

	while ((c = getopt_long(argc, argv, "o:r:s:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'S': cfg.smoke = true; break;
		case 'r': cfg.reps = atoi(optarg); reps_set = true; break;
		case 's': cfg.seed = strtoull(optarg, NULL, 0); break;
		case 'f': cfg.figures = optarg; break;
		case 'A': accel = optarg; break;
		case 'M': machine = optarg; break;
		case 'G': git = optarg; break;
		case 'P': cfg.mprotect_max_mb = strtoull(optarg, NULL, 0); break;
		case 'V': serve = optarg; break;
		case 'E': cfg.peer = optarg; break;
		case 'L': cfg.link = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (serve)
		return link_serve(serve);
	if (!out || optind < argc || cfg.reps < 1 || cfg.reps > 64 || !cfg.seed) {
		fprintf(stderr, "dt-bench: %s\nTry 'dt-bench --help'.\n",
			!out ? "-o OUTDIR is required" : optind < argc ? "unexpected argument" :
			!cfg.seed ? "the seed must be nonzero" : "REPS must be 1 to 64");
		return 2;
	}
	if (cfg.smoke && !reps_set)
		cfg.reps = 2;
	for (const char *p = cfg.figures; p && *p; p += strcspn(p, ",") + !!p[strcspn(p, ",")]) {
		static const char *const known = ",fault,clean_read,harvest,harvest_flat,send,"
						  "receive,precopy,";
		static const char *const linked = ",send_link,receive_link,writer_stall,";
		char name[32];

		snprintf(name, sizeof(name), ",%.*s,", (int)strcspn(p, ","), p);
		if (!strstr(cfg.peer ? linked : known, name)) {
			fprintf(stderr, "dt-bench: %s figure '%.*s'\n",
				strstr(linked, name) ? "--peer is needed for the" :
				strstr(known, name) ? "not with --peer: the" : "unknown",
				(int)strcspn(p, ","), p);
			return 2;
		}
	}
	mkdir(out, 0755);
	snprintf(path, sizeof(path), "%s/raw.jsonl", out);
	cfg.raw = fopen(path, "w");
	if (!cfg.raw)
		die(path, errno);
	write_meta(out, accel, machine, git);
	t_start = now();
	probe_all();
	if (!avail[DT_TRACKER_DIRTYTRACK])
		die(why_unavail[DT_TRACKER_DIRTYTRACK], ENODEV);
	if (cfg.peer) {
		if (want("send_link") || want("receive_link"))
			fig_link(want("send_link"), want("receive_link"));
		if (want("writer_stall"))
			fig_writer_stall();
		link_quit();
		goto done;
	}
	if (want("fault"))
		fig_fault();
	if (want("clean_read"))
		fig_clean_read();
	if (want("harvest"))
		fig_harvest();
	if (want("harvest_flat"))
		fig_harvest_flat();
	if (want("send") || want("receive"))
		fig_transfer(want("send"), want("receive"));
	if (want("precopy"))
		fig_precopy();
done:
	fclose(cfg.raw);
	fprintf(stderr, "dt-bench: %s: %d failure(s)\n", path, cfg.failures);
	return cfg.failures ? 1 : 0;
}
