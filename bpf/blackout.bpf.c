// SPDX-License-Identifier: GPL-2.0
/*
 * blackout: when a workload (a process and its threads, or a cgroup) stops
 * running and when it runs again, from the scheduler's tracepoints, and the
 * dirtytrack module's round boundaries, for dt-blackout and dt-migrate.
 *
 * A task of the workload leaving the CPU of its own accord (not preempted)
 * is "parked" when it was stopped (SIGSTOP: __TASK_STOPPED) or frozen (the
 * cgroup v2 freezer's trap sleeps in TASK_FREEZABLE with task->frozen set;
 * a task that SIGCONT woke keeps task->frozen until it has left the signal
 * code, so the flag alone does not say parked). Each task's state (on a
 * CPU, parked) is kept per thread, with a count of the workload's tasks on
 * a CPU. When a parked task runs again while none of the workload is on a
 * CPU and the last of its tasks to leave one was parked, the workload was
 * paused: from that last switch-out to this switch-in, nothing of it ran. (Stopping or freezing wakes
 * the sleeping threads to park them: those switch-ins find no task parked
 * and are no pause. A task that has been on a CPU since before the probe
 * attached is not counted until it first leaves it.)
 *
 * A workload can also be paused without being parked: a VMM stops its vCPU
 * threads by having them wait on a condition variable (QEMU's stop). With
 * gap_ns set, a task of the workload that runs again after nothing of it
 * ran for at least gap_ns is a pause too (BO_IDLE), however it slept: for
 * vCPU threads of a guest that is never idle that long, that is the
 * blackout of a QEMU migration, with or without dirtytrack.
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
/* Nothing of the workload ran for this long (ns): a pause too (0: off). */
volatile __u64 gap_ns;

struct blackout_state state;

#define BO_ON_CPU	1
#define BO_PARKED	2

/* Per thread of the workload: BO_ON_CPU | BO_PARKED. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} tasks SEC(".maps");

/* Tasks of the workload on a CPU (that were seen to get there). */
__s64 on_cpu;
/* How the last task of the workload to leave a CPU left: BO_*, 0 if not parked. */
__u32 last_out_how;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

#define CGROUP_DEPTH	16

/* Is @t in the target cgroup or below it (freezing a cgroup freezes those)? */
static __always_inline bool in_cgroup(struct task_struct *t)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	int i;

	for (i = 0; i < CGROUP_DEPTH && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == target_cgid)
			return true;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return false;
}

static __always_inline bool in_workload(struct task_struct *t)
{
	char comm[16];
	int i;

	if (!t || (!target_tgid && !target_cgid))
		return false;
	if (target_tgid && BPF_CORE_READ(t, tgid) != (int)target_tgid)
		return false;
	if (target_cgid && !in_cgroup(t))
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

#define TASK_DEAD_BIT	0x0080	/* TASK_DEAD */

static __always_inline void switched(bool preempt, struct task_struct *prev,
				     struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_tai_ns();
	__u32 pid, *f;

	if (in_workload(prev)) {
		__u32 how = 0;

		/* prev_state is read before the switch: preempted means running. */
		if (!preempt && (prev_state & (TASK_STOPPED_BITS | TASK_TRACED_BITS)))
			how = BO_STOPPED;
		else if (!preempt && (prev_state & TASK_FREEZABLE_BIT) &&
			 BPF_CORE_READ_BITFIELD_PROBED(prev, frozen))
			how = BO_FROZEN;
		pid = BPF_CORE_READ(prev, pid);
		f = bpf_map_lookup_elem(&tasks, &pid);
		if (f && (*f & BO_ON_CPU))
			__sync_fetch_and_add(&on_cpu, -1);
		if (!preempt && (prev_state & TASK_DEAD_BIT)) {
			bpf_map_delete_elem(&tasks, &pid);
		} else {
			__u32 v = how ? BO_PARKED : 0;

			bpf_map_update_elem(&tasks, &pid, &v, BPF_ANY);
		}
		state.last_run = now;
		last_out_how = how;
		if (how) {
			state.parked = now;
			state.how |= how;
			state.nparked++;
		}
	}
	if (in_workload(next)) {
		__u32 v = BO_ON_CPU;

		pid = BPF_CORE_READ(next, pid);
		f = bpf_map_lookup_elem(&tasks, &pid);
		/*
		 * A parked task back while nothing of the workload is on a CPU
		 * and the last of it to leave a CPU was parked, not preempted;
		 * or with gap_ns, any task back after the workload was off every
		 * CPU that long.
		 */
		bool parked = f && (*f & BO_PARKED) && on_cpu <= 0 && last_out_how;
		/* (last_run may be a switch-out on another CPU just after now) */
		bool idle = gap_ns && on_cpu <= 0 && state.last_run &&
			    now > state.last_run && now - state.last_run >= gap_ns;

		if (parked || idle) {
			struct blackout_event *e = event(BO_EV_PAUSE, now);

			if (e) {
				e->pid = pid;
				e->last_run = state.last_run;
				e->parked = state.parked;
				e->how = parked ? state.how : BO_IDLE;
				e->nparked = state.nparked;
				bpf_ringbuf_submit(e, 0);
				__sync_fetch_and_add(&state.pauses, 1);
			}
		}
		if (f && (*f & BO_PARKED)) {
			state.how = 0;
			state.nparked = 0;
		}
		bpf_map_update_elem(&tasks, &pid, &v, BPF_ANY);
		__sync_fetch_and_add(&on_cpu, 1);
		state.last_in = now;
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	switched(preempt, prev, next, prev_state);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	switched(preempt, prev, next, prev_state);
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
