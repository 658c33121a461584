// SPDX-License-Identifier: GPL-2.0
/*
 * RECEIVE fed the wire fuzzer's corpus (tests/fuzz/corpus), seeded mutations
 * of it and random well-formed streams, over loopback TCP: a differential
 * test of the kernel's reader against the library's (dt_wire.h), as
 * stream_test.c's kernel_and_library_agree does for single defects.
 *
 * Mutations: bit flips, byte changes, truncation (anywhere or at a record
 * boundary), splicing with another input, inserted and deleted bytes,
 * duplicated, dropped and swapped records, fields set to edge values; half of
 * the mutated inputs then have every CRC recomputed ("resealed", as
 * wire_fuzz.c does) so that they reach the checks behind the CRC. The writer
 * sends in random pieces; RECEIVE runs with random RECV_ROUND and budgets.
 *
 * For every input: the kernel's verdict (errno, or success) equals the
 * library's, with the same records, rounds and bytes consumed; the region
 * equals the library's copy (dt_wire_apply_mem), so a rejected stream
 * touched no page but those of the records before the error; every applied
 * page is reported dirty; and a rejection is sticky until RECV_RESET (the
 * next input starts with a reset). A mismatch prints the seed, the case and
 * the input in hex, and saves the input in $DT_OUT.
 *
 * DT_FUZZ_CORPUS=DIR (default: tests/fuzz/corpus next to the binary's
 * out/tests/, else in the working directory), DT_FUZZ_SEED=N,
 * DT_FUZZ_ITERS=N mutations per corpus file (default 40; 6 N random
 * streams), DT_FUZZ_SECONDS (default 40 without DT_FUZZ_ITERS) bound the run.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <endian.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "kselftest_harness.h"
#include "dt_test.h"
#include "dt_wire.h"

#define NP		16		/* the corpus' region (gen_corpus.c) */
#define MAXLEN		(64 * 1024)
#define MAXCORPUS	256
#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

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

struct input {
	size_t len;
	unsigned char b[MAXLEN];
};

struct corpus_file {
	char name[64];
	size_t len;
	unsigned char *b;
};

/* ---- building and mutating streams ---- */

static void put(struct input *in, const void *p, size_t n)
{
	if (in->len + n > MAXLEN)
		n = MAXLEN - in->len;
	memcpy(in->b + in->len, p, n);
	in->len += n;
}

/* Units as a reader delimits them: the header, then records (+ a page payload). */
struct unit {
	size_t off, len;	/* the whole unit, payload included */
};

static int units(const struct input *in, struct unit *u, int max)
{
	size_t off = DT_WIRE_HDR_SIZE;
	int n = 0;

	if (in->len < DT_WIRE_HDR_SIZE)
		return 0;
	u[n++] = (struct unit){ 0, DT_WIRE_HDR_SIZE };
	while (n < max && off + DT_WIRE_REC_SIZE <= in->len) {
		struct dirtytrack_wire_rec r;
		size_t len = DT_WIRE_REC_SIZE;

		memcpy(&r, in->b + off, sizeof(r));
		if (le32toh(r.length) == DT_WIRE_PAGE_SIZE)
			len += DT_WIRE_PAGE_SIZE;
		if (off + len > in->len)
			break;
		u[n++] = (struct unit){ off, len };
		off += len;
	}
	return n;
}

/* Recompute every CRC, as the reader will delimit the units (wire_fuzz.c's reseal). */
static void reseal(struct input *in)
{
	struct unit u[MAXLEN / DT_WIRE_REC_SIZE];
	int n = units(in, u, ARRAY_LEN(u));

	for (int i = 0; i < n; i++) {
		unsigned char *p = in->b + u[i].off;
		uint32_t crc;

		if (!i) {
			crc = htole32(dt_crc32c(0, p, offsetof(struct dirtytrack_wire_hdr, crc)));
			memcpy(p + offsetof(struct dirtytrack_wire_hdr, crc), &crc, 4);
			continue;
		}
		crc = dt_crc32c(0, p, offsetof(struct dirtytrack_wire_rec, crc));
		crc = htole32(dt_crc32c(crc, p + DT_WIRE_REC_SIZE, u[i].len - DT_WIRE_REC_SIZE));
		memcpy(p + offsetof(struct dirtytrack_wire_rec, crc), &crc, 4);
	}
}

static void remove_bytes(struct input *in, size_t off, size_t n)
{
	if (off >= in->len)
		return;
	if (n > in->len - off)
		n = in->len - off;
	memmove(in->b + off, in->b + off + n, in->len - off - n);
	in->len -= n;
}

static void insert_bytes(struct input *in, size_t off, const void *p, size_t n)
{
	if (off > in->len)
		off = in->len;
	if (n > MAXLEN - in->len)
		n = MAXLEN - in->len;
	memmove(in->b + off + n, in->b + off, in->len - off);
	memcpy(in->b + off, p, n);
	in->len += n;
}

static uint64_t edge_value(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 4, NP - 1, NP, NP + 1, 31, 32, 63, 64, 4095, 4096, 4097,
		8192, NP * 4096, 2 * NP * 4096, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xffffffff, 1ULL << 32, 1ULL << 63, ~0ULL,
	};

	return chance(25) ? rnd() : v[below(ARRAY_LEN(v))];
}

/* One mutation; its name goes into desc. */
static void mutate_once(struct input *in, const struct corpus_file *corpus, int ncorpus,
			char *desc, size_t dlen)
{
	struct unit u[MAXLEN / DT_WIRE_REC_SIZE];
	int nu = units(in, u, ARRAY_LEN(u)), op = below(10);
	size_t dl = strlen(desc), at;
	unsigned char tmp[MAXLEN];

	if (!in->len && op != 3 && op != 4)
		op = 4;
#define NOTE(...) snprintf(desc + dl, dlen - dl, __VA_ARGS__)
	switch (op) {
	case 0:
		at = below(in->len);
		in->b[at] ^= 1 << below(8);
		NOTE(" flip@%zu", at);
		break;
	case 1: {
		static const unsigned char bytes[] = { 0, 1, 2, 3, 0x10, 0x7f, 0x80, 0xff };

		at = below(in->len);
		in->b[at] = chance(50) ? bytes[below(ARRAY_LEN(bytes))] : (unsigned char)rnd();
		NOTE(" set@%zu=%02x", at, in->b[at]);
		break;
	}
	case 2:
		in->len = nu > 1 && chance(50) ? u[below(nu)].off + (chance(70) ? 0 : below(40))
					       : below(in->len + 1);
		if (in->len > MAXLEN)
			in->len = MAXLEN;
		NOTE(" cut@%zu", in->len);
		break;
	case 3: {		/* splice: a prefix of this, a suffix of another */
		const struct corpus_file *o = &corpus[below(ncorpus)];
		size_t cut = below(in->len + 1), from = below(o->len + 1);

		if (chance(50) && nu > 1)
			cut = u[below(nu)].off;
		in->len = cut;
		put(in, o->b + from, o->len - from);
		NOTE(" splice@%zu+%s@%zu", cut, o->name, from);
		break;
	}
	case 4: {		/* insert or delete bytes */
		size_t n = 1 + below(chance(70) ? 8 : 64);

		at = below(in->len + 1);
		if (chance(50) && in->len) {
			remove_bytes(in, at, n);
			NOTE(" del@%zu+%zu", at, n);
		} else {
			for (size_t i = 0; i < n; i++)
				tmp[i] = chance(50) ? 0 : (unsigned char)rnd();
			insert_bytes(in, at, tmp, n);
			NOTE(" ins@%zu+%zu", at, n);
		}
		break;
	}
	case 5:			/* duplicate a record */
		if (nu > 1) {
			const struct unit *x = &u[1 + below(nu - 1)];

			memcpy(tmp, in->b + x->off, x->len);
			insert_bytes(in, x->off + x->len, tmp, x->len);
			NOTE(" dup@%zu", x->off);
		}
		break;
	case 6:			/* drop a record */
		if (nu > 1) {
			const struct unit *x = &u[1 + below(nu - 1)];

			remove_bytes(in, x->off, x->len);
			NOTE(" drop@%zu", x->off);
		}
		break;
	case 7:			/* swap two adjacent records */
		if (nu > 2) {
			int k = 1 + below(nu - 2);
			size_t a = u[k].len, b = u[k + 1].len;

			memcpy(tmp, in->b + u[k].off, a + b);
			memcpy(in->b + u[k].off, tmp + a, b);
			memcpy(in->b + u[k].off + b, tmp, a);
			NOTE(" swap@%zu", u[k].off);
		}
		break;
	default: {		/* a field of a unit's header set to an edge value */
		const struct unit *x = &u[below(nu ? nu : 1)];
		size_t hl = x->off ? DT_WIRE_REC_SIZE : DT_WIRE_HDR_SIZE;
		unsigned int w = 1u << below(4);	/* 1, 2, 4 or 8 bytes */
		uint64_t v = htole64(edge_value());

		if (!nu || x->off + hl > in->len)
			break;
		at = x->off + (below((hl - 4) / w)) * w;	/* not the CRC */
		memcpy(in->b + at, &v, w);
		NOTE(" field@%zu/%u=%llx", at, w, (unsigned long long)le64toh(v));
		break;
	}
	}
#undef NOTE
}

/* A random well-formed stream: header, then PAGE, ZERO and ROUND_END records. */
static void generate(struct input *in, char *desc, size_t dlen)
{
	static unsigned char page[DT_WIRE_PAGE_SIZE];
	struct dirtytrack_wire_hdr h;
	struct dirtytrack_wire_rec r;
	uint64_t round = 0, count = 0;
	int n = 1 + below(12);

	in->len = 0;
	dt_wire_hdr_init(&h, NP * DT_WIRE_PAGE_SIZE);
	put(in, &h, sizeof(h));
	while (n--) {
		uint64_t idx = chance(95) ? below(NP) : NP;

		switch (below(3)) {
		case 0:
			if (chance(50)) {
				memset(page, (int)rnd(), sizeof(page));
			} else {
				for (size_t i = 0; i < sizeof(page); i += 8) {
					uint64_t v = rnd();

					memcpy(page + i, &v, 8);
				}
			}
			dt_wire_rec_page(&r, idx, page);
			put(in, &r, sizeof(r));
			put(in, page, sizeof(page));
			count++;
			break;
		case 1:
			dt_wire_rec_zero(&r, idx);
			put(in, &r, sizeof(r));
			count++;
			break;
		default:
			dt_wire_rec_round(&r, round++, count);
			put(in, &r, sizeof(r));
			count = 0;
			break;
		}
	}
	snprintf(desc, dlen, "generated");
}

/* ---- one case: the kernel and the library on the same bytes ---- */

struct writer {
	int fd;
	const struct input *in;
	uint64_t split;		/* 0: all at once; else the seed of the pieces */
	pthread_t th;
};

static void *writer_thread(void *p)
{
	struct writer *w = p;
	uint64_t s = w->split;

	for (size_t off = 0, n; off < w->in->len; off += n) {
		n = w->in->len - off;
		if (s) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			n = 1 + s % (s & 1 ? 64 : 5000);
			if (n > w->in->len - off)
				n = w->in->len - off;
		}
		if (dt_wire_send(w->fd, w->in->b + off, n))
			break;		/* the receiver gave up: fine */
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

struct rf {
	int dev, dst;
	char *dmap, *shadow;
	uint64_t applied[1];		/* pages the library applied (NP <= 64) */
	bool tracking;
	struct corpus_file corpus[MAXCORPUS];
	int ncorpus;
	uint64_t seed;
	long cases, rejected, failures;
	long verdicts[128];
	const char *out;
};

static struct rf *R;

static int apply_track(void *ctx, uint64_t index, const void *page)
{
	R->applied[0] |= 1ULL << index;
	return dt_wire_apply_mem(ctx, index, page);
}

static void hexdump(const struct input *in)
{
	char prev[64], line[256];
	bool star = false;

	for (size_t off = 0; off < in->len; off += 32) {
		size_t n = in->len - off < 32 ? in->len - off : 32, k = 0;

		if (off && n == 32 && !memcmp(prev, in->b + off, 32) && off + 32 < in->len) {
			if (!star)
				fprintf(stderr, "#   *\n");
			star = true;
			continue;
		}
		star = false;
		memcpy(prev, in->b + off, n);
		for (size_t i = 0; i < n; i++)
			k += snprintf(line + k, sizeof(line) - k, "%02x", in->b[off + i]);
		fprintf(stderr, "#   %06zx: %s\n", off, line);
	}
	fprintf(stderr, "#   (%zu bytes)\n", in->len);
}

static void report(const struct input *in, const char *what, const char *desc, long c)
{
	char path[PATH_MAX];
	FILE *f;

	R->failures++;
	if (R->failures > 5)
		return;
	fprintf(stderr, "# FAIL seed %llu case %ld (%s): %s\n",
		(unsigned long long)R->seed, c, desc, what);
	hexdump(in);
	if (R->out) {
		snprintf(path, sizeof(path), "%s/recv_fuzz-%llu-%ld.bin", R->out,
			 (unsigned long long)R->seed, c);
		f = fopen(path, "wb");
		if (f) {
			fwrite(in->b, 1, in->len, f);
			fclose(f);
			fprintf(stderr, "#   saved as %s\n", path);
		}
	}
}

#define mismatch(...) do {						\
	snprintf(what, sizeof(what), __VA_ARGS__);			\
	report(in, what, desc, c);					\
	goto out;							\
} while (0)

static void run_case(struct rf *f, const struct input *in, const char *desc, long c)
{
	static struct dt_wire_reader rd;
	struct dirtytrack_receive r;
	uint64_t krecords = 0, krounds = 0, kbytes = 0, budget;
	uint32_t flags;
	struct writer w = { .in = in };
	char what[256];
	ssize_t fret;
	int tx, rx, kret = 0, lret, calls = 0;
	bool eof = false;

	/* The library's verdict and copy. */
	memcpy(f->shadow, f->dmap, NP * PS);
	f->applied[0] = 0;
	dt_wire_reader_init(&rd, NP * PS, apply_track, f->shadow);
	fret = dt_wire_reader_feed(&rd, in->b, in->len);
	lret = fret < 0 ? (int)fret : dt_wire_reader_finish(&rd);

	/* The kernel's, over TCP. */
	if (dt_tcp_pair(&tx, &rx)) {
		snprintf(what, sizeof(what), "tcp_pair: %s", strerror(errno));
		report(in, what, desc, c);
		return;
	}
	w.fd = tx;
	w.split = chance(50) ? rnd() | 1 : 0;
	pthread_create(&w.th, NULL, writer_thread, &w);
	flags = DIRTYTRACK_RECV_RESET | (chance(50) ? DIRTYTRACK_RECV_ROUND : 0);
	budget = chance(60) ? 0 : chance(50) ? 1 + below(10000) : edge_value();
	for (;;) {
		r = (struct dirtytrack_receive){ .sockfd = rx, .flags = flags, .budget = budget };
		kret = dt_xioctl(f->dst, DIRTYTRACK_IOC_RECEIVE, &r);
		calls++;
		krecords += r.records;
		krounds += r.rounds;
		kbytes += r.bytes;
		if (kret || r.eof)
			break;
		if (!r.records && !r.rounds && !r.bytes && calls > 1) {
			kret = 1;
			mismatch("RECEIVE returned 0 without progress or eof (flags %#x budget %llu)",
				 flags, (unsigned long long)budget);
		}
		flags &= ~DIRTYTRACK_RECV_RESET;
	}
	f->verdicts[-kret < 128 ? -kret : 0]++;
	f->rejected += !!kret;
	eof = !kret;
	if (kret != lret)
		mismatch("kernel %s, library %s (flags %#x budget %llu)",
			 kret ? strerrorname_np(-kret) : "0", lret ? strerrorname_np(-lret) : "0",
			 flags, (unsigned long long)budget);
	if (krecords != rd.records || krounds != rd.rounds)
		mismatch("%s: kernel applied %llu records and %llu rounds, library %llu and %llu",
			 kret ? strerrorname_np(-kret) : "accepted",
			 (unsigned long long)krecords, (unsigned long long)krounds,
			 (unsigned long long)rd.records, (unsigned long long)rd.rounds);
	if (kbytes != rd.bytes)
		mismatch("%s: kernel read %llu bytes, library consumed %llu",
			 kret ? strerrorname_np(-kret) : "accepted",
			 (unsigned long long)kbytes, (unsigned long long)rd.bytes);
	if (rd.rounds && (r.last_round != rd.last_round || r.last_count != rd.last_count))
		mismatch("last marker: kernel round %llu count %llu, library %llu %llu",
			 (unsigned long long)r.last_round, (unsigned long long)r.last_count,
			 (unsigned long long)rd.last_round, (unsigned long long)rd.last_count);
	for (int p = 0; p < NP; p++)
		if (memcmp(f->shadow + p * PS, f->dmap + p * PS, PS))
			mismatch("%s: page %d differs from the library's copy",
				 kret ? strerrorname_np(-kret) : "accepted", p);
	/* Sticky: without a reset, the same error again, nothing read. */
	if (kret) {
		r = (struct dirtytrack_receive){ .sockfd = rx };
		int again = dt_xioctl(f->dst, DIRTYTRACK_IOC_RECEIVE, &r);

		if (again != kret || r.records || r.bytes)
			mismatch("%s not sticky: the next call gave %s, read %llu bytes",
				 strerrorname_np(-kret), again ? strerrorname_np(-again) : "0",
				 (unsigned long long)r.bytes);
	}
	/* Received pages are dirty. */
	if (f->tracking) {
		uint64_t map = 0, n;

		if (dt_harvest_bitmap(f->dst, 0, NP, &map, NULL, &n))
			mismatch("harvest failed");
		if ((map & f->applied[0]) != f->applied[0])
			mismatch("applied pages %#llx, not all reported dirty (%#llx)",
				 (unsigned long long)f->applied[0], (unsigned long long)map);
	}
out:
	(void)eof;
	close(rx);		/* a writer blocked on a full window gives up */
	pthread_join(w.th, NULL);
	close(tx);
}

/* ---- the corpus ---- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct corpus_file *)a)->name, ((const struct corpus_file *)b)->name);
}

static int load_corpus(struct rf *f, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) && f->ncorpus < MAXCORPUS) {
		struct corpus_file *cf = &f->corpus[f->ncorpus];
		char path[PATH_MAX];
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fp = fopen(path, "rb");
		if (!fp)
			continue;
		cf->b = malloc(MAXLEN);
		cf->len = fread(cf->b, 1, MAXLEN, fp);
		fclose(fp);
		snprintf(cf->name, sizeof(cf->name), "%.63s", e->d_name);
		f->ncorpus++;
	}
	closedir(d);
	qsort(f->corpus, f->ncorpus, sizeof(f->corpus[0]), cmp_name);
	return f->ncorpus ? 0 : -1;
}

static const char *corpus_dir(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("DT_FUZZ_CORPUS");
	ssize_t n;

	if (env && *env)
		return env;
	/* out/tests/recv_fuzz_test -> tests/fuzz/corpus */
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 64);
	if (n > 0) {
		buf[n] = 0;
		strcat(dirname(buf), "/../../tests/fuzz/corpus");
		if (!access(buf, R_OK))
			return buf;
	}
	return "tests/fuzz/corpus";
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

FIXTURE(recv) {
	struct rf *f;
};

FIXTURE_SETUP(recv)
{
	const char *dir = corpus_dir();
	struct rf *f = calloc(1, sizeof(*f));

	ASSERT_NE(NULL, f);
	self->f = R = f;
	ASSERT_EQ(0, load_corpus(f, dir)) TH_LOG("no corpus in %s (set DT_FUZZ_CORPUS)", dir);
	f->seed = env_u64("DT_FUZZ_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	rng_state = f->seed;
	f->out = getenv("DT_OUT");
	f->dev = dt_open();
	ASSERT_LE(0, f->dev);
	f->dst = dt_region_create(f->dev, NP * PS);
	ASSERT_LE(0, f->dst);
	f->dmap = mmap(NULL, NP * PS, PROT_READ, MAP_SHARED, f->dst, 0);
	ASSERT_NE(MAP_FAILED, f->dmap);
	f->shadow = malloc(NP * PS);
	ASSERT_NE(NULL, f->shadow);
}

FIXTURE_TEARDOWN(recv)
{
}

TEST_F_TIMEOUT(recv, kernel_and_library_agree_on_mutated_corpus, 3600)
{
	struct rf *f = self->f;
	uint64_t iters = env_u64("DT_FUZZ_ITERS", 40);
	double secs = env_u64("DT_FUZZ_SECONDS", getenv("DT_FUZZ_ITERS") ? 3000 : 40);
	static struct input in;
	double t0 = now();
	char desc[512];
	long c = 0, total = f->ncorpus * (1 + iters) + 6 * iters;

	TH_LOG("seed %llu (rerun: DT_FUZZ_SEED=%llu), %d corpus files, %ld cases in up to %.0f s",
	       (unsigned long long)f->seed, (unsigned long long)f->seed, f->ncorpus, total, secs);
	for (c = 0; c < total && now() - t0 < secs; c++) {
		long k = c % (f->ncorpus + 6);

		/* Now and then: tracking on or off, some pages punched back to holes. */
		if (c % 32 == 0) {
			f->tracking = chance(50);
			if (f->tracking) {
				ASSERT_EQ(0, dt_track_start(f->dst, 0));
			} else {
				dt_track_stop(f->dst);
			}
			for (int p = 0; p < NP; p++) {
				if (chance(30)) {
					ASSERT_EQ(0, fallocate(f->dst, FALLOC_FL_PUNCH_HOLE |
							       FALLOC_FL_KEEP_SIZE, p * PS, PS));
				}
			}
		}
		if (k < f->ncorpus) {
			const struct corpus_file *cf = &f->corpus[k];

			in.len = 0;
			put(&in, cf->b, cf->len);
			snprintf(desc, sizeof(desc), "%s", cf->name);
			if (c >= f->ncorpus) {		/* the first pass: the files as they are */
				int n = 1 + below(3);

				while (n--)
					mutate_once(&in, f->corpus, f->ncorpus, desc, sizeof(desc));
				if (chance(50)) {
					reseal(&in);
					strncat(desc, " resealed", sizeof(desc) - strlen(desc) - 1);
				}
			}
		} else {
			generate(&in, desc, sizeof(desc));
			if (chance(70)) {
				int n = 1 + below(2);

				while (n--)
					mutate_once(&in, f->corpus, f->ncorpus, desc, sizeof(desc));
				if (chance(60)) {
					reseal(&in);
					strncat(desc, " resealed", sizeof(desc) - strlen(desc) - 1);
				}
			}
		}
		run_case(f, &in, desc, c);
	}
	TH_LOG("%ld cases in %.1f s: %ld accepted, %ld rejected", c, now() - t0,
	       c - f->rejected, f->rejected);
	{
		char line[512];
		int n = 0;

		for (int e = 1; e < 128; e++)
			if (f->verdicts[e])
				n += snprintf(line + n, sizeof(line) - n, " %s %ld",
					      strerrorname_np(e), f->verdicts[e]);
		TH_LOG("rejections:%s", n ? line : " none");
	}
	EXPECT_EQ(0, f->failures) TH_LOG("seed %llu: %ld mismatches (the first 5 above)",
					 (unsigned long long)f->seed, f->failures);
}

TEST_HARNESS_MAIN
