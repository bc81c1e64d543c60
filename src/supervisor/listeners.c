/* listen: where listening sockets come from. Order of preference for each
 * [listener NAME]: the one we already hold (reload), one passed in under
 * its name (systemd socket unit, fd store, previous image), then bind(). */
#include "supervisor/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/log.h"

int listen_pool_add(struct listen_pool *pool, int fd, const char *name)
{
	if (pool->n >= sizeof(pool->fds) / sizeof(pool->fds[0]))
		return -E2BIG;
	pool->fds[pool->n] = fd;
	snprintf(pool->names[pool->n], sizeof(pool->names[0]), "%s", name ? name : "unknown");
	pool->n++;
	return 0;
}

int listen_pool_from_systemd(struct listen_pool *pool, char *err, size_t err_len)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(err, err_len, "cannot read the sockets passed by systemd (LISTEN_FDS): %s", strerror(-n));
		return n;
	}
	int r = 0;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *name = names && names[i] ? names[i] : "unknown";
		if (r == 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, err_len,
				 "fd %d ('%s') passed by systemd is not a listening stream socket", fd, name);
			r = -ENOTSOCK;
		}
		if (r == 0) {
			/* Accepting must never block a worker: EPOLLEXCLUSIVE wakes one
			 * worker, but another may already have taken the connection. */
			int fl = fcntl(fd, F_GETFL);
			if (fl >= 0)
				fcntl(fd, F_SETFL, fl | O_NONBLOCK);
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			r = listen_pool_add(pool, fd, name);
			if (r < 0)
				snprintf(err, err_len, "too many sockets passed by systemd");
		}
		if (r < 0)
			close(fd);
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return r;
}

void listen_pool_close(struct listen_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++)
		if (pool->fds[i] >= 0)
			close(pool->fds[i]);
	pool->n = 0;
}

/* Take the pool's fd for name; a lone unnamed fd serves a lone listener. */
static int listen_pool_take(struct listen_pool *pool, const char *name, bool single)
{
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->fds[i] >= 0 && strcmp(pool->names[i], name) == 0) {
			int fd = pool->fds[i];
			pool->fds[i] = -1;
			return fd;
		}
	}
	if (single && pool->n == 1 && pool->fds[0] >= 0 && strcmp(pool->names[0], "unknown") == 0) {
		int fd = pool->fds[0];
		pool->fds[0] = -1;
		return fd;
	}
	return -1;
}

/* A unix socket file left by a dead server is removed; a live one is not. */
static int listen_unix_stale(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st;
	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)sun, len);
	int e = errno;
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (e != ECONNREFUSED)
		return -e;
	if (unlink(sun->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int listen_bind(const struct config_address *a, int backlog, unsigned mode)
{
	int family = a->sa.ss_family;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, r;
	if (family == AF_UNIX) {
		r = listen_unix_stale((const struct sockaddr_un *)&a->sa, a->sa_len);
		if (r < 0)
			goto fail_r;
	} else {
		/* Restarting must not wait for TIME_WAIT connections to expire. */
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			goto fail;
		/* [::]:80 means IPv6 only; IPv4 gets its own listener. */
		if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			goto fail;
	}
	if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) < 0)
		goto fail;
	if (family == AF_UNIX && chmod(((const struct sockaddr_un *)&a->sa)->sun_path, mode) < 0)
		goto fail;
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
fail_r:
	close(fd);
	return r;
}

int listen_open(const struct config_listener *cfg, struct listener *old, size_t n_old,
		struct listen_pool *pool, bool single, struct listener *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", cfg->name);
	snprintf(out->address, sizeof(out->address), "%s", cfg->address.text);
	for (size_t i = 0; i < n_old; i++) {
		if (old[i].fd >= 0 && strcmp(old[i].name, cfg->name) == 0 &&
		    strcmp(old[i].address, out->address) == 0) {
			/* Same socket, same accept queue: a reload never closes it. */
			*out = old[i];
			old[i].fd = -1;
			return 0;
		}
	}
	int fd = pool ? listen_pool_take(pool, cfg->name, single) : -1;
	if (fd >= 0) {
		out->fd = fd;
		out->from_systemd = true;
		return 0;
	}
	if (cfg->address.kind == ADDR_NONE) {
		snprintf(err, err_len,
			 "[listener %s] has no address and systemd passed no socket named '%s' "
			 "(set FileDescriptorName=%s in the socket unit, or add address = HOST:PORT)",
			 cfg->name, cfg->name, cfg->name);
		return -ENOENT;
	}
	fd = listen_bind(&cfg->address, cfg->backlog, cfg->mode);
	if (fd < 0) {
		snprintf(err, err_len, "[listener %s] cannot listen on %s: %s", cfg->name,
			 cfg->address.text, strerror(-fd));
		return fd;
	}
	out->fd = fd;
	out->unix_bound = cfg->address.kind == ADDR_UNIX;
	return 0;
}

void listen_close(struct listener *l)
{
	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if (l->unix_bound && strncmp(l->address, "unix:", 5) == 0)
		unlink(l->address + 5);
}
