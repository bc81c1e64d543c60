/* control: messages on SOCK_SEQPACKET. One message is one datagram, so
 * there is no framing to get wrong and EOF is unambiguous.
 *
 * The wire format, little-endian whatever the build, so that images of
 * different builds agree during a binary upgrade:
 *   magic 'D' (1) | version (1) | reserved, 0 (2) | type (4) | arg (8) | payload
 * Version 1 is exactly these 16 bytes: every message without a payload is
 * sent this way, byte for byte what builds before version 2 send and the
 * only form they read (they refuse any other size or version). Version 2
 * is the same header followed by 1 to CHAN_DATA_MAX payload bytes, its
 * length being the datagram's; a payload of 0 bytes is always version 1.
 * So an old worker under a new supervisor (or the reverse, across a
 * binary upgrade) reads every message it knows. A message with a payload
 * goes only to a peer known to read version 2 (struct chan_out enforces
 * it): a worker runs the code of the image that forked it, and a binary
 * upgrade hands over each worker's version (none: 1). */
#include "core/chan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHAN_MAGIC 0x44u /* 'D' */

static void chan_put_le(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t chan_get_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int chan_type_valid(uint32_t t)
{
	switch (t) {
	case CHAN_READY:
	case CHAN_RECYCLE_ME:
	case CHAN_DRAINING:
	case CHAN_START_FAILED:
	case CHAN_DRAIN:
	case CHAN_STOP:
	case CHAN_REOPEN_LOGS:
	case CHAN_START:
	case CHAN_HANDOFF_TO:
	case CHAN_ADOPT_FROM:
	case CHAN_HANDOFF:
	case CHAN_HANDOFF_DONE:
		return 1;
	default:
		return 0;
	}
}

unsigned chan_msg_version(const struct chan_msg *m)
{
	return m->len ? 2 : 1;
}

int chan_encode(const struct chan_msg *m, unsigned char *out, size_t out_len)
{
	if (m->len > CHAN_DATA_MAX || out_len < CHAN_MSG_SIZE + m->len)
		return -EMSGSIZE;
	out[0] = CHAN_MAGIC;
	out[1] = (unsigned char)chan_msg_version(m);
	out[2] = 0;
	out[3] = 0;
	chan_put_le(out + 4, (uint32_t)m->type, 4);
	chan_put_le(out + 8, m->arg, 8);
	if (m->len)
		memcpy(out + CHAN_MSG_SIZE, m->data, m->len);
	return (int)(CHAN_MSG_SIZE + m->len);
}

int chan_decode(const unsigned char *buf, size_t len, struct chan_msg *m)
{
	if (len < CHAN_MSG_SIZE || len > CHAN_DATAGRAM_MAX || buf[0] != CHAN_MAGIC)
		return -EBADMSG;
	/* Each size has one version: no payload is version 1, a payload 2. */
	if (buf[1] != (len == CHAN_MSG_SIZE ? 1 : 2))
		return -EBADMSG;
	uint32_t type = (uint32_t)chan_get_le(buf + 4, 4);
	if (!chan_type_valid(type))
		return -EBADMSG;
	m->type = (enum chan_type)type;
	m->arg = chan_get_le(buf + 8, 8);
	m->len = len - CHAN_MSG_SIZE;
	if (m->len)
		memcpy(m->data, buf + CHAN_MSG_SIZE, m->len);
	return 0;
}

const char *chan_type_name(enum chan_type type)
{
	switch (type) {
	case CHAN_READY: return "READY";
	case CHAN_RECYCLE_ME: return "RECYCLE_ME";
	case CHAN_DRAINING: return "DRAINING";
	case CHAN_START_FAILED: return "START_FAILED";
	case CHAN_DRAIN: return "DRAIN";
	case CHAN_STOP: return "STOP";
	case CHAN_REOPEN_LOGS: return "REOPEN_LOGS";
	case CHAN_START: return "START";
	case CHAN_HANDOFF_TO: return "HANDOFF_TO";
	case CHAN_ADOPT_FROM: return "ADOPT_FROM";
	case CHAN_HANDOFF: return "HANDOFF";
	case CHAN_HANDOFF_DONE: return "HANDOFF_DONE";
	}
	return "?";
}

const char *chan_start_stage_name(unsigned stage)
{
	switch (stage) {
	case CHAN_STAGE_SETUP: return "setting up";
	case CHAN_STAGE_SIGNALS: return "setting up signals";
	case CHAN_STAGE_PRIVILEGES: return "switching to [server] user/group";
	case CHAN_STAGE_PROTOCOL: return "starting its protocol";
	case CHAN_STAGE_LOOP: return "watching its control channel";
	}
	return "starting";
}

int chan_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	return 0;
}

/* One datagram of len bytes with n fds, never waiting; 0 or -errno. */
static int chan_send_raw(int fd, const unsigned char *buf, size_t len, const int *fds, size_t n)
{
	if (n > CHAN_MAX_FDS)
		return -EINVAL;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char raw[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.raw;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	ssize_t w;
	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return w == (ssize_t)len ? 0 : -EIO;
}

int chan_send_msg(int fd, const struct chan_msg *m, const int *fds, size_t n)
{
	unsigned char buf[CHAN_DATAGRAM_MAX];
	int len = chan_encode(m, buf, sizeof(buf));
	if (len < 0)
		return len;
	return chan_send_raw(fd, buf, (size_t)len, fds, n);
}

int chan_send_fds(int fd, enum chan_type type, uint64_t arg, const int *fds, size_t n)
{
	unsigned char buf[CHAN_MSG_SIZE];
	struct chan_msg m = { .type = type, .arg = arg, .len = 0 };
	int len = chan_encode(&m, buf, sizeof(buf));
	if (len < 0)
		return len;
	return chan_send_raw(fd, buf, (size_t)len, fds, n);
}

int chan_send(int fd, enum chan_type type, uint64_t arg)
{
	return chan_send_fds(fd, type, arg, NULL, 0);
}

/* The fds of a received message: kept in fds if they fit, else closed. */
static size_t chan_take_fds(struct msghdr *mh, int *fds, size_t max)
{
	size_t n = 0;
	bool fit = !(mh->msg_flags & MSG_CTRUNC);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			int one;
			memcpy(&one, data + i * sizeof(int), sizeof(int));
			if (fit && n < max)
				fds[n++] = one;
			else
				close(one);
		}
	}
	if (!fit) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		n = 0;
	}
	return n;
}

int chan_recv_fds(int fd, struct chan_msg *m, int *fds, size_t max, size_t *n_fds)
{
	unsigned char buf[CHAN_DATAGRAM_MAX + 1]; /* one byte more: a longer datagram is refused */
	union {
		char raw[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	*n_fds = 0;
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.raw,
				     .msg_controllen = sizeof(ctl.raw) };
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return 0;
		*n_fds = chan_take_fds(&mh, fds, max);
		int r = chan_decode(buf, (size_t)n, m);
		if (r < 0) {
			for (size_t i = 0; i < *n_fds; i++)
				close(fds[i]);
			*n_fds = 0;
			return r;
		}
		return 1;
	}
}

int chan_recv(int fd, struct chan_msg *m)
{
	size_t n;
	return chan_recv_fds(fd, m, NULL, 0, &n);
}

/* ------------------------------------------------------- the send queue */

/* One message the socket could not take yet, encoded, with our copies of
 * its fds. */
struct chan_held {
	struct chan_held *next;
	enum chan_type type;
	size_t n_fds;
	int fds[CHAN_MAX_FDS];
	size_t len;
	unsigned char bytes[];
};

void chan_out_init(struct chan_out *q, int fd, unsigned peer_version)
{
	q->fd = fd;
	q->peer_version = peer_version;
	q->head = NULL;
	q->tail = &q->head;
	q->n = 0;
	q->bytes = 0;
}

static void chan_held_free(struct chan_held *h)
{
	for (size_t i = 0; i < h->n_fds; i++)
		close(h->fds[i]);
	free(h);
}

/* m encoded, with copies of its fds (the caller's may be closed before it
 * is sent); NULL with *err. */
static struct chan_held *chan_held_new(const struct chan_msg *m, const int *fds, size_t n, int *err)
{
	struct chan_held *h = malloc(sizeof(*h) + CHAN_MSG_SIZE + m->len);
	if (!h) {
		*err = -ENOMEM;
		return NULL;
	}
	h->next = NULL;
	h->type = m->type;
	h->n_fds = 0;
	int len = chan_encode(m, h->bytes, CHAN_MSG_SIZE + m->len);
	if (len < 0) {
		*err = len;
		free(h);
		return NULL;
	}
	h->len = (size_t)len;
	for (size_t i = 0; i < n; i++) {
		int copy = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (copy < 0) {
			*err = -errno;
			chan_held_free(h);
			return NULL;
		}
		h->fds[h->n_fds++] = copy;
	}
	return h;
}

int chan_out_send(struct chan_out *q, const struct chan_msg *m, const int *fds, size_t n, enum chan_hold how)
{
	if (m->len > CHAN_DATA_MAX)
		return -EMSGSIZE;
	if (n > CHAN_MAX_FDS)
		return -EINVAL;
	if (chan_msg_version(m) > q->peer_version)
		return -EPROTONOSUPPORT;
	if (!q->head) {
		int r = chan_send_msg(q->fd, m, fds, n);
		if (r != -EAGAIN)
			return r; /* sent, or the channel is broken */
	}
	struct chan_held **at = NULL;
	if (how == CHAN_HOLD_REPLACE)
		for (struct chan_held **pp = &q->head; *pp && !at; pp = &(*pp)->next)
			if ((*pp)->type == m->type)
				at = pp;
	size_t replaced = at ? (*at)->len : 0;
	if ((!at && q->n >= CHAN_OUT_MAX_MSGS) || q->bytes - replaced + CHAN_MSG_SIZE + m->len > CHAN_OUT_MAX_BYTES)
		return -ENOBUFS;
	int err = 0;
	struct chan_held *h = chan_held_new(m, fds, n, &err);
	if (!h)
		return err;
	if (at) {
		struct chan_held *old = *at;
		h->next = old->next;
		*at = h;
		if (q->tail == &old->next)
			q->tail = &h->next;
		chan_held_free(old);
	} else {
		*q->tail = h;
		q->tail = &h->next;
		q->n++;
	}
	q->bytes = q->bytes - replaced + h->len;
	return CHAN_OUT_HELD;
}

int chan_out_flush(struct chan_out *q)
{
	size_t dropped;
	return chan_out_flush_dropping(q, &dropped);
}

int chan_out_flush_dropping(struct chan_out *q, size_t *dropped)
{
	*dropped = 0;
	while (q->head) {
		struct chan_held *h = q->head;
		int r = chan_send_raw(q->fd, h->bytes, h->len, h->fds, h->n_fds);
		if (r == -EAGAIN)
			return CHAN_OUT_HELD;
		if (r < 0) {
			*dropped = q->n;
			chan_out_clear(q);
			return r;
		}
		q->head = h->next;
		if (!q->head)
			q->tail = &q->head;
		q->n--;
		q->bytes -= h->len;
		chan_held_free(h);
	}
	return CHAN_OUT_SENT;
}

size_t chan_out_held(const struct chan_out *q)
{
	return q->n;
}

bool chan_out_holds(const struct chan_out *q, enum chan_type type)
{
	for (const struct chan_held *h = q->head; h; h = h->next)
		if (h->type == type)
			return true;
	return false;
}

void chan_out_clear(struct chan_out *q)
{
	while (q->head) {
		struct chan_held *h = q->head;
		q->head = h->next;
		chan_held_free(h);
	}
	q->tail = &q->head;
	q->n = 0;
	q->bytes = 0;
}
