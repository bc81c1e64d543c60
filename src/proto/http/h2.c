/* http h2: HTTP/2 connections (see h2.h).
 *
 * One struct h2_conn per connection and one struct h2_stream per request.
 * nghttp2 never touches the socket: input is read here into a per-worker
 * buffer and handed to nghttp2_session_mem_recv(), which calls back for
 * each header, frame and stream close; output is what nghttp2_session_send()
 * gives the send callbacks, gathered in the connection's output buffer and
 * written through the transport in one writev. Response bodies use
 * nghttp2's no-copy data source: a DATA frame's payload is read from the
 * file (pread) or copied from memory straight into the output buffer, once,
 * when nghttp2 schedules it, so flow control, priorities (RFC 9218, with
 * SETTINGS_NO_RFC7540_PRIORITIES = 1) and fairness between streams are the
 * library's, and no body is read ahead of the peer's window.
 *
 * Requests: a stream's header block is kept (bounded by
 * max_header_list_size) until the stream closes; when the request is
 * complete (END_STREAM) it becomes a struct http_request
 * (http_parse_h2_request) and goes to the router like an HTTP/1.1 request;
 * the struct http_response that comes back is submitted as HEADERS and a
 * data source. Request bodies are read and discarded (max_body_size: 413).
 *
 * Memory: an idle connection is this struct and nghttp2's session (its
 * HPACK tables and settings); the output buffer is taken only while there
 * is something to write and given back to a per-worker spare list after.
 *
 * Timeouts: before the first stream and between streams header_timeout /
 * keepalive_timeout close the connection with GOAWAY(NO_ERROR); a stream
 * whose request is not complete header_timeout after its HEADERS is
 * answered 408; a connection with responses under way that writes nothing
 * for send_timeout (a peer that neither reads nor opens its windows) is
 * closed.
 *
 * Drain (reload, upgrade, recycling, stop): GOAWAY with last-stream-id
 * 2^31-1 and a PING; when the PING's ACK comes back (or a second later),
 * GOAWAY with the last stream id processed. Every stream up to it is
 * answered; the client retries later ones elsewhere (RFC 9113 §6.8). Then
 * the connection closes, lingering. HTTP/2 connections are never handed
 * to a successor: their state lives in nghttp2.
 *
 * Abuse (the HTTP/2 attacks of 2019 and 2023): nghttp2 bounds CONTINUATION
 * frames, queued control-frame ACKs and the reset rate where the library
 * has them (configure checks); on top, each connection has a credit that
 * control frames (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM,
 * empty DATA/HEADERS) spend and useful work (full DATA frames, finished
 * responses) earns back; a header list beyond max_header_list_size costs
 * much more. At zero the connection ends with GOAWAY(ENHANCE_YOUR_CALM). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proto/http/h2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "proto/http/config.h"

#include "proto/http/h2_state.h"

static nghttp2_session_callbacks *h2_callbacks;
static nghttp2_option *h2_option;
static char h2_in[H2_IN_CHUNK];

static void h2_timeout(struct loop *loop, struct loop_timer *t, void *arg);

/* ------------------------------------------------------------ listeners */

/* Whether a listener has http2 = yes, cached per worker_listener (a
 * worker's listeners and config do not change). */
static bool h2_listener_on(const struct conn *c)
{
	static struct {
		const struct worker_listener *l;
		bool on;
	} cache[16];
	static unsigned n;
	const struct worker_listener *l = c->listener;
	if (!l || !c->env)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (cache[i].l == l)
			return cache[i].on;
	const struct http_listener_config *lc = http_listener_cfg(config_find_listener(c->env->cfg, l->name));
	bool on = lc && lc->http2;
	if (n < sizeof(cache) / sizeof(cache[0]))
		cache[n++] = (typeof(cache[0])){ l, on };
	return on;
}

const unsigned char *http2_alpn_of(const struct conn *c, unsigned *len)
{
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	static const unsigned char h1[] = "\x08http/1.1";
	if (h2_listener_on(c)) {
		*len = sizeof(both) - 1;
		return both;
	}
	*len = sizeof(h1) - 1;
	return h1;
}

int http2_detect(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	unsigned alen;
	const unsigned char *alpn = conn_alpn(c, &alen);
	if (alpn)
		return alen == 2 && memcmp(alpn, "h2", 2) == 0 ? 1 : -1;
	if (!h2_listener_on(c))
		return -1;
	size_t len = conn_buf_len(&hc->in);
	size_t n = len < HTTP2_PREFACE_LEN ? len : HTTP2_PREFACE_LEN;
	if (memcmp(hc->in.data + hc->in.start, HTTP2_PREFACE, n) != 0)
		return -1;
	return n == HTTP2_PREFACE_LEN ? 1 : 0;
}

/* ------------------------------------------------------------ nghttp2 callbacks */

static ssize_t h2_on_send(nghttp2_session *ng, const uint8_t *data, size_t length, int flags, void *user)
{
	(void)ng;
	(void)flags;
	struct h2_conn *h = user;
	/* Whole or not at all: the buffer then holds whole frames only, and
	 * a GOAWAY of our own can always follow what it holds (h2_fatal). */
	if (h2_out_room(h) < length)
		return NGHTTP2_ERR_WOULDBLOCK;
	uint8_t *p = (uint8_t *)h->out.data + h->out.end;
	memcpy(p, data, length);
	h->out.end += length;
	if (!h->settings_sent && length >= 9 && p[3] == NGHTTP2_SETTINGS && !(p[4] & NGHTTP2_FLAG_ACK)) {
		/* Our SETTINGS: the client is told max_concurrent_streams,
		 * while nghttp2 was told twice as many. nghttp2 treats a
		 * stream beyond the limit it was told as a connection error;
		 * RFC 9113 §5.1.2 asks for a stream error, which
		 * h2_on_begin_headers gives (REFUSED_STREAM), and nghttp2's
		 * GOAWAY is left for a client that ignores those. */
		h->settings_sent = true;
		for (size_t i = 9; i + 6 <= length; i += 6)
			if (p[i] == 0 && p[i + 1] == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
				uint32_t v = h->max_streams;
				p[i + 2] = (uint8_t)(v >> 24);
				p[i + 3] = (uint8_t)(v >> 16);
				p[i + 4] = (uint8_t)(v >> 8);
				p[i + 5] = (uint8_t)v;
			}
	}
	return (ssize_t)length;
}

/* Every frame's header, before nghttp2 acts on it: what it leaves out
 * with RFC 9218 priorities on (it keeps no closed stream then, and drops
 * frames on one in silence). HEADERS on a client stream that the client
 * knows is closed (both sides ended it, or it reset it) is a connection
 * error STREAM_CLOSED (RFC 9113 §5.1); on a lower id never opened,
 * PROTOCOL_ERROR (§5.1.1). A stream we closed (a reset, a refusal, a
 * GOAWAY) may still have frames in flight: they are ignored. */
static int h2_on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
	struct h2_conn *h = user;
	if (hd->type != NGHTTP2_HEADERS || !(hd->stream_id & 1) || hd->stream_id > h->max_id ||
	    nghttp2_session_find_stream(ng, hd->stream_id) || h2_ring_has(h->reset_ids, H2_RING, hd->stream_id))
		return 0;
	if (h2_ring_has(h->closed_ids, H2_RING, hd->stream_id))
		h->error = NGHTTP2_STREAM_CLOSED;
	else if (!h2_ring_has(h->used_ids, H2_RING, hd->stream_id))
		h->error = NGHTTP2_PROTOCOL_ERROR;
	else
		return 0; /* closed by us (a reset, a GOAWAY): what was in flight is ignored */
	return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_conn *h = user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (h->n_streams >= h->max_streams || h->final_goaway) {
		/* Over max_concurrent_streams, or after our last GOAWAY was
		 * queued: refused, the client may retry it (RFC 9113 §5.1.2,
		 * §8.7). */
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		h2_spend(h, H2_COST_CONTROL);
		return 0;
	}
	struct h2_stream *st = h2_stream_new(h, frame->hd.stream_id);
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset; others go on */
	h->requests++;
	if (st->id > h->max_id)
		h->max_id = st->id;
	h2_ring_put(h->used_ids, H2_RING, &h->used_at, st->id);
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	sb_add(&http_w.env->slot->h2_streams, 1);
	unsigned limit = http_w.http->keepalive_requests;
	if (limit && h->requests >= limit && !h->final_goaway) {
		/* This one is answered; the client opens a new connection for
		 * the next (RFC 9113 §6.8). */
		nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR, NULL, 0);
		h->final_goaway = true;
	}
	return 0;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
			const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	(void)flags;
	struct h2_conn *h = user;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers: not kept */
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!st)
		return 0;
	bool was = st->too_large;
	if (!h2_stream_keep(st, name, namelen, value, valuelen, h->max_list) && !was)
		h2_spend(h, H2_COST_HUGE_HEADERS);
	return 0;
}

static int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			    void *user)
{
	(void)flags;
	(void)data;
	struct h2_conn *h = user;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st)
		return 0;
	st->body_in += len;
	if (st->body_in > http_w.http->max_body_size && !st->answered)
		h2_respond_error(h, st, 413);
	return 0;
}

/* The drain's second step: GOAWAY with the last stream id processed. */
static void h2_goaway_final(struct h2_conn *h)
{
	if (h->final_goaway)
		return;
	h->final_goaway = true;
	nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st = NULL;
	switch (frame->hd.type) {
	case NGHTTP2_DATA:
		if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			h2_spend(h, H2_COST_CONTROL);
		if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
			st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
		break;
	case NGHTTP2_HEADERS:
		if (frame->hd.length == 0)
			h2_spend(h, H2_COST_CONTROL);
		if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
			st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
		break;
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
			if (h->draining)
				h2_goaway_final(h);
		} else {
			h2_spend(h, H2_COST_CONTROL);
		}
		break;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
			h2_spend(h, H2_COST_CONTROL);
			h2_resume_deferred(h, false); /* its initial window may have grown */
		}
		break;
	case NGHTTP2_RST_STREAM: {
		struct h2_stream *r = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
		if (r)
			r->peer_reset = true;
		h2_spend(h, r && r->answered && !r->finished ? H2_COST_RESET : H2_COST_CONTROL);
		break;
	}
	case NGHTTP2_WINDOW_UPDATE:
		h2_spend(h, H2_COST_CONTROL);
		h2_resume_deferred(h, false);
		break;
	case NGHTTP2_PRIORITY:
	case NGHTTP2_PRIORITY_UPDATE:
		h2_spend(h, H2_COST_CONTROL);
		break;
	default:
		break;
	}
	if (h->calm)
		return NGHTTP2_ERR_CALLBACK_FAILURE; /* stop reading: GOAWAY follows (h2_fatal) */
	if (st) {
		st->complete = true;
		h2_route(h, st);
	}
	return 0;
}

static int h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
	struct h2_conn *h = user;
	if (frame->hd.type == NGHTTP2_RST_STREAM)
		h2_ring_put(h->reset_ids, H2_RING, &h->reset_at, frame->hd.stream_id);
	if (frame->hd.type == NGHTTP2_GOAWAY && h->draining && !h->final_goaway &&
	    frame->goaway.last_stream_id == INT32_MAX) {
		/* The drain's first GOAWAY is out: its PING follows, and the
		 * ACK says the client has seen both (RFC 9113 §6.8). */
		static const uint8_t opaque[8] = "drover";
		nghttp2_submit_ping(ng, NGHTTP2_FLAG_NONE, opaque);
		h->drain_ms = loop_now_ms(h->base.loop);
		return 0;
	}
	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (!st)
		return 0;
	st->finished = true;
	h2_earn(h, H2_EARN_RESPONSE);
	if (!st->complete) {
		/* Answered before the request was whole (408, 413, a 405 with a
		 * body on its way): the rest is not wanted (RFC 9113 §8.1). */
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

static int h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (!st)
		return 0;
	/* Gone for good in the client's eyes too: DATA or HEADERS on it now
	 * is its mistake (h2_on_begin_frame, h2_feed). */
	if ((error == NGHTTP2_NO_ERROR && st->complete && st->finished) || st->peer_reset)
		h2_ring_put(h->closed_ids, H2_RING, &h->closed_at, st->id);
	h2_stream_done(h, st, error != NGHTTP2_NO_ERROR);
	return 0;
}

/* ------------------------------------------------------------ I/O */

/* A raw GOAWAY (RFC 9113 §6.8), for when nghttp2's session can go no
 * further (a fatal error): last stream id, error code. */
static void h2_raw_goaway(struct h2_conn *h, uint32_t code)
{
	uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(h->ng) & 0x7fffffffu;
	uint8_t f[17] = { 0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0,
			  (uint8_t)(last >> 24), (uint8_t)(last >> 16), (uint8_t)(last >> 8), (uint8_t)last,
			  (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8), (uint8_t)code };
	if (h2_out_room(h) >= sizeof(f)) {
		memcpy(h->out.data + h->out.end, f, sizeof(f));
		h->out.end += sizeof(f);
	}
}

/* The session is over: write what is queued (the GOAWAY last), then close
 * lingering. Until the socket took it all the connection lives on, dead:
 * CONN_GONE all the same, its caller touches it no more. */
static int h2_close_after(struct h2_conn *h)
{
	struct conn *c = &h->base;
	h->dead = true;
	while (conn_buf_len(&h->out)) {
		struct iovec iov = { h->out.data + h->out.start, conn_buf_len(&h->out) };
		ssize_t w = conn_writev(c, &iov, 1, 0);
		if (w == -EAGAIN)
			break;
		if (w <= 0) {
			conn_close(c);
			return CONN_GONE;
		}
		conn_buf_consume(&h->out, (size_t)w);
		sb_add(&http_w.env->slot->bytes_out, (uint64_t)w);
		h->progress_ms = loop_now_ms(c->loop);
	}
	if (conn_buf_len(&h->out) == 0) {
		conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
		return CONN_GONE;
	}
	/* The rest when the socket takes it (send_timeout at most): a
	 * GOAWAY cut in half would be a broken frame. */
	if (conn_watch(c, conn_watch_for(c, LOOP_WRITE)) < 0) {
		conn_close(c);
		return CONN_GONE;
	}
	loop_timer_arm_at(c->loop, &c->timer, h->progress_ms + http_w.http->send_timeout_ms);
	return CONN_GONE;
}

/* nghttp2 refused the input for good: GOAWAY with what fits the error,
 * and close. CONN_GONE. */
static int h2_fatal(struct h2_conn *h, ssize_t err)
{
	uint32_t code = NGHTTP2_PROTOCOL_ERROR;
	if (h->error)
		code = h->error;
	else if (h->calm || err == NGHTTP2_ERR_FLOODED || err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
		code = NGHTTP2_ENHANCE_YOUR_CALM;
	else if (err == NGHTTP2_ERR_NOMEM || err == NGHTTP2_ERR_CALLBACK_FAILURE)
		code = NGHTTP2_INTERNAL_ERROR;
	/* The session is in no state to frame anything more: the GOAWAY is
	 * ours, behind the whole frames already queued. */
	h2_raw_goaway(h, code);
	return h2_close_after(h);
}

/* Whether DATA on stream sid, about to be read, is on a stream the client
 * knows is closed (RFC 9113 §5.1: STREAM_CLOSED).
 * nghttp2 keeps no closed stream with RFC 9218 priorities on, and drops
 * such DATA in silence before any callback. */
static bool h2_data_on_closed(struct h2_conn *h, uint32_t sid)
{
	return (sid & 1) && !nghttp2_session_find_stream(h->ng, (int32_t)sid) &&
	       h2_ring_has(h->closed_ids, H2_RING, (int32_t)sid);
}

/* Pass n bytes to nghttp2, or a fatal nghttp2 error. */
static ssize_t h2_recv(struct h2_conn *h, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	h->busy = true;
	ssize_t r = nghttp2_session_mem_recv(h->ng, p, n);
	h->busy = false;
	return r;
}

/* Hand input to nghttp2: 0, or a fatal nghttp2 error (h->error says
 * which GOAWAY when the error is ours). On the way, the input's frame
 * boundaries are followed (payloads skipped, not read) for what nghttp2
 * does not check with RFC 9218 priorities on: a PRIORITY frame on stream 0
 * (RFC 9113 §6.3) or on a stream that depends on itself (§5.3.1), both
 * PROTOCOL_ERROR; and DATA on a closed stream, which is checked when every
 * frame before it has been read (the input is passed in two parts then). */
static ssize_t h2_feed(struct h2_conn *h, const uint8_t *p, size_t n)
{
	struct h2_scan *sc = &h->scan;
	size_t i = 0, fed = 0;
	ssize_t r;
	while (i < n) {
		if (sc->preface) {
			size_t k = n - i < sc->preface ? n - i : sc->preface;
			sc->preface -= (uint32_t)k;
			i += k;
			continue;
		}
		if (sc->left == 0 && sc->hdr_n < 9) {
			sc->hdr[sc->hdr_n++] = p[i++];
			if (sc->hdr_n < 9)
				continue;
			sc->left = (uint32_t)sc->hdr[0] << 16 | (uint32_t)sc->hdr[1] << 8 | sc->hdr[2];
			sc->sid = ((uint32_t)sc->hdr[5] << 24 | (uint32_t)sc->hdr[6] << 16 |
				   (uint32_t)sc->hdr[7] << 8 | sc->hdr[8]) & 0x7fffffffu;
			uint8_t type = sc->hdr[3];
			sc->prio = type == NGHTTP2_PRIORITY && sc->left == 5;
			sc->dep = 0;
			sc->dep_n = 0;
			if (type == NGHTTP2_PRIORITY && sc->sid == 0)
				goto protocol_error;
			if (type == NGHTTP2_DATA && (sc->sid & 1)) {
				/* Everything before this frame first (its stream may
				 * have opened and closed there). */
				size_t start = i >= 9 ? i - 9 : 0;
				if (start > fed) {
					r = h2_recv(h, p + fed, start - fed);
					if (r < 0)
						return r;
					fed = start;
				}
				if (h2_data_on_closed(h, sc->sid)) {
					h->error = NGHTTP2_STREAM_CLOSED;
					return NGHTTP2_ERR_CALLBACK_FAILURE;
				}
			}
			if (sc->left == 0)
				sc->hdr_n = 0;
			continue;
		}
		if (sc->prio && sc->dep_n < 4) {
			sc->dep = sc->dep << 8 | p[i++];
			sc->left--;
			if (++sc->dep_n == 4 && (sc->dep & 0x7fffffffu) == sc->sid)
				goto protocol_error;
		} else {
			size_t k = n - i < sc->left ? n - i : sc->left;
			sc->left -= (uint32_t)k;
			i += k;
		}
		if (sc->left == 0)
			sc->hdr_n = 0;
	}
	r = h2_recv(h, p + fed, n - fed);
	return r < 0 ? r : 0;

protocol_error:
	/* What came before the frame is read; the frame is the error. */
	r = h2_recv(h, p + fed, i - fed);
	if (r < 0)
		return r;
	h->error = NGHTTP2_PROTOCOL_ERROR;
	return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Read and hand to nghttp2 while there is input (a few reads at most):
 * 0, or CONN_GONE. */
static int h2_read(struct h2_conn *h)
{
	struct conn *c = &h->base;
	for (int i = 0; i < H2_READS_PER_WAKE && !h->peer_eof; i++) {
		ssize_t n = conn_read(c, h2_in, sizeof(h2_in));
		if (n == -EAGAIN)
			return 0;
		if (n == 0) {
			h->peer_eof = true;
			return 0;
		}
		if (n < 0) {
			conn_close(c); /* a reset */
			return CONN_GONE;
		}
		sb_add(&http_w.env->slot->bytes_in, (uint64_t)n);
		ssize_t r = h2_feed(h, (const uint8_t *)h2_in, (size_t)n);
		if (r < 0)
			return h2_fatal(h, r);
		/* Stop reading while the output waits: a peer that does not
		 * read gets no more of our work. */
		if (h->blocked)
			break;
	}
	return 0;
}

/* Have nghttp2 queue frames and write them: 0, or CONN_GONE. */
static int h2_write(struct h2_conn *h)
{
	struct conn *c = &h->base;
	size_t share = 0;
	h->more = false;
	for (;;) {
		h->busy = true;
		int r = nghttp2_session_send(h->ng);
		h->busy = false;
		if (r != 0) {
			log_warning("http2: sending: %s", nghttp2_strerror(r));
			conn_close(c);
			return CONN_GONE;
		}
		size_t len = conn_buf_len(&h->out);
		if (len == 0) {
			/* Frames to send and no buffer to put them in: memory
			 * ran out; the timer tries again (h2_deadline). */
			if (!h->io && nghttp2_session_want_write(h->ng) && !h->nomem_ms)
				h->nomem_ms = loop_now_ms(c->loop);
			break;
		}
		struct iovec iov = { h->out.data + h->out.start, len };
		ssize_t w = conn_writev(c, &iov, 1, 0);
		if (w == -EAGAIN) {
			h->blocked = true;
			return 0;
		}
		if (w < 0) {
			conn_close(c);
			return CONN_GONE;
		}
		conn_buf_consume(&h->out, (size_t)w);
		sb_add(&http_w.env->slot->bytes_out, (uint64_t)w);
		h->progress_ms = loop_now_ms(c->loop);
		if (h->n_streams == 0 && conn_buf_len(&h->out) == 0)
			h->idle_since = h->progress_ms; /* idle from the last byte out */
		share += (size_t)w;
		if ((size_t)w < len) {
			h->blocked = true;
			return 0;
		}
		h->blocked = false;
		if (!nghttp2_session_want_write(h->ng))
			break;
		if (share >= H2_WRITE_SHARE) {
			h->more = true;
			return 0;
		}
	}
	h->blocked = false;
	if (conn_buf_len(&h->out) == 0 && (h->n_answered == 0 || !nghttp2_session_want_write(h->ng)))
		h2_out_give(h);
	return 0;
}

/* The earliest deadline of h, or UINT64_MAX. */
static uint64_t h2_deadline(const struct h2_conn *h)
{
	const struct http_config *hc = http_w.http;
	uint64_t d = UINT64_MAX;
	if (h->n_streams == 0 && conn_buf_len(&h->out) == 0)
		d = h->idle_since + (h->requests ? hc->keepalive_timeout_ms : hc->header_timeout_ms);
	for (const struct h2_stream *st = h->first; st; st = st->next)
		if (!st->complete && !st->answered) {
			uint64_t t = st->start_ms + hc->header_timeout_ms;
			if (t < d)
				d = t;
			break; /* oldest first: the first such one is the earliest */
		}
	if (h->n_answered || conn_buf_len(&h->out)) {
		uint64_t t = h->progress_ms + hc->send_timeout_ms;
		if (t < d)
			d = t;
	}
	if (h->nomem_ms && h->nomem_ms + H2_NOMEM_RETRY_MS < d)
		d = h->nomem_ms + H2_NOMEM_RETRY_MS;
	if (h->deferred_ms && h->deferred_ms + H2_SLIVER_WAIT_MS < d)
		d = h->deferred_ms + H2_SLIVER_WAIT_MS;
	if (h->draining && !h->final_goaway && h->drain_ms + H2_DRAIN_PING_MS < d)
		d = h->drain_ms + H2_DRAIN_PING_MS;
	return d;
}

/* After every event: close when the session is over, else watch what it
 * needs and arm the timer. 0 or CONN_GONE. */
static int h2_after(struct h2_conn *h)
{
	struct conn *c = &h->base;
	bool out = conn_buf_len(&h->out) > 0;
	bool want_read = nghttp2_session_want_read(h->ng);
	bool want_write = nghttp2_session_want_write(h->ng);
	if (!out && !want_write && (!want_read || h->peer_eof)) {
		/* The session is over (GOAWAY both ways or sent and no stream
		 * left), or the peer closed and nothing is left to send. */
		if (h->peer_eof && !want_read)
			conn_close(c);
		else
			conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
		return CONN_GONE;
	}
	unsigned ops = 0;
	if (want_read && !h->peer_eof && !h->blocked)
		ops |= LOOP_READ;
	if (out || h->more)
		ops |= LOOP_WRITE;
	if (ops == 0) {
		/* Nothing can move it: a peer at its end of stream (it can
		 * open no window) whose answers wait, or output that found no
		 * memory with nothing to read. Watching nothing would leave
		 * an error or hang-up spinning; close, as HTTP/1.1 does. */
		conn_close(c);
		return CONN_GONE;
	}
	int r = conn_watch(c, conn_watch_for(c, ops));
	if (r < 0) {
		log_errno(LOG_ERR, r, "http2: loop_mod_fd");
		conn_close(c);
		return CONN_GONE;
	}
	uint64_t d = h2_deadline(h);
	if (d != UINT64_MAX && (!loop_timer_armed(&c->timer) || c->timer.deadline_ms > d))
		loop_timer_arm_at(c->loop, &c->timer, d);
	return 0;
}

static void h2_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	struct h2_conn *h = arg;
	struct conn *c = &h->base;
	if (events & LOOP_ERROR) {
		conn_close(c);
		return;
	}
	events = conn_can(c, events);
	if (h->dead) {
		(void)h2_close_after(h);
		return;
	}
	/* Output first: what waited for the socket; then input, which a
	 * peer that does not read gets no turn for (h2_read). */
	if ((events & LOOP_WRITE) && h2_write(h) < 0)
		return;
	if ((events & LOOP_READ) && !h->blocked && h2_read(h) < 0)
		return;
	if (h2_write(h) < 0)
		return;
	(void)h2_after(h);
}

static void h2_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)t;
	struct h2_conn *h = arg;
	struct conn *c = &h->base;
	uint64_t now = loop_now_ms(loop);
	const struct http_config *hc = http_w.http;
	if (h->dead) {
		conn_close(c); /* its last frames never went out */
		return;
	}
	if (h->n_streams == 0 && conn_buf_len(&h->out) == 0 &&
	    now >= h->idle_since + (h->requests ? hc->keepalive_timeout_ms
								   : hc->header_timeout_ms)) {
		/* Idle: say goodbye (GOAWAY NO_ERROR) and close. */
		nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR);
		if (h2_write(h) == 0)
			(void)h2_close_after(h); /* once the GOAWAY is out */
		return;
	}
	if ((h->n_answered || conn_buf_len(&h->out)) && now >= h->progress_ms + hc->send_timeout_ms) {
		char peer[64];
		conn_peer_str(c, peer, sizeof(peer));
		log_info("http2: %s took nothing for send_timeout, closing", peer);
		conn_close(c);
		return;
	}
	for (struct h2_stream *st = h->first; st; st = st->next)
		if (!st->complete && !st->answered && now >= st->start_ms + hc->header_timeout_ms)
			h2_respond_error(h, st, 408);
	if (h->draining && !h->final_goaway && now >= h->drain_ms + H2_DRAIN_PING_MS)
		h2_goaway_final(h);
	if (h->nomem_ms && now >= h->nomem_ms + H2_NOMEM_RETRY_MS)
		h->nomem_ms = 0; /* h2_write below tries again */
	if (h->deferred_ms && now >= h->deferred_ms + H2_SLIVER_WAIT_MS)
		h2_resume_deferred(h, true); /* no wider window came: the sliver goes */
	if (h2_write(h) < 0)
		return;
	(void)h2_after(h);
}

/* ------------------------------------------------------------ connection */

static void h2_drain(struct conn *c)
{
	struct h2_conn *h = (struct h2_conn *)c;
	if (h->draining || h->dead || c->lingering)
		return; /* already on its way out */
	h->draining = true;
	h->drain_ms = loop_now_ms(c->loop);
	if (!h->final_goaway) {
		/* RFC 9113 §6.8: a GOAWAY that promises every stream, then one
		 * round trip later the real last stream id. */
		nghttp2_submit_shutdown_notice(h->ng); /* its sending queues the PING */
	}
	if (h->busy)
		return; /* the event being handled writes and re-arms */
	if (h2_write(h) < 0)
		return;
	(void)h2_after(h);
}

static void h2_free(struct conn *c)
{
	struct h2_conn *h = (struct h2_conn *)c;
	if (http_w.env->metrics)
		metrics_gauge(&http_w.env->metrics->conns_http2, -1);
	/* Deleting the session calls no stream close callback: the streams
	 * still open are logged, counted (as reset) and freed here. */
	nghttp2_session_del(h->ng);
	h->ng = NULL;
	while (h->first)
		h2_stream_done(h, h->first, true);
	h2_out_give(h);
	free(h);
}

static const struct conn_ops h2_conn_ops = {
	.drain = h2_drain,
	.free = h2_free,
};

int http2_take_over(struct http_conn *hc)
{
	struct h2_conn *h = calloc(1, sizeof(*h));
	if (!h) {
		h2_nomem_dropped(0);
		conn_close(&hc->base);
		return CONN_GONE;
	}
	struct conn *c = &h->base;
	conn_move(c, &hc->base);
	c->ops = &h2_conn_ops;
	c->timer.fn = h2_timeout;
	c->timer.arg = h;
	loop_set_handler(c->loop, c->fd, h2_io, h);
	h->credit = H2_CREDIT_START;
	h->scan.preface = HTTP2_PREFACE_LEN;
	h->idle_since = loop_now_ms(c->loop);
	/* The bytes already read: the preface and what followed it. */
	size_t len = conn_buf_len(&hc->in);
	const struct http2_config *c2 = http2_cfg(http_w.cfg);
	size_t max_list = c2->max_header_list_size ? c2->max_header_list_size : http_w.http->max_header_size;
	h->max_list = max_list;
	h->max_streams = c2->max_concurrent_streams;
	int r = nghttp2_session_server_new3(&h->ng, h2_callbacks, h, h2_option, &h2_mem);
	if (r == 0) {
		nghttp2_settings_entry iv[] = {
			{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c2->max_concurrent_streams * 2 },
			{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c2->initial_window_size },
			{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)max_list },
			{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
		};
		r = nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	}
	sb_add32(&http_w.env->slot->h2_connections, 1);
	if (http_w.env->metrics)
		metrics_gauge(&http_w.env->metrics->conns_http2, 1);
	/* hc's buffers serve as ours while the first responses go out (its
	 * input, read from below, is the bytes fed now). */
	bool peer_eof = http_has(hc, HC_PEER_EOF);
	h->io = hc;
	h->out = hc->out;
	h->out.start = h->out.end = 0;
	ssize_t fed = 0;
	if (r == 0 && len) {
		fed = h2_feed(h, (const uint8_t *)hc->in.data + hc->in.start, len);
	}
	if (r != 0) {
		h2_nomem_dropped(r);
		conn_close(c);
		return CONN_GONE;
	}
	h->peer_eof = peer_eof;
	if (fed < 0) {
		h2_fatal(h, fed);
		return CONN_GONE;
	}
	if (proto_env_draining(http_w.env))
		h2_drain(c);
	else if (h2_write(h) == 0)
		(void)h2_after(h);
	return CONN_GONE;
}

/* ------------------------------------------------------------ worker */

int http2_init(void)
{
	if (h2_callbacks)
		return 0;
	nghttp2_session_callbacks *cb;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_send_callback(cb, h2_on_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, h2_on_send_data);
	nghttp2_session_callbacks_set_on_begin_frame_callback(cb, h2_on_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2_on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
	nghttp2_option *opt;
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		return -ENOMEM;
	}
	/* RFC 9218 priorities: the priority field and PRIORITY_UPDATE. */
	nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
	/* Closed streams are not kept for RFC 7540's priority tree. */
	nghttp2_option_set_no_closed_streams(opt, 1);
	/* Queued SETTINGS/PING ACKs of a peer that does not read. */
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
#if HAVE_DECL_NGHTTP2_OPTION_SET_STREAM_RESET_RATE_LIMIT
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
#endif
#if HAVE_DECL_NGHTTP2_OPTION_SET_MAX_CONTINUATIONS
	nghttp2_option_set_max_continuations(opt, 8);
#endif
	h2_callbacks = cb;
	h2_option = opt;
	return 0;
}

void http2_done(void)
{
	if (h2_callbacks)
		nghttp2_session_callbacks_del(h2_callbacks);
	if (h2_option)
		nghttp2_option_del(h2_option);
	h2_callbacks = NULL;
	h2_option = NULL;
	h2_stream_spares_free();
	h2_mem_done();
}
