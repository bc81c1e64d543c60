/* http file: GET/HEAD of the file tree: validators, conditionals, Range,
 * the trailing-slash 301, and the hand-off to a listing. */
#ifndef DROVER_HTTP_FILE_H
#define DROVER_HTTP_FILE_H

#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/http/state.h"
#include "proto/http/path.h"

/* The Content-Type of a file http_path_open() found. */
const char *http_file_type(const struct http_path_file *f);

/* Answer GET/HEAD of norm (a normalised path) from the document root. */
void http_file_respond(struct http_conn *hc, const char *norm);
/* A multipart/byteranges body: after a part's bytes are sent, queue the
 * next part's header and bytes (or the closing delimiter). false when
 * nothing is left to queue. */
bool http_file_next_part(struct http_conn *hc);
/* hc is done with its file body: close file_fd, or unpin the cache entry
 * it belongs to (file_pin). */
void http_file_release(struct http_conn *hc);
/* Release the multipart state of the response (done or aborted). */
void http_file_parts_free(struct http_conn *hc);

#endif
