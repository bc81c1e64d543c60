/* http router: a request to the handler that answers it. Methods first
 * (OPTIONS, 405, 501), then the path is normalised, then each handler of
 * the table is asked in turn: the built-in endpoints (health, status), the
 * static files, the listings. A new endpoint is one table entry. */
#ifndef DROVER_HTTP_ROUTER_H
#define DROVER_HTTP_ROUTER_H

#include <stddef.h>

#include "proto/http/handler.h"
#include "proto/http/response.h"

/* Answer ask (ask->path is set here, valid during the call) in resp, from
 * the table. Always answers: 404 when every handler declines. */
void http_router_answer(struct http_ask *ask, struct http_response *resp);
/* The same with another table (tests, and the shape a new table takes). */
void http_router_answer_from(const struct http_handler *table, size_t n, struct http_ask *ask,
			     struct http_response *resp);

#endif
