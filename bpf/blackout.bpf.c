// SPDX-License-Identifier: GPL-2.0
/*
 * blackout: when a workload (a process and its threads, or a cgroup) stops
 * running and when it runs again, from the scheduler's tracepoints, and the
 * dirtytrack module's round boundaries, for dt-blackout and dt-migrate.
 *
 * A task of the workload leaving the CPU is "parked" when it was stopped
 * (SIGSTOP: __TASK_STOPPED) or frozen (the cgroup v2 freezer's trap sleeps
 * in TASK_FREEZABLE with task->frozen set; a task that SIGCONT woke keeps
 * task->frozen until it has left the signal code, and may be preempted
 * before, so the flag alone does not say parked). When a parked task runs again and no task of the workload has
 * run since the last one left the CPU, the workload was paused: from that
 * last switch-out to this switch-in, nothing of it ran.
 *
 * Each program comes as tp_btf (typed by BTF) and raw_tp (for kernels the
 * loader finds without BTF); both read through CO-RE, like libbpf-tools.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "blackout.h"

#define TASK_STOPPED_BITS	0x0004	/* __TASK_STOPPED */
#define TASK_TRACED_BITS	0x0008	/* __TASK_TRACED */
#define TASK_FREEZABLE_BIT	0x2000	/* TASK_FREEZABLE */

/*
 * The workload: a thread group, or a cgroup v2 (its kernfs id), or both;
 * nothing while neither is set. Globals, not constants: dt-migrate loads
 * the programs early and names the workload once it has forked it.
 */
volatile __u32 target_tgid;
volatile __u64 target_cgid;
/* Only threads whose name starts so (e.g. QEMU's "CPU "), if set. */
volatile char target_comm[16];
/* Only this region's module events, if nonzero. */
volatile unsigned long target_ino;

struct blackout_state state;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline bool in_workload(struct task_struct *t)
{
	char comm[16];
	int i;

	if (!t || (!target_tgid && !target_cgid))
		return false;
	if (target_tgid && BPF_CORE_READ(t, tgid) != (int)target_tgid)
		return false;
	if (target_cgid && BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id) != target_cgid)
		return false;
	if (!target_comm[0])
		return true;
	if (bpf_probe_read_kernel_str(comm, sizeof(comm), &t->comm) < 0)
		return false;
	for (i = 0; i < 16 && target_comm[i]; i++)
		if (comm[i] != target_comm[i])
			return false;
	return true;
}

static __always_inline struct blackout_event *event(__u32 type, __u64 now)
{
	struct blackout_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&state.lost, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->ts = now;
	return e;
}

static __always_inline void switched(struct task_struct *prev, struct task_struct *next,
				     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_tai_ns();

	if (in_workload(prev)) {
		__u32 how = 0;

		if (prev_state & (TASK_STOPPED_BITS | TASK_TRACED_BITS))
			how = BO_STOPPED;
		else if ((prev_state & TASK_FREEZABLE_BIT) &&
			 BPF_CORE_READ_BITFIELD_PROBED(prev, frozen))
			how = BO_FROZEN;
		state.last_run = now;
		if (how) {
			state.parked = now;
			state.how |= how;
			state.nparked++;
		}
	}
	if (in_workload(next)) {
		/* Nothing of it ran since the last switch-out, and it was parked. */
		if (state.nparked && state.last_in < state.last_run) {
			struct blackout_event *e = event(BO_EV_PAUSE, now);

			if (e) {
				e->pid = BPF_CORE_READ(next, pid);
				e->last_run = state.last_run;
				e->parked = state.parked;
				e->how = state.how;
				e->nparked = state.nparked;
				bpf_ringbuf_submit(e, 0);
			}
			state.pauses++;
		}
		state.how = 0;
		state.nparked = 0;
		state.last_in = now;
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	switched(prev, next, prev_state);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	switched(prev, next, prev_state);
	return 0;
}

static __always_inline void exec(struct task_struct *p)
{
	__u64 now = bpf_ktime_get_tai_ns();
	struct blackout_event *e;

	if (!in_workload(p))
		return;
	state.exec = now;
	e = event(BO_EV_EXEC, now);
	if (e) {
		e->pid = BPF_CORE_READ(p, pid);
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(btf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	exec(p);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	exec(p);
	return 0;
}

/* ---- the dirtytrack module's round boundaries (loaded only with it) ---- */

static __always_inline bool region(unsigned long ino)
{
	return !target_ino || ino == target_ino;
}

static __always_inline void stream_batch(unsigned long ino, __u32 records, __u64 bytes,
					 bool marker, __u64 round)
{
	struct blackout_event *e;

	if (!region(ino))
		return;
	__sync_fetch_and_add(&state.records, records);
	__sync_fetch_and_add(&state.bytes, bytes);
	if (!marker)
		return;
	e = event(BO_EV_TX_ROUND, bpf_ktime_get_tai_ns());
	if (e) {
		e->round = round;
		e->records = state.records;
		e->bytes = state.bytes;
		e->write_faults = state.write_faults;
		e->harvests = state.harvests;
		e->harvest_ns = state.harvest_ns;
		bpf_ringbuf_submit(e, 0);
	}
	state.records = 0;
	state.bytes = 0;
	state.write_faults = 0;
	state.harvests = 0;
	state.harvest_ns = 0;
}

static __always_inline void receive_round(unsigned long ino, __u64 round, __u64 records)
{
	struct blackout_event *e;

	if (!region(ino))
		return;
	e = event(BO_EV_RX_ROUND, bpf_ktime_get_tai_ns());
	if (e) {
		e->round = round;
		e->records = records;
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tp_btf/dirtytrack_stream_batch")
int BPF_PROG(btf_stream_batch, unsigned long ino, __u32 records, __u64 bytes, bool marker,
	     __u64 round)
{
	stream_batch(ino, records, bytes, marker, round);
	return 0;
}

SEC("raw_tp/dirtytrack_stream_batch")
int BPF_PROG(raw_stream_batch, unsigned long ino, __u32 records, __u64 bytes, bool marker,
	     __u64 round)
{
	stream_batch(ino, records, bytes, marker, round);
	return 0;
}

SEC("tp_btf/dirtytrack_receive_round")
int BPF_PROG(btf_receive_round, unsigned long ino, __u64 round, __u64 records)
{
	receive_round(ino, round, records);
	return 0;
}

SEC("raw_tp/dirtytrack_receive_round")
int BPF_PROG(raw_receive_round, unsigned long ino, __u64 round, __u64 records)
{
	receive_round(ino, round, records);
	return 0;
}

SEC("tp_btf/dirtytrack_write_fault")
int BPF_PROG(btf_write_fault, unsigned long ino, unsigned long pgoff)
{
	if (region(ino))
		__sync_fetch_and_add(&state.write_faults, 1);
	return 0;
}

SEC("raw_tp/dirtytrack_write_fault")
int BPF_PROG(raw_write_fault, unsigned long ino, unsigned long pgoff)
{
	if (region(ino))
		__sync_fetch_and_add(&state.write_faults, 1);
	return 0;
}

static __always_inline void harvest(unsigned long ino, __u64 ns, bool clear)
{
	if (!region(ino) || clear)
		return;
	__sync_fetch_and_add(&state.harvests, 1);
	__sync_fetch_and_add(&state.harvest_ns, ns);
}

SEC("tp_btf/dirtytrack_harvest")
int BPF_PROG(btf_harvest, unsigned long ino, __u64 first, __u64 npages, __u64 dirty,
	     __u64 protected, __u64 ns, bool clear)
{
	harvest(ino, ns, clear);
	return 0;
}

SEC("raw_tp/dirtytrack_harvest")
int BPF_PROG(raw_harvest, unsigned long ino, __u64 first, __u64 npages, __u64 dirty,
	     __u64 protected, __u64 ns, bool clear)
{
	harvest(ino, ns, clear);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
