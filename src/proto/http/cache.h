/* http cache: the per-worker open-file cache. A normalised path maps to
 * what answering it needs: the file's stat, its type, its validators and
 * type as the fields a response carries (Content-Type, ETag, Last-Modified,
 * Accept-Ranges, as "Name: value\r\n" lines) and, for a small file, its
 * bytes (else an open fd to send from), so a hit costs no system call.
 * Entries are trusted for valid_ms ([http] file_cache_valid), then looked up
 * again through the same safe open as a miss (http_path_open: traversal,
 * symlink and dotfile rules), so a file replaced, rewritten, deleted or made
 * unreadable is seen within that window; a new generation of the document
 * root (root.c) drops them all. The cache knows nothing of requests,
 * responses or connections: which requests it may answer, and how, is its
 * caller's decision (file.c). */
#ifndef DROVER_HTTP_CACHE_H
#define DROVER_HTTP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto/http/path.h"

struct http_mime;

/* How a worker's cache is set up. */
struct http_cache_params {
	uint64_t valid_ms;      /* [http] file_cache_valid; 0 leaves the cache off */
	size_t max_entries;     /* file_cache_entries */
	size_t max_bytes;       /* file_cache_size: all entries together */
	size_t max_file;        /* file_cache_max_file: larger files keep an fd, not their bytes */
	struct http_path_options popts;
	const struct http_mime *mime;
	const char *default_type;
};

/* A cached file. Read-only; valid until the next call into the cache, or
 * while pinned. */
struct http_cached {
	int fd;              /* O_RDONLY, to send from; -1 when body holds the bytes */
	struct stat st;
	const char *type;    /* Content-Type */
	const char *fields;  /* Content-Type, ETag, Last-Modified, Accept-Ranges and
			      * Content-Length lines (a whole file's: what a cached
			      * answer is) */
	size_t fields_len;
	const char *body;    /* st.st_size bytes, or NULL: send from fd */
};

/* Set up (a worker's start); 0 or -ENOMEM. */
int http_cache_init(const struct http_cache_params *p);
/* Drop every entry and free the table (worker exit). */
void http_cache_done(void);
/* The entry for norm under root_fd, whose generation is root_gen (another
 * generation than the last lookup's drops every entry first); looked up
 * again when older than valid_ms at now_ms (loop time). NULL: the cache is
 * off, or norm is no cacheable regular file (the caller uses the file
 * system). */
const struct http_cached *http_cache_lookup(const char *norm, int root_fd, uint64_t root_gen,
					     uint64_t now_ms);
/* Keep f's fd and bytes valid past later calls (a response sent from
 * them): one unpin per pin. An entry dropped while pinned is freed at its
 * last unpin. */
void http_cache_pin(const struct http_cached *f);
void http_cache_unpin(const struct http_cached *f);

#endif
