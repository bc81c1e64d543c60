/* worker: accept, hand off to the protocol, heartbeat, drain. One process,
 * one loop, no threads: every connection is read and written only here. */
#include "worker/worker.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dup3 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/chan.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/scoreboard.h"
#include "worker/conn.h"
#include "worker/handoff.h"
#include "worker/proto.h"
#include "worker/proxy.h"

#define WORKER_ACCEPT_BATCH 8      /* accepts per wake-up: serving is not starved, and a burst
                                    * of connections wakes the other workers too (EPOLLEXCLUSIVE) */
#define WORKER_HEARTBEAT_MS 500    /* well under the 1 s the supervisor may expect */
#define WORKER_EMFILE_PAUSE_MS 100 /* out of fds: stop accepting this long */
#define WORKER_NOMEM_PAUSE_MS 1000 /* out of memory: stop accepting this long */
#define WORKER_NOMEM_FORGET_MS 10000 /* a shortage this long ago is over */
#define WORKER_NOMEM_PROBE (256 * 1024) /* memory is back when this much more can be had:
					 * a connection's buffers, with room to spare */
#define WORKER_FAULT_LOG_MS 1000   /* a repeated fault is logged at most this often */

/* A fault that may repeat at the rate of accepts: logged at most once per
 * WORKER_FAULT_LOG_MS, with how often it happened since the last line. A
 * count held back is written by the fault's timer when that second is up,
 * whether or not the fault happens again. */
struct worker_fault {
	uint64_t logged_ms;  /* last line written; 0 = never */
	unsigned long count; /* occurrences not logged yet */
	int err;             /* the last one's -errno; 0: none to name */
	const char *what;    /* the line's start: "accept paused" */
	const char *unit;    /* what count counts, for the line */
	struct loop_timer flush; /* writes a held-back count */
};

struct worker {
	const struct config *cfg;
	struct loop *loop;
	struct scoreboard_slot *slot;
	int chan_fd;
	int signal_fd;
	struct worker_listener *listeners;
	size_t n_listeners;
	bool *registered;  /* per listener: in the loop now */
	bool paused;       /* out of fds or memory: not accepting until accept_timer */
	bool paused_nomem; /* ...and memory was short: probed again at its end */
	bool started;      /* the supervisor said START: accept */
	bool draining;
	bool stopping;     /* draining for a stop: no newer generation */
	const struct proto *ready[CONFIG_MAX_PROTOCOLS]; /* protocols whose init() ran */
	size_t n_ready;
	uint64_t drain_deadline_ms;
	struct conn_set conns;
	struct proto_env env; /* what the protocols see of us */
	struct proto_fileset files; /* inherited from the supervisor */
	uint64_t requests;
	uint64_t recycle_at; /* 0 = never */
	bool recycle_sent;
	unsigned fail_index; /* the protocol whose init() failed */
	struct worker_fault no_fds;  /* accept4(): EMFILE, ENFILE, ENOBUFS, ENOMEM */
	struct worker_fault no_mem;  /* a protocol could not allocate: accepting paused */
	struct worker_fault nomem_drops; /* connections closed for lack of memory */
	uint64_t nomem_since_ms;     /* the shortage began (0: none yet) */
	uint64_t nomem_last_ms;      /* its latest failed allocation */
	struct loop_timer heartbeat;
	struct loop_timer accept_timer; /* the end of a pause */
	struct loop_timer drain_timer;
};

static struct worker worker_self; /* one worker per process */

static void worker_fault_flush(struct worker_fault *f);

static __attribute__((noreturn)) void worker_exit(struct worker *w, int status)
{
	worker_fault_flush(&w->no_fds);
	worker_fault_flush(&w->no_mem);
	worker_fault_flush(&w->nomem_drops);
	for (size_t i = w->n_ready; i-- > 0;)
		if (w->ready[i]->done)
			w->ready[i]->done();
	log_debug("exiting");
	/* _exit: nothing inherited from the supervisor's stdio may be flushed twice. */
	_exit(status);
}

static void worker_update_accepting(struct worker *w);

/* Room for one more connection on l: the worker's limit and l's protocol's.
 * Connections still sending their PROXY header count against the first. */
static bool worker_has_room(const struct worker *w, const struct worker_listener *l)
{
	if (conn_set_count(&w->conns) + proxy_held() >= w->cfg->server.max_connections)
		return false;
	unsigned own = l->proto->max_connections ? l->proto->max_connections(w->cfg) : 0;
	return own == 0 || conn_set_count_proto(&w->conns, l->proto) < own;
}

/* Log what f counted so far, if anything. */
static void worker_fault_flush(struct worker_fault *f)
{
	if (f->count == 0)
		return;
	if (f->err)
		log_warning("%s: %s; %lu %s since the last report", f->what, strerror(-f->err), f->count,
			    f->unit);
	else
		log_warning("%s: %lu %s since the last report", f->what, f->count, f->unit);
	f->count = 0;
}

/* Count one occurrence of f; write its line unless one went out less than
 * WORKER_FAULT_LOG_MS ago (then its timer writes the count when the
 * second is up). */
static void worker_fault(struct worker *w, struct worker_fault *f, int err)
{
	uint64_t now = loop_now_ms(w->loop);
	f->count++;
	f->err = err;
	if (f->logged_ms && now - f->logged_ms < WORKER_FAULT_LOG_MS) {
		if (!loop_timer_armed(&f->flush))
			loop_timer_arm_at(w->loop, &f->flush, f->logged_ms + WORKER_FAULT_LOG_MS);
		return;
	}
	f->logged_ms = now;
	worker_fault_flush(f);
}

static void worker_fault_timer(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker_fault *f = arg;
	(void)t;
	if (f->count == 0)
		return;
	f->logged_ms = loop_now_ms(loop);
	worker_fault_flush(f);
}

static void worker_fault_init(struct worker_fault *f, const char *what, const char *unit)
{
	f->what = what;
	f->unit = unit;
	loop_timer_init(&f->flush, worker_fault_timer, f);
}

/* Stop accepting for ms; whatever waits stays in the kernel's queue (or goes
 * to another worker) instead of being accepted and dropped. */
static void worker_pause_accepting(struct worker *w, uint64_t ms)
{
	w->paused = true;
	w->paused_nomem = false;
	loop_timer_arm(w->loop, &w->accept_timer, ms);
}

/* Ask the supervisor for a replacement (max_requests, out of memory). Keep
 * serving until it has one READY and sends DRAIN: capacity never dips. */
static void worker_ask_replacement(struct worker *w, const char *why, uint64_t flags)
{
	if (w->recycle_sent || w->draining)
		return;
	w->recycle_sent = true;
	log_info("%s, asking to be replaced", why);
	int r = chan_send(w->chan_fd, CHAN_RECYCLE_ME, (w->requests & ~CHAN_RECYCLE_NOMEM) | flags);
	if (r < 0) {
		/* Not fatal: the worker goes on serving, and asks again next time. */
		log_errno(LOG_WARNING, r, "cannot ask to be replaced");
		w->recycle_sent = false;
	}
}

/* An allocation for a connection failed: stop accepting for a while,
 * leaving the queue to the other workers; a connection that had to be
 * closed is counted (scoreboard, and a log line within a second). A
 * shortage that outlasts the pause (an address-space limit, a leak: memory
 * is not coming back; the protocols retry their waiting connections, so a
 * lasting one keeps reporting) asks for a replacement; a burst that passes
 * does not. */
static void worker_out_of_memory(const struct proto_env *env, enum proto_shortage what)
{
	struct worker *w = env->worker;
	uint64_t now = loop_now_ms(w->loop);
	if (!w->nomem_since_ms || now - w->nomem_last_ms > WORKER_NOMEM_FORGET_MS)
		w->nomem_since_ms = now;
	w->nomem_last_ms = now;
	if (what == PROTO_NOMEM_DROPPED) {
		sb_add(&w->slot->dropped_nomem, 1);
		worker_fault(w, &w->nomem_drops, 0);
	}
	if (!w->paused)
		worker_fault(w, &w->no_mem, -ENOMEM);
	worker_pause_accepting(w, WORKER_NOMEM_PAUSE_MS);
	w->paused_nomem = true;
	worker_update_accepting(w);
	if (now - w->nomem_since_ms >= WORKER_NOMEM_PAUSE_MS)
		worker_ask_replacement(w, "short of memory for over a second", CHAN_RECYCLE_NOMEM);
}

/* l's protocol did not take fd (r: -errno): closed, and counted when
 * memory was short. */
static void worker_refused(struct worker *w, const struct worker_listener *l, int fd, int r)
{
	close(fd);
	if (r != -ENOMEM) {
		log_errno(LOG_WARNING, r, "cannot take a connection on '%s'", l->name);
		return;
	}
	worker_out_of_memory(&w->env, PROTO_NOMEM_DROPPED);
}

/* Give a new connection to l's protocol, with its client's address. */
static void worker_give(struct worker *w, const struct worker_listener *l, int fd, const struct sockaddr *peer,
			socklen_t peer_len)
{
	int r = l->proto->accept(&w->env, l, fd, peer, peer_len);
	if (r < 0)
		worker_refused(w, l, fd, r);
}

/* Accept up to max connections from l; stops at EAGAIN, the connection
 * limit, or a fault that pauses accepting. A proxy_protocol listener's
 * connection goes to proxy.c first, which gives it on (worker_give) once
 * its header is read, with the client's address from it. */
static void worker_accept_some(struct worker *w, const struct worker_listener *l, size_t max)
{
	for (size_t i = 0; i < max && !w->paused; i++) {
		if (!worker_has_room(w, l))
			break;
		if (l->proto->reserve && l->proto->reserve(&w->env) < 0) {
			/* Nothing taken: the connection waits in the queue. */
			worker_out_of_memory(&w->env, PROTO_NOMEM_WAITING);
			break;
		}
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int cfd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The connection stays in the accept queue; retrying now would
				 * spin. Serve what we have and try again shortly. */
				worker_fault(w, &w->no_fds, -errno);
				worker_pause_accepting(w, WORKER_EMFILE_PAUSE_MS);
				break;
			}
			/* ECONNABORTED and network errors belong to that one client. */
			continue;
		}
		sb_add(&w->slot->accepted, 1);
		if (!l->proxy_protocol) {
			worker_give(w, l, cfd, (struct sockaddr *)&peer, peer_len);
			continue;
		}
		int r = proxy_hold(l, cfd, (struct sockaddr *)&peer, peer_len);
		if (r < 0)
			worker_refused(w, l, cfd, r);
	}
}

static void worker_accept(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = &worker_self;
	worker_accept_some(w, arg, WORKER_ACCEPT_BATCH);
	worker_update_accepting(w);
}

/* Listen only while there is room: at the limit the connections wait in the
 * kernel's accept queue (or another worker takes them) instead of being
 * accepted and dropped. */
static void worker_update_accepting(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++) {
		struct worker_listener *l = &w->listeners[i];
		bool want = w->started && !w->draining && !w->paused && l->fd >= 0 && worker_has_room(w, l);
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

/* Whether memory is back: every protocol in use can take its next
 * connection without allocating (proto->reserve), and the worker could
 * grow by a connection's buffers (what it has may serve its connections
 * now, but not one more: an address-space limit, a leak). */
static bool worker_memory_back(struct worker *w)
{
	for (size_t i = 0; i < w->n_ready; i++)
		if (w->ready[i]->reserve && w->ready[i]->reserve(&w->env) < 0)
			return false;
	/* mmap, not malloc: a compiler may drop a malloc() whose memory is
	 * never used, and take it as a success. Never touched, so it costs
	 * address space for a moment, no pages. */
	void *probe = mmap(NULL, WORKER_NOMEM_PROBE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (probe == MAP_FAILED)
		return false;
	munmap(probe, WORKER_NOMEM_PROBE);
	return true;
}

/* The end of a pause. One for memory first looks whether memory is back:
 * a worker whose connections happen to fit in what it holds would
 * otherwise never find out that its shortage lasts. */
static void worker_pause_done(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker *w = arg;
	w->paused = false;
	if (w->paused_nomem) {
		w->paused_nomem = false;
		if (!worker_memory_back(w)) {
			worker_out_of_memory(&w->env, PROTO_NOMEM_WAITING);
			return;
		}
	}
	worker_update_accepting(w);
}

/* A connection left the set: accept again below the limit. */
static void worker_conn_closed(struct conn_set *set, void *arg)
{
	struct worker *w = arg;
	if (!w->draining)
		worker_update_accepting(w);
}

/* The set emptied: a draining worker is done, once nothing it handed
 * over waits for an answer (and no predecessor may still send it one). */
static void worker_conns_empty(struct conn_set *set, void *arg)
{
	struct worker *w = arg;
	(void)set;
	if (w->draining && !handoff_busy() && proxy_held() == 0) {
		log_info("drained, exiting");
		worker_exit(w, 0);
	}
}

/* proxy.c's hooks: a connection's header is read, give it to its protocol;
 * a connection held for its header left (given or closed). */
static void worker_proxy_give(void *arg, const struct worker_listener *l, int fd, const struct sockaddr *peer,
			      socklen_t peer_len)
{
	worker_give(arg, l, fd, peer, peer_len);
}

static void worker_proxy_left(void *arg)
{
	struct worker *w = arg;
	if (!w->draining)
		worker_update_accepting(w);
	else if (conn_set_count(&w->conns) == 0)
		worker_conns_empty(&w->conns, w);
}

/* handoff.c's hook: hand-offs settled, or a predecessor's channel closed. */
static void worker_handoff_settled(void *arg)
{
	struct worker *w = arg;
	if (conn_set_count(&w->conns) == 0)
		worker_conns_empty(&w->conns, w);
}

static const struct worker_listener *worker_listener_named(void *arg, const char *name)
{
	struct worker *w = arg;
	for (size_t i = 0; i < w->n_listeners; i++)
		if (strcmp(w->listeners[i].name, name) == 0)
			return &w->listeners[i];
	return NULL;
}

/* Whether a connection handed over on l may be adopted: room for it, and
 * we serve (or hand on ourselves). */
static bool worker_may_adopt(void *arg, const struct worker_listener *l)
{
	struct worker *w = arg;
	if (w->draining && !*handoff_flag())
		return false;
	return worker_has_room(w, l);
}

static void worker_request_done(const struct proto_env *env)
{
	struct worker *w = env->worker;
	sb_add(&w->slot->requests, 1);
	w->requests++;
	if (w->recycle_at && !w->recycle_sent && w->requests >= w->recycle_at && !w->draining) {
		char why[64];
		snprintf(why, sizeof(why), "served %llu requests (max_requests)",
			 (unsigned long long)w->requests);
		worker_ask_replacement(w, why, 0);
	}
}

static void worker_close_all(struct worker *w)
{
	proxy_close_all();
	conn_set_close_all(&w->conns);
}

static void worker_drain_deadline(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct worker *w = arg;
	log_warning("drain deadline reached, closing %zu connection(s)", conn_set_count(&w->conns) + proxy_held());
	worker_close_all(w);
	handoff_end();
	worker_exit(w, 0);
}

/* The drain timer ends the worker at its deadline, if the loop runs. In
 * case something holds the loop (a blocking call in a protocol), SIGALRM's
 * default action ends it a second later whatever it is doing. */
static void worker_drain_backstop(struct worker *w)
{
	uint64_t now = loop_clock_ms();
	uint64_t left = w->drain_deadline_ms > now ? w->drain_deadline_ms - now : 0;
	uint64_t s = left / 1000 + 2;
	alarm(s > UINT32_MAX ? UINT32_MAX : (unsigned)s);
}

/* The seed's order: stop accepting, let live connections finish, exit;
 * the deadline forces what is left. */
static void worker_drain(struct worker *w, uint64_t deadline_ms)
{
	if (w->draining) {
		if (deadline_ms < w->drain_deadline_ms) {
			w->drain_deadline_ms = deadline_ms;
			loop_timer_arm_at(w->loop, &w->drain_timer, deadline_ms);
			worker_drain_backstop(w);
		}
		return;
	}
	/* Connections the kernel already completed for us are served, not
	 * reset: if this is the last copy of a listener (a stop without
	 * systemd), closing it would reset what waits in its queue. So all of
	 * them, up to the connection limit, not one batch. A paused worker
	 * (out of fds or memory) leaves them to the others. */
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->registered[i])
			worker_accept_some(w, &w->listeners[i], SIZE_MAX);
	w->draining = true;
	w->drain_deadline_ms = deadline_ms;
	worker_drain_backstop(w);
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
	size_t n = conn_set_count(&w->conns);
	/* DRAINING only informs the supervisor (and EOF tells it the rest):
	 * a full channel loses nothing that matters. */
	int r = chan_send(w->chan_fd, CHAN_DRAINING, n);
	if (r < 0 && r != -EPIPE)
		log_errno(LOG_DEBUG, r, "cannot report draining");
	/* A successor is ready (not a stop): plain connections go to it at
	 * their next request boundary instead of being closed. */
	handoff_begin(w->stopping);
	/* Connections still sending their PROXY header go on: each is given
	 * to its protocol (which drains it) once the header is read. */
	if (n == 0 && !handoff_busy() && proxy_held() == 0) {
		log_info("draining 0 connection(s)");
		worker_exit(w, 0);
	}
	loop_timer_arm_at(w->loop, &w->drain_timer, deadline_ms);
	/* 2-3. Each connection closes when idle or after its current response;
	 * the last one to close calls worker_conns_empty() (and so may end the
	 * worker right here). Logged after: once the line is out, every
	 * connection has been told. */
	conn_set_drain_all(&w->conns);
	log_info("draining %zu connection(s)%s", n, w->stopping ? " for a stop" : "");
}

/* REOPEN_LOGS: the supervisor opened our files again; each new one takes
 * the place of the old under the same fd (dup3), so a protocol writing to
 * it never sees a closed fd. fds are closed here. */
static void worker_reopen_logs(struct worker *w, const int *fds, size_t n, uint64_t expected)
{
	if (n != expected || n != w->files.n)
		log_warning("reopen-logs: %zu file(s) handed over, %zu expected; keeping the old ones", n,
			    w->files.n);
	else if (n) {
		for (size_t i = 0; i < n; i++)
			if (dup3(fds[i], w->files.f[i].fd, O_CLOEXEC) < 0)
				log_errno(LOG_ERR, -errno, "reopen-logs: putting the new file in place");
		log_info("log files reopened (%zu)", n);
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void worker_control(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = arg;
	for (;;) {
		struct chan_msg m;
		int fds[CHAN_MAX_FDS];
		size_t n_fds;
		int r = chan_recv_fds(fd, &m, fds, CHAN_MAX_FDS, &n_fds);
		if (r == -EAGAIN)
			return;
		if (r == -EBADMSG) {
			/* One message we cannot read (a newer build's type): the
			 * supervisor is still there, keep listening. */
			log_warning("unreadable control message from the supervisor");
			continue;
		}
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
			w->stopping |= (m.arg & CHAN_DRAIN_STOP) != 0;
			worker_drain(w, m.arg & ~CHAN_DRAIN_STOP);
			break;
		case CHAN_STOP:
			worker_close_all(w);
			worker_exit(w, 0);
		case CHAN_REOPEN_LOGS:
			worker_reopen_logs(w, fds, n_fds, m.arg);
			n_fds = 0;
			break;
		case CHAN_START:
			w->started = true;
			worker_update_accepting(w);
			break;
		case CHAN_HANDOFF_TO:
		case CHAN_ADOPT_FROM:
			if (n_fds == 1) {
				(m.type == CHAN_HANDOFF_TO ? handoff_successor : handoff_predecessor)(fds[0],
													(pid_t)m.arg);
				n_fds = 0;
			}
			break;
		default:
			log_warning("unexpected %s on the control channel", chan_type_name(m.type));
			break;
		}
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
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
			w->stopping = true;
			worker_drain(w, loop_now_ms(loop) + w->cfg->server.shutdown_timeout_ms);
			break;
		case SIGQUIT:
			worker_close_all(w);
			worker_exit(w, 0);
		case SIGUSR1:
			/* Files are reopened by the supervisor (we may no longer
			 * be allowed to), which hands them over. */
			log_debug("SIGUSR1: log files are reopened by the supervisor");
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
	struct config_identity id;
	const char *missing;
	int r = config_identity(cfg, &id, &missing);
	if (r < 0)
		return r;
	if (id.name[0] ? initgroups(id.name, id.gid) < 0 : setgroups(0, NULL) < 0)
		return -errno;
	if (setresgid(id.gid, id.gid, id.gid) < 0)
		return -errno;
	if (setresuid(id.uid, id.uid, id.uid) < 0)
		return -errno;
	if (id.uid != 0 && (setuid(0) == 0 || geteuid() != id.uid || getegid() != id.gid))
		return -EPERM;
	return 0;
}

/* init() each protocol that one of our listeners uses, once. */
static int worker_init_protocols(struct worker *w)
{
	for (size_t i = 0; i < w->n_listeners; i++) {
		const struct proto *p = w->listeners[i].proto;
		bool seen = false;
		for (size_t k = 0; k < w->n_ready; k++)
			seen |= w->ready[k] == p;
		if (seen)
			continue;
		if (w->n_ready == CONFIG_MAX_PROTOCOLS)
			return log_errno(LOG_ERR, -E2BIG, "too many protocols");
		int r = p->init ? p->init(&w->env) : 0;
		if (r < 0) {
			unsigned index = 0;
			for (const struct proto *const *t = proto_table(); t && t[index] && t[index] != p;)
				index++;
			w->fail_index = index;
			return log_errno(LOG_ERR, r, "cannot start the %s protocol", p->name);
		}
		w->ready[w->n_ready++] = p;
	}
	return 0;
}

/* Until the loop runs, a stop signal (or the supervisor's death, below)
 * simply ends the worker, whatever it is blocked in: nothing is served yet.
 * The signals the supervisor blocks for its signalfd are unblocked, those
 * a worker never acts on are ignored, and SIGALRM keeps its default action
 * for the drain's backstop. */
static void worker_early_signals(void)
{
	signal(SIGPIPE, SIG_IGN); /* sendfile can raise it */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGUSR1, SIG_IGN); /* reopen logs: nothing to reopen yet */
	signal(SIGALRM, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* No worker outlives its supervisor by more than shutdown_timeout: the
 * kernel sends SIGTERM when the supervisor dies (which drains, like EOF on
 * the control channel, or ends a worker still starting). Set again after
 * each credential change, which clears it; and if the supervisor is gone
 * already (before the first prctl), leave now. */
static void worker_tie_to_supervisor(const struct worker_params *p)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
		log_errno(LOG_WARNING, -errno, "cannot ask for SIGTERM at the supervisor's death");
	if (getppid() != p->sb->hdr.supervisor_pid) {
		log_warning("supervisor gone before this worker started, exiting");
		_exit(1);
	}
}

/* The loop's signals: stop, fast stop and reopen through our signalfd. */
static int worker_setup_signals(struct worker *w)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGUSR1, SIG_DFL); /* blocked: it only reaches the signalfd */
	w->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w->signal_fd < 0)
		return -errno;
	return loop_add_fd(w->loop, w->signal_fd, LOOP_READ, worker_signal, w);
}

/* Fill in w from the supervisor's parameters; 0 or -ENOMEM. */
static int worker_setup(struct worker *w, const struct worker_params *p)
{
	memset(w, 0, sizeof(*w));
	w->cfg = p->cfg;
	w->slot = &p->sb->slots[p->slot];
	w->chan_fd = p->chan_fd;
	w->n_listeners = p->n_listeners;
	w->listeners = calloc(p->n_listeners ? p->n_listeners : 1, sizeof(*w->listeners));
	w->registered = calloc(p->n_listeners ? p->n_listeners : 1, sizeof(*w->registered));
	if (!w->listeners || !w->registered)
		return -ENOMEM;
	int r = loop_new(&w->loop);
	if (r < 0)
		return r;
	memcpy(w->listeners, p->listeners, p->n_listeners * sizeof(*w->listeners));
	conn_set_init(&w->conns, worker_conn_closed, worker_conns_empty, w, w->slot);
	w->env = (struct proto_env){
		.loop = w->loop,
		.cfg = w->cfg,
		.slot = w->slot,
		.metrics = metrics_slot_at(p->slot),
		.sb = p->sb,
		.conns = &w->conns,
		.draining = &w->draining,
		.stopping = &w->stopping,
		.request_done = worker_request_done,
		.out_of_memory = worker_out_of_memory,
		.handing_off = handoff_flag(),
		.hand_off = handoff_export,
		.worker = w,
		.files = &w->files,
	};
	if (p->files)
		w->files = *p->files;
	if (w->cfg->server.max_requests) {
		uint64_t jitter = w->cfg->server.max_requests_jitter;
		/* Jitter so that workers started together are not recycled together. */
		w->recycle_at = w->cfg->server.max_requests +
				(jitter ? (uint64_t)(((unsigned)getpid() * 2654435761u) % (jitter + 1)) : 0);
	}
	loop_timer_init(&w->heartbeat, worker_heartbeat, w);
	loop_timer_init(&w->accept_timer, worker_pause_done, w);
	worker_fault_init(&w->no_fds, "accept paused", "time(s)");
	worker_fault_init(&w->no_mem, "accept paused", "time(s)");
	worker_fault_init(&w->nomem_drops, "out of memory", "connection(s) dropped");
	loop_timer_init(&w->drain_timer, worker_drain_deadline, w);
	proxy_init(&(struct proxy_host){
		.loop = w->loop,
		.cfg = w->cfg,
		.give = worker_proxy_give,
		.left = worker_proxy_left,
		.arg = w,
	});
	handoff_init(&(struct handoff_host){
		.loop = w->loop,
		.env = &w->env,
		.slot = w->slot,
		.listener = worker_listener_named,
		.room = worker_may_adopt,
		.settled = worker_handoff_settled,
		.arg = w,
	});
	return 0;
}

/* Tell the supervisor why we cannot start, so that a reload or start fails
 * at once with our reason; best effort, we exit next. */
static void worker_start_failed(int chan_fd, unsigned stage, unsigned index, int err)
{
	int r = chan_send(chan_fd, CHAN_START_FAILED, CHAN_START_ERROR(stage, index, err));
	if (r < 0)
		log_errno(LOG_DEBUG, r, "cannot report the start failure");
}

void worker_main(const struct worker_params *p)
{
	struct worker *w = &worker_self;
	char role[48];
	snprintf(role, sizeof(role), "worker %u.%u", p->generation, p->index);
	log_set_role(role);
	prctl(PR_SET_NAME, "drover-worker", 0, 0, 0);
	worker_early_signals();
	worker_tie_to_supervisor(p);

	if (worker_setup(w, p) < 0) {
		log_error("out of memory starting");
		worker_start_failed(p->chan_fd, CHAN_STAGE_SETUP, 0, ENOMEM);
		_exit(1);
	}
	__atomic_store_n(&w->slot->pid, (int32_t)getpid(), __ATOMIC_RELAXED);
	sb_store(&w->slot->heartbeat_ms, loop_now_ms(w->loop));

	int r = worker_drop_privileges(w->cfg);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot switch to user '%s' / group '%s'",
			  w->cfg->server.user ? w->cfg->server.user : "-",
			  w->cfg->server.group ? w->cfg->server.group : "-");
		worker_start_failed(w->chan_fd, CHAN_STAGE_PRIVILEGES, 0, -r);
		_exit(1);
	}
	worker_tie_to_supervisor(p);
	/* May block (a protocol reading its files); killable until the loop's
	 * signals are set up below. */
	r = worker_init_protocols(w);
	if (r < 0) {
		worker_start_failed(w->chan_fd, CHAN_STAGE_PROTOCOL, w->fail_index, -r);
		worker_exit(w, 1);
	}
	r = worker_setup_signals(w);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot set up signals");
		worker_start_failed(w->chan_fd, CHAN_STAGE_SIGNALS, 0, -r);
		_exit(1);
	}

	loop_timer_arm(w->loop, &w->heartbeat, WORKER_HEARTBEAT_MS);
	r = loop_add_fd(w->loop, w->chan_fd, LOOP_READ, worker_control, w);
	if (r < 0) {
		log_error("cannot watch the control channel");
		worker_start_failed(w->chan_fd, CHAN_STAGE_LOOP, 0, -r);
		_exit(1);
	}
	/* READY now, accept on START: systemd hears READY=1 before anyone is served. */
	sb_store32(&w->slot->state, SLOT_READY);
	r = chan_send(w->chan_fd, CHAN_READY, 0);
	if (r < 0) {
		/* Unheard, we would never get START: leave, and be replaced. */
		log_errno(LOG_ERR, r, "cannot report ready");
		worker_exit(w, 1);
	}
	log_debug("ready");

	r = loop_run(w->loop);
	log_errno(LOG_ERR, r, "event loop failed");
	worker_exit(w, 1);
}
