// SPDX-License-Identifier: GPL-2.0
/*
 * The blackout probe's loader (see dt_blackout.h): a libbpf skeleton of
 * bpf/blackout.bpf.c, shared by dt-blackout and dt-migrate.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "dt_blackout.h"
#include "blackout.skel.h"

struct dt_bo {
	struct blackout_bpf *skel;
	struct ring_buffer *rb;
	dt_bo_cb cb;
	void *ctx;
	const char *kind;
};

uint64_t dt_bo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_TAI, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("DT_BPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Why loading failed, in words an operator can act on. */
static void explain(int err, char *why, size_t len)
{
	char lock[128] = "";
	FILE *f;

	if (err != -EPERM && err != -EACCES) {
		snprintf(why, len, "cannot load the BPF programs: %s", strerror(-err));
		return;
	}
	f = fopen("/sys/kernel/security/lockdown", "r");
	if (f) {
		if (!fgets(lock, sizeof(lock), f))
			lock[0] = 0;
		fclose(f);
	}
	if (geteuid())
		snprintf(why, len, "loading BPF programs needs root (CAP_BPF and CAP_PERFMON)");
	else if (lock[0] && !strstr(lock, "[none]"))
		snprintf(why, len, "kernel lockdown forbids BPF tracing (%.*s)",
			 (int)strcspn(lock, "\n"), lock);
	else
		snprintf(why, len, "cannot load the BPF programs: %s (BPF disabled?)",
			 strerror(-err));
}

static bool exists(const char *path)
{
	return !access(path, F_OK);
}

/*
 * Open, load and attach the skeleton: the BTF-typed programs, or with @raw
 * their raw_tp twins; the module's only when it is loaded.
 */
static int dt_bo_load(struct dt_bo *b, bool raw)
{
	bool mod = exists("/sys/module/dirtytrack");
	struct blackout_bpf *s;
	int err;

	s = b->skel = blackout_bpf__open();
	if (!s)
		return -errno;
	bpf_program__set_autoload(s->progs.btf_sched_switch, !raw);
	bpf_program__set_autoload(s->progs.btf_exec, !raw);
	bpf_program__set_autoload(s->progs.raw_sched_switch, raw);
	bpf_program__set_autoload(s->progs.raw_exec, raw);
	bpf_program__set_autoload(s->progs.btf_stream_batch, mod && !raw);
	bpf_program__set_autoload(s->progs.btf_receive_round, mod && !raw);
	bpf_program__set_autoload(s->progs.btf_write_fault, mod && !raw);
	bpf_program__set_autoload(s->progs.btf_harvest, mod && !raw);
	bpf_program__set_autoload(s->progs.raw_stream_batch, mod && raw);
	bpf_program__set_autoload(s->progs.raw_receive_round, mod && raw);
	bpf_program__set_autoload(s->progs.raw_write_fault, mod && raw);
	bpf_program__set_autoload(s->progs.raw_harvest, mod && raw);
	err = blackout_bpf__load(s);
	if (!err)
		err = blackout_bpf__attach(s);
	if (err) {
		blackout_bpf__destroy(s);
		b->skel = NULL;
	}
	b->kind = raw ? "raw_tp" : "tp_btf";
	return err;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct dt_bo *b = ctx;

	if (size >= sizeof(struct blackout_event))
		b->cb(b->ctx, data);
	return 0;
}

struct dt_bo *dt_bo_open(unsigned long region_ino, char *why, size_t len)
{
	struct dt_bo *b;
	int err;

	/* CO-RE reads task_struct and cgroup fields: the kernel's BTF is a must. */
	if (!exists("/sys/kernel/btf/vmlinux")) {
		snprintf(why, len, "the kernel has no BTF (/sys/kernel/btf/vmlinux, "
			 "CONFIG_DEBUG_INFO_BTF), which the probe's CO-RE reads need");
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	libbpf_set_print(quiet_print);
	/* tp_btf first; where it cannot attach (an older kernel), raw_tp. */
	err = dt_bo_load(b, false);
	if (err && err != -EPERM && err != -EACCES)
		err = dt_bo_load(b, true);
	if (err) {
		explain(err, why, len);
		free(b);
		return NULL;
	}
	b->skel->bss->target_ino = region_ino;
	/* Set up now: the first poll may be inside a blackout. */
	b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), on_sample, b, NULL);
	if (!b->rb) {
		snprintf(why, len, "ring buffer: %s", strerror(errno));
		blackout_bpf__destroy(b->skel);
		free(b);
		return NULL;
	}
	return b;
}

int dt_bo_target(struct dt_bo *b, pid_t pid, const char *cgroup, const char *comm,
		 char *why, size_t len)
{
	struct blackout_bpf__bss *bss = b->skel->bss;
	struct stat st;

	if (!pid && !cgroup) {
		snprintf(why, len, "no workload: give a PID or a cgroup");
		return -EINVAL;
	}
	if (pid > 0 && kill(pid, 0) && errno == ESRCH) {
		snprintf(why, len, "no process %d", (int)pid);
		return -ESRCH;
	}
	/* A cgroup v2 directory's inode number is its kernfs id. */
	if (cgroup && stat(cgroup, &st)) {
		snprintf(why, len, "cgroup %s: %s", cgroup, strerror(errno));
		return -errno;
	}
	if (cgroup && !S_ISDIR(st.st_mode)) {
		snprintf(why, len, "cgroup %s: not a directory", cgroup);
		return -ENOTDIR;
	}
	memset(bss->target_comm, 0, sizeof(bss->target_comm));
	if (comm)
		strncpy(bss->target_comm, comm, sizeof(bss->target_comm) - 1);
	bss->target_cgid = cgroup ? st.st_ino : 0;
	bss->target_tgid = (__u32)pid;
	return 0;
}

void dt_bo_set_region(struct dt_bo *b, unsigned long region_ino)
{
	b->skel->bss->target_ino = region_ino;
}

void dt_bo_set_gap(struct dt_bo *b, uint64_t gap_ns)
{
	b->skel->bss->gap_ns = gap_ns;
}

int dt_bo_poll(struct dt_bo *b, int timeout_ms, dt_bo_cb cb, void *ctx)
{
	b->cb = cb;
	b->ctx = ctx;
	return ring_buffer__poll(b->rb, timeout_ms);
}

const struct blackout_state *dt_bo_state(const struct dt_bo *b)
{
	return &b->skel->bss->state;
}

const char *dt_bo_kind(const struct dt_bo *b)
{
	return b->kind;
}

void dt_bo_close(struct dt_bo *b)
{
	if (!b)
		return;
	ring_buffer__free(b->rb);
	blackout_bpf__destroy(b->skel);
	free(b);
}
