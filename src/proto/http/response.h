/* http response: a response as data, whichever protocol version sends it:
 * a status, header fields and one body source. Handlers fill one in
 * (handler.h); HTTP/1.1 serialises it into a connection (h1.c), and HTTP/2
 * will encode the same struct. Also what every version shares: reason
 * phrases, the cached Date, multipart/byteranges bodies.
 *
 * Fields are a block of "Name: value\r\n" lines, not an array of pairs:
 * HTTP/1.1 sends exactly that text, so serialising them is one memcpy per
 * block and no per-field work, and the open-file cache lends each file's
 * prebuilt lines (Content-Type, ETag, Last-Modified, Accept-Ranges) without
 * a copy. HTTP/2 walks the same block as name/value pairs
 * (http_fields_next); names are as HTTP/1.1 writes them, so it folds them to
 * lowercase (RFC 9113 §8.2.1) as it encodes them. Content-Length, Date,
 * Server and Connection are not fields of the response: each serialiser
 * adds what its version needs.
 *
 * The body source has one owner: the response, until a serialiser takes it
 * over (the struct moves, e.g. into the connection); then the connection.
 * http_src_release() gives back what it holds (frees the memory, closes the
 * fd, unpins the cache entry), once, whoever owns it then. */
#ifndef DROVER_HTTP_RESPONSE_H
#define DROVER_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "proto/http/fields.h"
#include "proto/http/parse.h"

#ifdef PACKAGE_VERSION
#define HTTP_SERVER_NAME "drover/" PACKAGE_VERSION
#else
#define HTTP_SERVER_NAME "drover/0.1"
#endif

/* How a response treats its connection (bits). */
enum http_resp_how {
	HTTP_PERSIST = 0,       /* keep-alive if the request, drain and limits allow */
	HTTP_CLOSE = 1u << 0,   /* the request stream cannot be trusted: close after */
	HTTP_UNPARSED = 1u << 1,/* no request was parsed (parse error, timeout): the connection's own errors */
};

/* The field lines of a response. */
struct http_fields {
	const char *lent;  /* lines whose owner keeps them valid while the response is serialised, sent first */
	size_t lent_len;
	char *buf;         /* lines added with http_field*(), in the caller's storage */
	size_t len, cap;
	bool overflow;     /* a line did not fit: the response cannot be sent as built */
};

/* What a body is. */
enum http_src_kind {
	HTTP_SRC_NONE = 0, /* no body */
	HTTP_SRC_MEM,      /* mem[mem_off, mem_len) */
	HTTP_SRC_FILE,     /* fd's bytes [off, off + left) */
	HTTP_SRC_PARTS,    /* multipart/byteranges of fd (RFC 9110 §14.6): parts are queued one by one */
};

struct http_multipart;

/* A body source. */
struct http_body_src {
	enum http_src_kind kind;
	uint64_t length;     /* of the whole body: Content-Length */
	const char *mem;     /* MEM */
	size_t mem_len;
	size_t mem_off;      /* bytes of mem already sent */
	int fd;              /* FILE, PARTS */
	off_t off;           /* the next byte of the current range */
	uint64_t left;       /* bytes of the current range still to send */
	struct http_multipart *parts; /* PARTS: what is left to queue (response.c) */
	/* Gives back what mem or fd belong to (an unpin, a free). NULL: a
	 * file's fd is the source's own and is closed; memory is static or
	 * lives in the response (then it must be copied while serialising). */
	void (*release)(struct http_body_src *src);
	void *owner;         /* for release */
};

/* A response. Built by a handler (or a connection's own error); the field
 * storage is the caller's (http_response_init). */
struct http_response {
	int status;
	unsigned how;        /* enum http_resp_how */
	bool no_length;      /* no Content-Length (304, RFC 9110 §15.4.5) */
	bool length_in_fields; /* the Content-Length line is among the field lines
				* (a cache entry's, built once) */
	struct http_fields fields;
	struct http_body_src body;
	char text[64];       /* a short generated body (an error's text) */
};

/* Room for the field lines of any response we build (the longest is a 301
 * with a Location of HTTP_PATH_MAX encoded bytes and a query). */
#define HTTP_FIELDS_MAX (32 * 1024)

/* Reason phrase of a status code. */
const char *http_reason(int status);
/* The cached IMF-fixdate for "now" (RFC 9110 §6.6.1), and its time. */
const char *http_date_now(time_t *now);
/* "Date: <now>\r\nServer: drover/...\r\n", refreshed at most once a second. */
const char *http_date_lines(size_t *len);

/* An empty response (status 0, no field, no body) whose field lines are
 * stored in buf (cap bytes). */
void http_response_init(struct http_response *r, char *buf, size_t cap);
/* A complete response: status, Content-Type (if ctype) and body, which is
 * static or lives in r (r->text). */
void http_response_text(struct http_response *r, int status, const char *ctype, const char *body,
			size_t len);
/* An error with a short text body ("404 Not Found\n"), and Allow for a 405. */
void http_response_error(struct http_response *r, int status);

/* Append the line "name: value\r\n". A line that does not fit sets overflow. */
void http_field(struct http_fields *f, const char *name, const char *value);
__attribute__((format(printf, 3, 4)))
void http_fieldf(struct http_fields *f, const char *name, const char *fmt, ...);
/* Append lines already formatted ("Name: value\r\n"...). */
void http_field_lines(struct http_fields *f, const char *lines, size_t len);
/* Send block (formatted lines the caller keeps) before the others, without a copy. */
void http_fields_lend(struct http_fields *f, const char *block, size_t len);
/* The next field from *pos (0 to start): false after the last one. */
bool http_fields_next(const struct http_fields *f, size_t *pos, struct http_str *name, struct http_str *value);

/* Body sources. Each replaces a source of kind NONE. */
/* len bytes at p, given back by release(src) with src->owner = owner. */
void http_src_mem(struct http_body_src *s, const char *p, size_t len, void (*release)(struct http_body_src *),
		  void *owner);
/* A malloc'd body, freed on release. */
void http_src_owned(struct http_body_src *s, char *p, size_t len);
/* len bytes of fd from first; release NULL: fd is taken over (closed). */
void http_src_file(struct http_body_src *s, int fd, uint64_t first, uint64_t len,
		   void (*release)(struct http_body_src *), void *owner);
/* The ranges of fd (a file of size bytes, each part typed ctype) as a
 * multipart/byteranges body; fd is taken over. 0, or -ENOMEM with fd
 * left to the caller. */
int http_src_parts(struct http_body_src *s, int fd, const struct http_ranges *rs, uint64_t size,
		   const char *ctype);
/* A multipart body's boundary, for its Content-Type. */
const char *http_src_boundary(const struct http_body_src *s);
/* A multipart body: the text to send next (the delimiter and header of
 * the next part, whose bytes off/left then name; or the closing
 * delimiter, after which the fd is released), into out; its length, 0 when
 * everything is queued. */
size_t http_src_next_part(struct http_body_src *s, char *out, size_t cap);
/* Give back what s holds; s is of kind NONE after. */
void http_src_release(struct http_body_src *s);

/* Bytes of a memory body not sent yet. */
static inline size_t http_src_mem_left(const struct http_body_src *s)
{
	return s->kind == HTTP_SRC_MEM ? s->mem_len - s->mem_off : 0;
}

#endif
