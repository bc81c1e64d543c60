/* mime: Content-Type by file extension, from a mime.types file with a
 * built-in fallback. */
#ifndef DROVER_HTTP_MIME_H
#define DROVER_HTTP_MIME_H

struct http_mime;
/* Load path (missing, or not a regular file: only the built-in table);
 * text types get "; charset=CHARSET" unless charset is NULL. NULL on ENOMEM. */
struct http_mime *http_mime_load(const char *path, const char *charset);
/* Release a table from http_mime_load() (NULL is fine). */
void http_mime_free(struct http_mime *m);
/* Content-Type for a file name ("text/html; charset=utf-8"), or fallback. */
const char *http_mime_lookup(const struct http_mime *m, const char *filename, const char *fallback);

#endif
