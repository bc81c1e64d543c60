/* echo: RFC 862. Bytes are copied from the socket into one bounded buffer
 * and back out; while the buffer is full we stop reading, so a client that
 * does not read stalls only itself (TCP flow control pushes back on it). */
#include "proto/echo.h"

#include <errno.h>
#include <stdlib.h>

#include "core/config.h"
#include "worker/conn.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "worker/proto.h"

struct echo_conn {
	struct conn base; /* first: the worker sees a struct conn */
	struct conn_buf buf;
	bool draining;    /* finish what was sent, then close */
	bool peer_eof;    /* the client shut down its side: nothing more to read */
	bool heard;       /* a byte has arrived (a drain waits for a fresh one's first) */
};

static void echo_conn_free(struct conn *c)
{
	struct echo_conn *ec = (struct echo_conn *)c;
	conn_buf_free(&ec->buf);
	free(ec);
}

static void echo_update_events(struct echo_conn *ec)
{
	unsigned ops = 0;
	/* After EOF the socket stays readable (level-triggered): stop asking. */
	if (conn_buf_room(&ec->buf) > 0 && !ec->peer_eof)
		ops |= LOOP_READ;
	if (conn_buf_len(&ec->buf) > 0)
		ops |= LOOP_WRITE;
	(void)conn_watch(&ec->base, conn_watch_for(&ec->base, ops));
}

static void echo_idle_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	conn_close(arg);
}

/* Move bytes until the socket would block either way. 0, or CONN_GONE when
 * the connection was closed; *moved tells whether any byte went either way. */
static int echo_pump(struct echo_conn *ec, bool *moved)
{
	struct conn *c = &ec->base;
	struct scoreboard_slot *slot = c->env->slot;
	bool read_eagain = false;
	for (int rounds = 0; rounds < 16; rounds++) {
		bool progress = false;
		if (conn_buf_room(&ec->buf) > 0 && !ec->peer_eof) {
			ssize_t n = conn_buf_read(&ec->buf, c);
			if (n > 0) {
				sb_add(&slot->bytes_in, (uint64_t)n);
				progress = true;
				read_eagain = false;
				ec->heard = true;
			} else if (n == 0) {
				/* Peer finished sending: flush the rest, then close. */
				ec->peer_eof = true;
				ec->draining = true;
				read_eagain = true;
			} else if (n == -EAGAIN) {
				read_eagain = true;
			} else {
				conn_close(c);
				return CONN_GONE;
			}
		}
		if (conn_buf_len(&ec->buf) > 0) {
			ssize_t n = conn_buf_write(&ec->buf, c);
			if (n > 0) {
				sb_add(&slot->bytes_out, (uint64_t)n);
				progress = true;
			} else if (n != -EAGAIN) {
				conn_close(c);
				return CONN_GONE;
			}
		}
		if (!progress)
			break;
		*moved = true;
	}
	if (ec->peer_eof)
		read_eagain = true;
	/* A connection accepted at drain whose client has not sent yet is
	 * about to: it gets its echo (bounded by idle_timeout and the drain
	 * deadline) rather than an EOF in place of it. */
	if (ec->draining && read_eagain && conn_buf_len(&ec->buf) == 0 && (ec->heard || ec->peer_eof)) {
		conn_close_lingering(c, c->env->cfg->server.lingering_timeout_ms);
		return CONN_GONE;
	}
	return 0;
}

static void echo_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct echo_conn *ec = arg;
	bool moved = false;
	if (echo_pump(ec, &moved) < 0)
		return;
	echo_update_events(ec);
	/* Idle means no byte moved: a client that stops reading times out too. */
	if (moved)
		loop_timer_arm(loop, &ec->base.timer, ec->base.env->cfg->echo.idle_timeout_ms);
}

static void echo_drain(struct conn *c)
{
	struct echo_conn *ec = (struct echo_conn *)c;
	if (c->lingering)
		return;
	/* Echo back whatever the client had already sent, then close. */
	ec->draining = true;
	bool moved = false;
	if (echo_pump(ec, &moved) == 0)
		echo_update_events(ec);
}

static const struct conn_ops echo_conn_ops = {
	.drain = echo_drain,
	.free = echo_conn_free,
};

/* The next connection's state, allocated before its accept (echo_reserve),
 * so that a shortage leaves the connection in the kernel's queue. */
static struct echo_conn *echo_spare;

static int echo_reserve(const struct proto_env *env)
{
	if (echo_spare)
		return 0;
	struct echo_conn *ec = calloc(1, sizeof(*ec));
	if (!ec)
		return -ENOMEM;
	if (conn_buf_init(&ec->buf, env->cfg->echo.buffer_size) < 0) {
		free(ec);
		return -ENOMEM;
	}
	echo_spare = ec;
	return 0;
}

static void echo_done(void)
{
	if (!echo_spare)
		return;
	conn_buf_free(&echo_spare->buf);
	free(echo_spare);
	echo_spare = NULL;
}

static int echo_accept(const struct proto_env *env, const struct worker_listener *l, int fd,
		       const struct sockaddr *peer, socklen_t peer_len)
{
	const struct config *cfg = env->cfg;
	int r = echo_reserve(env);
	if (r < 0)
		return r;
	struct echo_conn *ec = echo_spare;
	echo_spare = NULL;
	r = conn_init(&ec->base, env, l, fd, peer, peer_len, &echo_conn_ops);
	if (r < 0) {
		echo_spare = ec;
		return r;
	}
	ec->base.timer.fn = echo_idle_timeout;
	r = loop_add_fd(ec->base.loop, fd, LOOP_READ, echo_io, ec);
	if (r < 0) {
		ec->base.fd = -1; /* the caller closes fd */
		conn_close(&ec->base);
		return r;
	}
	ec->base.watching = LOOP_READ;
	loop_timer_arm(ec->base.loop, &ec->base.timer, cfg->echo.idle_timeout_ms);
	if (proto_env_draining(env))
		echo_drain(&ec->base);
	return 0;
}

const struct proto proto_echo = {
	.name = "echo",
	.done = echo_done,
	.reserve = echo_reserve,
	.accept = echo_accept,
};
