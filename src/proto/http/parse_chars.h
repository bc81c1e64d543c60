/* parse_chars: the character classes of HTTP's grammar (RFC 9110 §5.5,
 * §5.6; RFC 3986), shared by the head parser (parse.c) and the body
 * reader (body.c). Private to src/proto/http. */
#ifndef DROVER_HTTP_PARSE_CHARS_H
#define DROVER_HTTP_PARSE_CHARS_H

#include <stdbool.h>

/* Character classes, one table lookup per byte. */
enum {
	HTTP_PARSE_TCHAR = 0x01,  /* token (RFC 9110 §5.6.2) */
	HTTP_PARSE_TARGET = 0x02, /* request-target byte: VCHAR except '#' */
	HTTP_PARSE_FVALUE = 0x04, /* field-value byte: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5) */
	HTTP_PARSE_HEX = 0x08,    /* HEXDIG */
	HTTP_PARSE_HOST = 0x10,   /* uri-host / port bytes: unreserved, sub-delims, ":[]%" (RFC 3986 §3.2.2) */
	HTTP_PARSE_QDTEXT = 0x20, /* qdtext (RFC 9110 §5.6.4) */
	HTTP_PARSE_SCHEME = 0x40, /* scheme after its first ALPHA (RFC 3986 §3.1) */
};

/* One bit per class for every byte (parse.c). */
extern const unsigned char http_parse_class[256];

static inline bool http_parse_is(unsigned char c, unsigned cls)
{
	return (http_parse_class[c] & cls) != 0;
}

static inline unsigned char http_parse_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

#endif
