/* conn: what every protocol's connection has in common: its fd and the
 * transport over it (transport.h), its worker's environment, its timer, the
 * events it watches, bounded buffers, and the two ways to close (now, or
 * lingering); and the connection set a worker owns. */
#ifndef DROVER_CONN_H
#define DROVER_CONN_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/loop.h"
#include "worker/proto.h"
#include "worker/transport.h"

struct conn;

/* What a protocol's function returns when it closed (and freed) the
 * connection: the caller must not touch it again. */
#define CONN_GONE (-ENOTCONN)

/* A fixed-capacity byte buffer: bytes live in data[start, end). */
struct conn_buf {
	char *data;
	size_t cap;
	size_t start;
	size_t end;
};

/* What the worker may ask of a protocol's connection. */
struct conn_ops {
	/* The worker started draining: close if idle, else finish and close. */
	void (*drain)(struct conn *c);
	/* Free the protocol's state; the fd is already closed. */
	void (*free)(struct conn *c);
};

/* Embedded as the first member of each protocol's connection struct.
 * Every byte counts: an idle HTTP keep-alive connection is little more. */
struct conn {
	int fd;                   /* what the loop watches; the transport's socket */
	unsigned watching;        /* LOOP_* registered for fd now (conn_watch) */
	const struct proto_env *env; /* the worker's, for every protocol */
	struct loop *loop;
	const struct worker_listener *listener;
	const struct conn_ops *ops;
	struct conn_set *set;
	struct conn *prev, *next; /* the set's list */
	struct loop_timer timer;  /* the protocol's timeouts */
	struct transport transport; /* all I/O goes through it */
	/* The client's address: IPv4 or IPv6 whole; of any other family
	 * (a unix peer) only the family. Not a sockaddr_storage: every
	 * connection, idle or not, carries it. */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	uint8_t peer_len;         /* at most sizeof(peer), 28 */
	uint8_t io_wait;          /* enum transport_wait: set by the transport */
	bool lingering;           /* half-closed, discarding input before close */
	/* Came back from a successor that refused it (handoff.c): drained as
	 * if hand-off did not exist. */
	bool no_handoff;
	/* Adopted from another worker, which may still hold the socket for a
	 * moment: leaving epoll takes an explicit EPOLL_CTL_DEL (close() alone
	 * does not end a registration while another process holds the file). */
	bool shared;
};

/* The connections of one worker. It owns none of their memory: each
 * protocol frees its own in ops->free. Counts are kept per protocol for the
 * protocols' own connection limits. */
#define CONN_SET_PROTOS CONFIG_MAX_PROTOCOLS
struct conn_set {
	struct conn *head;
	size_t n;
	struct {
		const struct proto *proto;
		size_t n;
	} by_proto[CONN_SET_PROTOS];
	bool closing_all;         /* conn_set_close_all(): no callbacks */
	/* After a connection left the set and was freed: n may be 0. */
	void (*closed)(struct conn_set *s, void *arg);
	/* After the last connection left (n == 0 again). */
	void (*empty)(struct conn_set *s, void *arg);
	void *arg;
	struct scoreboard_slot *slot; /* connections gauge, or NULL */
};

/* An empty set; closed/empty may be NULL. */
void conn_set_init(struct conn_set *s, void (*closed)(struct conn_set *, void *),
		   void (*empty)(struct conn_set *, void *), void *arg, struct scoreboard_slot *slot);
/* Link c in (conn_init does this). */
void conn_set_attach(struct conn_set *s, struct conn *c);
/* Unlink c (conn_close does this). */
void conn_set_detach(struct conn_set *s, struct conn *c);
/* Connections in the set. */
static inline size_t conn_set_count(const struct conn_set *s) { return s->n; }
/* Connections of one protocol in the set. */
size_t conn_set_count_proto(const struct conn_set *s, const struct proto *p);
/* Ask every connection to drain (ops->drain); each closes when done. */
void conn_set_drain_all(struct conn_set *s);
/* Close every connection now, without callbacks (the worker is exiting). */
void conn_set_close_all(struct conn_set *s);

/* Fill in c, open its transport (l's, or a plain socket) and link it into
 * env's set; the protocol then registers c->fd and sets c->watching.
 * 0, or -errno when the transport could not be set up (c is not linked;
 * the caller still owns fd). */
int conn_init(struct conn *c, const struct proto_env *env, const struct worker_listener *l, int fd,
	      const struct sockaddr *peer, socklen_t peer_len, const struct conn_ops *ops);
/* The connection from now lives at to (the protocol moved it to another
 * struct): the set's list and the timer follow (a timer arg that was from
 * becomes to); the protocol re-points its fd handler (loop_set_handler).
 * from is left unlinked. */
void conn_move(struct conn *to, struct conn *from);
/* Close now: cancel the timer, close the transport (and with it the fd,
 * which leaves the loop), unlink, call ops->free, then the set's callbacks.
 * A protocol that sets c->fd to -1 first keeps the fd open (its caller
 * closes it). */
void conn_close(struct conn *c);
/* Close without turning unread input into a reset (RFC 9112 §9.6):
 * shut down our side, discard what the peer still sends until it closes or
 * linger_ms passes, then conn_close(). Pending output must already be sent. */
void conn_close_lingering(struct conn *c, uint64_t linger_ms);
/* Client address as text ("127.0.0.1", "::1", "unix"). */
void conn_peer_str(const struct conn *c, char *out, size_t out_len);

/* I/O through c's transport (transport.h: what each returns). */
static inline ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	return c->transport.ops->read(c, buf, len);
}
static inline ssize_t conn_writev(struct conn *c, const struct iovec *iov, int n, unsigned flags)
{
	return c->transport.ops->writev(c, iov, n, flags);
}
static inline ssize_t conn_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
	return c->transport.ops->sendfile(c, fd, off, len);
}
/* Whether the peer has sent bytes not read yet: 1, 0, -errno. */
static inline int conn_pending(struct conn *c) { return c->transport.ops->pending(c); }
/* A packet hint (enum transport_hint); 0 or -errno. */
static inline int conn_hint(struct conn *c, enum transport_hint h) { return c->transport.ops->hint(c, h); }

/* The security protocol under c ("TLSv1.3"), or NULL on a plain socket. */
static inline const char *conn_security(const struct conn *c)
{
	return c->transport.ops->security ? c->transport.ops->security(c) : NULL;
}
/* The protocol ALPN chose for c (not NUL-terminated, *len bytes), or NULL. */
static inline const unsigned char *conn_alpn(const struct conn *c, unsigned *len)
{
	*len = 0;
	return c->transport.ops->alpn ? c->transport.ops->alpn(c, len) : NULL;
}
/* Whether c can move to another process with its fd (transport.h). */
static inline bool conn_movable(const struct conn *c) { return c->transport.ops->movable; }
/* Whether c may be handed to the successor now: the worker drains for a
 * successor, c's transport can move, and c did not come back refused. */
static inline bool conn_may_hand_off(const struct conn *c)
{
	return c->env && proto_env_handing_off(c->env) && conn_movable(c) && !c->no_handoff;
}

/* The LOOP_* events to watch so that the operations in ops (LOOP_READ: a
 * read, LOOP_WRITE: a write) can go on: each its own direction, unless the
 * transport said it waits for the other one (want-read / want-write). */
static inline unsigned conn_watch_for(const struct conn *c, unsigned ops)
{
	unsigned m = ops & (LOOP_READ | LOOP_WRITE);
	if (c->io_wait) {
		m = 0;
		if (ops & LOOP_READ)
			m |= c->io_wait & TRANSPORT_READ_WAITS_WRITABLE ? LOOP_WRITE : LOOP_READ;
		if (ops & LOOP_WRITE)
			m |= c->io_wait & TRANSPORT_WRITE_WAITS_READABLE ? LOOP_READ : LOOP_WRITE;
	}
	return m;
}
/* The operations (LOOP_READ: read, LOOP_WRITE: write) that the events
 * reported by the loop let through: the reverse of conn_watch_for(). */
static inline unsigned conn_can(const struct conn *c, unsigned events)
{
	unsigned ops = events;
	if (c->io_wait) {
		if ((events & LOOP_WRITE) && (c->io_wait & TRANSPORT_READ_WAITS_WRITABLE))
			ops |= LOOP_READ;
		if ((events & LOOP_READ) && (c->io_wait & TRANSPORT_WRITE_WAITS_READABLE))
			ops |= LOOP_WRITE;
	}
	return ops;
}
/* Watch events (LOOP_*) on c->fd from now on: no system call when that is
 * what is watched already. 0 or -errno. */
int conn_watch(struct conn *c, unsigned events);

/* Allocate cap bytes; 0 or -ENOMEM. */
int conn_buf_init(struct conn_buf *b, size_t cap);
/* Release the bytes. */
void conn_buf_free(struct conn_buf *b);
/* Bytes held. */
static inline size_t conn_buf_len(const struct conn_buf *b) { return b->end - b->start; }
/* Room left (after compaction). */
static inline size_t conn_buf_room(const struct conn_buf *b) { return b->cap - (b->end - b->start); }
/* Drop n bytes from the front. */
void conn_buf_consume(struct conn_buf *b, size_t n);
/* Move held bytes to the front so all room is at the end. */
void conn_buf_compact(struct conn_buf *b);
/* Read from c into the room: bytes read, 0 on EOF, -EAGAIN, -ENOBUFS when
 * full, -errno. */
ssize_t conn_buf_read(struct conn_buf *b, struct conn *c);
/* Write held bytes to c: bytes written, -EAGAIN, -errno. */
ssize_t conn_buf_write(struct conn_buf *b, struct conn *c);

#endif
