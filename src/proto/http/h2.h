/* http h2: HTTP/2 (RFC 9113) over a connection that began as HTTP/1.1's
 * (conn.c): ALPN "h2" on TLS, or the client preface on a plain listener
 * with http2 = yes (prior knowledge, h2c). libnghttp2 does the framing,
 * HPACK, flow control and stream states; this file owns the I/O (through
 * the connection's transport), the limits, the timeouts and the drain, and
 * answers each stream from the same router and handlers as HTTP/1.1: a
 * second serialiser of struct http_response. Private to src/proto/http. */
#ifndef DROVER_HTTP_H2_H
#define DROVER_HTTP_H2_H

#include "proto/http/state.h"
#include "worker/conn.h"

/* The client preface (RFC 9113 §3.4), 24 bytes. */
#define HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HTTP2_PREFACE_LEN 24

/* Whether hc, which has not answered a request yet, speaks HTTP/2: 1 yes
 * (ALPN chose h2, or its listener has http2 = yes and the buffered bytes
 * are the preface), 0 not known yet (a beginning of the preface is
 * buffered), -1 no (HTTP/1.1). */
int http2_detect(struct http_conn *hc);
/* hc becomes an HTTP/2 connection: its socket, timer and buffered input go
 * to a new struct, and hc goes back to the pool. Returns CONN_GONE
 * always: hc must not be touched again (the connection lives on, or was
 * closed when it could not be set up). */
int http2_take_over(struct http_conn *hc);
/* The ALPN list of c's listener: h2 and http/1.1, or http/1.1 alone. */
const unsigned char *http2_alpn_of(const struct conn *c, unsigned *len);
/* Once per worker (nghttp2's callbacks and options); 0 or -ENOMEM. */
int http2_init(void);
void http2_done(void);

#endif
