/* transport_tls: a connection's bytes through OpenSSL, records encrypted in
 * user space (no kernel TLS here), over the socket's own fd.
 *
 * The handshake is not a step of its own: the first read drives it, and a
 * protocol sees -EAGAIN until application bytes arrive. So HTTP's
 * header_timeout, which runs from the accept, bounds a handshake too.
 *
 * Writes. Every SSL_write here is at most one record (16 KiB), so each is
 * one write() of the socket and a blocked one is all-or-nothing: OpenSSL
 * keeps the sealed record and sends it when the protocol repeats the
 * write, which it does with the same bytes in front (it took none). A
 * record is sealed from the caller's buffer when the first one holds a
 * whole record's worth; otherwise the buffers are gathered into the
 * worker's one staging buffer first, so a head and a small body go out as
 * one record, not two. Files are read into that buffer (pread) and sealed
 * from there: a retry needs only the length, since the record is sealed
 * already. SSL_MODE_RELEASE_BUFFERS gives OpenSSL's own buffers back
 * between records, so an idle TLS connection keeps only its session.
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
#include "core/scoreboard.h"
#include "worker/conn.h"
#include "worker/tls.h"
#include "worker/transport.h"

#define TLS_RECORD (16 * 1024) /* the most one record carries */

struct tls_conn {
	SSL *ssl;
	uint32_t pending;  /* bytes of a sealed record a blocked write still owes */
	bool counted;      /* the handshake was counted (finished or failed) */
	bool sent_close;   /* close_notify queued */
};

/* The worker's staging buffer: one, since a worker runs one connection at
 * a time and a sealed record no longer needs it. */
static unsigned char tls_stage[TLS_RECORD];

static int tls_open(struct conn *c)
{
	SSL_CTX *ctx = c->listener ? c->listener->transport_ctx : NULL;
	if (!ctx)
		return -EINVAL;
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, c->fd) != 1) {
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -ENOMEM;
	}
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
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_read_ex(t->ssl, buf, len, &n);
	ssize_t ret;
	if (r == 1) {
		c->io_wait &= (uint8_t)~TRANSPORT_READ_WAITS_WRITABLE;
		tls_count_handshake(c, t);
		ret = (ssize_t)n;
	} else {
		tls_count_handshake(c, t); /* tickets may block after the handshake finished */
		ret = tls_failed(c, t, r, true);
	}
	if (c->fd >= 0)
		loop_fd_buffered(c->loop, c->fd, ret > 0 && SSL_has_pending(t->ssl));
	return ret;
}

/* Seal and send one record of len bytes from buf (len <= TLS_RECORD). */
static ssize_t tls_write_record(struct conn *c, struct tls_conn *t, const void *buf, size_t len)
{
	size_t n = 0;
	ERR_clear_error();
	int r = SSL_write_ex(t->ssl, buf, len, &n);
	if (r == 1) {
		c->io_wait &= (uint8_t)~TRANSPORT_WRITE_WAITS_READABLE;
		t->pending = 0;
		tls_count_handshake(c, t);
		return (ssize_t)n;
	}
	ssize_t ret = tls_failed(c, t, r, false);
	if (ret == -EAGAIN && SSL_is_init_finished(t->ssl))
		t->pending = (uint32_t)len; /* sealed: only its length matters from now on */
	return ret == 0 ? -EPIPE : ret;
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int n, unsigned flags)
{
	(void)flags; /* every record is flushed as it is sealed */
	struct tls_conn *t = c->transport.state;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	if (t->pending)
		/* The protocol repeats what it could not write: a sealed record
		 * owes its length, whatever buffer the bytes are in now. */
		return tls_write_record(c, t, tls_stage, t->pending <= total ? t->pending : total);
	if (iov[0].iov_len >= TLS_RECORD || n == 1)
		return tls_write_record(c, t, iov[0].iov_base, iov[0].iov_len < TLS_RECORD ? iov[0].iov_len : TLS_RECORD);
	size_t len = 0;
	for (int i = 0; i < n && len < TLS_RECORD; i++) {
		size_t k = iov[i].iov_len < TLS_RECORD - len ? iov[i].iov_len : TLS_RECORD - len;
		memcpy(tls_stage + len, iov[i].iov_base, k);
		len += k;
	}
	return tls_write_record(c, t, tls_stage, len);
}

static ssize_t tls_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
	struct tls_conn *t = c->transport.state;
	size_t want = len < TLS_RECORD ? len : TLS_RECORD;
	if (want == 0)
		return 0;
	if (!t->pending) {
		ssize_t got;
		do
			got = pread(fd, tls_stage, want, *off);
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			return got < 0 ? -errno : 0;
		want = (size_t)got;
	} else if (t->pending < want) {
		want = t->pending;
	} else {
		want = t->pending;
	}
	ssize_t w = tls_write_record(c, t, tls_stage, want);
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
static void tls_close_notify(struct tls_conn *t)
{
	if (t->sent_close || !SSL_is_init_finished(t->ssl))
		return;
	t->sent_close = true;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
}

static int tls_shutdown(struct conn *c)
{
	tls_close_notify(c->transport.state);
	return transport_plain.shutdown(c);
}

static void tls_close(struct conn *c)
{
	struct tls_conn *t = c->transport.state;
	if (t) {
		if (c->fd >= 0)
			tls_close_notify(t); /* a close without shutdown() first (Connection: close) */
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
};
