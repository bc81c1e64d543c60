/* http: the HTTP/1.1 protocol of a worker (RFC 9110, RFC 9112).
 *
 * One struct http_conn per connection, driven by an explicit state machine:
 *
 *   IDLE --first byte--> HEAD --head complete--> [BODY] --> SEND --done--+
 *    ^                                                                   |
 *    +------------------ keep-alive, next request ----------------------+
 *
 *   IDLE  waiting for a request: header_timeout on a fresh connection,
 *         keepalive_timeout between requests; expiry closes silently.
 *   HEAD  part of a request head is buffered; header_timeout runs from its
 *         first byte and is not extended (slowloris) -> 408 + close.
 *   BODY  the head is complete and its body is read and discarded
 *         (RFC 9112 §6.3, §7.1); the head stays at the front of the input
 *         buffer so the parsed request's slices stay valid. The "client body
 *         timeout" is header_timeout again, counted from the last byte that
 *         made progress -> 408 + close.
 *   SEND  a response is being written: header block (and small bodies) from
 *         the output buffer, large bodies with sendfile(2). send_timeout
 *         counts from the last write that made progress -> close.
 *
 * Requests are handled strictly one at a time and in order (pipelining,
 * RFC 9112 §9.3.2): bytes of later requests stay in the input buffer while a
 * response is written, and reading stops while that buffer is full.
 *
 * Drain (proto_env_draining): every response from then on says
 * Connection: close; an idle keep-alive connection is closed at once unless
 * its next request is already in the socket, which is answered first; a
 * connection mid-request or mid-response finishes it and then closes. Closes
 * that may race with a client's next request are lingering (RFC 9112 §9.6).
 *
 * Methods: GET and HEAD serve files, OPTIONS answers 200 with Allow (not
 * 204, which must not carry Content-Length, RFC 9110 §8.6), the other
 * registered methods get 405 with Allow, and a method token we do not know
 * gets 501 (RFC 9110 §15.6.2). Framing errors from the parser are answered
 * with Connection: close because the request stream cannot be trusted.
 *
 * Memory: every buffer is allocated once per connection at accept; nothing
 * is allocated per request except the bodies of the two non-hot-path
 * responses (directory listings and the status JSON).
 *
 * Packets: TCP_NODELAY is set at accept. Header blocks and small bodies go
 * out in a single sendmsg(); before a sendfile() body the header block is
 * sent with MSG_MORE so the kernel coalesces it with the first file bytes.
 * So Nagle would only ever delay the final partial segment of a response,
 * which NODELAY avoids without adding packets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH, dup3 */
#endif
#include "proto/http/http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "worker/conn.h"
#include "proto/http/parse.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "proto/http/static.h"
#include "worker/proto.h"

#ifdef PACKAGE_VERSION
#define HTTP_SERVER_NAME "drover/" PACKAGE_VERSION
#else
#define HTTP_SERVER_NAME "drover/0.1"
#endif

#define HTTP_IN_SLACK (16 * 1024)        /* room for pipelined bytes beyond max_header_size */
#define HTTP_OUT_CAP (24 * 1024)         /* header block + small bodies */
#define HTTP_INLINE_BODY_MAX (16 * 1024) /* bodies up to this go out with the header block */
#define HTTP_SENDFILE_CHUNK (512 * 1024) /* per wake-up, so one download cannot starve others */
#define HTTP_LOG_MAX 4096                /* one access log line, truncated fields beyond */
#define HTTP_LISTING_MAX (1024 * 1024)   /* directory listing body */
#define HTTP_LISTING_ENTRIES 10000
#define HTTP_DRAIN_IDLE_GRACE_MS 1000    /* draining: an idle keep-alive may send one more request */
#define HTTP_PATH_MAX 4096

enum http_state {
	HTTP_IDLE = 0,
	HTTP_HEAD,
	HTTP_BODY,
	HTTP_SEND,
};

struct http_conn {
	struct conn base; /* first: conn_close() hands us back as a struct conn */
	enum http_state state;
	struct conn_buf in;
	struct conn_buf out;
	struct http_parser parser;
	struct http_request req;
	struct http_body_reader body;
	uint64_t deadline;   /* of the state's timeout; c->timer may fire earlier and re-arm */
	unsigned mask;       /* LOOP_* registered now */
	unsigned responses;  /* completed responses on this connection */
	bool drain_grace;    /* draining and idle: one last request may still come */
	bool drain_marked;   /* drain_limit is set */
	uint64_t rx_total;   /* request bytes read on this connection */
	uint64_t drain_limit;/* rx_total when the drain began: requests that had arrived by then are all answered */
	bool peer_eof;       /* the client shut down its sending side */
	bool want_write;     /* output is pending and the socket was full */
	bool close_after;    /* the current response says Connection: close */
	bool close_requested;/* ...because the request asked for it (not an error, drain or limit) */
	bool responding;     /* a response is being sent (not yet logged) */
	bool head_only;      /* HEAD: headers as for GET, no body */
	bool out_overflow;   /* the header block did not fit in the output buffer */
	bool send_waiting;   /* the response blocked once: send_timeout is running */
	/* The response body beyond the output buffer. */
	int file_fd;
	off_t file_off;
	uint64_t file_left;
	char *dyn;           /* malloc'd body (listing, status JSON) */
	size_t dyn_len, dyn_off;
	/* For the access log. */
	int status;
	uint64_t body_sent;  /* response body bytes written */
	size_t out_skip;     /* output bytes still queued that are not body (100, header block) */
	char *log;           /* HTTP_LOG_MAX bytes, NULL when the access log is off */
	size_t log_mid;      /* log[0, log_mid): up to the status and a space; then the tail */
	size_t log_len;
};

/* Per-worker state: one worker per process. */
static const struct proto_env *http_env; /* this worker's */
static const struct config *http_cfg;
static struct static_mime *http_mime;
static int http_root_fd = -1;
static int http_log_fd = -1;
static bool http_log_is_file;
static struct http_limits http_lim;
static struct static_options http_sopts;
static size_t http_in_cap;
/* Date header and access-log timestamp, each formatted at most once a second. */
static time_t http_date_sec = -1;
static char http_date_buf[64];
static time_t http_logtime_sec = -1;
static char http_logtime_buf[64];

static const struct conn_ops http_conn_ops;
static int http_conn_process(struct http_conn *hc);

/* ------------------------------------------------------------ helpers */

static const char *http_reason(int status)
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

/* The cached IMF-fixdate for "now" (RFC 9110 §6.6.1). */
static const char *http_date_now(void)
{
	time_t now = time(NULL);
	if (now != http_date_sec) {
		static_http_date(now, http_date_buf, sizeof(http_date_buf));
		http_date_sec = now;
	}
	return http_date_buf;
}

/* The cached "%d/%b/%Y:%H:%M:%S %z" local time for the access log. */
static const char *http_logtime_now(void)
{
	time_t now = time(NULL);
	if (now != http_logtime_sec) {
		struct tm tm;
		if (!localtime_r(&now, &tm) ||
		    strftime(http_logtime_buf, sizeof(http_logtime_buf), "%d/%b/%Y:%H:%M:%S %z", &tm) == 0)
			snprintf(http_logtime_buf, sizeof(http_logtime_buf), "-");
		http_logtime_sec = now;
	}
	return http_logtime_buf;
}

static struct scoreboard_slot *http_slot(void)
{
	return http_env->slot;
}

/* ------------------------------------------------------------ timers */

/* Set the state's timeout to ms from now. Lazy: the heap is touched only
 * when the timer is not armed or armed too late; a timer that fires before
 * hc->deadline re-arms itself for the remainder. So a keep-alive request
 * answered without blocking costs no timer operation at all. */
static void http_timer_set(struct http_conn *hc, uint64_t ms)
{
	struct conn *c = &hc->base;
	hc->deadline = loop_now_ms(c->loop) + ms;
	if (!loop_timer_armed(&c->timer) || c->timer.deadline_ms > hc->deadline)
		loop_timer_arm_at(c->loop, &c->timer, hc->deadline);
}

/* ------------------------------------------------------------ output buffer */

static void http_out_add(struct http_conn *hc, const char *p, size_t n)
{
	if (hc->out_overflow)
		return;
	if (conn_buf_room(&hc->out) < n) {
		hc->out_overflow = true;
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

__attribute__((format(printf, 2, 3)))
static void http_out_printf(struct http_conn *hc, const char *fmt, ...)
{
	if (hc->out_overflow)
		return;
	if (hc->out.cap - hc->out.end < 512)
		conn_buf_compact(&hc->out);
	size_t room = hc->out.cap - hc->out.end;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(hc->out.data + hc->out.end, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		hc->out_overflow = true;
		return;
	}
	hc->out.end += (size_t)n;
}

/* ------------------------------------------------------------ access log */

/* Append src to dst[*pos, cap) escaping '"', '\\' and bytes outside
 * printable ASCII as \xHH; stops (truncates) before overflowing. */
static void http_log_escape(char *dst, size_t cap, size_t *pos, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
			if (p + 1 >= cap)
				break;
			dst[p++] = (char)ch;
		} else {
			if (p + 4 >= cap)
				break;
			dst[p++] = '\\';
			dst[p++] = 'x';
			dst[p++] = hex[ch >> 4];
			dst[p++] = hex[ch & 15];
		}
	}
	*pos = p;
}

static void http_log_lit(char *dst, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (*pos >= cap)
		return;
	if (*pos + n >= cap)
		n = cap - 1 - *pos;
	memcpy(dst + *pos, s, n);
	*pos += n;
}

/* Length of the first line of buf (up to CR or LF). */
static size_t http_first_line_len(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\r' || buf[i] == '\n')
			return i;
	return len;
}

/* Prepare the access log line for the response being started: everything
 * but the body size, which is known when the response ends. Each field is
 * bounded so the line always fits in HTTP_LOG_MAX. */
static void http_log_prepare(struct http_conn *hc, bool have_req)
{
	if (!hc->log)
		return;
	char *L = hc->log;
	size_t pos = 0;
	char peer[128];
	conn_peer_str(&hc->base, peer, sizeof(peer));
	http_log_lit(L, 200, &pos, peer);
	http_log_lit(L, 260, &pos, " - - [");
	http_log_lit(L, 320, &pos, http_logtime_now());
	http_log_lit(L, 330, &pos, "] \"");
	/* %r: the request line as received (after the empty lines RFC 9112
	 * §2.2 lets a client send first). */
	const char *line = hc->in.data + hc->in.start;
	size_t avail = conn_buf_len(&hc->in);
	while (avail && (*line == '\r' || *line == '\n')) {
		line++;
		avail--;
	}
	size_t line_len = http_first_line_len(line, avail);
	if (line_len)
		http_log_escape(L, 2300, &pos, line, line_len);
	else
		http_log_lit(L, 2300, &pos, "-");
	char st[16];
	snprintf(st, sizeof(st), "\" %d ", hc->status);
	http_log_lit(L, 2320, &pos, st);
	hc->log_mid = pos;
	struct http_str ref = { NULL, 0 }, ua = { NULL, 0 };
	if (have_req) {
		ref = hc->req.referer;
		ua = hc->req.user_agent;
	}
	http_log_lit(L, 2330, &pos, " \"");
	if (ref.len)
		http_log_escape(L, 3100, &pos, ref.p, ref.len);
	else
		http_log_lit(L, 3100, &pos, "-");
	http_log_lit(L, 3110, &pos, "\" \"");
	if (ua.len)
		http_log_escape(L, 4000, &pos, ua.p, ua.len);
	else
		http_log_lit(L, 4000, &pos, "-");
	http_log_lit(L, 4010, &pos, "\"\n");
	hc->log_len = pos;
}

/* Write the prepared line with the body size: one write() per line, which
 * O_APPEND keeps whole among all workers. */
static void http_log_write(struct http_conn *hc)
{
	if (!hc->log || http_log_fd < 0 || hc->log_len == 0)
		return;
	char line[HTTP_LOG_MAX];
	size_t pos = hc->log_mid;
	memcpy(line, hc->log, pos);
	int n;
	if (hc->body_sent)
		n = snprintf(line + pos, 24, "%" PRIu64, hc->body_sent);
	else
		n = snprintf(line + pos, 24, "-");
	if (n > 0)
		pos += (size_t)n;
	size_t tail = hc->log_len - hc->log_mid;
	memcpy(line + pos, hc->log + hc->log_mid, tail);
	pos += tail;
	ssize_t w = write(http_log_fd, line, pos);
	(void)w; /* a full disk must not stop serving */
	hc->log_len = 0;
}

/* ------------------------------------------------------------ response building */

/* Whether this response ends the connection (RFC 9112 §9.3, §9.6). */
static bool http_should_close(struct http_conn *hc, bool have_req, bool force)
{
	if (force || !have_req || !hc->req.keep_alive)
		return true;
	if (proto_env_draining(http_env)) {
		/* Every request that had arrived when the drain began is answered
		 * (pipelined ones too); the response to the last of them says
		 * close. Bytes buffered behind this request's head belong to
		 * later requests. */
		if (!hc->drain_marked)
			return true;
		size_t len = conn_buf_len(&hc->in);
		size_t behind = len > hc->req.head_len ? len - hc->req.head_len : 0;
		return hc->rx_total - behind >= hc->drain_limit;
	}
	unsigned limit = http_cfg->http.keepalive_requests;
	if (limit && hc->responses + 1 >= limit)
		return true;
	return false;
}

/* Start a response: status line, Date, Server (RFC 9110 §6.6). */
static void http_resp_begin(struct http_conn *hc, int status, bool have_req, bool force_close)
{
	if (conn_buf_len(&hc->out) == 0)
		hc->out.start = hc->out.end = 0;
	hc->out_overflow = false;
	hc->status = status;
	hc->close_after = http_should_close(hc, have_req, force_close);
	hc->close_requested = have_req && !force_close && !hc->req.keep_alive;
	hc->body_sent = 0;
	hc->file_left = 0;
	hc->send_waiting = false;
	hc->responding = true;
	http_log_prepare(hc, have_req);
	/* HTTP/1.0 requests are answered as HTTP/1.1 (RFC 9110 §6.2). */
	http_out_printf(hc, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: " HTTP_SERVER_NAME "\r\n",
			status, http_reason(status), http_date_now());
}

/* End the header block: Content-Length (unless has_length is false, as for
 * 304, RFC 9110 §15.4.5), Connection, the empty line. */
static void http_resp_end_head(struct http_conn *hc, bool has_length, uint64_t length)
{
	if (has_length)
		http_out_printf(hc, "Content-Length: %" PRIu64 "\r\n", length);
	if (hc->close_after)
		http_out_str(hc, "Connection: close\r\n");
	else if (hc->req.version_minor == 0)
		http_out_str(hc, "Connection: keep-alive\r\n"); /* RFC 9112 §9.3 (1.0 persistence) */
	http_out_str(hc, "\r\n");
	hc->out_skip = conn_buf_len(&hc->out);
}

static void http_respond_error(struct http_conn *hc, int status, bool have_req, bool force_close);

/* The header block did not fit (an enormous Location, say): answer 500. */
static void http_resp_check_overflow(struct http_conn *hc, size_t mark, bool have_req)
{
	if (!hc->out_overflow)
		return;
	hc->out.end = hc->out.start + mark;
	if (hc->file_fd >= 0) {
		close(hc->file_fd);
		hc->file_fd = -1;
	}
	free(hc->dyn);
	hc->dyn = NULL;
	hc->dyn_len = hc->dyn_off = 0;
	log_warning("http: response header block too large, answering 500");
	http_respond_error(hc, 500, have_req, true);
}

/* A complete response with a body from memory (copied into the output buffer). */
static void http_respond_small(struct http_conn *hc, int status, bool have_req, bool force_close,
			       const char *content_type, const char *extra_headers,
			       const char *body, size_t body_len)
{
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, status, have_req, force_close);
	if (content_type)
		http_out_printf(hc, "Content-Type: %s\r\n", content_type);
	if (extra_headers)
		http_out_str(hc, extra_headers);
	http_resp_end_head(hc, true, body_len);
	if (!hc->head_only)
		http_out_add(hc, body, body_len);
	if (hc->out_overflow && status != 500)
		http_resp_check_overflow(hc, mark, have_req);
	hc->state = HTTP_SEND;
}

/* An error response with a small text body. force_close for errors after
 * which the request stream cannot be trusted (parse errors, timeouts). */
static void http_respond_error(struct http_conn *hc, int status, bool have_req, bool force_close)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	const char *extra = NULL;
	if (status == 405)
		extra = "Allow: GET, HEAD, OPTIONS\r\n"; /* RFC 9110 §15.5.6 */
	if (!have_req)
		hc->head_only = false;
	http_respond_small(hc, status, have_req, force_close, "text/plain; charset=utf-8", extra,
			   body, (size_t)n);
}

/* A response whose body is a malloc'd buffer (taken over). */
static void http_respond_dyn(struct http_conn *hc, int status, const char *content_type,
			     char *body, size_t body_len)
{
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, status, true, false);
	http_out_printf(hc, "Content-Type: %s\r\n", content_type);
	http_resp_end_head(hc, true, body_len);
	if (hc->head_only) {
		free(body);
	} else {
		hc->dyn = body;
		hc->dyn_len = body_len;
		hc->dyn_off = 0;
	}
	http_resp_check_overflow(hc, mark, true);
	hc->state = HTTP_SEND;
}

/* ------------------------------------------------------------ built-in endpoints */

/* health_path: 200 "ok", 503 while this worker drains so a load balancer
 * stops sending traffic before the stop. */
static void http_respond_health(struct http_conn *hc)
{
	if (proto_env_draining(http_env))
		http_respond_small(hc, 503, true, true, "text/plain; charset=utf-8",
				   "Cache-Control: no-store\r\n", "draining\n", 9);
	else
		http_respond_small(hc, 200, true, false, "text/plain; charset=utf-8",
				   "Cache-Control: no-store\r\n", "ok\n", 3);
}

/* status_path: the scoreboard as JSON. */
static void http_respond_status(struct http_conn *hc)
{
	const struct scoreboard *sb = http_env->sb;
	size_t cap = 512 + (size_t)SCOREBOARD_SLOTS * 320;
	char *buf = malloc(cap);
	if (!buf || !sb) {
		free(buf);
		http_respond_error(hc, 500, true, false);
		return;
	}
	time_t now = time(NULL);
	uint64_t started = __atomic_load_n(&sb->hdr.started_realtime_s, __ATOMIC_RELAXED);
	uint64_t uptime = (uint64_t)now > started ? (uint64_t)now - started : 0;
	uint64_t mono = loop_clock_ms();
	size_t pos = 0;
	int n = snprintf(buf, cap,
			 "{\"supervisor_pid\":%" PRId32 ",\"generation\":%" PRIu32
			 ",\"uptime_s\":%" PRIu64 ",\"workers\":[",
			 __atomic_load_n(&sb->hdr.supervisor_pid, __ATOMIC_RELAXED),
			 __atomic_load_n(&sb->hdr.generation, __ATOMIC_RELAXED), uptime);
	pos = (size_t)n;
	bool first = true;
	for (size_t i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct scoreboard_slot *s = &sb->slots[i];
		uint32_t state = sb_load32(&s->state);
		if (state == SLOT_FREE)
			continue;
		uint64_t hb = sb_load(&s->heartbeat_ms);
		n = snprintf(buf + pos, cap - pos,
			     "%s{\"pid\":%" PRId32 ",\"generation\":%" PRIu32 ",\"index\":%" PRIu32
			     ",\"state\":\"%s\",\"connections\":%" PRIu64 ",\"accepted\":%" PRIu64
			     ",\"requests\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
			     ",\"heartbeat_age_ms\":%" PRIu64 "}",
			     first ? "" : ",", __atomic_load_n(&s->pid, __ATOMIC_RELAXED),
			     sb_load32(&s->generation), sb_load32(&s->index),
			     scoreboard_state_name(state), sb_load(&s->connections),
			     sb_load(&s->accepted), sb_load(&s->requests), sb_load(&s->bytes_in),
			     sb_load(&s->bytes_out), mono > hb ? mono - hb : 0);
		if (n < 0 || (size_t)n >= cap - pos)
			break;
		pos += (size_t)n;
		first = false;
	}
	if (pos + 3 < cap) {
		memcpy(buf + pos, "]}\n", 3);
		pos += 3;
	}
	http_respond_dyn(hc, 200, "application/json", buf, pos);
}

/* ------------------------------------------------------------ static files */

/* Percent-encode a normalised path for a Location header (RFC 3986 §3.3). */
static bool http_path_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t p = 0;
	for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
		bool keep = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9') || strchr("-._~!$&'()*+,;=:@/", *s);
		if (keep) {
			if (p + 1 >= cap)
				return false;
			out[p++] = (char)*s;
		} else {
			if (p + 3 >= cap)
				return false;
			out[p++] = '%';
			out[p++] = hex[*s >> 4];
			out[p++] = hex[*s & 15];
		}
	}
	out[p] = '\0';
	return true;
}

/* Escape for HTML text and attribute values. */
static size_t http_html_escape(char *out, size_t cap, const char *s)
{
	size_t p = 0;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		}
		size_t n = rep ? strlen(rep) : 1;
		if (p + n >= cap)
			break;
		if (rep)
			memcpy(out + p, rep, n);
		else
			out[p] = *s;
		p += n;
	}
	out[p] = '\0';
	return p;
}

static int http_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* autoindex: a bounded HTML listing of the directory f->fd (not the hot
 * path, so it is built in a malloc'd buffer). Dotfiles are hidden unless
 * they may be served. */
/* Whether the symlink name in directory norm may be shown: it resolves
 * inside the root (or follow_symlinks allows anything). */
static bool http_listing_link_ok(const char *norm, const char *name)
{
	if (http_cfg->http.follow_symlinks)
		return true;
	char path[HTTP_PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s", norm, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	struct static_file f;
	memset(&f, 0, sizeof(f));
	f.fd = -1;
	int status = static_open(http_root_fd, path, &http_sopts, &f);
	if (f.fd >= 0)
		close(f.fd);
	return status != 404 && status != 400;
}

static void http_respond_listing(struct http_conn *hc, const char *norm, int dir_fd)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		http_respond_error(hc, 500, true, false);
		return;
	}
	size_t n = 0, cap = 64;
	char **names = malloc(cap * sizeof(*names));
	struct dirent *de;
	while (names && n < HTTP_LISTING_ENTRIES && (de = readdir(d))) {
		const char *nm = de->d_name;
		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		if (nm[0] == '.' && !http_cfg->http.dotfiles)
			continue;
		bool isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			struct stat st;
			if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
			    !http_listing_link_ok(norm, nm))
				continue; /* leads out of the root: do not even name it */
			if (fstatat(dirfd(d), nm, &st, 0) == 0)
				isdir = S_ISDIR(st.st_mode);
		}
		if (n == cap) {
			char **nn = realloc(names, 2 * cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
			cap *= 2;
		}
		size_t len = strlen(nm);
		char *e = malloc(len + 2);
		if (!e)
			break;
		memcpy(e, nm, len);
		e[len] = isdir ? '/' : '\0';
		e[len + 1] = '\0';
		names[n++] = e;
	}
	closedir(d);
	if (!names) {
		http_respond_error(hc, 500, true, false);
		return;
	}
	qsort(names, n, sizeof(*names), http_name_cmp);

	char *body = malloc(HTTP_LISTING_MAX);
	size_t pos = 0;
	if (body) {
		char esc[HTTP_PATH_MAX * 6 + 1], enc[HTTP_PATH_MAX * 3 + 1];
		http_html_escape(esc, sizeof(esc), norm);
		int r = snprintf(body, HTTP_LISTING_MAX,
				 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of %s</title></head>\n"
				 "<body><h1>Index of %s</h1><ul>\n",
				 esc, esc);
		pos = r > 0 && (size_t)r < HTTP_LISTING_MAX ? (size_t)r : 0;
		if (strcmp(norm, "/") != 0 && pos + 64 < HTTP_LISTING_MAX)
			pos += (size_t)snprintf(body + pos, HTTP_LISTING_MAX - pos,
						"<li><a href=\"../\">../</a></li>\n");
		for (size_t i = 0; i < n; i++) {
			char name_esc[256 * 6 + 8];
			if (!http_path_encode(names[i], enc, sizeof(enc)))
				continue;
			http_html_escape(esc, sizeof(esc), enc);
			http_html_escape(name_esc, sizeof(name_esc), names[i]);
			/* "./": a name with ':' must not read as a URL scheme
			 * ("javascript:..."), RFC 3986 §4.2. */
			r = snprintf(body + pos, HTTP_LISTING_MAX - pos, "<li><a href=\"./%s\">%s</a></li>\n",
				     esc, name_esc);
			if (r < 0 || (size_t)r + 32 >= HTTP_LISTING_MAX - pos)
				break;
			pos += (size_t)r;
		}
		r = snprintf(body + pos, HTTP_LISTING_MAX - pos, "</ul></body></html>\n");
		if (r > 0 && (size_t)r < HTTP_LISTING_MAX - pos)
			pos += (size_t)r;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!body) {
		http_respond_error(hc, 500, true, false);
		return;
	}
	http_respond_dyn(hc, 200, "text/html; charset=utf-8", body, pos);
}

/* The 301 that adds the trailing slash to a directory (RFC 9110 §15.4.2). */
static void http_respond_redirect(struct http_conn *hc, const char *norm)
{
	char enc[HTTP_PATH_MAX * 3 + 2];
	if (!http_path_encode(norm, enc, sizeof(enc) - 1)) {
		http_respond_error(hc, 414, true, false);
		return;
	}
	size_t n = strlen(enc);
	if (n == 0 || enc[n - 1] != '/') {
		enc[n++] = '/';
		enc[n] = '\0';
	}
	static const char body[] = "301 Moved Permanently\n";
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, 301, true, false);
	http_out_printf(hc, "Location: %s%s%.*s\r\nContent-Type: text/plain; charset=utf-8\r\n", enc,
			hc->req.query.len ? "?" : "", (int)hc->req.query.len,
			hc->req.query.len ? hc->req.query.p : "");
	http_resp_end_head(hc, true, sizeof(body) - 1);
	if (!hc->head_only)
		http_out_add(hc, body, sizeof(body) - 1);
	http_resp_check_overflow(hc, mark, true);
	hc->state = HTTP_SEND;
}

/* If-Range (RFC 9110 §13.1.5): an entity-tag must match strongly and
 * exactly; a date must equal Last-Modified. Otherwise ignore Range. */
static bool http_if_range_ok(const struct http_request *req, const char *etag, time_t mtime)
{
	struct http_str v = req->if_range;
	if (v.len == 0)
		return true;
	if (v.p[0] == '"' || (v.len >= 2 && v.p[0] == 'W' && v.p[1] == '/'))
		return v.p[0] == '"' && v.len == strlen(etag) && memcmp(v.p, etag, v.len) == 0;
	time_t t;
	if (static_parse_http_date(v.p, v.len, &t) < 0)
		return false;
	return t == mtime;
}

/* GET/HEAD of a regular file: validators, conditionals, Range, body. */
static void http_respond_file(struct http_conn *hc, struct static_file *f)
{
	const struct http_request *req = &hc->req;
	char etag[96], lastmod[64];
	static_etag(&f->st, etag, sizeof(etag));
	static_http_date(f->st.st_mtime, lastmod, sizeof(lastmod));
	uint64_t size = (uint64_t)f->st.st_size;

	/* Preconditions in the order of RFC 9110 §13.2.2: If-None-Match, and
	 * only without it If-Modified-Since (GET/HEAD only). */
	bool not_modified = false;
	if (req->if_none_match.len) {
		not_modified = static_etag_matches(req->if_none_match.p, req->if_none_match.len, etag);
	} else if (req->if_modified_since.len) {
		time_t ims;
		if (static_parse_http_date(req->if_modified_since.p, req->if_modified_since.len, &ims) == 0 &&
		    f->st.st_mtime <= ims)
			not_modified = true;
	}
	size_t mark = conn_buf_len(&hc->out);
	if (not_modified) {
		close(f->fd);
		f->fd = -1;
		http_resp_begin(hc, 304, true, false);
		http_out_printf(hc, "ETag: %s\r\nLast-Modified: %s\r\n", etag, lastmod);
		http_resp_end_head(hc, false, 0);
		http_resp_check_overflow(hc, mark, true);
		hc->state = HTTP_SEND;
		return;
	}

	/* Range applies to GET only (RFC 9110 §14.2). */
	uint64_t first = 0, last = size ? size - 1 : 0;
	enum static_range_result rr = RANGE_NONE;
	if (req->method == HTTP_METHOD_GET && req->range.len && http_if_range_ok(req, etag, f->st.st_mtime))
		rr = static_parse_range(req->range.p, req->range.len, size, &first, &last);
	if (rr == RANGE_UNSATISFIABLE) {
		close(f->fd);
		f->fd = -1;
		char extra[96];
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", size);
		static const char body[] = "416 Range Not Satisfiable\n";
		http_respond_small(hc, 416, true, false, "text/plain; charset=utf-8", extra, body,
				   sizeof(body) - 1);
		return;
	}
	uint64_t length = rr == RANGE_OK ? last - first + 1 : size;
	const char *ctype = static_mime_lookup(http_mime, f->type_name, http_cfg->http.default_type);

	http_resp_begin(hc, rr == RANGE_OK ? 206 : 200, true, false);
	http_out_printf(hc, "Content-Type: %s\r\nETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
			ctype, etag, lastmod);
	if (rr == RANGE_OK)
		http_out_printf(hc, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first,
				last, size);
	http_resp_end_head(hc, true, length);
	hc->state = HTTP_SEND;
	if (hc->out_overflow) {
		close(f->fd);
		f->fd = -1;
		http_resp_check_overflow(hc, mark, true);
		return;
	}
	if (hc->head_only || length == 0) {
		close(f->fd);
		f->fd = -1;
		return;
	}
	/* Small bodies ride with the header block in one write. */
	if (length <= HTTP_INLINE_BODY_MAX && conn_buf_room(&hc->out) >= length) {
		conn_buf_compact(&hc->out);
		size_t got = 0;
		while (got < length) {
			ssize_t r = pread(f->fd, hc->out.data + hc->out.end + got, length - got,
					  (off_t)(first + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(f->fd);
		f->fd = -1;
		if (got < length) {
			/* Changed under us: the promised length cannot be kept. */
			hc->out.end = hc->out.start + mark;
			http_respond_error(hc, 500, true, true);
			return;
		}
		hc->out.end += length;
		return;
	}
	hc->file_fd = f->fd;
	f->fd = -1;
	hc->file_off = (off_t)first;
	hc->file_left = length;
}

static void http_respond_static(struct http_conn *hc, const char *norm)
{
	if (http_root_fd < 0) {
		http_respond_error(hc, 500, true, false);
		return;
	}
	struct static_file f;
	memset(&f, 0, sizeof(f));
	f.fd = -1;
	int status = static_open(http_root_fd, norm, &http_sopts, &f);
	if (status == 200 && f.directory_listing) {
		http_respond_listing(hc, norm, f.fd);
		close(f.fd);
		return;
	}
	if (status == 200) {
		http_respond_file(hc, &f);
		if (f.fd >= 0)
			close(f.fd);
		return;
	}
	if (f.fd >= 0)
		close(f.fd);
	if (status == 301) {
		http_respond_redirect(hc, norm);
		return;
	}
	if (status != 400 && status != 403 && status != 404)
		status = 500;
	http_respond_error(hc, status, true, false);
}

/* ------------------------------------------------------------ request dispatch */

/* A complete request (head and body) is in hc->req: build its response. */
static void http_handle_request(struct http_conn *hc)
{
	struct http_request *req = &hc->req;
	hc->head_only = req->method == HTTP_METHOD_HEAD;

	switch (req->method) {
	case HTTP_METHOD_GET:
	case HTTP_METHOD_HEAD:
		break;
	case HTTP_METHOD_OPTIONS:
		/* 200 with an explicit empty body: 204 must not carry
		 * Content-Length (RFC 9110 §8.6), and this is simpler for clients. */
		http_respond_small(hc, 200, true, false, NULL, "Allow: GET, HEAD, OPTIONS\r\n", "", 0);
		return;
	case HTTP_METHOD_OTHER:
		/* A method token we do not know (RFC 9110 §15.6.2). */
		http_respond_error(hc, 501, true, false);
		return;
	default:
		http_respond_error(hc, 405, true, false);
		return;
	}

	char norm[HTTP_PATH_MAX];
	int r = static_normalize_path(req->path.p, req->path.len, norm, sizeof(norm));
	if (r == -ENAMETOOLONG) {
		http_respond_error(hc, 414, true, false);
		return;
	}
	if (r < 0) {
		http_respond_error(hc, 400, true, true);
		return;
	}
	const char *health = http_cfg->http.health_path;
	if (health && *health && strcmp(norm, health) == 0) {
		http_respond_health(hc);
		return;
	}
	const char *status = http_cfg->http.status_path;
	if (hc->base.listener && hc->base.listener->status && status && *status &&
	    strcmp(norm, status) == 0) {
		http_respond_status(hc);
		return;
	}
	http_respond_static(hc, norm);
}

/* ------------------------------------------------------------ I/O */

static void http_count_out(struct http_conn *hc, size_t n, bool is_body)
{
	sb_add(&http_slot()->bytes_out, n);
	if (is_body) {
		hc->body_sent += n;
		return;
	}
	if (hc->out_skip >= n) {
		hc->out_skip -= n;
	} else {
		hc->body_sent += n - hc->out_skip;
		hc->out_skip = 0;
	}
}

/* The response is waiting for the socket: send_timeout counts from the
 * last write that made progress (or from the first time it blocked). */
static void http_send_progress(struct http_conn *hc, bool progress)
{
	if (hc->state != HTTP_SEND || (hc->send_waiting && !progress))
		return;
	hc->send_waiting = true;
	http_timer_set(hc, http_cfg->http.send_timeout_ms);
}

/* Write what is queued. 1 = everything written, 0 = the socket is full (or
 * this wake-up's share is used), -1 = the connection is gone. */
static int http_conn_write(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	uint64_t progress = 0;
	while (conn_buf_len(&hc->out) || hc->dyn_off < hc->dyn_len) {
		struct iovec iov[2];
		int n_iov = 0;
		if (conn_buf_len(&hc->out)) {
			iov[n_iov].iov_base = hc->out.data + hc->out.start;
			iov[n_iov++].iov_len = conn_buf_len(&hc->out);
		}
		if (hc->dyn_off < hc->dyn_len) {
			iov[n_iov].iov_base = hc->dyn + hc->dyn_off;
			iov[n_iov++].iov_len = hc->dyn_len - hc->dyn_off;
		}
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
		/* MSG_MORE: let the header block share packets with the file. */
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | (hc->file_left ? MSG_MORE : 0));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				goto blocked;
			conn_close(c);
			return -1;
		}
		size_t left = (size_t)w;
		size_t from_out = left < conn_buf_len(&hc->out) ? left : conn_buf_len(&hc->out);
		if (from_out) {
			conn_buf_consume(&hc->out, from_out);
			http_count_out(hc, from_out, false);
			left -= from_out;
		}
		if (left) {
			hc->dyn_off += left;
			http_count_out(hc, left, true);
		}
		progress += (uint64_t)w;
	}
	if (hc->dyn && hc->dyn_off >= hc->dyn_len) {
		free(hc->dyn);
		hc->dyn = NULL;
		hc->dyn_len = hc->dyn_off = 0;
	}
	if (hc->state == HTTP_SEND) {
		uint64_t sent_now = 0;
		while (hc->file_left) {
			if (sent_now >= HTTP_SENDFILE_CHUNK) {
				/* Yield; LOOP_WRITE brings us back next iteration. */
				hc->want_write = true;
				http_send_progress(hc, true);
				return 0;
			}
			size_t chunk = HTTP_SENDFILE_CHUNK - sent_now;
			if (chunk > hc->file_left)
				chunk = hc->file_left;
			ssize_t w = sendfile(c->fd, hc->file_fd, &hc->file_off, chunk);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					goto blocked;
				conn_close(c);
				return -1;
			}
			if (w == 0) {
				/* The file shrank: Content-Length cannot be kept. */
				log_warning("http: file shrank while being sent, closing connection");
				conn_close(c);
				return -1;
			}
			hc->file_left -= (uint64_t)w;
			sent_now += (uint64_t)w;
			progress += (uint64_t)w;
			http_count_out(hc, (size_t)w, true);
		}
		if (hc->file_fd >= 0) {
			close(hc->file_fd);
			hc->file_fd = -1;
		}
	}
	hc->want_write = false;
	return 1;

blocked:
	hc->want_write = true;
	http_send_progress(hc, progress > 0);
	return 0;
}

/* Register the events the state needs. A connection that wants nothing at
 * all would be stuck (and an error or hang-up would spin): close it. */
static int http_update_mask(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	unsigned m = 0;
	if (!hc->peer_eof && conn_buf_room(&hc->in) > 0)
		m |= LOOP_READ;
	if (hc->want_write)
		m |= LOOP_WRITE;
	if (m == 0) {
		conn_close(c);
		return -1;
	}
	if (m != hc->mask) {
		int r = loop_mod_fd(c->loop, c->fd, m);
		if (r < 0) {
			log_errno(LOG_ERR, r, "http: loop_mod_fd");
			conn_close(c);
			return -1;
		}
		hc->mask = m;
	}
	return 0;
}

/* The current response has been written completely. */
static int http_response_done(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	hc->responding = false;
	http_log_write(hc);
	hc->responses++;
	http_env->request_done(http_env);
	if (hc->close_after) {
		/* Lingering only where a reset could hurt: the client asked for
		 * the close, sent no body (some HTTP/1.0 clients add a CRLF after
		 * one) and nothing more, so it is not writing. Otherwise (our
		 * close, or bytes unread) FIN first, then discard. */
		if (!hc->req.keep_alive && hc->close_requested && conn_buf_len(&hc->in) == 0 &&
		    hc->req.body == HTTP_BODY_NONE)
			conn_close(c);
		else
			conn_close_lingering(c, http_cfg->server.lingering_timeout_ms);
		return -1;
	}
	hc->state = HTTP_IDLE;
	http_parser_init(&hc->parser);
	hc->deadline = 0; /* IDLE sets its own */
	return 0;
}

/* Move unparsed bytes to the front when that makes room (never while a
 * parsed head is held: BODY keeps it at offset 0 anyway). */
static void http_in_make_room(struct http_conn *hc)
{
	if (conn_buf_len(&hc->in) == 0)
		hc->in.start = hc->in.end = 0;
	else if (hc->state != HTTP_BODY && hc->in.start > 0 && hc->in.cap - hc->in.end < hc->in.cap / 4)
		conn_buf_compact(&hc->in);
}

/* Read once. 1 = got bytes, 0 = nothing now, -1 = connection gone. */
static int http_conn_read(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	if (hc->peer_eof)
		return 0;
	http_in_make_room(hc);
	size_t room = hc->in.cap - hc->in.end;
	if (room == 0)
		return 0;
	ssize_t n;
	do
		n = read(c->fd, hc->in.data + hc->in.end, room);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		hc->in.end += (size_t)n;
		hc->rx_total += (uint64_t)n;
		sb_add(&http_slot()->bytes_in, (uint64_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n == 0) {
		/* The client finished sending: requests already received are
		 * still answered (a half-close is not an abort). */
		hc->peer_eof = true;
		if (hc->state == HTTP_SEND)
			return 0;
		if (hc->state == HTTP_IDLE && conn_buf_len(&hc->in) == 0) {
			conn_close(c);
			return -1;
		}
		return 1;
	}
	conn_close(c); /* ECONNRESET and friends */
	return -1;
}

/* Queue "100 Continue" (RFC 9110 §10.1.1): only for HTTP/1.1 clients. */
static void http_send_continue(struct http_conn *hc)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (hc->req.version_minor == 0)
		return;
	if (conn_buf_room(&hc->out) < sizeof(cont) - 1)
		return;
	conn_buf_compact(&hc->out);
	memcpy(hc->out.data + hc->out.end, cont, sizeof(cont) - 1);
	hc->out.end += sizeof(cont) - 1;
	hc->out_skip = conn_buf_len(&hc->out);
}

/* Feed buffered bytes after the head to the body reader, removing them
 * from the buffer. 1 = body complete, 0 = need more, <0 = -status. */
static int http_body_feed(struct http_conn *hc)
{
	size_t head = hc->req.head_len;
	char *p = hc->in.data + hc->in.start + head;
	size_t avail = conn_buf_len(&hc->in) - head;
	size_t used = 0;
	int r = http_body_consume(&hc->body, p, avail, &used);
	if (used > avail)
		used = avail;
	if (used) {
		memmove(p, p + used, avail - used);
		hc->in.end -= used;
	}
	return r;
}

/* What a step of the state machine asks of its driver. */
enum http_step {
	HTTP_STEP_GONE = -1, /* the connection was closed: touch nothing */
	HTTP_STEP_WAIT = 0,  /* wait for an event */
	HTTP_STEP_AGAIN = 1, /* the state changed: run the next step */
};

/* The whole request (head and body) is in: answer it. */
static void http_request_complete(struct http_conn *hc)
{
	http_handle_request(hc);
	/* The body bytes were already removed behind the head. */
	conn_buf_consume(&hc->in, hc->req.head_len);
}

/* After feeding body bytes. */
static enum http_step http_body_result(struct http_conn *hc, int r)
{
	if (r > 0) {
		http_request_complete(hc);
		return HTTP_STEP_AGAIN;
	}
	if (r < 0) {
		/* Malformed chunking or too large (RFC 9112 §7.1): the stream
		 * cannot be resynchronised. */
		http_respond_error(hc, -r, true, true);
		return HTTP_STEP_AGAIN;
	}
	if (hc->peer_eof) {
		conn_close(&hc->base);
		return HTTP_STEP_GONE;
	}
	return HTTP_STEP_WAIT;
}

/* The head just parsed as complete: read the body if any, else answer. */
static enum http_step http_head_complete(struct http_conn *hc)
{
	hc->head_only = hc->req.method == HTTP_METHOD_HEAD;
	if (hc->req.body == HTTP_BODY_NONE) {
		http_request_complete(hc);
		return HTTP_STEP_AGAIN;
	}
	/* Keep the head at offset 0 while the body is read, so the request's
	 * slices stay valid and the buffer's room is all after it: move it and
	 * parse again (cheap, and only for requests with bodies). */
	if (hc->in.start > 0) {
		conn_buf_compact(&hc->in);
		http_parser_init(&hc->parser);
		int r = http_parse_request(&hc->parser, hc->in.data, conn_buf_len(&hc->in), &http_lim,
					   &hc->req);
		if (r <= 0) {
			http_respond_error(hc, r < 0 ? -r : 400, false, true);
			return HTTP_STEP_AGAIN;
		}
	}
	http_body_init(&hc->body, &hc->req, http_cfg->http.max_body_size);
	hc->state = HTTP_BODY;
	http_timer_set(hc, http_cfg->http.header_timeout_ms);
	int r = http_body_feed(hc);
	if (r == 0 && hc->req.expect_continue && !hc->peer_eof) {
		http_send_continue(hc);
		if (http_conn_write(hc) < 0)
			return HTTP_STEP_GONE;
	}
	return http_body_result(hc, r);
}

/* IDLE or HEAD: parse what is buffered. */
static enum http_step http_step_head(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	size_t len = conn_buf_len(&hc->in);
	if (len == 0) {
		if (hc->peer_eof) {
			conn_close(c);
			return HTTP_STEP_GONE;
		}
		if (proto_env_draining(http_env) && hc->responses > 0) {
			/* A request that already reached the socket is still
			 * answered; otherwise this is an idle keep-alive: close
			 * without resetting a racing request (RFC 9112 §9.6). */
			int r = http_conn_read(hc);
			if (r < 0)
				return HTTP_STEP_GONE;
			if (r > 0)
				return HTTP_STEP_AGAIN;
			if (!hc->drain_grace) {
				/* A busy keep-alive client sends its next request a
				 * moment after reading a response; closing now would
				 * make it retry. Give it a short grace to send one
				 * more, answered with Connection: close; the timeout
				 * then closes the connection lingering. */
				hc->drain_grace = true;
				hc->state = HTTP_IDLE;
				http_timer_set(hc, HTTP_DRAIN_IDLE_GRACE_MS);
				return HTTP_STEP_WAIT;
			}
			return HTTP_STEP_WAIT;
		}
		if (hc->state != HTTP_IDLE || hc->deadline == 0) {
			hc->state = HTTP_IDLE;
			http_timer_set(hc, hc->responses ? http_cfg->http.keepalive_timeout_ms
							 : http_cfg->http.header_timeout_ms);
		}
		return HTTP_STEP_WAIT;
	}
	int r = http_parse_request(&hc->parser, hc->in.data + hc->in.start, len, &http_lim, &hc->req);
	if (r > 0)
		return http_head_complete(hc);
	if (r < 0) {
		http_respond_error(hc, -r, false, true);
		return HTTP_STEP_AGAIN;
	}
	if (hc->peer_eof) {
		conn_close(c); /* a partial request, and nothing more will come */
		return HTTP_STEP_GONE;
	}
	if (len >= http_in_cap) {
		/* Only a parser that ignored max_header_size gets here. */
		http_respond_error(hc, 431, false, true);
		return HTTP_STEP_AGAIN;
	}
	if (hc->state == HTTP_IDLE) {
		/* First byte of a request: the header timeout runs from here
		 * and is never extended (slowloris). */
		hc->state = HTTP_HEAD;
		http_timer_set(hc, http_cfg->http.header_timeout_ms);
	}
	return HTTP_STEP_WAIT;
}

/* SEND: write; when done, go on to the next request or close. */
static enum http_step http_step_send(struct http_conn *hc)
{
	int r = http_conn_write(hc);
	if (r < 0)
		return HTTP_STEP_GONE;
	if (r == 0)
		return HTTP_STEP_WAIT;
	if (http_response_done(hc) < 0)
		return HTTP_STEP_GONE;
	return HTTP_STEP_AGAIN;
}

/* Drive the state machine as far as the buffered bytes allow; -1 if the
 * connection is gone. */
static int http_conn_process(struct http_conn *hc)
{
	for (;;) {
		enum http_step step;
		switch (hc->state) {
		case HTTP_IDLE:
		case HTTP_HEAD:
			step = http_step_head(hc);
			break;
		case HTTP_BODY:
			step = http_body_result(hc, http_body_feed(hc));
			break;
		case HTTP_SEND:
		default:
			step = http_step_send(hc);
			break;
		}
		if (step == HTTP_STEP_GONE)
			return -1;
		if (step == HTTP_STEP_WAIT)
			return 0;
	}
}

static void http_conn_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct http_conn *hc = arg;
	(void)loop;
	(void)fd;
	if (events & LOOP_WRITE) {
		if (hc->state == HTTP_SEND) {
			if (http_conn_process(hc) < 0)
				return;
		} else if (conn_buf_len(&hc->out)) {
			/* 100 Continue while the body is read. */
			if (http_conn_write(hc) < 0)
				return;
		} else {
			hc->want_write = false;
		}
	}
	if (events & LOOP_READ) {
		int r = http_conn_read(hc);
		if (r < 0)
			return;
		if (r > 0) {
			if (hc->state == HTTP_BODY)
				http_timer_set(hc, http_cfg->http.header_timeout_ms);
			if (hc->state != HTTP_SEND && http_conn_process(hc) < 0)
				return;
		}
	}
	http_update_mask(hc);
}

static void http_conn_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct http_conn *hc = arg;
	struct conn *c = &hc->base;
	(void)t;
	if (loop_now_ms(loop) < hc->deadline) {
		loop_timer_arm_at(loop, &c->timer, hc->deadline);
		return;
	}
	switch (hc->state) {
	case HTTP_IDLE:
		/* No byte of a request: nothing to answer (keepalive or header
		 * timeout). After a response, a request may race with our close:
		 * close lingering so it sees a clean EOF, not a reset (RFC 9112 §9.6). */
		if (hc->responses > 0)
			conn_close_lingering(c, http_cfg->server.lingering_timeout_ms);
		else
			conn_close(c);
		return;
	case HTTP_HEAD:
	case HTTP_BODY:
		/* RFC 9110 §15.5.9; the request stream is abandoned. */
		http_respond_error(hc, 408, hc->state == HTTP_BODY, true);
		if (http_conn_process(hc) < 0)
			return;
		http_update_mask(hc);
		return;
	case HTTP_SEND:
		if (!hc->send_waiting) {
			/* A stale deadline of the previous state. */
			loop_timer_cancel(loop, &c->timer);
			return;
		}
		/* send_timeout: the client stopped reading. */
		log_debug("http: send timeout, closing connection");
		conn_close(c);
		return;
	}
}

/* ------------------------------------------------------------ conn ops */

static void http_conn_drain(struct conn *c)
{
	struct http_conn *hc = (struct http_conn *)c;
	if (c->lingering)
		return;
	/* Take in what has already arrived and remember how much: every request
	 * in it is answered (pipelined ones too), the last with Connection:
	 * close (http_should_close). An idle keep-alive connection gets a short
	 * grace for one more request, then closes lingering, so a request
	 * racing with the close sees a clean EOF, not a reset (RFC 9112 §9.6);
	 * http_step_head() does that. A fresh connection that has not sent its
	 * first request yet is left to send it (bounded by header_timeout): the
	 * client is certainly about to, and must not see its connection
	 * dropped by a reload. Everything in flight finishes. */
	if (http_conn_read(hc) < 0)
		return;
	hc->drain_marked = true;
	hc->drain_limit = hc->rx_total;
	if (http_conn_process(hc) < 0)
		return;
	http_update_mask(hc);
}

static void http_conn_free(struct conn *c)
{
	struct http_conn *hc = (struct http_conn *)c;
	if (hc->responding)
		http_log_write(hc); /* an aborted response is still logged */
	if (hc->file_fd >= 0)
		close(hc->file_fd);
	free(hc->dyn);
	conn_buf_free(&hc->in);
	conn_buf_free(&hc->out);
	free(hc->log);
	free(hc);
}

static const struct conn_ops http_conn_ops = {
	.drain = http_conn_drain,
	.free = http_conn_free,
};

/* ------------------------------------------------------------ worker hooks */

static int http_open_log(const char *path, int *fd_out, bool *is_file)
{
	*is_file = false;
	if (!path || !*path || strcmp(path, "off") == 0) {
		*fd_out = -1;
		return 0;
	}
	if (strcmp(path, "stderr") == 0) {
		*fd_out = STDERR_FILENO;
		return 0;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return log_errno(LOG_ERR, -errno, "http: cannot open access log %s", path);
	*fd_out = fd;
	*is_file = true;
	return 0;
}

static void http_worker_done(void);

static int http_worker_init(const struct proto_env *env)
{
	http_env = env;
	http_cfg = env->cfg;
	const struct config_http *h = &http_cfg->http;
	/* sendfile() has no MSG_NOSIGNAL: a peer that vanished must be an
	 * EPIPE, not a dead worker. */
	signal(SIGPIPE, SIG_IGN);

	http_lim = (struct http_limits){
		.max_request_line = h->max_request_line,
		.max_header_line = h->max_header_line,
		.max_header_size = h->max_header_size,
		.max_headers = h->max_headers,
		.max_body_size = h->max_body_size,
	};
	http_sopts = (struct static_options){
		.index = h->index,
		.autoindex = h->autoindex,
		.follow_symlinks = h->follow_symlinks,
		.dotfiles = h->dotfiles,
	};
	size_t need = h->max_header_size;
	if (need < h->max_request_line)
		need = h->max_request_line;
	http_in_cap = need + HTTP_IN_SLACK;

	http_mime = static_mime_load(h->mime_types);
	if (!http_mime)
		return log_errno(LOG_ERR, -ENOMEM, "http: loading MIME types");

	/* A root that cannot be opened is logged and answered with 500, so the
	 * health and status endpoints keep working and the worker does not
	 * crash-loop. */
	http_root_fd = -1;
	if (h->root) {
		http_root_fd = open(h->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (http_root_fd < 0)
			log_errno(LOG_ERR, -errno, "http: cannot open root directory %s", h->root);
	}
	int r = http_open_log(h->access_log, &http_log_fd, &http_log_is_file);
	if (r < 0) {
		http_worker_done();
		return r;
	}
	return 0;
}

static void http_reopen_logs(void)
{
	if (!http_log_is_file || http_log_fd < 0)
		return;
	int fd, r;
	bool is_file;
	r = http_open_log(http_cfg->http.access_log, &fd, &is_file);
	if (r < 0)
		return; /* keep writing to the old file */
	/* Replace in place so nothing ever sees a closed log fd. */
	if (dup3(fd, http_log_fd, O_CLOEXEC) < 0)
		log_errno(LOG_ERR, -errno, "http: reopening access log");
	close(fd);
}

static void http_worker_done(void)
{
	static_mime_free(http_mime);
	http_mime = NULL;
	if (http_root_fd >= 0)
		close(http_root_fd);
	http_root_fd = -1;
	if (http_log_fd >= 0 && http_log_is_file)
		close(http_log_fd);
	http_log_fd = -1;
	http_log_is_file = false;
}

static int http_accept(const struct proto_env *env, const struct worker_listener *l, int fd,
		       const struct sockaddr *peer, socklen_t peer_len)
{
	struct http_conn *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	hc->file_fd = -1;
	int r = conn_buf_init(&hc->in, http_in_cap);
	if (r == 0)
		r = conn_buf_init(&hc->out, HTTP_OUT_CAP);
	if (r == 0 && http_log_fd >= 0) {
		hc->log = malloc(HTTP_LOG_MAX);
		if (!hc->log)
			r = -ENOMEM;
	}
	if (r < 0) {
		conn_buf_free(&hc->in);
		conn_buf_free(&hc->out);
		free(hc->log);
		free(hc);
		return r;
	}
	struct conn *c = &hc->base;
	conn_init(c, env, l, fd, peer, peer_len, &http_conn_ops);
	loop_timer_init(&c->timer, http_conn_timeout, hc);
	http_parser_init(&hc->parser);
	if (peer && (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)) {
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	hc->state = HTTP_IDLE;
	hc->mask = LOOP_READ;
	r = loop_add_fd(c->loop, fd, LOOP_READ, http_conn_io, hc);
	if (r < 0) {
		c->fd = -1; /* the caller closes fd */
		conn_close(c);
		return r;
	}
	http_timer_set(hc, http_cfg->http.header_timeout_ms);
	return 0;
}

static unsigned http_max_connections(const struct config *cfg)
{
	return cfg->http.max_connections;
}

const struct proto proto_http = {
	.name = "http",
	.status_endpoint = true,
	.init = http_worker_init,
	.done = http_worker_done,
	.accept = http_accept,
	.reopen_logs = http_reopen_logs,
	.max_connections = http_max_connections,
};
