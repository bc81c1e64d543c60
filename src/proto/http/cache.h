/* http cache: the per-worker open-file cache. A normalised path maps to
 * what answering it needs: the file's stat, its type, its validators and
 * type as the fields a response carries (Content-Type, ETag, Last-Modified,
 * Accept-Ranges, as "Name: value\r\n" lines) and, for a small file, its
 * bytes (else an open fd to send from), so a hit costs no system call.
 * Entries are trusted for valid_ms ([http] file_cache_valid), then looked up
 * again through the same safe open as a miss (http_path_open: traversal,
 * symlink and dotfile rules), so a file replaced, rewritten, deleted or made
 * unreadable is seen within that window; a new generation of the document
 * root (root.c) drops them all. A file's entry also says which
 * precompressed variants ([http] precompressed) lie beside it, looked for
 * when the entry is (re)checked, so that "none" costs a request nothing;
 * a variant chosen is an entry of its own, under a key no request path
 * has ("gzip:/a.css"). The cache knows nothing of requests,
 * responses or connections: which requests it may answer, and how, is its
 * caller's decision (file.c). */
#ifndef DROVER_HTTP_CACHE_H
#define DROVER_HTTP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto/http/config.h"
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
	/* [http] precompressed and the [cache NAME] rules; NULL: neither. */
	const struct http_config *http;
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
	int coding;          /* HTTP_CODING_IDENTITY: the file; else a precompressed
			      * variant's (its fields carry Content-Encoding) */
	/* A file: a bit (1u << coding) per precompressed variant found
	 * beside it, not older, when it was last looked up; 0 (no variant,
	 * or precompressed = off) is cached as well, so a plain request
	 * costs no look for variants. Non-zero: the fields carry Vary. */
	unsigned variants;
	const char *cache_control; /* its [cache NAME] line, or NULL */
	size_t cache_control_len;
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
/* The variant of file (an entry http_cache_lookup() just gave for norm)
 * in coding, cached under its own key: NULL when it is gone, older than
 * the file (whole seconds), or not cacheable. file may be evicted by this
 * call; the variant is valid as a lookup's result is. */
const struct http_cached *http_cache_variant(const struct http_cached *file, const char *norm, int coding,
					      int root_fd, uint64_t now_ms);
/* What the cache knows of the variants of the file at norm, without a
 * system call: true, with them in *variants, when it holds an entry for
 * norm under root generation root_gen, checked less than valid_ms before
 * now_ms, of the very file st describes (device, inode, size, times);
 * false otherwise. Looks nothing up again and evicts nothing. */
bool http_cache_known_variants(const char *norm, uint64_t root_gen, uint64_t now_ms, const struct stat *st,
			       unsigned *variants);
/* Open the variant in coding of the file at norm (a directory's: its
 * index's, by o->index) whose stat is orig, through the same safe open as
 * the file (http_path_open). 0 with v->fd open when it is a regular file
 * not older than orig (whole seconds: tools that keep the original's time
 * may keep only its seconds); else -errno with v->fd -1. */
int http_variant_open(int root_fd, const char *norm, const struct http_path_options *o, int coding,
		      const struct stat *orig, struct http_path_file *v);

/* Keep f's fd and bytes valid past later calls (a response sent from
 * them): one unpin per pin. An entry dropped while pinned is freed at its
 * last unpin. */
void http_cache_pin(const struct http_cached *f);
void http_cache_unpin(const struct http_cached *f);

#endif
