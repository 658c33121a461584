// SPDX-License-Identifier: GPL-2.0
/*
 * dt-blackout: how long a workload really could not run, from the kernel's
 * scheduler events (eBPF, bpf/blackout.bpf.c), and what each migration
 * round cost, from the dirtytrack module's tracepoints. See usage().
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dt_blackout.h"

#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define SLOTS		40

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    dt-blackout - measure the pauses a workload really sees, with eBPF\n"
"\n"
"SYNOPSIS\n"
"    dt-blackout (--pid PID | --cgroup PATH) [--comm PREFIX] [--gap MS] [--region FILE]\n"
"                [--count N] [--duration SECONDS] [--json FILE] [--ready-file FILE]\n"
"                [--quiet]\n"
"    dt-blackout --help\n"
"\n"
"DESCRIPTION\n"
"    Watches a workload (the threads of a process, or the tasks of a cgroup\n"
"    v2) from the scheduler's tracepoints, sched_switch and\n"
"    sched_process_exec. A task leaving the CPU is parked when it was stopped\n"
"    (SIGSTOP, ptrace) or frozen (the cgroup v2 freezer). When a parked task\n"
"    runs again and nothing of the workload ran since its last task left the\n"
"    CPU, that was a pause, and its blackout is the time between the two\n"
"    switches: no task of the workload could run. This measures any pause,\n"
"    whoever caused it: a dt-migrate migration, CRIU, the cgroup freezer.\n"
"\n"
"    A VMM pauses its guest without parking anything: QEMU's stop has its\n"
"    vCPU threads wait on a condition variable. With --gap MS, a task that\n"
"    runs again after nothing of the workload ran for at least MS ms is a\n"
"    pause too (\"idle\"), however it slept. Watch a QEMU's vCPU threads\n"
"    (--comm 'CPU ', with QEMU's -name NAME,debug-threads=on) with a gap\n"
"    longer than the guest ever idles: that is the blackout of a QEMU\n"
"    migration, with or without dirtytrack, to compare with the downtime\n"
"    QEMU reports. To span two QEMUs (the source and the incoming one on\n"
"    one host), put both in one cgroup and watch it.\n"
"\n"
"    When dirtytrack.ko is loaded, it also reports each migration round the\n"
"    module carries: rounds STREAM sent (records, bytes, the link rate since\n"
"    the previous round, write faults per second, HARVEST time) and rounds\n"
"    RECEIVE accepted. Times are CLOCK_TAI (bpf_ktime_get_tai_ns()), which\n"
"    compares across hosts whose clocks are synchronized.\n"
"\n"
"    It prints one line per event and, at the end, a summary with log2\n"
"    histograms of the blackouts, harvest times and dirty rates.\n"
"\n"
"OPTIONS\n"
"    --pid PID          the workload: the process PID and all its threads\n"
"    --cgroup PATH      the workload: the tasks of this cgroup v2 directory\n"
"                       (with --pid, only the process's tasks in it)\n"
"    --comm PREFIX      only threads whose name starts with PREFIX (QEMU's\n"
"                       vCPU threads: 'CPU ')\n"
"    --gap MS           also count as a pause any stretch of at least MS ms\n"
"                       in which no task of the workload ran (default 0: only\n"
"                       stopped or frozen ones)\n"
"    --region FILE      the module's events for this region only (a path\n"
"                       that opens it, e.g. /proc/PID/fd/N); default: all\n"
"    --count N          exit after N pauses (default 0: no limit)\n"
"    --duration SECONDS exit after SECONDS (default 0: no limit)\n"
"    --json FILE        also write the events and the summary as JSON to\n"
"                       FILE ('-': standard output, and no text)\n"
"    --ready-file FILE  once the probe is attached, write 'ready' to FILE\n"
"    --quiet            no line per event, only the summary\n"
"    -h, --help         this text\n"
"\n"
"OUTPUT\n"
"    pause N: BLACKOUT ms blackout (frozen|stopped|idle), last run T1, ran again T2\n"
"        (pid P)\n"
"    round R sent: K records, B MiB; L MB/s, F write faults/s, H harvests\n"
"        in M ms, since the previous round\n"
"    round R received: K records\n"
"    exec: pid P at T\n"
"    Times are seconds of CLOCK_TAI.\n"
"\n"
"EXIT STATUS\n"
"    0   --count pauses seen, --duration over, or SIGINT/SIGTERM\n"
"    1   the probe could not be loaded (not root, kernel lockdown, no BPF),\n"
"        the workload does not exist, or --pid exited while watched\n"
"    2   usage error\n"
"\n"
"EXAMPLES\n"
"    The blackout of the next freeze of a cgroup:\n"
"        dt-blackout --cgroup /sys/fs/cgroup/vm1 --count 1\n"
"    The vCPUs of the QEMUs in cgroup vm1 during a migration, as JSON:\n"
"        dt-blackout --cgroup /sys/fs/cgroup/vm1 --comm 'CPU ' --gap 20 --json out.json\n"
"\n"
"REQUIREMENTS\n"
"    root (CAP_BPF, CAP_PERFMON), a kernel with BPF and, preferably, BTF.\n");
}

struct hist {
	const char *name, *unit;
	uint64_t n[SLOTS];
};

static struct {
	pid_t pid;
	const char *cgroup, *comm, *region, *json, *ready;
	unsigned long count, duration, gap_ms;
	bool quiet;
} opt;

static struct {
	json_object *pauses, *sent, *received, *execs;
	unsigned long npauses;
	uint64_t last_tx;	/* the previous round's TX_ROUND time */
	struct hist blackout, harvest, faults, link;
	bool text;
} run = {
	.blackout = { "blackout", "us" }, .harvest = { "harvest time per round", "us" },
	.faults = { "write faults per second", "1/s" }, .link = { "link rate", "KB/s" },
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void hist_add(struct hist *h, uint64_t v)
{
	int s = 0;

	while (s < SLOTS - 1 && (v >> (s + 1)))
		s++;
	h->n[s]++;
}

static void hist_print(const struct hist *h)
{
	int s, lo = -1, hi = -1;
	uint64_t max = 0;

	for (s = 0; s < SLOTS; s++)
		if (h->n[s]) {
			lo = lo < 0 ? s : lo;
			hi = s;
			max = h->n[s] > max ? h->n[s] : max;
		}
	if (lo < 0)
		return;
	printf("%s (%s)%*scount\n", h->name, h->unit, (int)(26 - strlen(h->name) - strlen(h->unit)),
	       "");
	for (s = lo; s <= hi; s++)
		printf("  [%10llu, %10llu) %6llu |%.*s\n", 1ULL << s, 1ULL << (s + 1),
		       (unsigned long long)h->n[s], (int)(h->n[s] * 40 / max),
		       "****************************************");
}

static json_object *hist_json(const struct hist *h)
{
	json_object *a = json_object_new_array();

	for (int s = 0; s < SLOTS; s++) {
		json_object *o;

		if (!h->n[s])
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "from", json_object_new_uint64(1ULL << s));
		json_object_object_add(o, "to", json_object_new_uint64(1ULL << (s + 1)));
		json_object_object_add(o, "count", json_object_new_uint64(h->n[s]));
		json_object_array_add(a, o);
	}
	return a;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static void add(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void on_event(void *ctx, const struct blackout_event *e)
{
	json_object *o = json_object_new_object();

	(void)ctx;
	switch (e->type) {
	case BO_EV_PAUSE: {
		uint64_t b = e->ts - e->last_run;
		const char *how = e->how == BO_IDLE ? "idle" : e->how == BO_FROZEN ? "frozen" :
				  e->how == BO_STOPPED ? "stopped" : "frozen+stopped";

		run.npauses++;
		hist_add(&run.blackout, b / 1000);
		if (run.text)
			printf("pause %lu: %.3f ms blackout (%s), last run %.6f, ran again %.6f "
			       "(pid %u)\n", run.npauses, ms(b), how, secs(e->last_run), secs(e->ts),
			       e->pid);
		json_object_object_add(o, "blackout_ms", json_object_new_double(ms(b)));
		json_object_object_add(o, "how", json_object_new_string(how));
		add(o, "last_run_ns", e->last_run);
		add(o, "last_parked_ns", e->parked);
		add(o, "ran_again_ns", e->ts);
		add(o, "pid", e->pid);
		add(o, "parkings", e->nparked);
		json_object_array_add(run.pauses, o);
		return;
	}
	case BO_EV_TX_ROUND: {
		uint64_t span = run.last_tx ? e->ts - run.last_tx : 0;
		double link = span ? (double)e->bytes * 1e9 / (double)span : 0;
		double faults = span ? (double)e->write_faults * 1e9 / (double)span : 0;

		if (e->harvests)
			hist_add(&run.harvest, e->harvest_ns / 1000);
		if (span) {
			hist_add(&run.faults, (uint64_t)faults);
			hist_add(&run.link, (uint64_t)(link / 1000));
		}
		if (run.text)
			printf("round %llu sent: %llu records, %.1f MiB; %.1f MB/s, %.0f write "
			       "faults/s, %llu harvests in %.3f ms, since the previous round\n",
			       (unsigned long long)e->round, (unsigned long long)e->records,
			       (double)e->bytes / (1 << 20), link / 1e6, faults,
			       (unsigned long long)e->harvests, ms(e->harvest_ns));
		add(o, "round", e->round);
		add(o, "ts_ns", e->ts);
		add(o, "records", e->records);
		add(o, "bytes", e->bytes);
		add(o, "since_previous_ns", span);
		add(o, "write_faults", e->write_faults);
		add(o, "harvests", e->harvests);
		add(o, "harvest_ns", e->harvest_ns);
		json_object_array_add(run.sent, o);
		run.last_tx = e->ts;
		return;
	}
	case BO_EV_RX_ROUND:
		if (run.text)
			printf("round %llu received: %llu records\n", (unsigned long long)e->round,
			       (unsigned long long)e->records);
		add(o, "round", e->round);
		add(o, "ts_ns", e->ts);
		add(o, "records", e->records);
		json_object_array_add(run.received, o);
		return;
	case BO_EV_EXEC:
		if (run.text)
			printf("exec: pid %u at %.6f\n", e->pid, secs(e->ts));
		add(o, "pid", e->pid);
		add(o, "ts_ns", e->ts);
		json_object_array_add(run.execs, o);
		return;
	}
	json_object_put(o);
}

static void summary(const struct dt_bo *b, const char *ended)
{
	const struct blackout_state *st = dt_bo_state(b);
	json_object *j, *h;

	if (run.text || !opt.json) {
		printf("%lu pauses (%s); probe %s; %llu events lost\n", run.npauses, ended,
		       dt_bo_kind(b), (unsigned long long)st->lost);
		hist_print(&run.blackout);
		hist_print(&run.harvest);
		hist_print(&run.faults);
		hist_print(&run.link);
		fflush(stdout);
	}
	if (!opt.json)
		return;
	j = json_object_new_object();
	json_object_object_add(j, "clock", json_object_new_string("CLOCK_TAI"));
	json_object_object_add(j, "probe", json_object_new_string(dt_bo_kind(b)));
	json_object_object_add(j, "ended", json_object_new_string(ended));
	if (opt.pid)
		add(j, "pid", (uint64_t)opt.pid);
	if (opt.cgroup)
		json_object_object_add(j, "cgroup", json_object_new_string(opt.cgroup));
	if (opt.comm)
		json_object_object_add(j, "comm", json_object_new_string(opt.comm));
	json_object_object_add(j, "pauses", run.pauses);
	json_object_object_add(j, "rounds_sent", run.sent);
	json_object_object_add(j, "rounds_received", run.received);
	json_object_object_add(j, "execs", run.execs);
	add(j, "events_lost", st->lost);
	h = json_object_new_object();
	json_object_object_add(h, "blackout_us", hist_json(&run.blackout));
	json_object_object_add(h, "harvest_us", hist_json(&run.harvest));
	json_object_object_add(h, "write_faults_per_s", hist_json(&run.faults));
	json_object_object_add(h, "link_kb_per_s", hist_json(&run.link));
	json_object_object_add(j, "histograms", h);
	if (strcmp(opt.json, "-")) {
		if (json_object_to_file_ext(opt.json, j, JSON_C_TO_STRING_PRETTY))
			fprintf(stderr, "dt-blackout: writing %s: %s\n", opt.json, strerror(errno));
	} else {
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
	}
	json_object_put(j);
}

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "dt-blackout: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'dt-blackout --help'.\n");
	return EXIT_USAGE;
}

static bool number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out <= max;
}

static int parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "comm", required_argument, NULL, 'c' },
		{ "gap", required_argument, NULL, 'G' },
		{ "region", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "ready-file", required_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long v;
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			if (!number(optarg, 1 << 22, &v) || !v)
				return bad("--pid: '%s' is not a process id", optarg);
			opt.pid = (pid_t)v;
			break;
		case 'g': opt.cgroup = optarg; break;
		case 'c':
			if (!*optarg || strlen(optarg) > 15)
				return bad("--comm: '%s': want 1 to 15 characters", optarg);
			opt.comm = optarg;
			break;
		case 'G':
			if (!number(optarg, 1UL << 32, &opt.gap_ms) || !opt.gap_ms)
				return bad("--gap: '%s' is not a number of milliseconds", optarg);
			break;
		case 'r': opt.region = optarg; break;
		case 'n':
			if (!number(optarg, 1UL << 32, &opt.count))
				return bad("--count: '%s' is not a number", optarg);
			break;
		case 'd':
			if (!number(optarg, 1UL << 32, &opt.duration))
				return bad("--duration: '%s' is not a number of seconds", optarg);
			break;
		case 'j': opt.json = optarg; break;
		case 'R': opt.ready = optarg; break;
		case 'q': opt.quiet = true; break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'dt-blackout --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!opt.pid && !opt.cgroup)
		return bad("%s", "no workload: give --pid PID or --cgroup PATH");
	return 0;
}

/* Has @pid exited (no such process, or a zombie not yet reaped)? */
static bool gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool z = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT || errno == ESRCH;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		z = p && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return z;
}

static unsigned long region_ino(void)
{
	struct stat st;

	if (!opt.region)
		return 0;
	if (stat(opt.region, &st)) {
		fprintf(stderr, "dt-blackout: --region %s: %s\n", opt.region, strerror(errno));
		exit(EXIT_FAIL);
	}
	return st.st_ino;
}

int main(int argc, char **argv)
{
	char why[256];
	const char *ended = "interrupted";
	uint64_t t0, end;
	struct dt_bo *b;
	int ret = parse(argc, argv);

	if (ret)
		return ret;
	run.text = !opt.quiet && !(opt.json && !strcmp(opt.json, "-"));
	run.pauses = json_object_new_array();
	run.sent = json_object_new_array();
	run.received = json_object_new_array();
	run.execs = json_object_new_array();
	b = dt_bo_open(region_ino(), why, sizeof(why));
	if (!b) {
		fprintf(stderr, "dt-blackout: %s\n", why);
		return EXIT_FAIL;
	}
	if (dt_bo_target(b, opt.pid, opt.cgroup, opt.comm, why, sizeof(why))) {
		fprintf(stderr, "dt-blackout: %s\n", why);
		dt_bo_close(b);
		return EXIT_FAIL;
	}
	dt_bo_set_gap(b, opt.gap_ms * 1000000ULL);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (opt.ready) {
		FILE *f = fopen(opt.ready, "w");

		if (!f || fputs("ready\n", f) < 0 || fclose(f)) {
			fprintf(stderr, "dt-blackout: --ready-file %s: %s\n", opt.ready,
				strerror(errno));
			dt_bo_close(b);
			return EXIT_FAIL;
		}
	}
	if (run.text) {
		printf("dt-blackout: watching");
		if (opt.pid)
			printf(" pid %d", (int)opt.pid);
		if (opt.cgroup)
			printf(" cgroup %s", opt.cgroup);
		if (opt.comm)
			printf(", threads named %s*", opt.comm);
		if (opt.gap_ms)
			printf(", gaps of %lu ms or more", opt.gap_ms);
		printf(" (probe %s, times in CLOCK_TAI seconds)\n", dt_bo_kind(b));
	}
	t0 = dt_bo_now();
	end = opt.duration ? t0 + opt.duration * 1000000000ULL : 0;
	while (!stop) {
		ret = dt_bo_poll(b, 100, on_event, NULL);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "dt-blackout: reading events: %s\n", strerror(-ret));
			ret = EXIT_FAIL;
			ended = "error";
			break;
		}
		ret = 0;
		if (opt.count && run.npauses >= opt.count) {
			ended = "count";
			break;
		}
		if (end && dt_bo_now() >= end) {
			ended = "duration";
			break;
		}
		if (opt.pid && gone(opt.pid)) {
			dt_bo_poll(b, 0, on_event, NULL);
			fprintf(stderr, "dt-blackout: pid %d exited while watched\n", (int)opt.pid);
			ended = "exited";
			ret = EXIT_FAIL;
			break;
		}
		fflush(stdout);
	}
	summary(b, ended);
	dt_bo_close(b);
	return ret;
}
