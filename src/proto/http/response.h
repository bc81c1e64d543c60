/* http response: the status line, Date and Server, the header block's end,
 * and complete responses from memory (errors, small bodies, generated
 * bodies). Every responder leaves hc in HTTP_SEND. */
#ifndef DROVER_HTTP_RESPONSE_H
#define DROVER_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/http/state.h"

/* How a response treats its connection (bits). */
enum http_resp_how {
	HTTP_PERSIST = 0,       /* keep-alive if the request, drain and limits allow */
	HTTP_CLOSE = 1u << 0,   /* the request stream cannot be trusted: close after */
	HTTP_UNPARSED = 1u << 1,/* no request was parsed (parse error, timeout) */
};

/* http_resp_end_head() for a response without Content-Length (304). */
#define HTTP_NO_LENGTH UINT64_MAX

/* Reason phrase of a status code. */
const char *http_reason(int status);
/* The cached IMF-fixdate for "now" (RFC 9110 §6.6.1), and its time. */
const char *http_date_now(time_t *now);

/* Append to the header block; an overflow sets HC_OUT_OVERFLOW. */
void http_out_add(struct http_conn *hc, const char *p, size_t n);
void http_out_str(struct http_conn *hc, const char *s);
/* v in decimal into out (no NUL); its length. */
size_t http_u64_dec(uint64_t v, char out[static 20]);
__attribute__((format(printf, 2, 3)))
void http_out_printf(struct http_conn *hc, const char *fmt, ...);

/* Start a response: status line, Date, Server (RFC 9110 §6.6). */
void http_resp_begin(struct http_conn *hc, int status, unsigned how);
/* End the header block: Content-Length (unless HTTP_NO_LENGTH),
 * Connection, the empty line. */
void http_resp_end_head(struct http_conn *hc, uint64_t length);
/* The header block begun at mark did not fit (an enormous Location, say):
 * drop it and any body, answer 500 instead. No-op without an overflow. */
void http_resp_check_overflow(struct http_conn *hc, size_t mark, unsigned how);

/* A complete response with a body from memory (copied into the output buffer). */
void http_respond_small(struct http_conn *hc, int status, unsigned how, const char *content_type,
			const char *extra_headers, const char *body, size_t body_len);
/* An error response with a small text body. */
void http_respond_error(struct http_conn *hc, int status, unsigned how);
/* A response whose body is a malloc'd buffer (taken over). */
void http_respond_dyn(struct http_conn *hc, int status, const char *content_type, char *body,
		      size_t body_len);

#endif
