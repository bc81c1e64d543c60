/* transport_tls: a connection's bytes through OpenSSL, records encrypted in
 * user space (no kernel TLS here), over the socket's own fd.
 *
 * The handshake is not a step of its own: the first read drives it, and a
 * protocol sees -EAGAIN until application bytes arrive. So HTTP's
 * header_timeout, which runs from the accept, bounds a handshake too.
 *
 * Writes. OpenSSL seals records into the worker's one output buffer (a
 * write BIO of our own that never blocks), and the transport sends them
 * itself: up to four records (64 KiB of plaintext) per write(), as h2o
 * does, where OpenSSL's socket BIO would make one write() per 16 KiB
 * record. A head and a small body are gathered into one record first (the
 * worker's staging buffer), and files are read into that buffer (pread,
 * 64 KiB at a time) and sealed from there. What the socket does not take
 * stays with the connection (its backlog, allocated only then), and the
 * write reports -EAGAIN: the plaintext is sealed already, so when the
 * protocol repeats the write (with the same bytes in front: it took none)
 * the backlog is sent and the sealed plaintext reported as taken. Output
 * a read makes (the handshake's flights, session tickets, alerts) goes
 * the same way; while a backlog waits, a read first waits for the socket
 * to take it (want-write). SSL_MODE_RELEASE_BUFFERS gives OpenSSL's own
 * buffers back between records, so an idle TLS connection keeps only its
 * session.
 *
 * Reads. OpenSSL reads ahead: a read may leave decrypted bytes, or whole
 * records, in its buffer, where epoll cannot see them. After every read
 * the loop is told whether input is buffered (loop_fd_buffered), and calls
 * the protocol again while it is and the protocol waits to read.
 *
 * TCP_NODELAY is on from the start: records are whole messages already.
 *
 * Errors. A peer that closes without close_notify ends the stream like a
 * FIN (logged at debug level); a handshake that fails is counted in the
 * worker's scoreboard slot and logged at debug level (scanners do this
 * all day); OpenSSL's error queue is cleared before each call. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/scoreboard.h"
#include "worker/conn.h"
#include "worker/tls.h"
#include "worker/transport.h"

#define TLS_BATCH (64 * 1024) /* plaintext sealed per step: four records, one write() */

struct tls_conn {
	SSL *ssl;
	unsigned char *backlog; /* sealed bytes the socket has not taken (malloc'd only then) */
	uint32_t backlog_len, backlog_off;
	uint32_t backlog_plain; /* plaintext a write sealed into them, reported once they are sent */
	bool counted;           /* the handshake was counted (finished or failed) */
	bool sent_close;        /* close_notify queued */
};

/* The worker's: plaintext gathered or read from a file before it is
 * sealed, and OpenSSL's sealed output before it is sent. One of each,
 * since a worker runs one connection at a time and every step ends with
 * the output sent or moved to its connection's backlog. */
static unsigned char tls_stage[TLS_BATCH];
static struct {
	unsigned char *data;
	size_t len, cap;
} tls_out;
static BIO *tls_out_bio; /* every connection's write BIO: appends to tls_out */

/* ------------------------------------------------------------ the output BIO */

static int tls_out_write(BIO *b, const char *data, int len)
{
	(void)b;
	if (len <= 0)
		return 0;
	if (tls_out.len + (size_t)len > tls_out.cap) {
		size_t cap = tls_out.cap ? tls_out.cap : TLS_BATCH + 4096;
		while (cap < tls_out.len + (size_t)len)
			cap *= 2;
		unsigned char *d = realloc(tls_out.data, cap);
		if (!d)
			return -1; /* a fatal error for that connection */
		tls_out.data = d;
		tls_out.cap = cap;
	}
	memcpy(tls_out.data + tls_out.len, data, (size_t)len);
	tls_out.len += (size_t)len;
	return len;
}

static long tls_out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_out_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* The shared write BIO, made once per process. */
static BIO *tls_out_get(void)
{
	if (tls_out_bio)
		return tls_out_bio;
	static BIO_METHOD *method;
	if (!method) {
		method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "drover output");
		if (!method || BIO_meth_set_write(method, tls_out_write) != 1 ||
		    BIO_meth_set_ctrl(method, tls_out_ctrl) != 1 || BIO_meth_set_create(method, tls_out_create) != 1) {
			BIO_meth_free(method);
			method = NULL;
			return NULL;
		}
	}
	tls_out_bio = BIO_new(method);
	return tls_out_bio;
}

/* Send what is sealed: the backlog, then tls_out (which is empty after,
 * what the socket did not take moved to the backlog). 0 when everything
 * is out, -EAGAIN when a backlog waits, -errno. */
static int tls_flush(struct conn *c, struct tls_conn *t)
{
	if (c->fd < 0) {
		tls_out.len = 0;
		return -EBADF;
	}
	for (;;) {
		struct iovec iov[2];
		int n = 0;
		if (t->backlog_off < t->backlog_len)
			iov[n++] = (struct iovec){ t->backlog + t->backlog_off, t->backlog_len - t->backlog_off };
		if (tls_out.len)
			iov[n++] = (struct iovec){ tls_out.data, tls_out.len };
		if (n == 0)
			break;
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			int e = -errno;
			tls_out.len = 0;
			return e;
		}
		if (w < 0)
			break;
		size_t k = (size_t)w, from_backlog = t->backlog_len - t->backlog_off;
		if (k < from_backlog) {
			t->backlog_off += (uint32_t)k;
			continue;
		}
		t->backlog_off = t->backlog_len;
		k -= from_backlog;
		memmove(tls_out.data, tls_out.data + k, tls_out.len - k);
		tls_out.len -= k;
	}
	if (t->backlog_off == t->backlog_len && !tls_out.len) {
		free(t->backlog);
		t->backlog = NULL;
		t->backlog_len = t->backlog_off = 0;
		c->io_wait &= (uint8_t)~TRANSPORT_READ_WAITS_WRITABLE;
		return 0;
	}
	if (tls_out.len) {
		/* The socket is full: keep the rest with the connection. */
		size_t left = t->backlog_len - t->backlog_off;
		unsigned char *b = malloc(left + tls_out.len);
		if (!b) {
			tls_out.len = 0;
			return -ENOMEM;
		}
		if (left)
			memcpy(b, t->backlog + t->backlog_off, left);
		memcpy(b + left, tls_out.data, tls_out.len);
		free(t->backlog);
		t->backlog = b;
		t->backlog_off = 0;
		t->backlog_len = (uint32_t)(left + tls_out.len);
		tls_out.len = 0;
	}
	return -EAGAIN;
}

static int tls_open(struct conn *c)
{
	SSL_CTX *ctx = c->listener ? c->listener->transport_ctx : NULL;
	if (!ctx)
		return -EINVAL;
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	BIO *out = tls_out_get();
	t->ssl = out ? SSL_new(ctx) : NULL;
	if (!t->ssl || SSL_set_rfd(t->ssl, c->fd) != 1 || BIO_up_ref(out) != 1) {
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set0_wbio(t->ssl, out);
	SSL_set_accept_state(t->ssl);
	SSL_set_app_data(t->ssl, c);
	c->transport.state = t;
	/* Every write is a whole record, and the flights of a handshake (and
	 * the session ticket after it) are small: with Nagle on, a response
	 * right after the ticket waits for the client's delayed ACK (40 ms).
	 * Not a socket of TCP (unix): nothing to set. */
	transport_plain.hint(c, TRANSPORT_NODELAY);
	return 0;
}

static void tls_count_handshake(struct conn *c, struct tls_conn *t)
{
	if (t->counted || !SSL_is_init_finished(t->ssl))
		return;
	t->counted = true;
	struct scoreboard_slot *slot = c->env ? c->env->slot : NULL;
	if (slot)
		sb_add(SSL_session_reused(t->ssl) ? &slot->tls_resumed : &slot->tls_full, 1);
	/* By version too, for /metrics: TLSv1.2, TLSv1.3, other. */
	struct metrics_slot *m = c->env ? c->env->metrics : NULL;
	if (m) {
		int v = SSL_version(t->ssl);
		unsigned i = v == TLS1_2_VERSION ? 0 : v == TLS1_3_VERSION ? 1 : 2;
		metrics_add(&m->tls[SSL_session_reused(t->ssl) ? METRICS_TLS_RESUMED : METRICS_TLS_FULL][i], 1);
	}
}

/* A call failed with OpenSSL's result r: -EAGAIN (io_wait says which way
 * it waits), 0 (the peer's end of stream, for reads), or -errno. */
static ssize_t tls_failed(struct conn *c, struct tls_conn *t, int r, bool reading)
{
	int e = SSL_get_error(t->ssl, r);
	unsigned other = reading ? TRANSPORT_READ_WAITS_WRITABLE : TRANSPORT_WRITE_WAITS_READABLE;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (reading)
			c->io_wait &= (uint8_t)~other;
		else
			c->io_wait |= (uint8_t)other;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			c->io_wait |= (uint8_t)other;
		else
			c->io_wait &= (uint8_t)~other;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* close_notify */
	default:
		break;
	}
	unsigned long err = ERR_peek_error();
	int saved = errno;
	ERR_clear_error();
	if (e == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		log_debug("tls: the peer closed without close_notify");
		return t->counted ? 0 : -ECONNRESET;
	}
	if (!t->counted) {
		t->counted = true;
		struct scoreboard_slot *slot = c->env ? c->env->slot : NULL;
		if (slot)
			sb_add(&slot->tls_failed, 1);
		char peer[64];
		conn_peer_str(c, peer, sizeof(peer));
		log_debug("tls: handshake with %s failed: %s", peer,
			  err ? ERR_reason_error_string(err) : e == SSL_ERROR_SYSCALL ? strerror(saved) : "error");
	}
	if (e == SSL_ERROR_SYSCALL && saved && saved != EAGAIN)
		return -saved;
	return -EPROTO;
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	struct tls_conn *t = c->transport.state;
	if (t->backlog) {
		/* Sealed output first: the peer may wait for it before it sends. */
		int f = tls_flush(c, t);
		if (f == -EAGAIN) {
			c->io_wait |= TRANSPORT_READ_WAITS_WRITABLE;
			return -EAGAIN;
		}
		if (f < 0)
			return f;
	}
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_read_ex(t->ssl, buf, len, &n);
	tls_count_handshake(c, t); /* also when the read waits after the handshake's end */
	ssize_t ret = r == 1 ? (ssize_t)n : tls_failed(c, t, r, true);
	if (tls_out.len) {
		/* What the read made: the handshake's flight, a ticket, an alert. */
		int f = tls_flush(c, t);
		if (f == -EAGAIN) {
			c->io_wait |= TRANSPORT_READ_WAITS_WRITABLE;
		} else if (f < 0 && ret >= 0) {
			ret = f;
		}
	}
	if (c->fd >= 0)
		loop_fd_buffered(c->loop, c->fd, ret > 0 && SSL_has_pending(t->ssl));
	return ret;
}

/* Seal len bytes of plaintext at buf and send them: len when all of it is
 * out; -EAGAIN when some of it waits in the backlog (the next write
 * reports it); -errno. */
static ssize_t tls_seal_send(struct conn *c, struct tls_conn *t, const void *buf, size_t len)
{
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_write_ex(t->ssl, buf, len, &n);
	if (r != 1) {
		ssize_t e = tls_failed(c, t, r, false);
		if (tls_out.len)
			tls_flush(c, t); /* an alert, best effort */
		return e == 0 ? -EPIPE : e;
	}
	c->io_wait &= (uint8_t)~TRANSPORT_WRITE_WAITS_READABLE;
	tls_count_handshake(c, t);
	int f = tls_flush(c, t);
	if (f == -EAGAIN)
		t->backlog_plain = (uint32_t)n;
	return f < 0 ? f : (ssize_t)n;
}

/* Before a write of want bytes: send the backlog. 0 to go on, > 0 the
 * plaintext a blocked write sealed (now out: the write reports it), or
 * -EAGAIN/-errno. A protocol repeats a blocked write with at least the
 * bytes it could not write; one that asks for fewer cannot be told that
 * more were taken (-EIO: the connection is closed). */
static ssize_t tls_write_backlog(struct conn *c, struct tls_conn *t, size_t want)
{
	if (t->backlog) {
		int f = tls_flush(c, t);
		if (f < 0)
			return f;
	}
	ssize_t p = t->backlog_plain;
	if ((size_t)p > want) {
		log_error("tls: a write repeated with %zu bytes after %zd were sealed", want, p);
		return -EIO;
	}
	t->backlog_plain = 0;
	return p;
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int n, unsigned flags)
{
	(void)flags; /* records go out as they are sealed */
	struct tls_conn *t = c->transport.state;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	ssize_t p = tls_write_backlog(c, t, total);
	if (p != 0)
		return p;
	if (iov[0].iov_len >= TLS_BATCH || n == 1)
		return tls_seal_send(c, t, iov[0].iov_base, iov[0].iov_len < TLS_BATCH ? iov[0].iov_len : TLS_BATCH);
	size_t len = 0;
	for (int i = 0; i < n && len < TLS_BATCH; i++) {
		size_t k = iov[i].iov_len < TLS_BATCH - len ? iov[i].iov_len : TLS_BATCH - len;
		memcpy(tls_stage + len, iov[i].iov_base, k);
		len += k;
	}
	return tls_seal_send(c, t, tls_stage, len);
}

static ssize_t tls_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
	struct tls_conn *t = c->transport.state;
	if (len == 0)
		return 0;
	ssize_t w = tls_write_backlog(c, t, len);
	if (w == 0) {
		size_t want = len < TLS_BATCH ? len : TLS_BATCH;
		ssize_t got;
		do
			got = pread(fd, tls_stage, want, *off);
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			return got < 0 ? -errno : 0;
		w = tls_seal_send(c, t, tls_stage, (size_t)got);
	}
	if (w > 0)
		*off += w;
	return w;
}

static int tls_pending(struct conn *c)
{
	struct tls_conn *t = c->transport.state;
	if (SSL_has_pending(t->ssl))
		return 1;
	return transport_plain.pending(c);
}

/* Queue close_notify once, after a finished handshake: an orderly end the
 * peer can tell from a truncation. Best effort: a socket too full to take
 * it gets the FIN alone, and after a fatal error OpenSSL sends nothing. */
static void tls_close_notify(struct conn *c, struct tls_conn *t)
{
	if (t->sent_close || !SSL_is_init_finished(t->ssl))
		return;
	t->sent_close = true;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
	tls_flush(c, t);
}

static int tls_shutdown(struct conn *c)
{
	struct tls_conn *t = c->transport.state;
	tls_close_notify(c, t);
	if (t->backlog)
		return 0; /* no FIN ahead of sealed bytes: the lingering reads send them first, the close ends it */
	return transport_plain.shutdown(c);
}

static void tls_close(struct conn *c)
{
	struct tls_conn *t = c->transport.state;
	if (t) {
		if (c->fd >= 0)
			tls_close_notify(c, t); /* a close without shutdown() first (Connection: close) */
		tls_out.len = 0;
		free(t->backlog);
		SSL_free(t->ssl);
		free(t);
		c->transport.state = NULL;
	}
	ERR_clear_error();
	transport_plain.close(c);
}

static int tls_hint(struct conn *c, enum transport_hint hint)
{
	return transport_plain.hint(c, hint);
}

static const char *tls_security(const struct conn *c)
{
	const struct tls_conn *t = c->transport.state;
	return t && SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : NULL;
}

static const unsigned char *tls_alpn(const struct conn *c, unsigned *len)
{
	const struct tls_conn *t = c->transport.state;
	const unsigned char *p = NULL;
	*len = 0;
	if (t)
		SSL_get0_alpn_selected(t->ssl, &p, len);
	return *len ? p : NULL;
}

const struct transport_ops transport_tls = {
	.name = "tls",
	.movable = false,
	.open = tls_open,
	.read = tls_read,
	.writev = tls_writev,
	.sendfile = tls_sendfile,
	.pending = tls_pending,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.hint = tls_hint,
	.security = tls_security,
	.alpn = tls_alpn,
};
