/* conn: what every protocol's connection has in common: its fd, its
 * worker's environment, its timer, bounded buffers, and the two ways to close
 * (now, or lingering); and the connection set a worker owns. */
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

/* Embedded as the first member of each protocol's connection struct. */
struct conn {
	int fd;
	const struct proto_env *env; /* the worker's, for every protocol */
	struct loop *loop;
	const struct worker_listener *listener;
	const struct conn_ops *ops;
	struct conn_set *set;
	struct conn *prev, *next; /* the set's list */
	struct loop_timer timer;  /* the protocol's timeouts */
	/* The client's address: IPv4 or IPv6 whole; of any other family
	 * (a unix peer) only the family. Not a sockaddr_storage: every
	 * connection, idle or not, carries it. */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	socklen_t peer_len;
	bool lingering;           /* half-closed, discarding input before close */
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

/* Fill in c and link it into env's set; the protocol then registers c->fd. */
void conn_init(struct conn *c, const struct proto_env *env, const struct worker_listener *l, int fd,
	       const struct sockaddr *peer, socklen_t peer_len, const struct conn_ops *ops);
/* The connection from now lives at to (the protocol moved it to another
 * struct): the set's list and the timer follow (a timer arg that was from
 * becomes to); the protocol re-points its fd handler (loop_set_handler).
 * from is left unlinked. */
void conn_move(struct conn *to, struct conn *from);
/* Close now: unregister, close the fd, unlink, call ops->free, then the
 * set's callbacks. */
void conn_close(struct conn *c);
/* Close without turning unread input into a reset (RFC 9112 §9.6):
 * shut down our side, discard what the peer still sends until it closes or
 * linger_ms passes, then conn_close(). Pending output must already be sent. */
void conn_close_lingering(struct conn *c, uint64_t linger_ms);
/* Client address as text ("127.0.0.1", "::1", "unix"). */
void conn_peer_str(const struct conn *c, char *out, size_t out_len);

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
/* read() into the room: bytes read, 0 on EOF, -EAGAIN, -ENOBUFS when full, -errno. */
ssize_t conn_buf_read(struct conn_buf *b, int fd);
/* write() held bytes: bytes written, -EAGAIN, -errno. */
ssize_t conn_buf_write(struct conn_buf *b, int fd);

#endif
