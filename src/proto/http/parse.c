/* http_parse: strict HTTP/1.x request heads (RFC 9110, RFC 9112); the body
 * reader that follows a head is body.c.
 *
 * A head is handled in two passes. The first (http_parse_scan) runs over each
 * byte once, across calls, and looks only at line structure: it finds the
 * empty line that ends the head and enforces every limit and the CRLF rules
 * byte by byte, so a slow or hostile client is stopped as soon as the bytes
 * it sent prove the request bad. The second (http_parse_head) runs once over
 * the complete, bounded head and checks everything else. Each check depends
 * only on bytes already seen, in order, so how the bytes were split across
 * calls never changes the answer.
 *
 * Pass two's checks answer 0, or the status to refuse the request with
 * (400, 413, 417, 431, 505); the public entry points turn that into
 * -EBADMSG with the status in the parser or body reader.
 *
 * Nothing here allocates; results point into the caller's buffer. */
#include "proto/http/parse.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/http/parse_chars.h"

/* The character classes of parse_chars.h. */
const unsigned char http_parse_class[256] = {
	/* 0x00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 0x10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 0x20 */ 0x24, 0x37, 0x06, 0x25, 0x37, 0x37, 0x37, 0x37, 0x36, 0x36, 0x37, 0x77, 0x36, 0x77, 0x77, 0x26,
	/* 0x30 */ 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x36, 0x36, 0x26, 0x36, 0x26, 0x26,
	/* 0x40 */ 0x26, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
	/* 0x50 */ 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x36, 0x06, 0x36, 0x27, 0x37,
	/* 0x60 */ 0x27, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
	/* 0x70 */ 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x26, 0x27, 0x26, 0x37, 0x00,
	/* 0x80 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0x90 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xa0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xb0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xc0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xd0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xe0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
	/* 0xf0 */ 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
};

/* RFC 9112 §2.2 asks a server to ignore at least one empty line before the
 * request-line (old clients add CRLF after a POST body); a few more are
 * tolerated, an endless stream of them is not. */
#define HTTP_PARSE_MAX_EMPTY_LINES 4



static inline bool http_parse_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

bool http_str_eq_ci(struct http_str s, const char *lit)
{
	size_t n = strlen(lit);
	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (http_parse_lower((unsigned char)s.p[i]) != http_parse_lower((unsigned char)lit[i]))
			return false;
	return true;
}

/* The 0x20 bit of every byte of w that is a lowercase ASCII letter (each
 * byte of w is ASCII, so no sum carries into the next byte). */
static inline uint64_t http_parse_lower_bits(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL;
	uint64_t ge_a = w + (0x80 - 'a') * ones;    /* high bit: byte >= 'a' */
	uint64_t gt_z = w + (0x80 - 'z' - 1) * ones; /* high bit: byte > 'z' */
	return ((ge_a & ~gt_z) & 0x8080808080808080ULL) >> 2;
}

/* Whether s[0, n) is lit[0, n), a lowercase ASCII literal of n >= 4 bytes,
 * ignoring the case of letters only: each letter of lit matches itself or
 * its capital, any other byte only itself. Two overlapping loads of 4, or
 * loads of 8 and an overlapping last 8: a few instructions per name, where
 * inlining with a literal folds the masks into constants. */
static inline bool http_parse_name_is(const char *s, const char *lit, size_t n)
{
	if (n < 8) {
		uint32_t a, b, x, y;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(&x, lit, 4);
		memcpy(&y, lit + n - 4, 4);
		return (((a | (uint32_t)http_parse_lower_bits(x)) ^ x) |
			((b | (uint32_t)http_parse_lower_bits(y)) ^ y)) == 0;
	}
	for (size_t i = 0;; i += 8) {
		size_t at = i + 8 <= n ? i : n - 8;
		uint64_t a, x;
		memcpy(&a, s + at, 8);
		memcpy(&x, lit + at, 8);
		if ((a | http_parse_lower_bits(x)) != x)
			return false;
		if (at + 8 == n)
			return true;
	}
}

/* A header name (whose length the caller already matched) against lit. */
#define HTTP_NAME_IS(name, lit) http_parse_name_is((name).p, lit, sizeof(lit) - 1)
/* A slice of any length against lit, as http_str_eq_ci. */
#define HTTP_STR_IS(str, lit) ((str).len == sizeof(lit) - 1 && HTTP_NAME_IS(str, lit))

static const char *const http_parse_method_names[] = {
	[HTTP_METHOD_OTHER] = "OTHER",
	[HTTP_METHOD_GET] = "GET",
	[HTTP_METHOD_HEAD] = "HEAD",
	[HTTP_METHOD_POST] = "POST",
	[HTTP_METHOD_PUT] = "PUT",
	[HTTP_METHOD_DELETE] = "DELETE",
	[HTTP_METHOD_OPTIONS] = "OPTIONS",
	[HTTP_METHOD_TRACE] = "TRACE",
	[HTTP_METHOD_CONNECT] = "CONNECT",
	[HTTP_METHOD_PATCH] = "PATCH",
};

const char *http_method_name(enum http_method m)
{
	/* OTHER has no fixed name: the request's own spelling is method_str. */
	if ((unsigned)m >= sizeof http_parse_method_names / sizeof http_parse_method_names[0])
		return "OTHER";
	return http_parse_method_names[m];
}

/* Methods are case-sensitive (RFC 9110 §9.1): "get" is some other token. */
static enum http_method http_parse_method(const char *s, size_t n)
{
	/* Constant-size compares: the compiler turns each into a load or two. */
#define HTTP_METHOD_IF(lit, m) if (memcmp(s, lit, sizeof(lit) - 1) == 0) return m
	switch (n) {
	case 3:
		HTTP_METHOD_IF("GET", HTTP_METHOD_GET);
		HTTP_METHOD_IF("PUT", HTTP_METHOD_PUT);
		break;
	case 4:
		HTTP_METHOD_IF("HEAD", HTTP_METHOD_HEAD);
		HTTP_METHOD_IF("POST", HTTP_METHOD_POST);
		break;
	case 5:
		HTTP_METHOD_IF("TRACE", HTTP_METHOD_TRACE);
		HTTP_METHOD_IF("PATCH", HTTP_METHOD_PATCH);
		break;
	case 6:
		HTTP_METHOD_IF("DELETE", HTTP_METHOD_DELETE);
		break;
	case 7:
		HTTP_METHOD_IF("OPTIONS", HTTP_METHOD_OPTIONS);
		HTTP_METHOD_IF("CONNECT", HTTP_METHOD_CONNECT);
		break;
	default:
		break;
	}
#undef HTTP_METHOD_IF
	return HTTP_METHOD_OTHER;
}

void http_parser_init(struct http_parser *p)
{
	memset(p, 0, sizeof(*p));
}

/* Refuse the request being parsed: the status goes in p, the return value
 * is the errno every refusal shares. */
static int http_parse_refuse(struct http_parser *p, int status)
{
	p->status = status;
	return -EBADMSG;
}

/* Pass one: find the end of the head in buf[p->scanned, len), enforcing, at
 * the byte that breaks them: CRLF-only line endings (RFC 9112 §2.2: no bare
 * CR, and we choose not to accept a bare LF), the request-line limit (414),
 * the header-line, header-count and head-size limits (431). Line lengths
 * exclude the CRLF; the head size includes every byte of the head.
 * Returns head_len, 0 for more, or -EBADMSG with p->status set. */
static int http_parse_scan(struct http_parser *p, const char *buf, size_t len,
			   const struct http_limits *lim)
{
	size_t max_size = lim->max_header_size < (size_t)INT_MAX ? lim->max_header_size : (size_t)INT_MAX;
	unsigned max_headers = lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers : HTTP_MAX_HEADERS;
	size_t ls = p->line_start;
	size_t line_max = p->lines == 0 ? lim->max_request_line : lim->max_header_line;
	size_t i;

	for (i = p->scanned; i < len; i++) {
		bool after_cr = i > ls && buf[i - 1] == '\r';

		if (!after_cr) {
			/* Fast path: jump over the ordinary bytes of this line, up
			 * to where a limit could trip, with memchr. A CR before
			 * the last of them is followed by a byte that is not LF. */
			size_t stop = len < max_size ? len : max_size;
			if (line_max < stop - ls)
				stop = ls + line_max;
			if (stop < i) /* limits changed between calls */
				stop = i;
			const char *lf = memchr(buf + i, '\n', stop - i);
			size_t end = lf ? (size_t)(lf - buf) : stop;
			const char *cr = memchr(buf + i, '\r', end - i);
			if (cr != NULL) {
				if ((size_t)(cr - buf) + 1 < end)
					return http_parse_refuse(p, 400); /* bare CR */
				i = end - 1; /* the CR itself trips nothing */
				continue;
			}
			i = end;
			if (i == len)
				break;
		}

		unsigned char c = (unsigned char)buf[i];
		if (i >= max_size)
			return http_parse_refuse(p, 431);
		if (c == '\n') {
			if (!after_cr)
				return http_parse_refuse(p, 400); /* bare LF */
			if (i - 1 == ls) { /* an empty line */
				if (p->lines > 0)
					return (int)(i + 1);
				if (++p->empty_lines > HTTP_PARSE_MAX_EMPTY_LINES)
					return http_parse_refuse(p, 400);
			} else {
				/* Line p->lines ends; lines 1.. are header fields. */
				if (p->lines > 0 && p->lines > max_headers)
					return http_parse_refuse(p, 431);
				p->lines++;
				line_max = lim->max_header_line;
			}
			ls = i + 1;
			p->line_start = ls;
			continue;
		}
		if (after_cr)
			return http_parse_refuse(p, 400); /* bare CR */
		if (c != '\r' && i - ls + 1 > line_max)
			return http_parse_refuse(p, p->lines == 0 ? 414 : 431);
	}
	p->scanned = i;
	return 0;
}

/* Parse state of pass two that is not part of the request. */
struct http_parse_seen {
	unsigned hosts;
	bool cl;
	bool te;
	bool conn_close;
	bool conn_keep_alive;
	bool expect_other;
	bool expect_continue;
	struct http_str target_host; /* authority of an absolute-form target */
};

/* Absolute-form (RFC 9112 §3.2.2): only http and https, a non-empty
 * authority without userinfo (RFC 9110 §4.2.1, §4.2.4); path and query are
 * taken from it and the authority replaces Host. */
static int http_parse_absolute(struct http_request *req, struct http_parse_seen *seen)
{
	const char *t = req->target.p;
	size_t n = req->target.len;
	size_t i = 0;

	if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
		return 400;
	while (i < n && http_parse_is((unsigned char)t[i], HTTP_PARSE_SCHEME))
		i++;
	struct http_str scheme = { t, i };
	if (!HTTP_STR_IS(scheme, "http") && !HTTP_STR_IS(scheme, "https"))
		return 400;
	if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
		return 400;
	i += 3;
	size_t a = i;
	while (i < n && t[i] != '/' && t[i] != '?') {
		if (!http_parse_is((unsigned char)t[i], HTTP_PARSE_HOST))
			return 400;
		i++;
	}
	if (i == a)
		return 400;
	seen->target_host = (struct http_str){ t + a, i - a };
	if (i == n || t[i] == '?') {
		/* An empty path means "/" (RFC 9110 §4.2.3): point at the last
		 * '/' of "://", so that the path stays in the caller's buffer. */
		req->path = (struct http_str){ t + a - 1, 1 };
	} else {
		size_t s = i;
		while (i < n && t[i] != '?')
			i++;
		req->path = (struct http_str){ t + s, i - s };
	}
	if (i < n)
		req->query = (struct http_str){ t + i + 1, n - i - 1 };
	return 0;
}

/* Authority-form (RFC 9112 §3.2.3): uri-host ":" port, CONNECT only. */
static int http_parse_authority(const struct http_request *req)
{
	const char *t = req->target.p;
	size_t n = req->target.len;
	size_t colon = n;

	for (size_t i = 0; i < n; i++) {
		if (!http_parse_is((unsigned char)t[i], HTTP_PARSE_HOST))
			return 400;
		if (t[i] == ':')
			colon = i;
	}
	if (colon == 0 || colon >= n - 1)
		return 400;
	for (size_t i = colon + 1; i < n; i++)
		if (t[i] < '0' || t[i] > '9')
			return 400;
	return 0;
}

/* The request-target forms of RFC 9112 §3.2, each with the method it
 * belongs to. Bytes were already limited to VCHAR without '#'. */
static int http_parse_target(struct http_request *req, struct http_parse_seen *seen)
{
	const char *t = req->target.p;
	size_t n = req->target.len;

	if (req->method == HTTP_METHOD_CONNECT)
		return http_parse_authority(req);
	if (t[0] == '/') {
		const char *q = memchr(t, '?', n);
		if (q) {
			req->path = (struct http_str){ t, (size_t)(q - t) };
			req->query = (struct http_str){ q + 1, n - (size_t)(q - t) - 1 };
		} else {
			req->path = req->target;
		}
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (req->method != HTTP_METHOD_OPTIONS)
			return 400;
		req->path = req->target;
		return 0;
	}
	return http_parse_absolute(req, seen);
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3),
 * exactly one SP each: anything looser is how request smuggling starts. */
static int http_parse_request_line(const char *s, size_t n, struct http_request *req,
				   struct http_parse_seen *seen)
{
	size_t i = 0;

	while (i < n && http_parse_is((unsigned char)s[i], HTTP_PARSE_TCHAR))
		i++;
	if (i == 0 || i == n || s[i] != ' ')
		return 400;
	req->method_str = (struct http_str){ s, i };
	req->method = http_parse_method(s, i);

	size_t t = ++i;
	/* No CTL, SP, '#' (a fragment is never sent, RFC 9112 §3.2) or
	 * non-ASCII byte in a target. */
	while (i < n && http_parse_is((unsigned char)s[i], HTTP_PARSE_TARGET))
		i++;
	if (i == t || i == n || s[i] != ' ')
		return 400;
	req->target = (struct http_str){ s + t, i - t };
	i++;

	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
	 * A well-formed version other than 1.0/1.1 is 505 (RFC 9110 §15.6.6). */
	const char *v = s + i;
	if (n - i == 8 && memcmp(v, "HTTP/1.1", 8) == 0) {
		req->version_minor = 1;
		return http_parse_target(req, seen);
	}
	if (n - i != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
	    v[6] != '.' || v[7] < '0' || v[7] > '9')
		return 400;
	/* A higher minor version is answered as the highest we support, 1.1
	 * (RFC 9110 §2.5); only another major version is 505. */
	if (v[5] != '1')
		return 505;
	req->version_minor = v[7] > '1' ? 1 : (unsigned)(v[7] - '0');

	return http_parse_target(req, seen);
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6). A list, or repeated fields, is
 * accepted only when every member is the same value (RFC 9112 §6.3 step 5);
 * no sign, no empty member, nothing at or above 2^63. */
static int http_parse_content_length(struct http_str v, struct http_parse_seen *seen,
				     struct http_request *req)
{
	size_t i = 0;

	for (;;) {
		uint64_t n = 0;
		size_t d = i;
		while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9') {
			unsigned digit = (unsigned)(v.p[i] - '0');
			if (n > ((uint64_t)INT64_MAX - digit) / 10)
				return 400;
			n = n * 10 + digit;
			i++;
		}
		if (i == d)
			return 400;
		if (seen->cl && n != req->content_length)
			return 400;
		seen->cl = true;
		req->content_length = n;
		while (i < v.len && http_parse_ows((unsigned char)v.p[i]))
			i++;
		if (i == v.len)
			return 0;
		if (v.p[i] != ',')
			return 400;
		i++;
		while (i < v.len && http_parse_ows((unsigned char)v.p[i]))
			i++;
	}
}

/* Connection = #connection-option (RFC 9110 §7.6.1): tokens, any case;
 * empty list members are ignored (RFC 9110 §5.6.1). */
static int http_parse_connection(struct http_str v, struct http_parse_seen *seen)
{
	size_t i = 0;

	while (i < v.len) {
		while (i < v.len && (http_parse_ows((unsigned char)v.p[i]) || v.p[i] == ','))
			i++;
		size_t s = i;
		while (i < v.len && http_parse_is((unsigned char)v.p[i], HTTP_PARSE_TCHAR))
			i++;
		struct http_str opt = { v.p + s, i - s };
		while (i < v.len && http_parse_ows((unsigned char)v.p[i]))
			i++;
		if (i < v.len && v.p[i] != ',')
			return 400;
		if (HTTP_STR_IS(opt, "close"))
			seen->conn_close = true;
		else if (HTTP_STR_IS(opt, "keep-alive"))
			seen->conn_keep_alive = true;
	}
	return 0;
}

/* Keep the first of a field that may be interpreted once. */
static void http_parse_first(struct http_str *field, struct http_str v)
{
	if (field->p == NULL)
		*field = v;
}

/* A singleton field (RFC 9110 §5.3): the first is kept, and a second one
 * marks it repeated (bit of req->repeated) for the caller to ignore. */
static void http_parse_single(struct http_request *req, struct http_str *field, struct http_str v,
			      unsigned bit)
{
	if (field->p != NULL)
		req->repeated |= bit;
	else
		*field = v;
}

/* The fields drover interprets; all others are only kept in headers[].
 * One switch on the name's length, so that a field costs at most a couple
 * of comparisons: it reads as the list of fields we know, in one place. */
static int http_parse_field(const struct http_header *h, struct http_parse_seen *seen,
			    struct http_request *req)
{
	struct http_str v = h->value;

	switch (h->name.len) {
	case 4:
		if (HTTP_NAME_IS(h->name, "host")) {
			/* RFC 9112 §3.2: more than one Host, or an invalid one, is 400.
			 * An empty value is valid syntax. */
			if (++seen->hosts > 1)
				return 400;
			for (size_t i = 0; i < v.len; i++)
				if (!http_parse_is((unsigned char)v.p[i], HTTP_PARSE_HOST))
					return 400;
			req->host = v;
		}
		break;
	case 5:
		if (HTTP_NAME_IS(h->name, "range"))
			http_parse_first(&req->range, v);
		break;
	case 6:
		if (HTTP_NAME_IS(h->name, "expect")) {
			/* RFC 9110 §10.1.1: 100-continue is the only expectation. */
			if (HTTP_STR_IS(v, "100-continue"))
				seen->expect_continue = true;
			else
				seen->expect_other = true;
		}
		break;
	case 7:
		if (HTTP_NAME_IS(h->name, "referer"))
			http_parse_first(&req->referer, v);
		break;
	case 8:
		if (HTTP_NAME_IS(h->name, "if-range"))
			http_parse_single(req, &req->if_range, v, HTTP_REPEATED_IF_RANGE);
		else if (HTTP_NAME_IS(h->name, "if-match"))
			http_parse_first(&req->if_match, v); /* a list: all lines count */
		break;
	case 10:
		if (HTTP_NAME_IS(h->name, "connection"))
			return http_parse_connection(v, seen);
		if (HTTP_NAME_IS(h->name, "user-agent"))
			http_parse_first(&req->user_agent, v);
		break;
	case 13:
		if (HTTP_NAME_IS(h->name, "if-none-match"))
			http_parse_first(&req->if_none_match, v); /* a list: all lines count */
		break;
	case 14:
		if (HTTP_NAME_IS(h->name, "content-length"))
			return http_parse_content_length(v, seen, req);
		break;
	case 17:
		if (HTTP_NAME_IS(h->name, "if-modified-since")) {
			http_parse_single(req, &req->if_modified_since, v, HTTP_REPEATED_IF_MODIFIED_SINCE);
		} else if (HTTP_NAME_IS(h->name, "transfer-encoding")) {
			/* We decode no coding but chunked, so any other value, a list,
			 * or a second field is refused with 400 rather than the 501
			 * RFC 9112 §6.1 allows: a front end that understands the
			 * coding differently is exactly how requests get smuggled, and
			 * a hard stop closes the connection. */
			if (seen->te || !HTTP_STR_IS(v, "chunked"))
				return 400;
			seen->te = true;
		}
		break;
	case 19:
		if (HTTP_NAME_IS(h->name, "if-unmodified-since"))
			http_parse_single(req, &req->if_unmodified_since, v,
					  HTTP_REPEATED_IF_UNMODIFIED_SINCE);
		break;
	default:
		break;
	}
	return 0;
}

/* Whether a field value holds no CTL but HTAB and no DEL; obs-text is
 * allowed (RFC 9110 §5.5). Eight bytes at a time while none is suspect. */
static bool http_parse_value_ok(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t j = 0;

	for (; j + 8 <= n; j += 8) {
		uint64_t x;
		memcpy(&x, s + j, 8);
		uint64_t del = x ^ (0x7f * ones);
		/* Some byte < 0x20, or some byte == 0x7f (exact "any" tests). */
		if (((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs))
			break;
	}
	if (j + 4 <= n) {
		uint32_t x, del;
		memcpy(&x, s + j, 4);
		del = x ^ 0x7f7f7f7fu;
		if (!(((x - 0x20202020u) & ~x & 0x80808080u) | ((del - 0x01010101u) & ~del & 0x80808080u)))
			j += 4;
	}
	for (; j < n; j++)
		if (!http_parse_is((unsigned char)s[j], HTTP_PARSE_FVALUE))
			return false;
	return true;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5). */
static int http_parse_field_line(const char *s, size_t n, struct http_header *h)
{
	size_t i = 0;

	/* A line starting with whitespace is obs-fold, or whitespace after the
	 * start-line: both rejected (RFC 9112 §5.2, §2.2). Four bytes a step
	 * while all four are tchar, then one at a time. */
	const unsigned char *u = (const unsigned char *)s;
	while (i + 4 <= n && (http_parse_class[u[i]] & http_parse_class[u[i + 1]] &
			      http_parse_class[u[i + 2]] & http_parse_class[u[i + 3]] &
			      HTTP_PARSE_TCHAR))
		i += 4;
	while (i < n && http_parse_is(u[i], HTTP_PARSE_TCHAR))
		i++;
	/* No whitespace between name and colon (RFC 9112 §5.1). */
	if (i == 0 || i == n || s[i] != ':')
		return 400;
	h->name = (struct http_str){ s, i };
	i++;
	while (i < n && http_parse_ows((unsigned char)s[i]))
		i++;
	size_t e = n;
	while (e > i && http_parse_ows((unsigned char)s[e - 1]))
		e--;
	if (!http_parse_value_ok(s + i, e - i))
		return 400;
	h->value = (struct http_str){ s + i, e - i };
	return 0;
}

/* Every field of req as for a head that has none of them yet. */
static void http_parse_req_reset(struct http_request *req)
{
	req->method = HTTP_METHOD_OTHER;
	req->method_str = req->target = req->path = req->query = (struct http_str){ NULL, 0 };
	req->host = req->if_none_match = req->if_modified_since = req->range =
		req->if_range = req->user_agent = req->referer = req->if_match =
		req->if_unmodified_since = (struct http_str){ NULL, 0 };
	req->repeated = 0;
	req->version_minor = 0;
	req->n_headers = 0;
	req->keep_alive = false;
	req->expect_continue = false;
	req->body = HTTP_BODY_NONE;
	req->content_length = 0;
	req->head_len = 0;
}

/* One field line s[0, n) of a head: headers[] and what it means. */
static int http_parse_add_field(const char *s, size_t n, struct http_parse_seen *seen,
				struct http_request *req)
{
	struct http_header *h = &req->headers[req->n_headers];
	int r = http_parse_field_line(s, n, h);
	if (r)
		return r;
	req->n_headers++;
	return http_parse_field(h, seen, req);
}

/* The checks on the head as a whole, once every line was read. */
static int http_parse_finish(const struct http_parse_seen *seen, size_t head_len,
			     const struct http_limits *lim, struct http_request *req)
{
	/* RFC 9112 §3.2: HTTP/1.1 needs exactly one Host. */
	if (req->version_minor == 1 && seen->hosts != 1)
		return 400;
	if (seen->target_host.p != NULL)
		req->host = seen->target_host;
	if (seen->te) {
		/* RFC 9112 §6.1: chunked is not HTTP/1.0, and Transfer-Encoding
		 * with Content-Length is a smuggling attempt, not a message. */
		if (req->version_minor == 0 || seen->cl)
			return 400;
		req->body = HTTP_BODY_CHUNKED;
	} else if (seen->cl) {
		if (req->content_length > lim->max_body_size)
			return 413;
		req->body = req->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	}
	/* RFC 9110 §10.1.1: an HTTP/1.0 expectation is ignored; in HTTP/1.1
	 * anything but 100-continue is answered 417 here, so the caller needs
	 * no second look at Expect. */
	if (req->version_minor == 1) {
		if (seen->expect_other)
			return 417;
		req->expect_continue = seen->expect_continue;
	}
	/* RFC 9112 §9.3: persistent by default in 1.1, by keep-alive in 1.0;
	 * close always wins. */
	req->keep_alive = !seen->conn_close &&
			  (req->version_minor == 1 || seen->conn_keep_alive);
	req->head_len = head_len;
	return 0;
}

/* Pass two, over the complete head buf[start, head_len): every line ends in
 * CRLF and holds no other CR or LF, and the limits hold (pass one). */
static int http_parse_head(const char *buf, size_t start, size_t head_len,
			   const struct http_limits *lim, struct http_request *req)
{
	struct http_parse_seen seen = { 0 };
	const char *end = buf + head_len - 2; /* the final empty line */
	const char *s = buf + start;
	const char *cr;
	int r;

	http_parse_req_reset(req);
	cr = memchr(s, '\r', (size_t)(end - s));
	if (cr == NULL)
		return 400;
	r = http_parse_request_line(s, (size_t)(cr - s), req, &seen);
	if (r)
		return r;

	for (s = cr + 2; s < end; s = cr + 2) {
		cr = memchr(s, '\r', (size_t)(end - s));
		if (cr == NULL || req->n_headers >= HTTP_MAX_HEADERS)
			return cr == NULL ? 400 : 431;
		r = http_parse_add_field(s, (size_t)(cr - s), &seen, req);
		if (r)
			return r;
	}
	return http_parse_finish(&seen, head_len, lim, req);
}

/* The common case in one pass: a new request whose whole head is in buf,
 * valid, with no empty line before it. Each line is found with one memchr
 * for its LF; pass two's checks of every byte of a line also reject any CR
 * in it, so with the CR before each LF, the line limits, the header count
 * and the head inside max_header_size checked here, a head accepted here is
 * exactly one pass one would have delimited and pass two accepted. Returns
 * head_len (p set as after the two passes), or 0 for anything else: the
 * caller then runs the two passes from the start, which decide every
 * incomplete or refused head exactly as they always do. */
static int http_parse_fast(struct http_parser *p, const char *buf, size_t len,
			   const struct http_limits *lim, struct http_request *req)
{
	size_t max_size = lim->max_header_size < (size_t)INT_MAX ? lim->max_header_size : (size_t)INT_MAX;
	unsigned max_headers = lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers : HTTP_MAX_HEADERS;
	const char *end = buf + (len < max_size ? len : max_size); /* the head ends before */
	struct http_parse_seen seen = { 0 };
	const char *lf = memchr(buf, '\n', (size_t)(end - buf));
	size_t n;

	if (lf == NULL || lf == buf || lf[-1] != '\r')
		return 0;
	n = (size_t)(lf - 1 - buf);
	if (n == 0 || n > lim->max_request_line)
		return 0;
	http_parse_req_reset(req);
	if (http_parse_request_line(buf, n, req, &seen))
		return 0;
	for (;;) {
		const char *s = lf + 1;
		lf = memchr(s, '\n', (size_t)(end - s));
		if (lf == NULL || lf == s || lf[-1] != '\r')
			return 0;
		n = (size_t)(lf - 1 - s);
		if (n == 0)
			break; /* the empty line */
		if (n > lim->max_header_line || req->n_headers >= max_headers ||
		    http_parse_add_field(s, n, &seen, req))
			return 0;
	}
	size_t head_len = (size_t)(lf + 1 - buf);
	if (http_parse_finish(&seen, head_len, lim, req))
		return 0;
	p->scanned = head_len;
	p->line_start = head_len - 2;
	p->lines = 1 + req->n_headers;
	p->empty_lines = 0;
	p->result = (int)head_len;
	p->status = 0;
	return (int)head_len;
}

int http_parse_request(struct http_parser *p, const char *buf, size_t len,
		       const struct http_limits *lim, struct http_request *req)
{
	int r;

	if (p->scanned == 0 || p->scanned > len) {
		/* A new request, or a caller that only reset scanned. */
		r = http_parse_fast(p, buf, len, lim, req);
		if (r > 0)
			return r;
		http_parser_init(p);
	} else if (p->result < 0) {
		return p->result;
	} else if (p->result > 0) {
		/* Asked again for a head already found: parse the same bytes. */
		r = http_parse_head(buf, 2 * (size_t)p->empty_lines, (size_t)p->result, lim, req);
		return r ? http_parse_refuse(p, r) : p->result;
	}

	r = http_parse_scan(p, buf, len, lim);
	if (r > 0) {
		p->scanned = (size_t)r;
		int status = http_parse_head(buf, 2 * (size_t)p->empty_lines, (size_t)r, lim, req);
		if (status)
			r = http_parse_refuse(p, status);
	}
	if (r != 0)
		p->result = r;
	return r;
}

/* An HTTP/2 request (RFC 9113 §8.3), whose framing and field syntax
 * nghttp2 has already checked (§8.2: lowercase names, no connection-specific
 * field, pseudo-fields first and once each, content-length against the
 * DATA). What is left is what HTTP/1.1's head checks add: the method, the
 * target split into path and query, the interpreted fields, and the limits.
 * A request keeps its connection (HTTP/2 has no Connection: close). */
int http_parse_h2_request(struct http_request *req, struct http_str method, struct http_str target,
			  struct http_str authority, const struct http_header *fields, unsigned n,
			  const struct http_limits *lim)
{
	struct http_parse_seen seen = { 0 };

	http_parse_req_reset(req);
	if (method.len == 0 || target.len == 0)
		return 400;
	for (size_t i = 0; i < method.len; i++)
		if (!http_parse_is((unsigned char)method.p[i], HTTP_PARSE_TCHAR))
			return 400;
	req->method_str = method;
	req->method = http_parse_method(method.p, method.len);
	req->target = target;
	req->version_minor = 1;
	if (target.p[0] == '/') {
		const char *q = memchr(target.p, '?', target.len);
		req->path = (struct http_str){ target.p, q ? (size_t)(q - target.p) : target.len };
		if (q)
			req->query = (struct http_str){ q + 1, target.len - (size_t)(q - target.p) - 1 };
	} else if (!(req->method == HTTP_METHOD_OPTIONS && target.len == 1 && target.p[0] == '*')) {
		return 400; /* §8.3.1: origin-form, or asterisk-form for OPTIONS */
	} else {
		req->path = target;
	}
	if (target.len > lim->max_request_line)
		return 414;
	unsigned max = lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers : HTTP_MAX_HEADERS;
	if (n > max)
		return 431;
	for (unsigned i = 0; i < n; i++) {
		req->headers[i] = fields[i];
		req->n_headers = i + 1;
		/* Host beside :authority must agree (§8.3.1); ours wins below. */
		if (fields[i].name.len == 4 && HTTP_NAME_IS(fields[i].name, "host") && authority.len)
			continue;
		int r = http_parse_field(&req->headers[i], &seen, req);
		if (r)
			return r;
	}
	if (authority.len) {
		for (size_t i = 0; i < authority.len; i++)
			if (!http_parse_is((unsigned char)authority.p[i], HTTP_PARSE_HOST))
				return 400;
		req->host = authority;
	}
	if (seen.cl) {
		if (req->content_length > lim->max_body_size)
			return 413;
		req->body = req->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	}
	if (seen.expect_other)
		return 417;
	req->keep_alive = true;
	return 0;
}
