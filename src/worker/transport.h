/* transport: how a connection's bytes reach its peer. Every struct conn
 * carries one (struct transport): a table of operations and the
 * transport's own per-connection state. Protocols read and write only
 * through it (conn_read(), conn_writev(), ... in conn.h), never with a
 * socket system call, so the same protocol code runs over a plain socket
 * (transport_plain.c), TLS, or the in-memory transport of the unit tests.
 * A listener names its transport (worker_listener.transport; NULL is the
 * plain socket).
 *
 * Errors are values: I/O returns bytes (>= 0) or -errno, and -EAGAIN when
 * it would block. A transport that must write before it can read, or read
 * before it can write (TLS: a handshake, a key update), returns -EAGAIN and
 * says so in the connection's io_wait bits (enum transport_wait), and
 * clears them once that operation gets through. conn_watch_for() and
 * conn_can() turn them into the events to watch and the operations an
 * event lets through, so a protocol handles want-read / want-write in one
 * place. A plain socket never sets them. */
#ifndef DROVER_TRANSPORT_H
#define DROVER_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;

/* Why an operation that returned -EAGAIN waits for the other direction
 * (bits of conn.io_wait). */
enum transport_wait {
	TRANSPORT_READ_WAITS_WRITABLE = 1u << 0, /* a read must first send (TLS) */
	TRANSPORT_WRITE_WAITS_READABLE = 1u << 1, /* a write must first receive (TLS) */
};

/* Flags of a write. */
enum transport_write_flag {
	/* More follows at once (MSG_MORE): hold a partial last segment so the
	 * next write, or the FIN of a close, can share it. */
	TRANSPORT_MORE = 1u << 0,
};

/* Hints about packets; a transport that has no such thing ignores them. */
enum transport_hint {
	TRANSPORT_NODELAY,     /* send partial segments at once from now on (TCP_NODELAY) */
	TRANSPORT_ACKS_DELAYED,/* let an ACK wait for the answer it can ride on (TCP_QUICKACK 0) */
	TRANSPORT_ACKS_NOW,    /* acknowledge what came now, and from now on as usual (TCP_QUICKACK 1) */
};

struct transport_ops {
	const char *name;
	/* A connection can move to another process with its fd alone (a
	 * hand-off to the next generation): true for a plain socket; false
	 * for TLS, whose session state lives in this process's library. */
	bool movable;
	/* Set up the state of a new connection on c->fd (c->listener says
	 * which listener); 0 or -errno. NULL: there is none. */
	int (*open)(struct conn *c);
	/* Read at most len bytes into buf: bytes (> 0), 0 at the peer's end
	 * of stream, -EAGAIN, -errno. */
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	/* Write the n buffers of iov in order: bytes taken (maybe fewer than
	 * asked), -EAGAIN, -errno. flags: enum transport_write_flag. */
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int n, unsigned flags);
	/* Send at most len bytes of file fd from *off, advancing *off: bytes,
	 * 0 when the file ended first, -EAGAIN, -errno. */
	ssize_t (*sendfile)(struct conn *c, int fd, off_t *off, size_t len);
	/* Whether input is waiting, without taking it: 1, 0 (nothing yet, or
	 * the end of stream), -errno. */
	int (*pending)(struct conn *c);
	/* End our sending side (a FIN after what is sent); 0 or -errno. */
	int (*shutdown)(struct conn *c);
	/* Release the state and close c->fd if it is >= 0 (forgetting it in
	 * the loop). Always called once, by conn_close(). */
	void (*close)(struct conn *c);
	/* Apply a hint; 0 or -errno. */
	int (*hint)(struct conn *c, enum transport_hint hint);
	/* The security protocol in use once it is set up ("TLSv1.3"), for
	 * logs and headers only TLS sends (HSTS); NULL: none (a plain
	 * socket, or a handshake not finished). NULL op: always none. */
	const char *(*security)(const struct conn *c);
	/* The protocol ALPN chose in the handshake (wire bytes, *len of
	 * them), or NULL: none (a plain socket, no ALPN). NULL op: none. */
	const unsigned char *(*alpn)(const struct conn *c, unsigned *len);
};

/* A connection's transport: what struct conn embeds. */
struct transport {
	const struct transport_ops *ops;
	void *state; /* the transport's own; NULL for a plain socket (the fd is all it needs) */
};

/* A plain socket: today's system calls, each once (transport_plain.c). */
extern const struct transport_ops transport_plain;

#endif
