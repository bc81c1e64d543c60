/* body: read and discard a request body, Content-Length or chunked
 * (RFC 9112 §6.3, §7.1), one byte of framing at a time so that how the
 * bytes were split across reads never changes the answer. Declared in
 * parse.h with the head parser it follows. */
#include "proto/http/parse.h"

#include <errno.h>
#include <string.h>

#include "proto/http/parse_chars.h"

/* A chunk-size line (with extensions) or a trailer line longer than this is
 * refused: RFC 9112 §7.1.1 lets a server limit extensions, and nobody sends
 * kilobytes of them. */
#define HTTP_PARSE_CHUNK_LINE_MAX 4096
/* The whole trailer section (RFC 9112 §7.1.2), CRLFs included. */
#define HTTP_PARSE_TRAILER_MAX 16384
#define HTTP_PARSE_CHUNK_EXT_TOTAL_MAX 16384 /* chunk-ext bytes in one body */

/* Chunked body states (RFC 9112 §7.1); one byte moves at most one step. */
enum {
	HTTP_BODY_S_SIZE = 0,   /* chunk-size = 1*HEXDIG */
	HTTP_BODY_S_EXT_NAME0,  /* after ';': first byte of chunk-ext-name */
	HTTP_BODY_S_EXT_NAME,   /* in chunk-ext-name */
	HTTP_BODY_S_EXT_VAL0,   /* after '=': token or quoted-string */
	HTTP_BODY_S_EXT_TOKEN,  /* in a token chunk-ext-val */
	HTTP_BODY_S_EXT_QUOTED, /* in a quoted-string */
	HTTP_BODY_S_EXT_QPAIR,  /* after '\\' in a quoted-string */
	HTTP_BODY_S_EXT_QEND,   /* after the closing '"' */
	HTTP_BODY_S_SIZE_LF,    /* CR seen at the end of the chunk-size line */
	HTTP_BODY_S_DATA,       /* chunk-data, remaining bytes */
	HTTP_BODY_S_DATA_CR,    /* CRLF after chunk-data */
	HTTP_BODY_S_DATA_LF,
	HTTP_BODY_S_TRAILER0,   /* start of a trailer line, or the final CRLF */
	HTTP_BODY_S_TR_NAME,    /* in a trailer field-name */
	HTTP_BODY_S_TR_VALUE,   /* after the colon */
	HTTP_BODY_S_TR_LF,      /* CR seen at the end of a trailer line */
	HTTP_BODY_S_END_LF,     /* CR of the final CRLF seen */
	HTTP_BODY_S_DONE,
	HTTP_BODY_S_ERR400,
	HTTP_BODY_S_ERR413,
};

void http_body_init(struct http_body_reader *r, const struct http_request *req, uint64_t max_body_size)
{
	memset(r, 0, sizeof(*r));
	r->kind = req->body;
	r->max = max_body_size;
	r->state = HTTP_BODY_S_SIZE;
	if (r->kind == HTTP_BODY_LENGTH)
		r->remaining = req->content_length;
}

/* Refuse the body being read: the status goes in r. */
static int http_body_refuse(struct http_body_reader *r, int status)
{
	r->status = status;
	return -EBADMSG;
}

/* One byte of the chunked framing (not chunk-data). Returns 1 when the body
 * is complete, 0 to go on, or -EBADMSG with r->status set. One switch over
 * the states, kept in one piece so the chunked grammar (RFC 9112 §7.1)
 * reads top to bottom in one place. */
static int http_parse_chunk_byte(struct http_body_reader *r, unsigned char c)
{
	bool line = r->state < HTTP_BODY_S_SIZE_LF ||
		    (r->state >= HTTP_BODY_S_TRAILER0 && r->state <= HTTP_BODY_S_TR_VALUE);

	if (line && c != '\r' && ++r->line_len > HTTP_PARSE_CHUNK_LINE_MAX)
		return http_body_refuse(r, 400);
	/* Extensions are not body data, so max_body_size does not bound them:
	 * without this cap a "body" of endless extensions would be parsed for
	 * as long as the client sends (RFC 9112 §7.1.1 lets us limit them). */
	if (r->state >= HTTP_BODY_S_EXT_NAME0 && r->state <= HTTP_BODY_S_EXT_QEND &&
	    ++r->ext_len > HTTP_PARSE_CHUNK_EXT_TOTAL_MAX)
		return http_body_refuse(r, 400);
	if (r->state >= HTTP_BODY_S_TRAILER0 && r->state <= HTTP_BODY_S_END_LF) {
		/* remaining is free after the last chunk: it counts the trailers. */
		if (++r->remaining > HTTP_PARSE_TRAILER_MAX)
			return http_body_refuse(r, 413);
	}

	switch (r->state) {
	case HTTP_BODY_S_SIZE:
		if (http_parse_is(c, HTTP_PARSE_HEX)) {
			/* 16 hex digits fill a uint64_t; more is an overflow. */
			if (r->line_len > 16)
				return http_body_refuse(r, 400);
			unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)(http_parse_lower(c) - 'a' + 10);
			r->remaining = r->remaining * 16 + d;
			return 0;
		}
		/* No digit yet, or whitespace before ';': RFC 9112 §7.1.1 has BWS
		 * there, but no real client sends it and parsers disagree on it, so
		 * it is refused like every other ambiguity. */
		if (r->line_len <= 1 && c != '\r')
			return http_body_refuse(r, 400);
		if (c == ';') {
			r->state = HTTP_BODY_S_EXT_NAME0;
			return 0;
		}
		if (c == '\r' && r->line_len > 0) {
			r->state = HTTP_BODY_S_SIZE_LF;
			return 0;
		}
		return http_body_refuse(r, 400);
	case HTTP_BODY_S_EXT_NAME0:
		if (!http_parse_is(c, HTTP_PARSE_TCHAR))
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_EXT_NAME;
		return 0;
	case HTTP_BODY_S_EXT_NAME:
	case HTTP_BODY_S_EXT_TOKEN:
		if (http_parse_is(c, HTTP_PARSE_TCHAR))
			return 0;
		if (c == '=' && r->state == HTTP_BODY_S_EXT_NAME) {
			r->state = HTTP_BODY_S_EXT_VAL0;
			return 0;
		}
		break; /* ';' or CR, as after a value */
	case HTTP_BODY_S_EXT_VAL0:
		if (c == '"')
			r->state = HTTP_BODY_S_EXT_QUOTED;
		else if (http_parse_is(c, HTTP_PARSE_TCHAR))
			r->state = HTTP_BODY_S_EXT_TOKEN;
		else
			return http_body_refuse(r, 400);
		return 0;
	case HTTP_BODY_S_EXT_QUOTED:
		if (c == '"')
			r->state = HTTP_BODY_S_EXT_QEND;
		else if (c == '\\')
			r->state = HTTP_BODY_S_EXT_QPAIR;
		else if (!http_parse_is(c, HTTP_PARSE_QDTEXT))
			return http_body_refuse(r, 400);
		return 0;
	case HTTP_BODY_S_EXT_QPAIR:
		/* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
		if (!http_parse_is(c, HTTP_PARSE_FVALUE))
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_EXT_QUOTED;
		return 0;
	case HTTP_BODY_S_EXT_QEND:
		break;
	case HTTP_BODY_S_SIZE_LF:
		if (c != '\n')
			return http_body_refuse(r, 400);
		r->line_len = 0;
		if (r->remaining == 0) {
			r->state = HTTP_BODY_S_TRAILER0; /* last-chunk */
			return 0;
		}
		if (r->remaining > r->max - r->total)
			return http_body_refuse(r, 413);
		r->state = HTTP_BODY_S_DATA;
		return 0;
	case HTTP_BODY_S_DATA_CR:
		if (c != '\r')
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_DATA_LF;
		return 0;
	case HTTP_BODY_S_DATA_LF:
		if (c != '\n')
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_SIZE;
		r->remaining = 0;
		r->line_len = 0;
		return 0;
	case HTTP_BODY_S_TRAILER0:
		if (c == '\r') {
			r->state = HTTP_BODY_S_END_LF;
			return 0;
		}
		/* A trailer line is a field line: no obs-fold, a token name. */
		if (!http_parse_is(c, HTTP_PARSE_TCHAR))
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_TR_NAME;
		return 0;
	case HTTP_BODY_S_TR_NAME:
		if (c == ':')
			r->state = HTTP_BODY_S_TR_VALUE;
		else if (!http_parse_is(c, HTTP_PARSE_TCHAR))
			return http_body_refuse(r, 400);
		return 0;
	case HTTP_BODY_S_TR_VALUE:
		if (c == '\r')
			r->state = HTTP_BODY_S_TR_LF;
		else if (!http_parse_is(c, HTTP_PARSE_FVALUE))
			return http_body_refuse(r, 400);
		return 0;
	case HTTP_BODY_S_TR_LF:
		if (c != '\n')
			return http_body_refuse(r, 400);
		r->line_len = 0;
		r->state = HTTP_BODY_S_TRAILER0;
		return 0;
	case HTTP_BODY_S_END_LF:
		if (c != '\n')
			return http_body_refuse(r, 400);
		r->state = HTTP_BODY_S_DONE;
		return 1;
	default:
		return http_body_refuse(r, 400);
	}

	/* The end of a chunk-ext name or value: another extension or the CR. */
	if (c == ';') {
		r->state = HTTP_BODY_S_EXT_NAME0;
		return 0;
	}
	if (c == '\r') {
		r->state = HTTP_BODY_S_SIZE_LF;
		return 0;
	}
	return http_body_refuse(r, 400);
}

int http_body_consume(struct http_body_reader *r, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;

	*used = 0;
	switch (r->kind) {
	case HTTP_BODY_NONE:
		return 1;
	case HTTP_BODY_LENGTH: {
		if (r->remaining > r->max - r->total)
			return http_body_refuse(r, 413);
		size_t n = r->remaining < len ? (size_t)r->remaining : len;
		r->remaining -= n;
		r->total += n;
		*used = n;
		return r->remaining == 0 ? 1 : 0;
	}
	case HTTP_BODY_CHUNKED:
		break;
	default:
		return http_body_refuse(r, 400);
	}

	switch (r->state) {
	case HTTP_BODY_S_DONE:
		return 1;
	case HTTP_BODY_S_ERR400:
		return http_body_refuse(r, 400);
	case HTTP_BODY_S_ERR413:
		return http_body_refuse(r, 413);
	default:
		break;
	}

	while (i < len) {
		if (r->state == HTTP_BODY_S_DATA) {
			size_t n = r->remaining < len - i ? (size_t)r->remaining : len - i;
			i += n;
			r->remaining -= n;
			r->total += n;
			if (r->remaining == 0)
				r->state = HTTP_BODY_S_DATA_CR;
			continue;
		}
		int ret = http_parse_chunk_byte(r, (unsigned char)buf[i]);
		if (ret < 0) {
			r->state = r->status == 413 ? HTTP_BODY_S_ERR413 : HTTP_BODY_S_ERR400;
			*used = i;
			return ret;
		}
		i++;
		if (ret > 0) {
			*used = i;
			return 1;
		}
	}
	*used = i;
	return 0;
}
