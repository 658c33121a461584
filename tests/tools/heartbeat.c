// SPDX-License-Identifier: GPL-2.0
/*
 * Test helper: the blackout a QEMU guest sees, from its own heartbeat.
 *
 *	heartbeat OUT.json SRC DST
 *
 * The ledger guest (tests/qemu/ledger-guest.c) writes a byte to I/O port
 * 0xe9 every 4 ms of its time; QEMU's isa-debugcon device passes it to a
 * chardev, here a pipe chardev (-chardev pipe,id=hb,path=SRC: QEMU writes
 * SRC.out). This creates SRC.{in,out} and DST.{in,out}, reads both .out
 * FIFOs as bytes come, and on SIGINT or SIGTERM writes OUT.json:
 *
 *	gap_ms		the source's last beat to the destination's first: the
 *			time the guest did not run across the switch, to 4 ms
 *			and the reader's own wake-up latency (the same on both)
 *	src, dst	each side's beats, first and last (ms since start) and
 *			its longest gap between two beats
 *
 * One reader timestamps both sides (CLOCK_MONOTONIC), so the gap needs no
 * clock comparison; both QEMUs must run on this host. It runs SCHED_FIFO
 * where it may, so that a busy CPU does not delay its wake-ups (and the
 * timestamps). Exits 1 if a side never beat.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct side {
	char path[4096];
	int fd;
	uint64_t beats, first, last, max_gap;
};

static volatile sig_atomic_t done;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * QEMU's pipe chardev opens PATH.in and PATH.out read-write when both
 * exist. The reader holds .out read-write too: the FIFO then always has a
 * writer, so it never reports a hang-up when a QEMU exits.
 */
static int side_open(struct side *s, const char *path)
{
	char in[4200], out[4200];

	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(in, sizeof(in), "%s.in", path);
	snprintf(out, sizeof(out), "%s.out", path);
	if ((mkfifo(in, 0600) && errno != EEXIST) || (mkfifo(out, 0600) && errno != EEXIST)) {
		fprintf(stderr, "heartbeat: mkfifo %s: %s\n", path, strerror(errno));
		return -1;
	}
	s->fd = open(out, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0) {
		fprintf(stderr, "heartbeat: %s: %s\n", out, strerror(errno));
		return -1;
	}
	return 0;
}

static void side_read(struct side *s, uint64_t t)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(s->fd, buf, sizeof(buf))) > 0) {
		if (s->beats && t - s->last > s->max_gap)
			s->max_gap = t - s->last;
		if (!s->beats)
			s->first = t;
		s->last = t;
		s->beats += (uint64_t)n;
	}
}

static void side_json(FILE *f, const char *name, const struct side *s, uint64_t t0)
{
	fprintf(f, "\"%s\": {\"beats\": %llu, \"first_ms\": %.3f, \"last_ms\": %.3f, "
		"\"max_gap_ms\": %.3f}", name, (unsigned long long)s->beats,
		s->beats ? (double)(s->first - t0) / 1e6 : 0,
		s->beats ? (double)(s->last - t0) / 1e6 : 0, (double)s->max_gap / 1e6);
}

int main(int argc, char **argv)
{
	struct side sd[2] = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t t0 = now_ns();
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: heartbeat OUT.json SRC DST\n");
		return 2;
	}
	if (side_open(&sd[0], argv[2]) || side_open(&sd[1], argv[3]))
		return 1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){ .sched_priority = 10 }))
		fprintf(stderr, "heartbeat: SCHED_FIFO: %s (timestamps may lag)\n", strerror(errno));
	while (!done) {
		struct pollfd p[2] = { { sd[0].fd, POLLIN, 0 }, { sd[1].fd, POLLIN, 0 } };
		uint64_t t;

		if (poll(p, 2, 1000) < 0 && errno != EINTR) {
			perror("heartbeat: poll");
			return 1;
		}
		t = now_ns();
		for (int i = 0; i < 2; i++)
			if (p[i].revents & POLLIN)
				side_read(&sd[i], t);
	}
	f = fopen(argv[1], "w");
	if (!f) {
		fprintf(stderr, "heartbeat: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fprintf(f, "{\"gap_ms\": ");
	if (sd[0].beats && sd[1].beats)
		fprintf(f, "%.3f", ((double)sd[1].first - (double)sd[0].last) / 1e6);
	else
		fprintf(f, "null");
	fprintf(f, ", ");
	side_json(f, "src", &sd[0], t0);
	fprintf(f, ", ");
	side_json(f, "dst", &sd[1], t0);
	fprintf(f, "}\n");
	fclose(f);
	return sd[0].beats && sd[1].beats ? 0 : 1;
}
