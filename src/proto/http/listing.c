/* http listing: a bounded HTML listing of a directory (autoindex). Not the
 * hot path, so names and the body are built in malloc'd buffers. Dotfiles
 * are hidden unless they may be served, and symlinks that lead out of the
 * root are not even named. */
#include "proto/http/listing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/http/path.h"
#include "proto/http/root.h"

#define HTTP_LISTING_MAX (1024 * 1024) /* directory listing body */
#define HTTP_LISTING_ENTRIES 10000

/* The names of a directory, each with '/' appended for a subdirectory. */
struct http_listing_names {
	char **v;
	size_t n, cap;
	size_t total; /* entries that would be shown, kept or not */
};

static void http_listing_names_free(struct http_listing_names *ln)
{
	for (size_t i = 0; i < ln->n; i++)
		free(ln->v[i]);
	free(ln->v);
	ln->v = NULL;
	ln->n = ln->cap = 0;
}

/* Escape for HTML text and attribute values. */
static size_t http_html_escape(char *out, size_t cap, const char *s)
{
	size_t p = 0;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		}
		size_t n = rep ? strlen(rep) : 1;
		if (p + n >= cap)
			break;
		if (rep)
			memcpy(out + p, rep, n);
		else
			out[p] = *s;
		p += n;
	}
	out[p] = '\0';
	return p;
}

static int http_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the symlink name in directory norm may be shown: it resolves
 * inside the root (or follow_symlinks allows anything). */
static bool http_listing_link_ok(const struct http_site *site, int root_fd, const char *norm,
				 const char *name)
{
	if (site->popts.follow_symlinks)
		return true;
	char path[HTTP_PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s", norm, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	struct http_path_file f;
	http_path_open(root_fd, path, &site->popts, &f);
	if (f.fd >= 0)
		close(f.fd);
	return f.status != 404 && f.status != 400;
}

/* Whether entry de of d is listed; *isdir says whether it is a directory. */
static bool http_listing_shown(const struct http_site *site, int root_fd, DIR *d, const struct dirent *de,
			       const char *norm, bool *isdir)
{
	const char *nm = de->d_name;
	if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
		return false;
	if (nm[0] == '.' && !site->popts.dotfiles)
		return false;
	*isdir = de->d_type == DT_DIR;
	if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
		struct stat st;
		if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
		    !http_listing_link_ok(site, root_fd, norm, nm))
			return false; /* leads out of the root: do not even name it */
		if (fstatat(dirfd(d), nm, &st, 0) == 0)
			*isdir = S_ISDIR(st.st_mode);
	}
	return true;
}

/* Append name (+ '/' for a directory); 0 or -ENOMEM. */
static int http_listing_names_add(struct http_listing_names *ln, const char *nm, bool isdir)
{
	if (ln->n == ln->cap) {
		size_t cap = ln->cap ? 2 * ln->cap : 64;
		char **nv = realloc(ln->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		ln->v = nv;
		ln->cap = cap;
	}
	size_t len = strlen(nm);
	char *e = malloc(len + 2);
	if (!e)
		return -ENOMEM;
	memcpy(e, nm, len);
	e[len] = isdir ? '/' : '\0';
	e[len + 1] = '\0';
	ln->v[ln->n++] = e;
	return 0;
}

/* Read the shown names of dir_fd (directory norm), sorted; 0 or -errno.
 * Beyond HTTP_LISTING_ENTRIES (or when memory runs out) names are counted
 * but not kept, and the page says so (http_listing_render). */
static int http_listing_read(const struct http_site *site, int root_fd, int dir_fd, const char *norm,
			     struct http_listing_names *ln)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	struct dirent *de;
	bool keep = true;
	while ((de = readdir(d))) {
		bool isdir;
		if (!http_listing_shown(site, root_fd, d, de, norm, &isdir))
			continue;
		ln->total++;
		if (keep && (ln->n >= HTTP_LISTING_ENTRIES || http_listing_names_add(ln, de->d_name, isdir) < 0))
			keep = false;
	}
	closedir(d);
	if (ln->n)
		qsort(ln->v, ln->n, sizeof(*ln->v), http_name_cmp);
	return 0;
}

/* The HTML page for the names of directory norm, into body (cap bytes);
 * its length. The end of the page (and the note on a cut listing) always
 * has room: HTTP_LISTING_TAIL bytes are kept for it. */
#define HTTP_LISTING_TAIL 160
static size_t http_listing_render(const char *norm, const struct http_listing_names *ln, char *body,
				  size_t cap)
{
	char esc[HTTP_PATH_MAX * 6 + 1], enc[HTTP_PATH_MAX * 3 + 1];
	http_html_escape(esc, sizeof(esc), norm);
	int r = snprintf(body, cap,
			 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of %s</title></head>\n"
			 "<body><h1>Index of %s</h1><ul>\n",
			 esc, esc);
	size_t pos = r > 0 && (size_t)r < cap ? (size_t)r : 0;
	if (strcmp(norm, "/") != 0 && pos + 64 < cap)
		pos += (size_t)snprintf(body + pos, cap - pos, "<li><a href=\"../\">../</a></li>\n");
	size_t shown = 0;
	for (size_t i = 0; i < ln->n; i++) {
		char name_esc[256 * 6 + 8];
		if (!http_path_encode(ln->v[i], enc, sizeof(enc)))
			continue;
		http_html_escape(esc, sizeof(esc), enc);
		http_html_escape(name_esc, sizeof(name_esc), ln->v[i]);
		/* "./": a name with ':' must not read as a URL scheme
		 * ("javascript:..."), RFC 3986 §4.2. */
		r = snprintf(body + pos, cap - pos, "<li><a href=\"./%s\">%s</a></li>\n", esc, name_esc);
		if (r < 0 || (size_t)r + HTTP_LISTING_TAIL >= cap - pos)
			break;
		pos += (size_t)r;
		shown++;
	}
	/* Never a silent subset: say how many there are. */
	if (shown < ln->total)
		r = snprintf(body + pos, cap - pos,
			     "</ul>\n<p>Listing cut: %zu of %zu entries shown.</p></body></html>\n", shown,
			     ln->total);
	else
		r = snprintf(body + pos, cap - pos, "</ul></body></html>\n");
	if (r > 0 && (size_t)r < cap - pos)
		pos += (size_t)r;
	return pos;
}

/* The page for directory norm (open as dir_fd) of the root root_fd. */
static void http_listing_page(const struct http_site *site, const char *norm, int root_fd, int dir_fd,
			      struct http_response *resp)
{
	struct http_listing_names ln = { NULL, 0, 0, 0 };
	if (http_listing_read(site, root_fd, dir_fd, norm, &ln) < 0) {
		http_response_error(resp, 500);
		return;
	}
	char *body = malloc(HTTP_LISTING_MAX);
	size_t len = body ? http_listing_render(norm, &ln, body, HTTP_LISTING_MAX) : 0;
	http_listing_names_free(&ln);
	if (!body) {
		http_response_error(resp, 500);
		return;
	}
	resp->status = 200;
	http_field(&resp->fields, "Content-Type", "text/html; charset=utf-8");
	http_src_owned(&resp->body, body, len);
}

enum http_handled http_listing_answer(const struct http_ask *ask, struct http_response *resp)
{
	const struct http_site *site = ask->site;
	if (!site->popts.autoindex)
		return HTTP_DECLINED; /* a directory without an index is the static handler's 403 */
	int root_fd = http_root_fd(ask->now_ms);
	if (root_fd < 0)
		return HTTP_DECLINED;
	struct http_path_file f;
	if (http_path_open(root_fd, ask->path, &site->popts, &f) < 0 || f.kind != HTTP_PATH_LISTING) {
		if (f.fd >= 0)
			close(f.fd);
		return HTTP_DECLINED;
	}
	http_listing_page(site, ask->path, root_fd, f.fd, resp);
	close(f.fd);
	size_t cc_len; /* [cache NAME] by prefix: a listing has no file name */
	const char *cc = http_cache_control(site->http, ask->path, NULL, &cc_len);
	if (cc && resp->status == 200)
		http_field_lines(&resp->fields, cc, cc_len);
	return HTTP_ANSWERED;
}
