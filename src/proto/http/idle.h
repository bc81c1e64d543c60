/* http idle: a connection between requests (struct http_idle), the moves
 * between its idle and full forms, connections waiting for memory, and
 * accept. Private to src/proto/http. */
#ifndef DROVER_HTTP_IDLE_H
#define DROVER_HTTP_IDLE_H

#include <sys/socket.h>

#include "proto/http/conn.h"
#include "worker/proto.h"

/* Set up the pool of connection state (pool.c) and the queue of
 * connections waiting for memory, after the access log is open; 0 or
 * -ENOMEM. */
int http_idle_init(const struct proto_env *env);
/* Release both (the worker is exiting). */
void http_idle_done(void);
/* proto_http.reserve: the next accept needs no allocation; 0 or -ENOMEM. */
int http_idle_reserve(const struct proto_env *env);
/* proto_http.accept: take a freshly accepted fd, in its idle form. */
int http_idle_accept(const struct proto_env *env, const struct worker_listener *l, int fd,
		     const struct sockaddr *peer, socklen_t peer_len);
/* proto_http.adopt: a connection handed over by another worker (or back
 * to us), with its session and the bytes read but not parsed yet. */
int http_idle_adopt(const struct proto_env *env, const struct worker_listener *l, int fd,
		    const struct handoff_conn *h);
/* After an event: a full connection with nothing buffered, nothing to send
 * and only the next request to wait for goes back to its idle form. Not
 * while draining (a few connections, soon closed). */
void http_idle_sleep(struct http_conn *hc);

#endif
