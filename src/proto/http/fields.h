/* fields: HTTP-dates, entity-tags and byte ranges (RFC 9110 §5.6.7, §8.8,
 * §14): formatting what a file response sends (its validators and the
 * fields that describe it) and parsing what a request asks. Pure
 * functions, exposed for unit tests. */
#ifndef DROVER_HTTP_FIELDS_H
#define DROVER_HTTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* Strong-enough validator from size and mtime: "\"<hex size>-<hex mtime_ns>\"". */
void http_etag_format(const struct stat *st, char *out, size_t out_len);
/* IMF-fixdate (RFC 9110 §5.6.7) for t. */
void http_date_format(time_t t, char *out, size_t out_len);
/* The validators of a file (RFC 9110 §8.8) as a response dated now
 * carries them: a modification time in the future is sent as now. */
struct http_validators {
	time_t mtime; /* Last-Modified as a time */
	char etag[96];
	char lastmod[64];
};
void http_validators_of(const struct stat *st, time_t now, struct http_validators *v);
/* The fields describing a file (Content-Type: type, ETag, Last-Modified,
 * Accept-Ranges: bytes) as "Name: value\r\n" lines into out; their length,
 * or 0 when they do not fit in cap. */
size_t http_file_fields_format(char *out, size_t cap, const char *type, const struct http_validators *v);
/* Parse an HTTP-date (IMF-fixdate, and the obsolete RFC 850/asctime forms); 0 or -EINVAL. */
int http_date_parse(const char *s, size_t len, time_t *out);
/* How two entity-tags are compared (RFC 9110 §8.8.3.2). */
enum http_etag_cmp {
	HTTP_ETAG_WEAK,   /* If-None-Match: the opaque-tags are equal */
	HTTP_ETAG_STRONG, /* If-Match: and neither is weak */
};
/* Whether a list of entity-tags (a field line's value) matches etag;
 * "*" matches any. A malformed list matches nothing. */
bool http_etag_matches(const char *header, size_t len, const char *etag, enum http_etag_cmp cmp);

enum http_range_result {
	RANGE_NONE = 0,      /* no usable Range: send the whole file (200) */
	RANGE_OK,            /* one or more satisfiable ranges (206) */
	RANGE_UNSATISFIABLE, /* 416 */
};

/* Ceiling of [http] max_ranges. */
#define HTTP_RANGES_MAX 100

/* Bytes first..last (inclusive) of the representation. */
struct http_range {
	uint64_t first, last;
};

struct http_ranges {
	size_t n;
	struct http_range r[HTTP_RANGES_MAX];
};

/* Parse a Range header value for a file of size bytes (RFC 9110 §14.1,
 * §14.2) into out: the satisfiable ranges, sorted, overlapping and adjacent
 * ones merged. RANGE_NONE for syntax we ignore, more than max_ranges specs,
 * ranges adding up to more than the file, or a suffix range of an empty
 * file (all of it is nothing: 200). */
enum http_range_result http_range_parse(const char *header, size_t len, uint64_t size,
					unsigned max_ranges, struct http_ranges *out);

/* v in decimal into out (no NUL): a length or a range bound; its length. */
size_t http_u64_dec(uint64_t v, char out[static 20]);

#endif
