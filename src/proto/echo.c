/* echo: RFC 862. Bytes are copied from the socket into one bounded buffer
 * and back out; while the buffer is full we stop reading, so a client that
 * does not read stalls only itself (TCP flow control pushes back on it).
 * The whole protocol, [echo] section included, is this file and its line
 * in protocols.c. */
#include "proto/echo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "worker/conn.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "worker/proto.h"

/* ------------------------------------------------------------ [echo] */

static const struct config_key echo_keys[] = {
	{ "idle_timeout", config_key_duration, CONFIG_FIELD(struct echo_config, idle_timeout_ms), 1,
	  CONFIG_DURATION_MAX_MS },
	{ "buffer_size", config_key_size, CONFIG_FIELD(struct echo_config, buffer_size), 1024, 64u << 20 },
};

static int echo_config_init(void *data)
{
	struct echo_config *e = data;
	e->idle_timeout_ms = 60000;
	e->buffer_size = 64 * 1024;
	return 0;
}

static const struct config_section echo_sections[] = {
	{
		.name = "echo",
		.keys = echo_keys,
		.n_keys = sizeof(echo_keys) / sizeof(echo_keys[0]),
		.size = sizeof(struct echo_config),
		.init = echo_config_init,
	},
};

static const struct config_module echo_config_module = {
	.sections = echo_sections,
	.n_sections = sizeof(echo_sections) / sizeof(echo_sections[0]),
};

const struct echo_config *echo_cfg(const struct config *cfg)
{
	return config_section(cfg, &echo_sections[0]);
}

/* ------------------------------------------------------------ connections */

struct echo_conn {
	struct conn base; /* first: the worker sees a struct conn */
	struct conn_buf buf;
	bool draining;    /* finish what was sent, then close */
	bool peer_eof;    /* the client shut down its side: nothing more to read */
	bool heard;       /* a byte has arrived (a drain waits for a fresh one's first) */
	bool handing;     /* to be handed to the successor: sending, not reading, until
			   * what is pending fits in a hand-off */
};

#define ECHO_HANDOFF_HEARD 1u /* handoff_conn.flags: heard */

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
	if (conn_buf_room(&ec->buf) > 0 && !ec->peer_eof && !ec->handing)
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
		if (conn_buf_room(&ec->buf) > 0 && !ec->peer_eof && !ec->handing) {
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

static void echo_drain(struct conn *c);

/* Hand ec to the successor once what it holds fits: CONN_GONE when it
 * went (or, the hand-off failing, was drained here as before), 0 while
 * it still sends back too much. */
static int echo_try_hand_off(struct echo_conn *ec)
{
	struct conn *c = &ec->base;
	if (conn_buf_len(&ec->buf) > HANDOFF_BYTES_MAX)
		return 0;
	conn_buf_compact(&ec->buf);
	struct handoff_conn h = {
		.flags = ec->heard ? ECHO_HANDOFF_HEARD : 0,
		.bytes = ec->buf.data + ec->buf.start,
		.len = conn_buf_len(&ec->buf),
	};
	if (c->env->hand_off(c->env, c, &h) == 0)
		return CONN_GONE;
	c->no_handoff = true;
	ec->handing = false;
	echo_drain(c);
	return CONN_GONE;
}

static void echo_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct echo_conn *ec = arg;
	bool moved = false;
	if (echo_pump(ec, &moved) < 0)
		return;
	if (ec->handing && echo_try_hand_off(ec) < 0)
		return;
	echo_update_events(ec);
	/* Idle means no byte moved: a client that stops reading times out too. */
	if (moved)
		loop_timer_arm(loop, &ec->base.timer, echo_cfg(ec->base.env->cfg)->idle_timeout_ms);
}

static void echo_drain(struct conn *c)
{
	struct echo_conn *ec = (struct echo_conn *)c;
	if (c->lingering)
		return;
	if (conn_may_hand_off(c) && !ec->peer_eof) {
		/* To the successor, with what was received and not sent back
		 * yet; a client that does not read may hold more than that:
		 * send, stop reading, and hand over once it fits. */
		ec->handing = true;
		if (echo_try_hand_off(ec) == 0)
			echo_update_events(ec);
		return;
	}
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
	if (conn_buf_init(&ec->buf, echo_cfg(env->cfg)->buffer_size) < 0) {
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

/* Watch a new connection (accepted or adopted), start its idle timer, and
 * drain it at once if the worker drains. 0, or -errno with the connection
 * gone and its fd left to the caller. */
static int echo_watch(struct echo_conn *ec, const struct proto_env *env)
{
	int fd = ec->base.fd;
	int r = loop_add_fd(ec->base.loop, fd, LOOP_READ, echo_io, ec);
	if (r < 0) {
		ec->base.fd = -1; /* the caller closes fd */
		conn_close(&ec->base);
		return r;
	}
	ec->base.watching = LOOP_READ;
	loop_timer_arm(ec->base.loop, &ec->base.timer, echo_cfg(env->cfg)->idle_timeout_ms);
	if (proto_env_draining(env))
		echo_drain(&ec->base);
	return 0;
}

static int echo_accept(const struct proto_env *env, const struct worker_listener *l, int fd,
		       const struct sockaddr *peer, socklen_t peer_len)
{
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
	return echo_watch(ec, env);
}

/* A connection handed over by another worker (or back to us): its
 * pending bytes are sent back first, then it echoes on. */
static int echo_adopt(const struct proto_env *env, const struct worker_listener *l, int fd,
		      const struct handoff_conn *h)
{
	int r = echo_reserve(env);
	if (r < 0)
		return r;
	struct echo_conn *ec = echo_spare;
	if (h->len > ec->buf.cap)
		return -ENOBUFS;
	echo_spare = NULL;
	r = conn_init(&ec->base, env, l, fd, h->peer, h->peer_len, &echo_conn_ops);
	if (r < 0) {
		echo_spare = ec;
		return r;
	}
	ec->base.shared = true;
	ec->base.no_handoff = h->returned;
	ec->base.timer.fn = echo_idle_timeout;
	ec->heard = (h->flags & ECHO_HANDOFF_HEARD) != 0;
	if (h->len)
		memcpy(ec->buf.data, h->bytes, h->len);
	ec->buf.start = 0;
	ec->buf.end = h->len;
	r = echo_watch(ec, env);
	if (r == 0 && !proto_env_draining(env))
		echo_update_events(ec); /* pending bytes: write them first */
	return r;
}

const struct proto proto_echo = {
	.name = "echo",
	.config = &echo_config_module,
	.done = echo_done,
	.reserve = echo_reserve,
	.accept = echo_accept,
	.adopt = echo_adopt,
};
