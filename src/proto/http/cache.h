/* http cache: the per-worker open-file cache. A normalised path maps to
 * what answering it needs: the stat, the prebuilt header lines
 * (Content-Type, ETag, Last-Modified, Accept-Ranges) and, for small files,
 * the bytes themselves (else an open fd to sendfile from), so a cached hit
 * costs no system call before the send. Entries are trusted for
 * [http] file_cache_valid, then looked up again through the same safe open
 * as a miss (http_path_open: traversal, symlink and dotfile rules), so a
 * file replaced, rewritten, deleted or made unreadable is seen within that
 * window. Only plain GET/HEAD answers (no Range, no If-*) come from here;
 * everything else takes file.c's path. */
#ifndef DROVER_HTTP_CACHE_H
#define DROVER_HTTP_CACHE_H

#include <stdbool.h>

#include "proto/http/state.h"

/* Set up from http_w.cfg (a worker's start); 0 or -ENOMEM. A
 * file_cache_valid of 0 leaves the cache off. */
int http_cache_init(void);
/* Drop every entry and free the table (worker exit). */
void http_cache_done(void);
/* Drop every entry (root.c: the document root names another directory). */
void http_cache_flush(void);
/* Answer GET/HEAD of norm under root_fd from the cache, filling it on a miss. false:
 * not answered (the cache is off, the request is conditional or ranged,
 * the path is no cacheable regular file): the caller answers. */
bool http_cache_respond(struct http_conn *hc, int root_fd, const char *norm);
/* hc is done with its file body: close file_fd, or unpin the cache entry it
 * belongs to (file_pin). */
void http_file_release(struct http_conn *hc);

#endif
