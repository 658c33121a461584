/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dt_control: a process's control socket, and its client.
 *
 * A Unix stream socket (mode 0600) served by one thread: each connection
 * carries one command line ("pause\n", "status\n", ...) and gets one reply
 * line back, written by the owner's handler on that thread. dt-migrate
 * send --control serves one; dt-migrate ctl is the client.
 *
 * Functions return 0 (or a pointer) on success and a negative errno (or
 * NULL with *err set) on failure.
 */
#ifndef DT_CONTROL_H
#define DT_CONTROL_H

#include <stddef.h>

#define DT_CTL_LINE	128	/* the longest command line */
#define DT_CTL_REPLY	4096	/* the longest reply line */

struct dt_ctl;

/*
 * Called on the control thread with one command (its line, without the
 * newline); writes a NUL-terminated reply of at most len bytes.
 */
typedef void (*dt_ctl_handler)(void *ctx, const char *cmd, char *reply, size_t len);

/*
 * Listen on path: a stale socket there (nobody listening) is replaced, a
 * live one or any other file is -EADDRINUSE.
 */
struct dt_ctl *dt_ctl_listen(const char *path, dt_ctl_handler h, void *ctx, int *err);

/* Stop serving (a command being handled is finished first), unlink path. */
void dt_ctl_close(struct dt_ctl *c);

/* Client: send cmd, read the reply line (without its newline) into reply. */
int dt_ctl_request(const char *path, const char *cmd, char *reply, size_t len,
		   int timeout_ms);

#endif
