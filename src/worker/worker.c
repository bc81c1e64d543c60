/* worker: accept, hand off to the protocol, heartbeat, drain. One process,
 * one loop, no threads: every connection is read and written only here. */
#include "worker/worker.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/conn.h"
#include "core/chan.h"
#include "proto/echo.h"
#include "proto/http/http.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/scoreboard.h"

#define WORKER_ACCEPT_BATCH 8      /* accepts per wake-up: serving is not starved, and a burst
                                    * of connections wakes the other workers too (EPOLLEXCLUSIVE) */
#define WORKER_HEARTBEAT_MS 500    /* well under the 1 s the supervisor may expect */
#define WORKER_EMFILE_PAUSE_MS 100 /* out of fds: stop accepting this long */

struct worker {
	const struct config *cfg;
	struct loop *loop;
	struct scoreboard *sb;
	struct scoreboard_slot *slot;
	uint32_t generation;
	int chan_fd;
	int signal_fd;
	struct worker_listener *listeners;
	size_t n_listeners;
	bool *registered;  /* per listener: in the loop now */
	bool fd_pause;     /* EMFILE/ENFILE back-off in progress */
	bool started;      /* the supervisor said START: accept */
	bool draining;
	bool exiting;      /* closing everything: no drain bookkeeping */
	bool http_ready;
	uint64_t drain_deadline_ms;
	struct conn *conns;
	size_t n_conns;
	size_t n_http;
	uint64_t requests;
	uint64_t recycle_at; /* 0 = never */
	bool recycle_sent;
	struct loop_timer heartbeat;
	struct loop_timer fd_pause_timer;
	struct loop_timer drain_timer;
};

static struct worker worker_self; /* one worker per process */

bool worker_is_draining(const struct worker *w) { return w->draining; }
const struct config *worker_config(const struct worker *w) { return w->cfg; }
struct loop *worker_loop(struct worker *w) { return w->loop; }
struct scoreboard_slot *worker_slot(struct worker *w) { return w->slot; }
const struct scoreboard *worker_scoreboard(const struct worker *w) { return w->sb; }

static __attribute__((noreturn)) void worker_exit(struct worker *w, int status)
{
	if (w->http_ready)
		http_worker_done(w);
	log_debug("exiting");
	/* _exit: nothing inherited from the supervisor's stdio may be flushed twice. */
	_exit(status);
}

static void worker_update_accepting(struct worker *w);

/* Accept up to one batch from l; stops at EAGAIN or the connection limit. */
static void worker_accept_batch(struct worker *w, const struct worker_listener *l)
{
	int fd = l->fd;
	for (int i = 0; i < WORKER_ACCEPT_BATCH && !w->draining; i++) {
		size_t limit = w->cfg->server.max_connections;
		if (w->n_conns >= limit)
			break;
		if (l->protocol == PROTO_HTTP && w->cfg->http.max_connections && w->n_http >= w->cfg->http.max_connections)
			break;
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The connection stays in the accept queue; retrying now would
				 * spin. Serve what we have and try again shortly. */
				log_errno(LOG_WARNING, -errno, "accept on '%s' paused for %d ms", l->name,
					  WORKER_EMFILE_PAUSE_MS);
				w->fd_pause = true;
				loop_timer_arm(w->loop, &w->fd_pause_timer, WORKER_EMFILE_PAUSE_MS);
				break;
			}
			/* ECONNABORTED and network errors belong to that one client. */
			continue;
		}
		sb_add(&w->slot->accepted, 1);
		int r = l->protocol == PROTO_ECHO ? echo_accept(w, l, cfd, (struct sockaddr *)&peer, peer_len)
						  : http_accept(w, l, cfd, (struct sockaddr *)&peer, peer_len);
		if (r < 0) {
			log_errno(LOG_WARNING, r, "cannot take a connection on '%s'", l->name);
			close(cfd);
		}
	}
}

static void worker_accept(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = &worker_self;
	worker_accept_batch(w, arg);
	worker_update_accepting(w);
}

/* Listen only while there is room: at the limit the connections wait in the
 * kernel's accept queue (or another worker takes them) instead of being
 * accepted and dropped. */
static void worker_update_accepting(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++) {
		struct worker_listener *l = &w->listeners[i];
		bool want = w->started && !w->draining && !w->fd_pause && l->fd >= 0 &&
			    w->n_conns < w->cfg->server.max_connections;
		if (want && l->protocol == PROTO_HTTP && w->cfg->http.max_connections)
			want = w->n_http < w->cfg->http.max_connections;
		if (want == w->registered[i])
			continue;
		if (want) {
			int r = loop_add_fd(w->loop, l->fd, LOOP_READ | LOOP_EXCLUSIVE, worker_accept, l);
			if (r < 0) {
				log_errno(LOG_ERR, r, "cannot watch listener '%s'", l->name);
				continue;
			}
		} else {
			loop_del_fd(w->loop, l->fd);
		}
		w->registered[i] = want;
	}
}

static void worker_fd_pause_done(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker *w = arg;
	w->fd_pause = false;
	worker_update_accepting(w);
}

void worker_conn_attach(struct worker *w, struct conn *c)
{
	c->next = w->conns;
	c->prev = NULL;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	if (c->listener && c->listener->protocol == PROTO_HTTP)
		w->n_http++;
	sb_store(&w->slot->connections, w->n_conns);
}

void worker_conn_detach(struct worker *w, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->n_conns--;
	if (c->listener && c->listener->protocol == PROTO_HTTP)
		w->n_http--;
	sb_store(&w->slot->connections, w->n_conns);
}

void worker_conn_closed(struct worker *w)
{
	if (w->exiting)
		return;
	if (w->draining) {
		if (w->n_conns == 0) {
			log_info("drained, exiting");
			worker_exit(w, 0);
		}
		return;
	}
	worker_update_accepting(w);
}

void worker_request_done(struct worker *w)
{
	sb_add(&w->slot->requests, 1);
	w->requests++;
	if (w->recycle_at && !w->recycle_sent && w->requests >= w->recycle_at && !w->draining) {
		/* Keep serving until the supervisor has a replacement READY and
		 * sends DRAIN: capacity never dips. */
		w->recycle_sent = true;
		log_info("served %llu requests (max_requests), asking to be replaced",
			 (unsigned long long)w->requests);
		chan_send(w->chan_fd, CHAN_RECYCLE_ME, w->requests);
	}
}

static void worker_close_all(struct worker *w)
{
	w->exiting = true;
	while (w->conns)
		conn_close(w->conns);
}

static void worker_drain_deadline(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker *w = arg;
	log_warning("drain deadline reached, closing %zu connection(s)", w->n_conns);
	worker_close_all(w);
	worker_exit(w, 0);
}

/* The seed's order: stop accepting, let live connections finish, exit;
 * the deadline forces what is left. */
static void worker_drain(struct worker *w, uint64_t deadline_ms)
{
	if (w->draining) {
		if (deadline_ms < w->drain_deadline_ms) {
			w->drain_deadline_ms = deadline_ms;
			loop_timer_arm_at(w->loop, &w->drain_timer, deadline_ms);
		}
		return;
	}
	/* Connections the kernel already completed for us are served, not
	 * reset: if this is the last copy of a listener (a stop without
	 * systemd), closing it would reset what waits in its queue. */
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->registered[i])
			worker_accept_batch(w, &w->listeners[i]);
	w->draining = true;
	w->drain_deadline_ms = deadline_ms;
	/* 1. Stop accepting; the supervisor (or systemd) keeps the sockets, so
	 * their accept queues survive for the next generation. */
	for (size_t i = 0; i < w->n_listeners; i++) {
		if (w->registered[i])
			loop_del_fd(w->loop, w->listeners[i].fd);
		w->registered[i] = false;
		close(w->listeners[i].fd);
		w->listeners[i].fd = -1;
	}
	sb_store32(&w->slot->state, SLOT_DRAINING);
	chan_send(w->chan_fd, CHAN_DRAINING, w->n_conns);
	log_info("draining %zu connection(s)", w->n_conns);
	if (w->n_conns == 0)
		worker_exit(w, 0);
	loop_timer_arm_at(w->loop, &w->drain_timer, deadline_ms);
	/* 2-3. Each connection closes when idle or after its current response. */
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		c->ops->drain(c);
		c = next;
	}
}

static void worker_control(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = arg;
	for (;;) {
		struct chan_msg m;
		int r = chan_recv(fd, &m);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			if (r < 0)
				log_errno(LOG_ERR, r, "control channel");
			/* The supervisor is gone: finish what we have and leave. */
			loop_del_fd(loop, fd);
			log_warning("supervisor gone, draining");
			worker_drain(w, loop_now_ms(loop) + w->cfg->server.shutdown_timeout_ms);
			return;
		}
		switch (m.type) {
		case CHAN_DRAIN:
			worker_drain(w, m.arg);
			break;
		case CHAN_STOP:
			worker_close_all(w);
			worker_exit(w, 0);
		case CHAN_REOPEN_LOGS:
			if (w->http_ready)
				http_reopen_logs(w);
			break;
		case CHAN_START:
			w->started = true;
			worker_update_accepting(w);
			break;
		default:
			log_warning("unexpected %s on the control channel", chan_type_name(m.type));
			break;
		}
	}
}

static void worker_signal(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			/* Normally only the supervisor is signalled (KillMode=mixed);
			 * a signal sent to the whole group still drains cleanly. */
			worker_drain(w, loop_now_ms(loop) + w->cfg->server.shutdown_timeout_ms);
			break;
		case SIGQUIT:
			worker_close_all(w);
			worker_exit(w, 0);
		case SIGUSR1:
			if (w->http_ready)
				http_reopen_logs(w);
			break;
		}
	}
}

static void worker_heartbeat(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker *w = arg;
	sb_store(&w->slot->heartbeat_ms, loop_now_ms(loop));
	loop_timer_arm(loop, t, WORKER_HEARTBEAT_MS);
}

/* Drop to [server] user/group before touching a client: supplementary
 * groups, then gid, then uid, each checked (setuid first would leave us
 * unable to change the rest). */
static int worker_drop_privileges(const struct config *cfg)
{
	if (!cfg->server.user && !cfg->server.group)
		return 0;
	if (geteuid() != 0)
		return 0; /* the supervisor already checked we are that user */
	uid_t uid = geteuid();
	gid_t gid = getegid();
	const char *uname = NULL;
	if (cfg->server.user) {
		struct passwd *pw = getpwnam(cfg->server.user);
		if (!pw)
			return -ESRCH;
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		uname = pw->pw_name;
	}
	if (cfg->server.group) {
		struct group *gr = getgrnam(cfg->server.group);
		if (!gr)
			return -ESRCH;
		gid = gr->gr_gid;
	}
	if (uname ? initgroups(uname, gid) < 0 : setgroups(0, NULL) < 0)
		return -errno;
	if (setresgid(gid, gid, gid) < 0)
		return -errno;
	if (setresuid(uid, uid, uid) < 0)
		return -errno;
	if (uid != 0 && (setuid(0) == 0 || geteuid() != uid || getegid() != gid))
		return -EPERM;
	return 0;
}

void worker_main(const struct worker_params *p)
{
	struct worker *w = &worker_self;
	char role[48];
	snprintf(role, sizeof(role), "worker %u.%u", p->generation, p->index);
	log_set_role(role);
	prctl(PR_SET_NAME, "drover-worker", 0, 0, 0);

	memset(w, 0, sizeof(*w));
	w->cfg = p->cfg;
	w->sb = p->sb;
	w->slot = &p->sb->slots[p->slot];
	w->generation = p->generation;
	w->chan_fd = p->chan_fd;
	w->n_listeners = p->n_listeners;
	w->listeners = calloc(p->n_listeners ? p->n_listeners : 1, sizeof(*w->listeners));
	w->registered = calloc(p->n_listeners ? p->n_listeners : 1, sizeof(*w->registered));
	w->loop = loop_new();
	if (!w->listeners || !w->registered || !w->loop) {
		log_error("out of memory starting");
		_exit(1);
	}
	memcpy(w->listeners, p->listeners, p->n_listeners * sizeof(*w->listeners));
	__atomic_store_n(&w->slot->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
	sb_store(&w->slot->heartbeat_ms, loop_now_ms(w->loop));

	/* The supervisor blocks the signals it reads from its signalfd; take our
	 * own instead, and never die of SIGPIPE (sendfile can raise it). */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	w->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w->signal_fd < 0 || loop_add_fd(w->loop, w->signal_fd, LOOP_READ, worker_signal, w) < 0) {
		log_errno(LOG_ERR, -errno, "cannot set up signals");
		_exit(1);
	}
	int r = worker_drop_privileges(w->cfg);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot switch to user '%s' / group '%s'",
			  w->cfg->server.user ? w->cfg->server.user : "-",
			  w->cfg->server.group ? w->cfg->server.group : "-");
		_exit(1);
	}
	bool any_http = false;
	for (size_t i = 0; i < w->n_listeners; i++)
		any_http |= w->listeners[i].protocol == PROTO_HTTP;
	if (any_http) {
		r = http_worker_init(w);
		if (r < 0) {
			log_errno(LOG_ERR, r, "cannot start the http protocol");
			_exit(1);
		}
		w->http_ready = true;
	}

	if (w->cfg->server.max_requests) {
		uint64_t jitter = w->cfg->server.max_requests_jitter;
		/* Jitter so that workers started together are not recycled together. */
		w->recycle_at = w->cfg->server.max_requests +
				(jitter ? (uint64_t)(((unsigned)getpid() * 2654435761u) % (jitter + 1)) : 0);
	}

	loop_timer_init(&w->heartbeat, worker_heartbeat, w);
	loop_timer_init(&w->fd_pause_timer, worker_fd_pause_done, w);
	loop_timer_init(&w->drain_timer, worker_drain_deadline, w);
	loop_timer_arm(w->loop, &w->heartbeat, WORKER_HEARTBEAT_MS);
	if (loop_add_fd(w->loop, w->chan_fd, LOOP_READ, worker_control, w) < 0) {
		log_error("cannot watch the control channel");
		_exit(1);
	}
	/* READY now, accept on START: systemd hears READY=1 before anyone is served. */
	sb_store32(&w->slot->state, SLOT_READY);
	chan_send(w->chan_fd, CHAN_READY, 0);
	log_debug("ready");

	r = loop_run(w->loop);
	log_errno(LOG_ERR, r, "event loop failed");
	worker_exit(w, 1);
}
