// SPDX-License-Identifier: GPL-2.0
/*
 * dt-stat: count dirtytrack write faults and harvests with eBPF, like
 * `perf stat` for one subsystem. See usage() for the manual.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "dtstat.h"
#include "dtstat.skel.h"

static volatile sig_atomic_t stop;

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    dt-stat - count dirtytrack write faults and harvest latency with eBPF\n"
"\n"
"SYNOPSIS\n"
"    dt-stat [-i SECONDS] [-r INODE] [-- COMMAND [ARG]...]\n"
"\n"
"DESCRIPTION\n"
"    Attaches eBPF programs to the dirtytrack module's tracepoints\n"
"    (dirtytrack_write_fault, dirtytrack_harvest) and counts, for all regions\n"
"    or one: pages made dirty (tracked write faults), harvests and clears,\n"
"    pages reported and write-protected again, and harvest time with a log2\n"
"    latency histogram.\n"
"\n"
"    With COMMAND, runs it, then prints the totals and exits with its exit\n"
"    status. Without, counts until interrupted (SIGINT or SIGTERM).\n"
"\n"
"OPTIONS\n"
"    -i, --interval SECONDS   also print the counts every SECONDS\n"
"    -r, --region INODE       only the region with this inode number\n"
"                             (st_ino of its fd, as fstat(2) reports)\n"
"    -h, --help               this text\n"
"\n"
"OUTPUT\n"
"    One line of key=value totals, then the histogram of harvest times.\n"
"\n"
"EXIT STATUS\n"
"    COMMAND's status; 0 when interrupted; 1 on an error (the module not\n"
"    loaded, no permission to load BPF programs, a bad option).\n"
"\n"
"REQUIREMENTS\n"
"    root (CAP_BPF and CAP_PERFMON), dirtytrack.ko loaded, a kernel with BTF.\n");
}

static int read_counters(struct dtstat_bpf *skel, struct dtstat_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus(), i, s;
	struct dtstat_counters *per;
	__u32 zero = 0;

	if (ncpu <= 0)
		return -1;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -1;
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &zero, per)) {
		free(per);
		return -1;
	}
	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < ncpu; i++) {
		sum->write_faults += per[i].write_faults;
		sum->harvests += per[i].harvests;
		sum->clears += per[i].clears;
		sum->pages_reported += per[i].pages_reported;
		sum->pages_protected += per[i].pages_protected;
		sum->harvest_ns += per[i].harvest_ns;
		if (per[i].harvest_max_ns > sum->harvest_max_ns)
			sum->harvest_max_ns = per[i].harvest_max_ns;
		for (s = 0; s < DTSTAT_SLOTS; s++)
			sum->hist[s] += per[i].hist[s];
	}
	free(per);
	return 0;
}

static void print_line(const struct dtstat_counters *c)
{
	__u64 n = c->harvests + c->clears;

	printf("write_faults=%llu harvests=%llu clears=%llu pages_reported=%llu "
	       "pages_protected=%llu harvest_ns_total=%llu harvest_ns_avg=%llu harvest_ns_max=%llu\n",
	       (unsigned long long)c->write_faults, (unsigned long long)c->harvests,
	       (unsigned long long)c->clears, (unsigned long long)c->pages_reported,
	       (unsigned long long)c->pages_protected, (unsigned long long)c->harvest_ns,
	       (unsigned long long)(n ? c->harvest_ns / n : 0),
	       (unsigned long long)c->harvest_max_ns);
}

static void print_hist(const struct dtstat_counters *c)
{
	__u64 max = 0;
	int s, lo = -1, hi = -1;

	for (s = 0; s < DTSTAT_SLOTS; s++) {
		if (!c->hist[s])
			continue;
		if (lo < 0)
			lo = s;
		hi = s;
		if (c->hist[s] > max)
			max = c->hist[s];
	}
	if (lo < 0)
		return;
	printf("harvest time (ns)          count\n");
	for (s = lo; s <= hi; s++) {
		int bar = (int)(c->hist[s] * 40 / max);

		printf("  [%12llu, %12llu) %8llu |%.*s\n", 1ULL << s, 1ULL << (s + 1),
		       (unsigned long long)c->hist[s], bar,
		       "****************************************");
	}
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/*
 * Open, load and attach the programs on the module's tracepoints: tp_btf, or
 * with @raw their raw_tp twins, for a module without BTF. libbpf stays quiet
 * on the first try: a failed tp_btf is expected there.
 */
static int load(struct dtstat_bpf **skelp, unsigned long ino, bool raw)
{
	libbpf_print_fn_t old = raw ? NULL : libbpf_set_print(quiet_print);
	struct dtstat_bpf *skel = dtstat_bpf__open();
	int err;

	if (!skel) {
		err = -errno;
		goto out;
	}
	skel->rodata->target_ino = ino;
	bpf_program__set_autoload(skel->progs.btf_write_fault, !raw);
	bpf_program__set_autoload(skel->progs.btf_harvest, !raw);
	bpf_program__set_autoload(skel->progs.raw_write_fault, raw);
	bpf_program__set_autoload(skel->progs.raw_harvest, raw);
	err = dtstat_bpf__load(skel);
	if (!err)
		err = dtstat_bpf__attach(skel);
	if (err)
		dtstat_bpf__destroy(skel);
	else
		*skelp = skel;
out:
	if (!raw)
		libbpf_set_print(old);
	return err;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "region", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct dtstat_counters c;
	struct dtstat_bpf *skel;
	unsigned long ino = 0;
	int interval = 0, opt, status = 0, err;
	pid_t child = 0;
	char *end;

	while ((opt = getopt_long(argc, argv, "+i:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			interval = (int)strtol(optarg, &end, 10);
			if (*end || interval <= 0) {
				fprintf(stderr, "dt-stat: bad interval '%s': want whole seconds > 0\n", optarg);
				return 1;
			}
			break;
		case 'r':
			ino = strtoul(optarg, &end, 10);
			if (*end || !ino) {
				fprintf(stderr, "dt-stat: bad inode number '%s'\n", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}

	/* tp_btf first; a module without BTF (6.1's headers) takes raw_tp. */
	err = load(&skel, ino, false);
	if (err && err != -EPERM && err != -EACCES)
		err = load(&skel, ino, true);
	if (err) {
		fprintf(stderr, "dt-stat: cannot load or attach the BPF programs: %s\n"
			"dt-stat: is dirtytrack.ko loaded, and are you root?\n", strerror(-err));
		return 1;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (optind < argc) {
		child = fork();
		if (child < 0) {
			perror("dt-stat: fork");
			dtstat_bpf__destroy(skel);
			return 1;
		}
		if (!child) {
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			execvp(argv[optind], argv + optind);
			fprintf(stderr, "dt-stat: cannot run %s: %s\n", argv[optind], strerror(errno));
			_exit(127);
		}
	}

	for (;;) {
		struct timespec ts = { interval ? interval : 0, interval ? 0 : 100000000 };

		if (child) {
			pid_t w = waitpid(child, &status, WNOHANG);

			if (w == child)
				break;
		}
		if (stop)
			break;
		nanosleep(&ts, NULL);
		if (interval && !read_counters(skel, &c))
			print_line(&c);
		fflush(stdout);
	}
	if (child && stop && waitpid(child, &status, 0) < 0)
		status = 0;

	if (read_counters(skel, &c)) {
		fprintf(stderr, "dt-stat: cannot read the counters: %s\n", strerror(errno));
		dtstat_bpf__destroy(skel);
		return 1;
	}
	printf("total: ");
	print_line(&c);
	print_hist(&c);
	dtstat_bpf__destroy(skel);
	if (!child)
		return 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
