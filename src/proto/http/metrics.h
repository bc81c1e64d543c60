/* http metrics: counting every HTTP response for /metrics, and the
 * metrics endpoint itself ([http] metrics_path on a listener with
 * metrics = yes): the Prometheus text format 0.0.4, summed over every
 * worker from the scoreboard and the shared counters (core/metrics.h).
 *
 * Every response is counted once, where its access-log line is written:
 * HTTP/1.1 through http_metrics_response() (called by http_log_write,
 * which runs once per response, logged or not); another protocol path
 * (HTTP/2) calls http_metrics_count() once per response itself, where it
 * writes its log line, and does not go through http_log_write. */
#ifndef DROVER_HTTP_METRICS_H
#define DROVER_HTTP_METRICS_H

#include <stdint.h>

#include "proto/http/handler.h"
#include "proto/http/parse.h"

struct http_conn;
struct metrics_slot;

/* Count one response: its request's method, status, how long from the
 * request's first byte to the response's last (ms) and body bytes sent.
 * slot: the worker's (env->metrics); NULL counts nothing. */
void http_metrics_count(struct metrics_slot *slot, enum http_method method, int status, uint64_t duration_ms,
			uint64_t bytes);
/* Count the response hc just finished (HTTP/1.1). */
void http_metrics_response(struct http_conn *hc);

/* [http] metrics_path, on a listener with metrics = yes. */
enum http_handled http_builtin_metrics(const struct http_ask *ask, struct http_response *resp);

#endif
