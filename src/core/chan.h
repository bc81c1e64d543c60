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
	CHAN_RECYCLE_ME = 2, /* reached max_requests (or short of memory: CHAN_RECYCLE_NOMEM
			      * in arg): start my replacement; arg = requests served */
	CHAN_DRAINING = 3,   /* acknowledged DRAIN; arg = open connections */
	CHAN_START_FAILED = 4, /* cannot start, about to exit; arg = CHAN_START_ERROR(stage, index, errno) */
	/* supervisor -> worker */
	CHAN_DRAIN = 16,       /* stop accepting, finish, exit; arg = deadline (CLOCK_MONOTONIC ms),
				* | CHAN_DRAIN_STOP on a stop */
	CHAN_STOP = 17,        /* close everything now and exit */
	CHAN_REOPEN_LOGS = 18, /* logrotate: arg = number of fds carried (SCM_RIGHTS), the
	                        * newly opened files the worker puts in place of its own */
	CHAN_START = 19,       /* begin accepting (sent once READY=1 went to systemd) */
};

/* In DRAIN's arg: no newer generation takes over (a graceful stop), so idle
 * keep-alive connections get their FIN at once instead of a grace for one
 * more request. A build without the bit reads a far deadline and is ended
 * by the supervisor's shutdown_timeout as before. */
#define CHAN_DRAIN_STOP (UINT64_C(1) << 63)

/* In RECYCLE_ME's arg: the worker is short of memory, not at max_requests.
 * A build without the bit reads a large request count. */
#define CHAN_RECYCLE_NOMEM (UINT64_C(1) << 63)

/* What a worker was doing when it could not start (CHAN_START_FAILED). */
enum chan_start_stage {
	CHAN_STAGE_SETUP = 1,      /* its own state (memory) */
	CHAN_STAGE_SIGNALS = 2,    /* signalfd */
	CHAN_STAGE_PRIVILEGES = 3, /* switching to [server] user/group */
	CHAN_STAGE_PROTOCOL = 4,   /* a protocol's init(); index = its place in the protocol table */
	CHAN_STAGE_LOOP = 5,       /* watching the control channel */
};
/* arg of CHAN_START_FAILED: errno in bits 0-31, index in 32-39, stage in 40-47. */
#define CHAN_START_ERROR(stage, index, err) \
	(((uint64_t)(stage) << 40) | ((uint64_t)((index) & 0xff) << 32) | (uint32_t)(err))
#define CHAN_START_STAGE(arg) ((unsigned)(((arg) >> 40) & 0xff))
#define CHAN_START_INDEX(arg) ((unsigned)(((arg) >> 32) & 0xff))
#define CHAN_START_ERRNO(arg) ((int)(uint32_t)(arg))
/* What a stage was ("switching user"), "starting" if unknown. */
const char *chan_start_stage_name(unsigned stage);

/* Most fds one message carries. */
#define CHAN_MAX_FDS 32

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
/* Send one message with fds attached (SCM_RIGHTS; n <= CHAN_MAX_FDS); the
 * sender keeps its own copies. 0 or -errno as chan_send. */
int chan_send_fds(int fd, enum chan_type type, uint64_t arg, const int *fds, size_t n);
/* Receive one message: 1 = got one, 0 = EOF (peer gone), -EAGAIN = none, -errno.
 * Fds that come with it are closed. */
int chan_recv(int fd, struct chan_msg *m);
/* As chan_recv, keeping up to max attached fds (CLOEXEC) in fds[*n_fds];
 * the caller closes them. More than max: all are closed and *n_fds = 0. */
int chan_recv_fds(int fd, struct chan_msg *m, int *fds, size_t max, size_t *n_fds);

#endif
