/* control: the typed, fixed-size messages between the supervisor and each
 * worker over a SOCK_SEQPACKET socketpair. EOF means the peer is gone. */
#ifndef DROVER_CONTROL_H
#define DROVER_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CONTROL_MSG_SIZE 16

enum control_type {
	/* worker -> supervisor */
	CONTROL_READY = 1,      /* listening and serving */
	CONTROL_RECYCLE_ME = 2, /* reached max_requests: start my replacement */
	CONTROL_DRAINING = 3,   /* acknowledged DRAIN; arg = open connections */
	/* supervisor -> worker */
	CONTROL_DRAIN = 16,       /* stop accepting, finish, exit; arg = deadline (CLOCK_MONOTONIC ms) */
	CONTROL_STOP = 17,        /* close everything now and exit */
	CONTROL_REOPEN_LOGS = 18, /* reopen log files (logrotate) */
	CONTROL_START = 19,       /* begin accepting (sent once READY=1 went to systemd) */
};

struct control_msg {
	enum control_type type;
	uint64_t arg;
};

/* Serialise m into exactly CONTROL_MSG_SIZE bytes (versioned, fixed byte order). */
void control_encode(const struct control_msg *m, unsigned char out[CONTROL_MSG_SIZE]);
/* Parse one message; 0, or -EBADMSG when the size, version or type is wrong. */
int control_decode(const unsigned char *buf, size_t len, struct control_msg *m);
/* Name of a message type for logs ("DRAIN"), "?" if unknown. */
const char *control_type_name(enum control_type type);

/* A connected SOCK_SEQPACKET pair, CLOEXEC and non-blocking; 0 or -errno. */
int control_pair(int sv[2]);
/* Send one message; 0 or -errno (-EAGAIN if the peer's queue is full). */
int control_send(int fd, enum control_type type, uint64_t arg);
/* Receive one message: 1 = got one, 0 = EOF (peer gone), -EAGAIN = none, -errno. */
int control_recv(int fd, struct control_msg *m);

#endif
