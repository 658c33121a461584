/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_qmp: drive a running QEMU through its QMP socket (-qmp unix:PATH,...)
 * for a migration whose guest RAM is a dirtytrack region: stop and cont,
 * and QEMU's own migration of device state only, with the x-ignore-shared
 * capability (QEMU leaves shared RAM, the region, out of its stream), over
 * a pipe handed to QEMU with getfd.
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
	bool migrating;		/* an outgoing migration was started */
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

/* stop (vCPUs paused when it returns) and cont. */
int dt_qmp_stop(struct dt_qmp *q, int timeout_ms);
int dt_qmp_cont(struct dt_qmp *q, int timeout_ms);

/* migrate-set-capabilities x-ignore-shared on (both sides need it). */
int dt_qmp_ignore_shared(struct dt_qmp *q, int timeout_ms);

/*
 * Source: QEMU's migration of everything but shared RAM, into buf (at most
 * max bytes), waiting until QEMU says completed. The guest must be stopped.
 */
int dt_qmp_save_state(struct dt_qmp *q, void *buf, size_t max, size_t *len, int timeout_ms);

/*
 * Destination (QEMU started with -incoming defer): load the device state
 * saved by dt_qmp_save_state(), waiting until QEMU says completed.
 */
int dt_qmp_load_state(struct dt_qmp *q, const void *buf, size_t len, int timeout_ms);

/*
 * Source, after a failure before commitment: cancel an outgoing migration
 * if one was started, and let the guest run again.
 */
int dt_qmp_resume(struct dt_qmp *q, int timeout_ms);

#endif /* DT_QMP_H */
