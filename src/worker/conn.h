/* conn: what every protocol's connection has in common: its fd, its worker,
 * its timer, bounded buffers, and the two ways to close (now, or lingering). */
#ifndef DROVER_CONN_H
#define DROVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/loop.h"

struct worker;
struct worker_listener;
struct conn;

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
	struct worker *worker;
	struct loop *loop;
	const struct worker_listener *listener;
	const struct conn_ops *ops;
	struct conn *prev, *next; /* the worker's list */
	struct loop_timer timer;  /* the protocol's timeouts */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	bool lingering;           /* half-closed, discarding input before close */
};

/* Fill in c and link it into its worker; the protocol then registers c->fd. */
void conn_init(struct conn *c, struct worker *w, const struct worker_listener *l, int fd,
	       const struct sockaddr *peer, socklen_t peer_len, const struct conn_ops *ops);
/* Close now: unregister, close the fd, unlink, call ops->free. */
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
/* Append n bytes; -ENOBUFS if they do not fit. */
int conn_buf_append(struct conn_buf *b, const void *p, size_t n);
/* read() into the room: bytes read, 0 on EOF, -EAGAIN, -ENOBUFS when full, -errno. */
ssize_t conn_buf_read(struct conn_buf *b, int fd);
/* write() held bytes: bytes written, -EAGAIN, -errno. */
ssize_t conn_buf_write(struct conn_buf *b, int fd);

#endif
