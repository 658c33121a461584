/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by blackout.bpf.c and its loader, userspace/tools/dt-blackout.c. */
#ifndef BLACKOUT_H
#define BLACKOUT_H

/* How a task of the workload was parked when it left the CPU. */
#define BO_STOPPED	1	/* SIGSTOP (or ptrace): __TASK_STOPPED, __TASK_TRACED */
#define BO_FROZEN	2	/* the cgroup v2 freezer: task->frozen */
/* Not parked: nothing of it ran for the probe's gap_ns (dt-blackout --gap). */
#define BO_IDLE		4

enum blackout_event_type {
	BO_EV_PAUSE = 1,	/* the workload ran again after being parked */
	BO_EV_EXEC,		/* a task of the workload exec'ed: it runs a new image */
	BO_EV_TX_ROUND,		/* STREAM queued a batch that ends a round */
	BO_EV_RX_ROUND,		/* RECEIVE accepted a round's marker */
};

/* Ring buffer records; times are CLOCK_TAI nanoseconds. */
struct blackout_event {
	__u32 type;		/* enum blackout_event_type */
	__u32 pid;		/* PAUSE: the task that ran first again; EXEC: its pid */
	__u64 ts;		/* PAUSE: when it ran again; else when it happened */
	__u64 last_run;		/* PAUSE: the last time any task of it left the CPU */
	__u64 parked;		/* PAUSE: the last time a task of it was parked */
	__u32 how;		/* PAUSE: BO_STOPPED | BO_FROZEN, of the parked tasks */
	__u32 nparked;		/* PAUSE: parking switch-outs since it last ran */
	__u64 round;		/* TX_ROUND, RX_ROUND */
	__u64 records;		/* TX_ROUND, RX_ROUND: records of the round */
	__u64 bytes;		/* TX_ROUND: bytes STREAM queued since the last round */
	__u64 write_faults;	/* TX_ROUND: write faults since the last round */
	__u64 harvests;		/* TX_ROUND: HARVEST calls since the last round */
	__u64 harvest_ns;	/* TX_ROUND: their time */
};

/* Read by the loader at any time (the skeleton's .bss). */
struct blackout_state {
	__u64 last_run;		/* last switch-out of any task of the workload */
	__u64 last_in;		/* last switch-in of one */
	__u64 parked;		/* last parking switch-out */
	__u32 how;		/* BO_* of the parkings since it last ran */
	__u32 nparked;
	__u64 exec;		/* the last exec of the workload */
	__u64 pauses;		/* BO_EV_PAUSE events */
	__u64 lost;		/* events the ring buffer had no room for */
	/* Since the last TX_ROUND: */
	__u64 records, bytes, write_faults, harvests, harvest_ns;
};

#endif
