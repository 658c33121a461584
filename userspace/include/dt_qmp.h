/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_qmp: drive a running QEMU through its QMP socket (-qmp unix:PATH,...)
 * for a migration whose guest RAM is a dirtytrack region: QEMU's own
 * migration of everything but that RAM, with the x-ignore-shared capability
 * (QEMU leaves shared RAM, the region, out of its stream), over a pipe
 * handed to QEMU with getfd.
 *
 * Both QEMUs set up their side of the migration before the guest stops,
 * so that the stop costs only the device state: the source migrates with
 * pause-before-switchover (QEMU sends its own RAM, the ROMs, while the
 * guest runs, then stops the guest and waits for migrate-continue), and
 * the destination is in migrate-incoming, reading the pipe, from the start.
 *
 * Functions return 0 on success and a negative errno on failure, with a
 * sentence in why[] saying what failed (QEMU's own error text for a
 * command QEMU refused).
 */
#ifndef DT_QMP_H
#define DT_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct json_object;

struct dt_qmp {
	int fd;
	pid_t pid;		/* QEMU's, from the socket's peer credentials */
	char path[108];
	char buf[65536];	/* what was read and not yet parsed */
	size_t len;
	unsigned long long seq;	/* the last command's id */
	bool migrating;		/* an outgoing migration was started */
	int state_fd;		/* our end of the migration pipe, or -1 */
	bool state_in, state_eof;	/* source: state_fd is QEMU's output; it ended */
	char *state;		/* source: what QEMU wrote to it */
	size_t state_len, state_max;	/* state_max: 1 MiB unless set after open */
	long long stop_ns;	/* CLOCK_REALTIME of QEMU's last STOP event seen, or 0 */
	char why[512];
};

/*
 * Connect to the QMP socket at path, retrying for up to timeout_ms while it
 * does not exist yet (a QEMU still starting), read the greeting and leave
 * capability negotiation.
 */
int dt_qmp_open(struct dt_qmp *q, const char *path, int timeout_ms);
void dt_qmp_close(struct dt_qmp *q);

/*
 * Run one command; args may be NULL, and its reference is taken. The reply's
 * "return" value, if ret is not NULL, is the caller's (json_object_put()).
 * Events that arrive meanwhile are skipped. With fd >= 0 the descriptor
 * goes with the command (SCM_RIGHTS), as getfd needs.
 */
int dt_qmp_cmd(struct dt_qmp *q, const char *cmd, struct json_object *args, int fd,
	       struct json_object **ret, int timeout_ms);

/* query-status: "running", "paused", "inmigrate", "postmigrate", ... */
int dt_qmp_status(struct dt_qmp *q, char *status, size_t len, int timeout_ms);

/* cont: the guest runs. */
int dt_qmp_cont(struct dt_qmp *q, int timeout_ms);

/* migrate-set-capabilities x-ignore-shared on (both sides need it). */
int dt_qmp_ignore_shared(struct dt_qmp *q, int timeout_ms);

/*
 * Source, the freeze: start QEMU's migration into the pipe, paused before
 * the switchover. The guest runs until QEMU stops it, once it has sent its
 * own RAM: dt_qmp_migrate_stopped() waits for that, keeping the pipe
 * drained into state (at most state_max bytes).
 */
int dt_qmp_migrate_start(struct dt_qmp *q, int timeout_ms);
int dt_qmp_migrate_stopped(struct dt_qmp *q, int timeout_ms);

/*
 * Source, after the last round of guest RAM: migrate-continue; QEMU saves
 * its devices. Returns when QEMU says completed, the whole stream in
 * state[0..state_len).
 */
int dt_qmp_save_state(struct dt_qmp *q, int timeout_ms);

/*
 * Destination (QEMU started with -incoming defer, x-ignore-shared set):
 * migrate-incoming from the pipe, now; QEMU waits for the stream.
 */
int dt_qmp_incoming(struct dt_qmp *q, int timeout_ms);

/*
 * Destination, once the guest RAM is whole: write the stream saved by
 * dt_qmp_save_state() to QEMU and wait until QEMU says completed.
 */
int dt_qmp_load_state(struct dt_qmp *q, const void *buf, size_t len, int timeout_ms);

/*
 * Source, after a failure before commitment or to go back to pre-copy:
 * cancel an outgoing migration if one was started (QEMU then restarts the
 * guest it stopped), turn pause-before-switchover off again, and cont a
 * guest that is still stopped (one whose migration had completed).
 */
int dt_qmp_resume(struct dt_qmp *q, int timeout_ms);

#endif /* DT_QMP_H */
