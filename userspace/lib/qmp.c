// SPDX-License-Identifier: GPL-2.0
/*
 * dt_qmp: a QMP client for the few commands a migration of a QEMU guest
 * whose RAM is a dirtytrack region needs. See dt_qmp.h.
 *
 * QMP is one JSON object a line each way; a command's reply is the next
 * object with "return" or "error" (commands are sent one at a time, so no
 * "id" is needed), and asynchronous "event" objects may come in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dt_qmp.h"

/* The name the state pipe goes by in QEMU's fd table (getfd/closefd). */
#define STATE_FD "dtstate"

static int fail(struct dt_qmp *q, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->why, sizeof(q->why), fmt, ap);
	va_end(ap);
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int left_ms(long long end)
{
	long long l = end - now_ms();

	return l < 0 ? 0 : (int)l;
}

/* Wait for events on fd until end; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, long long end)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, left_ms(end));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static void state_close(struct dt_qmp *q)
{
	if (q->state_fd >= 0)
		close(q->state_fd);
	q->state_fd = -1;
	q->state_in = false;
}

/*
 * Source: read what QEMU has written to the pipe so far into state;
 * state_eof once QEMU closed it.
 */
static int state_drain(struct dt_qmp *q)
{
	while (!q->state_eof) {
		ssize_t n;

		if (q->state_len == q->state_max)
			return fail(q, -EFBIG, "QEMU's device state is over %zu bytes", q->state_max);
		n = read(q->state_fd, q->state + q->state_len, q->state_max - q->state_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return fail(q, -errno, "reading QEMU's device state: %s", strerror(errno));
		if (!n)
			q->state_eof = true;
		q->state_len += (size_t)n;
	}
	return 0;
}

/*
 * Wait until QEMU's reply can be read. Meanwhile keep an outgoing state pipe
 * drained: QEMU's migration thread may write to it holding the lock that
 * the monitor needs to answer, and block on a full pipe.
 */
static int wait_reply(struct dt_qmp *q, long long end)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = q->fd, .events = POLLIN },
				       { .fd = q->state_fd, .events = POLLIN } };
		nfds_t np = q->state_in && !q->state_eof ? 2 : 1;
		int n = poll(p, np, left_ms(end));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ETIMEDOUT;
		if (np == 2 && p[1].revents) {
			n = state_drain(q);
			if (n)
				return n;
		}
		if (p[0].revents)
			return 0;
	}
}

/* The next message, events included; the caller puts it. */
static int read_msg(struct dt_qmp *q, json_object **out, long long end)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		ssize_t n;
		int ret;

		if (nl) {
			size_t line = (size_t)(nl - q->buf) + 1;

			*nl = '\0';
			*out = json_tokener_parse(q->buf);
			memmove(q->buf, q->buf + line, q->len - line);
			q->len -= line;
			if (!*out || !json_object_is_type(*out, json_type_object)) {
				json_object_put(*out);
				return fail(q, -EPROTO, "QMP %s: a reply that is not a JSON object",
					    q->path);
			}
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return fail(q, -EMSGSIZE, "QMP %s: a reply over %zu bytes", q->path,
				    sizeof(q->buf));
		ret = wait_reply(q, end);
		if (ret == -EFBIG)
			return ret;
		if (ret)
			return fail(q, ret, "QMP %s: %s waiting for QEMU", q->path,
				    ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(q, n ? -errno : -ECONNRESET, "QMP %s: %s", q->path,
				    n ? strerror(errno) : "QEMU closed the connection");
		q->len += (size_t)n;
	}
}

static int send_line(struct dt_qmp *q, const char *s, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)s, .iov_len = strlen(s) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (iov.iov_len) {
		n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(q, -errno, "QMP %s: sending: %s", q->path, strerror(errno));
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		mh.msg_control = NULL;		/* the descriptor went with the first byte */
		mh.msg_controllen = 0;
	}
	return 0;
}

/* Events are skipped, but for the time of a STOP (vm_stop() has paused the vCPUs). */
static void note_event(struct dt_qmp *q, json_object *r)
{
	json_object *ev, *ts, *sec, *usec;

	if (!json_object_object_get_ex(r, "event", &ev) ||
	    strcmp(json_object_get_string(ev), "STOP") ||
	    !json_object_object_get_ex(r, "timestamp", &ts) ||
	    !json_object_object_get_ex(ts, "seconds", &sec) ||
	    !json_object_object_get_ex(ts, "microseconds", &usec))
		return;
	q->stop_ns = (long long)json_object_get_int64(sec) * 1000000000LL +
		     json_object_get_int64(usec) * 1000LL;
}

int dt_qmp_cmd(struct dt_qmp *q, const char *cmd, json_object *args, int fd,
	       json_object **ret, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	json_object *m = json_object_new_object(), *r, *v;
	int err;

	if (ret)
		*ret = NULL;
	/* The id tells this reply from a late one to a command that timed out. */
	json_object_object_add(m, "execute", json_object_new_string(cmd));
	json_object_object_add(m, "id", json_object_new_uint64(++q->seq));
	if (args)
		json_object_object_add(m, "arguments", args);
	err = send_line(q, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN), fd);
	if (!err)
		err = send_line(q, "\n", -1);
	json_object_put(m);
	while (!err) {
		err = read_msg(q, &r, end);
		if (err)
			break;
		if (json_object_object_get_ex(r, "id", &v) &&
		    json_object_get_uint64(v) != q->seq) {
			json_object_put(r);
			continue;
		}
		if (json_object_object_get_ex(r, "return", &v)) {
			if (ret)
				*ret = json_object_get(v);
			json_object_put(r);
			return 0;
		}
		if (json_object_object_get_ex(r, "error", &v)) {
			json_object *desc = NULL;

			json_object_object_get_ex(v, "desc", &desc);
			err = fail(q, -EIO, "QEMU refused %s: %s", cmd,
				   desc ? json_object_get_string(desc) : "(no reason given)");
		}
		note_event(q, r);
		json_object_put(r);		/* an event, or the error */
	}
	return err;
}

int dt_qmp_open(struct dt_qmp *q, const char *path, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	json_object *greeting;
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->state_fd = -1;
	q->state_max = 1 << 20;
	snprintf(q->path, sizeof(q->path), "%s", path);
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(q, -ENAMETOOLONG, "QMP socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path));
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return fail(q, -errno, "socket: %s", strerror(errno));
		if (!connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		ret = -errno;
		close(q->fd);
		q->fd = -1;
		/* QEMU not listening yet: its socket is missing or refuses */
		if ((ret != -ENOENT && ret != -ECONNREFUSED) || now_ms() >= end)
			return fail(q, ret, "QMP %s: %s", path, strerror(-ret));
		usleep(20000);
	}
	if (!getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen))
		q->pid = cred.pid;
	ret = read_msg(q, &greeting, end);
	if (ret)
		goto err;
	if (!json_object_object_get_ex(greeting, "QMP", NULL)) {
		json_object_put(greeting);
		ret = fail(q, -EPROTO, "%s is not a QMP socket (no greeting)", path);
		goto err;
	}
	json_object_put(greeting);
	ret = dt_qmp_cmd(q, "qmp_capabilities", NULL, -1, NULL, left_ms(end));
	if (!ret)
		return 0;
err:
	close(q->fd);
	q->fd = -1;
	return ret;
}

void dt_qmp_close(struct dt_qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	state_close(q);
	free(q->state);
	q->state = NULL;
}

static int get_string(json_object *o, const char *key, char *out, size_t len)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return -ENOENT;
	snprintf(out, len, "%s", json_object_get_string(v));
	return 0;
}

int dt_qmp_status(struct dt_qmp *q, char *status, size_t len, int timeout_ms)
{
	json_object *r;
	int ret = dt_qmp_cmd(q, "query-status", NULL, -1, &r, timeout_ms);

	if (!ret && get_string(r, "status", status, len))
		ret = fail(q, -EPROTO, "query-status: no status in QEMU's reply");
	json_object_put(r);
	return ret;
}

int dt_qmp_cont(struct dt_qmp *q, int timeout_ms)
{
	return dt_qmp_cmd(q, "cont", NULL, -1, NULL, timeout_ms);
}

/* migrate-set-capabilities: x-ignore-shared, and pause-before-switchover on or off. */
static int set_caps(struct dt_qmp *q, bool pause, int timeout_ms)
{
	static const char *const names[] = { "x-ignore-shared", "pause-before-switchover" };
	json_object *args = json_object_new_object(), *caps = json_object_new_array();

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_object *cap = json_object_new_object();

		json_object_object_add(cap, "capability", json_object_new_string(names[i]));
		json_object_object_add(cap, "state", json_object_new_boolean(i ? pause : 1));
		json_object_array_add(caps, cap);
	}
	json_object_object_add(args, "capabilities", caps);
	return dt_qmp_cmd(q, "migrate-set-capabilities", args, -1, NULL, timeout_ms);
}

int dt_qmp_ignore_shared(struct dt_qmp *q, int timeout_ms)
{
	return set_caps(q, false, timeout_ms);
}

/*
 * query-migrate's status (empty before any migration) and, when it failed,
 * QEMU's reason.
 */
static int migrate_status(struct dt_qmp *q, char *status, size_t len, char *err,
			  size_t errlen, long long end)
{
	json_object *r;
	/* A poll near its loop's deadline still gets time for an answer. */
	int ret = dt_qmp_cmd(q, "query-migrate", NULL, -1, &r,
			     left_ms(end) > 2000 ? left_ms(end) : 2000);

	if (ret)
		return ret;
	status[0] = '\0';
	get_string(r, "status", status, len);
	if (err) {
		err[0] = '\0';
		get_string(r, "error-desc", err, errlen);
	}
	json_object_put(r);
	return 0;
}

/* Poll query-migrate until it is over: 0 if completed. */
static int migrate_wait(struct dt_qmp *q, const char *what, long long end)
{
	char st[32], err[256];
	int ret;

	for (;;) {
		ret = migrate_status(q, st, sizeof(st), err, sizeof(err), end);
		if (ret)
			return ret;
		if (!strcmp(st, "completed"))
			return 0;
		if (!strcmp(st, "failed") || !strcmp(st, "cancelled"))
			return fail(q, -EIO, "QEMU's %s %s%s%s", what, st, err[0] ? ": " : "", err);
		if (now_ms() >= end)
			return fail(q, -ETIMEDOUT, "QEMU's %s still %s after the timeout", what,
				    st[0] ? st : "not started");
		usleep(2000);
	}
}

/*
 * Hand QEMU one end of a pipe under the name STATE_FD; the other, made
 * non-blocking, is q->state_fd.
 */
static int state_pipe(struct dt_qmp *q, bool qemu_writes, long long end)
{
	json_object *args = json_object_new_object();
	int p[2], theirs, mine, ret;

	if (pipe2(p, O_CLOEXEC))
		return fail(q, -errno, "pipe: %s", strerror(errno));
	theirs = qemu_writes ? p[1] : p[0];
	mine = qemu_writes ? p[0] : p[1];
	json_object_object_add(args, "fdname", json_object_new_string(STATE_FD));
	ret = dt_qmp_cmd(q, "getfd", args, theirs, NULL, left_ms(end));
	close(theirs);
	if (ret || fcntl(mine, F_SETFL, O_NONBLOCK)) {
		close(mine);
		return ret ? ret : fail(q, -errno, "pipe: %s", strerror(errno));
	}
	q->state_fd = mine;
	return 0;
}

static int migrate_cmd(struct dt_qmp *q, const char *cmd, long long end)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "uri", json_object_new_string("fd:" STATE_FD));
	return dt_qmp_cmd(q, cmd, args, -1, NULL, left_ms(end));
}

int dt_qmp_migrate_start(struct dt_qmp *q, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int ret;

	if (!q->state) {
		q->state = malloc(q->state_max);
		if (!q->state)
			return fail(q, -ENOMEM, "out of memory for QEMU's device state");
	}
	q->state_len = 0;
	q->state_eof = false;
	q->stop_ns = 0;
	ret = set_caps(q, true, left_ms(end));
	if (!ret)
		ret = state_pipe(q, true, end);
	q->state_in = !ret;
	if (!ret)
		ret = migrate_cmd(q, "migrate", end);
	if (ret) {
		char why[sizeof(q->why)];

		/* No migration: leave QEMU's capability as a plain migrate wants it. */
		state_close(q);
		memcpy(why, q->why, sizeof(why));
		set_caps(q, false, 2000);
		memcpy(q->why, why, sizeof(why));
		return ret;
	}
	q->migrating = true;
	return 0;
}

int dt_qmp_migrate_stopped(struct dt_qmp *q, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	char st[32], err[256];
	int ret;

	for (;;) {
		/* QEMU sends its own RAM first: query-migrate drains the pipe meanwhile. */
		ret = migrate_status(q, st, sizeof(st), err, sizeof(err), end);
		if (ret)
			return ret;
		if (!strcmp(st, "pre-switchover"))
			return 0;
		if (strcmp(st, "setup") && strcmp(st, "active") && strcmp(st, "device"))
			return fail(q, -EIO, "QEMU's migration is %s%s%s before the switchover", st,
				    err[0] ? ": " : "", err);
		if (now_ms() >= end)
			return fail(q, -ETIMEDOUT, "QEMU did not stop the guest for the switchover "
				    "within %d ms (its migration is %s)", timeout_ms, st);
		usleep(1000);
		ret = state_drain(q);
		if (ret)
			return ret;
	}
}

int dt_qmp_save_state(struct dt_qmp *q, int timeout_ms)
{
	json_object *args = json_object_new_object();
	long long end = now_ms() + timeout_ms;
	int ret;

	json_object_object_add(args, "state", json_object_new_string("pre-switchover"));
	ret = dt_qmp_cmd(q, "migrate-continue", args, -1, NULL, left_ms(end));
	/* QEMU closes its end when the stream is over. */
	while (!ret && !q->state_eof) {
		ret = state_drain(q);
		if (!ret && !q->state_eof) {
			ret = wait_fd(q->state_fd, POLLIN, end);
			if (ret)
				ret = fail(q, ret, "QEMU's device state: %s",
					   ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		}
	}
	state_close(q);
	return ret ? ret : migrate_wait(q, "migration of device state", end);
}

int dt_qmp_incoming(struct dt_qmp *q, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int ret = state_pipe(q, false, end);

	if (!ret)
		ret = migrate_cmd(q, "migrate-incoming", end);
	if (ret)
		state_close(q);
	return ret;
}

int dt_qmp_load_state(struct dt_qmp *q, const void *buf, size_t len, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	size_t off = 0;
	int ret = q->state_fd < 0 ? fail(q, -EBADF, "QEMU is not waiting for a migration") : 0;
	ssize_t n;

	while (!ret && off < len) {
		n = write(q->state_fd, (const char *)buf + off, len - off);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			ret = wait_fd(q->state_fd, POLLOUT, end);
			if (ret)
				ret = fail(q, ret, "writing QEMU's device state: %s",
					   ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		} else if (n < 0) {
			ret = fail(q, -errno, "writing QEMU's device state: %s",
				   errno == EPIPE ? "QEMU stopped reading it" : strerror(errno));
		} else {
			off += (size_t)n;
		}
	}
	state_close(q);
	if (ret && ret != -EIO && ret != -EBADF) {
		/* QEMU's own word on why it stopped reading, when it has one */
		char mine[sizeof(q->why)];

		memcpy(mine, q->why, sizeof(mine));
		if (migrate_wait(q, "incoming migration", now_ms() + 2000) == -EIO)
			return -EIO;
		memcpy(q->why, mine, sizeof(mine));
	}
	return ret ? ret : migrate_wait(q, "incoming migration", end);
}

int dt_qmp_resume(struct dt_qmp *q, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	char st[32];
	int ret;

	if (q->migrating) {
		/* A migration thread blocked writing to the pipe fails on EPIPE. */
		state_close(q);
		ret = migrate_status(q, st, sizeof(st), NULL, 0, end);
		if (ret)
			return ret;
		if (strcmp(st, "completed") && strcmp(st, "failed") && strcmp(st, "cancelled")) {
			ret = dt_qmp_cmd(q, "migrate_cancel", NULL, -1, NULL, left_ms(end));
			if (ret)
				return ret;
			/* Over: QEMU has set the guest's run state by then. */
			do {
				ret = migrate_status(q, st, sizeof(st), NULL, 0, end);
				if (ret)
					return ret;
				if (now_ms() >= end)
					return fail(q, -ETIMEDOUT, "migrate_cancel: still %s", st);
				usleep(2000);
			} while (strcmp(st, "failed") && strcmp(st, "cancelled") &&
				 strcmp(st, "completed"));
		}
		q->migrating = false;
		/* A plain migrate by someone else later must not pause. */
		ret = set_caps(q, false, left_ms(end));
		if (ret)
			return ret;
	}
	/* QEMU restarts a guest its cancelled migration stopped; one done stays postmigrate. */
	ret = dt_qmp_status(q, st, sizeof(st), left_ms(end));
	if (!ret && strcmp(st, "running"))
		ret = dt_qmp_cont(q, left_ms(end));
	return ret;
}
