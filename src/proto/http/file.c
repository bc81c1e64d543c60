/* http file: responses from the document root. A path resolves through
 * path.c (the only place that opens under the root); this file decides
 * what to send: 304 from the validators, 206/416 from Range, 301 for a
 * directory without its '/', and the body, either copied into the output
 * buffer with the header block (small files) or left to sendfile(2) in
 * conn.c. */
#include "proto/http/file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/http/fields.h"
#include "proto/http/listing.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"
#include "proto/http/response.h"

#define HTTP_INLINE_BODY_MAX (16 * 1024) /* bodies up to this go out with the header block */

/* The validators of the file being answered. */
struct http_validators {
	char etag[96];
	char lastmod[64];
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

/* If-Range (RFC 9110 §13.1.5): an entity-tag must match strongly and
 * exactly; a date must equal Last-Modified. Otherwise ignore Range. */
static bool http_if_range_ok(const struct http_request *req, const char *etag, time_t mtime)
{
	struct http_str v = req->if_range;
	if (v.len == 0)
		return true;
	if (v.p[0] == '"' || (v.len >= 2 && v.p[0] == 'W' && v.p[1] == '/'))
		return v.p[0] == '"' && v.len == strlen(etag) && memcmp(v.p, etag, v.len) == 0;
	time_t t;
	if (http_date_parse(v.p, v.len, &t) < 0)
		return false;
	return t == mtime;
}

/* Preconditions in the order of RFC 9110 §13.2.2: If-None-Match, and only
 * without it If-Modified-Since (GET/HEAD only). Whether to answer 304. */
static bool http_file_not_modified(const struct http_request *req, const struct http_path_file *f,
				   const struct http_validators *v)
{
	if (req->if_none_match.len)
		return http_etag_matches(req->if_none_match.p, req->if_none_match.len, v->etag);
	if (req->if_modified_since.len) {
		time_t ims;
		if (http_date_parse(req->if_modified_since.p, req->if_modified_since.len, &ims) == 0 &&
		    f->st.st_mtime <= ims)
			return true;
	}
	return false;
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

/* GET/HEAD of a regular file: validators, conditionals, Range, body. */
static void http_file_send(struct http_conn *hc, struct http_path_file *f)
{
	const struct http_request *req = &hc->req;
	struct http_validators v;
	http_etag_format(&f->st, v.etag, sizeof(v.etag));
	http_date_format(f->st.st_mtime, v.lastmod, sizeof(v.lastmod));
	uint64_t size = (uint64_t)f->st.st_size;

	if (http_file_not_modified(req, f, &v)) {
		http_file_close(f);
		http_file_304(hc, &v);
		return;
	}
	/* Range applies to GET only (RFC 9110 §14.2). */
	uint64_t first = 0, last = size ? size - 1 : 0;
	enum http_range_result rr = RANGE_NONE;
	if (req->method == HTTP_METHOD_GET && req->range.len && http_if_range_ok(req, v.etag, f->st.st_mtime))
		rr = http_range_parse(req->range.p, req->range.len, size, &first, &last);
	if (rr == RANGE_UNSATISFIABLE) {
		http_file_close(f);
		http_file_416(hc, size);
		return;
	}
	uint64_t length = rr == RANGE_OK ? last - first + 1 : size;
	const char *ctype = http_mime_lookup(http_w.mime, f->type_name, http_w.cfg->http.default_type);

	size_t mark = conn_buf_len(&hc->out);
	http_resp_begin(hc, rr == RANGE_OK ? 206 : 200, HTTP_PERSIST);
	http_out_printf(hc, "Content-Type: %s\r\nETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
			ctype, v.etag, v.lastmod);
	if (rr == RANGE_OK)
		http_out_printf(hc, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first,
				last, size);
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

void http_file_respond(struct http_conn *hc, const char *norm)
{
	if (http_w.root_fd < 0) {
		http_respond_error(hc, 500, HTTP_PERSIST);
		return;
	}
	struct http_path_file f;
	if (http_path_open(http_w.root_fd, norm, &http_w.popts, &f) == 0) {
		if (f.kind == HTTP_PATH_LISTING)
			http_listing_respond(hc, norm, f.fd);
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
