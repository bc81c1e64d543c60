/* path: request path -> file under the root, safely. Decoding and
 * normalisation are pure functions, exposed for unit tests and the fuzzer. */
#ifndef DROVER_HTTP_PATH_H
#define DROVER_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Longest normalised path a request may name. */
#define HTTP_PATH_MAX 4096

/* Percent-decode and normalise a request path into out (NUL-terminated):
 * collapses "//" and ".", resolves ".." without ever going above "/",
 * rejects encoded '/' (%2f), NUL (%00), bad escapes, and a ".." that would
 * leave the root. Keeps a trailing '/'. 0, -EINVAL (-> 400), -ENAMETOOLONG (-> 414). */
int http_path_normalize(const char *in, size_t in_len, char *out, size_t out_len);
/* Whether a normalised path has a component starting with '.'. */
bool http_path_has_dotfile(const char *path);
/* Percent-encode a normalised path for a Location header or a link
 * (RFC 3986 §3.3); false if it does not fit in cap. */
bool http_path_encode(const char *in, char *out, size_t cap);

/* What a request path resolved to under the root. */
enum http_path_kind {
	HTTP_PATH_FILE = 0, /* a regular file (maybe a directory's index) */
	HTTP_PATH_LISTING,  /* a directory to list (autoindex): fd is the directory */
};

struct http_path_file {
	int fd;              /* open O_RDONLY|O_CLOEXEC after success, else -1 */
	struct stat st;
	int status;          /* 200, 301 (add '/'), 400, 403, 404, 500 */
	enum http_path_kind kind;
	char type_name[256]; /* the served file's name, for the MIME lookup */
};

struct http_path_options {
	const char *index;
	bool autoindex;
	bool follow_symlinks;
	bool dotfiles;
};

/* Open the file for a normalised path under root_fd (an O_PATH/O_DIRECTORY
 * fd of the root). Symlinks may point anywhere inside the root; one that
 * leaves it is refused (openat2 RESOLVE_BENEATH) unless follow_symlinks.
 * Dotfiles are 404 unless o->dotfiles. 0 with f->fd open (f->status 200),
 * or -errno with f->fd -1 and f->status the answer: -EISDIR (301, add the
 * '/'), -EINVAL (400), -ENOENT (404), -EACCES (403), other (500). */
int http_path_open(int root_fd, const char *norm_path, const struct http_path_options *o,
		   struct http_path_file *f);

#endif
