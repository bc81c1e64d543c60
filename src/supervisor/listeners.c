/* listeners: where listening sockets come from, and the supervisor's set
 * of them. Order of preference for each [listener NAME]: the one we
 * already hold (reload), one passed in under its name (systemd socket
 * unit, fd store, previous image), then bind(). A listener a reload drops
 * is retired: kept until the generations that may accept on it are gone. */
#include "supervisor/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/handover.h"
#include "worker/tls.h"
#include "worker/transport.h"

/* Sockets received from outside, by name, not yet given to a listener. */
struct listen_pool {
	int fds[CONFIG_MAX_LISTENERS * 5];
	char names[CONFIG_MAX_LISTENERS * 5][CONFIG_NAME_MAX + 1];
	size_t n;
};

/* Add one inherited fd under a name (systemd's, or a binary upgrade's). */
static int listen_pool_add(struct listen_pool *pool, int fd, const char *name)
{
	if (pool->n >= sizeof(pool->fds) / sizeof(pool->fds[0]))
		return -E2BIG;
	pool->fds[pool->n] = fd;
	snprintf(pool->names[pool->n], sizeof(pool->names[0]), "%s", name ? name : "unknown");
	pool->n++;
	return 0;
}

/* Take the sockets systemd passed (LISTEN_FDS/LISTEN_FDNAMES, checked with
 * sd_is_socket), making them CLOEXEC; unsets the variables. 0 or -errno. */
static int listen_pool_from_systemd(struct listen_pool *pool, char *err, size_t err_len)
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

/* Close what nobody took. */
static void listen_pool_close(struct listen_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++)
		if (pool->fds[i] >= 0)
			close(pool->fds[i]);
	pool->n = 0;
}

/* Take the pool's fd for name (a lone unnamed fd serves a lone
 * listener); -ENOENT if it has none. */
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
	return -ENOENT;
}

/* A unix socket file left by a dead server is removed; a live one is not. */
static int listen_unix_stale(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st;
	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* Non-blocking: a live listener whose queue is full (a stuck server, or
	 * one of ours retired and no longer accepted on) must not block the
	 * supervisor's loop in connect(); it is in use all the same. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)sun, len);
	int e = errno;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS)
		return -EADDRINUSE;
	if (e != ECONNREFUSED)
		return -e;
	if (unlink(sun->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* [listener] defer_accept on l's socket: always on one drover binds (or
 * bound before a binary upgrade); on one from systemd (a socket unit, or
 * the fd store across a restart) only when the file gives the key, else it
 * keeps what its unit's DeferAcceptSec= or its last run set. Not a TCP
 * socket: nothing to do. 0 or -errno. */
static int listen_defer(const struct listener *l, const struct config_listener *cfg)
{
	if (cfg->address.kind == ADDR_UNIX || (l->from_systemd && !cfg->defer_accept_set))
		return 0;
	int secs = (int)((cfg->defer_accept_ms + 999) / 1000);
	if (setsockopt(l->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) < 0)
		return errno == EOPNOTSUPP || errno == ENOPROTOOPT ? 0 : -errno;
	return 0;
}

void listen_defer_all(const struct listen_set *s, const struct config *cfg)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct config_listener *cl = config_find_listener(cfg, s->cur[i].name);
		int r = cl ? listen_defer(&s->cur[i], cl) : 0;
		if (r < 0)
			log_warning("[listener %s] defer_accept: %s; left as it was", cl->name, strerror(-r));
	}
}

/* Whether connections on fd come only with data (TCP_DEFER_ACCEPT). */
static bool listen_data_first(int fd)
{
	int secs = 0;
	socklen_t len = sizeof(secs);
	return getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, &len) == 0 && secs > 0;
}

/* Bind and listen on an address (non-blocking, CLOEXEC, SO_REUSEADDR). fd or -errno. */
static int listen_bind(const struct config_address *a, int backlog, unsigned mode)
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

/* Build the listener for cfg: reuse one from old with the same name and
 * address (reload), else take the pool's fd named like it (a single unnamed
 * fd matches a single listener), else bind the address. 0 or -errno with a
 * message naming the listener and address. */
static int listen_open(const struct config_listener *cfg, struct listener *old, size_t n_old,
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
	int fd = pool ? listen_pool_take(pool, cfg->name, single) : -ENOENT;
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
	int r = listen_defer(out, cfg);
	if (r < 0) {
		snprintf(err, err_len, "[listener %s] defer_accept on %s: %s", cfg->name, cfg->address.text,
			 strerror(-r));
		close(fd);
		out->fd = -1;
		return r;
	}
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

/* ------------------------------------------------ the supervisor's set */

void listen_set_init(struct listen_set *s, const struct sup_sink *sink)
{
	memset(s, 0, sizeof(*s));
	s->sink = *sink;
}

/* Keep a listener nobody configures until generation until_generation is
 * gone; systemd's fd store lets go of it now, or the next start would get
 * it back. */
static void listen_retire(struct listen_set *s, const struct listener *l, uint32_t until_generation)
{
	if (!l->from_systemd)
		sup_report(&s->sink, &(struct sup_event){ .kind = SUP_EV_LISTENER_RETIRED, .text = l->name });
	if (s->n_retired < sizeof(s->retired) / sizeof(s->retired[0])) {
		s->retired[s->n_retired].l = *l;
		s->retired[s->n_retired].until_generation = until_generation;
		s->n_retired++;
	} else {
		struct listener copy = *l;
		listen_close(&copy);
	}
}

/* Open every listener of cfg, reusing what s holds or taking it from pool. */
static int listen_set_open_from(struct listen_set *s, const struct config *cfg, struct listen_pool *pool,
				uint32_t generation, char *err, size_t err_len)
{
	struct listener fresh[CONFIG_MAX_LISTENERS];
	struct listener old[CONFIG_MAX_LISTENERS];
	size_t n_old = s->n;
	memcpy(old, s->cur, sizeof(old[0]) * n_old);
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		r = listen_open(&cfg->listeners[i], old, n_old, pool, cfg->n_listeners == 1, &fresh[n], err, err_len);
		if (r < 0)
			break;
		n++;
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++) {
			bool reused = false;
			for (size_t j = 0; j < n_old && !reused; j++)
				reused = fresh[i].fd == s->cur[j].fd;
			if (!reused)
				listen_close(&fresh[i]);
		}
		return r;
	}
	/* Listeners the new config dropped are closed once nobody uses them. */
	for (size_t j = 0; j < n_old; j++)
		if (old[j].fd >= 0)
			listen_retire(s, &old[j], generation);
	memcpy(s->cur, fresh, sizeof(fresh[0]) * n);
	s->n = n;
	listen_defer_all(s, cfg);
	return 0;
}

int listen_set_open(struct listen_set *s, const struct config *cfg, uint32_t generation, char *err, size_t err_len)
{
	return listen_set_open_from(s, cfg, NULL, generation, err, err_len);
}

int listen_set_start(struct listen_set *s, const struct config *cfg)
{
	char err[4096] = "";
	struct listen_pool pool = { .n = 0 };
	int r = listen_pool_from_systemd(&pool, err, sizeof(err));
	if (r >= 0)
		r = listen_set_open_from(s, cfg, &pool, 0, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		listen_pool_close(&pool);
		return r;
	}
	for (size_t i = 0; i < pool.n; i++) {
		if (pool.fds[i] >= 0) {
			log_error("systemd passed a socket named '%s' (fd %d) but %s has no [listener %s] section",
				  pool.names[i], pool.fds[i], cfg->path, pool.names[i]);
			r = -EINVAL;
		}
	}
	if (r < 0)
		listen_pool_close(&pool);
	return r;
}

/* The handed-over description of fd, or NULL. */
static const struct handover_listener *listen_adopted(const struct handover *st, int fd)
{
	for (size_t j = 0; j < st->n_listeners; j++)
		if (st->listeners[j].fd == fd)
			return &st->listeners[j];
	return NULL;
}

/* After a binary upgrade: listeners come from what the previous image
 * handed over, never closed because of a problem here (the old workers
 * still serve on them). A listener the new config moved to another address
 * is bound anew; one that cannot be opened is skipped and logged; the old
 * ones nobody takes are retired, closed when the old generation is gone.
 * If nothing could be opened at all, the previous set is kept. */
static void listen_set_open_adopted(struct listen_set *s, const struct config *cfg, struct listen_pool *pool,
				    const struct handover *st)
{
	for (size_t i = 0; i < pool->n; i++) {
		const struct handover_listener *u = listen_adopted(st, pool->fds[i]);
		const struct config_listener *cl = config_find_listener(cfg, pool->names[i]);
		/* A socket systemd passed keeps its name whatever the address says. */
		if (u && cl && !u->from_systemd && strcmp(u->address, cl->address.text) != 0)
			pool->names[i][0] = '\0';
	}
	char err[512];
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener *l = &s->cur[n];
		if (listen_open(&cfg->listeners[i], NULL, 0, pool, false, l, err, sizeof(err)) < 0) {
			log_error("binary upgrade: %s; not serving it", err);
			continue;
		}
		const struct handover_listener *u = listen_adopted(st, l->fd);
		if (u) {
			l->from_systemd = u->from_systemd;
			l->unix_bound = u->unix_bound;
		}
		n++;
	}
	s->n = n;
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->fds[i] < 0)
			continue;
		const struct handover_listener *u = listen_adopted(st, pool->fds[i]);
		struct listener old = { .fd = pool->fds[i], .from_systemd = u ? u->from_systemd : true,
					.unix_bound = u ? u->unix_bound : false };
		snprintf(old.name, sizeof(old.name), "%s", u ? u->name : pool->names[i]);
		snprintf(old.address, sizeof(old.address), "%s", u ? u->address : "");
		pool->fds[i] = -1;
		if (s->n == 0 && cfg->n_listeners > 0) {
			log_error("binary upgrade: no configured listener could be opened; keeping '%s'", old.name);
			s->cur[s->n++] = old;
			continue;
		}
		listen_retire(s, &old, st->generation);
	}
	listen_defer_all(s, cfg);
}

void listen_set_start_handed(struct listen_set *s, const struct config *cfg, const struct handover *st,
			     enum listen_hand how)
{
	struct listen_pool pool = { .n = 0 };
	for (size_t i = 0; i < st->n_listeners; i++)
		listen_pool_add(&pool, st->listeners[i].fd, st->listeners[i].name);
	listen_set_open_adopted(s, cfg, &pool, st);
	if (how == LISTEN_HAND_OVER)
		return;
	/* Lent to a trial: never ours to unlink. */
	for (size_t i = 0; i < s->n; i++)
		s->cur[i].unix_bound = false;
	for (size_t i = 0; i < s->n_retired; i++)
		s->retired[i].l.unix_bound = false;
}

void listen_close_retired(struct listen_set *s, uint32_t ready_generation, uint32_t oldest_alive)
{
	size_t j = 0;
	for (size_t i = 0; i < s->n_retired; i++) {
		struct listen_retired *r = &s->retired[i];
		if (r->until_generation < ready_generation || r->until_generation < oldest_alive) {
			log_info("closing listener '%s' (%s): removed by reload", r->l.name,
				 r->l.address[0] ? r->l.address : "systemd");
			listen_close(&r->l);
		} else {
			s->retired[j++] = *r;
		}
	}
	s->n_retired = j;
}

void listen_close_all(struct listen_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		listen_close(&s->cur[i]);
	for (size_t i = 0; i < s->n_retired; i++)
		listen_close(&s->retired[i].l);
	s->n_retired = 0;
}

void listen_build_worker(struct listen_set *s, const struct config *cfg)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct config_listener *cl = config_find_listener(cfg, s->cur[i].name);
		struct worker_listener *wl = &s->wl[i];
		wl->fd = s->cur[i].fd;
		snprintf(wl->name, sizeof(wl->name), "%s", s->cur[i].name);
		wl->proto = cl ? proto_find(cl->protocol) : proto_table()[0];
		wl->data_first = listen_data_first(wl->fd);
		wl->transport_ctx = cl ? tls_listener_context(cfg, cl) : NULL;
		wl->transport = wl->transport_ctx ? &transport_tls : NULL;
		wl->proxy_protocol = cl && cl->proxy_protocol;
	}
}

void listen_log_set(const struct listen_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct listener *l = &s->cur[i];
		log_info("listener '%s' on %s (%s%s%s)", l->name,
			 l->address[0] && !l->from_systemd ? l->address : "a socket passed by systemd",
			 s->wl[i].proto->name, s->wl[i].transport_ctx ? " over TLS" : "",
			 s->wl[i].proxy_protocol ? ", PROXY protocol first" : "");
	}
}

/* With FileDescriptorStoreMax= systemd keeps them across a restart and
 * passes them back in LISTEN_FDS; without it, it drops them. */
size_t listen_fdstore(const struct listen_set *s, int *fds, const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n && n < max; i++) {
		if (s->cur[i].from_systemd)
			continue;
		fds[n] = s->cur[i].fd;
		names[n] = s->cur[i].name;
		n++;
	}
	return n;
}

void listen_snapshot(struct listen_set *s)
{
	memcpy(s->prev, s->cur, sizeof(s->cur[0]) * s->n);
	s->prev_n = s->n;
	s->prev_n_retired = s->n_retired;
}

/* Listeners the failed attempt retired serve again; ones it opened go. */
void listen_rollback(struct listen_set *s, uint32_t failed_generation)
{
	struct listener opened[CONFIG_MAX_LISTENERS];
	size_t n_opened = 0;
	for (size_t i = 0; i < s->n; i++) {
		bool old = false;
		for (size_t j = 0; j < s->prev_n && !old; j++)
			old = s->prev[j].fd == s->cur[i].fd;
		if (!old)
			opened[n_opened++] = s->cur[i];
	}
	s->n_retired = s->prev_n_retired;
	memcpy(s->cur, s->prev, sizeof(s->cur[0]) * s->prev_n);
	s->n = s->prev_n;
	for (size_t i = 0; i < n_opened; i++)
		listen_retire(s, &opened[i], failed_generation);
}

int listen_describe(const struct listen_set *s, struct handover *st, enum listen_hand how)
{
	size_t n = how == LISTEN_LEND ? s->n : s->n + s->n_retired;
	if (st->n_listeners + n > HANDOVER_MAX_LISTENERS && how == LISTEN_HAND_OVER)
		return -E2BIG;
	for (size_t i = 0; i < n && st->n_listeners < HANDOVER_MAX_LISTENERS; i++) {
		const struct listener *l = i < s->n ? &s->cur[i] : &s->retired[i - s->n].l;
		struct handover_listener *u = &st->listeners[st->n_listeners++];
		u->fd = l->fd;
		snprintf(u->name, sizeof(u->name), "%s", l->name);
		snprintf(u->address, sizeof(u->address), "%s", l->address);
		u->from_systemd = how == LISTEN_LEND || l->from_systemd;
		u->unix_bound = how == LISTEN_HAND_OVER && l->unix_bound;
	}
	return 0;
}
