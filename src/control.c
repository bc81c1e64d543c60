/* control: fixed-size messages on SOCK_SEQPACKET. One message is one
 * datagram, so there is no framing to get wrong and EOF is unambiguous. */
#include "control.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTROL_MAGIC 0x44u /* 'D' */
#define CONTROL_VERSION 1u

/* Layout: magic(1) version(1) reserved(2) type(4, LE) arg(8, LE). Fixed byte
 * order so that images of different builds agree during a binary upgrade. */
static void control_put_le(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t control_get_le(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int control_type_valid(uint32_t t)
{
	switch (t) {
	case CONTROL_READY:
	case CONTROL_RECYCLE_ME:
	case CONTROL_DRAINING:
	case CONTROL_DRAIN:
	case CONTROL_STOP:
	case CONTROL_REOPEN_LOGS:
	case CONTROL_START:
		return 1;
	default:
		return 0;
	}
}

void control_encode(const struct control_msg *m, unsigned char out[CONTROL_MSG_SIZE])
{
	out[0] = CONTROL_MAGIC;
	out[1] = CONTROL_VERSION;
	out[2] = 0;
	out[3] = 0;
	control_put_le(out + 4, (uint32_t)m->type, 4);
	control_put_le(out + 8, m->arg, 8);
}

int control_decode(const unsigned char *buf, size_t len, struct control_msg *m)
{
	if (len != CONTROL_MSG_SIZE || buf[0] != CONTROL_MAGIC || buf[1] != CONTROL_VERSION)
		return -EBADMSG;
	uint32_t type = (uint32_t)control_get_le(buf + 4, 4);
	if (!control_type_valid(type))
		return -EBADMSG;
	m->type = (enum control_type)type;
	m->arg = control_get_le(buf + 8, 8);
	return 0;
}

const char *control_type_name(enum control_type type)
{
	switch (type) {
	case CONTROL_READY: return "READY";
	case CONTROL_RECYCLE_ME: return "RECYCLE_ME";
	case CONTROL_DRAINING: return "DRAINING";
	case CONTROL_DRAIN: return "DRAIN";
	case CONTROL_STOP: return "STOP";
	case CONTROL_REOPEN_LOGS: return "REOPEN_LOGS";
	case CONTROL_START: return "START";
	}
	return "?";
}

int control_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	return 0;
}

int control_send(int fd, enum control_type type, uint64_t arg)
{
	unsigned char buf[CONTROL_MSG_SIZE];
	struct control_msg m = { .type = type, .arg = arg };
	control_encode(&m, buf);
	ssize_t n;
	do
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(buf) ? 0 : -EIO;
}

int control_recv(int fd, struct control_msg *m)
{
	unsigned char buf[CONTROL_MSG_SIZE + 1];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			return 0;
		int r = control_decode(buf, (size_t)n, m);
		return r < 0 ? r : 1;
	}
}
