/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_workload: pause, resume and end a running workload from outside it,
 * the way a migration needs: through the cgroup v2 freezer (cgroup.freeze,
 * then "frozen 1" in cgroup.events), where no cgroup is usable by SIGSTOP to
 * its process group (waiting until every thread is stopped), or for a QEMU
 * guest through QMP (QEMU's own migration stops it, cancelling it thaws it).
 *
 * Functions return 0 on success and a negative errno on failure, with a
 * sentence in the workload's why[] saying what failed.
 */
#ifndef DT_WORKLOAD_H
#define DT_WORKLOAD_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

enum dt_freeze_kind {
	DT_FREEZE_CGROUP,	/* cgroup v2 cgroup.freeze */
	DT_FREEZE_SIGSTOP,	/* SIGSTOP / SIGCONT to the process group */
	DT_FREEZE_QEMU,		/* QMP migrate / migrate_cancel (dt_qmp.h) */
};

struct dt_qmp;

struct dt_workload {
	enum dt_freeze_kind kind;
	pid_t pid;		/* a process of the workload */
	pid_t pgid;		/* SIGSTOP: its process group */
	char cgroup[PATH_MAX];	/* CGROUP: the cgroup directory; QEMU: its
				 * cgroup v2 if it has one of its own, else "" */
	struct dt_qmp *qmp;	/* QEMU */
	bool frozen;
	char why[256];
};

/*
 * Describe the workload of pid: with kind CGROUP, the cgroup directory is
 * cgroup (NULL: pid's own cgroup v2, found through /proc/PID/cgroup and
 * the cgroup2 mount). Refuses a cgroup that holds the caller (freezing it
 * would freeze dt-migrate too) and the root cgroup.
 */
int dt_workload_init(struct dt_workload *w, enum dt_freeze_kind kind, pid_t pid,
		     const char *cgroup);
/*
 * A QEMU guest, through its QMP connection (the process is QEMU's, from the
 * socket's peer). Freezing it starts QEMU's migration of what is not the
 * region (dt_qmp_migrate_start()), which stops the guest's vCPUs before its
 * switchover; QEMU's other threads go on. Thawing it cancels that migration
 * and lets the guest run (dt_qmp_resume()).
 */
int dt_workload_init_qemu(struct dt_workload *w, struct dt_qmp *q);
/* Freeze and wait until every task is frozen (at most timeout_ms). */
int dt_workload_freeze(struct dt_workload *w, int timeout_ms);
/*
 * The same in two steps, for work between the request and the wait (such
 * as waking tasks that sleep where the freeze cannot reach them).
 */
int dt_workload_freeze_start(struct dt_workload *w);
int dt_workload_freeze_wait(struct dt_workload *w, int timeout_ms);
/* Let it run again. */
int dt_workload_thaw(struct dt_workload *w);
/*
 * SIGKILL every task (cgroup.kill for a cgroup, which is then thawed if it
 * was frozen here, so that it is not left frozen for tasks to come; a QEMU
 * guest: -EINVAL).
 */
int dt_workload_kill(struct dt_workload *w);
/* The workload still has a live process. */
bool dt_workload_alive(const struct dt_workload *w);

#endif /* DT_WORKLOAD_H */
