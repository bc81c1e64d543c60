/* http state: the data of an HTTP/1.1 connection (struct http_conn, its
 * states and flags, its session: what outlives a request, in both of its
 * forms, and its idle form struct http_idle) and of the worker (struct
 * http_worker). Shared by the state machine (conn.c) and the pieces it
 * drives (idle.c, pool.c, access_log.c), which therefore do not depend on
 * conn.c. Private to src/proto/http; the worker sees only proto_http
 * (http.h). */
#ifndef DROVER_HTTP_STATE_H
#define DROVER_HTTP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "proto/http/handler.h"
#include "proto/http/parse.h"
#include "proto/http/response.h"
#include "worker/conn.h"
#include "worker/proto.h"

/* The states drawn at the top of conn.c. */
enum http_state {
	HTTP_IDLE = 0, /* waiting for the first byte of a request */
	HTTP_HEAD,     /* part of a request head is buffered */
	HTTP_BODY,     /* the head is complete; its body is read and discarded */
	HTTP_SEND,     /* a response is being written */
};

/* What is true of a connection beside its state (bits of hc->session.flags). */
enum http_flag {
	HC_PEER_EOF = 1u << 0,         /* the client shut down its sending side */
	HC_WANT_WRITE = 1u << 1,       /* output is pending and the transport was full */
	HC_CLOSE_AFTER = 1u << 2,      /* the current response says Connection: close */
	HC_CLOSE_REQUESTED = 1u << 3,  /* ...because the request asked (not an error, drain or limit) */
	HC_RESPONDING = 1u << 4,       /* a response was begun and is not yet logged */
	HC_HEAD_ONLY = 1u << 5,        /* HEAD: headers as for GET, no body */
	HC_OUT_OVERFLOW = 1u << 6,     /* the header block did not fit in the output buffer */
	HC_SEND_WAITING = 1u << 7,     /* the response blocked once: send_timeout is running */
	HC_DRAIN_GRACE = 1u << 8,      /* draining and idle: one last request may still come */
	HC_DRAIN_MARKED = 1u << 9,     /* drain_limit is set */
	HC_FLUSH_ONLY = 1u << 10,      /* SEND writes answers already done (batched pipelining) */
	HC_NODELAY = 1u << 11,         /* TCP_NODELAY is set (or not needed: not TCP) */
	HC_DELAYED_ACKS = 1u << 12,    /* TCP_QUICKACK is 0: the request's ACK waits for the response */
	HC_WAIT_MEMORY = 1u << 13,     /* idle form: bytes arrived, no memory to read them yet (idle.c) */
	HC_DRAIN_PENDING = 1u << 14,   /* idle form: asked to drain while waiting for memory */
};

/* What an HTTP connection carries from one request to the next: its
 * session. Both forms embed it and trade it in one assignment (idle.c),
 * and it is what a hand-off exports, with the listener and the peer that
 * struct conn holds. No unparsed bytes: a connection takes its idle form
 * only with nothing buffered. */
struct http_session {
	unsigned flags;      /* enum http_flag */
	unsigned responses;  /* completed responses on this connection */
	uint64_t deadline;   /* of the state's timeout; c->timer may fire earlier and re-arm */
	uint64_t rx_total;   /* request bytes read on this connection */
	uint64_t drain_limit;/* rx_total when the drain began: requests that had arrived by then are all answered */
};

struct http_conn {
	struct conn base; /* first: conn_close() hands us back as a struct conn */
	enum http_state state;
	struct http_session session;
	struct conn_buf in;
	struct conn_buf out;
	struct http_parser parser;
	struct http_request req;
	struct http_body_reader body;
	/* The response body beyond the output buffer: its one owner while it
	 * is sent (h1.c hands it over, http_src_release() gives it back). */
	struct http_body_src src;
	/* For the access log. */
	int status;
	uint64_t body_sent;  /* response body bytes written */
	size_t out_skip;     /* output bytes still queued that are not body (100, header block) */
	char *log;           /* HTTP_LOG_MAX bytes, NULL when the access log is off */
	size_t log_mid;      /* log[0, log_mid): up to the status and a space; then the tail */
	size_t log_len;
	uint64_t req_start_ms; /* the loop's clock when the request's first bytes were taken up; 0: none */
};

/* An idle keep-alive connection (state HTTP_IDLE, nothing buffered,
 * nothing to send): the connection and its session, so the buffers and
 * the request state can go back to the pool (pool.c). idle.c moves a
 * connection between the two forms (conn_move and one assignment of the
 * session). */
struct http_idle {
	struct conn base;
	struct http_session session;
};

static inline bool http_has(const struct http_conn *hc, unsigned flag) { return (hc->session.flags & flag) != 0; }
static inline void http_set(struct http_conn *hc, unsigned flag) { hc->session.flags |= flag; }
static inline void http_clear(struct http_conn *hc, unsigned flag) { hc->session.flags &= ~flag; }
static inline void http_put(struct http_conn *hc, unsigned flag, bool on)
{
	if (on)
		http_set(hc, flag);
	else
		http_clear(hc, flag);
}

/* Per-worker state: one worker per process, set up by http_worker_init(). */
struct http_worker {
	const struct proto_env *env;
	const struct config *cfg;
	const struct http_config *http; /* cfg's [http] (http_cfg) */
	struct http_mime *mime;
	struct http_limits lim;
	size_t in_cap;          /* input buffer of a connection */
	struct http_site site;  /* what the handlers get */
};
extern struct http_worker http_w;

#endif
