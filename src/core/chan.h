/* chan: the control channel between the supervisor and each worker, a
 * SOCK_SEQPACKET socketpair. One message is one datagram: a type, a 64-bit
 * argument, an optional payload of up to CHAN_DATA_MAX bytes and optional
 * file descriptors (SCM_RIGHTS). A writer that must never block (the
 * supervisor) sends through a struct chan_out, which holds what the socket
 * cannot take yet, bounded and in order. EOF means the peer is gone.
 *
 * The wire format is versioned (see chan.c): a message without a payload
 * is the 16-byte version 1 form every build reads, so builds on either side
 * of a binary upgrade understand each other's messages of today; a payload
 * needs version 2, and struct chan_out sends one only to a peer known to
 * read it. */
#ifndef DROVER_CHAN_H
#define DROVER_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAN_MSG_SIZE 16         /* the header; all of a message without payload */
#define CHAN_DATAGRAM_MAX 4096   /* the largest message: header and payload */
#define CHAN_DATA_MAX (CHAN_DATAGRAM_MAX - CHAN_MSG_SIZE)
#define CHAN_VERSION 2           /* the newest form this build reads and writes */

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
	CHAN_HANDOFF_TO = 20,  /* with the next DRAIN: hand connections over on the channel
				* carried (SCM_RIGHTS, one fd); arg = the successor's pid */
	CHAN_ADOPT_FROM = 21,  /* adopt connections arriving on the channel carried (one fd);
				* arg = the predecessor's pid */
	/* worker -> worker, on a hand-off channel (worker/handoff.c) */
	CHAN_HANDOFF = 32,      /* connections: payload = records, one fd each, in order;
				 * arg = format version << 32 | records */
	CHAN_HANDOFF_DONE = 33, /* the answer to one CHAN_HANDOFF: arg = bit i set when
				 * record i was adopted (the sender keeps the others) */
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
	size_t len;                        /* payload bytes in data, 0 to CHAN_DATA_MAX */
	unsigned char data[CHAN_DATA_MAX];
};

/* Serialise m into out (at least CHAN_MSG_SIZE + m->len bytes): the
 * version 1 form without a payload, version 2 with one. The size, or
 * -EMSGSIZE when the payload or out is too large or too small. */
int chan_encode(const struct chan_msg *m, unsigned char *out, size_t out_len);
/* Parse one datagram of either version; 0, or -EBADMSG when its size,
 * magic, version or type is wrong. */
int chan_decode(const unsigned char *buf, size_t len, struct chan_msg *m);
/* Name of a message type for logs ("DRAIN"), "?" if unknown. */
const char *chan_type_name(enum chan_type type);
/* The version of the form m travels in: 1 without a payload, else 2. */
unsigned chan_msg_version(const struct chan_msg *m);

/* A connected SOCK_SEQPACKET pair, CLOEXEC and non-blocking; 0 or -errno. */
int chan_pair(int sv[2]);
/* Send one message without payload; 0 or -errno (-EAGAIN if the peer's
 * queue is full). */
int chan_send(int fd, enum chan_type type, uint64_t arg);
/* Send one message without payload with fds attached (SCM_RIGHTS; n <=
 * CHAN_MAX_FDS); the sender keeps its own copies. 0 or -errno as chan_send. */
int chan_send_fds(int fd, enum chan_type type, uint64_t arg, const int *fds, size_t n);
/* Send m and n fds at once, never waiting; 0 or -errno as chan_send. */
int chan_send_msg(int fd, const struct chan_msg *m, const int *fds, size_t n);
/* Receive one message: 1 = got one, 0 = EOF (peer gone), -EAGAIN = none, -errno.
 * Fds that come with it are closed. */
int chan_recv(int fd, struct chan_msg *m);
/* As chan_recv, keeping up to max attached fds (CLOEXEC) in fds[*n_fds];
 * the caller closes them. More than max: all are closed and *n_fds = 0. */
int chan_recv_fds(int fd, struct chan_msg *m, int *fds, size_t max, size_t *n_fds);

/* ------------------------------------------------------- the send queue */

/* Bounds of what a chan_out holds for a peer that does not read. */
#define CHAN_OUT_MAX_MSGS 64
#define CHAN_OUT_MAX_BYTES (64 * 1024)

struct chan_held;

/* The sending side of a channel for a writer that never waits: a message
 * the socket cannot take now is held, with copies of its fds, and sent
 * in order by chan_out_flush once the socket is writable. */
struct chan_out {
	int fd;
	unsigned peer_version;   /* the newest form the peer reads (1 or CHAN_VERSION) */
	struct chan_held *head;  /* oldest first */
	struct chan_held **tail;
	size_t n;                /* messages held */
	size_t bytes;            /* their encoded size */
};

/* How chan_out_send treats a message of a type already held. */
enum chan_hold {
	CHAN_HOLD_APPEND,  /* held behind it: every message counts */
	CHAN_HOLD_REPLACE, /* takes its place in the queue (its fds closed): only the newest counts */
};

/* What chan_out_send and chan_out_flush did (or -errno). */
enum chan_out_result {
	CHAN_OUT_SENT = 0, /* on the socket; nothing is held */
	CHAN_OUT_HELD = 1, /* held: call chan_out_flush when fd is writable */
};

/* An empty queue for fd, whose peer reads peer_version. */
void chan_out_init(struct chan_out *q, int fd, unsigned peer_version);
/* Send m with n fds (the caller keeps its copies) now if nothing is held
 * and the socket takes it, else hold it. CHAN_OUT_SENT, CHAN_OUT_HELD,
 * -ENOBUFS (the queue is at its bound: not held), -EPROTONOSUPPORT (the
 * peer cannot read m's form), -EMSGSIZE, -ENOMEM or -EMFILE (not held),
 * or the socket's -errno (-EPIPE, -ECONNRESET: the peer is gone). */
int chan_out_send(struct chan_out *q, const struct chan_msg *m, const int *fds, size_t n, enum chan_hold how);
/* Send what is held, oldest first, as far as the socket takes it:
 * CHAN_OUT_SENT (nothing left), CHAN_OUT_HELD (some left), or the socket's
 * -errno, what is held then dropped. */
int chan_out_flush(struct chan_out *q);
/* The same, and in *dropped how many held messages a failure dropped
 * unsent (0 otherwise): the last *dropped ones queued. */
int chan_out_flush_dropping(struct chan_out *q, size_t *dropped);
/* How many messages are held. */
size_t chan_out_held(const struct chan_out *q);
/* Whether a message of type is held. */
bool chan_out_holds(const struct chan_out *q, enum chan_type type);
/* Drop what is held, closing its fds (the peer is gone, or we are). */
void chan_out_clear(struct chan_out *q);

#endif
