/* http file: responses from the document root. A path resolves through
 * path.c (the only place that opens under the root, whose fd root.c keeps
 * current); this file decides what to send:
 *
 *   - the preconditions of RFC 9110 §13.2.2, in its order: If-Match (412),
 *     If-Unmodified-Since (412), If-None-Match (304), If-Modified-Since
 *     (304), then If-Range for the Range;
 *   - the validators, with Last-Modified (and the ETag's time) never later
 *     than Date (§8.8.2.1), so a file dated in the future cannot make a
 *     client keep a copy that is later rewritten;
 *   - Range: one range is a 206 with Content-Range, several a 206
 *     multipart/byteranges (§14.6) whose parts are queued one at a time
 *     while conn.c sends them (http_file_next_part); 416 when none is
 *     satisfiable. Range is for GET only (§14.2): HEAD gets the 200 head;
 *   - 301 for a directory without its '/';
 *   - the body, copied into the output buffer with the header block (small
 *     files) or left to sendfile(2) in conn.c.
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

#include "core/loop.h"
#include "proto/http/cache.h"
#include "proto/http/fields.h"
#include "proto/http/listing.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"
#include "proto/http/response.h"
#include "proto/http/root.h"

#define HTTP_INLINE_BODY_MAX (16 * 1024) /* bodies up to this go out with the header block */

/* The parts of a multipart/byteranges body still to be queued. */
struct http_multipart {
	struct http_ranges ranges;
	size_t next;      /* the part whose header is queued next */
	uint64_t size;    /* of the file, for Content-Range */
	bool ended;       /* the closing delimiter is queued */
	char boundary[24];
	char ctype[160];  /* of each part */
};

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

static void http_file_close(struct http_path_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* The 301 that adds the trailing slash to a directory (RFC 9110 §15.4.2). */
static void http_file_redirect(struct http_conn *hc, const char *norm)
{
	char enc[HTTP_PATH_MAX * 3 + 2];
	if (!http_path_encode(norm, enc, sizeof(enc) - 1)) {
		http_respond_error(hc, 414, HTTP_PERSIST);
		return;
	}
	size_t n = strlen(enc);
	if (n == 0 || enc[n - 1] != '/') {
		enc[n++] = '/';
		enc[n] = '\0';
	}
	static const char body[] = "301 Moved Permanently\n";
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, 301, HTTP_PERSIST);
	http_out_printf(hc, "Location: %s%s%.*s\r\nContent-Type: text/plain; charset=utf-8\r\n", enc,
			hc->req.query.len ? "?" : "", (int)hc->req.query.len,
			hc->req.query.len ? hc->req.query.p : "");
	http_resp_end_head(hc, sizeof(body) - 1);
	if (!http_has(hc, HC_HEAD_ONLY))
		http_out_add(hc, body, sizeof(body) - 1);
	http_resp_check_overflow(hc, mark, HTTP_PERSIST);
	hc->state = HTTP_SEND;
}

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

static void http_file_304(struct http_conn *hc, const struct http_validators *v)
{
	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, 304, HTTP_PERSIST);
	http_out_printf(hc, "ETag: %s\r\nLast-Modified: %s\r\n", v->etag, v->lastmod);
	http_resp_end_head(hc, HTTP_NO_LENGTH);
	http_resp_check_overflow(hc, mark, HTTP_PERSIST);
	hc->state = HTTP_SEND;
}

static void http_file_416(struct http_conn *hc, uint64_t size)
{
	char extra[96];
	snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", size);
	static const char body[] = "416 Range Not Satisfiable\n";
	http_respond_small(hc, 416, HTTP_PERSIST, "text/plain; charset=utf-8", extra, body,
			   sizeof(body) - 1);
}

/* ------------------------------------------------------------ multipart */

/* The delimiter and header of part i (i == n: the closing delimiter),
 * into out (cap bytes, or NULL to measure); its length. */
static size_t http_multipart_head(const struct http_multipart *mp, size_t i, char *out, size_t cap)
{
	int n;
	if (i == mp->ranges.n) {
		n = snprintf(out, cap, "\r\n--%s--\r\n", mp->boundary);
	} else {
		const struct http_range *r = &mp->ranges.r[i];
		n = snprintf(out, cap,
			     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %" PRIu64 "-%" PRIu64
			     "/%" PRIu64 "\r\n\r\n",
			     mp->boundary, mp->ctype, r->first, r->last, mp->size);
	}
	return n > 0 ? (size_t)n : 0;
}

/* The whole multipart body's length (Content-Length). */
static uint64_t http_multipart_length(const struct http_multipart *mp)
{
	uint64_t total = 0;
	for (size_t i = 0; i <= mp->ranges.n; i++) {
		total += http_multipart_head(mp, i, NULL, 0);
		if (i < mp->ranges.n)
			total += mp->ranges.r[i].last - mp->ranges.r[i].first + 1;
	}
	return total;
}

/* A boundary that the file's bytes are not going to contain by accident
 * (RFC 2046 §5.1.1): 64 bits that differ per response and per worker. */
static void http_multipart_boundary(char *out, size_t cap)
{
	static uint64_t state;
	if (state == 0)
		state = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ULL;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	snprintf(out, cap, "%016" PRIx64, state);
}

bool http_file_next_part(struct http_conn *hc)
{
	struct http_multipart *mp = hc->parts;
	if (!mp || mp->ended)
		return false;
	char head[512];
	size_t n = http_multipart_head(mp, mp->next, head, sizeof(head));
	http_out_add(hc, head, n);
	if (mp->next == mp->ranges.n) {
		mp->ended = true;
		http_file_release(hc);
		return true;
	}
	const struct http_range *r = &mp->ranges.r[mp->next++];
	hc->file_off = (off_t)r->first;
	hc->file_left = r->last - r->first + 1;
	return true;
}

void http_file_parts_free(struct http_conn *hc)
{
	free(hc->parts);
	hc->parts = NULL;
}

/* 206 multipart/byteranges for the ranges of f (RFC 9110 §14.6). */
static void http_file_multipart(struct http_conn *hc, struct http_path_file *f,
				const struct http_validators *v, const struct http_ranges *rs,
				const char *ctype)
{
	struct http_multipart *mp = calloc(1, sizeof(*mp));
	if (!mp) {
		http_file_close(f);
		http_respond_error(hc, 500, HTTP_PERSIST);
		return;
	}
	mp->ranges = *rs;
	mp->size = (uint64_t)f->st.st_size;
	snprintf(mp->ctype, sizeof(mp->ctype), "%s", ctype);
	http_multipart_boundary(mp->boundary, sizeof(mp->boundary));

	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, 206, HTTP_PERSIST);
	http_out_printf(hc,
			"Content-Type: multipart/byteranges; boundary=%s\r\nETag: %s\r\nLast-Modified: %s\r\n"
			"Accept-Ranges: bytes\r\n",
			mp->boundary, v->etag, v->lastmod);
	http_resp_end_head(hc, http_multipart_length(mp));
	hc->state = HTTP_SEND;
	if (http_has(hc, HC_OUT_OVERFLOW)) {
		free(mp);
		http_file_close(f);
		http_resp_check_overflow(hc, mark, HTTP_PERSIST);
		return;
	}
	hc->parts = mp;
	hc->file_fd = f->fd;
	f->fd = -1;
	http_file_next_part(hc); /* the first part's header rides with the head */
}

/* ------------------------------------------------------------ bodies */

/* Copy length bytes at first of f into the output buffer behind the header
 * block (which starts at mark): small bodies ride with it in one write.
 * A file that changed under us cannot keep the promised length: 500. */
static void http_file_inline(struct http_conn *hc, struct http_path_file *f, uint64_t first,
			     uint64_t length, size_t mark)
{
	conn_buf_compact(&hc->out);
	size_t got = 0;
	while (got < length) {
		ssize_t r = pread(f->fd, hc->out.data + hc->out.end + got, length - got,
				  (off_t)(first + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	http_file_close(f);
	if (got < length) {
		hc->out.end = hc->out.start + mark;
		http_respond_error(hc, 500, HTTP_CLOSE);
		return;
	}
	hc->out.end += length;
}

/* 200 or a single-range 206: the head, then the body inline or by sendfile. */
static void http_file_single(struct http_conn *hc, struct http_path_file *f,
			     const struct http_validators *v, const struct http_range *range,
			     const char *ctype)
{
	uint64_t size = (uint64_t)f->st.st_size;
	uint64_t first = range ? range->first : 0;
	uint64_t length = range ? range->last - range->first + 1 : size;

	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, range ? 206 : 200, HTTP_PERSIST);
	http_out_printf(hc, "Content-Type: %s\r\nETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
			ctype, v->etag, v->lastmod);
	if (range)
		http_out_printf(hc, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
				range->first, range->last, size);
	http_resp_end_head(hc, length);
	hc->state = HTTP_SEND;
	if (http_has(hc, HC_OUT_OVERFLOW)) {
		http_file_close(f);
		http_resp_check_overflow(hc, mark, HTTP_PERSIST);
		return;
	}
	if (http_has(hc, HC_HEAD_ONLY) || length == 0) {
		http_file_close(f);
		return;
	}
	if (length <= HTTP_INLINE_BODY_MAX && conn_buf_room(&hc->out) >= length) {
		http_file_inline(hc, f, first, length, mark);
		return;
	}
	hc->file_fd = f->fd;
	f->fd = -1;
	hc->file_off = (off_t)first;
	hc->file_left = length;
}

/* GET/HEAD of a regular file: validators, preconditions, Range, body. */
static void http_file_send(struct http_conn *hc, struct http_path_file *f)
{
	const struct http_request *req = &hc->req;
	time_t now;
	http_date_now(&now);
	struct http_validators v;
	http_validators_of(&f->st, now, &v);

	switch (http_file_preconditions(req, &v)) {
	case HTTP_PRE_412:
		http_file_close(f);
		http_respond_error(hc, 412, HTTP_PERSIST);
		return;
	case HTTP_PRE_304:
		http_file_close(f);
		http_file_304(hc, &v);
		return;
	case HTTP_PRE_PROCEED:
		break;
	}
	struct http_ranges rs;
	enum http_range_result rr = RANGE_NONE;
	if (req->method == HTTP_METHOD_GET && req->range.len && http_if_range_ok(req, &v))
		rr = http_range_parse(req->range.p, req->range.len, (uint64_t)f->st.st_size,
				      http_w.cfg->http.max_ranges, &rs);
	if (rr == RANGE_UNSATISFIABLE) {
		http_file_close(f);
		http_file_416(hc, (uint64_t)f->st.st_size);
		return;
	}
	const char *ctype = http_file_type(f);
	if (rr == RANGE_OK && rs.n > 1)
		http_file_multipart(hc, f, &v, &rs, ctype);
	else
		http_file_single(hc, f, &v, rr == RANGE_OK ? &rs.r[0] : NULL, ctype);
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

/* Queue the 200 for e. false (nothing queued) if the output buffer cannot
 * take the header block and body now. */
static bool http_file_cached(struct http_conn *hc, const struct http_cached *e)
{
	bool head = http_has(hc, HC_HEAD_ONLY);
	uint64_t size = (uint64_t)e->st.st_size;
	size_t need = e->fields_len + 512 + (e->body && !head ? (size_t)size : 0);
	if (conn_buf_room(&hc->out) < need)
		return false;
	http_resp_begin(hc, 200, HTTP_PERSIST);
	http_out_add(hc, e->fields, e->fields_len);
	http_resp_end_head(hc, size);
	hc->state = HTTP_SEND;
	if (head || size == 0)
		return true;
	if (e->body) {
		http_out_add(hc, e->body, (size_t)size);
		return true;
	}
	http_cache_pin(e);
	hc->file_pin = e;
	hc->file_fd = e->fd;
	hc->file_off = 0;
	hc->file_left = size;
	return true;
}

void http_file_release(struct http_conn *hc)
{
	if (hc->file_pin) {
		http_cache_unpin(hc->file_pin);
		hc->file_pin = NULL;
	} else if (hc->file_fd >= 0) {
		close(hc->file_fd);
	}
	hc->file_fd = -1;
}

const char *http_file_type(const struct http_path_file *f)
{
	return http_mime_lookup(http_w.mime, f->type_name, http_w.cfg->http.default_type);
}

void http_file_respond(struct http_conn *hc, const char *norm)
{
	int root_fd = http_root_fd(loop_now_ms(hc->base.loop));
	if (root_fd < 0) {
		http_respond_error(hc, 500, HTTP_PERSIST);
		return;
	}
	if (http_file_plain(&hc->req)) {
		uint64_t now = loop_now_ms(hc->base.loop);
		const struct http_cached *e = http_cache_lookup(norm, root_fd, http_root_generation(), now);
		if (e && http_file_cached(hc, e))
			return;
	}
	struct http_path_file f;
	if (http_path_open(root_fd, norm, &http_w.popts, &f) == 0) {
		if (f.kind == HTTP_PATH_LISTING)
			http_listing_respond(hc, norm, root_fd, f.fd);
		else
			http_file_send(hc, &f);
		http_file_close(&f);
		return;
	}
	if (f.status == 301) {
		http_file_redirect(hc, norm);
		return;
	}
	http_respond_error(hc, f.status, HTTP_PERSIST);
}
