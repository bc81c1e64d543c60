/* http h1: HTTP/1.1's side of a response (see h1.h).
 *
 * The head is built once into the connection's output buffer: status line,
 * Date and Server, the response's field lines, Content-Length, Connection,
 * the empty line. Then the body:
 *   - memory that fits behind the head is copied there, so that head and
 *     body go out in one sendmsg() and pipelined answers batch (conn.c);
 *   - a file range of at most HTTP_INLINE_BODY_MAX that fits is read there
 *     (pread) and its fd given back at once;
 *   - anything else is taken over by the connection (hc->src): memory is
 *     sent from where it is, files with sendfile(2), multipart parts are
 *     queued one at a time as the previous one is sent.
 * A HEAD request gets GET's head; its body source is released unread. */
#include "proto/http/h1.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "proto/http/access_log.h"
#include "proto/http/fields.h"
#include "proto/http/handler.h"
#include "proto/http/router.h"

#define HTTP_INLINE_BODY_MAX (16 * 1024) /* file bodies up to this go out with the header block */
#define HTTP_NO_LENGTH UINT64_MAX        /* http_resp_end_head(): no Content-Length (304) */

/* The field lines of the response being built: a worker answers one
 * request at a time, and the lines are copied out before the next. */
static char http_h1_fields[HTTP_FIELDS_MAX];

/* ------------------------------------------------------------ output buffer */

/* Append to the header block; an overflow sets HC_OUT_OVERFLOW. */
static void http_out_add(struct http_conn *hc, const char *p, size_t n)
{
	if (http_has(hc, HC_OUT_OVERFLOW) || n == 0)
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

static void http_out_str(struct http_conn *hc, const char *s)
{
	http_out_add(hc, s, strlen(s));
}

/* ------------------------------------------------------------ head */

/* Whether this response ends the connection (RFC 9112 §9.3, §9.6). */
static bool http_should_close(struct http_conn *hc, unsigned how)
{
	if ((how & (HTTP_CLOSE | HTTP_UNPARSED)) || !hc->req.keep_alive)
		return true;
	if (proto_env_draining(http_w.env) && !conn_may_hand_off(&hc->base)) {
		/* Handed off, a connection lives on and answers as if no drain
		 * happened. Otherwise every request that had arrived when the drain began is answered
		 * (pipelined ones too); the response to the last of them says
		 * close. Bytes buffered behind this request's head belong to
		 * later requests. */
		if (!http_has(hc, HC_DRAIN_MARKED))
			return true;
		size_t len = conn_buf_len(&hc->in);
		size_t behind = len > hc->req.head_len ? len - hc->req.head_len : 0;
		return hc->session.rx_total - behind >= hc->session.drain_limit;
	}
	unsigned limit = http_w.http->keepalive_requests;
	if (limit && hc->session.responses + 1 >= limit)
		return true;
	return false;
}

/* Start a response: status line, Date, Server (RFC 9110 §6.6). */
static void http_resp_begin(struct http_conn *hc, int status, unsigned how)
{
	bool have_req = !(how & HTTP_UNPARSED);
	if (conn_buf_len(&hc->out) == 0)
		hc->out.start = hc->out.end = 0;
	http_clear(hc, HC_OUT_OVERFLOW | HC_SEND_WAITING);
	hc->status = status;
	http_put(hc, HC_CLOSE_AFTER, http_should_close(hc, how));
	http_put(hc, HC_CLOSE_REQUESTED, have_req && !(how & HTTP_CLOSE) && !hc->req.keep_alive);
	hc->body_sent = 0;
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
	size_t date_len;
	const char *date = http_date_lines(&date_len);
	http_out_add(hc, date, date_len);
	/* HSTS only where it means something: over TLS (RFC 6797 §7.2). The
	 * line is the config's, built once; a plain connection pays a test. */
	const char *hsts = http_w.http->hsts_line;
	if (hsts && conn_security(&hc->base))
		http_out_add(hc, hsts, http_w.http->hsts_line_len);
}

/* End the header block: Content-Length (unless HTTP_NO_LENGTH),
 * Connection, the empty line. */
static void http_resp_end_head(struct http_conn *hc, uint64_t length)
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

/* The header block begun at mark did not fit (an enormous Location, say):
 * drop it and any body, answer 500 instead. No-op without an overflow. */
static void http_resp_check_overflow(struct http_conn *hc, size_t mark, unsigned how)
{
	if (!http_has(hc, HC_OUT_OVERFLOW))
		return;
	hc->out.end = hc->out.start + mark;
	http_src_release(&hc->src);
	log_warning("http: response header block too large, answering 500");
	http_respond_error(hc, 500, (how & HTTP_UNPARSED) | HTTP_CLOSE);
}

/* ------------------------------------------------------------ body */

/* Read a small file body into the output buffer behind the head (which
 * starts at mark): it rides with the head in one write. A file that
 * changed under us cannot keep the promised length: 500. */
static void http_body_inline(struct http_conn *hc, struct http_body_src *body, size_t mark)
{
	conn_buf_compact(&hc->out);
	size_t length = (size_t)body->left, got = 0;
	while (got < length) {
		ssize_t r = pread(body->fd, hc->out.data + hc->out.end + got, length - got, body->off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	http_src_release(body);
	if (got < length) {
		hc->out.end = hc->out.start + mark;
		http_respond_error(hc, 500, HTTP_CLOSE);
		return;
	}
	hc->out.end += length;
}

/* Put the body behind the head: copied when it fits (see the top), else
 * taken over by the connection. Memory without a release lives in the
 * response and must be copied: if it does not fit, the response is too
 * large (500), as a head that does not fit. */
static void http_body_place(struct http_conn *hc, struct http_body_src *body, size_t mark)
{
	switch (body->kind) {
	case HTTP_SRC_NONE:
		return;
	case HTTP_SRC_MEM:
		if (conn_buf_room(&hc->out) >= body->mem_len || !body->release) {
			http_out_add(hc, body->mem, body->mem_len);
			return;
		}
		break;
	case HTTP_SRC_FILE:
		if (body->left <= HTTP_INLINE_BODY_MAX && conn_buf_room(&hc->out) >= body->left) {
			http_body_inline(hc, body, mark);
			return;
		}
		break;
	case HTTP_SRC_PARTS:
		break;
	}
	hc->src = *body;
	*body = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
	http_respond_next_part(hc); /* multipart: the first part's header rides with the head */
}

/* ------------------------------------------------------------ responses */

void http_respond_with(struct http_conn *hc, struct http_response *resp)
{
	unsigned how = resp->how;
	if (how & HTTP_UNPARSED)
		http_clear(hc, HC_HEAD_ONLY); /* left from an earlier request */
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, resp->status, how);
	http_out_add(hc, resp->fields.lent, resp->fields.lent_len);
	http_out_add(hc, resp->fields.buf, resp->fields.len);
	if (resp->fields.overflow)
		http_set(hc, HC_OUT_OVERFLOW);
	http_resp_end_head(hc, resp->no_length || resp->length_in_fields ? HTTP_NO_LENGTH : resp->body.length);
	hc->state = HTTP_SEND;
	if (!http_has(hc, HC_OUT_OVERFLOW | HC_HEAD_ONLY))
		http_body_place(hc, &resp->body, mark);
	http_src_release(&resp->body); /* what was copied, or is not sent (HEAD) */
	if (resp->status != 500)
		http_resp_check_overflow(hc, mark, how);
}

void http_respond_error(struct http_conn *hc, int status, unsigned how)
{
	char fields[256];
	struct http_response resp;
	http_response_init(&resp, fields, sizeof(fields));
	http_response_error(&resp, status);
	resp.how = how;
	http_respond_with(hc, &resp);
}

bool http_respond_next_part(struct http_conn *hc)
{
	char head[512];
	size_t n = http_src_next_part(&hc->src, head, sizeof(head));
	if (n == 0)
		return false;
	http_out_add(hc, head, n);
	return true;
}

void http_route(struct http_conn *hc)
{
	http_put(hc, HC_HEAD_ONLY, hc->req.method == HTTP_METHOD_HEAD);
	struct http_ask ask = {
		.req = &hc->req,
		.head_only = http_has(hc, HC_HEAD_ONLY),
		.listener = hc->base.listener,
		.now_ms = loop_now_ms(hc->base.loop),
		.site = &http_w.site,
	};
	struct http_response resp;
	http_response_init(&resp, http_h1_fields, sizeof(http_h1_fields));
	http_router_answer(&ask, &resp);
	http_respond_with(hc, &resp);
}
