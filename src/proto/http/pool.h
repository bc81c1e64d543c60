/* http pool: a worker's free lists of HTTP connection state. An idle
 * keep-alive connection is a small struct http_idle (from slabs, no malloc
 * per accept); while a request is in flight it is a struct http_conn,
 * whose input, output and log buffers come with it from the pool and go
 * back with it when the connection is idle again. */
#ifndef DROVER_HTTP_POOL_H
#define DROVER_HTTP_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/http/state.h"

/* Buffers of in_cap and out_cap bytes, and a log buffer when log;
 * returned (may be NULL) is called each time a connection struct comes
 * back (http_pool_give), for whoever waits for one. */
void http_pool_init(size_t in_cap, size_t out_cap, bool log, void (*returned)(void));
/* Free every spare (the worker is exiting; no connection is used after). */
void http_pool_done(void);
/* A connection struct with its buffers, state left from its last use
 * (the caller resets it), or NULL when memory ran out. */
struct http_conn *http_pool_take(void);
/* Back to the pool: a few are kept ready, the others freed. */
void http_pool_give(struct http_conn *hc);
/* Make sure the next http_pool_take_idle() succeeds; 0 or -ENOMEM. */
int http_pool_reserve_idle(void);
/* An idle struct, or NULL when memory ran out (never after a reserve). */
struct http_idle *http_pool_take_idle(void);
void http_pool_give_idle(struct http_idle *idle);

#endif
