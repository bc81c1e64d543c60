/* http coding: content codings of precompressed files ([http]
 * precompressed): the codings drover knows, the file suffix and ETag
 * suffix of each, the [http] precompressed list, and the choice among the
 * variants a file has by the request's Accept-Encoding (RFC 9110 §12.5.3).
 * Pure functions; nothing here compresses (drover never does). */
#ifndef DROVER_HTTP_CODING_H
#define DROVER_HTTP_CODING_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;

/* The codings a precompressed variant may have. */
enum http_coding {
	HTTP_CODING_BR = 0, /* a.css.br */
	HTTP_CODING_GZIP,   /* a.css.gz */
	HTTP_CODING_ZSTD,   /* a.css.zst */
	HTTP_CODINGS,
};
/* No coding: the file itself. */
#define HTTP_CODING_IDENTITY (-1)

/* [http] precompressed: the codings looked for, in the server's order of
 * preference; n = 0: off. */
struct http_precompressed {
	unsigned char n;
	unsigned char order[HTTP_CODINGS]; /* enum http_coding */
};

/* The Content-Encoding value ("br", "gzip", "zstd"). */
const char *http_coding_name(int coding);
/* What the variant's file name adds to the file's (".br", ".gz", ".zst"). */
const char *http_coding_suffix(int coding);
/* Parse a precompressed value ("br gzip zstd", "off"): 0, or -EINVAL with
 * why filled in ("expected ..."). */
int http_precompressed_parse(const char *value, struct http_precompressed *out, char *why,
			     size_t why_len);
/* Make etag (a quoted strong entity-tag, "\"...\"", in a buffer of cap
 * bytes) the variant's: the coding's suffix goes inside the quotes
 * ("\"1f-5a\"" -> "\"1f-5a-gz\""), so each coding has its own strong
 * validator, distinct from the file's. */
void http_coding_etag(char *etag, size_t cap, int coding);
/* The coding to send: among those of p whose bit (1u << coding) is in
 * available, the one with the highest q in req's Accept-Encoding lines;
 * equal q: p's order. HTTP_CODING_IDENTITY when no Accept-Encoding is
 * sent, none of them is acceptable (q=0, or not named and no '*'), or the
 * request prefers identity (a q for identity, or '*' standing for it,
 * higher than every variant's). */
int http_coding_choose(const struct http_request *req, const struct http_precompressed *p, unsigned available);

#endif
