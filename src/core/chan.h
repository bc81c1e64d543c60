/* control: the typed, fixed-size messages between the supervisor and each
 * worker over a SOCK_SEQPACKET socketpair. EOF means the peer is gone. */
#ifndef DROVER_CHAN_H
#define DROVER_CHAN_H

#include <stddef.h>
#include <stdint.h>

#define CHAN_MSG_SIZE 16

enum chan_type {
	/* worker -> supervisor */
	CHAN_READY = 1,      /* listening and serving */
	CHAN_RECYCLE_ME = 2, /* reached max_requests: start my replacement */
	CHAN_DRAINING = 3,   /* acknowledged DRAIN; arg = open connections */
	/* supervisor -> worker */
	CHAN_DRAIN = 16,       /* stop accepting, finish, exit; arg = deadline (CLOCK_MONOTONIC ms),
				* | CHAN_DRAIN_STOP on a stop */
	CHAN_STOP = 17,        /* close everything now and exit */
	CHAN_REOPEN_LOGS = 18, /* reopen log files (logrotate) */
	CHAN_START = 19,       /* begin accepting (sent once READY=1 went to systemd) */
};

/* In DRAIN's arg: no newer generation takes over (a graceful stop), so idle
 * keep-alive connections get their FIN at once instead of a grace for one
 * more request. A build without the bit reads a far deadline and is ended
 * by the supervisor's shutdown_timeout as before. */
#define CHAN_DRAIN_STOP (UINT64_C(1) << 63)

struct chan_msg {
	enum chan_type type;
	uint64_t arg;
};

/* Serialise m into exactly CHAN_MSG_SIZE bytes (versioned, fixed byte order). */
void chan_encode(const struct chan_msg *m, unsigned char out[CHAN_MSG_SIZE]);
/* Parse one message; 0, or -EBADMSG when the size, version or type is wrong. */
int chan_decode(const unsigned char *buf, size_t len, struct chan_msg *m);
/* Name of a message type for logs ("DRAIN"), "?" if unknown. */
const char *chan_type_name(enum chan_type type);

/* A connected SOCK_SEQPACKET pair, CLOEXEC and non-blocking; 0 or -errno. */
int chan_pair(int sv[2]);
/* Send one message; 0 or -errno (-EAGAIN if the peer's queue is full). */
int chan_send(int fd, enum chan_type type, uint64_t arg);
/* Receive one message: 1 = got one, 0 = EOF (peer gone), -EAGAIN = none, -errno. */
int chan_recv(int fd, struct chan_msg *m);

#endif
