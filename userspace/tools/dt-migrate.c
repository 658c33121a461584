// SPDX-License-Identifier: GPL-2.0
/*
 * dt-migrate: live migration of a running workload's memory between two
 * hosts, with iterative pre-copy over dirtytrack. One binary: `receive` on
 * the destination, `send` on the source. See usage() for the manual and
 * Documentation/dirtytrack.rst, "Migration", for the stages and the
 * protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/sockios.h>

#include "dt_blackout.h"
#include "dt_control.h"
#include "dt_proto.h"
#include "dt_qmp.h"
#include "dt_tracker.h"
#include "dt_wire.h"
#include "dt_workload.h"
#include "libdirtytrack.h"

#define PS		4096ULL
#define REC_BYTES	(PS + DT_WIRE_REC_SIZE)	/* a PAGE record on the wire */
/*
 * STREAM budget between progress checks (and pause points): 1/128 of the
 * region, 64 KiB to 4 MiB.
 */
#define CHUNK_BYTES(size)	((size) / 128 < (64ULL << 10) ? (64ULL << 10) : \
				 (size) / 128 > (4ULL << 20) ? (4ULL << 20) : (size) / 128)
#define MAX_ROUNDS_KEPT	1024
/* QEMU's vCPU threads, named with -name ...,debug-threads=on: "CPU 0/KVM" */
#define QEMU_VCPU_COMM	"CPU "

/* Exit statuses (usage() documents them). */
enum {
	EXIT_OK = 0,
	EXIT_ABORTED = 1,	/* before commitment: the source keeps the workload */
	EXIT_USAGE = 2,
	EXIT_IN_DOUBT = 3,	/* after commitment, activation unconfirmed */
};

enum stage {
	ST_PRE, ST_RESERVE, ST_PRECOPY, ST_STOPCOPY, ST_COMMIT, ST_ACTIVATE,
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
"NAME\n"
"    dt-migrate - live-migrate a running workload's memory region to another host\n"
"\n"
"SYNOPSIS\n"
"    dt-migrate receive --listen ADDR:PORT [--token-file FILE] [--receiver auto|kernel|user]\n"
"                       [--timeout S] [--io-timeout S] [--reconnect-timeout S]\n"
"                       [--json FILE] [--wait]\n"
"                       [--[no-]blackout-probe] [--qemu QMP_SOCKET] [--exec CMD [ARGS...]]\n"
"    dt-migrate send --to HOST:PORT (--region /proc/PID/fd/N | --qemu QMP_SOCKET)\n"
"                    [--token-file FILE]\n"
"                    [--pid PID] [--freeze cgroup|sigstop] [--cgroup PATH] [--meta FILE]\n"
"                    [--downtime-limit MS] [--no-settle] [--max-rounds N] [--timeout S]\n"
"                    [--on-timeout cancel|force] [--cold] [--keep-source]\n"
"                    [--tracker auto|dirtytrack|pagemap-scan|soft-dirty]\n"
"                    [--sender kernel|user]\n"
"                    [--io-timeout S] [--reconnect-timeout S] [--freeze-timeout MS]\n"
"                    [--json FILE] [--quiet]\n"
"                    [--[no-]blackout-probe] [--control SOCKET [--pause-timeout S]]\n"
"                    [--no-auto-converge] [--throttle-initial PCT]\n"
"                    [--throttle-increment PCT] [--throttle-rounds N]\n"
"                    [--throttle-with auto|module|cpu-max]\n"
"    dt-migrate ctl SOCKET pause|step|resume|cancel|status [--json]\n"
"    dt-migrate hold --size BYTES[K|M|G]\n"
"    dt-migrate --help\n"
"\n"
"DESCRIPTION\n"
"    Moves the memory of a running workload, a dirtytrack region held by a\n"
"    process (a VMM's guest RAM), to another host with iterative pre-copy, then\n"
"    hands the workload over with a short blackout. Run `receive` on the\n"
"    destination first, then `send` on the source. The stages, named in the\n"
"    output and the JSON, are Xen's:\n"
"      0 pre-migration       handshake: protocol version, page and region size,\n"
"                            tracker; each side proves it holds the token\n"
"      1 reservation         the destination creates the region (charged to its\n"
"                            memory cgroup) or refuses, with its reason\n"
"      2 iterative pre-copy  round 0 sends every page (holes as zero records)\n"
"                            while tracking is on; each later round harvests and\n"
"                            sends the pages written meanwhile, until the\n"
"                            predicted blackout is at most --downtime-limit\n"
"                            and rounds stop shrinking (--no-settle)\n"
"      3 stop-and-copy       freeze the workload, send the last dirty pages\n"
"      4 commitment          the destination confirms every round arrived whole\n"
"                            (round markers, record counts, CRCs); the source\n"
"                            then commits and never resumes the workload\n"
"      5 activation          the destination starts --exec CMD with the region\n"
"                            (forked at reservation, it waits to exec, so the\n"
"                            blackout pays one exec); the source then kills\n"
"                            its workload (or keeps it frozen, --keep-source)\n"
"    Any failure before commitment (peer gone, refused reservation, bad message,\n"
"    timeout, SIGINT or SIGTERM to either side) aborts: the workload runs on in\n"
"    the source, its memory untouched, and the destination drops its region.\n"
"    Pages move with the module's zero-copy STREAM and, where the destination\n"
"    has the module, its in-kernel RECEIVE. The stream is not encrypted.\n"
"\n"
"    The predicted blackout is the dirty bytes left (the write faults counted\n"
"    since the last harvest) over the link rate (bytes acknowledged per second\n"
"    of round time, over the whole migration), plus two round trips measured in\n"
"    stage 0 and 1 ms for the freeze. Tracking is stopped after activation, so\n"
"    it costs no blackout.\n"
"\n"
"COMMON OPTIONS\n"
"    --token-file FILE\n"
"           The shared secret, in hex (at least 16 bytes). The destination\n"
"           accepts only a source that proves it holds it (HMAC-SHA256\n"
"           challenge-response), and the reverse. receive without it generates\n"
"           one and prints it; send without it reads $DT_MIGRATE_TOKEN (hex).\n"
"    --io-timeout S\n"
"           Give up on a peer that makes no progress for S seconds: no message\n"
"           answered, no byte acknowledged (default 30). send also keeps\n"
"           trying for S seconds to reach a destination not listening yet.\n"
"    --reconnect-timeout S\n"
"           A cut of either connection (a reset, a link down, a peer silent\n"
"           for --io-timeout) after the reservation and before commitment\n"
"           is survived for S seconds (default 60; 0: it aborts): both sides\n"
"           keep their state, the workload runs on the source (a frozen one\n"
"           is thawed and stop-and-copy starts over), and the source\n"
"           reconnects, proving the session with the token. The destination\n"
"           says how many rounds it holds whole and how many records of the\n"
"           cut one; the source sends the rest of that round first in the\n"
"           next, then what was written since. Past S seconds the migration\n"
"           aborts as for any failure. A cold migration, or a paused one,\n"
"           aborts on a cut; so does the module's sender where the module\n"
"           cannot say what STREAM sent (DIRTYTRACK_FEAT_STREAM_SENT).\n"
"    --timeout S\n"
"           send: the whole pre-copy may take at most S seconds, then\n"
"           --on-timeout applies (default 0: no limit). receive: wait at most S\n"
"           seconds for a source to connect (default 0: no limit).\n"
"    --json FILE\n"
"           Write the run as JSON, like QEMU's query-migrate: status, stage,\n"
"           error, per round (pages, zero pages, bytes, duration, dirty rate,\n"
"           link rate), totals and the blackout with its parts.\n"
"    --blackout-probe, --no-blackout-probe\n"
"           Load the blackout probe, or not (default: load it; where BPF is\n"
"           not allowed, dt-migrate says why and reports its own measure\n"
"           only). Both sides need it for the eBPF blackout.\n"
"\n"
"RECEIVE OPTIONS\n"
"    --listen ADDR:PORT\n"
"           Where to wait for the source (IPv4, [IPv6] or a name). Required.\n"
"    --receiver auto|kernel|user\n"
"           Apply the stream with the module's RECEIVE into a region (kernel),\n"
"           or in userspace into a memfd (user); auto takes kernel when\n"
"           /dev/dirtytrack is usable (default auto).\n"
"    --exec CMD [ARGS...]\n"
"           After commitment, start CMD with the received region as fd 3,\n"
"           DT_REGION_FD=3 and DT_META=FILE (the source's --meta bytes) in its\n"
"           environment. Must be the last option. Without it, receive keeps the\n"
"           region open and prints /proc/PID/fd/N until SIGINT or SIGTERM.\n"
"    --wait\n"
"           With --exec, wait for CMD and exit with its status (default: exit 0\n"
"           once CMD is started).\n"
"    --qemu QMP_SOCKET\n"
"           --exec is an incoming QEMU (see QEMU): it is started at the\n"
"           reservation, not after commitment, and must open QMP_SOCKET\n"
"           (-qmp unix:QMP_SOCKET,server=on,wait=off) and wait with -incoming\n"
"           defer; its incoming migration starts then, reading a pipe. Once\n"
"           every round arrived, the device state is written to it; the\n"
"           destination confirms commitment only after QEMU says the incoming\n"
"           migration completed; activation is QMP cont.\n"
"\n"
"SEND OPTIONS\n"
"    --to HOST:PORT\n"
"           The destination's --listen address. Required.\n"
"    --region /proc/PID/fd/N\n"
"           The workload's memory: a dirtytrack region fd of a running process,\n"
"           reopened by path. Required, except with --qemu.\n"
"    --qemu QMP_SOCKET\n"
"           The workload is a QEMU guest whose RAM is the region (see QEMU),\n"
"           driven through its QMP socket. QEMU's own migration, with\n"
"           x-ignore-shared (which leaves the region out) and\n"
"           pause-before-switchover, freezes it: QEMU stops the guest once it\n"
"           has sent its ROMs, and after the last round saves the device state,\n"
"           sent as META. An abort cancels that migration: the guest runs on.\n"
"           The region is, unless --region says otherwise, the mem-path of\n"
"           QEMU's one memory-backend-file. After activation the source QEMU\n"
"           is left stopped (postmigrate), for its owner to quit. Takes no\n"
"           --pid, --freeze, --cgroup or --meta.\n"
"    --pid PID\n"
"           The workload's process (default: PID of --region's path).\n"
"    --freeze cgroup|sigstop\n"
"           Pause the workload through the cgroup v2 freezer (cgroup.freeze,\n"
"           then \"frozen 1\" in cgroup.events), or SIGSTOP/SIGCONT to its\n"
"           process group (default cgroup).\n"
"    --cgroup PATH\n"
"           The cgroup to freeze (default: PID's own cgroup v2 directory).\n"
"    --meta FILE\n"
"           Opaque bytes (at most 1 MiB, e.g. device state) read after the\n"
"           freeze and handed to the destination's CMD as $DT_META.\n"
"    --downtime-limit MS\n"
"           Enter stop-and-copy once the predicted blackout is at most MS\n"
"           milliseconds (default 300, QEMU's default) and rounds have\n"
"           settled (below).\n"
"    --no-settle\n"
"           Enter stop-and-copy at the first round whose prediction fits, as\n"
"           QEMU does. By default pre-copy settles first: while a round cuts\n"
"           the data left to send (its share of the prediction) to at most 3/4\n"
"           of what the round before left, and that share is still at least\n"
"           1 ms, one more round follows, so the final round and the blackout\n"
"           shrink to what is dirtied during one short round. --max-rounds\n"
"           bounds it.\n"
"    --max-rounds N\n"
"           At most N pre-copy rounds after round 0 (default 30), then\n"
"           --on-timeout applies.\n"
"    --on-timeout cancel|force\n"
"           When pre-copy does not converge: cancel (abort, the workload stays\n"
"           on the source) or force (stop-and-copy anyway) (default cancel).\n"
"    --cold\n"
"           Freeze first and copy once: no pre-copy, no tracking.\n"
"    --keep-source\n"
"           After activation leave the source workload frozen instead of\n"
"           killing it.\n"
"    --tracker auto|dirtytrack|pagemap-scan|soft-dirty\n"
"           The dirty tracker. dirtytrack: the module's region tracking, for a\n"
"           region. The other two are for a workload whose memory is a memfd\n"
"           it maps (no module needed on the source). pagemap-scan: the\n"
"           workload registers its mapping for userfaultfd write protection\n"
"           in async mode (dt-guest --uffd-wp; Linux 6.7+) and keeps that\n"
"           userfaultfd open; each harvest is one PAGEMAP_SCAN ioctl on\n"
"           /proc/PID/pagemap that reports the written pages and protects\n"
"           them again in the same walk, atomic against the workload's\n"
"           writes. soft-dirty: clear_refs and bit 55 of /proc/PID/pagemap;\n"
"           the workload is frozen around each harvest, as CRIU does, since\n"
"           the two steps are not atomic, and clear_refs write-protects all\n"
"           of its memory, not only the memfd. auto picks dirtytrack for a\n"
"           region; for a memfd, pagemap-scan if the workload's mapping is\n"
"           registered, else soft-dirty (default auto; the choice is\n"
"           printed).\n"
"    --sender kernel|user\n"
"           Send with the module's zero-copy STREAM (kernel), or harvest and\n"
"           copy each page out with pread(2) and send it from userspace (user)\n"
"           (default kernel; pagemap-scan and soft-dirty always send from\n"
"           userspace).\n"
"    --freeze-timeout MS\n"
"           The workload must be frozen within MS ms (default 5000; with\n"
"           --qemu at least --io-timeout: QEMU sets up its migration and sends\n"
"           its ROMs, the guest running, before it stops the guest).\n"
"    --quiet\n"
"           Print only errors and the final summary.\n"
"    --control SOCKET\n"
"           Serve dt-migrate ctl on a Unix socket at SOCKET (mode 0600,\n"
"           removed at the end; a stale one is replaced). See PAUSING.\n"
"    --pause-timeout S\n"
"           A pause longer than S seconds aborts the migration (default 0:\n"
"           a pause may last any time).\n"
"    --no-auto-converge\n"
"           Never slow the workload (default: auto-converge, below).\n"
"    --throttle-initial PCT, --throttle-increment PCT, --throttle-rounds N\n"
"           Auto-converge: once the workload has dirtied pages at half the\n"
"           rate the link carries them or more for N rounds in a row\n"
"           (default 2; QEMU's throttle-trigger-threshold of 50), slow it\n"
"           by PCT %% (default 20), and by --throttle-increment %% more\n"
"           (default 10) after each round that still does not converge, up\n"
"           to 99 %%, as QEMU's cpu-throttle-initial/-increment do. With the\n"
"           module only the writers slow down: write faults get a budget\n"
"           (DIRTYTRACK_IOC_THROTTLE) of (100 - level) %% of the pages the\n"
"           link carries per second, and readers never wait. Without it\n"
"           (pagemap-scan, soft-dirty) the workload's cgroup gets cpu.max at\n"
"           (100 - level) %% of this host's CPUs, and dt-migrate says so. The\n"
"           throttle is lifted while paused, on abort and after activation.\n"
"    --throttle-with auto|module|cpu-max\n"
"           How auto-converge slows the workload: the module's write-fault\n"
"           budget where the region has one, else cpu.max (auto, the\n"
"           default); only the budget (module: where there is none,\n"
"           dt-migrate says so and goes on unthrottled); or cpu.max even\n"
"           where the budget exists (cpu-max: what make bench-migrate\n"
"           compares the budget with).\n"
"\n"
"QEMU\n"
"    An unmodified QEMU (7.2 or later) can be the VMM: its guest RAM is a\n"
"    region that `dt-migrate hold --size BYTES` creates and holds (it\n"
"    prints /proc/PID/fd/N, then waits for SIGINT or SIGTERM), given to\n"
"    QEMU as\n"
"        -object memory-backend-file,id=ram0,size=BYTES,mem-path=/proc/PID/fd/N,share=on\n"
"        -machine memory-backend=ram0\n"
"    The incoming QEMU gets the same machine and devices, with\n"
"    mem-path=/proc/self/fd/3 (the received region) and -incoming defer,\n"
"    which keeps QEMU from writing its ROMs into guest RAM. Name QEMU's\n"
"    threads (-name NAME,debug-threads=on) for the eBPF blackout: it is the\n"
"    gap in its vCPU threads' runs. Documentation/qemu.rst has the rest.\n"
"\n"
"PAUSING (dt-migrate ctl)\n"
"    dt-migrate ctl SOCKET pause stops sending at the next pause point and\n"
"    answers once there (or, after 30 s, that the pause is still pending):\n"
"    after the handshake, after the reservation, between two sends within a\n"
"    pre-copy round, between rounds, and after the last round's pages are\n"
"    queued, before COMMIT_REQ: a pause there thaws the workload, the round\n"
"    becomes an ordinary one and pre-copy follows the resume (a pause asked\n"
"    in the round after which pre-copy converges lands there). Paused, the\n"
"    workload runs on the source, tracking goes on, and the destination\n"
"    keeps what it received; PINGs every third of --io-timeout keep both\n"
"    sides alive. resume goes on from where it stopped: the pages already\n"
"    sent are not sent again unless written since (the harvest knows them).\n"
"    step goes on to the next pause point and answers once paused there.\n"
"    cancel aborts like SIGINT. Once COMMIT_REQ is sent, pause and cancel\n"
"    answer \"too late\". A cold migration cannot pause. status (and every\n"
"    answer) gives the state (running, pausing, paused, resuming,\n"
"    cancelling, committing), the stage, rounds, bytes sent, the last\n"
"    round's dirty and link rates, the predicted blackout and the pauses;\n"
"    --json prints it as one JSON object. ctl exits 0, or 1 when refused\n"
"    or when nothing serves SOCKET.\n"
"\n"
"OUTPUT\n"
"    Each stage is printed as it starts. On a terminal one live line shows the\n"
"    round, the pages left, the dirty rate, the link rate and the predicted\n"
"    blackout; otherwise a line per round. The summary gives the blackout,\n"
"    measured on the source from the freeze request to the destination's\n"
"    confirmation that the workload started, and its parts (freeze, final\n"
"    round, commitment, activation), which add up to it.\n"
"\n"
"    With the blackout probe (eBPF, as dt-blackout(1); both sides, root), it\n"
"    also gives the blackout the workload saw: from the last moment any of\n"
"    its tasks ran on the source, frozen, to its exec on the destination,\n"
"    in CLOCK_TAI on both hosts, corrected by the clock offset that PING\n"
"    measures and uncertain by half the round trip; its parts: freeze\n"
"    detection (until dt-migrate saw the workload frozen), final round (to\n"
"    the last round queued), final transfer (to the destination's\n"
"    RECEIVE of the round's marker), commitment (to COMMIT's arrival) and\n"
"    activation (to the exec), which add up to it; and how long freezing\n"
"    took before it, during which the workload still partly ran.\n"
"\n"
"EXIT STATUS\n"
"    0  migrated (send); the workload was started, or with --wait it exited 0\n"
"       (receive; with --wait, CMD's status otherwise)\n"
"    1  aborted before commitment: the workload runs on the source, the\n"
"       destination holds no region; the message names the stage and cause\n"
"    2  usage error\n"
"    3  committed, but the destination's activation was not confirmed: the\n"
"       source workload stays frozen (do not resume it without checking the\n"
"       destination); receive: CMD could not be started after commitment\n"
"\n"
"EXAMPLES\n"
"    On the destination:\n"
"        dt-migrate receive --listen 0.0.0.0:7070 --token-file /etc/dt/token \\\n"
"            --exec dt-guest --resume\n"
"    On the source, for the guest whose region is fd 3 of pid 1234:\n"
"        dt-migrate send --to dst.example:7070 --token-file /etc/dt/token \\\n"
"            --region /proc/1234/fd/3 --json run.json\n"
"    Pause a migration started with --control /run/dt.sock, then resume it:\n"
"        dt-migrate ctl /run/dt.sock pause\n"
"        dt-migrate ctl /run/dt.sock resume\n"
"    A QEMU guest (QEMU's command line in Documentation/qemu.rst):\n"
"        dt-migrate receive --listen 0.0.0.0:7070 --token-file /etc/dt/token \\\n"
"            --qemu /run/q2.sock --exec qemu-system-x86_64 ... -incoming defer\n"
"        dt-migrate send --to dst:7070 --token-file /etc/dt/token --qemu /run/q1.sock\n"
"    A cold migration of a workload that has no cgroup of its own:\n"
"        dt-migrate send --to dst:7070 --region /proc/1234/fd/3 --cold \\\n"
"            --freeze sigstop\n"
"\n"
"SEE ALSO\n"
"    dt-guest(1), Documentation/dirtytrack.rst\n");
}

/* ---- common ---------------------------------------------------------- */

struct common {
	uint8_t token[DT_PROTO_MAX_TOKEN];
	size_t token_len;
	int io_timeout;		/* s */
	int timeout;		/* s */
	int reconnect_timeout;	/* s: a cut is survived that long; 0: it aborts */
	const char *json_path;
	bool quiet;
	bool tty;
	bool no_probe;		/* --no-blackout-probe */
	json_object *json;
	int stage;
};

static struct common C;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The clock both hosts compare (PING), and the blackout probe's. */
static uint64_t tai_ns(void)
{
	return dt_bo_now();
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* A line of output; on a terminal it first clears the progress line. */
static void say(const char *fmt, ...)
{
	va_list ap;

	if (C.quiet)
		return;
	if (C.tty)
		fputs("\r\033[K", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* The live progress line, on a terminal, redrawn at most every 100 ms. */
static void progress(const char *fmt, ...)
{
	static uint64_t last;
	uint64_t now = mono_ns();
	va_list ap;

	if (C.quiet || !C.tty || now - last < 100000000ULL)
		return;
	last = now;
	fputs("\r\033[K", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void set_stage(int stage)
{
	__atomic_store_n(&C.stage, stage, __ATOMIC_RELAXED);	/* dt-migrate ctl reads it */
	say("stage %d %s", stage, dt_stage_name(stage));
}

static void json_set(const char *key, json_object *val)
{
	json_object_object_add(C.json, key, val);
}

/*
 * Load the blackout probe for the region @rfd, unless told not to; where
 * it cannot load, say why once and go on without it.
 */
/*
 * Load the blackout probe, watching the region rfd (or, with -1, any until
 * probe_region()). Loading can take seconds (the verifier, on a debug
 * kernel): never between a request and its answer.
 */
static struct dt_bo *probe_open(int rfd)
{
	struct stat st;
	struct dt_bo *bo;
	char why[256];

	if (C.no_probe)
		return NULL;
	bo = dt_bo_open(rfd < 0 || fstat(rfd, &st) ? 0 : st.st_ino, why, sizeof(why));
	if (!bo) {
		fprintf(stderr, "dt-migrate: blackout probe: %s; reporting dt-migrate's own "
			"timestamps only\n", why);
		json_set("blackout_probe_error", json_object_new_string(why));
	}
	return bo;
}

static void json_write(void)
{
	if (!C.json_path)
		return;
	if (json_object_to_file_ext(C.json_path, C.json,
				    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE))
		fprintf(stderr, "dt-migrate: writing %s: %s\n", C.json_path,
			json_util_get_last_err());
}

/* HOST:PORT or [V6]:PORT into an addrinfo list. */
static int resolve(const char *spec, bool passive, struct addrinfo **res)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : 0,
	};
	size_t n;
	int ret;

	if (!colon || colon == spec || !colon[1])
		return -EINVAL;
	n = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		spec++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, n);
	host[n] = 0;
	ret = getaddrinfo(host, colon + 1, &hints, res);
	return ret ? -EHOSTUNREACH : 0;
}

/*
 * Fail a stalled peer: keepalive probes on an idle connection and
 * TCP_USER_TIMEOUT on unacknowledged data, both within --io-timeout.
 */
static void tune_socket(int fd)
{
	int one = 1, idle = C.io_timeout / 3 > 0 ? C.io_timeout / 3 : 1, intvl = 1, cnt = 3;
	unsigned int user = (unsigned int)C.io_timeout * 1000;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

static int install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* After commitment SIGINT and SIGTERM wait: the handover must finish. */
static void block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -EINVAL : 0;
}

static int parse_int(const char *opt, const char *s, int min, int *v)
{
	uint64_t u;

	if (parse_u64(s, &u) || u > INT_MAX || (int)u < min) {
		fprintf(stderr, "dt-migrate: %s: '%s' is not a number >= %d\n", opt, s, min);
		return -EINVAL;
	}
	*v = (int)u;
	return 0;
}

/* ---- send ------------------------------------------------------------ */

struct round {
	uint64_t round;
	uint64_t records;
	uint64_t pages;		/* PAGE records (the rest are ZERO) */
	uint64_t bytes;
	uint64_t start_ns, queued_ns, acked_ns;
	uint64_t queued_tai;	/* CLOCK_TAI at queued_ns */
	uint64_t paused_ns;	/* paused mid-round (dt-migrate ctl) */
	uint64_t faults0;	/* the module's write faults when it began */
	uint64_t dirtied;	/* write faults counted during the round */
	double dirty_rate;	/* pages/s harvested, over the time they took to dirty */
	int thr_level;		/* auto-converge after this round: 0 (off) to 99 % */
	uint64_t thr_pps;	/* the module's write-fault budget then, 0 if none */
	double link_rate;	/* bytes/s, round start to acknowledgement */
	bool predicted;		/* a pre-copy round: the prediction after it */
	double pred_ms, data_ms;	/* src_predict_ms() */
};

struct src {
	const char *to, *region, *cgroup, *meta_path, *tracker;
	pid_t pid;
	const char *qemu;	/* --qemu: the guest's QMP socket */
	struct dt_qmp qmp;
	char qemu_region[PATH_MAX];	/* --qemu without --region: its RAM's */
	enum dt_freeze_kind freeze;
	int downtime_ms, max_rounds, freeze_timeout_ms;
	bool cold, keep_source, force, user_sender;
	bool ptes;		/* pagemap-scan or soft-dirty: a memfd, the workload's PTEs */
	bool scan;		/* pagemap-scan (else soft-dirty) */
	const char *want_tracker;

	int rfd, ctl, data;
	uint64_t size, npages, populated;
	struct dt_workload wl;
	uint8_t session[DT_PROTO_SESSION];
	uint8_t nonce_s[DT_PROTO_NONCE], nonce_d[DT_PROTO_NONCE];
	struct dt_msg msg;
	bool tracking, committed;
	char receiver[16];

	uint64_t t0, rtt_ns;
	int64_t offset_ns;
	struct round rounds[MAX_ROUNDS_KEPT];
	uint64_t nrounds, total_records, total_bytes;
	uint64_t t_freeze, t_frozen, t_final, t_verified, t_activated;
	struct dt_bo *bo;	/* the blackout probe, or NULL */
	uint64_t tai_freeze, tai_frozen, tai_final;	/* CLOCK_TAI: freeze asked, seen, last round queued */
	uint64_t bo_last_run, bo_tx_final;	/* the probe's: last run, last marker queued */
	struct dt_msg_activated act;
	double predicted_ms;
	uint64_t map_start;	/* ptes: where the workload maps the memfd */
	uint64_t *data_map, *data_next;	/* ptes: pages holding data, last harvest and now */
	int pagemap, clear_refs;	/* ptes: /proc/PID/pagemap; soft-dirty: clear_refs */
	uint64_t *bitmap;	/* user sender: a round's pages */
	char *pagebuf;		/* user sender: 64 pages copied out */

	/* --control: what dt-migrate ctl asked, and what it is told (lock). */
	const char *control_path;
	int pause_timeout;	/* s, 0: none */
	uint64_t peer_features;
	struct {
		struct dt_ctl *srv;
		pthread_mutex_t lock;
		pthread_cond_t cond;
		bool pause, cancel;	/* asked for, not yet done */
		bool step;		/* go on to the next pause point */
		bool paused, late;	/* paused; past the last pause point */
		uint64_t rounds, bytes, left;	/* after the last round */
		double pred, dirty_rate, link_rate;
		uint64_t paused_ns, npauses;
		bool within;		/* the last pause was within a round */
	} cl;
	json_object *pauses;

	/* auto-converge (src_throttle_round()) */
	bool no_throttle;
	bool no_settle;		/* --no-settle: src_settle() */
	int thr_initial, thr_increment, thr_rounds;
	int thr_level, thr_over;	/* % slowed; rounds dirtying over the link rate */
	uint64_t thr_pps;		/* the module's budget at thr_level, 0 if none */
	bool thr_cpu;			/* by cpu.max (no module THROTTLE, or asked) */
	bool thr_module;		/* --throttle-with module: never cpu.max */
	bool thr_cpu_asked;		/* --throttle-with cpu-max */
	char thr_saved[64];		/* cpu.max before us */

	/*
	 * --reconnect-timeout: a cut of either connection before commitment
	 * is survived (src_lost(), src_rejoin()). A round is sent as pages
	 * left over from a cut round (@pre, first), then its own source
	 * (@main_range: every page; else the harvest: @sent, or for the user
	 * sender @bitmap), each in page order, a record per page: the first
	 * K records the destination holds of a cut round name its pages.
	 */
	int reconnect_timeout;		/* s; 0: a cut aborts */
	bool can_rejoin;		/* rejoin_jmp is armed */
	sigjmp_buf rejoin_jmp;
	pthread_t main_thread;
	uint64_t t_lost;		/* when the cut was seen */
	char lost_why[200];
	bool in_round;			/* rounds[nrounds] is being sent */
	bool main_range;		/* ... and its own source is every page */
	uint64_t *pre, npre;		/* pages left from a cut round, and how many */
	uint64_t cut_pages;		/* the cut round's pages (for the JSON) */
	uint64_t *sent;			/* kernel sender: what the round's harvest took */
	uint64_t round_base;		/* round number of this stream's first round */
	bool new_stream;		/* the next send begins with the stream header */
	json_object *rejoins;
};

/* Tell the peer why the migration ends (best effort). */
static void send_refuse(int fd, int err, const char *why)
{
	struct dt_msg_refuse r = { .err = err < 0 ? -err : err, .stage = (uint32_t)C.stage };

	snprintf(r.reason, sizeof(r.reason), "%s", why);
	if (fd >= 0)
		dt_msg_send(fd, DT_MSG_REFUSE, &r, sizeof(r));
}

/* Abort before commitment: tell the peer, undo, exit 1. After it: exit 3. */
static void src_ctl_close(struct src *s);
static int64_t src_throttle_set(struct src *s, int level);
static void src_throttle_off(struct src *s);

static void __attribute__((noreturn)) src_fail(struct src *s, int err, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	src_ctl_close(s);
	if (C.tty && !C.quiet)
		fputs("\r\033[K", stdout);
	fflush(stdout);
	json_set("error", json_object_new_string(why));
	json_set("failed_stage", json_object_new_string(dt_stage_name(C.stage)));
	if (s->committed) {
		fprintf(stderr, "dt-migrate: stage %d %s: %s\n"
			"dt-migrate: committed, but the destination did not confirm activation: "
			"the workload stays %s on the source; check the destination before "
			"resuming it\n", C.stage, dt_stage_name(C.stage), why,
			s->wl.frozen ? "frozen" : "stopped");
		json_set("status", json_object_new_string("in-doubt"));
		json_write();
		exit(EXIT_IN_DOUBT);
	}
	send_refuse(s->ctl, err, why);
	/*
	 * Pages of a send cut short stay in flight, their writers waiting,
	 * until the stack lets go of them: reset the data connection (no
	 * retransmissions to a dead peer), and close our region file, which
	 * drops what the module still holds.
	 */
	if (s->data >= 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(s->data, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(s->data);
	}
	src_throttle_off(s);
	if (s->tracking)
		dt_track_stop(s->rfd);
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->wl.frozen && dt_workload_thaw(&s->wl))
		fprintf(stderr, "dt-migrate: %s\n", s->wl.why);
	fprintf(stderr, "dt-migrate: stage %d %s: %s\n"
		"dt-migrate: migration aborted; the workload runs on the source\n",
		C.stage, dt_stage_name(C.stage), why);
	json_set("status", json_object_new_string("aborted"));
	json_write();
	exit(EXIT_ABORTED);
}

/* Errors of the link (or of a peer gone), as opposed to what was said on it. */
static bool link_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case ECONNRESET: case EPIPE: case ETIMEDOUT: case ENOTCONN: case ECONNABORTED:
	case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EHOSTDOWN: case ECONNREFUSED:
		return true;
	}
	return false;
}

/*
 * A connection was cut before commitment: close both, let the workload run
 * (a frozen one is thawed: stop-and-copy starts over), keep tracking, and
 * go back to cmd_send() to reconnect (src_rejoin()).
 */
static void __attribute__((noreturn)) src_lost(struct src *s, const char *why)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	s->can_rejoin = false;
	s->t_lost = mono_ns();
	snprintf(s->lost_why, sizeof(s->lost_why), "%s", why);
	/* Reset, not close: a pending send lets go of its pages at once. */
	setsockopt(s->data, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(s->data);
	close(s->ctl);
	s->data = s->ctl = -1;
	src_throttle_off(s);
	if (s->wl.frozen && dt_workload_thaw(&s->wl))
		src_fail(s, EIO, "thawing the workload after a cut: %s", s->wl.why);
	if (C.tty && !C.quiet)
		fputs("\r\033[K", stdout);
	say("  stage %d: connection lost (%s); reconnecting for up to %d s, the workload "
	    "runs meanwhile", C.stage, why, s->reconnect_timeout);
	siglongjmp(s->rejoin_jmp, 1);
}

/* A failure on a connection: survived by a rejoin where one is allowed. */
static void __attribute__((noreturn, format(printf, 3, 4)))
src_io_fail(struct src *s, int err, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->can_rejoin && !s->committed && !s->cl.paused && link_errno(err) &&
	    pthread_equal(pthread_self(), s->main_thread))
		src_lost(s, why);
	src_fail(s, err, "%s", why);
}

static void src_check_signal(struct src *s)
{
	if (stop_signal && !s->committed)
		src_fail(s, EINTR, "interrupted by %s", strsignal(stop_signal));
	if (__atomic_load_n(&s->cl.cancel, __ATOMIC_RELAXED) && !s->committed)
		src_fail(s, ECANCELED, "cancelled by dt-migrate ctl");
}

/* A REFUSE from the peer ends the migration with the peer's reason. */
static void src_peer_refused(struct src *s)
{
	struct dt_msg_refuse r;

	if (dt_msg_expect(&s->msg, DT_MSG_REFUSE, &r, sizeof(r)))
		src_fail(s, EPROTO, "unexpected %s from the destination",
			 dt_msg_name(s->msg.hdr.type));
	r.reason[sizeof(r.reason) - 1] = 0;
	src_fail(s, r.err, "the destination refused: %s (%s)", r.reason, strerror(r.err));
}

/* Receive a message of the expected type (a REFUSE aborts). */
static void src_expect(struct src *s, int type, void *out, size_t len)
{
	int ret = dt_msg_recv(s->ctl, &s->msg, C.io_timeout * 1000);

	src_check_signal(s);
	if (ret == -ECONNRESET)
		src_io_fail(s, ret, "the destination closed the connection");
	if (ret)
		src_io_fail(s, ret, "waiting for %s: %s", dt_msg_name(type), strerror(-ret));
	if (s->msg.hdr.type == DT_MSG_REFUSE && type != DT_MSG_REFUSE)
		src_peer_refused(s);
	ret = dt_msg_expect(&s->msg, type, out, len);
	if (ret)
		src_fail(s, ret, "expected %s, got %s (%u bytes)", dt_msg_name(type),
			 dt_msg_name(s->msg.hdr.type), s->msg.hdr.len);
}

static void src_send(struct src *s, int type, const void *p, uint32_t len)
{
	int ret = dt_msg_send(s->ctl, type, p, len);

	if (ret)
		src_io_fail(s, ret, "sending %s: %s", dt_msg_name(type), strerror(-ret));
}

/* One connection attempt to every address of --to: fd, or -errno. */
static int connect_once(struct src *s)
{
	struct timeval tv = { .tv_sec = C.io_timeout };
	struct addrinfo *ai, *a;
	int fd = -1, ret = resolve(s->to, false, &ai);

	if (ret)
		src_fail(s, EHOSTUNREACH, "cannot resolve --to %s", s->to);
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		tune_socket(fd);
		/* Not the kernel's minutes of SYN retries to a peer gone silent. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (!connect(fd, a->ai_addr, a->ai_addrlen)) {
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ 0 },
				   sizeof(struct timeval));
			break;
		}
		ret = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd >= 0 ? fd : ret;
}

/*
 * Connect to the destination. A destination not listening yet (refused,
 * unreachable) is tried again every 200 ms for --io-timeout seconds, so
 * that both sides can be started at once.
 */
static int src_connect(struct src *s)
{
	uint64_t end = mono_ns() + (uint64_t)C.io_timeout * 1000000000ULL;
	int fd;

	for (;;) {
		fd = connect_once(s);
		src_check_signal(s);
		if (fd >= 0)
			return fd;
		if ((fd != -ECONNREFUSED && fd != -ENETUNREACH && fd != -EHOSTUNREACH) ||
		    mono_ns() >= end)
			src_fail(s, fd, "connecting to %s: %s", s->to, strerror(-fd));
		usleep(200000);
	}
}

/*
 * pagemap-scan, soft-dirty: the workload's mapping of the memfd, from
 * /proc/PID/maps (the line with its device and inode at offset 0, covering
 * the whole file).
 */
static void ptes_find_map(struct src *s, const struct stat *sb)
{
	char path[64], line[512];
	unsigned long long start, end, off, ino;
	unsigned int maj, mnr;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->pid);
	f = fopen(path, "r");
	if (!f)
		src_fail(s, errno, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end, &off, &maj, &mnr,
			   &ino) != 6)
			continue;
		if (ino == sb->st_ino && maj == major(sb->st_dev) && mnr == minor(sb->st_dev) &&
		    off == 0 && end - start >= s->size) {
			s->map_start = start;
			fclose(f);
			return;
		}
	}
	fclose(f);
	src_fail(s, ENOENT, "%s: pid %d does not map all of %s (see %s)", s->tracker,
		 (int)s->pid, s->region, path);
}

/*
 * pagemap-scan: the written pages of the workload's mapping into s->bitmap
 * and (with @wp) write-protected again in the same walk, under the page
 * table locks, so that no write racing the harvest is lost. EPERM: the
 * mapping is not registered for async write protection.
 */
static int scan_pages(struct src *s, bool wp, uint64_t *ndirty)
{
	int ret;

	memset(s->bitmap, 0, dt_bitmap_bytes(s->npages));
	ret = dt_pagemap_scan(s->pagemap, s->map_start, s->npages, wp, s->bitmap);
	*ndirty = ret ? 0 : dt_bitmap_count(s->bitmap, s->npages);
	return ret;
}

/*
 * Open the workload's pagemap; pick pagemap-scan (auto: if the mapping is
 * registered for async write protection) or soft-dirty.
 */
static void ptes_open(struct src *s, const struct stat *sb)
{
	char path[64], why[128];
	uint64_t n;
	int ret;

	ptes_find_map(s, sb);
	s->data_map = calloc(1, dt_bitmap_bytes(s->npages));
	s->data_next = calloc(1, dt_bitmap_bytes(s->npages));
	if (!s->data_map || !s->data_next)
		src_fail(s, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)s->pid);
	s->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (s->pagemap < 0)
		src_fail(s, errno, "%s: %s", path, strerror(errno));
	/* A scan that changes nothing: is the mapping registered? */
	ret = strcmp(s->tracker, "soft-dirty") ? scan_pages(s, false, &n) : -EPERM;
	if (!strcmp(s->tracker, "pagemap-scan") && ret)
		src_fail(s, ret, "pagemap-scan: %s", ret == -EPERM ?
			 "the workload's mapping of the memfd is not registered for userfaultfd "
			 "async write protection (start it with dt-guest --uffd-wp, or register "
			 "it with UFFD_FEATURE_WP_ASYNC)" : ret == -ENOTTY || ret == -EINVAL ?
			 "no PAGEMAP_SCAN on this kernel (Linux 6.7+); use --tracker soft-dirty" :
			 strerror(-ret));
	s->scan = !ret;
	if (s->scan) {
		s->tracker = "pagemap-scan";
		return;
	}
	s->tracker = "soft-dirty";
	/* Without CONFIG_MEM_SOFT_DIRTY clear_refs succeeds and bit 55 stays 0. */
	if (dt_tracker_probe(DT_TRACKER_SOFT_DIRTY, why, sizeof(why)))
		src_fail(s, EOPNOTSUPP, "soft-dirty: %s: it would miss every write; use "
			 "pagemap-scan (dt-guest --uffd-wp) or a dirtytrack region", why);
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)s->pid);
	s->clear_refs = open(path, O_WRONLY | O_CLOEXEC);
	if (s->clear_refs < 0)
		src_fail(s, errno, "%s: %s", path, strerror(errno));
}

/* Write-protect every page again (soft-dirty: all of the workload's memory). */
static int ptes_start(struct src *s)
{
	uint64_t n;

	if (s->scan)
		return scan_pages(s, true, &n);
	return pwrite(s->clear_refs, "4", 1, 0) == 1 ? 0 : -errno;
}

#define PM_SOFT_DIRTY	(1ULL << 55)

/*
 * pagemap-scan harvest: one scan. Soft-dirty harvest: bit 55 of each
 * page's pagemap entry, then clear_refs.
 * The two steps are not atomic against the workload's writes (a write
 * between them would be lost), so the workload is frozen around them, as
 * CRIU does, unless it is frozen already (the last round).
 */
static int softdirty_harvest(struct src *s, uint64_t *ndirty)
{
	static uint64_t pm[4096];
	bool thaw = !s->wl.frozen;
	uint64_t i, n = 0;
	int ret = 0;

	if (thaw && dt_workload_freeze(&s->wl, s->freeze_timeout_ms))
		return -EAGAIN;
	memset(s->bitmap, 0, dt_bitmap_bytes(s->npages));
	for (i = 0; i < s->npages && !ret; i += 4096) {
		uint64_t k = s->npages - i < 4096 ? s->npages - i : 4096;
		off_t at = (off_t)((s->map_start / PS + i) * 8);

		if (pread(s->pagemap, pm, k * 8, at) != (ssize_t)(k * 8)) {
			ret = errno ? -errno : -EIO;
			break;
		}
		for (uint64_t j = 0; j < k; j++)
			if (pm[j] & PM_SOFT_DIRTY) {
				dt_bitmap_set(s->bitmap, i + j);
				n++;
			}
	}
	if (!ret)
		ret = ptes_start(s);
	if (thaw && dt_workload_thaw(&s->wl) && !ret)
		ret = -EIO;
	*ndirty = n;
	return ret;
}

/* The pages of the memfd that hold data (SEEK_DATA, SEEK_HOLE), as a bitmap. */
static int data_pages(struct src *s, uint64_t *map)
{
	off_t off = 0, data, hole;

	memset(map, 0, dt_bitmap_bytes(s->npages));
	for (;;) {
		data = lseek(s->rfd, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(s->rfd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		for (uint64_t p = (uint64_t)data / PS; p < ((uint64_t)hole + PS - 1) / PS &&
		     p < s->npages; p++)
			dt_bitmap_set(map, p);
		off = hole;
	}
}

/*
 * A hole punched in the memfd (fallocate, MADV_REMOVE: a balloon, free page
 * reporting) drops a clean page's PTE, and neither tracker sees a write: the
 * destination would keep the old bytes. So a harvest also reports the pages
 * that held data at the last one and are holes now (they go as ZERO records).
 */
static int ptes_punched(struct src *s, uint64_t *ndirty)
{
	uint64_t *t, words = dt_bitmap_bytes(s->npages) / 8;
	int ret = data_pages(s, s->data_next);

	if (ret)
		return ret;
	for (uint64_t w = 0; w < words; w++) {
		uint64_t gone = s->data_map[w] & ~s->data_next[w] & ~s->bitmap[w];

		s->bitmap[w] |= gone;
		*ndirty += (uint64_t)__builtin_popcountll(gone);
	}
	t = s->data_map;
	s->data_map = s->data_next;
	s->data_next = t;
	return 0;
}

static int ptes_harvest(struct src *s, uint64_t *ndirty)
{
	int ret = s->scan ? scan_pages(s, true, ndirty) : softdirty_harvest(s, ndirty);

	return ret ? ret : ptes_punched(s, ndirty);
}

static void src_open_region(struct src *s)
{
	struct dirtytrack_stats st;
	struct stat sb;
	int ret;

	s->rfd = open(s->region, O_RDWR | O_CLOEXEC);
	if (s->rfd < 0)
		src_fail(s, errno, "--region %s: %s", s->region, strerror(errno));
	if (fstat(s->rfd, &sb))
		src_fail(s, errno, "fstat %s: %s", s->region, strerror(errno));
	ret = dt_stats(s->rfd, &st);
	if (!ret) {
		if (s->want_tracker && strcmp(s->want_tracker, "dirtytrack"))
			src_fail(s, EINVAL, "--region %s is a dirtytrack region: use --tracker "
				 "dirtytrack (or auto)", s->region);
		if (st.state & DIRTYTRACK_STATE_TRACKING)
			src_fail(s, EBUSY, "--region %s is tracked already (by its owner or "
				 "another dt-migrate)", s->region);
		s->size = st.size;
		s->populated = st.pages_populated;
		s->tracker = "dirtytrack";
	} else {
		if (s->want_tracker && !strcmp(s->want_tracker, "dirtytrack"))
			src_fail(s, ret, "--region %s is not a dirtytrack region (STATS: %s)",
				 s->region, strerror(-ret));
		s->tracker = s->want_tracker ? s->want_tracker : "auto";
		if (!S_ISREG(sb.st_mode) || !sb.st_size || sb.st_size % PS)
			src_fail(s, EINVAL, "--region %s is neither a dirtytrack region nor a "
				 "memfd of whole pages", s->region);
		s->size = (uint64_t)sb.st_size;
		s->populated = (uint64_t)sb.st_blocks * 512 / PS;
		s->ptes = true;
		s->user_sender = true;	/* STREAM needs a region */
	}
	s->npages = s->size / PS;
	if (s->user_sender) {
		s->bitmap = calloc(1, dt_bitmap_bytes(s->npages));
		s->pagebuf = aligned_alloc(PS, 64 * PS);
		if (!s->bitmap || !s->pagebuf)
			src_fail(s, ENOMEM, "out of memory");
	}
	if (s->cold)
		s->tracker = "none";	/* frozen first, copied once */
	else if (s->ptes)
		ptes_open(s, &sb);
}

/* Three PING/PONG exchanges: the RTT and the clock offset (as NTP). */
static void src_ping(struct src *s)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 3; i++) {
		struct dt_msg_ping p = { .t1 = tai_ns() };
		uint64_t t4, rtt;

		src_send(s, DT_MSG_PING, &p, sizeof(p));
		src_expect(s, DT_MSG_PONG, &p, sizeof(p));
		t4 = tai_ns();
		rtt = (t4 - p.t1) - (p.t3 - p.t2);
		if (rtt < best) {
			best = rtt;
			s->offset_ns = ((int64_t)(p.t2 - p.t1) + (int64_t)(p.t3 - t4)) / 2;
		}
	}
	s->rtt_ns = best;
}

static void src_handshake(struct src *s)
{
	struct dt_msg_challenge ch;
	struct dt_msg_hello h = {
		.version = DT_PROTO_VERSION,
		.page_size = PS,
		.region_size = s->size,
		.populated = s->populated,
	};
	struct dt_msg_welcome w;
	uint8_t mac[DT_PROTO_MAC];

	set_stage(ST_PRE);
	s->ctl = src_connect(s);
	src_expect(s, DT_MSG_CHALLENGE, &ch, sizeof(ch));
	if (ch.version < DT_PROTO_VERSION)
		src_fail(s, EPROTONOSUPPORT, "the destination speaks protocol %u, not %u",
			 ch.version, DT_PROTO_VERSION);
	memcpy(s->nonce_d, ch.nonce, sizeof(ch.nonce));
	h.features = s->reconnect_timeout ? DT_PROTO_FEAT_REJOIN : 0;
	snprintf(h.tracker, sizeof(h.tracker), "%s", s->tracker);
	snprintf(h.sender, sizeof(h.sender), "%s", s->user_sender ? "user" : "kernel");
	memcpy(h.session, s->session, sizeof(h.session));
	memcpy(h.nonce, s->nonce_s, sizeof(h.nonce));
	dt_proto_mac(C.token, C.token_len, "dt-migrate hello", s->nonce_d, DT_PROTO_NONCE,
		     s->session, DT_PROTO_SESSION, h.mac);
	src_send(s, DT_MSG_HELLO, &h, sizeof(h));
	src_expect(s, DT_MSG_WELCOME, &w, sizeof(w));
	dt_proto_mac(C.token, C.token_len, "dt-migrate welcome", s->nonce_s, DT_PROTO_NONCE,
		     s->nonce_d, DT_PROTO_NONCE, mac);
	if (dt_proto_mac_cmp(mac, w.mac))
		src_fail(s, EACCES, "the destination does not hold the token");
	w.receiver[sizeof(w.receiver) - 1] = 0;
	snprintf(s->receiver, sizeof(s->receiver), "%s", w.receiver);
	s->peer_features = w.features;
	src_ping(s);
	say("  connected to %s: protocol %d, tracker %s, sender %s, receiver %s, rtt %.3f ms",
	    s->to, DT_PROTO_VERSION, s->tracker, h.sender, s->receiver, ms(s->rtt_ns));
}

static void src_reserve(struct src *s)
{
	struct dt_msg_reserve r = { .region_size = s->size, .populated = s->populated };
	struct dt_msg_attach a;

	set_stage(ST_RESERVE);
	src_send(s, DT_MSG_RESERVE, &r, sizeof(r));
	src_expect(s, DT_MSG_RESERVED, NULL, 0);
	s->data = src_connect(s);
	memcpy(a.session, s->session, sizeof(a.session));
	dt_proto_mac(C.token, C.token_len, "dt-migrate attach", s->nonce_d, DT_PROTO_NONCE,
		     s->session, DT_PROTO_SESSION, a.mac);
	if (dt_msg_send(s->data, DT_MSG_ATTACH, &a, sizeof(a)))
		src_fail(s, errno, "attaching the data connection: %s", strerror(errno));
	s->new_stream = true;
	say("  region of %llu MiB reserved on the destination",
	    (unsigned long long)(s->size >> 20));
}

/* ---- send: rejoining after a cut ------------------------------------ */

/*
 * Can this migration survive a cut? Not a cold one (nothing tracks the
 * pages while it waits); with the module's sender only if STREAM reports
 * what a harvest took (DIRTYTRACK_FEAT_STREAM_SENT).
 */
static void src_rejoin_setup(struct src *s)
{
	uint64_t have = 0;
	int dev;

	if (!s->reconnect_timeout)
		return;
	if (s->cold) {
		s->reconnect_timeout = 0;
		return;
	}
	if (s->user_sender)
		return;
	dev = dt_open();
	if (dev >= 0) {
		dt_api(dev, DIRTYTRACK_FEAT_STREAM_SENT, &have);
		close(dev);
	}
	if (!(have & DIRTYTRACK_FEAT_STREAM_SENT)) {
		fprintf(stderr, "dt-migrate: this module cannot say what STREAM sent "
			"(no DIRTYTRACK_FEAT_STREAM_SENT): a cut of the connection will abort\n");
		s->reconnect_timeout = 0;
		return;
	}
	s->sent = calloc(1, dt_bitmap_bytes(s->npages));
	if (!s->sent)
		src_fail(s, ENOMEM, "out of memory");
}

/*
 * One attempt: a control connection that proves the session (CHALLENGE,
 * REJOIN, REJOINED), then the data connection. 0, or -errno to try again;
 * a REFUSE (the destination gave up) aborts.
 */
static int src_rejoin_once(struct src *s, struct dt_msg_rejoined *rj)
{
	struct dt_msg_challenge ch;
	struct dt_msg_rejoin j = { 0 };
	struct dt_msg_attach a;
	uint8_t mac[DT_PROTO_MAC];
	int fd = connect_once(s), ret;

	if (fd < 0)
		return fd;
	ret = dt_msg_recv(fd, &s->msg, C.io_timeout * 1000);
	if (!ret)
		ret = dt_msg_expect(&s->msg, DT_MSG_CHALLENGE, &ch, sizeof(ch));
	if (!ret) {
		memcpy(s->nonce_d, ch.nonce, sizeof(ch.nonce));
		memcpy(j.session, s->session, sizeof(j.session));
		if (getrandom(s->nonce_s, sizeof(s->nonce_s), 0) != sizeof(s->nonce_s))
			src_fail(s, errno, "getrandom: %s", strerror(errno));
		memcpy(j.nonce, s->nonce_s, sizeof(j.nonce));
		dt_proto_mac(C.token, C.token_len, "dt-migrate rejoin", s->nonce_d,
			     DT_PROTO_NONCE, s->session, DT_PROTO_SESSION, j.mac);
		ret = dt_msg_send(fd, DT_MSG_REJOIN, &j, sizeof(j));
	}
	if (!ret)
		ret = dt_msg_recv(fd, &s->msg, C.io_timeout * 1000);
	if (!ret && s->msg.hdr.type == DT_MSG_REFUSE) {
		s->ctl = fd;
		src_peer_refused(s);
	}
	if (!ret)
		ret = dt_msg_expect(&s->msg, DT_MSG_REJOINED, rj, sizeof(*rj));
	if (ret) {
		close(fd);
		if (!link_errno(ret))
			src_fail(s, ret, "rejoining: %s", strerror(-ret));
		return ret;
	}
	dt_proto_mac(C.token, C.token_len, "dt-migrate rejoined", s->nonce_s, DT_PROTO_NONCE,
		     s->nonce_d, DT_PROTO_NONCE, mac);
	if (dt_proto_mac_cmp(mac, rj->mac)) {
		close(fd);
		src_fail(s, EACCES, "rejoining: the destination does not hold the token");
	}
	s->ctl = fd;
	s->data = connect_once(s);
	if (s->data < 0) {
		ret = s->data;
		close(s->ctl);
		s->ctl = s->data = -1;
		return ret;
	}
	memcpy(a.session, s->session, sizeof(a.session));
	dt_proto_mac(C.token, C.token_len, "dt-migrate attach", s->nonce_d, DT_PROTO_NONCE,
		     s->session, DT_PROTO_SESSION, a.mac);
	ret = dt_msg_send(s->data, DT_MSG_ATTACH, &a, sizeof(a));
	if (ret) {
		close(s->ctl);
		close(s->data);
		s->ctl = s->data = -1;
	}
	return ret;
}

static uint64_t bitmap_count(const uint64_t *map, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(map[w]);
	return n;
}

/* Keep the bits of map past its first *skip set ones (counting them off). */
static void keep_after(uint64_t *out, const uint64_t *map, uint64_t npages, uint64_t *skip)
{
	for (uint64_t p = 0; (p = dt_bitmap_next(map, npages, p)) < npages; p++) {
		if (*skip)
			(*skip)--;
		else
			out[p / 64] |= 1ULL << (p % 64);
	}
}

/*
 * The cut round: its marker arrived (only the ack was lost), or the
 * destination holds its first cut_records records; the pages after those
 * go first in the next round (s->pre), the same round number again.
 */
static void src_rejoin_round(struct src *s, const struct dt_msg_rejoined *rj)
{
	struct round *r = &s->rounds[s->nrounds % MAX_ROUNDS_KEPT];
	uint64_t skip = rj->cut_records, *left;

	s->cut_pages = 0;
	if (s->in_round && rj->rounds == s->nrounds + 1 && !rj->cut_records) {
		/* Whole: as if acknowledged, with the destination's count. */
		r->records = rj->last_count;
		r->acked_ns = mono_ns();
		s->in_round = false;
		free(s->pre);
		s->pre = NULL;
		s->npre = 0;
		s->nrounds++;
		s->total_records += r->records;
		s->total_bytes += r->bytes;
	} else if (rj->rounds != s->nrounds || (!s->in_round && rj->cut_records)) {
		src_fail(s, EILSEQ, "rejoining: the destination holds %llu rounds and %llu "
			 "records of the next; %llu rounds were sent",
			 (unsigned long long)rj->rounds, (unsigned long long)rj->cut_records,
			 (unsigned long long)s->nrounds);
	} else if (s->in_round) {
		left = calloc(1, dt_bitmap_bytes(s->npages));
		if (!left)
			src_fail(s, ENOMEM, "out of memory");
		if (s->pre)
			keep_after(left, s->pre, s->npages, &skip);
		s->cut_pages = s->npre + (s->main_range ? s->npages :
					  bitmap_count(s->user_sender ? s->bitmap : s->sent,
						       s->npages));
		if (s->main_range) {
			for (uint64_t p = skip; p < s->npages; p++)
				left[p / 64] |= 1ULL << (p % 64);
			skip = skip > s->npages ? skip - s->npages : 0;
		} else {
			keep_after(left, s->user_sender ? s->bitmap : s->sent, s->npages, &skip);
		}
		if (skip)
			src_fail(s, EILSEQ, "rejoining: the destination holds %llu records more "
				 "of round %llu than were sent", (unsigned long long)skip,
				 (unsigned long long)r->round);
		free(s->pre);
		s->pre = left;
		s->npre = bitmap_count(left, s->npages);
		s->total_records += rj->cut_records;
		s->in_round = false;
	}
	if (rj->total_records != s->total_records)
		src_fail(s, EILSEQ, "rejoining: the destination applied %llu records, %llu were "
			 "sent in whole rounds and the cut one",
			 (unsigned long long)rj->total_records,
			 (unsigned long long)s->total_records);
}

/*
 * After src_lost(): reconnect until --reconnect-timeout (a refusal, or a
 * destination that proves no token, aborts), learn what the destination
 * holds, and go on from there on a new stream.
 */
static void src_rejoin(struct src *s)
{
	uint64_t end = s->t_lost + (uint64_t)s->reconnect_timeout * 1000000000ULL;
	struct dt_msg_rejoined rj;
	json_object *o;
	int ret;

	for (;;) {
		src_check_signal(s);
		ret = src_rejoin_once(s, &rj);
		if (!ret)
			break;
		if (mono_ns() >= end)
			src_fail(s, ETIMEDOUT, "%s; no reconnection within --reconnect-timeout "
				 "%d s (last try: %s)", s->lost_why, s->reconnect_timeout,
				 strerror(-ret));
		usleep(500000);
	}
	src_rejoin_round(s, &rj);
	s->round_base = s->nrounds;
	s->new_stream = true;
	if (s->thr_level)	/* lifted while the link was down */
		src_throttle_set(s, s->thr_level);
	o = json_object_new_object();
	json_object_object_add(o, "stage", json_object_new_string(dt_stage_name(C.stage)));
	json_object_object_add(o, "why", json_object_new_string(s->lost_why));
	json_object_object_add(o, "rounds_whole", json_object_new_uint64(rj.rounds));
	json_object_object_add(o, "cut_records", json_object_new_uint64(rj.cut_records));
	json_object_object_add(o, "cut_round_pages", json_object_new_uint64(s->cut_pages));
	json_object_object_add(o, "resent_first", json_object_new_uint64(s->npre));
	json_object_object_add(o, "lost_ms", json_object_new_double(ms(mono_ns() - s->t_lost)));
	json_object_array_add(s->rejoins, o);
	say("  reconnected after %.1f ms: the destination holds %llu rounds and %llu "
	    "records of round %llu; %llu pages go again first", ms(mono_ns() - s->t_lost),
	    (unsigned long long)rj.rounds, (unsigned long long)rj.cut_records,
	    (unsigned long long)s->nrounds, (unsigned long long)s->npre);
}

/* ---- send: the control socket (--control) and pausing ------------ */

/* State for dt-migrate ctl; called with s->cl.lock held. */
static const char *src_ctl_state(const struct src *s)
{
	if (s->cl.cancel)
		return "cancelling";
	if (s->cl.paused)
		return s->cl.pause ? "paused" : "resuming";
	if (s->cl.pause)
		return "pausing";
	return s->cl.late ? "committing" : "running";
}

/*
 * On the control thread: one command of dt-migrate ctl. pause waits up to
 * 30 s for the migration to reach a pause point, so that its answer says
 * "paused"; the others answer at once. Every answer carries the status.
 */
static void src_ctl_handler(void *ctx, const char *cmd, char *reply, size_t len)
{
	struct src *s = ctx;
	json_object *o = json_object_new_object();
	const char *err = NULL;
	int stage;

	pthread_mutex_lock(&s->cl.lock);
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "cancel")) {
		if (s->cl.late)
			err = "too late: the migration is committing";
		else if (!strcmp(cmd, "cancel"))
			__atomic_store_n(&s->cl.cancel, true, __ATOMIC_RELAXED);
		else if (s->cold)
			err = "a cold migration cannot pause: its workload is frozen and not tracked";
		else
			s->cl.pause = true;
		if (!err && !strcmp(cmd, "pause")) {
			struct timespec t;

			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_sec += 30;
			while (!s->cl.paused && s->cl.pause && !s->cl.late &&
			       pthread_cond_timedwait(&s->cl.cond, &s->cl.lock, &t) != ETIMEDOUT)
				;
		}
	} else if (!strcmp(cmd, "resume")) {
		if (!s->cl.pause)
			err = "not paused";
		s->cl.pause = false;
	} else if (!strcmp(cmd, "step")) {
		uint64_t n = s->cl.npauses;
		struct timespec t;

		if (!s->cl.paused || !s->cl.pause || s->cl.step)
			err = "not paused";
		else
			s->cl.step = true;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_sec += 30;
		while (!err && s->cl.npauses == n && s->cl.pause && !s->cl.late &&
		       pthread_cond_timedwait(&s->cl.cond, &s->cl.lock, &t) != ETIMEDOUT)
			;
	} else if (strcmp(cmd, "status")) {
		err = "unknown command: pause, step, resume, cancel or status";
	}
	stage = __atomic_load_n(&C.stage, __ATOMIC_RELAXED);	/* after any wait */
	json_object_object_add(o, "ok", json_object_new_boolean(!err));
	if (err)
		json_object_object_add(o, "error", json_object_new_string(err));
	json_object_object_add(o, "state", json_object_new_string(src_ctl_state(s)));
	json_object_object_add(o, "stage", json_object_new_int(stage));
	json_object_object_add(o, "stage_name", json_object_new_string(dt_stage_name(stage)));
	json_object_object_add(o, "rounds", json_object_new_uint64(s->cl.rounds));
	json_object_object_add(o, "bytes_sent", json_object_new_uint64(s->cl.bytes));
	json_object_object_add(o, "pages_left", json_object_new_uint64(s->cl.left));
	json_object_object_add(o, "dirty_rate_pps", json_object_new_double(s->cl.dirty_rate));
	json_object_object_add(o, "link_rate_Bps", json_object_new_double(s->cl.link_rate));
	json_object_object_add(o, "predicted_blackout_ms", isfinite(s->cl.pred) ?
			       json_object_new_double(s->cl.pred) : NULL);
	json_object_object_add(o, "elapsed_ms", json_object_new_double(ms(mono_ns() - s->t0)));
	json_object_object_add(o, "pauses", json_object_new_uint64(s->cl.npauses));
	json_object_object_add(o, "paused_within_round", json_object_new_boolean(s->cl.within));
	json_object_object_add(o, "paused_ms", json_object_new_double(ms(s->cl.paused_ns)));
	pthread_mutex_unlock(&s->cl.lock);
	snprintf(reply, len, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void src_ctl_open(struct src *s)
{
	int err;

	pthread_mutex_init(&s->cl.lock, NULL);
	pthread_cond_init(&s->cl.cond, NULL);
	s->pauses = json_object_new_array();
	json_set("pauses", s->pauses);	/* filled by src_pause() */
	json_set("paused_ms", json_object_new_double(0));
	if (!s->control_path)
		return;
	s->cl.srv = dt_ctl_listen(s->control_path, src_ctl_handler, s, &err);
	if (!s->cl.srv)
		src_fail(s, err, "--control %s: %s", s->control_path,
			 err == -EADDRINUSE ? "in use (another dt-migrate?) or not a socket" :
			 strerror(-err));
	say("  control socket %s (dt-migrate ctl %s pause|resume|cancel|status)",
	    s->control_path, s->control_path);
}

/* The end, either way: no more commands; a waiting pause is answered. */
static void src_ctl_close(struct src *s)
{
	if (!s->cl.srv)
		return;
	pthread_mutex_lock(&s->cl.lock);
	s->cl.late = true;
	pthread_cond_broadcast(&s->cl.cond);
	pthread_mutex_unlock(&s->cl.lock);
	dt_ctl_close(s->cl.srv);
	s->cl.srv = NULL;
}

static void src_ctl_round(struct src *s, const struct round *r, uint64_t left, double pred)
{
	pthread_mutex_lock(&s->cl.lock);
	s->cl.rounds = s->nrounds;
	s->cl.bytes = s->total_bytes;
	s->cl.left = left;
	s->cl.pred = pred;
	s->cl.dirty_rate = r->dirty_rate;
	s->cl.link_rate = r->link_rate;
	pthread_mutex_unlock(&s->cl.lock);
}

static bool src_pause_wanted(struct src *s)
{
	bool p;

	pthread_mutex_lock(&s->cl.lock);
	p = s->cl.pause && !s->cl.step;
	pthread_mutex_unlock(&s->cl.lock);
	return p;
}

/*
 * Paused: nothing is sent, tracking goes on, the workload runs. PINGs
 * every third of --io-timeout keep both sides sure of each other; the
 * destination keeps what it has. Returns on resume; cancel, a signal, a
 * peer gone or --pause-timeout abort as anywhere before commitment.
 */
static void src_pause(struct src *s, struct round *r)
{
	uint64_t t0 = mono_ns(), ping = t0, every = (uint64_t)C.io_timeout * 1000000000ULL / 3;
	json_object *o;

	if (!(s->peer_features & DT_PROTO_FEAT_PAUSE)) {
		fprintf(stderr, "dt-migrate: the destination cannot pause (an older "
			"dt-migrate): going on\n");
		pthread_mutex_lock(&s->cl.lock);
		s->cl.pause = false;
		pthread_mutex_unlock(&s->cl.lock);
		return;
	}
	src_send(s, DT_MSG_PAUSE, NULL, 0);
	src_throttle_off(s);
	pthread_mutex_lock(&s->cl.lock);
	s->cl.paused = true;
	s->cl.npauses++;
	s->cl.within = r != NULL;
	pthread_cond_broadcast(&s->cl.cond);
	pthread_mutex_unlock(&s->cl.lock);
	say("  paused in stage %d %s, %s round %llu (dt-migrate ctl %s resume|cancel)",
	    C.stage, dt_stage_name(C.stage), r ? "within" : "after",
	    (unsigned long long)(r ? r->round : s->nrounds - (s->nrounds > 0)),
	    s->control_path);
	while (src_pause_wanted(s)) {
		struct pollfd p = { .fd = s->ctl, .events = POLLIN };
		uint64_t now;

		src_check_signal(s);
		now = mono_ns();
		if (s->pause_timeout && now - t0 > (uint64_t)s->pause_timeout * 1000000000ULL)
			src_fail(s, ETIMEDOUT, "paused for more than --pause-timeout %d s",
				 s->pause_timeout);
		if (now - ping >= every) {
			struct dt_msg_ping pg = { .t1 = tai_ns() };

			src_send(s, DT_MSG_PING, &pg, sizeof(pg));
			src_expect(s, DT_MSG_PONG, &pg, sizeof(pg));
			ping = now;
		}
		/* Only REFUSE (or the connection's end) may come unasked. */
		if (poll(&p, 1, 200) > 0) {
			int ret = dt_msg_recv(s->ctl, &s->msg, C.io_timeout * 1000);

			if (ret)
				src_fail(s, ret, "paused: the destination's connection: %s",
					 strerror(-ret));
			if (s->msg.hdr.type == DT_MSG_REFUSE)
				src_peer_refused(s);
			src_fail(s, EPROTO, "paused: unexpected %s from the destination",
				 dt_msg_name(s->msg.hdr.type));
		}
	}
	t0 = mono_ns() - t0;
	if (r)
		r->paused_ns += t0;
	pthread_mutex_lock(&s->cl.lock);
	s->cl.step = false;	/* a step leaves pause set: the next point pauses */
	s->cl.paused = false;
	s->cl.paused_ns += t0;
	pthread_mutex_unlock(&s->cl.lock);
	o = json_object_new_object();
	json_object_object_add(o, "stage", json_object_new_int(C.stage));
	json_object_object_add(o, "round", json_object_new_uint64(r ? r->round : s->nrounds));
	json_object_object_add(o, "mid_round", json_object_new_boolean(r != NULL));
	json_object_object_add(o, "duration_ms", json_object_new_double(ms(t0)));
	json_object_array_add(s->pauses, o);
	json_set("paused_ms", json_object_new_double(ms(s->cl.paused_ns)));
	src_send(s, DT_MSG_RESUME, NULL, 0);
	if (s->thr_level)
		src_throttle_set(s, s->thr_level);
	say("  resumed after %.1f s", (double)t0 / 1e9);
}

/*
 * A pause point: between stages before commitment, between rounds, and
 * within a pre-copy round between two sends (r: that round).
 */
static void src_pause_point(struct src *s, struct round *r)
{
	if (s->cl.srv && src_pause_wanted(s))
		src_pause(s, r);
}

static uint64_t src_faults(struct src *s)
{
	struct dirtytrack_stats st;

	return dt_stats(s->rfd, &st) ? 0 : st.write_faults;
}

/* Bytes still unacknowledged by the peer's TCP. */
static int outq(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) ? 0 : n;
}

static bool all_zero(const char *p)
{
	static const char zero[PS];

	return !memcmp(p, zero, PS);
}

/*
 * One round by the user sender: the pages set in s->bitmap, each copied
 * out with pread(2) (a consistent copy: a write after the harvest is
 * caught by the next one) and sent with its CRC over the copy.
 */
/* Send a record for each page set in map, in page order (user sender). */
static int user_send_map(struct src *s, struct round *r, const uint64_t *map)
{
	struct dirtytrack_wire_rec recs[64];
	struct iovec iov[129];
	uint64_t p = 0;
	int ret;

	for (;;) {
		int n = 0, v = 0;

		for (; n < 64 && (p = dt_bitmap_next(map, s->npages, p)) < s->npages; p++) {
			char *buf = s->pagebuf + (size_t)n * PS;

			if (pread(s->rfd, buf, PS, (off_t)(p * PS)) != (ssize_t)PS)
				return errno ? -errno : -EIO;
			if (all_zero(buf)) {
				dt_wire_rec_zero(&recs[n], p);
				iov[v++] = (struct iovec){ &recs[n], DT_WIRE_REC_SIZE };
			} else {
				dt_wire_rec_page(&recs[n], p, buf);
				iov[v++] = (struct iovec){ &recs[n], DT_WIRE_REC_SIZE };
				iov[v++] = (struct iovec){ buf, PS };
				r->pages++;
			}
			n++;
		}
		if (!n)
			return 0;
		ret = dt_proto_sendv(s->data, iov, v);
		if (ret)
			return ret;
		r->records += (uint64_t)n;
		r->bytes += (uint64_t)n * DT_WIRE_REC_SIZE + (uint64_t)(v - n) * PS;
		progress("stage %d round %llu: %llu pages sent", C.stage,
			 (unsigned long long)r->round, (unsigned long long)r->records);
		src_check_signal(s);
		if (C.stage == ST_PRECOPY)
			src_pause_point(s, r);
	}
}

/* One round by the user sender: what a cut left, then s->bitmap. */
static int user_round(struct src *s, struct round *r, bool header)
{
	struct dirtytrack_wire_rec end;
	struct dirtytrack_wire_hdr h;
	struct iovec iov[1];
	int ret;

	if (header) {
		dt_wire_hdr_init(&h, s->size);
		iov[0] = (struct iovec){ &h, sizeof(h) };
		ret = dt_proto_sendv(s->data, iov, 1);
		if (ret)
			return ret;
		r->bytes += sizeof(h);
	}
	ret = s->pre ? user_send_map(s, r, s->pre) : 0;
	if (!ret)
		ret = user_send_map(s, r, s->bitmap);
	if (ret)
		return ret;
	dt_wire_rec_round(&end, r->round - s->round_base, r->records);
	iov[0] = (struct iovec){ &end, sizeof(end) };
	ret = dt_proto_sendv(s->data, iov, 1);
	r->bytes += sizeof(end);
	return ret;
}

/*
 * STREAM from one source until it is done: SRC_BITMAP (map), or range or
 * harvest (map: what it took, or NULL), with the round's marker if asked.
 */
static int kernel_stream(struct src *s, struct round *r, uint32_t flags, uint64_t *map)
{
	struct dirtytrack_stream st = {
		.sockfd = s->data,
		.flags = flags,
		.npages = s->npages,
		.pages = (uintptr_t)map,
		.pages_size = map ? dt_bitmap_bytes(s->npages) : 0,
		.budget = CHUNK_BYTES(s->size),
		.round = r->round - s->round_base,
	};
	int ret;

	do {
		ret = dt_stream(s->rfd, &st);
		if (ret == -EINTR || ret == -EAGAIN) {
			src_check_signal(s);
			continue;
		}
		if (ret)
			return ret;
		if (st.bytes)
			st.flags &= ~DIRTYTRACK_STREAM_HEADER;
		r->records += st.records;
		r->bytes += st.bytes;
		progress("stage %d round %llu: %llu/%llu pages examined, %llu sent", C.stage,
			 (unsigned long long)r->round, (unsigned long long)st.next,
			 (unsigned long long)s->npages, (unsigned long long)r->records);
		src_check_signal(s);
		/* Not after the marker: its ROUND_ACK must find us waiting. */
		if (C.stage == ST_PRECOPY && (!st.done || !(flags & DIRTYTRACK_STREAM_END_ROUND)))
			src_pause_point(s, r);
	} while (!st.done);
	return 0;
}

/* One round by the module's STREAM: what a cut left, then range or harvest. */
static int kernel_round(struct src *s, struct round *r, bool range, bool header)
{
	uint32_t hdr = header ? DIRTYTRACK_STREAM_HEADER : 0;
	int ret = 0;

	if (s->sent && !range)
		memset(s->sent, 0, dt_bitmap_bytes(s->npages));
	if (s->pre) {
		ret = kernel_stream(s, r, DIRTYTRACK_STREAM_SRC_BITMAP | hdr, s->pre);
		hdr = 0;
	}
	if (!ret)
		ret = kernel_stream(s, r, (range ? DIRTYTRACK_STREAM_SRC_RANGE :
					   DIRTYTRACK_STREAM_SRC_HARVEST) |
				    DIRTYTRACK_STREAM_END_ROUND | hdr, range ? NULL : s->sent);
	if (ret)
		return ret;
	/* bytes = header + records * 32 + data pages * 4096 + marker */
	r->pages = (r->bytes - (header ? DT_WIRE_HDR_SIZE : 0) - DT_WIRE_REC_SIZE -
		    r->records * DT_WIRE_REC_SIZE) / PS;
	return 0;
}

/*
 * Wait for the destination's ROUND_ACK of round r. Fails a peer that
 * neither acknowledges bytes (SIOCOUTQ) nor answers for --io-timeout.
 */
static void src_wait_ack(struct src *s, struct round *r)
{
	uint64_t last_change = mono_ns();
	int last_q = outq(s->data);

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = s->ctl, .events = POLLIN },
			{ .fd = s->data, .events = 0 },
		};
		struct dt_msg_round_ack a;
		int n = poll(p, 2, 200), q;

		src_check_signal(s);
		if (n < 0 && errno != EINTR)
			src_fail(s, errno, "poll: %s", strerror(errno));
		if (p[1].revents & (POLLERR | POLLHUP)) {
			int err = 0;
			socklen_t len = sizeof(err);

			getsockopt(s->data, SOL_SOCKET, SO_ERROR, &err, &len);
			src_io_fail(s, err ? err : ECONNRESET, "data connection: %s",
				 strerror(err ? err : ECONNRESET));
		}
		if (p[0].revents) {
			src_expect(s, DT_MSG_ROUND_ACK, &a, sizeof(a));
			if (a.round != r->round || a.records != r->records ||
			    a.total_records != s->total_records + r->records)
				src_fail(s, EILSEQ, "round %llu acknowledged as round %llu with "
					 "%llu records (sent %llu)",
					 (unsigned long long)r->round, (unsigned long long)a.round,
					 (unsigned long long)a.records,
					 (unsigned long long)r->records);
			r->acked_ns = mono_ns();
			return;
		}
		q = outq(s->data);
		if (q != last_q) {
			last_q = q;
			last_change = mono_ns();
		} else if (mono_ns() - last_change > (uint64_t)C.io_timeout * 1000000000ULL) {
			src_io_fail(s, ETIMEDOUT, "no progress for %d s waiting for round %llu's "
				 "acknowledgement", C.io_timeout, (unsigned long long)r->round);
		}
	}
}

static double link_rate(const struct src *s)
{
	uint64_t bytes = 0, ns = 0;

	for (uint64_t i = 0; i < s->nrounds && i < MAX_ROUNDS_KEPT; i++) {
		bytes += s->rounds[i].bytes;
		ns += s->rounds[i].acked_ns - s->rounds[i].start_ns - s->rounds[i].paused_ns;
	}
	return ns ? (double)bytes * 1e9 / (double)ns : 0;
}

/* Run round number nr: harvest (or range) and send, then wait for its ack. */
/* Harvest a round and queue it; src_round_acked() completes it. */
static struct round *src_round_queue(struct src *s, bool range)
{
	struct round *r = &s->rounds[s->nrounds % MAX_ROUNDS_KEPT];
	uint64_t nd;
	int ret;

	memset(r, 0, sizeof(*r));
	r->round = s->nrounds;
	r->faults0 = s->tracking && !s->ptes ? src_faults(s) : 0;
	r->start_ns = mono_ns();
	s->in_round = true;
	s->main_range = range;
	if (s->user_sender) {
		if (range)
			memset(s->bitmap, 0xff, dt_bitmap_bytes(s->npages));
		else if ((ret = s->ptes ? ptes_harvest(s, &nd) :
			  dt_harvest_bitmap(s->rfd, 0, s->npages, s->bitmap, NULL, &nd)))
			src_fail(s, ret, "%s harvest: %s", s->tracker,
				 ret == -EAGAIN ? s->wl.why : strerror(-ret));
		if (range && s->npages % 64)
			s->bitmap[s->npages / 64] &= (1ULL << (s->npages % 64)) - 1;
		ret = user_round(s, r, s->new_stream);
	} else {
		ret = kernel_round(s, r, range, s->new_stream);
	}
	if (!ret)
		s->new_stream = false;
	if (ret == -EPIPE || ret == -ECONNRESET)
		src_io_fail(s, ret, "the destination closed the data connection");
	if (ret)
		src_io_fail(s, ret, "round %llu: %s", (unsigned long long)r->round,
			    strerror(-ret));
	r->queued_ns = mono_ns();
	r->queued_tai = tai_ns();
	return r;
}

/* Wait for the destination's acknowledgement of round r, and count it. */
static void src_round_acked(struct src *s, struct round *r)
{
	src_wait_ack(s, r);
	s->in_round = false;
	free(s->pre);		/* what a cut left has arrived */
	s->pre = NULL;
	s->npre = 0;
	if (r->round > 0) {
		const struct round *prev = &s->rounds[(r->round - 1) % MAX_ROUNDS_KEPT];
		uint64_t span = r->start_ns - prev->start_ns;

		r->dirty_rate = span ? (double)r->records * 1e9 / (double)span : 0;
	}
	/*
	 * Pages dirtied since this round's harvest: the module counts them; a
	 * soft-dirty estimate is the last dirty rate over the round's time.
	 */
	if (s->tracking && !s->ptes)
		r->dirtied = src_faults(s) - r->faults0;
	else if (s->tracking)
		r->dirtied = (uint64_t)(r->dirty_rate * (double)(r->acked_ns - r->start_ns) / 1e9);
	r->link_rate = (double)r->bytes * 1e9 / (double)(r->acked_ns - r->start_ns - r->paused_ns);
	s->nrounds++;
	s->total_records += r->records;
	s->total_bytes += r->bytes;
}

static struct round *src_round(struct src *s, bool range)
{
	struct round *r = src_round_queue(s, range);

	src_round_acked(s, r);
	return r;
}

/* ---- send: auto-converge ----------------------------------------- */

/* The workload's cgroup's cpu.max: read (val NULL) into out, or write val. */
static int cpu_max(struct src *s, const char *val, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	int fd, ret = 0;
	ssize_t n;

	if (s->wl.kind != DT_FREEZE_CGROUP)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/cpu.max", s->wl.cgroup);
	fd = open(path, (val ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (val) {
		ret = write(fd, val, strlen(val)) < 0 ? -errno : 0;
	} else {
		n = read(fd, out, len - 1);
		ret = n < 0 ? -errno : 0;
		out[n > 0 ? n : 0] = 0;
		out[strcspn(out, "\n")] = 0;
	}
	close(fd);
	return ret;
}

/*
 * Slow the workload by level % (0: not at all): with the module, a budget
 * of write faults per second (THROTTLE) that is (100 - level) % of the
 * pages the link carries per second; without it, the cgroup's cpu.max at
 * (100 - level) % of this host's CPUs. Returns the budget (0 for cpu.max or
 * none), or -errno.
 */
static int64_t src_throttle_set(struct src *s, int level)
{
	double pps = link_rate(s) / REC_BYTES * (100 - level) / 100;
	uint64_t budget = level ? (pps < 1 ? 1 : (uint64_t)pps) : 0;
	char val[64];
	long period = 100000, cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ret;

	if (!s->thr_cpu && !s->ptes) {
		ret = dt_throttle(s->rfd, budget);
		if (ret != -ENOTTY && ret != -EINVAL)
			return ret ? ret : (int64_t)budget;
	}
	if (s->thr_module)
		return -EOPNOTSUPP;
	s->thr_cpu = true;	/* no module, or one without THROTTLE */
	if (!level)
		return s->thr_saved[0] ? cpu_max(s, s->thr_saved, NULL, 0) : 0;
	if (!s->thr_saved[0]) {
		ret = cpu_max(s, NULL, s->thr_saved, sizeof(s->thr_saved));
		if (ret)
			return ret;
	}
	snprintf(val, sizeof(val), "%ld %ld",
		 period * (cpus > 0 ? cpus : 1) * (100 - level) / 100, period);
	return cpu_max(s, val, NULL, 0);
}

/* Lift the throttle (pause, abort, the end); the level is kept for a resume. */
static void src_throttle_off(struct src *s)
{
	if (s->thr_level)
		src_throttle_set(s, 0);
}

/*
 * After a pre-copy round that did not converge: once the workload has
 * dirtied pages faster than the link carries them for --throttle-rounds
 * rounds in a row, throttle it at --throttle-initial %; each later round
 * that still does not converge adds --throttle-increment %, up to 99 %, as
 * QEMU's auto-converge does with cpu-throttle-initial/-increment.
 */
static void src_throttle_round(struct src *s, struct round *r)
{
	double link = link_rate(s);
	int64_t ret;
	int level;

	/*
	 * QEMU's trigger: dirtied at least half of what was sent. Not "more
	 * than the link": a working set rewritten every round measures just
	 * the link rate, round after round.
	 */
	s->thr_over = r->dirty_rate * REC_BYTES >= link / 2 ? s->thr_over + 1 : 0;
	if (s->no_throttle || r->round == 0 || (!s->thr_level && s->thr_over < s->thr_rounds))
		return;
	level = s->thr_level ? s->thr_level + s->thr_increment : s->thr_initial;
	level = level > 99 ? 99 : level;
	ret = src_throttle_set(s, level);
	if (ret < 0) {
		fprintf(stderr, "dt-migrate: auto-converge: cannot throttle the workload: %s%s; "
			"going on without\n", strerror((int)-ret), s->thr_cpu ?
			" (cpu.max of its cgroup: is the cpu controller enabled?)" :
			s->thr_module ? " (--throttle-with module: no module write-fault budget "
			"for this region)" : "");
		s->no_throttle = true;
		return;
	}
	if (level != s->thr_level)
		say("  auto-converge: dirtying %.0f pages/s against a link of %.0f: %s",
		    r->dirty_rate, link / REC_BYTES, s->thr_cpu ? "cpu.max" : "write faults");
	s->thr_level = level;
	r->thr_level = level;
	r->thr_pps = s->thr_pps = (uint64_t)ret;
	say("  auto-converge: workload slowed %d %% (%s)", level, !s->thr_cpu ?
	    "the module's write-fault budget" : s->thr_cpu_asked ? "cpu.max of its cgroup" :
	    "cpu.max of its cgroup: no module write-fault budget here");
}

/*
 * Remaining dirty pages: write faults since the last round's harvest began
 * (soft-dirty: estimated, see src_round()).
 */
static double src_predict_ms(struct src *s, uint64_t *left, double *data_ms)
{
	const struct round *r = &s->rounds[(s->nrounds - 1) % MAX_ROUNDS_KEPT];
	double rate = link_rate(s);

	*left = r->dirtied;
	if (*left > s->npages)
		*left = s->npages;
	*data_ms = INFINITY;
	/* Soft-dirty has no dirty rate before its first harvest round. */
	if (rate <= 0 || (s->ptes && s->nrounds < 2))
		return INFINITY;
	*data_ms = (double)*left * REC_BYTES / rate * 1e3;
	return *data_ms + 2 * ms(s->rtt_ns) + 1.0;
}

/*
 * The prediction fits --downtime-limit: stop now, or settle first? One more
 * round is worth it while the last one cut the data still to send (its
 * share of the predicted blackout) to at most 3/4 of what the round before
 * left, and that share is at least 1 ms: rounds are still shrinking, so the
 * final round, and the blackout, will be smaller. With a tracker whose
 * harvest is O(dirty), rounds shrink to a few pages; one whose harvest
 * walks the whole region stops shrinking at what is dirtied during a walk.
 */
static bool src_settle(const struct src *s, double data_ms, double prev_data_ms)
{
	return !s->no_settle && data_ms >= 1.0 && data_ms <= 0.75 * prev_data_ms &&
	       s->nrounds <= (uint64_t)s->max_rounds;
}

static void src_round_line(const struct round *r, uint64_t left, double pred)
{
	say("  round %llu: %llu pages (%llu zero), %.1f MiB in %.1f ms; dirty %.0f pages/s, "
	    "link %.1f MB/s; %llu pages left, predicted blackout %.1f ms",
	    (unsigned long long)r->round, (unsigned long long)r->records,
	    (unsigned long long)(r->records - r->pages), (double)r->bytes / (1 << 20),
	    ms(r->acked_ns - r->start_ns), r->dirty_rate, r->link_rate / 1e6,
	    (unsigned long long)left, pred);
}

/* Stage 2: round 0, then harvest rounds until the prediction fits. */
static void src_precopy(struct src *s)
{
	uint64_t left;
	double pred, data_ms, prev_data_ms = INFINITY;
	int ret;

	set_stage(ST_PRECOPY);
	if (!s->tracking) {
		ret = s->ptes ? ptes_start(s) : dt_track_start(s->rfd, 0);
		if (!ret && s->ptes)
			ret = data_pages(s, s->data_map);
		if (ret)
			src_fail(s, ret, "starting the %s tracker: %s", s->tracker, strerror(-ret));
		s->tracking = true;
	}
	for (;;) {
		/* Round 0 sends every page; replayed after a cut, what was left. */
		struct round *r = src_round(s, s->nrounds == 0 && !s->pre);

		pred = src_predict_ms(s, &left, &data_ms);
		s->predicted_ms = pred;
		r->predicted = true;
		r->thr_level = s->thr_level;	/* src_throttle_round() may change it */
		r->thr_pps = s->thr_pps;
		r->pred_ms = pred;
		r->data_ms = data_ms;
		src_round_line(r, left, pred);
		src_ctl_round(s, r, left, pred);
		if (pred <= s->downtime_ms) {
			if (!src_settle(s, data_ms, prev_data_ms)) {
				json_set("converged", json_object_new_boolean(1));
				return;
			}
			say("  converged; rounds still shrinking: one more");
			prev_data_ms = data_ms;
			src_pause_point(s, NULL);
			continue;
		}
		prev_data_ms = data_ms;
		src_throttle_round(s, r);
		if (s->nrounds > (uint64_t)s->max_rounds ||
		    (C.timeout && mono_ns() - s->t0 - s->cl.paused_ns >
				  (uint64_t)C.timeout * 1000000000ULL)) {
			if (!s->force)
				src_fail(s, ETIMEDOUT, "pre-copy did not converge: predicted blackout "
					 "%.1f ms > --downtime-limit %d ms after %llu rounds",
					 pred, s->downtime_ms, (unsigned long long)s->nrounds);
			say("  not converging (predicted %.1f ms): forcing stop-and-copy", pred);
			json_set("converged", json_object_new_boolean(0));
			return;
		}
		/* Going into stop-and-copy, a pause waits for the last round's end. */
		src_pause_point(s, NULL);
	}
}

static void src_send_meta(struct src *s, uint64_t *len)
{
	FILE *f;
	size_t n;

	*len = 0;
	if (s->qemu) {
		uint64_t t0 = mono_ns();
		size_t early = s->qmp.state_len;
		json_object *o = json_object_new_object();

		if (dt_qmp_save_state(&s->qmp, C.io_timeout * 1000))
			src_fail(s, EIO, "%s", s->qmp.why);
		say("  QEMU's device state: %.1f KiB (%.1f KiB of it before the stop), the rest "
		    "saved in %.1f ms", s->qmp.state_len / 1024.0, early / 1024.0,
		    ms(mono_ns() - t0));
		json_object_object_add(o, "bytes", json_object_new_uint64(s->qmp.state_len));
		json_object_object_add(o, "before_stop_bytes", json_object_new_uint64(early));
		json_object_object_add(o, "save_ms", json_object_new_double(ms(mono_ns() - t0)));
		json_set("qemu_state", o);
		src_send(s, DT_MSG_META, s->qmp.state, (uint32_t)s->qmp.state_len);
		*len = s->qmp.state_len;
		return;
	}
	if (!s->meta_path)
		return;
	f = fopen(s->meta_path, "rb");
	if (!f)
		src_fail(s, errno, "--meta %s: %s", s->meta_path, strerror(errno));
	n = fread(s->msg.buf, 1, DT_PROTO_MAX_PAYLOAD, f);
	if (ferror(f) || fgetc(f) != EOF) {
		fclose(f);
		src_fail(s, EFBIG, "--meta %s: unreadable or over 1 MiB", s->meta_path);
	}
	fclose(f);
	src_send(s, DT_MSG_META, s->msg.buf, (uint32_t)n);
	*len = n;
}

static void src_probe_event(void *ctx, const struct blackout_event *e)
{
	struct src *s = ctx;

	if (e->type == BO_EV_TX_ROUND)
		s->bo_tx_final = e->ts;	/* the last one is the final round's */
}

/*
 * After the final round: the probe's last run of the workload (nothing of
 * it has run since it was frozen) and the time STREAM queued the round's
 * marker (none with the userspace sender).
 */
static void src_probe_read(struct src *s)
{
	if (!s->bo)
		return;
	while (dt_bo_poll(s->bo, 0, src_probe_event, s) > 0)
		;
	if (!s->qemu)
		s->bo_last_run = dt_bo_state(s->bo)->last_run;
}

/*
 * The last pause point: a pause asked for by now is honoured (false);
 * from here on the answer is "too late".
 */
static bool src_commit_point(struct src *s)
{
	bool go;

	pthread_mutex_lock(&s->cl.lock);
	go = !s->cl.pause;
	if (go) {
		s->cl.late = true;
		pthread_cond_broadcast(&s->cl.cond);
	}
	pthread_mutex_unlock(&s->cl.lock);
	return go;
}

/*
 * Stages 3 and 4: freeze, last round, then the destination's word. False
 * if dt-migrate ctl paused it before COMMIT_REQ: the workload was thawed,
 * the last round was an ordinary one, and pre-copy goes on.
 */
static bool src_stop_and_copy(struct src *s)
{
	struct dt_msg_commit_req req = { 0 };
	struct round *r;
	int ret;

	set_stage(ST_STOPCOPY);
	s->t_freeze = mono_ns();
	s->tai_freeze = tai_ns();
	/*
	 * Lift the throttle between the freeze request and the wait: a writer
	 * asleep for a write-fault slot (killable, not freezable) or starved
	 * by cpu.max would hold up the freeze, and lifted any earlier, a
	 * workload behind its pace would catch up, dirtying pages, first.
	 */
	ret = dt_workload_freeze_start(&s->wl);
	src_throttle_off(s);
	/* QEMU sets up its migration and sends its ROMs before it stops the guest. */
	if (!ret)
		ret = dt_workload_freeze_wait(&s->wl, s->qemu && s->freeze_timeout_ms < C.io_timeout * 1000
					      ? C.io_timeout * 1000 : s->freeze_timeout_ms);
	if (ret)
		src_fail(s, ret, "freeze: %s", s->wl.why);
	s->t_frozen = mono_ns();
	s->tai_frozen = tai_ns();
	/*
	 * QEMU's stop returns once every vCPU has stopped: the last vCPU run
	 * until now is the guest's last. Its vCPU threads may wake later (QEMU
	 * kicks them to run work) without running the guest.
	 */
	if (s->bo && s->qemu)
		s->bo_last_run = dt_bo_state(s->bo)->last_run;
	/* QEMU stopped the guest when it chose to: its STOP event says when. */
	if (s->qemu && s->qmp.stop_ns) {
		struct timespec ts;
		uint64_t ago;

		clock_gettime(CLOCK_REALTIME, &ts);
		ago = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec -
		      (uint64_t)s->qmp.stop_ns;
		if (ago < s->t_frozen - s->t_freeze) {
			s->t_freeze = s->t_frozen - ago;
			s->tai_freeze = s->tai_frozen - ago;
		}
	}
	r = src_round_queue(s, s->cold);
	s->t_final = r->queued_ns;
	s->tai_final = r->queued_tai;
	if (!src_commit_point(s)) {
		ret = dt_workload_thaw(&s->wl);
		if (ret)
			src_fail(s, ret, "thawing the workload to pause: %s", s->wl.why);
		src_round_acked(s, r);
		src_round_line(r, 0, 0);
		src_pause(s, NULL);
		return false;
	}
	src_send_meta(s, &req.meta_len);

	/*
	 * Ask for commitment while the last round is still on its way: the
	 * destination verifies as soon as it has it, and its VERIFIED follows
	 * the round's acknowledgement with no round trip in between.
	 */
	set_stage(ST_COMMIT);
	req.last_round = r->round;
	req.rounds = s->nrounds + 1;
	req.total_records = s->total_records + r->records;
	src_send(s, DT_MSG_COMMIT_REQ, &req, sizeof(req));
	src_round_acked(s, r);
	src_probe_read(s);
	src_round_line(r, 0, 0);
	src_expect(s, DT_MSG_VERIFIED, NULL, 0);
	s->t_verified = mono_ns();
	src_check_signal(s);
	/*
	 * The point of no return: once COMMIT may have reached the destination,
	 * the workload must never run here again.
	 */
	s->committed = true;
	block_signals();
	src_send(s, DT_MSG_COMMIT, NULL, 0);
	return true;
}

static void src_activate(struct src *s)
{
	struct dt_msg_activated a;
	int ret;

	set_stage(ST_ACTIVATE);
	src_expect(s, DT_MSG_ACTIVATED, &a, sizeof(a));
	s->t_activated = mono_ns();
	s->act = a;
	if (a.err)
		src_fail(s, a.err, "the destination could not start the workload: %s",
			 strerror(a.err));
	if (!s->keep_source) {
		ret = dt_workload_kill(&s->wl);
		if (ret)
			fprintf(stderr, "dt-migrate: killing the source workload: %s\n", s->wl.why);
	}
	src_throttle_off(s);
	if (s->tracking)
		dt_track_stop(s->rfd);
	say("  workload started on the destination (pid %d); source workload %s", a.pid,
	    s->qemu ? "left stopped (QEMU's state: postmigrate)" :
	    s->keep_source ? "kept frozen" : "killed");
}

static json_object *round_json(const struct round *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "round", json_object_new_uint64(r->round));
	json_object_object_add(o, "pages", json_object_new_uint64(r->records));
	json_object_object_add(o, "zero_pages", json_object_new_uint64(r->records - r->pages));
	json_object_object_add(o, "bytes", json_object_new_uint64(r->bytes));
	json_object_object_add(o, "duration_ms", json_object_new_double(ms(r->acked_ns -
									   r->start_ns)));
	json_object_object_add(o, "paused_ms", json_object_new_double(ms(r->paused_ns)));
	json_object_object_add(o, "dirty_rate_pps", json_object_new_double(r->dirty_rate));
	json_object_object_add(o, "link_rate_Bps", json_object_new_double(r->link_rate));
	json_object_object_add(o, "write_faults", json_object_new_uint64(r->dirtied));
	json_object_object_add(o, "throttle_level", json_object_new_int(r->thr_level));
	json_object_object_add(o, "throttle_pps", json_object_new_uint64(r->thr_pps));
	/* null for the final round, and where there is no dirty rate yet */
	json_object_object_add(o, "predicted_blackout_ms", r->predicted && isfinite(r->pred_ms) ?
			       json_object_new_double(r->pred_ms) : NULL);
	json_object_object_add(o, "predicted_data_ms", r->predicted && isfinite(r->data_ms) ?
			       json_object_new_double(r->data_ms) : NULL);
	return o;
}

/*
 * The blackout the workload saw, from the probes on both sides (see
 * --help, OUTPUT): null without them. Destination times are brought onto
 * the source's clock with PING's offset.
 */
static json_object *src_probe_report(struct src *s)
{
	const struct dt_msg_activated *a = &s->act;
	json_object *o;
	int64_t off = s->offset_ns;
	uint64_t last = s->bo_last_run, queued = s->bo_tx_final ? s->bo_tx_final : s->tai_final;
	int64_t rx, commit, exec;
	double total;

	if (!s->bo || !last || !a->exec_ns || !a->final_round_ns || !a->commit_ns)
		return NULL;
	rx = (int64_t)a->final_round_ns - off;
	commit = (int64_t)a->commit_ns - off;
	exec = (int64_t)a->exec_ns - off;
	total = (double)(exec - (int64_t)last) / 1e6;
	o = json_object_new_object();
	json_object_object_add(o, "total_ms", json_object_new_double(total));
	json_object_object_add(o, "uncertainty_ms", json_object_new_double(ms(s->rtt_ns) / 2));
	json_object_object_add(o, "freeze_detection_ms", json_object_new_double(
		(double)(int64_t)(s->tai_frozen - last) / 1e6));
	json_object_object_add(o, "final_round_ms", json_object_new_double(
		(double)(int64_t)(queued - s->tai_frozen) / 1e6));
	json_object_object_add(o, "final_transfer_ms",
			       json_object_new_double((double)(rx - (int64_t)queued) / 1e6));
	json_object_object_add(o, "commitment_ms",
			       json_object_new_double((double)(commit - rx) / 1e6));
	json_object_object_add(o, "activation_ms",
			       json_object_new_double((double)(exec - commit) / 1e6));
	/* With --qemu, freeze is QEMU's STOP event: after its vCPUs' last run. */
	json_object_object_add(o, "freeze_ms", json_object_new_double(
		last > s->tai_freeze ? (double)(last - s->tai_freeze) / 1e6 : 0));
	json_object_object_add(o, "last_run_tai_ns", json_object_new_uint64(last));
	json_object_object_add(o, "exec_tai_ns", json_object_new_int64(exec));
	json_object_object_add(o, "probe", json_object_new_string(dt_bo_kind(s->bo)));
	json_object_object_add(o, "measured_by", json_object_new_string(
		"eBPF: the workload's last switch-out on the source (frozen) to its exec "
		"on the destination, CLOCK_TAI, destination corrected by the PING offset; "
		"freeze_ms (request to that last run) is not part of it"));
	return o;
}

static double jd(json_object *o, const char *k)
{
	return json_object_get_double(json_object_object_get(o, k));
}

static void src_probe_line(json_object *bo)
{
	json_object *e = json_object_object_get(bo, "ebpf");
	double sum;

	if (!e)
		return;
	sum = jd(e, "freeze_detection_ms") + jd(e, "final_round_ms") + jd(e, "final_transfer_ms") +
	      jd(e, "commitment_ms") + jd(e, "activation_ms");
	printf("blackout seen by the workload (eBPF): %.1f ms +- %.1f = freeze detection %.1f + "
	       "final round %.1f + final transfer %.1f + commitment %.1f + activation %.1f "
	       "(the parts add up to %.3f ms; freezing took %.1f before it)\n",
	       jd(e, "total_ms"), jd(e, "uncertainty_ms"), jd(e, "freeze_detection_ms"),
	       jd(e, "final_round_ms"), jd(e, "final_transfer_ms"), jd(e, "commitment_ms"),
	       jd(e, "activation_ms"), sum, jd(e, "freeze_ms"));
}

static void src_report(struct src *s)
{
	json_object *rounds = json_object_new_array(), *bo = json_object_new_object();
	double total = ms(s->t_activated - s->t_freeze);
	double freeze = ms(s->t_frozen - s->t_freeze), fin = ms(s->t_final - s->t_frozen);
	double commit = ms(s->t_verified - s->t_final), act = ms(s->t_activated - s->t_verified);

	for (uint64_t i = 0; i < s->nrounds && i < MAX_ROUNDS_KEPT; i++)
		json_object_array_add(rounds, round_json(&s->rounds[i]));
	json_set("status", json_object_new_string("completed"));
	json_set("rounds", rounds);
	json_set("total_ms", json_object_new_double(ms(s->t_activated - s->t0)));
	json_set("setup_ms", json_object_new_double(ms(s->rounds[0].start_ns - s->t0)));
	json_set("rtt_ms", json_object_new_double(ms(s->rtt_ns)));
	json_set("clock_offset_ms", json_object_new_double((double)s->offset_ns / 1e6));
	json_object_object_add(bo, "total_ms", json_object_new_double(total));
	json_object_object_add(bo, "freeze_ms", json_object_new_double(freeze));
	json_object_object_add(bo, "final_round_ms", json_object_new_double(fin));
	json_object_object_add(bo, "commitment_ms", json_object_new_double(commit));
	json_object_object_add(bo, "activation_ms", json_object_new_double(act));
	json_object_object_add(bo, "predicted_ms", json_object_new_double(s->predicted_ms));
	json_object_object_add(bo, "measured_by", json_object_new_string(
		"dt-migrate: source monotonic clock, freeze request to the destination's "
		"confirmation that the workload started"));
	json_object_object_add(bo, "ebpf", src_probe_report(s));
	json_set("blackout", bo);
	json_set("total_rounds", json_object_new_uint64(s->nrounds));
	json_set("total_bytes", json_object_new_uint64(s->total_bytes));
	json_set("total_records", json_object_new_uint64(s->total_records));
	json_write();
	printf("%smigrated %llu MiB in %.1f ms, %llu rounds, %.1f MiB sent; blackout "
	       "%.1f ms = freeze %.1f + final round %.1f + commitment %.1f + "
	       "activation %.1f\n", C.tty && !C.quiet ? "\r\033[K" : "",
	       (unsigned long long)(s->size >> 20), ms(s->t_activated - s->t0),
	       (unsigned long long)s->nrounds, (double)s->total_bytes / (1 << 20),
	       total, freeze, fin, commit, act);
	src_probe_line(bo);
}

static pid_t pid_of_region(const char *path)
{
	int pid;

	return sscanf(path, "/proc/%d/fd/", &pid) == 1 ? pid : 0;
}

/*
 * --qemu without --region: the guest RAM's memory-backend-file, whose
 * mem-path (/proc/self/... is QEMU's own) must be the one region QEMU maps.
 */
static void src_qemu_region(struct src *s)
{
	json_object *args = json_object_new_object(), *list, *path;
	char obj[256];
	int found = 0;

	json_object_object_add(args, "path", json_object_new_string("/objects"));
	if (dt_qmp_cmd(&s->qmp, "qom-list", args, -1, &list, C.io_timeout * 1000))
		src_fail(s, EIO, "--qemu: %s", s->qmp.why);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *o = json_object_array_get_idx(list, i), *name, *type;
		const char *p;

		if (!json_object_object_get_ex(o, "name", &name) ||
		    !json_object_object_get_ex(o, "type", &type) ||
		    strcmp(json_object_get_string(type), "child<memory-backend-file>"))
			continue;
		snprintf(obj, sizeof(obj), "/objects/%s", json_object_get_string(name));
		args = json_object_new_object();
		json_object_object_add(args, "path", json_object_new_string(obj));
		json_object_object_add(args, "property", json_object_new_string("mem-path"));
		if (dt_qmp_cmd(&s->qmp, "qom-get", args, -1, &path, C.io_timeout * 1000)) {
			json_object_put(list);
			src_fail(s, EIO, "--qemu: %s", s->qmp.why);
		}
		p = json_object_get_string(path);
		if (!strncmp(p, "/proc/self/", 11))
			snprintf(s->qemu_region, sizeof(s->qemu_region), "/proc/%d/%s",
				 (int)s->qmp.pid, p + 11);
		else
			snprintf(s->qemu_region, sizeof(s->qemu_region), "%s", p);
		json_object_put(path);
		found++;
	}
	json_object_put(list);
	if (found != 1)
		src_fail(s, EINVAL, "--qemu: QEMU has %d memory-backend-file objects: give --region",
			 found);
	s->region = s->qemu_region;
}

/*
 * --qemu: the workload is a QEMU guest whose RAM is the region, mapped
 * shared from a memory-backend-file. QEMU's own migration, with
 * x-ignore-shared so that it leaves the region out, freezes it (it stops
 * the guest before the switchover) and carries the device state as META;
 * cancelling that migration thaws it. It must be running.
 */
static void src_qemu_open(struct src *s)
{
	char st[32];

	if (dt_qmp_open(&s->qmp, s->qemu, C.io_timeout * 1000) ||
	    dt_qmp_status(&s->qmp, st, sizeof(st), C.io_timeout * 1000))
		src_fail(s, EIO, "--qemu: %s", s->qmp.why);
	if (strcmp(st, "running"))
		src_fail(s, EINVAL, "--qemu: the guest is %s, not running", st);
	if (dt_qmp_ignore_shared(&s->qmp, C.io_timeout * 1000))
		src_fail(s, EIO, "--qemu: %s", s->qmp.why);
	s->qmp.state_max = DT_PROTO_MAX_PAYLOAD;
	if (!s->region)
		src_qemu_region(s);
	s->pid = s->qmp.pid;
	s->keep_source = true;
}

/* A QEMU whose threads have names (-name ...,debug-threads=on) has "CPU N/..." ones. */
static bool qemu_vcpu_named(pid_t pid)
{
	char path[64], comm[32];
	bool named = false;
	struct dirent *e;
	FILE *f;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	while (dir && !named && (e = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/comm", (int)pid, e->d_name);
		f = fopen(path, "r");
		named = f && fgets(comm, sizeof(comm), f) && !strncmp(comm, QEMU_VCPU_COMM,
								      strlen(QEMU_VCPU_COMM));
		if (f)
			fclose(f);
	}
	if (dir)
		closedir(dir);
	return named;
}

static int cmd_send(struct src *s)
{
	int ret;

	s->t0 = mono_ns();
	if (s->qemu)
		src_qemu_open(s);
	if (!s->pid)
		s->pid = pid_of_region(s->region);
	if (!s->pid)
		src_fail(s, EINVAL, "--region %s is not /proc/PID/fd/N: give --pid", s->region);
	src_open_region(s);
	s->reconnect_timeout = C.reconnect_timeout;
	src_rejoin_setup(s);
	ret = s->qemu ? dt_workload_init_qemu(&s->wl, &s->qmp) :
			dt_workload_init(&s->wl, s->freeze, s->pid, s->cgroup);
	if (ret)
		src_fail(s, ret, "workload: %s", s->wl.why);
	s->bo = probe_open(s->rfd);
	if (s->bo && s->qemu && !qemu_vcpu_named(s->pid)) {
		fprintf(stderr, "dt-migrate: blackout probe: QEMU's vCPU threads have no names: "
			"start it with -name NAME,debug-threads=on\n");
		dt_bo_close(s->bo);
		s->bo = NULL;
	}
	if (s->bo) {
		char why[256];

		/*
		 * The tasks that freeze: the cgroup's, or the process's; of a
		 * QEMU, its vCPU threads (its other threads go on).
		 */
		if (dt_bo_target(s->bo, s->wl.kind == DT_FREEZE_CGROUP ? 0 : s->pid,
				 s->wl.kind == DT_FREEZE_CGROUP ? s->wl.cgroup : NULL,
				 s->qemu ? QEMU_VCPU_COMM : NULL, why, sizeof(why))) {
			fprintf(stderr, "dt-migrate: blackout probe: %s\n", why);
			dt_bo_close(s->bo);
			s->bo = NULL;
		}
	}
	if (getrandom(s->session, sizeof(s->session), 0) != sizeof(s->session) ||
	    getrandom(s->nonce_s, sizeof(s->nonce_s), 0) != sizeof(s->nonce_s))
		src_fail(s, errno, "getrandom: %s", strerror(errno));
	json_set("role", json_object_new_string("source"));
	json_set("region_size", json_object_new_uint64(s->size));
	json_set("page_size", json_object_new_uint64(PS));
	json_set("tracker", json_object_new_string(s->tracker));
	json_set("sender", json_object_new_string(s->user_sender ? "user" : "kernel"));
	json_set("freeze", json_object_new_string(s->qemu ? "qmp" :
						  s->freeze == DT_FREEZE_CGROUP ? "cgroup" :
						  "sigstop"));
	json_set("mode", json_object_new_string(s->cold ? "cold" : "live"));
	say("dt-migrate: %s %s (%llu MiB, pid %d) to %s", s->cold ? "cold-migrating" :
	    "migrating", s->region, (unsigned long long)(s->size >> 20), (int)s->pid, s->to);

	src_ctl_open(s);
	src_handshake(s);
	json_set("receiver", json_object_new_string(s->receiver));
	src_pause_point(s, NULL);
	src_reserve(s);
	src_pause_point(s, NULL);
	s->main_thread = pthread_self();
	s->rejoins = json_object_new_array();
	json_set("rejoins", s->rejoins);
	if (sigsetjmp(s->rejoin_jmp, 1))
		src_rejoin(s);
	s->can_rejoin = s->reconnect_timeout > 0 && (s->peer_features & DT_PROTO_FEAT_REJOIN);
	do {
		if (!s->cold)
			src_precopy(s);
	} while (!src_stop_and_copy(s));
	s->can_rejoin = false;
	src_activate(s);
	src_ctl_close(s);
	src_report(s);
	return EXIT_OK;
}

/* ---- receive --------------------------------------------------------- */

struct dst {
	const char *listen;
	char **exec_argv;
	const char *qemu;		/* --qemu: the incoming QEMU's QMP socket */
	struct dt_qmp qmp;
	bool wait, want_user, want_kernel;

	int lfd, ctl, data, rfd;
	bool user;			/* userspace receiver into a memfd */
	char *map;			/* user: the memfd's mapping */
	uint64_t size;
	struct dt_wire_reader rd;	/* user */
	struct dt_msg msg;
	uint8_t nonce_d[DT_PROTO_NONCE], session[DT_PROTO_SESSION];
	char peer[NI_MAXHOST + NI_MAXSERV + 2];

	/* what arrived */
	uint64_t rounds, last_round, total_records, bytes, acked_rounds;
	bool eof;
	int rx_err;
	char *meta;
	uint64_t meta_len;
	struct dt_msg_commit_req req;
	bool have_req, verified;

	pid_t child;			/* --exec, forked at reservation, or 0 */
	int go;				/* its pipe: a byte execs it, EOF ends it */
	int meta_fd;			/* DT_META, created with it */
	char meta_path[PATH_MAX];

	struct dt_bo *bo;		/* the blackout probe, or NULL */
	uint64_t tai_round, tai_commit;	/* CLOCK_TAI: last round acked, COMMIT */
	uint64_t bo_rx_round, bo_exec;	/* the probe's: last marker, the exec */
	uint64_t tai_cont;		/* --qemu: cont asked (bo_exec: a vCPU ran after) */
	bool paused;			/* by the source (PAUSE) */
	uint64_t npauses;

	/*
	 * A cut during the transfer (dst_lost(), dst_rejoin()): rounds are
	 * numbered from 0 on each stream, from round_base in the protocol.
	 */
	bool can_rejoin;		/* rejoin_jmp is armed */
	sigjmp_buf rejoin_jmp;
	uint64_t t_lost;
	char lost_why[200];
	uint64_t round_base;		/* rounds whole when this stream began */
	uint64_t cut_records;		/* records applied since the last marker */
	uint64_t stream_records;	/* total_records when this stream began (user) */
	uint64_t last_count;		/* the last whole round's count */
	bool new_stream;		/* the next RECEIVE starts a stream (RESET) */
	bool peer_rejoins;		/* the source will reconnect (its HELLO) */
	uint64_t nrejoins;
};

static void __attribute__((noreturn)) dst_fail(struct dst *d, int err, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	send_refuse(d->ctl, err, why);
	/*
	 * Nothing is left behind: the region goes with its last fd, and the
	 * child waiting to exec holds one until it has seen EOF and exited.
	 */
	if (d->rfd >= 0)
		close(d->rfd);
	if (d->map)
		munmap(d->map, d->size);
	if (d->child > 0) {
		if (d->qemu)
			kill(d->child, SIGKILL);	/* it holds the region too */
		else
			close(d->go);
		while (waitpid(d->child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (d->meta_path[0])
		unlink(d->meta_path);
	fflush(stdout);
	fprintf(stderr, "dt-migrate: stage %d %s: %s\n"
		"dt-migrate: migration aborted; no region is kept\n",
		C.stage, dt_stage_name(C.stage), why);
	json_set("status", json_object_new_string("aborted"));
	json_set("error", json_object_new_string(why));
	json_set("failed_stage", json_object_new_string(dt_stage_name(C.stage)));
	json_write();
	exit(EXIT_ABORTED);
}

static void dst_check_signal(struct dst *d)
{
	if (stop_signal)
		dst_fail(d, EINTR, "interrupted by %s", strsignal(stop_signal));
}

/*
 * A connection was cut during the transfer: close both, keep the region
 * and what arrived, and go back to cmd_receive() to wait for the source
 * (dst_rejoin()). A verification or META from before the cut no longer
 * counts: the source starts stop-and-copy over.
 */
static void __attribute__((noreturn)) dst_lost(struct dst *d, const char *why)
{
	d->can_rejoin = false;
	/* A QEMU takes its device state once: a second stop-and-copy has nowhere to go. */
	if (d->qemu && d->verified)
		dst_fail(d, EPIPE, "%s after QEMU loaded the device state", why);
	d->t_lost = mono_ns();
	snprintf(d->lost_why, sizeof(d->lost_why), "%s", why);
	close(d->ctl);
	close(d->data);
	d->ctl = d->data = -1;
	d->eof = false;
	d->have_req = d->verified = d->paused = false;
	free(d->meta);
	d->meta = NULL;
	d->meta_len = 0;
	if (C.tty && !C.quiet)
		fputs("\r\033[K", stdout);
	say("  stage %d: connection lost (%s); waiting up to %d s for the source to "
	    "reconnect", C.stage, why, C.reconnect_timeout);
	siglongjmp(d->rejoin_jmp, 1);
}

/* A failure on a connection: survived by a rejoin where one is allowed. */
static void __attribute__((noreturn, format(printf, 3, 4)))
dst_io_fail(struct dst *d, int err, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (d->can_rejoin && link_errno(err))
		dst_lost(d, why);
	dst_fail(d, err, "%s", why);
}

static void dst_listen(struct dst *d)
{
	struct addrinfo *ai, *a;
	int one = 1, ret = resolve(d->listen, true, &ai);

	if (ret)
		dst_fail(d, EINVAL, "cannot resolve --listen %s", d->listen);
	d->lfd = -1;
	for (a = ai; a && d->lfd < 0; a = a->ai_next) {
		d->lfd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (d->lfd < 0)
			continue;
		setsockopt(d->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(d->lfd, a->ai_addr, a->ai_addrlen) || listen(d->lfd, 4)) {
			ret = -errno;
			close(d->lfd);
			d->lfd = -1;
		}
	}
	freeaddrinfo(ai);
	if (d->lfd < 0)
		dst_fail(d, ret, "listening on %s: %s", d->listen, strerror(-ret));
}

/*
 * Accept one connection within timeout_ms (-1: none). Polls in short
 * steps, so that a signal that lands just before poll() is seen too.
 */
static int dst_accept(struct dst *d, int timeout_ms)
{
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : mono_ns() + (uint64_t)timeout_ms * 1000000;
	struct pollfd p = { .fd = d->lfd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	int n, fd;

	do {
		dst_check_signal(d);
		if (mono_ns() >= end)
			return -ETIMEDOUT;
		n = poll(&p, 1, 200);
		if (n < 0 && errno != EINTR)
			return -errno;
	} while (n <= 0);
	fd = accept4(d->lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	tune_socket(fd);
	if (!getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
			 NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(d->peer, sizeof(d->peer), "%s:%s", host, port);
	return fd;
}

/* Turn away a peer that failed the handshake, and keep listening. */
static void dst_reject(struct dst *d, int fd, int err, const char *why)
{
	send_refuse(fd, err, why);
	close(fd);
	fprintf(stderr, "dt-migrate: rejected %s: %s\n", d->peer, why);
}

/* One handshake on fd: 0 when the source proved the token. */
static int dst_handshake(struct dst *d, int fd)
{
	struct dt_msg_challenge ch = { .version = DT_PROTO_VERSION };
	struct dt_msg_welcome w = { 0 };
	struct dt_msg_hello h;
	uint8_t mac[DT_PROTO_MAC];
	int ret;

	if (getrandom(d->nonce_d, sizeof(d->nonce_d), 0) != sizeof(d->nonce_d))
		return -errno;
	memcpy(ch.nonce, d->nonce_d, sizeof(ch.nonce));
	ret = dt_msg_send(fd, DT_MSG_CHALLENGE, &ch, sizeof(ch));
	if (!ret)
		ret = dt_msg_recv(fd, &d->msg, C.io_timeout * 1000);
	if (!ret)
		ret = dt_msg_expect(&d->msg, DT_MSG_HELLO, &h, sizeof(h));
	if (ret) {
		dst_reject(d, fd, -ret, ret == -EPROTO ? "not a dt-migrate source" :
			   strerror(-ret));
		return ret;
	}
	dt_proto_mac(C.token, C.token_len, "dt-migrate hello", d->nonce_d, DT_PROTO_NONCE,
		     h.session, DT_PROTO_SESSION, mac);
	if (dt_proto_mac_cmp(mac, h.mac)) {
		dst_reject(d, fd, EACCES, "authentication failed: wrong token");
		return -EACCES;
	}
	if (h.version != DT_PROTO_VERSION || h.page_size != PS) {
		dst_reject(d, fd, EPROTONOSUPPORT, "protocol version or page size not supported");
		return -EPROTONOSUPPORT;
	}
	memcpy(d->session, h.session, sizeof(d->session));
	dt_proto_mac(C.token, C.token_len, "dt-migrate welcome", h.nonce, DT_PROTO_NONCE,
		     d->nonce_d, DT_PROTO_NONCE, w.mac);
	w.features = (d->user ? 0 : DT_PROTO_FEAT_KERNEL_RX) | DT_PROTO_FEAT_PAUSE |
		     (C.reconnect_timeout ? DT_PROTO_FEAT_REJOIN : 0);
	d->peer_rejoins = h.features & DT_PROTO_FEAT_REJOIN;
	snprintf(w.receiver, sizeof(w.receiver), "%s", d->user ? "user" : "kernel");
	ret = dt_msg_send(fd, DT_MSG_WELCOME, &w, sizeof(w));
	if (ret)
		return ret;
	h.tracker[sizeof(h.tracker) - 1] = 0;
	h.sender[sizeof(h.sender) - 1] = 0;
	say("  source %s: protocol %u, %llu MiB, tracker %s, sender %s; receiver %s", d->peer,
	    h.version, (unsigned long long)(h.region_size >> 20), h.tracker, h.sender,
	    d->user ? "user" : "kernel");
	json_set("tracker", json_object_new_string(h.tracker));
	json_set("sender", json_object_new_string(h.sender));
	return 0;
}

/* Messages the destination answers at any time: PING, and REFUSE (abort). */
static bool dst_common_msg(struct dst *d)
{
	struct dt_msg_refuse r;
	struct dt_msg_ping p;

	if (d->msg.hdr.type == DT_MSG_PING && !dt_msg_expect(&d->msg, DT_MSG_PING, &p, sizeof(p))) {
		p.t2 = tai_ns();
		p.t3 = tai_ns();
		if (dt_msg_send(d->ctl, DT_MSG_PONG, &p, sizeof(p)))
			dst_io_fail(d, errno, "sending PONG: %s", strerror(errno));
		return true;
	}
	if ((d->msg.hdr.type == DT_MSG_PAUSE || d->msg.hdr.type == DT_MSG_RESUME) &&
	    !d->msg.hdr.len) {
		d->paused = d->msg.hdr.type == DT_MSG_PAUSE;
		d->npauses += d->paused;
		json_set("pauses", json_object_new_uint64(d->npauses));
		say(d->paused ? "  paused by the source (it keeps this side alive)" :
		    "  resumed by the source");
		return true;
	}
	if (d->msg.hdr.type == DT_MSG_REFUSE && !dt_msg_expect(&d->msg, DT_MSG_REFUSE, &r,
							      sizeof(r))) {
		r.reason[sizeof(r.reason) - 1] = 0;
		dst_fail(d, r.err, "the source aborted: %s", r.reason);
	}
	return false;
}

/* One control message: false if it was one dst_common_msg() handles. */
static bool dst_recv_one(struct dst *d, int timeout_ms)
{
	int ret = dt_msg_recv(d->ctl, &d->msg, timeout_ms);

	dst_check_signal(d);
	if (ret == -ECONNRESET)
		dst_io_fail(d, ret, "the source closed the connection");
	if (ret)
		dst_io_fail(d, ret, "control connection: %s", strerror(-ret));
	return !dst_common_msg(d);
}

/* The next control message that is not a PING, PAUSE or RESUME. */
static void dst_recv(struct dst *d, int timeout_ms)
{
	while (!dst_recv_one(d, timeout_ms))
		;
}

static uint64_t mem_available(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? kb * 1024 : UINT64_MAX;
}

static int user_apply_cb(void *ctx, uint64_t index, const void *page);
static int user_round_cb(void *ctx, uint64_t round, uint64_t count);

/*
 * Stage 1: fork the --exec child now, so that activation costs only its
 * exec. It keeps the region as fd 3 and nothing else of ours, and waits on
 * a pipe: a byte execs it, EOF (an abort, or our death) ends it, and with
 * it its reference to the region.
 */
static void dst_prefork(struct dst *d)
{
	const char *tmp = getenv("TMPDIR");
	int go[2];
	char c;

	if (!d->qemu) {
		snprintf(d->meta_path, sizeof(d->meta_path), "%s/dt-migrate-meta.XXXXXX",
			 tmp ? tmp : "/tmp");
		d->meta_fd = mkostemp(d->meta_path, O_CLOEXEC);
		if (d->meta_fd < 0)
			dst_fail(d, errno, "DT_META file %s: %s", d->meta_path,
				 strerror(errno));
	}
	if (pipe2(go, O_CLOEXEC))
		dst_fail(d, errno, "pipe: %s", strerror(errno));
	d->child = fork();
	if (d->child < 0)
		dst_fail(d, errno, "fork: %s", strerror(errno));
	if (d->child == 0) {
		int in = fcntl(go[0], F_DUPFD_CLOEXEC, 4);

		/* dup2() onto itself would keep close-on-exec. */
		if (in < 0 || (d->rfd == 3 ? fcntl(3, F_SETFD, 0) : dup2(d->rfd, 3)) < 0)
			_exit(127);
		close_range(4, in - 1, 0);
		close_range(in + 1, ~0U, 0);
		setenv("DT_REGION_FD", "3", 1);
		if (!d->qemu)
			setenv("DT_META", d->meta_path, 1);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		/* A QEMU starts now, to wait for its device state (-incoming defer). */
		if (!d->qemu && read(in, &c, 1) != 1)
			_exit(127);
		execvp(d->exec_argv[0], d->exec_argv);
		fprintf(stderr, "dt-migrate: exec %s: %s\n", d->exec_argv[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	d->go = go[1];
}

/*
 * --qemu: the QEMU just started by --exec, with -incoming defer and the
 * region as its RAM, must answer on its QMP socket, wait for a migration
 * and take x-ignore-shared (the region is not in its stream). Its incoming
 * migration starts now, so that loading the state costs only the load.
 */
static void dst_qemu_open(struct dst *d)
{
	uint64_t end = mono_ns() + (uint64_t)C.io_timeout * 1000000000ULL;
	char st[32];
	int status;

	while (dt_qmp_open(&d->qmp, d->qemu, 200)) {
		if (waitpid(d->child, &status, WNOHANG) == d->child) {
			d->child = 0;
			dst_fail(d, EIO, "QEMU exited (%s %d) before it answered on %s",
				 WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 d->qemu);
		}
		if (mono_ns() > end)
			dst_fail(d, ETIMEDOUT, "--qemu: %s", d->qmp.why);
	}
	if (dt_qmp_status(&d->qmp, st, sizeof(st), C.io_timeout * 1000))
		dst_fail(d, EIO, "--qemu: %s", d->qmp.why);
	if (strcmp(st, "inmigrate"))
		dst_fail(d, EINVAL, "--qemu: QEMU is %s, not waiting for a migration: start it "
			 "with -incoming defer", st);
	if (d->qmp.pid != d->child)
		dst_fail(d, EINVAL, "--qemu: %s is pid %d's, not the --exec QEMU's (%d)",
			 d->qemu, (int)d->qmp.pid, (int)d->child);
	if (dt_qmp_ignore_shared(&d->qmp, C.io_timeout * 1000) ||
	    dt_qmp_incoming(&d->qmp, C.io_timeout * 1000))
		dst_fail(d, EIO, "--qemu: %s", d->qmp.why);
	/*
	 * The blackout ends when a vCPU thread first runs after cont: they
	 * have waited since QEMU started, so that run ends a gap (1 ms is
	 * shorter than any stretch between loading the state and cont).
	 */
	if (d->bo) {
		char why[256];

		if (!qemu_vcpu_named(d->child)) {
			fprintf(stderr, "dt-migrate: blackout probe: QEMU's vCPU threads have no "
				"names: start it with -name NAME,debug-threads=on\n");
		} else if (dt_bo_target(d->bo, d->child, NULL, QEMU_VCPU_COMM, why, sizeof(why))) {
			fprintf(stderr, "dt-migrate: blackout probe: %s\n", why);
		} else {
			dt_bo_set_gap(d->bo, 1000000);
		}
	}
}

/* Stage 1: create the region, or refuse with the reason. */
static void dst_reserve(struct dst *d)
{
	struct dt_msg_reserve r;
	struct stat st;
	int dev, ret;

	set_stage(ST_RESERVE);
	dst_recv(d, C.io_timeout * 1000);
	ret = dt_msg_expect(&d->msg, DT_MSG_RESERVE, &r, sizeof(r));
	if (ret)
		dst_fail(d, EPROTO, "expected RESERVE, got %s", dt_msg_name(d->msg.hdr.type));
	if (!r.region_size || r.region_size % PS)
		dst_fail(d, EINVAL, "region size %llu is not a multiple of the page size",
			 (unsigned long long)r.region_size);
	if (r.populated > r.region_size / PS || r.populated * PS > mem_available())
		dst_fail(d, ENOMEM, "%llu MiB of populated pages exceed this host's "
			 "MemAvailable", (unsigned long long)(r.populated * PS >> 20));
	d->size = r.region_size;
	if (d->user) {
		d->rfd = memfd_create("dt-migrate", MFD_CLOEXEC);
		if (d->rfd < 0 || ftruncate(d->rfd, (off_t)d->size))
			dst_fail(d, errno, "memfd of %llu bytes: %s",
				 (unsigned long long)d->size, strerror(errno));
		d->map = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->rfd, 0);
		if (d->map == MAP_FAILED) {
			d->map = NULL;
			dst_fail(d, errno, "mmap: %s", strerror(errno));
		}
		dt_wire_reader_init(&d->rd, d->size, user_apply_cb, d);
		dt_wire_reader_on_round(&d->rd, user_round_cb);
	} else {
		dev = dt_open();
		ret = dev < 0 ? dev : dt_api(dev, DIRTYTRACK_FEAT_STREAM, NULL);
		ret = ret < 0 ? ret : dt_region_create(dev, d->size);
		if (dev >= 0)
			close(dev);
		if (ret == -EFBIG)
			dst_fail(d, EFBIG, "a region of %llu MiB exceeds this host's max_region_mb",
				 (unsigned long long)(d->size >> 20));
		if (ret < 0)
			dst_fail(d, ret, "creating a region of %llu MiB: %s",
				 (unsigned long long)(d->size >> 20), strerror(-ret));
		d->rfd = ret;
	}
	json_set("region_size", json_object_new_uint64(d->size));
	if (d->bo && !fstat(d->rfd, &st))
		dt_bo_set_region(d->bo, st.st_ino);
	if (d->exec_argv)
		dst_prefork(d);
	if (d->qemu)
		dst_qemu_open(d);
	if (dt_msg_send(d->ctl, DT_MSG_RESERVED, NULL, 0))
		dst_fail(d, errno, "sending RESERVED: %s", strerror(errno));
	say("  region of %llu MiB created", (unsigned long long)(d->size >> 20));
}

/* The data connection: the same source, proving the same session. */
static int dst_attach(struct dst *d, bool rejoin)
{
	struct dt_msg_attach a;
	uint8_t mac[DT_PROTO_MAC];
	int fd, ret;

	for (;;) {
		fd = dst_accept(d, C.io_timeout * 1000);
		if (fd < 0 && rejoin)
			return fd;
		if (fd < 0)
			dst_fail(d, fd, "waiting for the data connection: %s", strerror(-fd));
		ret = dt_msg_recv(fd, &d->msg, C.io_timeout * 1000);
		if (!ret)
			ret = dt_msg_expect(&d->msg, DT_MSG_ATTACH, &a, sizeof(a));
		dt_proto_mac(C.token, C.token_len, "dt-migrate attach", d->nonce_d,
			     DT_PROTO_NONCE, d->session, DT_PROTO_SESSION, mac);
		if (!ret && !memcmp(a.session, d->session, sizeof(a.session)) &&
		    !dt_proto_mac_cmp(mac, a.mac))
			break;
		dst_reject(d, fd, EACCES, "not this migration's data connection");
	}
	d->data = fd;
	d->new_stream = true;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

/* The source of this migration back after a cut, on fd: 0 once it proved it. */
static int dst_rejoin_handshake(struct dst *d, int fd, struct dt_msg_rejoined *rj)
{
	struct dt_msg_challenge ch = { .version = DT_PROTO_VERSION };
	struct dt_msg_rejoin j;
	uint8_t mac[DT_PROTO_MAC];
	int ret;

	if (getrandom(d->nonce_d, sizeof(d->nonce_d), 0) != sizeof(d->nonce_d))
		return -errno;
	memcpy(ch.nonce, d->nonce_d, sizeof(ch.nonce));
	ret = dt_msg_send(fd, DT_MSG_CHALLENGE, &ch, sizeof(ch));
	if (!ret)
		ret = dt_msg_recv(fd, &d->msg, C.io_timeout * 1000);
	if (!ret && d->msg.hdr.type == DT_MSG_HELLO) {
		dst_reject(d, fd, EBUSY, "a migration is in progress here, waiting for its "
			   "source to reconnect");
		return -EBUSY;
	}
	if (!ret)
		ret = dt_msg_expect(&d->msg, DT_MSG_REJOIN, &j, sizeof(j));
	if (ret) {
		dst_reject(d, fd, -ret, strerror(-ret));
		return ret;
	}
	dt_proto_mac(C.token, C.token_len, "dt-migrate rejoin", d->nonce_d, DT_PROTO_NONCE,
		     d->session, DT_PROTO_SESSION, mac);
	if (memcmp(j.session, d->session, sizeof(j.session)) || dt_proto_mac_cmp(mac, j.mac)) {
		dst_reject(d, fd, EACCES, "not this migration's source");
		return -EACCES;
	}
	dt_proto_mac(C.token, C.token_len, "dt-migrate rejoined", j.nonce, DT_PROTO_NONCE,
		     d->nonce_d, DT_PROTO_NONCE, rj->mac);
	ret = dt_msg_send(fd, DT_MSG_REJOINED, rj, sizeof(*rj));
	if (ret)
		close(fd);
	return ret;
}

/*
 * After dst_lost(): wait for the source to come back within
 * --reconnect-timeout, tell it what arrived, and take a new stream.
 */
static void dst_rejoin(struct dst *d)
{
	uint64_t end = d->t_lost + (uint64_t)C.reconnect_timeout * 1000000000ULL, now;
	struct dt_msg_rejoined rj = { 0 };
	int fd;

	if (d->user) {
		uint64_t applied = d->stream_records + d->rd.records;

		d->cut_records = applied - d->total_records;
		d->total_records = applied;
	}
	rj.rounds = d->rounds;
	rj.last_count = d->last_count;
	rj.total_records = d->total_records;
	rj.cut_records = d->cut_records;
	for (;;) {
		now = mono_ns();
		if (now >= end)
			dst_fail(d, ETIMEDOUT, "%s; the source did not reconnect within "
				 "--reconnect-timeout %d s", d->lost_why, C.reconnect_timeout);
		fd = dst_accept(d, (int)((end - now) / 1000000) + 1);
		if (fd == -ETIMEDOUT)
			continue;
		if (fd < 0)
			dst_fail(d, fd, "accept: %s", strerror(-fd));
		if (dst_rejoin_handshake(d, fd, &rj))
			continue;
		d->ctl = fd;
		if (!dst_attach(d, true))
			break;
		close(d->ctl);
		d->ctl = -1;
	}
	/* The records of the cut round are kept: the source sends the rest. */
	d->round_base = d->rounds;
	d->stream_records = d->total_records;
	d->cut_records = 0;
	if (d->user) {
		dt_wire_reader_init(&d->rd, d->size, user_apply_cb, d);
		dt_wire_reader_on_round(&d->rd, user_round_cb);
	}
	d->nrejoins++;
	json_set("rejoins", json_object_new_uint64(d->nrejoins));
	set_stage(ST_PRECOPY);
	say("  the source reconnected after %.1f ms: it had %llu rounds whole and %llu "
	    "records of the next", ms(mono_ns() - d->t_lost), (unsigned long long)rj.rounds,
	    (unsigned long long)rj.cut_records);
}

static void dst_ack(struct dst *d, uint64_t round, uint64_t count)
{
	struct dt_msg_round_ack a = {
		.round = round,
		.records = count,
		.total_records = d->total_records,
		.bytes = d->bytes,
	};

	d->tai_round = tai_ns();
	if (dt_msg_send(d->ctl, DT_MSG_ROUND_ACK, &a, sizeof(a)))
		dst_io_fail(d, errno, "sending ROUND_ACK: %s", strerror(errno));
	d->acked_rounds++;
}

static int user_apply_cb(void *ctx, uint64_t index, const void *page)
{
	struct dst *d = ctx;

	return dt_wire_apply_mem(d->map, index, page);
}

static int user_round_cb(void *ctx, uint64_t round, uint64_t count)
{
	struct dst *d = ctx;

	d->rounds++;
	d->last_round = d->round_base + round;
	d->last_count = count;
	d->total_records = d->stream_records + d->rd.records;
	d->cut_records = 0;
	d->bytes = d->rd.bytes;
	dst_ack(d, d->last_round, count);
	return 0;
}

/*
 * The data connection failed. A source that aborts sends REFUSE on the
 * control connection, then resets the data connection: if its REFUSE is
 * there, it is the cause to report (dst_recv() ends on it), not the reset.
 */
static void __attribute__((noreturn)) dst_data_fail(struct dst *d, int err, const char *what)
{
	struct pollfd p = { .fd = d->ctl, .events = POLLIN };

	if (poll(&p, 1, 1000) == 1)
		dst_recv(d, 1000);
	dst_io_fail(d, err, "%s", what);
}

/* Drain what the data connection holds; ack each round as it completes. */
static void dst_pump(struct dst *d)
{
	char why[160];

	for (;;) {
		if (d->user) {
			static char buf[1 << 18];
			ssize_t n = recv(d->data, buf, sizeof(buf), 0);

			if (n == 0) {
				d->eof = true;
				if (dt_wire_reader_finish(&d->rd))
					dst_data_fail(d, EILSEQ, "the stream ended inside a record");
				return;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				snprintf(why, sizeof(why), "data connection: %s", strerror(errno));
				dst_data_fail(d, errno, why);
			}
			if (dt_wire_reader_feed(&d->rd, buf, (size_t)n) < 0)
				dst_fail(d, -d->rd.err, "bad stream after %llu records: %s",
					 (unsigned long long)d->rd.records, strerror(-d->rd.err));
			continue;
		}
		struct dirtytrack_receive r = {
			.sockfd = d->data,
			.flags = DIRTYTRACK_RECV_ROUND | (d->new_stream ? DIRTYTRACK_RECV_RESET : 0),
		};
		int ret = dt_receive(d->rfd, &r);

		if (r.bytes)
			d->new_stream = false;
		d->total_records += r.records;
		/* RECV_ROUND: the call ends at a marker, so its records were that round's. */
		d->cut_records = r.rounds ? 0 : d->cut_records + r.records;
		d->bytes += r.bytes;
		if (ret == -EAGAIN || ret == -EINTR)
			return;
		if (ret) {
			snprintf(why, sizeof(why), "bad stream after %llu records: %s",
				 (unsigned long long)d->total_records, strerror(-ret));
			dst_data_fail(d, -ret, why);
		}
		if (r.rounds) {
			d->rounds += r.rounds;
			d->last_round = d->round_base + r.last_round;
			d->last_count = r.last_count;
			dst_ack(d, d->last_round, r.last_count);
		}
		if (r.eof) {
			d->eof = true;
			return;
		}
		if (!r.bytes)
			return;
	}
}

/* COMMIT_REQ has come and every round it names is here: verify. */
/* QEMU did not take the device state: say why, QEMU's exit above all. */
static void __attribute__((noreturn)) dst_qemu_fail(struct dst *d)
{
	uint64_t end = mono_ns() + 2000000000ULL;
	pid_t p;
	int status;

	/* QEMU 7.2 exits when its incoming migration fails: give it 2 s. */
	while ((p = waitpid(d->child, &status, WNOHANG)) == 0 && mono_ns() < end)
		usleep(20000);
	if (p == d->child) {
		d->child = 0;
		dst_fail(d, EIO, "QEMU's incoming migration failed: QEMU exited (%s %d; its "
			 "messages are above) after %s", WIFEXITED(status) ? "status" : "signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), d->qmp.why);
	}
	dst_fail(d, EIO, "%s", d->qmp.why);
}

static void dst_verify(struct dst *d)
{
	if (d->rounds != d->req.rounds || d->last_round != d->req.last_round ||
	    d->total_records != d->req.total_records || d->meta_len != d->req.meta_len)
		dst_fail(d, EILSEQ, "incomplete: %llu rounds (last %llu), %llu records, %llu meta "
			 "bytes arrived; the source sent %llu rounds (last %llu), %llu records, "
			 "%llu meta bytes", (unsigned long long)d->rounds,
			 (unsigned long long)d->last_round, (unsigned long long)d->total_records,
			 (unsigned long long)d->meta_len, (unsigned long long)d->req.rounds,
			 (unsigned long long)d->req.last_round,
			 (unsigned long long)d->req.total_records,
			 (unsigned long long)d->req.meta_len);
	/* The guest RAM is whole: now QEMU may load the devices that point into it. */
	if (d->qemu) {
		uint64_t t0 = mono_ns();

		if (dt_qmp_load_state(&d->qmp, d->meta, d->meta_len, C.io_timeout * 1000))
			dst_qemu_fail(d);
		say("  QEMU loaded its device state (%.1f KiB) in %.1f ms", d->meta_len / 1024.0,
		    ms(mono_ns() - t0));
		json_set("qemu_load_ms", json_object_new_double(ms(mono_ns() - t0)));
	}
	if (dt_msg_send(d->ctl, DT_MSG_VERIFIED, NULL, 0))
		dst_io_fail(d, errno, "sending VERIFIED: %s", strerror(errno));
	d->verified = true;
	say("  verified: %llu rounds, %llu records, %.1f MiB", (unsigned long long)d->rounds,
	    (unsigned long long)d->total_records, (double)d->bytes / (1 << 20));
}

/* One control message during the transfer; true on COMMIT. */
static bool dst_control_msg(struct dst *d)
{
	int type = d->msg.hdr.type;

	if (type == DT_MSG_META && !d->have_req && !d->meta) {
		d->meta = malloc(d->msg.hdr.len + 1);
		if (!d->meta)
			dst_fail(d, ENOMEM, "out of memory for META");
		memcpy(d->meta, d->msg.buf, d->msg.hdr.len);
		d->meta_len = d->msg.hdr.len;
	} else if (type == DT_MSG_COMMIT_REQ && !d->have_req &&
		   !dt_msg_expect(&d->msg, type, &d->req, sizeof(d->req))) {
		d->have_req = true;
		set_stage(ST_COMMIT);
	} else if (type == DT_MSG_COMMIT && d->verified) {
		d->tai_commit = tai_ns();
		return true;
	} else {
		dst_fail(d, EPROTO, "unexpected %s (%u bytes) in stage %d", dt_msg_name(type),
			 d->msg.hdr.len, C.stage);
	}
	return false;
}

/*
 * Stages 2-4: apply the stream, ack rounds, verify on COMMIT_REQ, and
 * return on COMMIT. A source silent for --io-timeout is given up.
 */
static void dst_transfer(struct dst *d)
{
	uint64_t last = mono_ns(), bytes = 0;

	set_stage(ST_PRECOPY);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = d->ctl, .events = POLLIN },
			{ .fd = d->data, .events = d->eof ? 0 : POLLIN },
		};
		int n = poll(p, 2, 200);

		dst_check_signal(d);
		if (n < 0 && errno != EINTR)
			dst_fail(d, errno, "poll: %s", strerror(errno));
		if (p[1].revents)
			dst_pump(d);
		/* One message at a time: the data must keep flowing after a PING. */
		if (p[0].revents) {
			last = mono_ns();
			if (dst_recv_one(d, C.io_timeout * 1000) && dst_control_msg(d))
				return;
		}
		if (d->have_req && !d->verified && d->rounds >= d->req.rounds)
			dst_verify(d);
		if (d->bytes != bytes) {
			bytes = d->bytes;
			last = mono_ns();
			progress("stage %d: %llu rounds, %llu records, %.1f MiB", C.stage,
				 (unsigned long long)d->rounds,
				 (unsigned long long)d->total_records,
				 (double)d->bytes / (1 << 20));
		} else if (mono_ns() - last > (uint64_t)C.io_timeout * 1000000000ULL) {
			dst_io_fail(d, ETIMEDOUT, "no progress from the source for %d s",
				    C.io_timeout);
		}
	}
}

static void dst_probe_event(void *ctx, const struct blackout_event *e)
{
	struct dst *d = ctx;

	/* The tracepoint numbers rounds on the stream; a rejoin starts a new one. */
	if (e->type == BO_EV_RX_ROUND && e->round + d->round_base == d->last_round)
		d->bo_rx_round = e->ts;
	else if (e->type == BO_EV_EXEC)
		d->bo_exec = e->ts;
	else if (e->type == BO_EV_PAUSE && d->tai_cont && !d->bo_exec && e->ts >= d->tai_cont)
		d->bo_exec = e->ts;	/* QEMU: the first vCPU run after cont */
}

/*
 * Stage 5: write DT_META and let the child exec. With the probe watching
 * it, the exec it makes is the moment the workload runs again (waited for,
 * up to 2 s). Returns 0 or -errno.
 */
static int dst_start(struct dst *d)
{
	bool watched = false;
	char why[256], c = 0;
	int ret = 0;

	if (d->qemu) {
		d->tai_cont = tai_ns();
		if (dt_qmp_cont(&d->qmp, C.io_timeout * 1000)) {
			fprintf(stderr, "dt-migrate: %s\n", d->qmp.why);
			return -EIO;
		}
		for (uint64_t end = mono_ns() + 2000000000ULL; d->bo && !d->bo_exec &&
		     mono_ns() < end;)
			dt_bo_poll(d->bo, 50, dst_probe_event, d);
		return 0;
	}

	if (d->meta_len && write(d->meta_fd, d->meta, d->meta_len) != (ssize_t)d->meta_len)
		ret = -EIO;
	close(d->meta_fd);
	if (!ret && d->bo) {
		watched = !dt_bo_target(d->bo, d->child, NULL, NULL, why, sizeof(why));
		if (!watched)
			fprintf(stderr, "dt-migrate: blackout probe: %s\n", why);
	}
	if (!ret && write(d->go, &c, 1) != 1)
		ret = -errno;
	close(d->go);
	/* The exec, seen by the probe (an exec that fails is never seen). */
	for (uint64_t end = mono_ns() + 2000000000ULL; !ret && watched && !d->bo_exec &&
	     mono_ns() < end;)
		dt_bo_poll(d->bo, 50, dst_probe_event, d);
	return ret;
}

/* Stage 5: start --exec with the region as fd 3, or hold the region. */
static int dst_activate(struct dst *d)
{
	struct dt_msg_activated a = { 0 };
	int status = 0, ret = 0;
	pid_t pid = d->child;

	set_stage(ST_ACTIVATE);
	if (d->bo)
		while (dt_bo_poll(d->bo, 0, dst_probe_event, d) > 0)
			;
	a.started_ns = tai_ns();
	if (d->exec_argv)
		ret = dst_start(d);
	a.pid = pid > 0 ? pid : getpid();
	a.err = -ret;
	a.final_round_ns = d->bo_rx_round ? d->bo_rx_round : d->tai_round;
	a.commit_ns = d->tai_commit;
	a.exec_ns = d->bo_exec;
	dt_msg_send(d->ctl, DT_MSG_ACTIVATED, &a, sizeof(a));
	/* The user receiver's mapping: its unmap is no part of the blackout. */
	if (d->map) {
		munmap(d->map, d->size);
		d->map = NULL;
	}
	json_set("status", json_object_new_string(ret ? "exec-failed" : "completed"));
	json_set("rounds", json_object_new_uint64(d->rounds));
	json_set("total_records", json_object_new_uint64(d->total_records));
	json_set("total_bytes", json_object_new_uint64(d->bytes));
	if (ret) {
		fprintf(stderr, "dt-migrate: stage 5 activation: %s\n", strerror(-ret));
		json_write();
		return EXIT_IN_DOUBT;
	}
	if (!d->exec_argv) {
		say("  holding the region: /proc/%d/fd/%d (SIGINT or SIGTERM to drop it)",
		    (int)getpid(), d->rfd);
		json_write();
		while (!stop_signal)
			pause();
		return EXIT_OK;
	}
	if (d->qemu)
		say("  QEMU (pid %d) runs the guest", (int)pid);
	else
		say("  started %s, pid %d, region on fd 3, DT_META=%s", d->exec_argv[0],
		    (int)pid, d->meta_path);
	json_set("workload_pid", json_object_new_int(pid));
	json_write();
	if (!d->wait)
		return EXIT_OK;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int cmd_receive(struct dst *d)
{
	uint64_t deadline = C.timeout ? mono_ns() + (uint64_t)C.timeout * 1000000000ULL : 0;
	int fd;

	d->ctl = d->data = d->rfd = -1;
	if (d->want_user) {
		d->user = true;
	} else {
		fd = dt_open();
		if (fd < 0 && d->want_kernel)
			dst_fail(d, fd, "--receiver kernel: %s: %s", DT_DEV_PATH, strerror(-fd));
		d->user = fd < 0;
		if (fd >= 0)
			close(fd);
	}
	json_set("role", json_object_new_string("destination"));
	json_set("receiver", json_object_new_string(d->user ? "user" : "kernel"));
	d->bo = probe_open(-1);		/* before any source waits on us */
	dst_listen(d);
	say("dt-migrate: waiting for a source on %s (receiver %s)", d->listen,
	    d->user ? "user" : "kernel");
	set_stage(ST_PRE);
	for (;;) {
		int left = -1;

		if (deadline) {
			uint64_t now = mono_ns();

			if (now >= deadline)
				dst_fail(d, ETIMEDOUT, "no source within --timeout %d s", C.timeout);
			left = (int)((deadline - now) / 1000000);
		}
		fd = dst_accept(d, left);
		if (fd == -ETIMEDOUT)
			continue;
		if (fd < 0)
			dst_fail(d, fd, "accept: %s", strerror(-fd));
		if (!dst_handshake(d, fd))
			break;
	}
	d->ctl = fd;
	dst_reserve(d);
	dst_attach(d, false);
	if (sigsetjmp(d->rejoin_jmp, 1))
		dst_rejoin(d);
	d->can_rejoin = C.reconnect_timeout > 0 && d->peer_rejoins;
	dst_transfer(d);
	d->can_rejoin = false;
	return dst_activate(d);
}

/* ---- main ------------------------------------------------------------ */

static int read_token(const char *path, bool generate)
{
	const char *env = getenv("DT_MIGRATE_TOKEN");
	char tmp[] = "/tmp/dt-token.XXXXXX";
	int ret, fd;

	if (!path && env && *env) {
		fd = mkstemp(tmp);
		if (fd < 0 || write(fd, env, strlen(env)) < 0)
			return -errno;
		close(fd);
		ret = dt_proto_token_read(tmp, C.token, &C.token_len);
		unlink(tmp);
		if (ret)
			fprintf(stderr, "dt-migrate: $DT_MIGRATE_TOKEN: not a hex token of at least "
				"16 bytes\n");
		return ret;
	}
	if (path) {
		ret = dt_proto_token_read(path, C.token, &C.token_len);
		if (ret)
			fprintf(stderr, "dt-migrate: --token-file %s: %s\n", path,
				ret == -EINVAL ? "not a hex token of at least 16 bytes" :
				strerror(-ret));
		return ret;
	}
	if (!generate) {
		fprintf(stderr, "dt-migrate: no token: give --token-file FILE or set "
			"$DT_MIGRATE_TOKEN\n");
		return -EINVAL;
	}
	C.token_len = 32;
	if (getrandom(C.token, C.token_len, 0) != (ssize_t)C.token_len)
		return -errno;
	printf("dt-migrate: token ");
	for (size_t i = 0; i < C.token_len; i++)
		printf("%02x", C.token[i]);
	printf(" (give it to the source as --token-file or $DT_MIGRATE_TOKEN)\n");
	fflush(stdout);
	return 0;
}

enum {
	OPT_LISTEN = 256, OPT_TO, OPT_TOKEN, OPT_EXEC, OPT_WAIT, OPT_RECEIVER, OPT_REGION,
	OPT_PID, OPT_FREEZE, OPT_CGROUP, OPT_META, OPT_DOWNTIME, OPT_MAXR, OPT_TIMEOUT,
	OPT_ONTO, OPT_COLD, OPT_KEEP, OPT_TRACKER, OPT_SENDER, OPT_IOTO, OPT_FRTO, OPT_JSON,
	OPT_QUIET, OPT_PROBE, OPT_NOPROBE, OPT_CONTROL, OPT_PAUSETO, OPT_NOTHR, OPT_THRINIT,
	OPT_THRINC, OPT_THRROUNDS, OPT_NOSETTLE, OPT_THRWITH, OPT_RECTO, OPT_QEMU,
};

static const struct option opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "to", required_argument, NULL, OPT_TO },
	{ "token-file", required_argument, NULL, OPT_TOKEN },
	{ "exec", no_argument, NULL, OPT_EXEC },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "receiver", required_argument, NULL, OPT_RECEIVER },
	{ "region", required_argument, NULL, OPT_REGION },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "freeze", required_argument, NULL, OPT_FREEZE },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "meta", required_argument, NULL, OPT_META },
	{ "downtime-limit", required_argument, NULL, OPT_DOWNTIME },
	{ "max-rounds", required_argument, NULL, OPT_MAXR },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "on-timeout", required_argument, NULL, OPT_ONTO },
	{ "cold", no_argument, NULL, OPT_COLD },
	{ "keep-source", no_argument, NULL, OPT_KEEP },
	{ "tracker", required_argument, NULL, OPT_TRACKER },
	{ "sender", required_argument, NULL, OPT_SENDER },
	{ "io-timeout", required_argument, NULL, OPT_IOTO },
	{ "freeze-timeout", required_argument, NULL, OPT_FRTO },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "blackout-probe", no_argument, NULL, OPT_PROBE },
	{ "no-blackout-probe", no_argument, NULL, OPT_NOPROBE },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "pause-timeout", required_argument, NULL, OPT_PAUSETO },
	{ "no-auto-converge", no_argument, NULL, OPT_NOTHR },
	{ "throttle-initial", required_argument, NULL, OPT_THRINIT },
	{ "throttle-increment", required_argument, NULL, OPT_THRINC },
	{ "throttle-rounds", required_argument, NULL, OPT_THRROUNDS },
	{ "no-settle", no_argument, NULL, OPT_NOSETTLE },
	{ "throttle-with", required_argument, NULL, OPT_THRWITH },
	{ "reconnect-timeout", required_argument, NULL, OPT_RECTO },
	{ "qemu", required_argument, NULL, OPT_QEMU },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "dt-migrate: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see dt-migrate --help)\n");
	return EXIT_USAGE;
}

/* The options one subcommand takes; the others are usage errors there. */
static bool allowed(bool send, int opt)
{
	static const int recv_only[] = { OPT_LISTEN, OPT_EXEC, OPT_WAIT, OPT_RECEIVER };
	static const int send_only[] = {
		OPT_TO, OPT_REGION, OPT_PID, OPT_FREEZE, OPT_CGROUP, OPT_META, OPT_DOWNTIME,
		OPT_MAXR, OPT_ONTO, OPT_COLD, OPT_KEEP, OPT_TRACKER, OPT_SENDER, OPT_FRTO,
		OPT_CONTROL, OPT_PAUSETO, OPT_NOTHR, OPT_THRINIT, OPT_THRINC, OPT_THRROUNDS,
		OPT_NOSETTLE, OPT_THRWITH,
	};
	const int *list = send ? recv_only : send_only;
	size_t n = send ? sizeof(recv_only) / sizeof(int) : sizeof(send_only) / sizeof(int);

	for (size_t i = 0; i < n; i++)
		if (list[i] == opt)
			return false;
	return true;
}

/* ---- ctl --------------------------------------------------------------- */

static double jnum(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* dt-migrate ctl SOCKET pause|resume|cancel|status [--json] */
static int cmd_ctl(int argc, char **argv)
{
	char reply[DT_CTL_REPLY + 1];
	bool js = argc == 4 && !strcmp(argv[3], "--json");
	const char *cmd = argc >= 3 ? argv[2] : "";
	json_object *o, *v;
	int ret;

	if ((argc != 3 && !js) || (strcmp(cmd, "pause") && strcmp(cmd, "step") &&
				  strcmp(cmd, "resume") && strcmp(cmd, "cancel") &&
				  strcmp(cmd, "status")))
		return bad("%s", "usage: dt-migrate ctl SOCKET pause|step|resume|cancel|status "
			   "[--json]");
	ret = dt_ctl_request(argv[1], cmd, reply, sizeof(reply), 35000);
	if (ret) {
		fprintf(stderr, "dt-migrate ctl: %s: %s%s\n", argv[1], strerror(-ret),
			ret == -ENOENT || ret == -ECONNREFUSED ?
			" (no dt-migrate send --control there)" : "");
		return EXIT_ABORTED;
	}
	o = json_tokener_parse(reply);
	if (!o) {
		fprintf(stderr, "dt-migrate ctl: a reply that is not JSON: %s\n", reply);
		return EXIT_ABORTED;
	}
	if (js)
		printf("%s\n", reply);
	if (!json_object_object_get_ex(o, "ok", &v) || !json_object_get_boolean(v)) {
		fprintf(stderr, "dt-migrate ctl: %s: %s\n", cmd, jstr(o, "error"));
		json_object_put(o);
		return EXIT_ABORTED;
	}
	if (!js) {
		printf("%s%s: stage %d %s, %.0f rounds, %.1f MiB sent", jstr(o, "state"),
		       !strcmp(jstr(o, "state"), "paused") && jnum(o, "paused_within_round") ?
		       " within a round" : "", (int)jnum(o, "stage"), jstr(o, "stage_name"),
		       jnum(o, "rounds"), jnum(o, "bytes_sent") / (1 << 20));
		if (jnum(o, "rounds"))
			printf("; dirty %.0f pages/s, link %.1f MB/s, %.0f pages left, "
			       "predicted blackout %.1f ms", jnum(o, "dirty_rate_pps"),
			       jnum(o, "link_rate_Bps") / 1e6, jnum(o, "pages_left"),
			       jnum(o, "predicted_blackout_ms"));
		printf("; paused %.0f times, %.1f s\n", jnum(o, "pauses"),
		       jnum(o, "paused_ms") / 1e3);
	}
	json_object_put(o);
	return EXIT_OK;
}

/* ---- hold -------------------------------------------------------------- */

/* BYTES with an optional K, M or G (powers of 1024). */
static int parse_size(const char *s, uint64_t *v)
{
	static const char units[] = "KMG";
	const char *u;
	uint64_t n, mul = 1;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	if (*end && (u = strchr(units, *end)) && *u) {
		mul = 1ULL << (10 * (u - units + 1));
		end++;
	}
	if (*end || n > UINT64_MAX / mul)
		return -EINVAL;
	*v = n * mul;
	return 0;
}

/*
 * dt-migrate hold --size S: create a region and keep it open until SIGINT or
 * SIGTERM, so that a VMM started after it can take its RAM from
 * /proc/PID/fd/N (QEMU: memory-backend-file,mem-path=...,share=on).
 */
static int cmd_hold(int argc, char **argv)
{
	static const struct option hopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t size = 0;
	int opt, dev, fd;

	while ((opt = getopt_long(argc, argv, "+h", hopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return EXIT_OK;
		}
		if (opt != 's' || parse_size(optarg, &size) || !size || size % PS)
			return bad("%s", "hold needs --size BYTES[K|M|G], a multiple of 4096");
	}
	if (optind < argc || !size)
		return bad("%s", "usage: dt-migrate hold --size BYTES[K|M|G]");
	if (install_signals())
		return EXIT_ABORTED;
	dev = dt_open();
	fd = dev < 0 ? dev : dt_region_create(dev, size);
	if (fd < 0) {
		fprintf(stderr, "dt-migrate hold: a region of %llu MiB: %s%s\n",
			(unsigned long long)(size >> 20), strerror(-fd),
			dev < 0 ? " (" DT_DEV_PATH ": is dirtytrack.ko loaded?)" : "");
		return EXIT_ABORTED;
	}
	close(dev);
	printf("/proc/%d/fd/%d\n", (int)getpid(), fd);
	fflush(stdout);
	while (!stop_signal)
		pause();
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static struct src s = { .downtime_ms = 300, .max_rounds = 30, .freeze_timeout_ms = 5000,
				.ctl = -1, .data = -1, .rfd = -1, .thr_initial = 20,
				.thr_increment = 10, .thr_rounds = 2 };
	static struct dst d;
	const char *token_path = NULL;
	bool send;
	int opt, v;

	C.io_timeout = 30;
	C.reconnect_timeout = 60;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "ctl"))
		return cmd_ctl(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "hold"))
		return cmd_hold(argc - 1, argv + 1);
	if (argc < 2 || (strcmp(argv[1], "send") && strcmp(argv[1], "receive")))
		return bad("the first argument must be send, receive, ctl or hold, not '%s'",
			   argc < 2 ? "" : argv[1]);
	send = !strcmp(argv[1], "send");
	argv++;
	argc--;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (opt != 'h' && opt != '?' && !allowed(send, opt))
			return bad("%s does not take that option", send ? "send" : "receive");
		switch (opt) {
		case OPT_LISTEN: d.listen = optarg; break;
		case OPT_TO: s.to = optarg; break;
		case OPT_TOKEN: token_path = optarg; break;
		case OPT_EXEC:
			if (optind >= argc)
				return bad("%s needs a command", "--exec");
			d.exec_argv = argv + optind;
			optind = argc;
			break;
		case OPT_WAIT: d.wait = true; break;
		case OPT_RECEIVER:
			if (!strcmp(optarg, "user"))
				d.want_user = true;
			else if (!strcmp(optarg, "kernel"))
				d.want_kernel = true;
			else if (strcmp(optarg, "auto"))
				return bad("--receiver: '%s' is not auto, kernel or user", optarg);
			break;
		case OPT_REGION: s.region = optarg; break;
		case OPT_QEMU: s.qemu = d.qemu = optarg; break;
		case OPT_PID:
			if (parse_int("--pid", optarg, 1, &v))
				return EXIT_USAGE;
			s.pid = v;
			break;
		case OPT_FREEZE:
			if (!strcmp(optarg, "cgroup"))
				s.freeze = DT_FREEZE_CGROUP;
			else if (!strcmp(optarg, "sigstop"))
				s.freeze = DT_FREEZE_SIGSTOP;
			else
				return bad("--freeze: '%s' is not cgroup or sigstop", optarg);
			break;
		case OPT_CGROUP: s.cgroup = optarg; break;
		case OPT_META: s.meta_path = optarg; break;
		case OPT_DOWNTIME:
			if (parse_int("--downtime-limit", optarg, 0, &s.downtime_ms))
				return EXIT_USAGE;
			break;
		case OPT_MAXR:
			if (parse_int("--max-rounds", optarg, 0, &s.max_rounds))
				return EXIT_USAGE;
			break;
		case OPT_TIMEOUT:
			if (parse_int("--timeout", optarg, 0, &C.timeout))
				return EXIT_USAGE;
			break;
		case OPT_ONTO:
			if (!strcmp(optarg, "force"))
				s.force = true;
			else if (strcmp(optarg, "cancel"))
				return bad("--on-timeout: '%s' is not cancel or force", optarg);
			break;
		case OPT_COLD: s.cold = true; break;
		case OPT_KEEP: s.keep_source = true; break;
		case OPT_TRACKER:
			if (strcmp(optarg, "auto") && strcmp(optarg, "dirtytrack") &&
			    strcmp(optarg, "pagemap-scan") && strcmp(optarg, "soft-dirty"))
				return bad("--tracker: '%s' is not auto, dirtytrack, pagemap-scan or "
					   "soft-dirty", optarg);
			if (strcmp(optarg, "auto"))
				s.want_tracker = optarg;
			break;
		case OPT_SENDER:
			if (!strcmp(optarg, "user"))
				s.user_sender = true;
			else if (strcmp(optarg, "kernel"))
				return bad("--sender: '%s' is not kernel or user", optarg);
			break;
		case OPT_IOTO:
			if (parse_int("--io-timeout", optarg, 1, &C.io_timeout))
				return EXIT_USAGE;
			break;
		case OPT_RECTO:
			if (parse_int("--reconnect-timeout", optarg, 0, &C.reconnect_timeout))
				return EXIT_USAGE;
			break;
		case OPT_FRTO:
			if (parse_int("--freeze-timeout", optarg, 1, &s.freeze_timeout_ms))
				return EXIT_USAGE;
			break;
		case OPT_JSON: C.json_path = optarg; break;
		case OPT_QUIET: C.quiet = true; break;
		case OPT_PROBE: C.no_probe = false; break;
		case OPT_NOPROBE: C.no_probe = true; break;
		case OPT_CONTROL: s.control_path = optarg; break;
		case OPT_PAUSETO:
			if (parse_int("--pause-timeout", optarg, 0, &s.pause_timeout))
				return EXIT_USAGE;
			break;
		case OPT_NOTHR: s.no_throttle = true; break;
		case OPT_NOSETTLE: s.no_settle = true; break;
		case OPT_THRWITH:
			if (!strcmp(optarg, "module"))
				s.thr_module = true;
			else if (!strcmp(optarg, "cpu-max"))
				s.thr_cpu = s.thr_cpu_asked = true;
			else if (strcmp(optarg, "auto"))
				return bad("--throttle-with: want auto, module or cpu-max, not '%s'",
					   optarg);
			break;
		case OPT_THRINIT:
			if (parse_int("--throttle-initial", optarg, 1, &s.thr_initial) ||
			    s.thr_initial > 99)
				return bad("--throttle-initial: '%s' is not 1 to 99", optarg);
			break;
		case OPT_THRINC:
			if (parse_int("--throttle-increment", optarg, 0, &s.thr_increment) ||
			    s.thr_increment > 99)
				return bad("--throttle-increment: '%s' is not 0 to 99", optarg);
			break;
		case OPT_THRROUNDS:
			if (parse_int("--throttle-rounds", optarg, 1, &s.thr_rounds))
				return EXIT_USAGE;
			break;
		case 'h': usage(stdout); return EXIT_OK;
		default: return bad("%s", "unknown option");
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (send && (!s.to || (!s.region && !s.qemu)))
		return bad("%s", "send needs --to HOST:PORT and --region /proc/PID/fd/N (or --qemu)");
	if (send && s.qemu && (s.meta_path || s.pid || s.freeze || s.cgroup))
		return bad("%s", "--qemu takes the device state, the pid and the freeze from "
			   "QEMU: no --meta, --pid, --freeze or --cgroup");
	if (!send && d.qemu && !d.exec_argv)
		return bad("%s", "receive --qemu needs --exec QEMU-COMMAND (with -incoming defer)");
	if (!send && !d.listen)
		return bad("%s", "receive needs --listen ADDR:PORT");
	if (d.wait && !d.exec_argv)
		return bad("%s", "--wait needs --exec");
	C.tty = isatty(STDOUT_FILENO);
	C.json = json_object_new_object();
	s.msg.buf = malloc(DT_PROTO_MAX_PAYLOAD);
	d.msg.buf = malloc(DT_PROTO_MAX_PAYLOAD);
	if (!s.msg.buf || !d.msg.buf || install_signals())
		return EXIT_ABORTED;
	dt_proto_set_stop_flag(&stop_signal);
	if (read_token(token_path, !send))
		return EXIT_USAGE;
	return send ? cmd_send(&s) : cmd_receive(&d);
}
