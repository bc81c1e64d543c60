/* transport_mem: an in-memory transport for unit tests. A test plays the
 * client: what it pushes is what the connection reads, what the connection
 * writes (or sends from a file) piles up for the test to inspect, and the
 * test decides how much the "socket" takes (room), when the peer's end of
 * stream comes, and when an operation must wait for the other direction
 * (want-read / want-write, as TLS does). Every call is counted, so a test
 * can say how many writes a response took and which hints were given.
 *
 * Only the loop needs a real fd: each connection has a pipe whose read end
 * is registered in its place (no one writes into the pipe, so epoll never
 * reports it) and events are delivered by hand with loop_dispatch().
 *
 * It lives with the tests, not in src/worker/: it exists only for them,
 * finds its state by fd from a table (test-grade), and must never be
 * linked into drover. */
#ifndef DROVER_TEST_TRANSPORT_MEM_H
#define DROVER_TEST_TRANSPORT_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/transport.h"

#define TMEM_UNLIMITED SIZE_MAX

struct tmem {
	int fd;      /* what the loop watches and struct conn holds; -1 once closed */
	int fd_hold; /* the pipe's write end, held so that fd never hangs up */
	/* Client to server. */
	char *in;
	size_t in_len, in_off, in_cap;
	bool in_eof;   /* after in: the client's end of stream */
	int in_error;  /* after in: reads fail with this (-ECONNRESET), 0: none */
	/* Server to client. */
	char *out;
	size_t out_len, out_cap;
	size_t room;   /* bytes still taken before writes get -EAGAIN */
	/* The next read (write) waits for the other direction, once. */
	bool read_waits_writable;
	bool write_waits_readable;
	/* What the security op reports ("TLSv1.3": the connection behaves as
	 * one over TLS, for HSTS and the access log); NULL: a plain socket. */
	const char *security;
	/* What the connection did. */
	unsigned reads;       /* calls of read */
	unsigned writes;      /* calls of writev that took bytes */
	unsigned sendfiles;   /* calls of sendfile that took bytes */
	unsigned more_writes; /* writes with TRANSPORT_MORE */
	unsigned last_flags;  /* of the last writev that took bytes */
	unsigned nodelay, acks_delayed, acks_now; /* hints given */
	bool shut;            /* shutdown: our FIN */
	size_t out_at_shut;   /* out_len when it came */
	bool closed;
};

extern const struct transport_ops transport_mem;

/* A fresh client with unlimited room; its fd is ready for an accept. */
void tmem_init(struct tmem *m);
/* Release the buffers (and the fds if the connection never closed them). */
void tmem_free(struct tmem *m);
/* The client sends len bytes (or a string). */
void tmem_push(struct tmem *m, const void *data, size_t len);
void tmem_push_str(struct tmem *m, const char *s);
/* What the connection wrote so far, NUL-terminated (valid until the next
 * write). */
const char *tmem_out(struct tmem *m);
/* Forget what was written (the client read it). */
void tmem_out_clear(struct tmem *m);

#endif
