/* http idle: a connection between requests, the moves between its two
 * forms, and connections that wait for memory.
 *
 * Between requests a keep-alive connection (and a fresh one before its
 * first byte) is a struct http_idle of a few hundred bytes: its buffers and
 * request state are back in the pool (pool.c). A read event or a drain
 * wakes it into a struct http_conn from the pool, and it goes back to sleep
 * when it has nothing buffered and nothing to send (conn.c's state machine
 * runs the full form).
 *
 *   accept --> IDLE form --bytes--> full form (conn.c) --idle again--+
 *                 ^    \                                              |
 *                 |     +--no memory--> WAITING --memory back--> full form
 *                 +-------------------------------------------------+
 *
 * Memory (RFC 9110 §15.6.4 for the last resort): a shortage costs a client
 * delay, not a reset, wherever its bytes are still in the kernel.
 * - Before an accept the worker reserves the idle struct (http_idle_reserve);
 *   when even that fails nothing is accepted and the connection waits in
 *   the kernel's queue.
 * - A connection whose bytes arrive when no full form can be had stops
 *   being read (watched for nothing: its bytes stay in the socket) and
 *   waits, in arrival order, for a full form: each one given back to the
 *   pool wakes the queue at the next turn of the loop, and the queue is
 *   retried every HTTP_WAIT_RETRY_MS in case memory comes back from
 *   elsewhere (each failed retry tells the worker, which asks to be
 *   replaced when the shortage lasts).
 * - It waits at most header_timeout from the moment its bytes arrived. A
 *   connection that still has no memory then really cannot continue: it
 *   gets a 503 built without allocating (no Date: RFC 9110 §6.6.1 allows
 *   that for 5xx) and a lingering close, so the request it sent does not
 *   turn into a reset; the worker counts it as dropped. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proto/http/idle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/loop.h"
#include "proto/http/access_log.h"
#include "proto/http/conn.h"
#include "proto/http/pool.h"

#define HTTP_OUT_CAP (40 * 1024)   /* header blocks + small bodies, several when pipelined */
#define HTTP_WAIT_RETRY_MS 100     /* a waiting connection tries again this often */

/* Connections waiting for memory, oldest first: a ring of at most one
 * entry per connection the worker may hold, allocated at start so that
 * waiting never needs memory. A connection that closes while it waits
 * leaves a hole (NULL), skipped at the front. */
static struct {
	struct http_idle **q;
	size_t cap;
	size_t head;
	size_t len; /* entries from head, holes included */
	size_t n;   /* connections waiting */
	struct loop_timer retry;
	const struct proto_env *env;
} http_wait;

static void http_idle_io(struct loop *loop, int fd, unsigned events, void *arg);
static void http_idle_timeout(struct loop *loop, struct loop_timer *t, void *arg);
static void http_idle_drain(struct conn *c);
static void http_idle_free(struct conn *c);

static const struct conn_ops http_idle_ops = {
	.drain = http_idle_drain,
	.free = http_idle_free,
};

/* ------------------------------------------------------------ the queue */

static struct http_idle **http_wait_at(size_t i)
{
	return &http_wait.q[(http_wait.head + i) % http_wait.cap];
}

/* Close the holes, so the ring has room for every waiting connection. */
static void http_wait_compact(void)
{
	size_t out = 0;
	for (size_t i = 0; i < http_wait.len; i++) {
		struct http_idle *idle = *http_wait_at(i);
		if (idle)
			*http_wait_at(out++) = idle;
	}
	http_wait.len = out;
}

/* Queue idle; false when the ring is full (it never is: one entry per
 * connection the worker may hold). */
static bool http_wait_push(struct http_idle *idle)
{
	if (http_wait.len == http_wait.cap)
		http_wait_compact();
	if (http_wait.len == http_wait.cap)
		return false;
	*http_wait_at(http_wait.len++) = idle;
	http_wait.n++;
	idle->session.flags |= HC_WAIT_MEMORY;
	return true;
}

static void http_wait_remove(struct http_idle *idle)
{
	idle->session.flags &= ~(unsigned)HC_WAIT_MEMORY;
	for (size_t i = 0; i < http_wait.len; i++) {
		struct http_idle **at = http_wait_at(i);
		if (*at != idle)
			continue;
		*at = NULL;
		http_wait.n--;
		break;
	}
	while (http_wait.len && !*http_wait_at(0)) {
		http_wait.head = (http_wait.head + 1) % http_wait.cap;
		http_wait.len--;
	}
}

/* ------------------------------------------------------------ the two forms */

/* The idle form's gauge in the metrics: one more or one less. */
static void http_idle_count(int d)
{
	if (http_w.env && http_w.env->metrics)
		metrics_gauge(&http_w.env->metrics->conns_idle, d);
}

static void http_idle_free(struct conn *c)
{
	struct http_idle *idle = (struct http_idle *)c;
	http_idle_count(-1);
	if (idle->session.flags & HC_WAIT_MEMORY)
		http_wait_remove(idle);
	http_pool_give_idle(idle);
}

/* A full connection's fd events; one that is idle afterwards sleeps. */
static void http_full_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	struct http_conn *hc = arg;
	if (http_conn_events(hc, events) < 0)
		return;
	/* Draining for a successor: at its boundary it goes there. */
	if (proto_env_draining(http_w.env) && http_conn_try_hand_off(hc) < 0)
		return;
	http_idle_sleep(hc);
}

/* The idle connection becomes a full one, in hc (from the pool). */
static struct http_conn *http_wake_into(struct http_idle *idle, struct http_conn *hc)
{
	conn_move(&hc->base, &idle->base);
	hc->base.ops = &http_conn_ops;
	hc->base.timer.fn = http_conn_timeout;
	hc->state = HTTP_IDLE;
	hc->session = idle->session;
	hc->session.flags &= ~(unsigned)(HC_WAIT_MEMORY | HC_DRAIN_PENDING);
	hc->in.start = hc->in.end = 0;
	hc->out.start = hc->out.end = 0;
	http_parser_init(&hc->parser);
	hc->src = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
	hc->out_skip = 0;
	hc->log_len = hc->log_mid = 0;
	hc->req_start_ms = 0;
	loop_set_handler(hc->base.loop, hc->base.fd, http_full_io, hc);
	http_pool_give_idle(idle);
	http_idle_count(-1);
	return hc;
}

void http_idle_sleep(struct http_conn *hc)
{
	if (hc->state != HTTP_IDLE || conn_buf_len(&hc->in) || conn_buf_len(&hc->out) ||
	    hc->src.kind != HTTP_SRC_NONE || hc->base.lingering ||
	    http_has(hc, HC_RESPONDING | HC_PEER_EOF | HC_WANT_WRITE) || proto_env_draining(http_w.env))
		return;
	struct http_idle *idle = http_pool_take_idle();
	if (!idle)
		return; /* stays in its full form: correct, only larger */
	conn_move(&idle->base, &hc->base);
	idle->base.ops = &http_idle_ops;
	idle->base.timer.fn = http_idle_timeout;
	idle->session = hc->session;
	loop_set_handler(idle->base.loop, idle->base.fd, http_idle_io, idle);
	http_idle_count(1);
	http_pool_give(hc);
}

/* ------------------------------------------------------------ waiting for memory */

static void http_wait_report(enum proto_shortage what)
{
	const struct proto_env *env = http_wait.env;
	if (env->out_of_memory)
		env->out_of_memory(env, what);
	else if (what == PROTO_NOMEM_DROPPED)
		log_warning("http: out of memory for a request, closing its connection");
}

/* Whether the client has sent bytes we have not read. */
static bool http_idle_has_input(struct http_idle *idle)
{
	return conn_pending(&idle->base) > 0;
}

/* The last resort: no memory within header_timeout. Answer 503 without
 * allocating and close lingering, so the request it sent is not met by a
 * reset; counted as dropped. */
static void http_idle_no_memory(struct http_idle *idle)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Content-Length: 0\r\n"
				   "Retry-After: 1\r\n"
				   "Connection: close\r\n\r\n";
	struct conn *c = &idle->base;
	if (idle->session.flags & HC_WAIT_MEMORY)
		http_wait_remove(idle);
	if (!http_idle_has_input(idle)) {
		http_idle_expired(c, idle->session.responses); /* it sent nothing: an idle timeout */
		return;
	}
	/* A short write leaves an incomplete answer, which the lingering
	 * close still ends cleanly. */
	struct iovec v = { .iov_base = (char *)busy, .iov_len = sizeof(busy) - 1 };
	(void)conn_writev(c, &v, 1, 0);
	http_wait_report(PROTO_NOMEM_DROPPED);
	conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
}

/* No full form for idle now: stop reading it and queue it; it waits at
 * most header_timeout from now. */
static void http_idle_wait(struct http_idle *idle)
{
	struct conn *c = &idle->base;
	http_wait_report(PROTO_NOMEM_WAITING);
	if (!(idle->session.flags & HC_WAIT_MEMORY) && !http_wait_push(idle)) {
		http_idle_no_memory(idle);
		return;
	}
	(void)conn_watch(c, 0);
	/* The bytes arrived now: header_timeout counts from here, whatever
	 * deadline the idle connection had (keep-alive, a fresh one's, a
	 * drain's grace). */
	idle->session.deadline = loop_now_ms(c->loop) + http_w.http->header_timeout_ms;
	loop_timer_arm_at(c->loop, &c->timer, idle->session.deadline);
	if (!loop_timer_armed(&http_wait.retry))
		loop_timer_arm(c->loop, &http_wait.retry, HTTP_WAIT_RETRY_MS);
}

/* Give a waiting connection a full form and carry on where it stopped.
 * false: still no memory. */
static bool http_idle_resume(struct http_idle *idle)
{
	struct http_conn *hc = http_pool_take();
	if (!hc)
		return false;
	bool drain = (idle->session.flags & HC_DRAIN_PENDING) != 0;
	http_wait_remove(idle);
	hc = http_wake_into(idle, hc);
	if (drain)
		http_conn_ops.drain(&hc->base);
	else
		http_full_io(hc->base.loop, hc->base.fd, LOOP_READ, hc);
	return true;
}

/* A full form came back, or the retry is due: wake the queue in order
 * while memory lasts. */
static void http_wait_retry(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)arg;
	while (http_wait.n) {
		struct http_idle *idle = *http_wait_at(0);
		if (!http_idle_resume(idle)) {
			http_wait_report(PROTO_NOMEM_WAITING);
			loop_timer_arm(loop, t, HTTP_WAIT_RETRY_MS);
			return;
		}
	}
}

/* pool.c's hook: a full form is back in the pool. */
static void http_wait_returned(void)
{
	if (http_wait.n)
		loop_timer_arm(http_wait.env->loop, &http_wait.retry, 0);
}

/* ------------------------------------------------------------ the idle form's events */

static void http_idle_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct http_idle *idle = arg;
	if ((events & LOOP_ERROR) || (idle->session.flags & HC_WAIT_MEMORY)) {
		/* Waiting, it is watched for nothing: only an error or a
		 * hang-up wakes it, and the client is gone. */
		if (events & LOOP_ERROR)
			log_warning("http: cannot watch a new connection, closing it");
		conn_close(&idle->base);
		return;
	}
	struct http_conn *hc = http_pool_take();
	if (!hc) {
		http_idle_wait(idle);
		return;
	}
	http_full_io(loop, fd, events, http_wake_into(idle, hc));
}

/* As http_conn_timeout() in HTTP_IDLE; a connection still waiting for
 * memory at its deadline gets the last resort. */
static void http_idle_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct http_idle *idle = arg;
	(void)t;
	if (http_not_yet(loop, &idle->base, idle->session.deadline))
		return;
	if (idle->session.flags & HC_WAIT_MEMORY) {
		if (!http_idle_resume(idle))
			http_idle_no_memory(idle);
		return;
	}
	http_idle_expired(&idle->base, idle->session.responses);
}

/* Drain an idle connection as conn.c drains a full one, without waking
 * it unless a request is already in the socket: a worker draining
 * thousands of idle keep-alive connections needs no buffers for them. */
static void http_idle_drain(struct conn *c)
{
	struct http_idle *idle = (struct http_idle *)c;
	if (c->lingering)
		return;
	if (conn_may_hand_off(c)) {
		/* Between requests, nothing buffered: a boundary. Whatever the
		 * client sent since is in the socket, and goes with it (one
		 * waiting for memory too). */
		uint64_t now = loop_now_ms(c->loop);
		struct handoff_conn h = {
			.requests = idle->session.responses,
			.flags = idle->session.flags & HTTP_HANDOFF_FLAGS,
			.idle_left_ms = idle->session.deadline > now ? idle->session.deadline - now : 0,
		};
		if (http_w.env->hand_off(http_w.env, c, &h) == 0)
			return;
		c->no_handoff = true; /* it stays: drained here as before */
	}
	if (idle->session.flags & HC_WAIT_MEMORY) {
		idle->session.flags |= HC_DRAIN_PENDING; /* drained once it has memory */
		return;
	}
	if (!http_idle_has_input(idle)) {
		/* Everything that had arrived is answered: the next request
		 * gets Connection: close (h1.c). */
		idle->session.flags |= HC_DRAIN_MARKED;
		idle->session.drain_limit = idle->session.rx_total;
		if (idle->session.responses == 0)
			return; /* fresh: left to send its first request (header_timeout) */
		if (proto_env_stopping(http_w.env)) {
			/* Nobody serves after us: FIN now, a racing request sees
			 * a clean EOF (RFC 9112 §9.6) and is re-sent. */
			conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
			return;
		}
		/* A newer generation serves: a short grace for one more
		 * request, then the idle timeout closes it lingering. */
		idle->session.flags |= HC_DRAIN_GRACE;
		idle->session.deadline = loop_now_ms(c->loop) + HTTP_DRAIN_IDLE_GRACE_MS;
		loop_timer_arm_at(c->loop, &c->timer, idle->session.deadline);
		return;
	}
	struct http_conn *hc = http_pool_take();
	if (hc) {
		http_conn_ops.drain(&http_wake_into(idle, hc)->base);
		return;
	}
	idle->session.flags |= HC_DRAIN_PENDING;
	http_idle_wait(idle);
}

/* ------------------------------------------------------------ per worker */

int http_idle_init(const struct proto_env *env)
{
	http_idle_done();
	size_t cap = env->cfg->server.max_connections ? env->cfg->server.max_connections : 1;
	http_wait.q = calloc(cap, sizeof(*http_wait.q));
	if (!http_wait.q)
		return -ENOMEM;
	http_wait.cap = cap;
	http_wait.env = env;
	loop_timer_init(&http_wait.retry, http_wait_retry, NULL);
	http_pool_init(http_w.in_cap, HTTP_OUT_CAP, http_log_enabled(), http_wait_returned);
	return 0;
}

void http_idle_done(void)
{
	if (http_wait.env)
		loop_timer_cancel(http_wait.env->loop, &http_wait.retry);
	http_pool_done();
	free(http_wait.q);
	memset(&http_wait, 0, sizeof(http_wait));
}

int http_idle_reserve(const struct proto_env *env)
{
	(void)env;
	return http_pool_reserve_idle();
}

/* A new connection starts idle: no buffers until its first byte. On a
 * listener with TCP_DEFER_ACCEPT its request has arrived with it, so it is
 * read as soon as this round's accepts are done, before it is put in epoll
 * (loop_add_fd_ready): a Connection: close request is then served with no
 * epoll_ctl() and no wake-up of its own. */
int http_idle_accept(const struct proto_env *env, const struct worker_listener *l, int fd,
		     const struct sockaddr *peer, socklen_t peer_len)
{
	struct http_idle *idle = http_pool_take_idle();
	if (!idle)
		return -ENOMEM;
	struct conn *c = &idle->base;
	int r = conn_init(c, env, l, fd, peer, peer_len, &http_idle_ops);
	if (r < 0) {
		http_pool_give_idle(idle);
		return r;
	}
	http_idle_count(1);
	loop_timer_init(&c->timer, http_idle_timeout, idle);
	/* TCP_NODELAY waits for the first write that needs it (conn.c). */
	bool tcp = peer && (peer->sa_family == AF_INET || peer->sa_family == AF_INET6);
	idle->session = (struct http_session){ .flags = tcp ? 0 : HC_NODELAY };
	/* A data_first request is acknowledged already. */
	if (tcp && !(l && l->data_first) && conn_hint(c, TRANSPORT_ACKS_DELAYED) == 0)
		idle->session.flags |= HC_DELAYED_ACKS;
	r = (l && l->data_first ? loop_add_fd_ready : loop_add_fd)(c->loop, fd, LOOP_READ, http_idle_io, idle);
	if (r < 0) {
		c->fd = -1; /* the caller closes fd */
		conn_close(c);
		return r;
	}
	c->watching = LOOP_READ;
	idle->session.deadline = loop_now_ms(c->loop) + http_w.http->header_timeout_ms;
	loop_timer_arm_at(c->loop, &c->timer, idle->session.deadline);
	/* Accepted while the worker drains: one whose PROXY protocol header
	 * was still coming when the drain began (worker/proxy.h). */
	if (proto_env_draining(env))
		http_idle_drain(c);
	return 0;
}

/* A connection another worker handed over (or one of ours that came back
 * refused, h->returned): its idle form with the session carried, under
 * this worker's timeouts; with bytes already read, its full form, which
 * goes on parsing them. A draining worker drains it at once (hands it on,
 * or drains it as before for one that came back). */
int http_idle_adopt(const struct proto_env *env, const struct worker_listener *l, int fd,
		    const struct handoff_conn *h)
{
	if (h->len > http_w.in_cap)
		return -ENOBUFS;
	struct http_idle *idle = http_pool_take_idle();
	if (!idle)
		return -ENOMEM;
	struct http_conn *hc = NULL;
	if (h->len && !(hc = http_pool_take())) {
		http_pool_give_idle(idle);
		return -ENOMEM;
	}
	struct conn *c = &idle->base;
	int r = conn_init(c, env, l, fd, h->peer, h->peer_len, &http_idle_ops);
	if (r < 0) {
		http_pool_give_idle(idle);
		if (hc)
			http_pool_give(hc);
		return r;
	}
	http_idle_count(1);
	c->shared = true;
	c->no_handoff = h->returned;
	loop_timer_init(&c->timer, http_idle_timeout, idle);
	/* The count comes from another process: at most the limit, so that
	 * responses + 1 cannot wrap past keepalive_requests. */
	uint64_t served = h->requests < http_w.http->keepalive_requests ? h->requests : http_w.http->keepalive_requests;
	idle->session = (struct http_session){ .flags = h->flags & HTTP_HANDOFF_FLAGS, .responses = (unsigned)served };
	r = loop_add_fd(c->loop, fd, LOOP_READ, http_idle_io, idle);
	if (r < 0) {
		c->fd = -1; /* the caller closes fd */
		conn_close(c);
		if (hc)
			http_pool_give(hc);
		return r;
	}
	c->watching = LOOP_READ;
	uint64_t full = h->requests ? http_w.http->keepalive_timeout_ms : http_w.http->header_timeout_ms;
	uint64_t left = h->idle_left_ms && h->idle_left_ms < full ? h->idle_left_ms : full;
	idle->session.deadline = loop_now_ms(c->loop) + left;
	loop_timer_arm_at(c->loop, &c->timer, idle->session.deadline);
	if (!hc) {
		if (proto_env_draining(env))
			http_idle_drain(c);
		return 0;
	}
	hc = http_wake_into(idle, hc);
	memcpy(hc->in.data, h->bytes, h->len);
	hc->in.end = h->len;
	hc->session.rx_total = h->len;
	if (proto_env_draining(env))
		http_conn_ops.drain(&hc->base);
	else if (http_conn_resume(hc) == 0)
		http_idle_sleep(hc);
	return 0;
}
