/* http access_log: one line per response in the combined log format
 * ([http] access_log_format = extended adds the request time and the TLS
 * version),
 * written with a single write(2) to an O_APPEND file (or stderr) that the
 * supervisor opened and hands over. */
#ifndef DROVER_HTTP_ACCESS_LOG_H
#define DROVER_HTTP_ACCESS_LOG_H

#include <stdbool.h>

#include "proto/http/state.h"

/* Bytes of one line; longer fields are truncated. */
#define HTTP_LOG_MAX 4096

/* Use [http] access_log (a path, "stderr", or "off"/empty); for a path,
 * fd is the file the supervisor opened for it. 0 or -errno. */
int http_log_open(const char *path, int fd);
/* Stop writing lines (the fd stays the worker's). */
void http_log_close(void);
/* Whether lines are written at all (connections then get a line buffer). */
bool http_log_enabled(void);
/* Prepare the line of the response being started; req is NULL when no
 * request was parsed. Everything but the body size, known at the end. */
void http_log_prepare(struct http_conn *hc, const struct http_request *req);
/* Write the prepared line with the body size sent. */
void http_log_write(struct http_conn *hc);
/* The line of an HTTP/2 stream (h2.c), written at once: "METHOD TARGET
 * HTTP/2.0" as its request line; req NULL when no request was decoded. */
void http_log_stream(const struct conn *c, const struct http_request *req, int status, uint64_t body_sent,
		     uint64_t start_ms);

#endif
