/* static: map a request path to a file under the root, safely, and compute
 * what a response needs (type, validators, range). Pure functions are
 * exposed for unit tests. */
#ifndef DROVER_STATIC_H
#define DROVER_STATIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* Percent-decode and normalise a request path into out (NUL-terminated):
 * collapses "//" and ".", resolves ".." without ever going above "/",
 * rejects encoded '/' (%2f), NUL (%00), bad escapes, and a ".." that would
 * leave the root. Keeps a trailing '/'. 0, -EINVAL (-> 400), -ENAMETOOLONG (-> 414). */
int static_normalize_path(const char *in, size_t in_len, char *out, size_t out_len);
/* Whether a normalised path has a component starting with '.'. */
bool static_path_has_dotfile(const char *path);

/* MIME types loaded from a mime.types file, with a built-in fallback. */
struct static_mime;
/* Load path (missing file: only the built-in table); NULL on ENOMEM. */
struct static_mime *static_mime_load(const char *path);
void static_mime_free(struct static_mime *m);
/* Content-Type for a file name ("text/html; charset=utf-8"), or fallback. */
const char *static_mime_lookup(const struct static_mime *m, const char *filename, const char *fallback);

/* Strong-enough validator from size and mtime: "\"<hex size>-<hex mtime_ns>\"". */
void static_etag(const struct stat *st, char *out, size_t out_len);
/* IMF-fixdate (RFC 9110 §5.6.7) for t. */
void static_http_date(time_t t, char *out, size_t out_len);
/* Parse an HTTP-date (IMF-fixdate, and the obsolete RFC 850/asctime forms); 0 or -EINVAL. */
int static_parse_http_date(const char *s, size_t len, time_t *out);
/* If-None-Match against etag (weak comparison, "*" matches). */
bool static_etag_matches(const char *header, size_t len, const char *etag);

enum static_range_result {
	RANGE_NONE = 0,      /* no usable Range: send the whole file (200) */
	RANGE_OK,            /* one satisfiable range (206) */
	RANGE_UNSATISFIABLE, /* 416 */
};
/* Parse a Range header value for a file of size bytes (RFC 9110 §14.2);
 * multiple ranges, and syntax we ignore, answer RANGE_NONE. */
enum static_range_result static_parse_range(const char *header, size_t len, uint64_t size,
					    uint64_t *first, uint64_t *last);

/* Outcome of resolving a request path against the root. */
struct static_file {
	int fd;              /* open O_RDONLY|O_CLOEXEC when status == 200 */
	struct stat st;
	int status;          /* 200, 301 (add '/'), 403, 404, 400, 500 */
	bool directory_listing; /* status 200 on a directory with autoindex: fd is the directory */
	char type_name[256]; /* the served file's name, for the MIME lookup */
};

struct static_options {
	const char *index;
	bool autoindex;
	bool follow_symlinks;
	bool dotfiles;
};

/* Open the file for a normalised path under root_fd (an O_PATH/O_DIRECTORY fd
 * of the root). Symlinks may point anywhere inside the root; one that leaves
 * it is refused (openat2 RESOLVE_BENEATH) unless follow_symlinks. Dotfiles
 * are 404 unless o->dotfiles. Fills f; returns f->status. */
int static_open(int root_fd, const char *norm_path, const struct static_options *o, struct static_file *f);

#endif
