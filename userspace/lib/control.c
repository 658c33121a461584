// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket of a long-running tool (dt_control.h): one thread
 * accepts connections, reads one command line from each, and answers with
 * the owner's handler. The owner shares state with its handler under its
 * own lock; this file knows nothing of what the commands mean.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dt_control.h"

struct dt_ctl {
	int lfd;
	int stop[2];		/* a byte (or EOF) on stop[0] ends the thread */
	pthread_t thread;
	dt_ctl_handler handler;
	void *ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int addr_of(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Read up to a newline within timeout_ms; returns the length, or -errno. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return (int)strlen(buf);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void *serve(void *arg)
{
	struct dt_ctl *c = arg;
	char cmd[DT_CTL_LINE], *reply = malloc(DT_CTL_REPLY + 1);

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = c->lfd, .events = POLLIN },
			{ .fd = c->stop[0], .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (read_line(fd, cmd, sizeof(cmd), 2000) >= 0 && reply) {
			c->handler(c->ctx, cmd, reply, DT_CTL_REPLY);
			strcat(reply, "\n");
			write_all(fd, reply, strlen(reply));
		}
		close(fd);
	}
	free(reply);
	return NULL;
}

struct dt_ctl *dt_ctl_listen(const char *path, dt_ctl_handler h, void *ctx, int *err)
{
	struct sockaddr_un sa;
	struct dt_ctl *c;
	struct stat st;
	int fd, ret;

	ret = addr_of(path, &sa);
	if (ret)
		goto fail;
	if (!lstat(path, &st)) {
		/* A socket nobody listens on is a leftover: replace it. */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ret = !S_ISSOCK(st.st_mode) || fd < 0 ||
		      !connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		      errno != ECONNREFUSED ? -EADDRINUSE : 0;
		if (fd >= 0)
			close(fd);
		if (ret)
			goto fail;
		unlink(path);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto fail;
	}
	c->handler = h;
	c->ctx = ctx;
	strcpy(c->path, path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 || pipe2(c->stop, O_CLOEXEC)) {
		ret = -errno;
		goto out_free;
	}
	/* Owner-only from the start: bind under a umask of 077. */
	mode_t old = umask(077);

	ret = bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (!ret && listen(c->lfd, 8))
		ret = -errno;
	if (!ret) {
		ret = -pthread_create(&c->thread, NULL, serve, c);
		if (!ret)
			return c;
		unlink(path);
	}
	close(c->stop[0]);
	close(c->stop[1]);
out_free:
	if (c->lfd >= 0)
		close(c->lfd);
	free(c);
fail:
	*err = ret;
	return NULL;
}

void dt_ctl_close(struct dt_ctl *c)
{
	if (!c)
		return;
	close(c->stop[1]);
	pthread_join(c->thread, NULL);
	close(c->stop[0]);
	close(c->lfd);
	unlink(c->path);
	free(c);
}

int dt_ctl_request(const char *path, const char *cmd, char *reply, size_t len, int timeout_ms)
{
	struct sockaddr_un sa;
	int fd, ret;

	ret = addr_of(path, &sa);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	write_all(fd, cmd, strlen(cmd));
	write_all(fd, "\n", 1);
	ret = read_line(fd, reply, len, timeout_ms);
	close(fd);
	if (ret == 0)
		return -ECONNRESET;	/* closed without a reply */
	return ret < 0 ? ret : 0;
}
