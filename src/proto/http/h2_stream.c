/* http h2 stream: an HTTP/2 stream's request and response (see h2.c for
 * the connection). The header block nghttp2 decodes is kept field by field
 * (bounded by max_header_list_size) until the stream closes; once the
 * request is whole it becomes a struct http_request for the router, and
 * the struct http_response that comes back is submitted as HEADERS and a
 * data source whose DATA frames are read from the file, or copied from
 * memory, straight into the connection's output buffer when nghttp2
 * schedules them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "proto/http/access_log.h"
#include "proto/http/config.h"
#include "proto/http/metrics.h"
#include "proto/http/h2_state.h"
#include "proto/http/router.h"
#include "proto/http/state.h"

/* The field lines of the response being built (one at a time). */
static char h2_fields[HTTP_FIELDS_MAX];
/* The names lowercased for HPACK (RFC 9113 §8.2.1). */
static char h2_names[HTTP_FIELDS_MAX];
struct http_request h2_req;
static struct http_header h2_req_fields[HTTP_MAX_HEADERS];


#define H2_SPARE_STREAMS 512 /* stream structs kept for reuse per worker */
static struct h2_stream *h2_spare_streams[H2_SPARE_STREAMS];
static unsigned h2_n_spare_streams;

struct h2_stream *h2_stream_new(struct h2_conn *h, int32_t id)
{
	struct h2_stream *st = h2_n_spare_streams ? h2_spare_streams[--h2_n_spare_streams] : malloc(sizeof(*st));
	if (!st)
		return NULL;
	/* Everything but the inline block, which is written before it is read. */
	memset(st, 0, offsetof(struct h2_stream, block_inline));
	st->h = h;
	st->id = id;
	st->block = st->block_inline;
	st->block_cap = sizeof(st->block_inline);
	st->src = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
	st->start_ms = loop_now_ms(h->base.loop);
	st->prev = h->last;
	if (h->last)
		h->last->next = st;
	else
		h->first = st;
	h->last = st;
	h->n_streams++;
	return st;
}

void h2_stream_free(struct h2_stream *st)
{
	struct h2_conn *h = st->h;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->first = st->next;
	if (st->next)
		st->next->prev = st->prev;
	else
		h->last = st->prev;
	h->n_streams--;
	if (st->answered)
		h->n_answered--;
	if (h->n_streams == 0)
		h->idle_since = loop_now_ms(h->base.loop);
	http_src_release(&st->src);
	if (st->block != st->block_inline)
		free(st->block);
	free(st->part);
	if (h2_n_spare_streams < H2_SPARE_STREAMS)
		h2_spare_streams[h2_n_spare_streams++] = st;
	else
		free(st);
}

void h2_stream_done(struct h2_conn *h, struct h2_stream *st, bool reset)
{
	if (reset)
		sb_add32(&http_w.env->slot->h2_resets, 1);
	if (st->answered) {
		if (http_log_enabled()) {
			bool have = !st->too_large && h2_stream_request(st) != 400 && h2_req.method_str.len;
			http_log_stream(&h->base, have ? &h2_req : NULL, st->status, st->body_sent, st->start_ms);
		}
		uint64_t now = loop_now_ms(h->base.loop);
		http_metrics_count(http_w.env->metrics, st->method, st->status,
				   now > st->start_ms ? now - st->start_ms : 0, st->body_sent);
		http_w.env->request_done(http_w.env);
	}
	h2_stream_free(st);
}

void h2_resume_deferred(struct h2_conn *h, bool sliver_ok)
{
	h->deferred_ms = 0;
	for (struct h2_stream *st = h->first; st; st = st->next)
		if (st->deferred) {
			st->deferred = false;
			st->sliver_ok = sliver_ok;
			nghttp2_session_resume_data(h->ng, st->id);
		}
}

void h2_stream_spares_free(void)
{
	while (h2_n_spare_streams)
		free(h2_spare_streams[--h2_n_spare_streams]);
}

/* Keep one field of st's request header block; false: the block is
 * over a limit (the request is answered 431). */
bool h2_stream_keep(struct h2_stream *st, const uint8_t *name, size_t name_len, const uint8_t *value,
			   size_t value_len, size_t max_list)
{
	st->decoded += name_len + value_len + 32;
	if (st->too_large || st->decoded > max_list || st->n_fields >= H2_MAX_FIELDS) {
		st->too_large = true;
		return false;
	}
	size_t need = sizeof(struct h2_field_rec) + name_len + value_len;
	if (st->block_len + need > st->block_cap) {
		size_t cap = st->block_cap * 2;
		while (cap < st->block_len + need)
			cap *= 2;
		char *b = st->block == st->block_inline ? malloc(cap) : realloc(st->block, cap);
		if (b && st->block == st->block_inline)
			memcpy(b, st->block_inline, st->block_len);
		if (!b) {
			st->too_large = true; /* 431 is the honest answer to "cannot keep it" */
			return false;
		}
		st->block = b;
		st->block_cap = cap;
	}
	struct h2_field_rec rec = { (uint32_t)name_len, (uint32_t)value_len };
	char *p = st->block + st->block_len;
	memcpy(p, &rec, sizeof(rec));
	memcpy(p + sizeof(rec), name, name_len);
	memcpy(p + sizeof(rec) + name_len, value, value_len);
	st->block_len += need;
	st->n_fields++;
	return true;
}

/* st's request as a struct http_request (into h2_req): 0, or the status
 * to answer. The slices point into st->block. */
int h2_stream_request(const struct h2_stream *st)
{
	struct http_str method = { NULL, 0 }, path = { NULL, 0 }, authority = { NULL, 0 };
	unsigned n = 0;
	bool over = false;
	for (size_t off = 0; off < st->block_len;) {
		struct h2_field_rec rec;
		memcpy(&rec, st->block + off, sizeof(rec));
		struct http_str name = { st->block + off + sizeof(rec), rec.name_len };
		struct http_str value = { name.p + rec.name_len, rec.value_len };
		off += sizeof(rec) + rec.name_len + rec.value_len;
		if (name.len && name.p[0] == ':') {
			if (name.len == 7 && memcmp(name.p, ":method", 7) == 0)
				method = value;
			else if (name.len == 5 && memcmp(name.p, ":path", 5) == 0)
				path = value;
			else if (name.len == 10 && memcmp(name.p, ":authority", 10) == 0)
				authority = value;
			continue; /* :scheme: nghttp2 checked it is there */
		}
		if (n == HTTP_MAX_HEADERS) {
			over = true;
			continue;
		}
		h2_req_fields[n++] = (struct http_header){ name, value };
	}
	int r = http_parse_h2_request(&h2_req, method, path, authority, h2_req_fields, n, &http_w.lim);
	if (r == 0 && over)
		r = 431;
	return r;
}

/* ------------------------------------------------------------ responses */

/* The data source of a stream's body (nghttp2_data_source_read_callback).
 * Memory and file ranges are sent without a copy in nghttp2 (the send
 * callback below puts them in the output buffer); multipart bodies, rare,
 * are assembled in nghttp2's own frame buffer. */
/* Whether a DATA frame of length bytes would be a sliver best not sent:
 * smaller than H2_DATA_MIN (or than what is left), while bytes of ours on
 * this stream are still unacknowledged, so the window will open further.
 * Sending slivers would invite a client that returns credit frame by
 * frame to answer each with a sliver of window, and so on for the whole
 * body (and is what a client granting 1 byte at a time asks for). When
 * nothing of ours is in flight, or the client's initial window is below a
 * full frame, the window is what the client wants, and is used whatever
 * its size (h2spec 6.9.1 and 6.9.2: a window of 1 gets 1 byte). And a
 * client that opens the window only once it is used up gets its sliver
 * after H2_SLIVER_WAIT_MS (h2_resume_deferred from the timer). */
static bool h2_sliver(nghttp2_session *ng, struct h2_stream *st, size_t length, uint64_t left)
{
	size_t want = left < H2_DATA_MIN ? (size_t)left : H2_DATA_MIN;
	if (length >= want)
		return false;
	int32_t win = nghttp2_session_get_stream_remote_window_size(ng, st->id);
	uint32_t init = nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
	int32_t conn = nghttp2_session_get_remote_window_size(ng);
	if (init < 16384 || win < 0 || conn < 0 || ((uint32_t)win >= init && (size_t)conn >= want) ||
	    st->sliver_ok) {
		st->sliver_ok = false;
		return false; /* a client that grants less than a frame wants small frames */
	}
	st->deferred = true;
	if (!st->h->deferred_ms)
		st->h->deferred_ms = loop_now_ms(st->h->base.loop);
	return true;
}

static ssize_t h2_body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			    nghttp2_data_source *source, void *user)
{
	(void)id;
	(void)user;
	struct h2_stream *st = source->ptr;
	struct http_body_src *s = &st->src;
	size_t n;
	uint64_t left = s->kind == HTTP_SRC_MEM ? http_src_mem_left(s) : s->left;
	if (s->kind != HTTP_SRC_PARTS && h2_sliver(ng, st, length, left))
		return NGHTTP2_ERR_DEFERRED;
	switch (s->kind) {
	case HTTP_SRC_MEM:
		n = http_src_mem_left(s) < length ? http_src_mem_left(s) : length;
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		if (n == http_src_mem_left(s))
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	case HTTP_SRC_FILE:
		n = s->left < length ? (size_t)s->left : length;
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		if (n == s->left)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	case HTTP_SRC_PARTS: {
		size_t got = 0;
		while (got < length) {
			if (st->part_off < st->part_len) {
				size_t k = st->part_len - st->part_off;
				if (k > length - got)
					k = length - got;
				memcpy(buf + got, st->part + st->part_off, k);
				st->part_off += k;
				got += k;
				continue;
			}
			if (s->left) {
				size_t want = s->left < length - got ? (size_t)s->left : length - got;
				ssize_t r = pread(s->fd, buf + got, want, s->off);
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the file shrank */
				s->off += r;
				s->left -= (uint64_t)r;
				got += (size_t)r;
				continue;
			}
			st->part_len = http_src_next_part(s, st->part, H2_PART_MAX);
			st->part_off = 0;
			if (st->part_len == 0) {
				*flags |= NGHTTP2_DATA_FLAG_EOF;
				break;
			}
		}
		st->body_sent += got;
		return (ssize_t)got;
	}
	case HTTP_SRC_NONE:
		break;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	return 0;
}

/* Whether a response field has no place in HTTP/2 (RFC 9113 §8.2.2). */
static bool h2_field_dropped(const char *name, size_t len)
{
	return (len == 10 && strncasecmp(name, "connection", 10) == 0) ||
	       (len == 10 && strncasecmp(name, "keep-alive", 10) == 0) ||
	       (len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) ||
	       (len == 7 && strncasecmp(name, "upgrade", 7) == 0);
}

#define H2_NV(n, nl, v, vl)                                                                         \
	(nghttp2_nv) { (uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE }

/* Submit resp as st's answer: HEADERS, then the body as DATA. resp gives
 * up its body source (st keeps it while it is sent). */
static void h2_respond(struct h2_conn *h, struct h2_stream *st, struct http_response *resp)
{
	nghttp2_nv nva[HTTP_MAX_HEADERS + 8];
	size_t n = 0, names = 0;
	char status[4] = { (char)('0' + resp->status / 100), (char)('0' + resp->status / 10 % 10),
			   (char)('0' + resp->status % 10), 0 };
	nva[n++] = H2_NV(":status", 7, status, 3);
	time_t now;
	const char *date = http_date_now(&now);
	nva[n++] = H2_NV("date", 4, date, strlen(date));
	nva[n++] = H2_NV("server", 6, HTTP_SERVER_NAME, sizeof(HTTP_SERVER_NAME) - 1);
	const char *hsts = http_w.http->hsts_line;
	if (hsts && conn_security(&h->base)) {
		/* "Strict-Transport-Security: VALUE\r\n" */
		const char *v = hsts + 27;
		nva[n++] = H2_NV("strict-transport-security", 25, v, http_w.http->hsts_line_len - 29);
	}
	size_t pos = 0;
	struct http_str name, value;
	while (n < sizeof(nva) / sizeof(nva[0]) - 1 && http_fields_next(&resp->fields, &pos, &name, &value)) {
		if (h2_field_dropped(name.p, name.len) || names + name.len > sizeof(h2_names))
			continue;
		char *lower = h2_names + names;
		for (size_t i = 0; i < name.len; i++) {
			char ch = name.p[i];
			lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch | 0x20) : ch;
		}
		names += name.len;
		nva[n++] = H2_NV(lower, name.len, value.p, value.len);
	}
	char length[24];
	if (!resp->no_length && !resp->length_in_fields) {
		int k = snprintf(length, sizeof(length), "%" PRIu64, resp->body.length);
		nva[n++] = H2_NV("content-length", 14, length, (size_t)k);
	}

	st->answered = true;
	st->status = resp->status;
	h->n_answered++;
	if (h->n_answered == 1)
		h->progress_ms = loop_now_ms(h->base.loop);
	struct http_body_src *b = &resp->body;
	bool body = !st->head_only && b->kind != HTTP_SRC_NONE && b->length > 0;
	if (body && b->kind == HTTP_SRC_MEM && !b->release) {
		/* The bytes live in resp: the stream needs its own. */
		char *copy = malloc(b->mem_len ? b->mem_len : 1);
		if (copy) {
			memcpy(copy, b->mem, b->mem_len);
			http_src_owned(&st->src, copy, b->mem_len);
		} else {
			body = false;
			nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
			return;
		}
		http_src_release(b);
	} else if (body) {
		st->src = *b;
		*b = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
		if (st->src.kind == HTTP_SRC_PARTS) {
			st->part = malloc(H2_PART_MAX);
			if (!st->part) {
				nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
				return;
			}
			st->part_len = http_src_next_part(&st->src, st->part, H2_PART_MAX);
			st->part_off = 0;
		}
	} else {
		http_src_release(b);
	}
	nghttp2_data_provider prd = { .source = { .ptr = st }, .read_callback = h2_body_read };
	int r = nghttp2_submit_response(h->ng, st->id, nva, n, body ? &prd : NULL);
	if (r != 0) {
		log_warning("http2: submitting a response: %s", nghttp2_strerror(r));
		nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	}
}

void h2_respond_error(struct h2_conn *h, struct h2_stream *st, int status)
{
	char fields[256];
	struct http_response resp;
	http_response_init(&resp, fields, sizeof(fields));
	http_response_error(&resp, status);
	h2_respond(h, st, &resp);
}

/* The request of st is whole: route it. */
void h2_route(struct h2_conn *h, struct h2_stream *st)
{
	if (st->answered)
		return;
	if (st->too_large) {
		h2_respond_error(h, st, 431);
		return;
	}
	int r = h2_stream_request(st);
	if (r) {
		h2_respond_error(h, st, r);
		return;
	}
	st->head_only = h2_req.method == HTTP_METHOD_HEAD;
	st->method = h2_req.method;
	struct http_ask ask = {
		.req = &h2_req,
		.head_only = st->head_only,
		.listener = h->base.listener,
		.now_ms = loop_now_ms(h->base.loop),
		.site = &http_w.site,
	};
	struct http_response resp;
	http_response_init(&resp, h2_fields, sizeof(h2_fields));
	http_router_answer(&ask, &resp);
	if (resp.fields.overflow) {
		http_src_release(&resp.body);
		log_warning("http2: response header block too large, answering 500");
		h2_respond_error(h, st, 500);
		return;
	}
	h2_respond(h, st, &resp);
}

/* A DATA frame of a no-copy source: its 9-byte header, then the payload
 * straight from memory or the file into the output buffer. */
int h2_on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
			   nghttp2_data_source *source, void *user)
{
	(void)ng;
	struct h2_conn *h = user;
	struct h2_stream *st = source->ptr;
	size_t pad = frame->data.padlen;
	if (pad > 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE; /* we never ask for padding */
	if (h2_out_room(h) < 9 + length)
		return NGHTTP2_ERR_WOULDBLOCK;
	char *p = h->out.data + h->out.end;
	memcpy(p, framehd, 9);
	p += 9;
	struct http_body_src *s = &st->src;
	if (s->kind == HTTP_SRC_MEM) {
		memcpy(p, s->mem + s->mem_off, length);
		s->mem_off += length;
	} else {
		size_t got = 0;
		while (got < length) {
			ssize_t r = pread(s->fd, p + got, length - got, s->off + (off_t)got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				/* The file shrank: the promised length cannot be kept. */
				log_warning("http2: file shrank while being sent, resetting the stream");
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			}
			got += (size_t)r;
		}
		s->off += (off_t)length;
		s->left -= length;
	}
	h->out.end += 9 + length;
	st->body_sent += length;
	if (length >= H2_EARN_DATA_MIN)
		h2_earn(h, H2_EARN_DATA);
	return 0;
}

