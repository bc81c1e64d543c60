/* fields: HTTP-dates, entity-tags and byte ranges (RFC 9110 §5.6.7, §8.8,
 * §14): formatting what a file response sends and parsing what a request
 * asks. Pure functions, exposed for unit tests. */
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
/* Parse an HTTP-date (IMF-fixdate, and the obsolete RFC 850/asctime forms); 0 or -EINVAL. */
int http_date_parse(const char *s, size_t len, time_t *out);
/* If-None-Match against etag (weak comparison, "*" matches). */
bool http_etag_matches(const char *header, size_t len, const char *etag);

enum http_range_result {
	RANGE_NONE = 0,      /* no usable Range: send the whole file (200) */
	RANGE_OK,            /* one satisfiable range (206) */
	RANGE_UNSATISFIABLE, /* 416 */
};
/* Parse a Range header value for a file of size bytes (RFC 9110 §14.2);
 * multiple ranges, and syntax we ignore, answer RANGE_NONE. */
enum http_range_result http_range_parse(const char *header, size_t len, uint64_t size,
					uint64_t *first, uint64_t *last);

#endif
