/* http file: the static-file handler, GET/HEAD of the document root. A
 * path resolves through path.c (the only place that opens under the root,
 * whose fd root.c keeps current); a plain request (no Range, no If-*) of a
 * cached file is answered from the open-file cache (cache.c) without a
 * system call. This file decides what to answer:
 *
 *   - the preconditions of RFC 9110 §13.2.2, in its order: If-Match (412),
 *     If-Unmodified-Since (412), If-None-Match (304), If-Modified-Since
 *     (304), then If-Range for the Range;
 *   - the validators, with Last-Modified (and the ETag's time) never later
 *     than Date (§8.8.2.1, fields.c), so a file dated in the future cannot
 *     make a client keep a copy that is later rewritten;
 *   - Range: one range is a 206 with Content-Range, several a 206
 *     multipart/byteranges (§14.6, a body source of response.c); 416 when
 *     none is satisfiable. Range is for GET only (§14.2): HEAD gets the 200
 *     head;
 *   - 301 for a directory without its '/'; a directory to list is declined
 *     (the listing handler's);
 *   - the body as a file range, or the cache entry's bytes or fd, pinned
 *     until the response is sent; the protocol version decides how to send
 *     it (HTTP/1.1: copied behind the head when small, else sendfile(2)).
 *
 * Precompressed variants ([http] precompressed): a file a.css may have
 * a.css.br, a.css.gz, a.css.zst beside it. The representation is chosen
 * first (coding.c, by Accept-Encoding; a variant older than the file is
 * not one), and everything above is then about it: its own strong ETag
 * (the file's form with the coding inside the quotes, "...-gz"), its
 * Last-Modified, its bytes for Range (one range only: several would make
 * a multipart body that is not itself gzip; the whole variant is sent).
 * Content-Type stays the file's. Every answer about a file that has a
 * variant carries Vary: Accept-Encoding (identity, 304, 206, 412, 416).
 * From the cache, a file's entry says which variants it has (none: the
 * plain answer, as before), and a chosen variant has its own entry.
 *
 * [cache NAME] sections add Cache-Control to the 200, 206 and 304 of a
 * file (config.c chooses the line; a cache entry holds it).
 *
 * [http] error_page_403/404/500: http_file_error_page() puts a file of
 * the root in place of the built-in text of those errors, keeping the
 * status; a page that cannot be opened leaves the built-in one (it is
 * opened directly, never routed, so nothing can loop).
 *
 * Repeated fields: If-None-Match and If-Match are lists, so every line
 * counts (§5.3). A singleton sent twice (If-Modified-Since,
 * If-Unmodified-Since, If-Range) is invalid and ignored as such
 * (§13.1.3, §13.1.4); an ignored If-Range means the Range is too, so the
 * answer is the whole file, which is always safe. */
#include "proto/http/file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/http/cache.h"
#include "proto/http/coding.h"
#include "proto/http/fields.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"
#include "proto/http/response.h"
#include "proto/http/root.h"

enum http_precondition {
	HTTP_PRE_PROCEED, /* answer the request */
	HTTP_PRE_304,
	HTTP_PRE_412,
};

/* How a list field compares with the validator. */
enum http_list_result {
	HTTP_LIST_ABSENT, /* no line of it with a value */
	HTTP_LIST_NO_MATCH,
	HTTP_LIST_MATCH,
};

/* ------------------------------------------------------------ preconditions */

/* Every line of the list field name against etag. */
static enum http_list_result http_file_list(const struct http_request *req, const char *name,
					    const char *etag, enum http_etag_cmp cmp)
{
	enum http_list_result res = HTTP_LIST_ABSENT;
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->value.len == 0 || !http_str_eq_ci(h->name, name))
			continue;
		if (http_etag_matches(h->value.p, h->value.len, etag, cmp))
			return HTTP_LIST_MATCH;
		res = HTTP_LIST_NO_MATCH;
	}
	return res;
}

/* A singleton date field: false if absent, sent twice, or not a date. */
static bool http_file_date_field(const struct http_request *req, struct http_str v, unsigned repeated_bit,
				 time_t *t)
{
	if (v.len == 0 || (req->repeated & repeated_bit))
		return false;
	return http_date_parse(v.p, v.len, t) == 0;
}

/* RFC 9110 §13.2.2 steps 1-4 for GET/HEAD of an existing file. */
static enum http_precondition http_file_preconditions(const struct http_request *req,
						      const struct http_validators *v)
{
	time_t t;
	enum http_list_result im = http_file_list(req, "if-match", v->etag, HTTP_ETAG_STRONG);
	if (im == HTTP_LIST_NO_MATCH)
		return HTTP_PRE_412; /* §13.1.1; "*" matches any existing file */
	if (im == HTTP_LIST_ABSENT &&
	    http_file_date_field(req, req->if_unmodified_since, HTTP_REPEATED_IF_UNMODIFIED_SINCE, &t) &&
	    v->mtime > t)
		return HTTP_PRE_412; /* §13.1.4 */
	enum http_list_result inm = http_file_list(req, "if-none-match", v->etag, HTTP_ETAG_WEAK);
	if (inm == HTTP_LIST_MATCH)
		return HTTP_PRE_304; /* §13.1.2: GET and HEAD */
	if (inm == HTTP_LIST_ABSENT &&
	    http_file_date_field(req, req->if_modified_since, HTTP_REPEATED_IF_MODIFIED_SINCE, &t) &&
	    v->mtime <= t)
		return HTTP_PRE_304; /* §13.1.3 */
	return HTTP_PRE_PROCEED;
}

/* If-Range (RFC 9110 §13.1.5): an entity-tag must match strongly and
 * exactly; a date must equal Last-Modified. Otherwise ignore Range. */
static bool http_if_range_ok(const struct http_request *req, const struct http_validators *val)
{
	struct http_str v = req->if_range;
	if (v.len == 0)
		return true;
	if (req->repeated & HTTP_REPEATED_IF_RANGE)
		return false;
	if (v.p[0] == '"' || (v.len >= 2 && v.p[0] == 'W' && v.p[1] == '/'))
		return v.p[0] == '"' && v.len == strlen(val->etag) && memcmp(v.p, val->etag, v.len) == 0;
	time_t t;
	if (http_date_parse(v.p, v.len, &t) < 0)
		return false;
	return t == val->mtime;
}

static void http_file_close(struct http_path_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* The 301 that adds the trailing slash to a directory (RFC 9110 §15.4.2). */
static void http_file_redirect(const struct http_ask *ask, struct http_response *resp)
{
	char enc[HTTP_PATH_MAX * 3 + 2];
	if (!http_path_encode(ask->path, enc, sizeof(enc) - 1)) {
		http_response_error(resp, 414);
		return;
	}
	size_t n = strlen(enc);
	if (n == 0 || enc[n - 1] != '/') {
		enc[n++] = '/';
		enc[n] = '\0';
	}
	static const char body[] = "301 Moved Permanently\n";
	const struct http_str q = ask->req->query;
	resp->status = 301;
	http_fieldf(&resp->fields, "Location", "%s%s%.*s", enc, q.len ? "?" : "", (int)q.len, q.len ? q.p : "");
	http_field(&resp->fields, "Content-Type", "text/plain; charset=utf-8");
	http_src_mem(&resp->body, body, sizeof(body) - 1, NULL, NULL);
}

/* The lines a file's answers add beside its own fields: Content-Encoding
 * of a variant, Vary when the file has variants, its Cache-Control. */
struct http_file_extra {
	char lines[1024];
	size_t len;         /* all of them: [0, len) (200, 206) */
	size_t vary_at;     /* Vary alone: [vary_at, vary_end) (412, 416); */
	size_t vary_end;    /* Vary and Cache-Control: [vary_at, len) (304) */
};

static void http_file_extra_of(struct http_file_extra *x, int coding, unsigned variants, const char *cc,
			       size_t cc_len)
{
	int n = snprintf(x->lines, sizeof(x->lines), "%s%s%s", coding != HTTP_CODING_IDENTITY ? "Content-Encoding: " : "",
			 coding != HTTP_CODING_IDENTITY ? http_coding_name(coding) : "",
			 coding != HTTP_CODING_IDENTITY ? "\r\n" : "");
	x->vary_at = n > 0 ? (size_t)n : 0;
	n = snprintf(x->lines + x->vary_at, sizeof(x->lines) - x->vary_at, "%s",
		     variants ? "Vary: Accept-Encoding\r\n" : "");
	x->vary_end = x->vary_at + (n > 0 ? (size_t)n : 0);
	x->len = x->vary_end;
	if (cc && cc_len <= sizeof(x->lines) - x->len) {
		memcpy(x->lines + x->len, cc, cc_len);
		x->len += cc_len;
	}
}

static void http_file_304(struct http_response *resp, const struct http_validators *v,
			  const struct http_file_extra *x)
{
	resp->status = 304;
	resp->no_length = true;
	http_field(&resp->fields, "ETag", v->etag);
	http_field(&resp->fields, "Last-Modified", v->lastmod);
	http_field_lines(&resp->fields, x->lines + x->vary_at, x->len - x->vary_at);
}

static void http_file_416(struct http_response *resp, uint64_t size)
{
	static const char body[] = "416 Range Not Satisfiable\n";
	http_response_text(resp, 416, "text/plain; charset=utf-8", body, sizeof(body) - 1);
	http_fieldf(&resp->fields, "Content-Range", "bytes */%" PRIu64, size);
}

/* Content-Type, ETag, Last-Modified, Accept-Ranges of a file, then x's. */
static void http_file_fields(struct http_response *resp, const char *ctype, const struct http_validators *v,
			     const struct http_file_extra *x)
{
	char lines[512];
	size_t n = http_file_fields_format(lines, sizeof(lines), ctype, v);
	if (n == 0)
		resp->fields.overflow = true;
	http_field_lines(&resp->fields, lines, n);
	http_field_lines(&resp->fields, x->lines, x->len);
}

/* 206 multipart/byteranges for the ranges of f (RFC 9110 §14.6). */
static void http_file_multipart(struct http_response *resp, struct http_path_file *f,
				const struct http_validators *v, const struct http_ranges *rs, const char *ctype,
				const struct http_file_extra *x)
{
	if (http_src_parts(&resp->body, f->fd, rs, (uint64_t)f->st.st_size, ctype) < 0) {
		http_response_error(resp, 500);
		return;
	}
	f->fd = -1; /* the body's now */
	char type[64];
	snprintf(type, sizeof(type), "multipart/byteranges; boundary=%s", http_src_boundary(&resp->body));
	resp->status = 206;
	http_file_fields(resp, type, v, x);
}

/* 200 or a single-range 206. */
static void http_file_single(struct http_response *resp, struct http_path_file *f,
			     const struct http_validators *v, const struct http_range *range, const char *ctype,
			     const struct http_file_extra *x)
{
	uint64_t size = (uint64_t)f->st.st_size;
	uint64_t first = range ? range->first : 0;
	uint64_t length = range ? range->last - range->first + 1 : size;
	resp->status = range ? 206 : 200;
	http_file_fields(resp, ctype, v, x);
	if (range)
		http_fieldf(&resp->fields, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, range->first,
			    range->last, size);
	http_src_file(&resp->body, f->fd, first, length, NULL, NULL);
	f->fd = -1; /* the body's now */
}

/* The representation of f to send: f itself, or the variant chosen by
 * Accept-Encoding, which then takes f's place (fd, stat; the name stays
 * the file's, for its type). Which variants exist, in *variants. */
static int http_file_choose(const struct http_ask *ask, int root_fd, struct http_path_file *f,
			    unsigned *variants)
{
	const struct http_precompressed *pc = &ask->site->http->precompressed;
	struct http_path_file v[HTTP_CODINGS];
	unsigned found = 0;
	/* The cache's entry for this very file, fresh, already knows which
	 * variants it has: only the chosen one is opened (a revalidation
	 * costs one open more, not one per coding). */
	if (pc->n && http_cache_known_variants(ask->path, http_root_generation(), ask->now_ms, &f->st, &found)) {
		*variants = found;
		int c = http_coding_choose(ask->req, pc, found);
		if (c == HTTP_CODING_IDENTITY)
			return c;
		if (http_variant_open(root_fd, ask->path, &ask->site->popts, c, &f->st, &v[c]) == 0) {
			close(f->fd);
			f->fd = v[c].fd;
			f->st = v[c].st;
			return c;
		}
		found = 0; /* gone meanwhile: look at them all */
	}
	for (unsigned i = 0; i < pc->n; i++) {
		int c = pc->order[i];
		if (http_variant_open(root_fd, ask->path, &ask->site->popts, c, &f->st, &v[c]) == 0)
			found |= 1u << c;
	}
	*variants = found;
	int chosen = http_coding_choose(ask->req, pc, found);
	for (int c = 0; c < HTTP_CODINGS; c++) {
		if (!(found & (1u << c)))
			continue;
		if (c != chosen) {
			close(v[c].fd);
			continue;
		}
		close(f->fd);
		f->fd = v[c].fd;
		f->st = v[c].st;
	}
	return chosen;
}

/* GET/HEAD of a regular file: the representation, its validators,
 * preconditions, Range, body. */
static void http_file_send(const struct http_ask *ask, struct http_response *resp, struct http_path_file *f,
			   int root_fd)
{
	const struct http_request *req = ask->req;
	size_t cc_len;
	const char *cc = http_cache_control(ask->site->http, ask->path, f->type_name, &cc_len);
	unsigned variants = 0;
	int coding = http_file_choose(ask, root_fd, f, &variants);
	struct http_file_extra x;
	http_file_extra_of(&x, coding, variants, cc, cc_len);
	time_t now;
	http_date_now(&now);
	struct http_validators v;
	http_validators_of(&f->st, now, &v);
	if (coding != HTTP_CODING_IDENTITY)
		http_coding_etag(v.etag, sizeof(v.etag), coding);

	switch (http_file_preconditions(req, &v)) {
	case HTTP_PRE_412:
		http_response_error(resp, 412);
		http_field_lines(&resp->fields, x.lines + x.vary_at, x.vary_end - x.vary_at);
		return;
	case HTTP_PRE_304:
		http_file_304(resp, &v, &x);
		return;
	case HTTP_PRE_PROCEED:
		break;
	}
	struct http_ranges rs;
	enum http_range_result rr = RANGE_NONE;
	if (req->method == HTTP_METHOD_GET && req->range.len && http_if_range_ok(req, &v))
		rr = http_range_parse(req->range.p, req->range.len, (uint64_t)f->st.st_size,
				      ask->site->http->max_ranges, &rs);
	if (rr == RANGE_UNSATISFIABLE) {
		http_file_416(resp, (uint64_t)f->st.st_size);
		http_field_lines(&resp->fields, x.lines + x.vary_at, x.vary_end - x.vary_at);
		return;
	}
	if (rr == RANGE_OK && rs.n > 1 && coding != HTTP_CODING_IDENTITY)
		rr = RANGE_NONE; /* see the top: the whole variant */
	const char *ctype = http_mime_lookup(ask->site->mime, f->type_name, ask->site->http->default_type);
	if (rr == RANGE_OK && rs.n > 1)
		http_file_multipart(resp, f, &v, &rs, ctype, &x);
	else
		http_file_single(resp, f, &v, rr == RANGE_OK ? &rs.r[0] : NULL, ctype, &x);
}

/* ------------------------------------------------------------ error pages */

void http_file_error_page(const struct http_ask *ask, struct http_response *resp)
{
	const char *page = http_error_page(ask->site->http, resp->status);
	if (!page)
		return;
	int root_fd = http_root_fd(ask->now_ms);
	if (root_fd < 0)
		return;
	struct http_path_file f;
	if (http_path_open(root_fd, page, &ask->site->popts, &f) < 0 || f.kind != HTTP_PATH_FILE) {
		http_file_close(&f);
		return; /* the built-in page stays */
	}
	/* The error's status and connection handling stay; its text goes. */
	http_src_release(&resp->body);
	resp->fields.lent = NULL;
	resp->fields.lent_len = 0;
	resp->fields.len = 0;
	resp->fields.overflow = false;
	resp->no_length = false;
	resp->length_in_fields = false;
	http_field(&resp->fields, "Content-Type",
		   http_mime_lookup(ask->site->mime, f.type_name, ask->site->http->default_type));
	http_src_file(&resp->body, f.fd, 0, (uint64_t)f.st.st_size, NULL, NULL);
	f.fd = -1; /* the body's now */
}

/* ------------------------------------------------------------ the cache */

/* Whether a request may be answered from the cache: no header that makes
 * the answer depend on more than the file (Range, and every If-*: the
 * preconditions of RFC 9110 §13 are answered from the file system). */
static bool http_file_plain(const struct http_request *req)
{
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_str *n = &req->headers[i].name;
		if (n->len >= 3 && (n->p[0] | 0x20) == 'i' && (n->p[1] | 0x20) == 'f' && n->p[2] == '-')
			return false;
		if (n->len == 5 && http_str_eq_ci(*n, "range"))
			return false;
	}
	return true;
}

/* A body sent from a cache entry ends: the entry may go. */
static void http_file_unpin(struct http_body_src *src)
{
	http_cache_unpin(src->owner);
}

/* The 200 for a cached file: its prebuilt fields lent, its bytes or fd
 * pinned until the response is sent. */
static void http_file_cached(struct http_response *resp, const struct http_cached *e)
{
	uint64_t size = (uint64_t)e->st.st_size;
	resp->status = 200;
	http_fields_lend(&resp->fields, e->fields, e->fields_len);
	resp->length_in_fields = true;
	http_cache_pin(e);
	if (e->body)
		http_src_mem(&resp->body, e->body, (size_t)size, http_file_unpin, (void *)e);
	else
		http_src_file(&resp->body, e->fd, 0, size, http_file_unpin, (void *)e);
}

/* ------------------------------------------------------------ the handler */

enum http_handled http_file_answer(const struct http_ask *ask, struct http_response *resp)
{
	int root_fd = http_root_fd(ask->now_ms);
	if (root_fd < 0) {
		http_response_error(resp, 500);
		return HTTP_ANSWERED;
	}
	if (http_file_plain(ask->req)) {
		const struct http_cached *e = http_cache_lookup(ask->path, root_fd, http_root_generation(), ask->now_ms);
		if (e && e->variants) {
			/* The file has variants (its fields carry Vary): which one? */
			int c = http_coding_choose(ask->req, &ask->site->http->precompressed, e->variants);
			if (c != HTTP_CODING_IDENTITY)
				e = http_cache_variant(e, ask->path, c, root_fd, ask->now_ms);
		}
		if (e) {
			http_file_cached(resp, e);
			return HTTP_ANSWERED;
		}
	}
	struct http_path_file f;
	if (http_path_open(root_fd, ask->path, &ask->site->popts, &f) == 0) {
		if (f.kind == HTTP_PATH_LISTING) {
			http_file_close(&f);
			return HTTP_DECLINED;
		}
		http_file_send(ask, resp, &f, root_fd);
		http_file_close(&f);
		return HTTP_ANSWERED;
	}
	if (f.status == 301)
		http_file_redirect(ask, resp);
	else
		http_response_error(resp, f.status);
	return HTTP_ANSWERED;
}
