/* transport_plain: a connection's bytes go straight to its socket. Each
 * operation is the one system call the protocols made themselves before
 * there was a transport (EINTR retried, errno returned as -errno); it keeps
 * no state beyond the fd, so struct transport.state stays NULL. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "worker/conn.h"

static ssize_t plain_errno(void)
{
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static ssize_t plain_read(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(c->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return plain_errno();
	}
}

static ssize_t plain_writev(struct conn *c, const struct iovec *iov, int n, unsigned flags)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	int send_flags = MSG_NOSIGNAL | (flags & TRANSPORT_MORE ? MSG_MORE : 0);
	for (;;) {
		ssize_t w = sendmsg(c->fd, &msg, send_flags);
		if (w >= 0)
			return w;
		if (errno == EINTR)
			continue;
		if (errno != ENOTSOCK)
			return plain_errno();
		/* Not a socket (a pipe standing in for one): plain writev(). */
		w = writev(c->fd, iov, n);
		if (w >= 0)
			return w;
		if (errno != EINTR)
			return plain_errno();
	}
}

static ssize_t plain_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
	for (;;) {
		ssize_t w = sendfile(c->fd, fd, off, len);
		if (w >= 0)
			return w;
		if (errno != EINTR)
			return plain_errno();
	}
}

static int plain_pending(struct conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n >= 0)
		return n > 0;
	return errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
}

static int plain_shutdown(struct conn *c)
{
	return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void plain_close(struct conn *c)
{
	/* Accepted in this worker, never shared: close() alone leaves epoll.
	 * An adopted socket may still be held by the worker that handed it
	 * over, for as long as its answer takes: leave epoll explicitly. */
	if (c->fd >= 0 && c->shared)
		(void)loop_del_fd(c->loop, c->fd);
	if (c->fd >= 0)
		loop_close_fd(c->loop, c->fd);
}

static int plain_hint(struct conn *c, enum transport_hint hint)
{
	int opt = TCP_NODELAY, value = 1;
	switch (hint) {
	case TRANSPORT_NODELAY:
		break;
	case TRANSPORT_ACKS_DELAYED:
		opt = TCP_QUICKACK;
		value = 0;
		break;
	case TRANSPORT_ACKS_NOW:
		opt = TCP_QUICKACK;
		break;
	default:
		return -EINVAL;
	}
	return setsockopt(c->fd, IPPROTO_TCP, opt, &value, sizeof(value)) < 0 ? -errno : 0;
}

const struct transport_ops transport_plain = {
	.name = "plain",
	.movable = true,
	.read = plain_read,
	.writev = plain_writev,
	.sendfile = plain_sendfile,
	.pending = plain_pending,
	.shutdown = plain_shutdown,
	.close = plain_close,
	.hint = plain_hint,
};
