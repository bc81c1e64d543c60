/* http h1: HTTP/1.1's side of a response. A complete request in a
 * connection becomes a struct http_ask for the router, and the response it
 * gets back is serialised into the connection: the head as text in the
 * output buffer, the body source taken over by the connection (conn.c
 * writes it). Also the connection's own answers (parse errors, timeouts). */
#ifndef DROVER_HTTP_H1_H
#define DROVER_HTTP_H1_H

#include <stdbool.h>

#include "proto/http/response.h"
#include "proto/http/state.h"

/* Answer the complete request in hc->req: route it, serialise the
 * response. hc is in HTTP_SEND after. */
void http_route(struct http_conn *hc);
/* Serialise resp as the answer to hc's request: the head into hc->out, the
 * body copied after it or taken over as hc->src (resp keeps none). How it
 * treats the connection: resp->how. A head that does not fit becomes a
 * 500. hc is in HTTP_SEND after. */
void http_respond_with(struct http_conn *hc, struct http_response *resp);
/* An error with a short text body; how: enum http_resp_how. */
void http_respond_error(struct http_conn *hc, int status, unsigned how);
/* A multipart body: queue the next part's header (its bytes are then
 * hc->src's current range) or the closing delimiter. false when nothing is
 * left to queue. */
bool http_respond_next_part(struct http_conn *hc);

#endif
