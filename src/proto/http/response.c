/* http response: status line and common header fields, the end of the
 * header block, and complete responses built from memory. The header
 * block is built once into the connection's output buffer and goes out
 * with the body in one sendmsg() (conn.c). */
#include "proto/http/response.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "proto/http/access_log.h"
#include "proto/http/file.h"
#include "proto/http/fields.h"

#ifdef PACKAGE_VERSION
#define HTTP_SERVER_NAME "drover/" PACKAGE_VERSION
#else
#define HTTP_SERVER_NAME "drover/0.1"
#endif

/* Date header, formatted at most once a second, and the "Date: ...\r\n
 * Server: ...\r\n" lines every response carries, built with it. */
static time_t http_date_sec = -1;
static char http_date_buf[64];
static char http_date_lines[128];
static size_t http_date_lines_len;

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

const char *http_date_now(time_t *now_out)
{
	time_t now = time(NULL);
	if (now != http_date_sec) {
		http_date_format(now, http_date_buf, sizeof(http_date_buf));
		http_date_sec = now;
		int n = snprintf(http_date_lines, sizeof(http_date_lines),
				 "Date: %s\r\nServer: " HTTP_SERVER_NAME "\r\n", http_date_buf);
		http_date_lines_len = n > 0 && (size_t)n < sizeof(http_date_lines) ? (size_t)n : 0;
	}
	if (now_out)
		*now_out = now;
	return http_date_buf;
}

/* ------------------------------------------------------------ output buffer */

void http_out_add(struct http_conn *hc, const char *p, size_t n)
{
	if (http_has(hc, HC_OUT_OVERFLOW))
		return;
	if (conn_buf_room(&hc->out) < n) {
		http_set(hc, HC_OUT_OVERFLOW);
		return;
	}
	if (hc->out.cap - hc->out.end < n)
		conn_buf_compact(&hc->out);
	memcpy(hc->out.data + hc->out.end, p, n);
	hc->out.end += n;
}

void http_out_str(struct http_conn *hc, const char *s)
{
	http_out_add(hc, s, strlen(s));
}

size_t http_u64_dec(uint64_t v, char out[static 20])
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

void http_out_printf(struct http_conn *hc, const char *fmt, ...)
{
	if (http_has(hc, HC_OUT_OVERFLOW))
		return;
	if (hc->out.cap - hc->out.end < 512)
		conn_buf_compact(&hc->out);
	size_t room = hc->out.cap - hc->out.end;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(hc->out.data + hc->out.end, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		http_set(hc, HC_OUT_OVERFLOW);
		return;
	}
	hc->out.end += (size_t)n;
}

/* ------------------------------------------------------------ head */

/* Whether this response ends the connection (RFC 9112 §9.3, §9.6). */
static bool http_should_close(struct http_conn *hc, unsigned how)
{
	if ((how & (HTTP_CLOSE | HTTP_UNPARSED)) || !hc->req.keep_alive)
		return true;
	if (proto_env_draining(http_w.env)) {
		/* Every request that had arrived when the drain began is answered
		 * (pipelined ones too); the response to the last of them says
		 * close. Bytes buffered behind this request's head belong to
		 * later requests. */
		if (!http_has(hc, HC_DRAIN_MARKED))
			return true;
		size_t len = conn_buf_len(&hc->in);
		size_t behind = len > hc->req.head_len ? len - hc->req.head_len : 0;
		return hc->session.rx_total - behind >= hc->session.drain_limit;
	}
	unsigned limit = http_w.cfg->http.keepalive_requests;
	if (limit && hc->session.responses + 1 >= limit)
		return true;
	return false;
}

void http_resp_begin(struct http_conn *hc, int status, unsigned how)
{
	bool have_req = !(how & HTTP_UNPARSED);
	if (conn_buf_len(&hc->out) == 0)
		hc->out.start = hc->out.end = 0;
	http_clear(hc, HC_OUT_OVERFLOW | HC_SEND_WAITING);
	hc->status = status;
	http_put(hc, HC_CLOSE_AFTER, http_should_close(hc, how));
	http_put(hc, HC_CLOSE_REQUESTED, have_req && !(how & HTTP_CLOSE) && !hc->req.keep_alive);
	hc->body_sent = 0;
	hc->file_left = 0;
	http_set(hc, HC_RESPONDING);
	http_log_prepare(hc, have_req ? &hc->req : NULL);
	/* HTTP/1.0 requests are answered as HTTP/1.1 (RFC 9110 §6.2). No
	 * printf: this runs for every response. */
	const char *reason = http_reason(status);
	size_t reason_len = strlen(reason);
	char line[64]; /* the longest reason is 31 bytes; status is 100..599 */
	memcpy(line, "HTTP/1.1 ", 9);
	line[9] = (char)('0' + status / 100);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	line[12] = ' ';
	memcpy(line + 13, reason, reason_len);
	memcpy(line + 13 + reason_len, "\r\n", 2);
	http_out_add(hc, line, 15 + reason_len);
	http_date_now(NULL);
	http_out_add(hc, http_date_lines, http_date_lines_len);
}

void http_resp_end_head(struct http_conn *hc, uint64_t length)
{
	/* No Content-Length on a 304 (RFC 9110 §15.4.5). */
	if (length != HTTP_NO_LENGTH) {
		char line[48] = "Content-Length: ";
		size_t n = 16 + http_u64_dec(length, line + 16);
		memcpy(line + n, "\r\n", 2);
		http_out_add(hc, line, n + 2);
	}
	if (http_has(hc, HC_CLOSE_AFTER))
		http_out_str(hc, "Connection: close\r\n");
	else if (hc->req.version_minor == 0)
		http_out_str(hc, "Connection: keep-alive\r\n"); /* RFC 9112 §9.3 (1.0 persistence) */
	http_out_str(hc, "\r\n");
	hc->out_skip = conn_buf_len(&hc->out);
}

void http_resp_check_overflow(struct http_conn *hc, size_t mark, unsigned how)
{
	if (!http_has(hc, HC_OUT_OVERFLOW))
		return;
	hc->out.end = hc->out.start + mark;
	http_file_release(hc);
	free(hc->dyn);
	hc->dyn = NULL;
	hc->dyn_len = hc->dyn_off = 0;
	log_warning("http: response header block too large, answering 500");
	http_respond_error(hc, 500, (how & HTTP_UNPARSED) | HTTP_CLOSE);
}

/* ------------------------------------------------------------ whole responses */

void http_respond_small(struct http_conn *hc, int status, unsigned how, const char *content_type,
			const char *extra_headers, const char *body, size_t body_len)
{
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, status, how);
	if (content_type)
		http_out_printf(hc, "Content-Type: %s\r\n", content_type);
	if (extra_headers)
		http_out_str(hc, extra_headers);
	http_resp_end_head(hc, body_len);
	if (!http_has(hc, HC_HEAD_ONLY))
		http_out_add(hc, body, body_len);
	if (status != 500)
		http_resp_check_overflow(hc, mark, how);
	hc->state = HTTP_SEND;
}

/* HTTP_CLOSE for errors after which the request stream cannot be trusted
 * (parse errors, timeouts). */
void http_respond_error(struct http_conn *hc, int status, unsigned how)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	const char *extra = NULL;
	if (status == 405)
		extra = "Allow: GET, HEAD, OPTIONS\r\n"; /* RFC 9110 §15.5.6 */
	if (how & HTTP_UNPARSED)
		http_clear(hc, HC_HEAD_ONLY);
	http_respond_small(hc, status, how, "text/plain; charset=utf-8", extra, body, (size_t)n);
}

void http_respond_dyn(struct http_conn *hc, int status, const char *content_type, char *body,
		      size_t body_len)
{
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, status, HTTP_PERSIST);
	http_out_printf(hc, "Content-Type: %s\r\n", content_type);
	http_resp_end_head(hc, body_len);
	if (http_has(hc, HC_HEAD_ONLY)) {
		free(body);
	} else {
		hc->dyn = body;
		hc->dyn_len = body_len;
		hc->dyn_off = 0;
	}
	http_resp_check_overflow(hc, mark, HTTP_PERSIST);
	hc->state = HTTP_SEND;
}
