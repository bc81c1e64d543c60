/* http builtin: the endpoints drover answers itself, before the file tree
 * (two entries of the router's table). */
#ifndef DROVER_HTTP_BUILTIN_H
#define DROVER_HTTP_BUILTIN_H

#include "proto/http/handler.h"

/* [http] health_path: 200 "ok", 503 while the worker drains. */
enum http_handled http_builtin_health(const struct http_ask *ask, struct http_response *resp);
/* [http] live_path: 200 "ok" whenever the worker runs, draining included. */
enum http_handled http_builtin_live(const struct http_ask *ask, struct http_response *resp);
/* [http] status_path, on a listener with status = yes: the scoreboard as JSON. */
enum http_handled http_builtin_status(const struct http_ask *ask, struct http_response *resp);

#endif
