// SPDX-License-Identifier: GPL-2.0
/*
 * dt-guest: a stand-in for a VM whose whole state is one memory region, to
 * prove a live migration end to end. See usage() for the manual.
 *
 * Region layout (4 KiB pages, native byte order: a region never changes
 * architecture):
 *   page 0                  superblock, struct dtg_sb; the rest of it zero
 *   pages 1..ledger_pages   the ledger: one u32 generation per data page,
 *                           zero past the last data page
 *   the next wss pages      data pages: struct dtg_page, then a body filled
 *                           from a splitmix64 stream of (seed, index, gen)
 *   any pages left          zero
 * A data page of generation 0 (never written) is all zeros. A page's crc is
 * dt_crc32c() of the whole page with its crc field read as zero; the
 * superblock's crc covers its fields fixed at creation (magic .. seed).
 *
 * Write step s, with plain stores and a compiler barrier between the
 * numbered groups, so that a process frozen at any instruction (SIGSTOP,
 * the cgroup freezer) has made exactly a program-order prefix of them:
 *   1. sb.inflight_gen = G = ledger[p] + 1, sb.inflight_step = s;
 *      then sb.inflight_page = p, where p = splitmix64(seed ^ s) % wss
 *   2. data page p = page(seed, p, G), one memcpy: may be seen torn
 *   3. ledger[p] = G
 *   4. sb.step = s + 1
 *   5. sb.inflight_page = UINT64_MAX (none)
 * Every completed step adds one to one ledger entry, so the ledger sums to
 * sb.step, plus one between 3 and 5 while step = inflight_step. A page torn
 * in step 2 is a byte-wise mix of its two generations: memcpy stores only
 * bytes of its source, so each byte of the page is the old or the new one.
 * See verify_inflight() for the rule; recover() finishes an interrupted step
 * as the writer would have, so the sum holds across --resume.
 *
 * The CPU needs no fence: a frozen task stops at an instruction boundary,
 * and the context switch makes all its earlier stores visible to the
 * process that copies the region. Only the compiler could reorder them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dt_wire.h"
#include "libdirtytrack.h"

#define PS		4096ULL
#define GENS_PER_PAGE	(PS / sizeof(uint32_t))
#define SB_MAGIC	0x3154534555475444ULL	/* "DTGUEST1" in memory */
#define PG_MAGIC	0x3145474150475444ULL	/* "DTGPAGE1" in memory */
#define SB_VERSION	1
#define NONE		UINT64_MAX
#define NSEC		1000000000ULL
#define MAX_SHOWN	4

/* A compiler barrier: stores before it are emitted before those after it. */
#define barrier()	__asm__ __volatile__("" ::: "memory")

enum { EXIT_OK, EXIT_VERIFY, EXIT_USAGE, EXIT_SETUP };

struct dtg_sb {
	uint64_t magic;
	uint32_t version;
	uint32_t ledger_pages;
	uint64_t size;
	uint64_t wss;
	uint64_t seed;
	uint64_t step;		/* writes completed */
	uint64_t inflight_page;	/* NONE between writes */
	uint64_t inflight_gen;	/* valid while inflight_page != NONE */
	uint64_t inflight_step;	/* likewise */
	uint32_t crc;		/* dt_crc32c of magic .. seed */
	uint32_t pad;
};
#define SB_FIXED offsetof(struct dtg_sb, step)
_Static_assert(sizeof(struct dtg_sb) == 80, "superblock layout");

struct dtg_page {
	uint64_t magic;
	uint64_t index;		/* 0-based in the data area */
	uint64_t gen;
	uint32_t crc;
	uint32_t pad;
};
_Static_assert(sizeof(struct dtg_page) == 32, "page header layout");

struct guest {
	char *base;
	struct dtg_sb *sb;
	uint32_t *ledger;
	char *data;
	uint64_t size, wss, seed, step;
	uint64_t rate, duration;
	const char *status_file;
	struct dtg_progress *progress;	/* --progress-out, else NULL */
	int fd;
	bool failed;		/* a SIGUSR1 check failed */
	char buf[PS], old[PS];
};

/*
 * --progress-out: what the workload got done, for a benchmark to sample
 * while it runs (native byte order, the rest of the 4 KiB file zero).
 */
struct dtg_progress {
	_Atomic uint64_t steps;	/* pages written (the writer's steps) */
	_Atomic uint64_t reads;	/* pages read and checksummed by --readers */
};

/* One verification: pages checked and the first problems found. */
struct verdict {
	uint64_t checked, bad;
	uint64_t torn;		/* the in-flight page, if torn; else NONE */
	char sb_why[160];
	char text[640];
	size_t len;
};

static struct {
	uint64_t size, wss, rate, seed, duration, readers;
	bool memfd, resume, verify_only, uffd_wp;
	const char *region_out, *status_file, *progress_out;
	const char *start_only;	/* a start-mode option given, for --resume */
} opt = { .size = 256ULL << 20, .rate = 1000, .seed = 1 };

static volatile sig_atomic_t got_usr1, got_stop;
static const char zero_page[PS];

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    dt-guest - a stand-in for a VM whose whole state is one memory region,\n"
"    to prove a live migration end to end\n"
"\n"
"SYNOPSIS\n"
"    dt-guest [--size BYTES] [--wss PAGES] [--rate PAGES/S] [--seed N]\n"
"             [--duration SECONDS] [--memfd] [--uffd-wp] [--region-out FILE]\n"
"             [--status-file FILE] [--readers N] [--progress-out FILE]\n"
"    dt-guest --resume [--verify-only] [--rate PAGES/S] [--duration SECONDS]\n"
"             [--uffd-wp] [--status-file FILE] [--readers N] [--progress-out FILE]\n"
"\n"
"DESCRIPTION\n"
"    Creates a dirtytrack region (or, with --memfd, a memfd), maps it shared\n"
"    and writes its pages on a deterministic schedule at a steady rate. All\n"
"    of its state is in the region: page 0 is a superblock (size, working\n"
"    set, seed, steps done, the write in flight), then a ledger of one\n"
"    generation per data page, then the data pages. Each data page carries\n"
"    its index, its generation and a CRC32C, and is otherwise filled from\n"
"    (seed, index, generation), so a copy of the region can be checked\n"
"    completely: a lost, stale, torn or foreign page is found.\n"
"\n"
"    Step s writes data page splitmix64(seed ^ s) %% PAGES with the next\n"
"    generation. A process frozen at any instruction (SIGSTOP, the cgroup\n"
"    freezer) leaves a region that verifies: only the one page being\n"
"    written may be torn, the superblock says which, and each of its bytes\n"
"    must then be that of the old or of the new generation.\n"
"\n"
"    Started, it prints one line and then writes until --duration ends or a\n"
"    signal stops it:\n"
"        dt-guest: pid PID region /proc/PID/fd/N size BYTES wss PAGES\n"
"    /proc/PID/fd/N opens the region from another process (dt-migrate).\n"
"\n"
"    With --resume, the region is the open file descriptor $DT_REGION_FD\n"
"    (default 3): a region received by dt-migrate, or a regular file\n"
"    holding a copy (open it read-write, 3<>FILE, unless --verify-only).\n"
"    Its size is the file's size. dt-guest verifies all of it and prints\n"
"        dt-guest: verify OK: N pages checked, step S\n"
"    or\n"
"        dt-guest: verify FAILED: step S: K problems: page P: REASON; ...\n"
"        dt-guest: verify FAILED: step S: bad superblock: REASON\n"
"    naming the first few bad pages. REASON is one of: stale generation G\n"
"    (ledger L), generation G ahead of ledger L, bad checksum, wrong index\n"
"    I, bad magic, bad contents, all zeros (page lost), nonzero page that\n"
"    should be zero, or a ledger total that does not match the steps done.\n"
"    It then finishes the write that was in flight and carries on from the\n"
"    saved step, as if it had never stopped.\n"
"\n"
"OPTIONS\n"
"    --size BYTES          region size, a multiple of 4096 of at least 12K;\n"
"                          K, M and G suffixes (default 256M)\n"
"    --wss PAGES           data pages written (default: as many as the size\n"
"                          holds after the superblock and the ledger)\n"
"    --rate PAGES/S        pages written per second, held on average with\n"
"                          absolute deadlines in batches of 1 ms; 0 writes\n"
"                          as fast as possible (default 1000). After falling\n"
"                          more than 1 s behind (stopped, starved), the\n"
"                          schedule restarts from now instead of catching up\n"
"    --seed N              seed of the schedule and the contents (default 1)\n"
"    --duration SECONDS    stop after writing for SECONDS and exit 0;\n"
"                          0 writes until a signal (default 0)\n"
"    --memfd               use a memfd instead of a dirtytrack region (no\n"
"                          module needed; what the host tests use)\n"
"    --uffd-wp             register the mapping with a userfaultfd for write\n"
"                          protection in async mode (UFFD_FEATURE_WP_ASYNC,\n"
"                          Linux 6.7+) and keep that userfaultfd open: this\n"
"                          grants the write tracking that PAGEMAP_SCAN on\n"
"                          /proc/PID/pagemap harvests (dt-migrate --tracker\n"
"                          pagemap-scan). Nothing waits on the userfaultfd:\n"
"                          the kernel resolves each write fault itself\n"
"    --region-out FILE     once the superblock is written, write the\n"
"                          region's /proc/PID/fd/N path and a newline to\n"
"                          FILE (atomically: FILE.tmp, then rename)\n"
"    --status-file FILE    also write each verdict line, which includes the\n"
"                          step count, to FILE (atomically, like\n"
"                          --region-out)\n"
"    --readers N           also run N threads that read data pages at\n"
"                          random, as fast as they can, and checksum them\n"
"                          (a read-mostly part of the workload: it slows\n"
"                          down when the whole workload is slowed, not\n"
"                          when only its writes are) (default 0)\n"
"    --progress-out FILE   create FILE (4 KiB) and keep in it, mapped\n"
"                          shared, two native-endian u64 counters: pages\n"
"                          written (offset 0) and pages read by --readers\n"
"                          (offset 8), updated as they go; sample it to\n"
"                          see the work done over an interval\n"
"    --resume              take the region from fd $DT_REGION_FD (default 3),\n"
"                          verify it and continue its schedule; --size,\n"
"                          --wss, --seed, --memfd and --region-out are then\n"
"                          read from the superblock and refused as options\n"
"    --verify-only         with --resume: verify, print the verdict and exit;\n"
"                          the region is mapped read-only and not changed\n"
"    -h, --help            this text\n"
"\n"
"SIGNALS\n"
"    SIGUSR1               at the next step boundary, verify the region,\n"
"                          print the verdict (and write --status-file), then\n"
"                          carry on\n"
"    SIGTERM, SIGINT       stop at the next step boundary, print\n"
"                          'dt-guest: stopped at step S' and exit\n"
"    The same line is printed when --duration ends.\n"
"\n"
"ENVIRONMENT\n"
"    DIRTYTRACK_DEV        the device to open (default /dev/dirtytrack)\n"
"    DT_REGION_FD          the region's fd with --resume (default 3)\n"
"\n"
"EXIT STATUS\n"
"    0   stopped by --duration, SIGTERM or SIGINT, or --verify-only and the\n"
"        region verified\n"
"    1   verification failed: at --resume, or at a SIGUSR1 during the run\n"
"        (the run then carries on, and exits 1 when it stops)\n"
"    2   usage error\n"
"    3   setup error: no device, region creation, mmap, --region-out or\n"
"        --status-file failed, ...\n"
"\n"
"EXAMPLES\n"
"    Write 1000 pages/s into a 1 GiB dirtytrack region, forever:\n"
"        dt-guest --size 1G --region-out /run/guest.region\n"
"    A 4 MiB memfd written as fast as possible for 10 s:\n"
"        dt-guest --memfd --size 4M --rate 0 --duration 10\n"
"    A memfd that dt-migrate --tracker pagemap-scan can track:\n"
"        dt-guest --memfd --uffd-wp --size 64M\n"
"    Check it while it runs:\n"
"        kill -USR1 PID\n"
"    Check a copy taken while it was stopped, then continue from it:\n"
"        kill -STOP PID; cat /proc/PID/fd/N > copy; kill -CONT PID\n"
"        dt-guest --resume --verify-only 3<copy\n"
"        dt-guest --resume --duration 5 3<>copy\n");
}

/* ---- contents ---- */

/* splitmix64's output for state z: a 64-bit mixing function. */
static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t schedule(uint64_t seed, uint64_t s, uint64_t wss)
{
	return mix64(seed ^ s) % wss;
}

static uint64_t ledger_pages(uint64_t wss)
{
	return (wss + GENS_PER_PAGE - 1) / GENS_PER_PAGE;
}

/* The most data pages that fit in npages with the superblock and ledger. */
static uint64_t max_wss(uint64_t npages)
{
	uint64_t avail = npages - 1;

	return avail - (avail + GENS_PER_PAGE) / (GENS_PER_PAGE + 1);
}

/* dt_crc32c of the page with its crc field read as zero. */
static uint32_t page_crc(const char *pg)
{
	static const uint32_t zero;
	size_t off = offsetof(struct dtg_page, crc);
	uint32_t crc = dt_crc32c(0, pg, off);

	crc = dt_crc32c(crc, &zero, sizeof(zero));
	return dt_crc32c(crc, pg + off + sizeof(zero), PS - off - sizeof(zero));
}

static void build_page(char *buf, uint64_t seed, uint64_t p, uint64_t gen)
{
	struct dtg_page h = { .magic = PG_MAGIC, .index = p, .gen = gen };
	uint64_t x = mix64(seed ^ mix64(p ^ mix64(gen))), w;

	for (size_t off = sizeof(h); off < PS; off += sizeof(w)) {
		x += 0x9e3779b97f4a7c15ULL;
		w = mix64(x);
		memcpy(buf + off, &w, sizeof(w));
	}
	memcpy(buf, &h, sizeof(h));
	h.crc = page_crc(buf);
	memcpy(buf, &h, sizeof(h));
}

/* Are the bytes of the page at pg from offset off on zero? */
static bool is_zero_tail(const char *pg, size_t off)
{
	return !memcmp(pg + off, zero_page, PS - off);
}

static bool is_zero(const char *pg)
{
	return is_zero_tail(pg, 0);
}

static char *data_page(const struct guest *g, uint64_t p)
{
	return g->data + p * PS;
}

/* ---- verification ---- */

/* Point g at the layout the superblock describes (checked first). */
static void map_layout(struct guest *g)
{
	g->sb = (struct dtg_sb *)g->base;
	g->ledger = (uint32_t *)(g->base + PS);
	g->data = g->base + (1 + g->sb->ledger_pages) * PS;
	g->wss = g->sb->wss;
	g->seed = g->sb->seed;
}

/* One more problem; the first MAX_SHOWN are told, separated by "; ". */
static void __attribute__((format(printf, 2, 3)))
add_bad(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (++v->bad > MAX_SHOWN)
		return;
	if (v->bad > 1 && v->len < sizeof(v->text))
		v->len += (size_t)snprintf(v->text + v->len, sizeof(v->text) - v->len, "; ");
	va_start(ap, fmt);
	if (v->len < sizeof(v->text))
		v->len += (size_t)vsnprintf(v->text + v->len, sizeof(v->text) - v->len, fmt, ap);
	va_end(ap);
}

/*
 * Why data page p is not the page of generation gen: in the order a
 * migration bug would show it (lost, corrupted, misplaced, stale).
 */
static void diagnose(struct verdict *v, const struct guest *g, uint64_t p, uint64_t gen,
		     const char *pre)
{
	unsigned long long want = gen, got;
	const char *pg = data_page(g, p);
	struct dtg_page h;
	char why[96];

	memcpy(&h, pg, sizeof(h));
	got = h.gen;
	if (!gen)
		snprintf(why, sizeof(why), "nonzero page that should be zero (ledger 0)");
	else if (is_zero(pg))
		snprintf(why, sizeof(why), "all zeros, ledger says generation %llu (page lost)", want);
	else if (h.magic != PG_MAGIC)
		snprintf(why, sizeof(why), "bad magic 0x%016llx", (unsigned long long)h.magic);
	else if (h.crc != page_crc(pg))
		snprintf(why, sizeof(why), "bad checksum");
	else if (h.index != p)
		snprintf(why, sizeof(why), "wrong index %llu", (unsigned long long)h.index);
	else if (got < want)
		snprintf(why, sizeof(why), "stale generation %llu (ledger %llu)", got, want);
	else if (got > want)
		snprintf(why, sizeof(why), "generation %llu ahead of ledger %llu", got, want);
	else
		snprintf(why, sizeof(why), "bad contents (valid checksum, not from seed %llu)",
			 (unsigned long long)g->seed);
	add_bad(v, "page %llu: %s%s", (unsigned long long)p, pre, why);
}

/* The page of generation gen of data page p (zeros for 0) into buf. */
static void expected(const struct guest *g, char *buf, uint64_t p, uint64_t gen)
{
	if (gen)
		build_page(buf, g->seed, p, gen);
	else
		memset(buf, 0, PS);
}

/*
 * The first page of region pages [first, first + n) that is not all zeros,
 * or NONE. Read with pread(2), not through the mapping: a read fault on a
 * hole of a memfd or a dirtytrack region allocates a page, and a check must
 * not turn the holes of the region into memory (and into pages to send).
 */
static uint64_t nonzero_page(const struct guest *g, uint64_t first, uint64_t n)
{
	static char chunk[64 * PS];

	for (uint64_t i = first; i < first + n; ) {
		uint64_t k = first + n - i < 64 ? first + n - i : 64;
		ssize_t got = pread(g->fd, chunk, k * PS, (off_t)(i * PS));

		for (uint64_t j = 0; j < k; j++, i++) {
			const char *pg = got == (ssize_t)(k * PS) ? chunk + j * PS : g->base + i * PS;

			if (!is_zero(pg))
				return i;
		}
	}
	return NONE;
}

/* Is data page p exactly the page of generation gen? */
static bool page_is(struct guest *g, uint64_t p, uint64_t gen)
{
	if (!gen)
		return nonzero_page(g, (uint64_t)(data_page(g, p) - g->base) / PS, 1) == NONE;
	build_page(g->buf, g->seed, p, gen);
	return !memcmp(data_page(g, p), g->buf, PS);
}

/* Is every byte of data page p that of generation a or of generation b? */
static bool page_mix(struct guest *g, uint64_t p, uint64_t a, uint64_t b)
{
	const char *pg = data_page(g, p);

	expected(g, g->old, p, a);
	expected(g, g->buf, p, b);
	for (size_t i = 0; i < PS; i++) {
		if (pg[i] != g->old[i] && pg[i] != g->buf[i])
			return false;
	}
	return true;
}

/*
 * The in-flight page p (generation G being written, ledger L). Before the
 * ledger store (L == G - 1) the page may be generation L, generation G, or
 * torn between them: the writer can be frozen inside its memcpy. Torn, each
 * byte is that of L or of G, and nothing else passes: not a stale or a
 * corrupted page. Once the ledger says G, the page must be complete.
 */
static void verify_inflight(struct verdict *v, struct guest *g, uint64_t p, uint64_t L)
{
	uint64_t G = g->sb->inflight_gen;

	if (page_is(g, p, G)) {
		v->checked++;
	} else if (L + 1 == G && page_mix(g, p, L, G)) {
		v->checked++;
		if (!page_is(g, p, L))
			v->torn = p;
	} else {
		char pre[64];

		snprintf(pre, sizeof(pre), "in flight (generation %llu): ",
			 (unsigned long long)G);
		diagnose(v, g, p, L == G ? G : G - 1, pre);
	}
}

static bool sb_bad(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->sb_why, sizeof(v->sb_why), fmt, ap);
	va_end(ap);
	return false;
}

/* The fields fixed at creation, against the region's real size. */
static bool check_sb_fixed(struct verdict *v, const struct dtg_sb *sb, uint64_t size)
{
	uint64_t npages = size / PS;

	if (sb->magic != SB_MAGIC)
		return sb_bad(v, "magic 0x%016llx is not DTGUEST1", (unsigned long long)sb->magic);
	if (sb->version != SB_VERSION)
		return sb_bad(v, "version %u, want %u", sb->version, SB_VERSION);
	if (sb->crc != dt_crc32c(0, sb, SB_FIXED))
		return sb_bad(v, "bad checksum");
	if (sb->size != size)
		return sb_bad(v, "size %llu, but the region has %llu bytes",
			      (unsigned long long)sb->size, (unsigned long long)size);
	if (!sb->wss || sb->wss > max_wss(npages))
		return sb_bad(v, "wss %llu does not fit in %llu pages",
			      (unsigned long long)sb->wss, (unsigned long long)npages);
	if (sb->ledger_pages != ledger_pages(sb->wss))
		return sb_bad(v, "%u ledger pages for wss %llu", sb->ledger_pages,
			      (unsigned long long)sb->wss);
	if (!is_zero_tail((const char *)sb, sizeof(*sb)))
		return sb_bad(v, "nonzero bytes after the superblock fields");
	return true;
}

/* The write in flight, if any: what steps 1-5 of the protocol allow. */
static bool check_sb_inflight(struct verdict *v, const struct guest *g)
{
	const struct dtg_sb *sb = g->sb;
	uint64_t p = sb->inflight_page, G = sb->inflight_gen, s = sb->inflight_step, L;

	if (p == NONE)
		return true;
	if (p >= g->wss)
		return sb_bad(v, "in-flight page %llu past wss %llu", (unsigned long long)p,
			      (unsigned long long)g->wss);
	L = g->ledger[p];
	if (schedule(g->seed, s, g->wss) != p)
		return sb_bad(v, "in-flight page %llu is not the page of step %llu",
			      (unsigned long long)p, (unsigned long long)s);
	if (!G || G > UINT32_MAX || (L != G && L + 1 != G))
		return sb_bad(v, "in-flight generation %llu of page %llu, ledger %llu",
			      (unsigned long long)G, (unsigned long long)p, (unsigned long long)L);
	if (sb->step != s && !(sb->step == s + 1 && L == G))
		return sb_bad(v, "step %llu with step %llu in flight (ledger %llu of %llu)",
			      (unsigned long long)sb->step, (unsigned long long)s,
			      (unsigned long long)L, (unsigned long long)G);
	return true;
}

/* The ledger total the steps done imply (see the top of the file). */
static uint64_t want_total(const struct guest *g)
{
	const struct dtg_sb *sb = g->sb;
	uint64_t p = sb->inflight_page;

	if (p == NONE)
		return sb->step;
	return sb->inflight_step + (g->ledger[p] == sb->inflight_gen);
}

static void verify_data(struct verdict *v, struct guest *g)
{
	uint64_t inflight = g->sb->inflight_page, total = 0;

	for (uint64_t p = 0; p < g->wss; p++) {
		uint64_t L = g->ledger[p];

		total += L;
		if (p == inflight)
			verify_inflight(v, g, p, L);
		else if (page_is(g, p, L))
			v->checked++;
		else
			diagnose(v, g, p, L, "");
	}
	if (total != want_total(g))
		add_bad(v, "ledger total %llu does not match %llu steps done (stale ledger page?)",
			(unsigned long long)total, (unsigned long long)want_total(g));
}

/* The slack: ledger slots past wss and pages past the data area are zero. */
static void verify_slack(struct verdict *v, const struct guest *g)
{
	uint64_t slots = g->sb->ledger_pages * GENS_PER_PAGE;
	uint64_t first = 1 + g->sb->ledger_pages + g->wss;

	for (uint64_t i = g->wss; i < slots; i++) {
		if (g->ledger[i]) {
			add_bad(v, "ledger slot %llu, past wss %llu, is %u",
				(unsigned long long)i, (unsigned long long)g->wss, g->ledger[i]);
			break;
		}
	}
	for (uint64_t i = first; i < g->size / PS; i++) {
		i = nonzero_page(g, i, g->size / PS - i);
		if (i == NONE)
			break;
		add_bad(v, "region page %llu, past the data pages: nonzero page that "
			"should be zero", (unsigned long long)i);
	}
}

/* Verify the region at g->base of g->size bytes; false on any problem. */
static bool verify(struct guest *g, struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->torn = NONE;
	if (!check_sb_fixed(v, (struct dtg_sb *)g->base, g->size))
		return false;
	map_layout(g);
	if (!check_sb_inflight(v, g))
		return false;
	verify_data(v, g);
	verify_slack(v, g);
	return !v->bad;
}

/* ---- output ---- */

/* "dt-guest: WHAT: strerror(err) (HINT)" on stderr, exit 3; err 0: no strerror. */
static void __attribute__((noreturn, format(printf, 3, 4)))
die_hint(int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dt-guest: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	if (hint)
		fprintf(stderr, " (%s)", hint);
	fprintf(stderr, "\n");
	exit(EXIT_SETUP);
}

#define die(err, ...) die_hint(err, NULL, __VA_ARGS__)

/* Write text to path through path.tmp and rename(2); -errno on failure. */
static int write_atomic(const char *path, const char *text)
{
	size_t len = strlen(text);
	char tmp[4096];
	int fd, err = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, text, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* A verdict line: to stdout, and to --status-file if given. */
static void verdict_line(const struct guest *g, const char *line)
{
	char text[1100];
	int err;

	printf("%s\n", line);
	fflush(stdout);
	if (!g->status_file)
		return;
	snprintf(text, sizeof(text), "%s\n", line);
	err = write_atomic(g->status_file, text);
	if (err)
		die(-err, "write the status file %s", g->status_file);
}

/* Print the verdict of verify() (ok is what it returned); returns ok. */
static bool report(const struct guest *g, const struct verdict *v, bool ok)
{
	unsigned long long step = ((const struct dtg_sb *)g->base)->step;
	char line[1024];

	if (ok)
		snprintf(line, sizeof(line), "dt-guest: verify OK: %llu pages checked, step %llu",
			 (unsigned long long)v->checked, step);
	else if (v->sb_why[0])
		snprintf(line, sizeof(line), "dt-guest: verify FAILED: step %llu: bad superblock: %s",
			 step, v->sb_why);
	else
		snprintf(line, sizeof(line), "dt-guest: verify FAILED: step %llu: %llu problem%s: %s%s",
			 step, (unsigned long long)v->bad, v->bad == 1 ? "" : "s", v->text,
			 v->bad > MAX_SHOWN ? "; ..." : "");
	verdict_line(g, line);
	if (ok && v->torn != NONE)
		fprintf(stderr, "dt-guest: page %llu was torn mid-write: each byte old or new\n",
			(unsigned long long)v->torn);
	return ok;
}

/* ---- the writer ---- */

/* Steps 2-5 of the protocol (2-3 only if write): see the top of the file. */
static void finish_step(struct guest *g, uint64_t s, uint64_t p, uint32_t gen, bool write)
{
	if (write) {
		build_page(g->buf, g->seed, p, gen);
		memcpy(data_page(g, p), g->buf, PS);
		barrier();
		g->ledger[p] = gen;
		barrier();
	}
	g->sb->step = s + 1;
	barrier();
	g->sb->inflight_page = NONE;
	barrier();
	g->step = s + 1;
}

static void write_step(struct guest *g)
{
	uint64_t s = g->step, p = schedule(g->seed, s, g->wss);
	uint32_t gen = g->ledger[p];

	if (gen == UINT32_MAX)
		die(0, "page %llu reached generation %u at step %llu: use a larger --wss",
		    (unsigned long long)p, gen, (unsigned long long)s);
	gen++;
	g->sb->inflight_gen = gen;
	g->sb->inflight_step = s;
	barrier();
	g->sb->inflight_page = p;
	barrier();
	finish_step(g, s, p, gen, true);
}

/* Finish the step a frozen writer left in flight, as it would have. */
static void recover(struct guest *g)
{
	const struct dtg_sb *sb = g->sb;
	uint64_t p = sb->inflight_page;

	g->step = sb->step;
	if (p != NONE)
		finish_step(g, sb->inflight_step, p, (uint32_t)sb->inflight_gen,
			    g->ledger[p] != sb->inflight_gen);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_stop = 1;
}

/* Without SA_RESTART, so that a signal ends a pacing sleep. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* At a step boundary: answer SIGUSR1; true once SIGTERM or SIGINT came. */
static bool boundary(struct guest *g)
{
	if (got_usr1) {
		struct guest c = *g;	/* verify() reads its layout from the region */
		struct verdict v;

		got_usr1 = 0;
		if (!report(&c, &v, verify(&c, &v)))
			g->failed = true;
	}
	return got_stop;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* When the n-th page is due at rate pages/s (rate <= 1e9: no overflow). */
static uint64_t due_ns(uint64_t n, uint64_t rate)
{
	return n / rate * NSEC + n % rate * NSEC / rate;
}

/* Sleep until deadline (CLOCK_MONOTONIC ns); true if told to stop. */
static bool sleep_until(struct guest *g, uint64_t deadline)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline / NSEC),
			       .tv_nsec = (long)(deadline % NSEC) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		if (boundary(g))
			return true;
	}
	return false;
}

static int stop(const struct guest *g)
{
	printf("dt-guest: stopped at step %llu\n", (unsigned long long)g->step);
	fflush(stdout);
	return g->failed ? EXIT_VERIFY : EXIT_OK;
}

/* --readers: read data pages at random and checksum them, until the end. */
static void *reader(void *arg)
{
	const struct guest *g = arg;
	uint64_t x = mix64((uint64_t)(uintptr_t)&x), n = 0;
	uint32_t sink = 0;

	for (;;) {
		x += 0x9e3779b97f4a7c15ULL;
		sink ^= page_crc(data_page(g, mix64(x) % g->wss));
		if (++n % 16 == 0 && g->progress)
			atomic_fetch_add_explicit(&g->progress->reads, 16, memory_order_relaxed);
		/* The result must look used, or the reads could go. */
		__asm__ __volatile__("" : : "r"(sink));
	}
	return NULL;
}

/* --progress-out and --readers, before the writing starts. */
static void start_workers(struct guest *g)
{
	pthread_t t;
	int fd, err;

	if (opt.progress_out) {
		fd = open(opt.progress_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, PS))
			die(errno, "create --progress-out %s", opt.progress_out);
		g->progress = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (g->progress == MAP_FAILED)
			die(errno, "map --progress-out %s", opt.progress_out);
		close(fd);
	}
	for (uint64_t i = 0; i < opt.readers; i++) {
		err = pthread_create(&t, NULL, reader, g);
		if (err)
			die(err, "start reader thread %llu", (unsigned long long)i);
		pthread_detach(t);
	}
}

/*
 * Write at g->rate pages/s until g->duration ends or a signal: batches of
 * 1 ms worth of pages, each due at an absolute time from the start, so the
 * rate holds on average. More than 1 s behind, start the schedule over.
 */
static int run(struct guest *g)
{
	uint64_t start = now_ns(), base = start, n = 0, t, deadline;
	uint64_t end = g->duration ? start + g->duration * NSEC : UINT64_MAX;
	uint64_t batch = !g->rate ? 64 : g->rate < 1000 ? 1 : g->rate / 1000;

	start_workers(g);
	for (;;) {
		for (uint64_t i = 0; i < batch; i++) {
			if (boundary(g))
				return stop(g);
			write_step(g);
		}
		if (g->progress)
			atomic_store_explicit(&g->progress->steps, g->step, memory_order_relaxed);
		n += batch;
		t = now_ns();
		if (g->rate) {
			deadline = base + due_ns(n, g->rate);
			if (t > deadline + NSEC) {
				base = t;
				n = 0;
			} else if (t < deadline && sleep_until(g, deadline < end ? deadline : end)) {
				return stop(g);
			}
			t = now_ns();
		}
		if (t >= end)
			return stop(g);
	}
}

/* ---- setup ---- */

static void map_region(struct guest *g, int fd, bool writable)
{
	void *m = mmap(NULL, g->size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
		       MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		die_hint(errno, errno == EACCES ? "open it read-write, 3<>FILE" : NULL,
			 "mmap %s of the region (fd %d, %llu bytes)",
			 writable ? "read-write" : "read-only", fd, (unsigned long long)g->size);
	g->base = m;
}

/*
 * --uffd-wp: register the mapping for async write protection. Another
 * process (dt-migrate) then harvests and re-protects its written pages
 * with PAGEMAP_SCAN on /proc/PID/pagemap; the kernel resolves the write
 * faults itself, so nobody reads the userfaultfd. It stays open for the
 * life of the process: closing it would unregister the mapping.
 */
static void grant_uffd_wp(const struct guest *g)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)g->base, .len = g->size },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		die_hint(errno, errno == EPERM ? "run as root, or set vm.unprivileged_userfaultfd=1"
			 : NULL, "--uffd-wp: userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api))
		die_hint(errno, "async write protection needs Linux 6.7+", "--uffd-wp: UFFDIO_API "
			 "with UFFD_FEATURE_WP_ASYNC");
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		die(errno, "--uffd-wp: UFFDIO_REGISTER of the mapping (%llu bytes) for write "
		    "protection", (unsigned long long)g->size);
}

static int create_region(uint64_t size)
{
	const char *dev = getenv("DIRTYTRACK_DEV");
	int devfd, fd;

	if (opt.memfd) {
		fd = memfd_create("dt-guest", MFD_CLOEXEC);
		if (fd < 0)
			die(errno, "memfd_create");
		if (ftruncate(fd, (off_t)size))
			die(errno, "ftruncate the memfd to %llu bytes", (unsigned long long)size);
		return fd;
	}
	dev = dev && *dev ? dev : DT_DEV_PATH;
	devfd = dt_open();
	if (devfd < 0)
		die_hint(-devfd, "is dirtytrack.ko loaded? --memfd needs no module", "open %s", dev);
	fd = dt_region_create(devfd, size);
	if (fd < 0)
		die(-fd, "create a region of %llu bytes on %s", (unsigned long long)size, dev);
	close(devfd);
	return fd;
}

static void init_sb(struct guest *g)
{
	struct dtg_sb sb = {
		.magic = SB_MAGIC,
		.version = SB_VERSION,
		.ledger_pages = (uint32_t)ledger_pages(g->wss),
		.size = g->size,
		.wss = g->wss,
		.seed = g->seed,
		.inflight_page = NONE,
	};

	sb.crc = dt_crc32c(0, &sb, SB_FIXED);
	memcpy(g->base, &sb, sizeof(sb));
	barrier();
	map_layout(g);
	g->step = 0;
}

static int start(struct guest *g)
{
	char path[64];
	int fd, err;

	g->size = opt.size;
	g->wss = opt.wss ? opt.wss : max_wss(opt.size / PS);
	g->seed = opt.seed;
	catch_signals();
	fd = g->fd = create_region(g->size);
	map_region(g, fd, true);
	if (opt.uffd_wp)
		grant_uffd_wp(g);
	init_sb(g);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), fd);
	printf("dt-guest: pid %d region %s size %llu wss %llu\n", (int)getpid(), path,
	       (unsigned long long)g->size, (unsigned long long)g->wss);
	fflush(stdout);
	if (opt.region_out) {
		strcat(path, "\n");
		err = write_atomic(opt.region_out, path);
		if (err)
			die(-err, "write the region path to %s", opt.region_out);
	}
	return run(g);
}

static int region_fd(void)
{
	const char *env = getenv("DT_REGION_FD");
	unsigned long fd = 3;
	char *end;

	if (env && *env) {
		errno = 0;
		fd = strtoul(env, &end, 10);
		if (*end || errno || fd > 1 << 20 || *env < '0' || *env > '9') {
			fprintf(stderr, "dt-guest: bad DT_REGION_FD '%s': want a file descriptor number\n",
				env);
			exit(EXIT_USAGE);
		}
	}
	return (int)fd;
}

static int resume(struct guest *g)
{
	struct verdict v;
	struct stat st;
	int fd = g->fd = region_fd();
	char line[160];

	if (fstat(fd, &st))
		die_hint(errno, "--resume wants the region open as fd $DT_REGION_FD, default 3: 3<>FILE",
			 "fstat of the region fd %d", fd);
	g->size = (uint64_t)st.st_size;
	if (st.st_size < (off_t)(3 * PS) || g->size % PS) {
		snprintf(line, sizeof(line), "dt-guest: verify FAILED: bad region size %llu: "
			 "want a multiple of %llu of at least %llu", (unsigned long long)g->size,
			 PS, 3 * PS);
		verdict_line(g, line);
		return EXIT_VERIFY;
	}
	if (!opt.verify_only)
		catch_signals();
	map_region(g, fd, !opt.verify_only);
	if (!report(g, &v, verify(g, &v)))
		return EXIT_VERIFY;
	if (opt.verify_only)
		return EXIT_OK;
	if (opt.uffd_wp)
		grant_uffd_wp(g);
	recover(g);
	return run(g);
}

/* ---- options ---- */

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dt-guest: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'dt-guest --help'.\n");
	return EXIT_USAGE;
}

/* A decimal number up to max, with a K, M or G suffix if suffix. */
static bool parse_num(const char *s, bool suffix, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (suffix && *end) {
		const char *units = "KkMmGg", *u = strchr(units, *end);

		if (!u)
			return false;
		mul = 1ULL << (10 * (1 + (u - units) / 2));
		end++;
	}
	if (*end || v > max / mul)
		return false;
	*out = v * mul;
	return true;
}

enum {
	O_SIZE = 256, O_WSS, O_RATE, O_SEED, O_DURATION, O_MEMFD, O_REGION_OUT,
	O_STATUS_FILE, O_RESUME, O_VERIFY_ONLY, O_UFFD_WP, O_READERS, O_PROGRESS_OUT,
};

static const struct option long_opts[] = {
	{ "size", required_argument, NULL, O_SIZE },
	{ "wss", required_argument, NULL, O_WSS },
	{ "rate", required_argument, NULL, O_RATE },
	{ "seed", required_argument, NULL, O_SEED },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "memfd", no_argument, NULL, O_MEMFD },
	{ "region-out", required_argument, NULL, O_REGION_OUT },
	{ "status-file", required_argument, NULL, O_STATUS_FILE },
	{ "resume", no_argument, NULL, O_RESUME },
	{ "verify-only", no_argument, NULL, O_VERIFY_ONLY },
	{ "uffd-wp", no_argument, NULL, O_UFFD_WP },
	{ "readers", required_argument, NULL, O_READERS },
	{ "progress-out", required_argument, NULL, O_PROGRESS_OUT },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* One option; false if its argument is bad. */
static bool set_opt(int o, const char *arg)
{
	switch (o) {
	case O_SIZE:
		return parse_num(arg, true, 1ULL << 50, &opt.size) &&
		       !(opt.size % PS) && opt.size >= 3 * PS;
	case O_WSS:
		return parse_num(arg, false, UINT64_MAX, &opt.wss) && opt.wss;
	case O_RATE:
		return parse_num(arg, false, NSEC, &opt.rate);
	case O_SEED:
		return parse_num(arg, false, UINT64_MAX, &opt.seed);
	case O_DURATION:
		return parse_num(arg, false, NSEC, &opt.duration);
	case O_MEMFD:
		opt.memfd = true;
		return true;
	case O_REGION_OUT:
		opt.region_out = arg;
		return *arg;
	case O_STATUS_FILE:
		opt.status_file = arg;
		return *arg;
	case O_RESUME:
		opt.resume = true;
		return true;
	case O_VERIFY_ONLY:
		opt.verify_only = true;
		return true;
	case O_UFFD_WP:
		opt.uffd_wp = true;
		return true;
	case O_READERS:
		return parse_num(arg, false, 64, &opt.readers);
	case O_PROGRESS_OUT:
		opt.progress_out = arg;
		return *arg;
	}
	return false;
}

static const char *const opt_want[] = {
	[O_SIZE - O_SIZE] = "a multiple of 4096 of at least 12K, up to 1P, "
			    "with an optional K, M or G suffix",
	[O_WSS - O_SIZE] = "a number of pages, at least 1",
	[O_RATE - O_SIZE] = "pages per second, 0 to 1000000000",
	[O_SEED - O_SIZE] = "a decimal number below 2^64",
	[O_DURATION - O_SIZE] = "seconds, 0 to 1000000000",
	[O_REGION_OUT - O_SIZE] = "a file name",
	[O_STATUS_FILE - O_SIZE] = "a file name",
	[O_READERS - O_SIZE] = "a number of threads, 0 to 64",
	[O_PROGRESS_OUT - O_SIZE] = "a file name",
};

/* Parse argv into opt; 0, or EXIT_USAGE after saying why. */
static int parse_args(int argc, char **argv)
{
	int o, idx;

	while ((o = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
		if (o == 'h') {
			usage(stdout);
			exit(EXIT_OK);
		}
		if (o == '?') {	/* getopt_long said why */
			fprintf(stderr, "Try 'dt-guest --help'.\n");
			return EXIT_USAGE;
		}
		if (!set_opt(o, optarg))
			return usage_error("bad --%s '%s': want %s", long_opts[idx].name, optarg,
					   opt_want[o - O_SIZE]);
		if (o < O_RATE || o == O_SEED || o == O_MEMFD || o == O_REGION_OUT)
			opt.start_only = long_opts[idx].name;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (opt.resume && opt.start_only)
		return usage_error("--%s is read from the region's superblock with --resume",
				   opt.start_only);
	if (opt.verify_only && !opt.resume)
		return usage_error("--verify-only needs --resume");
	if (opt.verify_only && opt.uffd_wp)
		return usage_error("--uffd-wp tracks writes: not with --verify-only");
	if (opt.verify_only && (opt.readers || opt.progress_out))
		return usage_error("--%s runs with the workload: not with --verify-only",
				   opt.readers ? "readers" : "progress-out");
	if (!opt.resume && opt.wss > max_wss(opt.size / PS))
		return usage_error("--wss %llu does not fit in --size %llu: at most %llu data pages",
				   (unsigned long long)opt.wss, (unsigned long long)opt.size,
				   (unsigned long long)max_wss(opt.size / PS));
	return 0;
}

int main(int argc, char **argv)
{
	static struct guest g = { .rate = 0 };
	int err = parse_args(argc, argv);

	if (err)
		return err;
	g.rate = opt.rate;
	g.duration = opt.duration;
	g.status_file = opt.status_file;
	return opt.resume ? resume(&g) : start(&g);
}
