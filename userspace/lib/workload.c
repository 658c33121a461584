// SPDX-License-Identifier: GPL-2.0
/*
 * Pause, resume and end a workload from outside: cgroup v2 freezer or
 * SIGSTOP to a process group. See dt_workload.h.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dt_qmp.h"
#include "dt_workload.h"

static int fail(struct dt_workload *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	return err;
}

/* The cgroup v2 path of pid ("0::/a/b" in /proc/PID/cgroup) into buf. */
static int cgroup_of(pid_t pid, char *buf, size_t len)
{
	char path[64], line[PATH_MAX + 8];
	FILE *f;
	int ret = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		ret = strlen(line + 3) < len ? 0 : -ENAMETOOLONG;
		if (!ret)
			strcpy(buf, line + 3);
		break;
	}
	fclose(f);
	return ret;
}

/* Where cgroup2 is mounted (from /proc/self/mountinfo). */
static int cgroup2_mount(char *buf, size_t len)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 "), *mnt;

		if (!sep)
			continue;
		/* id parent major:minor root mount-point ... */
		mnt = line;
		for (int i = 0; i < 4 && mnt; i++) {
			mnt = strchr(mnt, ' ');
			if (mnt)
				mnt++;
		}
		if (!mnt)
			continue;
		mnt[strcspn(mnt, " ")] = 0;
		snprintf(buf, len, "%s", mnt);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX + 32];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* 1 if cgroup.events says "frozen 1", 0 if not, -errno. */
static int cgroup_frozen(const char *dir)
{
	char path[PATH_MAX + 32], line[128];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strcmp(line, "frozen 1\n"))
			ret = 1;
	fclose(f);
	return ret;
}

static int init_cgroup(struct dt_workload *w, const char *cgroup)
{
	char mnt[PATH_MAX], rel[PATH_MAX], self[2 * PATH_MAX];
	size_t n;
	int ret;

	if (cgroup) {
		snprintf(w->cgroup, sizeof(w->cgroup), "%s", cgroup);
	} else {
		ret = cgroup2_mount(mnt, sizeof(mnt));
		if (ret)
			return fail(w, ret, "no cgroup v2 mount (use --cgroup PATH or --freeze sigstop)");
		ret = cgroup_of(w->pid, rel, sizeof(rel));
		if (ret)
			return fail(w, ret, "pid %d has no cgroup v2 path in /proc/%d/cgroup",
				    (int)w->pid, (int)w->pid);
		if (!strcmp(rel, "/"))
			return fail(w, -EPERM, "pid %d is in the root cgroup, which cannot be frozen: "
				    "move it to a cgroup of its own or use --freeze sigstop", (int)w->pid);
		if (snprintf(w->cgroup, sizeof(w->cgroup), "%s%s", mnt, rel) >=
		    (int)sizeof(w->cgroup))
			return fail(w, -ENAMETOOLONG, "cgroup path too long");
	}
	if (access(w->cgroup, F_OK))
		return fail(w, -errno, "cgroup %s: %s", w->cgroup, strerror(errno));
	ret = cgroup_frozen(w->cgroup);
	if (ret < 0)
		return fail(w, ret, "%s/cgroup.events: %s (not a cgroup v2 directory?)",
			    w->cgroup, strerror(-ret));
	/* Refuse a cgroup that holds us: freezing it would freeze dt-migrate. */
	if (!cgroup2_mount(mnt, sizeof(mnt)) && !cgroup_of(getpid(), rel, sizeof(rel))) {
		snprintf(self, sizeof(self), "%s%s", mnt, rel);
		n = strlen(w->cgroup);
		if (!strncmp(self, w->cgroup, n) && (self[n] == 0 || self[n] == '/'))
			return fail(w, -EDEADLK, "cgroup %s holds dt-migrate itself: "
				    "run the workload in a cgroup of its own", w->cgroup);
	}
	return 0;
}

int dt_workload_init(struct dt_workload *w, enum dt_freeze_kind kind, pid_t pid,
		     const char *cgroup)
{
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->pid = pid;
	if (kill(pid, 0))
		return fail(w, -errno, "pid %d: %s", (int)pid, strerror(errno));
	if (kind == DT_FREEZE_CGROUP)
		return init_cgroup(w, cgroup);
	w->pgid = getpgid(pid);
	if (w->pgid < 0)
		return fail(w, -errno, "getpgid(%d): %s", (int)pid, strerror(errno));
	if (w->pgid == getpgrp())
		return fail(w, -EDEADLK, "pid %d is in dt-migrate's own process group: "
			    "start the workload with setsid", (int)pid);
	return 0;
}

int dt_workload_init_qemu(struct dt_workload *w, struct dt_qmp *q)
{
	memset(w, 0, sizeof(*w));
	w->kind = DT_FREEZE_QEMU;
	w->qmp = q;
	w->pid = q->pid;
	if (!w->pid)
		return fail(w, -ESRCH, "QMP %s: QEMU's pid is unknown", q->path);
	/* cpu.max only: a cgroup that holds dt-migrate too is none of QEMU's */
	if (init_cgroup(w, NULL))
		w->cgroup[0] = '\0';
	w->why[0] = '\0';
	return 0;
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };

	nanosleep(&ts, NULL);
}

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* The state letter of /proc/PID/task/TID/stat (after the last ')'). */
static char task_state(const char *path)
{
	char buf[512], *p;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 'X';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 'X';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 'X';
}

/* Field 5 of /proc/PID/stat: the process group. */
static pid_t proc_pgrp(const char *pid)
{
	char path[300], buf[512], *p;
	int fd, pgrp = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %d", &pgrp) != 1)
		return -1;
	return pgrp;
}

/* 1 if every thread of every process of the group is stopped (or dead). */
static int group_stopped(pid_t pgid)
{
	DIR *proc = opendir("/proc"), *tasks;
	struct dirent *p, *t;
	char path[600];
	int all = 1;

	if (!proc)
		return -errno;
	while (all && (p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]) || proc_pgrp(p->d_name) != pgid)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", p->d_name);
		tasks = opendir(path);
		if (!tasks)
			continue;
		while (all && (t = readdir(tasks))) {
			char st;

			if (t->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/task/%s/stat", p->d_name, t->d_name);
			st = task_state(path);
			if (st != 'T' && st != 't' && st != 'Z' && st != 'X')
				all = 0;
		}
		closedir(tasks);
	}
	closedir(proc);
	return all;
}

int dt_workload_freeze_start(struct dt_workload *w)
{
	int ret;

	if (w->kind == DT_FREEZE_QEMU) {
		/* QEMU stops the guest itself, once its migration is set up */
		ret = dt_qmp_migrate_start(w->qmp, 10000);
		if (ret)
			return fail(w, ret, "%s", w->qmp->why);
	} else if (w->kind == DT_FREEZE_CGROUP) {
		ret = write_file(w->cgroup, "cgroup.freeze", "1");
		if (ret)
			return fail(w, ret, "%s/cgroup.freeze: %s", w->cgroup, strerror(-ret));
	} else if (kill(-w->pgid, SIGSTOP)) {
		return fail(w, -errno, "SIGSTOP to process group %d: %s", (int)w->pgid,
			    strerror(errno));
	}
	w->frozen = true;
	return 0;
}

int dt_workload_freeze_wait(struct dt_workload *w, int timeout_ms)
{
	long deadline = now_us() + timeout_ms * 1000L;
	int ret;

	if (w->kind == DT_FREEZE_QEMU) {
		/* vm_stop() has returned: the vCPUs are paused */
		ret = dt_qmp_migrate_stopped(w->qmp, timeout_ms);
		return ret ? fail(w, ret, "%s", w->qmp->why) : 0;
	}
	for (;;) {
		ret = w->kind == DT_FREEZE_CGROUP ? cgroup_frozen(w->cgroup)
						  : group_stopped(w->pgid);
		if (ret < 0)
			return fail(w, ret, "waiting for the freeze: %s", strerror(-ret));
		if (ret)
			return 0;
		if (now_us() > deadline)
			return fail(w, -ETIMEDOUT, "the workload did not freeze within %d ms",
				    timeout_ms);
		sleep_us(100);
	}
}

int dt_workload_freeze(struct dt_workload *w, int timeout_ms)
{
	int ret = dt_workload_freeze_start(w);

	return ret ? ret : dt_workload_freeze_wait(w, timeout_ms);
}

int dt_workload_thaw(struct dt_workload *w)
{
	int ret = 0;

	if (w->kind == DT_FREEZE_QEMU) {
		ret = dt_qmp_resume(w->qmp, 10000);
		if (ret)
			return fail(w, ret, "%s", w->qmp->why);
	} else if (w->kind == DT_FREEZE_CGROUP) {
		ret = write_file(w->cgroup, "cgroup.freeze", "0");
	} else if (kill(-w->pgid, SIGCONT)) {
		ret = -errno;
	}
	if (ret)
		return fail(w, ret, "thaw: %s", strerror(-ret));
	w->frozen = false;
	return 0;
}

int dt_workload_kill(struct dt_workload *w)
{
	char path[PATH_MAX + 32];
	FILE *f;
	int pid, ret;

	if (w->kind == DT_FREEZE_QEMU)
		return fail(w, -EINVAL, "a QEMU guest is left stopped, not killed");
	if (w->kind == DT_FREEZE_SIGSTOP)
		return kill(-w->pgid, SIGKILL) ? fail(w, -errno, "SIGKILL: %s", strerror(errno)) : 0;
	ret = write_file(w->cgroup, "cgroup.kill", "1");
	if (ret == -ENOENT) {
		/* Before Linux 5.14: each process of cgroup.procs. */
		snprintf(path, sizeof(path), "%s/cgroup.procs", w->cgroup);
		f = fopen(path, "r");
		if (!f)
			return fail(w, -errno, "%s: %s", path, strerror(errno));
		while (fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
		fclose(f);
		ret = 0;
	}
	if (ret)
		return fail(w, ret, "cgroup.kill: %s", strerror(-ret));
	/*
	 * SIGKILL ends frozen tasks too. Leave the cgroup as it was found: a
	 * task that joins it later must not freeze on arrival.
	 */
	return w->frozen ? dt_workload_thaw(w) : 0;
}

bool dt_workload_alive(const struct dt_workload *w)
{
	char path[64];
	char st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)w->pid);
	st = task_state(path);
	return st != 'X' && st != 'Z';
}
