/* http_parse: strict HTTP/1.x request parsing (RFC 9110, RFC 9112) over the
 * bytes as they arrive. No allocation: the request points into the caller's
 * buffer. Anything ambiguous is rejected, never guessed. */
#ifndef DROVER_HTTP_PARSE_H
#define DROVER_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 128 /* hard ceiling; the configured limit may be lower */

enum http_method {
	HTTP_METHOD_OTHER = 0, /* a valid token we do not implement (501) */
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_TRACE,
	HTTP_METHOD_CONNECT,
	HTTP_METHOD_PATCH,
};

/* Singleton fields a request sent more than once (bits of req->repeated). */
enum http_repeated {
	HTTP_REPEATED_IF_MODIFIED_SINCE = 1u << 0,
	HTTP_REPEATED_IF_UNMODIFIED_SINCE = 1u << 1,
	HTTP_REPEATED_IF_RANGE = 1u << 2,
};

/* A slice of the caller's buffer. */
struct http_str {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_str name;
	struct http_str value; /* leading/trailing whitespace removed */
};

struct http_limits {
	size_t max_request_line;  /* longer -> 414 */
	size_t max_header_line;   /* longer -> 431 */
	size_t max_header_size;   /* request line + headers -> 431 */
	unsigned max_headers;     /* more -> 431 (capped at HTTP_MAX_HEADERS) */
	uint64_t max_body_size;   /* larger Content-Length -> 413 */
};

enum http_body_kind {
	HTTP_BODY_NONE = 0,
	HTTP_BODY_LENGTH,  /* Content-Length bytes */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

struct http_request {
	enum http_method method;
	struct http_str method_str;
	struct http_str target;   /* request-target as sent */
	struct http_str path;     /* origin-form path (or from absolute-form), still percent-encoded */
	struct http_str query;    /* after '?', without it; len 0 if none */
	unsigned version_minor;   /* HTTP/1.<minor>: 0 or 1 (a higher minor is 1, RFC 9110 §2.5) */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned n_headers;
	/* Interpreted fields (the header values, or len 0 when absent). */
	struct http_str host;
	struct http_str if_none_match;     /* the first line; list fields may have more (headers[]) */
	struct http_str if_match;          /* the first line, as if_none_match */
	struct http_str if_modified_since;
	struct http_str if_unmodified_since;
	struct http_str range;
	struct http_str if_range;
	struct http_str user_agent;
	struct http_str referer;
	unsigned repeated;        /* singleton fields sent more than once (enum http_repeated) */
	bool keep_alive;          /* by version and Connection: close / keep-alive */
	bool expect_continue;     /* Expect: 100-continue */
	enum http_body_kind body;
	uint64_t content_length;  /* HTTP_BODY_LENGTH */
	size_t head_len;          /* bytes of request line + headers + CRLF */
};

/* Incremental state between calls for the same request. */
struct http_parser {
	size_t scanned; /* bytes already searched for the end of the head */
	/* Private to http_parse.c (http_parser_init() zeroes them; scanned == 0
	 * also resets them): where the line being searched starts, lines ended
	 * so far (request line included), leading empty lines skipped, and the
	 * result once decided (head_len or -EBADMSG) so repeated calls agree. */
	size_t line_start;
	unsigned lines;
	unsigned empty_lines;
	int result;
	/* After -EBADMSG: the status to answer (400, 413, 414, 417, 431, 505). */
	int status;
};

/* Reset for a new request. */
void http_parser_init(struct http_parser *p);

/* Parse a request head from buf[0, len) (which holds everything received
 * for this request so far). Returns >0 = head_len when the head is complete
 * and valid (req is filled in), 0 = need more bytes, -EBADMSG = refused,
 * with the status to answer in p->status (400, 413, 414, 417, 431, 505;
 * never 501: an unknown method is HTTP_METHOD_OTHER for the caller to
 * answer); after a refusal the connection closes. */
int http_parse_request(struct http_parser *p, const char *buf, size_t len,
		       const struct http_limits *lim, struct http_request *req);

/* An HTTP/2 request from its pseudo-fields and regular fields (slices
 * the caller keeps valid while req is used), as http_parse_request fills
 * req for HTTP/1.1 (version_minor 1, keep_alive). 0, or the status to
 * answer: 400, 413, 414, 417, 431. */
int http_parse_h2_request(struct http_request *req, struct http_str method, struct http_str target,
			  struct http_str authority, const struct http_header *fields, unsigned n,
			  const struct http_limits *lim);

/* Discards a request body, Content-Length or chunked (RFC 9112 §7.1). */
struct http_body_reader {
	enum http_body_kind kind;
	int state;
	uint64_t remaining; /* of the Content-Length, or of the current chunk */
	uint64_t total;     /* body bytes seen, checked against max_body_size */
	uint64_t max;
	size_t line_len;    /* bytes of the current chunk-size/trailer line */
	size_t ext_len;     /* chunk-ext bytes of the whole body (bounded, not data) */
	int status;         /* after -EBADMSG: 400 malformed, 413 too large */
};

/* Prepare to read the body req announces. */
void http_body_init(struct http_body_reader *r, const struct http_request *req, uint64_t max_body_size);
/* Consume body bytes from buf[0, len); *used = bytes that belonged to the body.
 * Returns 1 = body complete, 0 = need more, -EBADMSG = refused (r->status). */
int http_body_consume(struct http_body_reader *r, const char *buf, size_t len, size_t *used);

/* Case-insensitive compare of a slice with a NUL-terminated string. */
bool http_str_eq_ci(struct http_str s, const char *lit);
/* Name of a method ("GET"), as in the request line for OTHER. */
const char *http_method_name(enum http_method m);

#endif
