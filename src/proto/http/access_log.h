/* http access_log: one line per response in the combined log format,
 * written with a single write(2) to an O_APPEND file (or stderr). */
#ifndef DROVER_HTTP_ACCESS_LOG_H
#define DROVER_HTTP_ACCESS_LOG_H

#include <stdbool.h>

#include "proto/http/conn.h"

/* Bytes of one line; longer fields are truncated. */
#define HTTP_LOG_MAX 4096

/* Open [http] access_log (a path, "stderr", or "off"/empty); 0 or -errno. */
int http_log_open(const char *path);
/* Reopen the file in place (logrotate); keeps the old one on failure. */
void http_log_reopen(const char *path);
/* Close what http_log_open() opened. */
void http_log_close(void);
/* Whether lines are written at all (connections then get a line buffer). */
bool http_log_enabled(void);
/* Prepare the line of the response being started; req is NULL when no
 * request was parsed. Everything but the body size, known at the end. */
void http_log_prepare(struct http_conn *hc, const struct http_request *req);
/* Write the prepared line with the body size sent. */
void http_log_write(struct http_conn *hc);

#endif
