/* http response: responses as data (see response.h): reason phrases, the
 * cached Date, field lines, and body sources, multipart/byteranges
 * included. Nothing here knows a connection or a protocol version. */
#include "proto/http/response.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Date header, formatted at most once a second, and the "Date: ...\r\n
 * Server: ...\r\n" lines every HTTP/1.1 response carries, built with it. */
static time_t http_date_sec = -1;
static char http_date_buf[64];
static char http_date_lines_buf[128];
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
		int n = snprintf(http_date_lines_buf, sizeof(http_date_lines_buf),
				 "Date: %s\r\nServer: " HTTP_SERVER_NAME "\r\n", http_date_buf);
		http_date_lines_len = n > 0 && (size_t)n < sizeof(http_date_lines_buf) ? (size_t)n : 0;
	}
	if (now_out)
		*now_out = now;
	return http_date_buf;
}

const char *http_date_lines(size_t *len)
{
	http_date_now(NULL);
	*len = http_date_lines_len;
	return http_date_lines_buf;
}

/* ------------------------------------------------------------ fields */

void http_field_lines(struct http_fields *f, const char *lines, size_t len)
{
	if (f->overflow || f->cap - f->len < len) {
		f->overflow = true;
		return;
	}
	memcpy(f->buf + f->len, lines, len);
	f->len += len;
}

void http_field(struct http_fields *f, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (f->overflow || f->cap - f->len < nl + vl + 4) {
		f->overflow = true;
		return;
	}
	char *p = f->buf + f->len;
	memcpy(p, name, nl);
	memcpy(p + nl, ": ", 2);
	memcpy(p + nl + 2, value, vl);
	memcpy(p + nl + 2 + vl, "\r\n", 2);
	f->len += nl + vl + 4;
}

void http_fieldf(struct http_fields *f, const char *name, const char *fmt, ...)
{
	size_t nl = strlen(name);
	if (f->overflow || f->cap - f->len < nl + 4) {
		f->overflow = true;
		return;
	}
	char *p = f->buf + f->len;
	size_t room = f->cap - f->len - nl - 2; /* for the value, its "\r\n" and vsnprintf's NUL */
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p + nl + 2, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 > room) {
		f->overflow = true;
		return;
	}
	memcpy(p, name, nl);
	memcpy(p + nl, ": ", 2);
	memcpy(p + nl + 2 + (size_t)n, "\r\n", 2);
	f->len += nl + 2 + (size_t)n + 2;
}

void http_fields_lend(struct http_fields *f, const char *block, size_t len)
{
	f->lent = block;
	f->lent_len = len;
}

/* The field line at block[*at, len): name and value, *at moved past it. */
static bool http_fields_line(const char *block, size_t len, size_t *at, struct http_str *name,
			     struct http_str *value)
{
	const char *p = block + *at;
	const char *end = block + len;
	if (p >= end)
		return false;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	const char *line_end = eol ? eol : end;
	*at = (size_t)(line_end - block) + (eol ? 1 : 0);
	if (line_end > p && line_end[-1] == '\r')
		line_end--;
	const char *colon = memchr(p, ':', (size_t)(line_end - p));
	if (!colon)
		colon = line_end;
	*name = (struct http_str){ p, (size_t)(colon - p) };
	const char *v = colon < line_end ? colon + 1 : line_end;
	while (v < line_end && (*v == ' ' || *v == '\t'))
		v++;
	*value = (struct http_str){ v, (size_t)(line_end - v) };
	return true;
}

bool http_fields_next(const struct http_fields *f, size_t *pos, struct http_str *name, struct http_str *value)
{
	if (*pos < f->lent_len)
		return http_fields_line(f->lent, f->lent_len, pos, name, value);
	size_t at = *pos - f->lent_len;
	if (!http_fields_line(f->buf, f->len, &at, name, value))
		return false;
	*pos = f->lent_len + at;
	return true;
}

/* ------------------------------------------------------------ responses */

void http_response_init(struct http_response *r, char *buf, size_t cap)
{
	r->status = 0;
	r->how = HTTP_PERSIST;
	r->no_length = false;
	r->length_in_fields = false;
	r->fields = (struct http_fields){ .buf = buf, .cap = cap };
	r->body = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
}

void http_response_text(struct http_response *r, int status, const char *ctype, const char *body,
			size_t len)
{
	r->status = status;
	if (ctype)
		http_field(&r->fields, "Content-Type", ctype);
	http_src_mem(&r->body, body, len, NULL, NULL);
}

void http_response_error(struct http_response *r, int status)
{
	int n = snprintf(r->text, sizeof(r->text), "%d %s\n", status, http_reason(status));
	http_response_text(r, status, "text/plain; charset=utf-8", r->text,
			   n > 0 && (size_t)n < sizeof(r->text) ? (size_t)n : 0);
	if (status == 405)
		http_field(&r->fields, "Allow", "GET, HEAD, OPTIONS"); /* RFC 9110 §15.5.6 */
}

/* ------------------------------------------------------------ body sources */

void http_src_mem(struct http_body_src *s, const char *p, size_t len, void (*release)(struct http_body_src *),
		  void *owner)
{
	*s = (struct http_body_src){
		.kind = HTTP_SRC_MEM,
		.length = len,
		.mem = p,
		.mem_len = len,
		.fd = -1,
		.release = release,
		.owner = owner,
	};
}

static void http_src_free(struct http_body_src *s)
{
	free(s->owner);
}

void http_src_owned(struct http_body_src *s, char *p, size_t len)
{
	http_src_mem(s, p, len, http_src_free, p);
}

void http_src_file(struct http_body_src *s, int fd, uint64_t first, uint64_t len,
		   void (*release)(struct http_body_src *), void *owner)
{
	*s = (struct http_body_src){
		.kind = HTTP_SRC_FILE,
		.length = len,
		.fd = fd,
		.off = (off_t)first,
		.left = len,
		.release = release,
		.owner = owner,
	};
}

/* Give back the fd or memory (not the multipart state). */
static void http_src_give_back(struct http_body_src *s)
{
	if (s->release)
		s->release(s);
	else if (s->kind != HTTP_SRC_MEM && s->fd >= 0)
		close(s->fd);
	s->release = NULL;
	s->fd = -1;
	s->mem = NULL;
}

void http_src_release(struct http_body_src *s)
{
	if (s->kind == HTTP_SRC_NONE)
		return;
	http_src_give_back(s);
	free(s->parts);
	*s = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
}

/* ------------------------------------------------------------ multipart */

/* The parts of a multipart/byteranges body still to be queued. */
struct http_multipart {
	struct http_ranges ranges;
	size_t next;      /* the part whose header is queued next */
	uint64_t size;    /* of the file, for Content-Range */
	bool ended;       /* the closing delimiter is queued */
	char boundary[24];
	char ctype[160];  /* of each part */
};

/* The delimiter and header of part i (i == n: the closing delimiter),
 * into out (cap bytes, or NULL to measure); its length. */
static size_t http_multipart_head(const struct http_multipart *mp, size_t i, char *out, size_t cap)
{
	int n;
	if (i == mp->ranges.n) {
		n = snprintf(out, cap, "\r\n--%s--\r\n", mp->boundary);
	} else {
		const struct http_range *r = &mp->ranges.r[i];
		n = snprintf(out, cap,
			     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
			     "/%" PRIu64 "\r\n\r\n",
			     mp->boundary, mp->ctype, r->first, r->last, mp->size);
	}
	return n > 0 ? (size_t)n : 0;
}

/* The whole multipart body's length (Content-Length). */
static uint64_t http_multipart_length(const struct http_multipart *mp)
{
	uint64_t total = 0;
	for (size_t i = 0; i <= mp->ranges.n; i++) {
		total += http_multipart_head(mp, i, NULL, 0);
		if (i < mp->ranges.n)
			total += mp->ranges.r[i].last - mp->ranges.r[i].first + 1;
	}
	return total;
}

/* A boundary that the file's bytes are not going to contain by accident
 * (RFC 2046 §5.1.1): 64 bits that differ per response and per worker. */
static void http_multipart_boundary(char *out, size_t cap)
{
	static uint64_t state;
	if (state == 0)
		state = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ULL;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	snprintf(out, cap, "%016" PRIx64, state);
}

int http_src_parts(struct http_body_src *s, int fd, const struct http_ranges *rs, uint64_t size,
		   const char *ctype)
{
	struct http_multipart *mp = calloc(1, sizeof(*mp));
	if (!mp)
		return -ENOMEM;
	mp->ranges = *rs;
	mp->size = size;
	snprintf(mp->ctype, sizeof(mp->ctype), "%s", ctype);
	http_multipart_boundary(mp->boundary, sizeof(mp->boundary));
	*s = (struct http_body_src){
		.kind = HTTP_SRC_PARTS,
		.length = http_multipart_length(mp),
		.fd = fd,
		.parts = mp,
	};
	return 0;
}

const char *http_src_boundary(const struct http_body_src *s)
{
	return s->parts ? s->parts->boundary : "";
}

size_t http_src_next_part(struct http_body_src *s, char *out, size_t cap)
{
	struct http_multipart *mp = s->parts;
	if (s->kind != HTTP_SRC_PARTS || !mp || mp->ended)
		return 0;
	size_t n = http_multipart_head(mp, mp->next, out, cap);
	if (mp->next == mp->ranges.n) {
		mp->ended = true;
		http_src_give_back(s); /* every byte of the file is sent */
		return n;
	}
	const struct http_range *r = &mp->ranges.r[mp->next++];
	s->off = (off_t)r->first;
	s->left = r->last - r->first + 1;
	return n;
}
