/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_blackout: load the blackout probe (bpf/blackout.bpf.c) and read what
 * it sees, for dt-blackout and dt-migrate. Times are CLOCK_TAI nanoseconds,
 * comparable across hosts whose clocks are synchronized (see dt_bo_now()).
 */
#ifndef DT_BLACKOUT_H
#define DT_BLACKOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "blackout.h"

struct dt_bo;

typedef void (*dt_bo_cb)(void *ctx, const struct blackout_event *e);

/*
 * Load and attach the probe: the scheduler's tracepoints (tp_btf, or raw_tp
 * where the kernel has no BTF) and, when dirtytrack.ko is loaded, its round
 * boundaries for the region with inode @region_ino (0: every region). No
 * workload is watched until dt_bo_target(). NULL on failure, with a
 * sentence in @why (not root, lockdown, no BPF, ...).
 */
struct dt_bo *dt_bo_open(unsigned long region_ino, char *why, size_t len);
/*
 * Watch a workload: the thread group @pid (0: any), restricted to the
 * cgroup v2 directory @cgroup (NULL: any) and to threads whose name starts
 * with @comm (NULL: all). At least one of @pid and @cgroup. 0 or -errno,
 * with @why.
 */
int dt_bo_target(struct dt_bo *b, pid_t pid, const char *cgroup, const char *comm,
		 char *why, size_t len);
void dt_bo_set_region(struct dt_bo *b, unsigned long region_ino);
/*
 * Also report as a pause (how BO_IDLE) any stretch of at least @gap_ns in
 * which nothing of the workload ran, however it slept (0: off, the default).
 */
void dt_bo_set_gap(struct dt_bo *b, uint64_t gap_ns);
/* Hand the events to @cb, waiting up to @timeout_ms for one; count or -errno. */
int dt_bo_poll(struct dt_bo *b, int timeout_ms, dt_bo_cb cb, void *ctx);
/* The probe's live state (last run, last parked, exec, counters). */
const struct blackout_state *dt_bo_state(const struct dt_bo *b);
/* "tp_btf" or "raw_tp": how the scheduler's tracepoints were attached. */
const char *dt_bo_kind(const struct dt_bo *b);
void dt_bo_close(struct dt_bo *b);
/* CLOCK_TAI now, the clock of bpf_ktime_get_tai_ns(). */
uint64_t dt_bo_now(void);

#endif
