/* http access_log: the combined log format (or extended: combined, then
 * the request time and the TLS version), one write(2) per line to an
 * O_APPEND file so that lines stay whole among all workers. The line is
 * prepared when a response starts (the request line is still in the input
 * buffer then) and written with the body size when it ends. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proto/http/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "proto/http/metrics.h"

static int http_log_fd = -1;
static bool http_log_is_file;
/* Lines not written since the last report, the error of the last one, and
 * when the last report was logged (loop_clock_ms). */
static uint64_t http_log_dropped;
static int http_log_drop_err;
static uint64_t http_log_report_ms;
static bool http_log_reported;
/* Access-log timestamp, formatted at most once a second. */
static time_t http_logtime_sec = -1;
static char http_logtime_buf[64];

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

static size_t http_log_tail(char *L, size_t pos, struct http_str ref, struct http_str ua);

/* The line's start: "PEER - - [TIME] \"". */
static size_t http_log_head(char *L, const struct conn *c)
{
	size_t pos = 0;
	char peer[128];
	conn_peer_str(c, peer, sizeof(peer));
	http_log_lit(L, 200, &pos, peer);
	http_log_lit(L, 260, &pos, " - - [");
	http_log_lit(L, 320, &pos, http_logtime_now());
	http_log_lit(L, 330, &pos, "] \"");
	return pos;
}

/* Each field is bounded so the line always fits in HTTP_LOG_MAX. */
void http_log_prepare(struct http_conn *hc, const struct http_request *req)
{
	if (!hc->log)
		return;
	char *L = hc->log;
	size_t pos = http_log_head(L, &hc->base);
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
	if (req) {
		ref = req->referer;
		ua = req->user_agent;
	}
	hc->log_len = http_log_tail(L, pos, ref, ua);
}

/* The line's end from pos: " \"referer\" \"user-agent\"\n"; its length. */
static size_t http_log_tail(char *L, size_t pos, struct http_str ref, struct http_str ua)
{
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
	return pos;
}

/* Say how many lines were dropped, at most once a second. */
static void http_log_report(void)
{
	uint64_t now = loop_clock_ms();
	if (http_log_reported && now - http_log_report_ms < 1000)
		return;
	http_log_reported = true;
	http_log_report_ms = now;
	log_warning("access log: %" PRIu64 " lines dropped: %s", http_log_dropped,
		    strerror(http_log_drop_err));
	http_log_dropped = 0;
}

/* A write put only n bytes of a line at the end of the file: cut them off
 * again, so the file holds whole lines only and the next line does not
 * glue onto a torn one. Only if nobody appended after them (the file ends
 * where our write ended); on a full file system nobody else can. */
static void http_log_untear(size_t n)
{
	off_t end = lseek(http_log_fd, 0, SEEK_CUR); /* O_APPEND: just after our bytes */
	struct stat st;
	if (end < (off_t)n || fstat(http_log_fd, &st) < 0 || st.st_size != end)
		return;
	if (ftruncate(http_log_fd, end - (off_t)n) < 0)
		log_errno(LOG_WARNING, -errno, "access log: removing a partial line");
}

/* One whole line, or none: a full disk must not stop serving, tear a line,
 * or flood the log. A line that does not fit is dropped and counted. */
static void http_log_emit(const char *line, size_t len)
{
	if (http_log_fd == STDERR_FILENO) {
		/* Shared with the diagnostics: whole lines, never blocking,
		 * dropped lines counted and reported by core/log. */
		log_write_line(line, len);
		return;
	}
	ssize_t w;
	do
		w = write(http_log_fd, line, len);
	while (w < 0 && errno == EINTR);
	if (w == (ssize_t)len) {
		if (http_log_dropped)
			http_log_report(); /* space came back: say what was lost */
		return;
	}
	int err = errno;
	if (w >= 0) {
		/* Short: the file system had room for only part of it. A
		 * second write for the rest could land behind another worker's
		 * line, so the part is taken back and the line dropped. */
		err = ENOSPC;
		if (http_log_is_file)
			http_log_untear((size_t)w);
	}
	http_log_dropped++;
	http_log_drop_err = err;
	http_log_report();
}

/* access_log_format = extended: the combined line (ending in '\n', at
 * line[pos - 1]) gets " TIME TLS" before its end: the seconds from the
 * request's first bytes to now, when its last byte was handed to the
 * transport, with milliseconds ("0.004", as nginx's $request_time), and
 * the TLS version of the connection or "-". The combined line is at most
 * about 4030 bytes (fields bounded in http_log_prepare, the size), so the
 * 50 bytes at most added here always fit in HTTP_LOG_MAX. */
static size_t http_log_extend(const struct conn *c, uint64_t start_ms, char *line, size_t pos)
{
	uint64_t now = loop_clock_ms();
	uint64_t ms = start_ms && now > start_ms ? now - start_ms : 0;
	const char *tls = conn_security(c);
	char tail[64];
	int n = snprintf(tail, sizeof(tail), " %" PRIu64 ".%03u %.24s\n", ms / 1000, (unsigned)(ms % 1000),
			 tls ? tls : "-");
	/* Only if it fits: the line keeps its own newline otherwise. */
	if (n > 0 && (size_t)n < sizeof(tail) && pos - 1 + (size_t)n <= HTTP_LOG_MAX) {
		memcpy(line + pos - 1, tail, (size_t)n);
		return pos - 1 + (size_t)n;
	}
	return pos;
}

/* Write the prepared line with the body size: one write() per line, which
 * O_APPEND keeps whole among all workers. */
void http_log_write(struct http_conn *hc)
{
	/* Metrics: every HTTP/1.1 response is counted here, once, logged or not. */
	http_metrics_response(hc);
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
	if (http_w.http && http_w.http->access_log_format == HTTP_LOG_EXTENDED)
		pos = http_log_extend(&hc->base, hc->req_start_ms, line, pos);
	http_log_emit(line, pos);
	hc->log_len = 0;
	hc->req_start_ms = 0;
}

void http_log_stream(const struct conn *c, const struct http_request *req, int status, uint64_t body_sent,
		     uint64_t start_ms)
{
	if (http_log_fd < 0)
		return;
	char line[HTTP_LOG_MAX];
	size_t pos = http_log_head(line, c);
	struct http_str ref = { NULL, 0 }, ua = { NULL, 0 };
	if (req && req->method_str.len) {
		http_log_escape(line, 1000, &pos, req->method_str.p, req->method_str.len);
		http_log_lit(line, 1010, &pos, " ");
		http_log_escape(line, 2290, &pos, req->target.p, req->target.len);
		http_log_lit(line, 2300, &pos, " HTTP/2.0");
		ref = req->referer;
		ua = req->user_agent;
	} else {
		http_log_lit(line, 2300, &pos, "-");
	}
	char st[48];
	if (body_sent)
		snprintf(st, sizeof(st), "\" %d %" PRIu64, status, body_sent);
	else
		snprintf(st, sizeof(st), "\" %d -", status);
	http_log_lit(line, 2330, &pos, st);
	pos = http_log_tail(line, pos, ref, ua);
	if (http_w.http && http_w.http->access_log_format == HTTP_LOG_EXTENDED)
		pos = http_log_extend(c, start_ms, line, pos);
	http_log_emit(line, pos);
}

bool http_log_enabled(void)
{
	return http_log_fd >= 0;
}

int http_log_open(const char *path, int fd)
{
	http_log_fd = -1;
	http_log_is_file = false;
	if (!path || !*path || strcmp(path, "off") == 0)
		return 0;
	if (strcmp(path, "stderr") == 0) {
		http_log_fd = STDERR_FILENO;
		return 0;
	}
	/* A file: the supervisor opened it before we dropped privileges, and
	 * puts a new one under the same fd on reopen-logs. */
	if (fd < 0)
		return log_errno(LOG_ERR, -EBADF, "http: the access log %s was not handed over", path);
	struct stat st;
	http_log_fd = fd;
	http_log_is_file = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	return 0;
}

void http_log_close(void)
{
	/* The fd is the worker's (it came with the fork): not closed here. */
	http_log_fd = -1;
	http_log_is_file = false;
}
