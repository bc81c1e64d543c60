/* http conn: an HTTP/1.1 connection (RFC 9110, RFC 9112): its state
 * machine, its I/O (through the connection's transport: worker/transport.h),
 * timeouts and drain.
 *
 * One struct http_conn per connection, driven by an explicit state machine:
 *
 *   IDLE --first byte--> HEAD --head complete--> [BODY] --> SEND --done--+
 *    ^                                                                   |
 *    +------------------ keep-alive, next request ----------------------+
 *
 *   IDLE  waiting for a request: header_timeout on a fresh connection,
 *         keepalive_timeout between requests; expiry closes silently.
 *   HEAD  part of a request head is buffered; header_timeout runs from its
 *         first byte and is not extended (slowloris) -> 408 + close.
 *   BODY  the head is complete and its body is read and discarded
 *         (RFC 9112 §6.3, §7.1); the head stays at the front of the input
 *         buffer so the parsed request's slices stay valid. The "client body
 *         timeout" is header_timeout again, counted from the last byte that
 *         made progress -> 408 + close.
 *   SEND  a response is being written: header block (and small bodies) from
 *         the output buffer, large bodies with sendfile(2). send_timeout
 *         counts from the last write that made progress -> close.
 *
 * Requests are handled strictly one at a time and in order (pipelining,
 * RFC 9112 §9.3.2): bytes of later requests stay in the input buffer while a
 * response is written, and reading stops while that buffer is full. A
 * response that is all in the output buffer waits there while the next
 * buffered request is answered behind it; the buffer goes out in one write
 * when the buffered requests are answered or it is nearly full (a batch
 * that blocks is finished in SEND with HC_FLUSH_ONLY).
 *
 * Drain (proto_env_draining): every response from then on says
 * Connection: close; an idle keep-alive connection is closed at once unless
 * its next request is already in the socket, which is answered first; a
 * connection mid-request or mid-response finishes it and then closes. Closes
 * that may race with a client's next request are lingering (RFC 9112 §9.6).
 *
 * Framing errors from the parser are answered with Connection: close
 * because the request stream cannot be trusted.
 *
 * Memory: an IDLE connection with nothing buffered is a small struct
 * http_idle; its first byte wakes it into a struct http_conn that comes,
 * buffers and all, from the worker's pool (pool.c) and goes back when the
 * connection is idle again (idle.c, which also holds connections that
 * wait for memory and accepts new ones). Nothing else is allocated
 * per request except the bodies of the two non-hot-path responses
 * (directory listings and the status JSON).
 *
 * Packets (the system calls named here are those of a plain socket; the
 * state machine asks for them through the transport: conn_writev() with
 * TRANSPORT_MORE, conn_sendfile(), conn_hint()): header blocks and small
 * bodies go out in a single sendmsg();
 * before a sendfile() body the header block is sent with MSG_MORE so the
 * kernel coalesces it with the first file bytes. So Nagle could only delay
 * the final partial segment of a write that is more than one segment, or
 * that follows a write the socket did not take whole; before the first
 * such write TCP_NODELAY is set (once), which avoids that without adding
 * packets. A connection whose answers are all small (the common
 * Connection: close case) never needs the setsockopt() call.
 * The last write before a close is sent with MSG_MORE too, so the FIN the
 * close adds rides in its last segment. And a new TCP connection leaves
 * quick-ack mode at once (TCP_QUICKACK 0, before its request has arrived):
 * the kernel would otherwise acknowledge the request in a segment of its
 * own a few microseconds before the response that carries the same ACK.
 * A Connection: close exchange is then 8 segments instead of 10, and the
 * saving lands on the client's side of loopback as much as ours. As soon as
 * we wait for more of a request (a head in parts, a body), quick acks come
 * back on (http_acks_now): a client with Nagle on would otherwise hold its
 * next small write until our delayed ACK, 40 ms later.
 *
 * A transport that must read before it can write, or write before it can
 * read (TLS), says so after an -EAGAIN; http_update_mask() then watches
 * the direction it waits for and http_conn_events() lets the event through
 * to the operation that waits (conn_watch_for(), conn_can()). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proto/http/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "proto/http/access_log.h"
#include "proto/http/h1.h"
#include "proto/http/h2.h"
#include "proto/http/pool.h"
#include "proto/http/response.h"

#define HTTP_BATCH_ROOM (20 * 1024)      /* batch pipelined responses while this much output room is left */
#define HTTP_SENDFILE_CHUNK (512 * 1024) /* per wake-up, so one download cannot starve others */

static int http_conn_process(struct http_conn *hc);

/* ------------------------------------------------------------ timers */

/* Set the state's timeout to ms from now. Lazy: the heap is touched only
 * when the timer is not armed or armed too late; a timer that fires before
 * hc->session.deadline re-arms itself for the remainder. So a keep-alive request
 * answered without blocking costs no timer operation at all. */
static void http_timer_set(struct http_conn *hc, uint64_t ms)
{
	struct conn *c = &hc->base;
	hc->session.deadline = loop_now_ms(c->loop) + ms;
	if (!loop_timer_armed(&c->timer) || c->timer.deadline_ms > hc->session.deadline)
		loop_timer_arm_at(c->loop, &c->timer, hc->session.deadline);
}

/* ------------------------------------------------------------ I/O */

static void http_count_out(struct http_conn *hc, size_t n, bool is_body)
{
	sb_add(&http_w.env->slot->bytes_out, n);
	if (is_body) {
		hc->body_sent += n;
		return;
	}
	if (hc->out_skip >= n) {
		hc->out_skip -= n;
	} else {
		hc->body_sent += n - hc->out_skip;
		hc->out_skip = 0;
	}
}

/* The response is waiting for the socket: send_timeout counts from the
 * last write that made progress (or from the first time it blocked). */
static void http_send_progress(struct http_conn *hc, bool progress)
{
	if (hc->state != HTTP_SEND || (http_has(hc, HC_SEND_WAITING) && !progress))
		return;
	http_set(hc, HC_SEND_WAITING);
	http_timer_set(hc, http_w.http->send_timeout_ms);
}

/* What one read or write step did. */
enum http_io {
	HTTP_IO_GONE = CONN_GONE, /* the connection was closed: touch nothing */
	HTTP_IO_NONE = 0,         /* nothing now: the transport is full, or has no input yet */
	HTTP_IO_DONE = 1,         /* bytes read; or everything written */
	HTTP_IO_SHARE_USED = 2,   /* a file body used this wake-up's share: LOOP_WRITE brings us back */
};

/* After a write failed with err (-errno): HTTP_IO_NONE when the transport
 * is full, else the connection is closed now (HTTP_IO_GONE). */
static enum http_io http_write_failed(struct http_conn *hc, ssize_t err)
{
	if (err == -EAGAIN)
		return HTTP_IO_NONE;
	conn_close(&hc->base);
	return HTTP_IO_GONE;
}

#define HTTP_NAGLE_SAFE 1400 /* a write this small is one segment on any usual path MTU */

/* Before a write of len bytes (or a sendfile, len 0): TCP_NODELAY once it
 * can matter (see "Packets" above). */
static void http_nodelay(struct http_conn *hc, size_t len, bool file)
{
	if (http_has(hc, HC_NODELAY) || (!file && len <= HTTP_NAGLE_SAFE && !http_has(hc, HC_SEND_WAITING)))
		return;
	http_set(hc, HC_NODELAY);
	(void)conn_hint(&hc->base, TRANSPORT_NODELAY);
}

/* Whether what is buffered is the rest of a response after which the
 * connection closes: conn_close() or the lingering close's shutdown() sends
 * FIN right after the last write, and tcp_send_fin() adds it to a segment
 * still held (RFC 9293 allows FIN on a data segment). One packet less for
 * both ends on every Connection: close request. */
static bool http_last_write(const struct http_conn *hc)
{
	return hc->state == HTTP_SEND && http_has(hc, HC_CLOSE_AFTER) && !hc->src.left &&
	       hc->src.kind != HTTP_SRC_PARTS;
}

/* Write the output buffer and a memory body (hc->src) together, in one
 * vector (one sendmsg() on a plain socket). */
static enum http_io http_write_buffered(struct http_conn *hc, uint64_t *progress)
{
	struct conn *c = &hc->base;
	while (conn_buf_len(&hc->out) || http_src_mem_left(&hc->src)) {
		struct iovec iov[2];
		int n_iov = 0;
		if (conn_buf_len(&hc->out)) {
			iov[n_iov].iov_base = hc->out.data + hc->out.start;
			iov[n_iov++].iov_len = conn_buf_len(&hc->out);
		}
		if (http_src_mem_left(&hc->src)) {
			iov[n_iov].iov_base = (char *)hc->src.mem + hc->src.mem_off;
			iov[n_iov++].iov_len = http_src_mem_left(&hc->src);
		}
		size_t total = iov[0].iov_len + (n_iov > 1 ? iov[1].iov_len : 0);
		http_nodelay(hc, total, false);
		/* More to come: let the header block share packets with the
		 * file; and hold the end of a last response for the close that
		 * follows at once, so the FIN rides in its last packet. */
		ssize_t w = conn_writev(c, iov, n_iov, hc->src.left || http_last_write(hc) ? TRANSPORT_MORE : 0);
		if (w < 0)
			return http_write_failed(hc, w);
		if ((size_t)w < total)
			http_nodelay(hc, 0, true); /* the rest follows unacknowledged bytes */
		size_t left = (size_t)w;
		size_t from_out = left < conn_buf_len(&hc->out) ? left : conn_buf_len(&hc->out);
		if (from_out) {
			conn_buf_consume(&hc->out, from_out);
			http_count_out(hc, from_out, false);
			left -= from_out;
		}
		if (left) {
			hc->src.mem_off += left;
			http_count_out(hc, left, true);
		}
		*progress += (uint64_t)w;
	}
	if (hc->src.kind == HTTP_SRC_MEM)
		http_src_release(&hc->src);
	return HTTP_IO_DONE;
}

/* Send the file body (sendfile() on a plain socket), at most
 * HTTP_SENDFILE_CHUNK per wake-up. */
static enum http_io http_write_file(struct http_conn *hc, uint64_t *progress)
{
	struct conn *c = &hc->base;
	uint64_t sent_now = 0;
	while (hc->src.left) {
		if (sent_now >= HTTP_SENDFILE_CHUNK)
			return HTTP_IO_SHARE_USED;
		size_t chunk = HTTP_SENDFILE_CHUNK - sent_now;
		if (chunk > hc->src.left)
			chunk = hc->src.left;
		http_nodelay(hc, 0, true);
		ssize_t w = conn_sendfile(c, hc->src.fd, &hc->src.off, chunk);
		if (w < 0)
			return http_write_failed(hc, w);
		if (w == 0) {
			/* The file shrank: Content-Length cannot be kept. */
			log_warning("http: file shrank while being sent, closing connection");
			conn_close(c);
			return HTTP_IO_GONE;
		}
		hc->src.left -= (uint64_t)w;
		sent_now += (uint64_t)w;
		*progress += (uint64_t)w;
		http_count_out(hc, (size_t)w, true);
	}
	if (hc->src.kind == HTTP_SRC_FILE) /* multipart: later parts read it too */
		http_src_release(&hc->src);
	return HTTP_IO_DONE;
}

/* Write what is queued: HTTP_IO_DONE (everything written), HTTP_IO_NONE
 * (the transport is full, or this wake-up's share is used: LOOP_WRITE
 * brings us back), or HTTP_IO_GONE. */
static enum http_io http_conn_write(struct http_conn *hc)
{
	uint64_t progress = 0;
	enum http_io r;
	/* Buffered bytes, then the file; a multipart body queues its next
	 * part's header and bytes (h1.c) and goes round again. */
	for (;;) {
		r = http_write_buffered(hc, &progress);
		if (r == HTTP_IO_DONE && hc->state == HTTP_SEND)
			r = http_write_file(hc, &progress);
		if (r != HTTP_IO_DONE || !http_respond_next_part(hc))
			break;
	}
	if (r == HTTP_IO_GONE)
		return r;
	if (r == HTTP_IO_DONE) {
		http_clear(hc, HC_WANT_WRITE);
		return HTTP_IO_DONE;
	}
	http_set(hc, HC_WANT_WRITE);
	http_send_progress(hc, r == HTTP_IO_SHARE_USED || progress > 0);
	return HTTP_IO_NONE;
}

/* Register the events the state needs. A connection that wants nothing at
 * all would be stuck (and an error or hang-up would spin): close it.
 * 0 or CONN_GONE. */
static int http_update_mask(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	unsigned ops = 0;
	if (!http_has(hc, HC_PEER_EOF) && conn_buf_room(&hc->in) > 0)
		ops |= LOOP_READ;
	if (http_has(hc, HC_WANT_WRITE))
		ops |= LOOP_WRITE;
	if (ops == 0) {
		conn_close(c);
		return CONN_GONE;
	}
	int r = conn_watch(c, conn_watch_for(c, ops));
	if (r < 0) {
		log_errno(LOG_ERR, r, "http: loop_mod_fd");
		conn_close(c);
		return CONN_GONE;
	}
	return 0;
}

/* The current response has been written completely: log it, then the
 * next request or the close. 0 or CONN_GONE. */
static int http_response_done(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	http_clear(hc, HC_RESPONDING);
	http_log_write(hc);
	http_src_release(&hc->src);
	hc->session.responses++;
	http_w.env->request_done(http_w.env);
	if (http_has(hc, HC_CLOSE_AFTER)) {
		/* Lingering only where a reset could hurt: the client asked for
		 * the close, sent no body (some HTTP/1.0 clients add a CRLF after
		 * one) and nothing more, so it is not writing. Otherwise (our
		 * close, or bytes unread) FIN first, then discard. */
		if (!hc->req.keep_alive && http_has(hc, HC_CLOSE_REQUESTED) && conn_buf_len(&hc->in) == 0 &&
		    hc->req.body == HTTP_BODY_NONE)
			conn_close(c);
		else
			conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
		return CONN_GONE;
	}
	hc->state = HTTP_IDLE;
	http_parser_init(&hc->parser);
	hc->session.deadline = 0; /* IDLE sets its own */
	return 0;
}

/* Move unparsed bytes to the front when that makes room (never while a
 * parsed head is held: BODY keeps it at offset 0 anyway). */
static void http_in_make_room(struct http_conn *hc)
{
	if (conn_buf_len(&hc->in) == 0)
		hc->in.start = hc->in.end = 0;
	else if (hc->state != HTTP_BODY && hc->in.start > 0 && hc->in.cap - hc->in.end < hc->in.cap / 4)
		conn_buf_compact(&hc->in);
}

/* Read once: HTTP_IO_DONE (got bytes, or the end of a request stream
 * with something left to answer), HTTP_IO_NONE (nothing now), HTTP_IO_GONE. */
static enum http_io http_conn_read(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	if (http_has(hc, HC_PEER_EOF))
		return HTTP_IO_NONE;
	http_in_make_room(hc);
	ssize_t n = conn_buf_read(&hc->in, c);
	if (n > 0) {
		hc->session.rx_total += (uint64_t)n;
		sb_add(&http_w.env->slot->bytes_in, (uint64_t)n);
		return HTTP_IO_DONE;
	}
	if (n == -EAGAIN || n == -ENOBUFS)
		return HTTP_IO_NONE;
	if (n == 0) {
		/* The client finished sending: requests already received are
		 * still answered (a half-close is not an abort). */
		http_set(hc, HC_PEER_EOF);
		if (hc->state == HTTP_SEND)
			return HTTP_IO_NONE;
		if (hc->state == HTTP_IDLE && conn_buf_len(&hc->in) == 0) {
			conn_close(c);
			return HTTP_IO_GONE;
		}
		return HTTP_IO_DONE;
	}
	conn_close(c); /* ECONNRESET and friends */
	return HTTP_IO_GONE;
}

/* Queue "100 Continue" (RFC 9110 §10.1.1): only for HTTP/1.1 clients. */
static void http_send_continue(struct http_conn *hc)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (hc->req.version_minor == 0)
		return;
	if (conn_buf_room(&hc->out) < sizeof(cont) - 1)
		return;
	conn_buf_compact(&hc->out);
	memcpy(hc->out.data + hc->out.end, cont, sizeof(cont) - 1);
	hc->out.end += sizeof(cont) - 1;
	hc->out_skip = conn_buf_len(&hc->out);
}

/* Feed buffered bytes after the head to the body reader, removing them
 * from the buffer. 1 = body complete, 0 = need more, -EBADMSG = refused
 * (hc->body.status). */
static int http_body_feed(struct http_conn *hc)
{
	size_t head = hc->req.head_len;
	char *p = hc->in.data + hc->in.start + head;
	size_t avail = conn_buf_len(&hc->in) - head;
	size_t used = 0;
	int r = http_body_consume(&hc->body, p, avail, &used);
	if (used > avail)
		used = avail;
	if (used) {
		memmove(p, p + used, avail - used);
		hc->in.end -= used;
	}
	return r;
}

/* What a step of the state machine asks of its driver. */
enum http_step {
	HTTP_STEP_GONE = CONN_GONE, /* the connection was closed: touch nothing */
	HTTP_STEP_WAIT = 0,  /* wait for an event */
	HTTP_STEP_AGAIN = 1, /* the state changed: run the next step */
};

/* The whole request (head and body) is in: answer it. */
static void http_request_complete(struct http_conn *hc)
{
	http_route(hc);
	/* The body bytes were already removed behind the head. */
	conn_buf_consume(&hc->in, hc->req.head_len);
}

/* After feeding body bytes. */
static enum http_step http_body_result(struct http_conn *hc, int r)
{
	if (r > 0) {
		http_request_complete(hc);
		return HTTP_STEP_AGAIN;
	}
	if (r < 0) {
		/* Malformed chunking or too large (RFC 9112 §7.1): the stream
		 * cannot be resynchronised. */
		http_respond_error(hc, hc->body.status, HTTP_CLOSE);
		return HTTP_STEP_AGAIN;
	}
	if (http_has(hc, HC_PEER_EOF)) {
		conn_close(&hc->base);
		return HTTP_STEP_GONE;
	}
	return HTTP_STEP_WAIT;
}

/* The head just parsed as complete: read the body if any, else answer. */
static enum http_step http_head_complete(struct http_conn *hc)
{
	http_put(hc, HC_HEAD_ONLY, hc->req.method == HTTP_METHOD_HEAD);
	if (hc->req.body == HTTP_BODY_NONE) {
		http_request_complete(hc);
		return HTTP_STEP_AGAIN;
	}
	/* Keep the head at offset 0 while the body is read, so the request's
	 * slices stay valid and the buffer's room is all after it: move it and
	 * parse again (cheap, and only for requests with bodies). */
	if (hc->in.start > 0) {
		conn_buf_compact(&hc->in);
		http_parser_init(&hc->parser);
		int r = http_parse_request(&hc->parser, hc->in.data, conn_buf_len(&hc->in), &http_w.lim,
					   &hc->req);
		if (r <= 0) {
			http_respond_error(hc, r < 0 ? hc->parser.status : 400, HTTP_UNPARSED | HTTP_CLOSE);
			return HTTP_STEP_AGAIN;
		}
	}
	http_body_init(&hc->body, &hc->req, http_w.http->max_body_size);
	hc->state = HTTP_BODY;
	/* Answers batched before this request go out now: the client may wait
	 * for them before it sends the body. */
	if (conn_buf_len(&hc->out) && http_conn_write(hc) == HTTP_IO_GONE)
		return HTTP_STEP_GONE;
	http_timer_set(hc, http_w.http->header_timeout_ms);
	int r = http_body_feed(hc);
	if (r == 0 && hc->req.expect_continue && !http_has(hc, HC_PEER_EOF)) {
		http_send_continue(hc);
		if (http_conn_write(hc) == HTTP_IO_GONE)
			return HTTP_STEP_GONE;
	}
	return http_body_result(hc, r);
}

#define HTTP_STEP_NOT_H2 2 /* http_step_h2(): HTTP/1.1 goes on */

/* A connection's first bytes: HTTP/2 (h2.c) takes it over, or waits for
 * the rest of its preface (header_timeout), or HTTP_STEP_NOT_H2. */
static int http_step_h2(struct http_conn *hc)
{
	int h2 = http2_detect(hc);
	if (h2 < 0)
		return HTTP_STEP_NOT_H2;
	if (h2 > 0) {
		(void)http2_take_over(hc);
		return HTTP_STEP_GONE;
	}
	if (http_has(hc, HC_PEER_EOF)) {
		conn_close(&hc->base);
		return HTTP_STEP_GONE;
	}
	if (hc->state == HTTP_IDLE) {
		hc->state = HTTP_HEAD;
		http_timer_set(hc, http_w.http->header_timeout_ms);
	}
	return HTTP_STEP_WAIT;
}

/* IDLE or HEAD: parse what is buffered. */
static enum http_step http_step_head(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	size_t len = conn_buf_len(&hc->in);
	if (len == 0) {
		if (http_has(hc, HC_PEER_EOF)) {
			conn_close(c);
			return HTTP_STEP_GONE;
		}
		if (proto_env_draining(http_w.env) && hc->session.responses > 0 && !conn_may_hand_off(c)) {
			/* A request that already reached the socket is still
			 * answered; otherwise this is an idle keep-alive: close
			 * without resetting a racing request (RFC 9112 §9.6). */
			enum http_io r = http_conn_read(hc);
			if (r == HTTP_IO_GONE)
				return HTTP_STEP_GONE;
			if (r == HTTP_IO_DONE)
				return HTTP_STEP_AGAIN;
			if (proto_env_stopping(http_w.env)) {
				/* A stop: nobody serves after us. FIN now; a racing
				 * request sees a clean EOF and is re-sent. */
				conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
				return HTTP_STEP_GONE;
			}
			if (!http_has(hc, HC_DRAIN_GRACE)) {
				/* A busy keep-alive client sends its next request a
				 * moment after reading a response; closing now would
				 * make it retry. Give it a short grace to send one
				 * more, answered with Connection: close; the timeout
				 * then closes the connection lingering. */
				http_set(hc, HC_DRAIN_GRACE);
				hc->state = HTTP_IDLE;
				http_timer_set(hc, HTTP_DRAIN_IDLE_GRACE_MS);
				return HTTP_STEP_WAIT;
			}
			return HTTP_STEP_WAIT;
		}
		if (hc->state != HTTP_IDLE || hc->session.deadline == 0) {
			hc->state = HTTP_IDLE;
			http_timer_set(hc, hc->session.responses ? http_w.http->keepalive_timeout_ms
							 : http_w.http->header_timeout_ms);
		}
		return HTTP_STEP_WAIT;
	}
	if (hc->session.responses == 0) {
		/* The first request may be HTTP/2's preface. */
		int h2 = http_step_h2(hc);
		if (h2 != HTTP_STEP_NOT_H2)
			return (enum http_step)h2;
	}
	if (hc->state == HTTP_IDLE)
		hc->req_start_ms = loop_now_ms(c->loop); /* the access log's and the metrics' request time */
	int r = http_parse_request(&hc->parser, hc->in.data + hc->in.start, len, &http_w.lim, &hc->req);
	if (r > 0)
		return http_head_complete(hc);
	if (r < 0) {
		http_respond_error(hc, hc->parser.status, HTTP_UNPARSED | HTTP_CLOSE);
		return HTTP_STEP_AGAIN;
	}
	if (http_has(hc, HC_PEER_EOF)) {
		conn_close(c); /* a partial request, and nothing more will come */
		return HTTP_STEP_GONE;
	}
	if (len >= http_w.in_cap) {
		/* Only a parser that ignored max_header_size gets here. */
		http_respond_error(hc, 431, HTTP_UNPARSED | HTTP_CLOSE);
		return HTTP_STEP_AGAIN;
	}
	if (hc->state == HTTP_IDLE) {
		/* First byte of a request: the header timeout runs from here
		 * and is never extended (slowloris). */
		hc->state = HTTP_HEAD;
		http_timer_set(hc, http_w.http->header_timeout_ms);
	}
	return HTTP_STEP_WAIT;
}

/* Whether the response just queued may wait in the output buffer while
 * the next pipelined request is answered: it is all in the buffer, does
 * not close the connection, more request bytes are already here, and
 * the buffer has room for another response with a small body. */
static bool http_may_batch(const struct http_conn *hc)
{
	return hc->src.kind == HTTP_SRC_NONE &&
	       !http_has(hc, HC_CLOSE_AFTER | HC_FLUSH_ONLY | HC_PEER_EOF) &&
	       conn_buf_len(&hc->in) > 0 && conn_buf_room(&hc->out) >= HTTP_BATCH_ROOM;
}

/* SEND: write; when done, go on to the next request or close. Pipelined
 * responses that are all in the output buffer are not written one by one:
 * each is finished (logged, counted) as queued, and the buffer goes out in
 * one write when the requests buffered so far are answered (in order, as
 * they are queued) or the buffer is full. */
static enum http_step http_step_send(struct http_conn *hc)
{
	if (http_may_batch(hc)) {
		hc->body_sent = conn_buf_len(&hc->out) - hc->out_skip;
		hc->out_skip = conn_buf_len(&hc->out);
		if (http_response_done(hc) < 0)
			return HTTP_STEP_GONE;
		return HTTP_STEP_AGAIN;
	}
	enum http_io r = http_conn_write(hc);
	if (r == HTTP_IO_GONE)
		return HTTP_STEP_GONE;
	if (r == HTTP_IO_NONE)
		return HTTP_STEP_WAIT;
	if (http_has(hc, HC_FLUSH_ONLY)) {
		/* The batched answers are out: back to reading requests. */
		http_clear(hc, HC_FLUSH_ONLY);
		hc->state = HTTP_IDLE;
		hc->session.deadline = 0;
		return HTTP_STEP_AGAIN;
	}
	if (http_response_done(hc) < 0)
		return HTTP_STEP_GONE;
	return HTTP_STEP_AGAIN;
}

/* Before waiting for more request bytes: write the batched answers. If the
 * socket is full they are written in SEND (HC_FLUSH_ONLY), so send_timeout
 * and back-pressure apply to them as to any response. */
static enum http_step http_flush_batch(struct http_conn *hc)
{
	if ((hc->state != HTTP_IDLE && hc->state != HTTP_HEAD) || conn_buf_len(&hc->out) == 0)
		return HTTP_STEP_WAIT;
	hc->state = HTTP_SEND;
	http_set(hc, HC_FLUSH_ONLY);
	http_clear(hc, HC_SEND_WAITING);
	hc->out_skip = conn_buf_len(&hc->out); /* all of it was counted as queued */
	return http_step_send(hc);
}

/* Drive the state machine as far as the buffered bytes allow; 0 or
 * CONN_GONE. */
static int http_conn_process(struct http_conn *hc)
{
	for (;;) {
		enum http_step step;
		switch (hc->state) {
		case HTTP_IDLE:
		case HTTP_HEAD:
			step = http_step_head(hc);
			break;
		case HTTP_BODY:
			step = http_body_result(hc, http_body_feed(hc));
			break;
		case HTTP_SEND:
		default:
			step = http_step_send(hc);
			break;
		}
		if (step == HTTP_STEP_WAIT)
			step = http_flush_batch(hc);
		if (step == HTTP_STEP_GONE)
			return CONN_GONE;
		if (step == HTTP_STEP_WAIT)
			return 0;
	}
}

/* Waiting for more of a request on a connection whose ACKs are delayed:
 * acknowledge what came now (setting TCP_QUICKACK sends the pending ACK)
 * and from now on as the kernel usually does. */
static void http_acks_now(struct http_conn *hc)
{
	if (!http_has(hc, HC_DELAYED_ACKS) || (hc->state != HTTP_HEAD && hc->state != HTTP_BODY))
		return;
	http_clear(hc, HC_DELAYED_ACKS);
	(void)conn_hint(&hc->base, TRANSPORT_ACKS_NOW);
}

int http_conn_events(struct http_conn *hc, unsigned events)
{
	if (events & LOOP_ERROR) {
		log_warning("http: cannot watch a new connection, closing it");
		conn_close(&hc->base);
		return CONN_GONE;
	}
	/* What the events let through: a transport may wait on the other
	 * direction (want-read / want-write). */
	events = conn_can(&hc->base, events);
	if (events & LOOP_WRITE) {
		if (hc->state == HTTP_SEND) {
			if (http_conn_process(hc) < 0)
				return CONN_GONE;
		} else if (conn_buf_len(&hc->out)) {
			/* 100 Continue while the body is read. */
			if (http_conn_write(hc) == HTTP_IO_GONE)
				return CONN_GONE;
		} else {
			http_clear(hc, HC_WANT_WRITE);
		}
	}
	if (events & LOOP_READ) {
		enum http_io r = http_conn_read(hc);
		if (r == HTTP_IO_GONE)
			return CONN_GONE;
		if (r == HTTP_IO_DONE) {
			if (hc->state == HTTP_BODY)
				http_timer_set(hc, http_w.http->header_timeout_ms);
			if (hc->state != HTTP_SEND && http_conn_process(hc) < 0)
				return CONN_GONE;
		}
	}
	if (http_update_mask(hc) < 0)
		return CONN_GONE;
	http_acks_now(hc);
	return 0;
}

bool http_not_yet(struct loop *loop, struct conn *c, uint64_t deadline)
{
	if (loop_now_ms(loop) >= deadline)
		return false;
	loop_timer_arm_at(loop, &c->timer, deadline);
	return true;
}

/* The keepalive or header timeout of a connection waiting for a request:
 * no byte of one, nothing to answer. After a response, a request may race
 * with our close: close lingering so it sees a clean EOF, not a reset
 * (RFC 9112 §9.6). */
void http_idle_expired(struct conn *c, unsigned responses)
{
	if (responses > 0)
		conn_close_lingering(c, http_w.cfg->server.lingering_timeout_ms);
	else
		conn_close(c);
}

void http_conn_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct http_conn *hc = arg;
	struct conn *c = &hc->base;
	(void)t;
	if (http_not_yet(loop, c, hc->session.deadline))
		return;
	switch (hc->state) {
	case HTTP_IDLE:
		http_idle_expired(c, hc->session.responses);
		return;
	case HTTP_HEAD:
	case HTTP_BODY:
		/* RFC 9110 §15.5.9; the request stream is abandoned. */
		http_respond_error(hc, 408, (hc->state == HTTP_BODY ? HTTP_PERSIST : HTTP_UNPARSED) | HTTP_CLOSE);
		if (http_conn_process(hc) < 0)
			return;
		http_update_mask(hc);
		return;
	case HTTP_SEND:
		if (!http_has(hc, HC_SEND_WAITING)) {
			/* A stale deadline of the previous state. */
			loop_timer_cancel(loop, &c->timer);
			return;
		}
		/* send_timeout: the client stopped reading. */
		log_debug("http: send timeout, closing connection");
		conn_close(c);
		return;
	}
}

/* ------------------------------------------------------------ conn ops */

/* The drain as it is without a hand-off (below). */
static void http_conn_drain_here(struct http_conn *hc);

/* Whether hc is at a request boundary a hand-off may cut at. */
static bool http_at_boundary(const struct http_conn *hc)
{
	return (hc->state == HTTP_IDLE || hc->state == HTTP_HEAD) && conn_buf_len(&hc->out) == 0 &&
	       hc->src.kind == HTTP_SRC_NONE && !hc->base.lingering &&
	       !http_has(hc, HC_RESPONDING | HC_PEER_EOF | HC_WANT_WRITE | HC_CLOSE_AFTER | HC_FLUSH_ONLY) &&
	       conn_buf_len(&hc->in) <= HANDOFF_BYTES_MAX;
}

int http_conn_try_hand_off(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	if (!conn_may_hand_off(c) || !http_at_boundary(hc))
		return 0;
	uint64_t now = loop_now_ms(c->loop);
	struct handoff_conn h = {
		.requests = hc->session.responses,
		.flags = hc->session.flags & HTTP_HANDOFF_FLAGS,
		.idle_left_ms = hc->session.deadline > now ? hc->session.deadline - now : 0,
		.bytes = hc->in.data + hc->in.start,
		.len = conn_buf_len(&hc->in),
	};
	if (http_w.env->hand_off(http_w.env, c, &h) == 0)
		return CONN_GONE;
	/* It stays: drained here, as before hand-off existed. */
	c->no_handoff = true;
	http_conn_drain_here(hc);
	return CONN_GONE; /* the caller touches it no more either way */
}

int http_conn_resume(struct http_conn *hc)
{
	if (http_conn_process(hc) < 0 || http_update_mask(hc) < 0)
		return CONN_GONE;
	http_acks_now(hc);
	return 0;
}

static void http_conn_drain(struct conn *c)
{
	struct http_conn *hc = (struct http_conn *)c;
	if (c->lingering)
		return;
	if (conn_may_hand_off(c)) {
		/* Now if it is at a boundary; else at its next one
		 * (http_full_io in idle.c). */
		(void)http_conn_try_hand_off(hc);
		return;
	}
	http_conn_drain_here(hc);
}

static void http_conn_drain_here(struct http_conn *hc)
{
	struct conn *c = &hc->base;
	if (c->lingering)
		return;
	/* Take in what has already arrived and remember how much: every request
	 * in it is answered (pipelined ones too), the last with Connection:
	 * close (h1.c). An idle keep-alive connection gets a short
	 * grace for one more request, then closes lingering, so a request
	 * racing with the close sees a clean EOF, not a reset (RFC 9112 §9.6);
	 * http_step_head() does that. A fresh connection that has not sent its
	 * first request yet is left to send it (bounded by header_timeout): the
	 * client is certainly about to, and must not see its connection
	 * dropped by a reload. Everything in flight finishes. */
	if (http_conn_read(hc) == HTTP_IO_GONE)
		return;
	http_set(hc, HC_DRAIN_MARKED);
	hc->session.drain_limit = hc->session.rx_total;
	if (http_conn_process(hc) < 0)
		return;
	if (http_update_mask(hc) == 0)
		http_acks_now(hc);
}

static void http_conn_free(struct conn *c)
{
	struct http_conn *hc = (struct http_conn *)c;
	if (http_has(hc, HC_RESPONDING))
		http_log_write(hc); /* an aborted response is still logged */
	http_src_release(&hc->src);
	http_pool_give(hc); /* with its buffers */
}

const struct conn_ops http_conn_ops = {
	.drain = http_conn_drain,
	.free = http_conn_free,
};
