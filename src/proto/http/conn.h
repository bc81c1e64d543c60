/* http conn: the HTTP/1.1 connection state machine (conn.c): events,
 * timeouts and the full form's operations, for idle.c. The connection's
 * data is in state.h. Private to src/proto/http; the worker sees only
 * proto_http (http.h). */
#ifndef DROVER_HTTP_CONN_H
#define DROVER_HTTP_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "proto/http/state.h"
#include "worker/conn.h"

#define HTTP_DRAIN_IDLE_GRACE_MS 1000 /* draining: an idle keep-alive may send one more request */

/* The full form's operations (drain, free), for idle.c's wake-up. */
extern const struct conn_ops http_conn_ops;
/* Handle events on a full connection: 0, or CONN_GONE when it closed. */
int http_conn_events(struct http_conn *hc, unsigned events);
/* The full form's timer callback (its state's timeout). */
void http_conn_timeout(struct loop *loop, struct loop_timer *t, void *arg);
/* A timer fired for c whose state's deadline is later: re-arm it for the
 * rest and say so. */
bool http_not_yet(struct loop *loop, struct conn *c, uint64_t deadline);
/* The keepalive or header timeout of a connection waiting for a request
 * expired (responses: how many it had): close it, lingering if a request
 * may race with the close. */
void http_idle_expired(struct conn *c, unsigned responses);

/* Session flags a hand-off carries: the socket's own options. */
#define HTTP_HANDOFF_FLAGS (HC_NODELAY | HC_DELAYED_ACKS)
/* A draining connection at a request boundary (nothing half-read beyond
 * what a hand-off carries, nothing half-written) goes to the successor:
 * CONN_GONE when it went, or when it was closed draining as before
 * because the hand-off failed; 0: it stays (not at a boundary yet, or no
 * hand-off). */
int http_conn_try_hand_off(struct http_conn *hc);
/* Run the state machine over what is buffered (an adopted connection's
 * bytes): 0, or CONN_GONE. */
int http_conn_resume(struct http_conn *hc);

#endif
