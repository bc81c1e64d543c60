/* control: fixed-size messages on SOCK_SEQPACKET. One message is one
 * datagram, so there is no framing to get wrong and EOF is unambiguous. */
#include "core/chan.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHAN_MAGIC 0x44u /* 'D' */
#define CHAN_VERSION 1u

/* Layout: magic(1) version(1) reserved(2) type(4, LE) arg(8, LE). Fixed byte
 * order so that images of different builds agree during a binary upgrade. */
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
		return 1;
	default:
		return 0;
	}
}

void chan_encode(const struct chan_msg *m, unsigned char out[CHAN_MSG_SIZE])
{
	out[0] = CHAN_MAGIC;
	out[1] = CHAN_VERSION;
	out[2] = 0;
	out[3] = 0;
	chan_put_le(out + 4, (uint32_t)m->type, 4);
	chan_put_le(out + 8, m->arg, 8);
}

int chan_decode(const unsigned char *buf, size_t len, struct chan_msg *m)
{
	if (len != CHAN_MSG_SIZE || buf[0] != CHAN_MAGIC || buf[1] != CHAN_VERSION)
		return -EBADMSG;
	uint32_t type = (uint32_t)chan_get_le(buf + 4, 4);
	if (!chan_type_valid(type))
		return -EBADMSG;
	m->type = (enum chan_type)type;
	m->arg = chan_get_le(buf + 8, 8);
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

int chan_send_fds(int fd, enum chan_type type, uint64_t arg, const int *fds, size_t n)
{
	unsigned char buf[CHAN_MSG_SIZE];
	struct chan_msg m = { .type = type, .arg = arg };
	chan_encode(&m, buf);
	if (n > CHAN_MAX_FDS)
		return -EINVAL;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
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
	return w == (ssize_t)sizeof(buf) ? 0 : -EIO;
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
	unsigned char buf[CHAN_MSG_SIZE + 1];
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
