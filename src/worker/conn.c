/* conn: the parts of a connection every protocol shares: the set, the two
 * closes, buffers that read and write through the connection's transport. */
#include "worker/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/scoreboard.h"

void conn_set_init(struct conn_set *s, void (*closed)(struct conn_set *, void *),
		   void (*empty)(struct conn_set *, void *), void *arg, struct scoreboard_slot *slot)
{
	memset(s, 0, sizeof(*s));
	s->closed = closed;
	s->empty = empty;
	s->arg = arg;
	s->slot = slot;
}

/* The per-protocol counter of p: an existing one, else a free one. */
static size_t *conn_set_proto_count(struct conn_set *s, const struct proto *p)
{
	for (size_t i = 0; i < CONN_SET_PROTOS; i++)
		if (s->by_proto[i].proto == p || !s->by_proto[i].proto) {
			s->by_proto[i].proto = p;
			return &s->by_proto[i].n;
		}
	return NULL; /* more protocols than the table can hold: not counted apart */
}

size_t conn_set_count_proto(const struct conn_set *s, const struct proto *p)
{
	for (size_t i = 0; i < CONN_SET_PROTOS && s->by_proto[i].proto; i++)
		if (s->by_proto[i].proto == p)
			return s->by_proto[i].n;
	return 0;
}

static const struct proto *conn_proto(const struct conn *c)
{
	return c->listener ? c->listener->proto : NULL;
}

void conn_set_attach(struct conn_set *s, struct conn *c)
{
	c->set = s;
	c->next = s->head;
	c->prev = NULL;
	if (s->head)
		s->head->prev = c;
	s->head = c;
	s->n++;
	size_t *np = conn_set_proto_count(s, conn_proto(c));
	if (np)
		(*np)++;
	if (s->slot)
		sb_store(&s->slot->connections, s->n);
}

void conn_set_detach(struct conn_set *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n--;
	size_t *np = conn_set_proto_count(s, conn_proto(c));
	if (np && *np)
		(*np)--;
	if (s->slot)
		sb_store(&s->slot->connections, s->n);
}

void conn_set_drain_all(struct conn_set *s)
{
	/* ops->drain may close c (and only c): take next first. */
	struct conn *c = s->head;
	while (c) {
		struct conn *next = c->next;
		c->ops->drain(c);
		c = next;
	}
}

void conn_set_close_all(struct conn_set *s)
{
	s->closing_all = true;
	while (s->head)
		conn_close(s->head);
}

int conn_init(struct conn *c, const struct proto_env *env, const struct worker_listener *l, int fd,
	      const struct sockaddr *peer, socklen_t peer_len, const struct conn_ops *ops)
{
	c->fd = fd;
	c->watching = 0;
	c->env = env;
	c->loop = env->loop;
	c->listener = l;
	c->ops = ops;
	c->prev = c->next = NULL;
	c->lingering = false;
	c->no_handoff = false;
	c->shared = false;
	c->io_wait = 0;
	loop_timer_init(&c->timer, NULL, c);
	memset(&c->peer, 0, sizeof(c->peer));
	c->peer_len = 0;
	if (peer && peer_len >= sizeof(sa_family_t)) {
		socklen_t n = peer_len < sizeof(c->peer) ? peer_len : (socklen_t)sizeof(c->peer);
		memcpy(&c->peer, peer, n);
		c->peer_len = (uint8_t)n;
	}
	c->transport.ops = l && l->transport ? l->transport : &transport_plain;
	c->transport.state = NULL;
	if (c->transport.ops->open) {
		int r = c->transport.ops->open(c);
		if (r < 0)
			return r;
	}
	conn_set_attach(env->conns, c);
	return 0;
}

void conn_move(struct conn *to, struct conn *from)
{
	*to = *from;
	loop_timer_move(from->loop, &to->timer, &from->timer);
	if (to->timer.arg == from)
		to->timer.arg = to;
	if (to->prev)
		to->prev->next = to;
	else
		to->set->head = to;
	if (to->next)
		to->next->prev = to;
	from->prev = from->next = NULL;
	from->fd = -1;
}

void conn_close(struct conn *c)
{
	loop_timer_cancel(c->loop, &c->timer);
	c->transport.ops->close(c);
	c->fd = -1;
	struct conn_set *s = c->set;
	conn_set_detach(s, c);
	c->ops->free(c);
	/* Only now, with the connection freed, may a draining worker exit. */
	if (s->closing_all)
		return;
	if (s->closed)
		s->closed(s, s->arg);
	if (s->n == 0 && s->empty)
		s->empty(s, s->arg);
}

static void conn_linger_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	conn_close(arg);
}

static void conn_linger_read(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct conn *c = arg;
	char sink[16384];
	if (events & LOOP_ERROR) {
		conn_close(c);
		return;
	}
	/* Bounded per wake-up so a client streaming garbage cannot hold the loop. */
	for (int i = 0; i < 8; i++) {
		ssize_t n = conn_read(c, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n == -EAGAIN && conn_watch(c, conn_watch_for(c, LOOP_READ)) == 0)
			return;
		conn_close(c); /* EOF or error: the peer has seen our FIN */
		return;
	}
}

void conn_close_lingering(struct conn *c, uint64_t linger_ms)
{
	if (c->lingering)
		return;
	/* Closing a socket with unread data makes the kernel send RST, which can
	 * destroy the response the client has not read yet (RFC 9112 §9.6).
	 * Send FIN first, then drain what the client still sends. */
	if (c->transport.ops->shutdown(c) < 0 || linger_ms == 0) {
		conn_close(c);
		return;
	}
	c->lingering = true;
	if (loop_set_handler(c->loop, c->fd, conn_linger_read, c) < 0 ||
	    conn_watch(c, conn_watch_for(c, LOOP_READ)) < 0) {
		conn_close(c);
		return;
	}
	c->timer.fn = conn_linger_timeout;
	c->timer.arg = c;
	loop_timer_arm(c->loop, &c->timer, linger_ms);
}

void conn_peer_str(const struct conn *c, char *out, size_t out_len)
{
	if (out_len == 0)
		return;
	const struct sockaddr *sa = &c->peer.sa;
	if (c->peer_len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)out_len);
		return;
	}
	if (c->peer_len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)out_len);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)out_len);
		return;
	}
	snprintf(out, out_len, "%s", sa->sa_family == AF_UNIX ? "unix" : "-");
}

int conn_watch(struct conn *c, unsigned events)
{
	if (events == c->watching)
		return 0;
	int r = loop_mod_fd(c->loop, c->fd, events);
	if (r == 0)
		c->watching = events;
	return r;
}

int conn_buf_init(struct conn_buf *b, size_t cap)
{
	b->data = malloc(cap);
	if (!b->data)
		return -ENOMEM;
	b->cap = cap;
	b->start = b->end = 0;
	return 0;
}

void conn_buf_free(struct conn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->start = b->end = 0;
}

void conn_buf_consume(struct conn_buf *b, size_t n)
{
	if (n >= conn_buf_len(b)) {
		b->start = b->end = 0;
		return;
	}
	b->start += n;
}

void conn_buf_compact(struct conn_buf *b)
{
	if (b->start == 0)
		return;
	size_t len = conn_buf_len(b);
	memmove(b->data, b->data + b->start, len);
	b->start = 0;
	b->end = len;
}

ssize_t conn_buf_read(struct conn_buf *b, struct conn *c)
{
	if (conn_buf_room(b) == 0)
		return -ENOBUFS;
	if (b->end == b->cap)
		conn_buf_compact(b);
	ssize_t n = conn_read(c, b->data + b->end, b->cap - b->end);
	if (n > 0)
		b->end += (size_t)n;
	return n;
}

ssize_t conn_buf_write(struct conn_buf *b, struct conn *c)
{
	size_t len = conn_buf_len(b);
	if (len == 0)
		return 0;
	struct iovec iov = { .iov_base = b->data + b->start, .iov_len = len };
	ssize_t n = conn_writev(c, &iov, 1, 0);
	if (n > 0)
		conn_buf_consume(b, (size_t)n);
	return n;
}
