/* control: fixed-size messages on SOCK_SEQPACKET. One message is one
 * datagram, so there is no framing to get wrong and EOF is unambiguous. */
#include "core/chan.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
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
	case CHAN_DRAIN: return "DRAIN";
	case CHAN_STOP: return "STOP";
	case CHAN_REOPEN_LOGS: return "REOPEN_LOGS";
	case CHAN_START: return "START";
	}
	return "?";
}

int chan_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	return 0;
}

int chan_send(int fd, enum chan_type type, uint64_t arg)
{
	unsigned char buf[CHAN_MSG_SIZE];
	struct chan_msg m = { .type = type, .arg = arg };
	chan_encode(&m, buf);
	ssize_t n;
	do
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(buf) ? 0 : -EIO;
}

int chan_recv(int fd, struct chan_msg *m)
{
	unsigned char buf[CHAN_MSG_SIZE + 1];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return 0;
		int r = chan_decode(buf, (size_t)n, m);
		return r < 0 ? r : 1;
	}
}
