/* handoff: live connections moving from a draining worker to its successor.
 *
 * The supervisor gives the two workers the ends of a SOCK_SEQPACKET pair
 * of their own (CHAN_HANDOFF_TO with the next DRAIN to the old one,
 * CHAN_ADOPT_FROM to the new one) and never touches a connection itself.
 * On that channel the old worker sends CHAN_HANDOFF messages: up to
 * CHAN_MAX_FDS connections each, a record per connection (format version,
 * listener and protocol names, peer address, requests answered, the idle
 * deadline left, the protocol's flags, the bytes read but not used yet) and
 * its socket (SCM_RIGHTS), the fd already out of the old worker's epoll
 * set. The new worker adopts each one it can and answers CHAN_HANDOFF_DONE
 * with a bit per record. Until that answer the old worker keeps its own
 * copy of each socket: one refused (unknown format version, listener gone
 * or changed, connection limit, draining itself without a successor, fds
 * lost to MSG_CTRUNC), or left unanswered when the channel ends, is taken
 * back and drained as before hand-off existed; one adopted is closed on
 * its side. So a connection is never lost between the two, and is never
 * served by both. When the successor drains in its turn before we are
 * done, the supervisor sends us a channel to its own successor: a
 * draining worker waits only for its predecessors (it hands on what they
 * send), and they are pointed past it. One module per process: its state
 * is static. */
#ifndef DROVER_HANDOFF_H
#define DROVER_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/proto.h"

struct conn;
struct loop;
struct scoreboard_slot;

/* The newest record format this build writes and reads; a record of a
 * newer version is refused (the sender drains it as before). */
#define HANDOFF_VERSION 1
/* A record's fixed part; the names and the bytes follow it. */
#define HANDOFF_REC_HDR 56

/* What handoff.c needs of its worker. */
struct handoff_host {
	struct loop *loop;
	const struct proto_env *env;
	struct scoreboard_slot *slot;
	/* The worker's listener called name, or NULL. */
	const struct worker_listener *(*listener)(void *arg, const char *name);
	/* Whether one more connection on l may be adopted now (limits, and
	 * not draining without a successor). */
	bool (*room)(void *arg, const struct worker_listener *l);
	/* Nothing is in flight any more, or a predecessor's channel closed:
	 * a draining worker may be done. */
	void (*settled)(void *arg);
	void *arg;
};

/* Set up (once, before the loop runs). */
void handoff_init(const struct handoff_host *host);
/* The flag proto_env.handing_off points to. */
const bool *handoff_flag(void);
/* CHAN_HANDOFF_TO: fd (taken) is the channel to the successor pid; a
 * later one (that successor drains too) takes its place for what is
 * handed over from then on. */
void handoff_successor(int fd, pid_t pid);
/* CHAN_ADOPT_FROM: fd (taken) is a channel from the predecessor pid. */
void handoff_predecessor(int fd, pid_t pid);
/* The worker drains: connections go to the successor from now on, if
 * there is one and this is not a stop. Whether they do. */
bool handoff_begin(bool stopping);
/* proto_env.hand_off. */
int handoff_export(const struct proto_env *env, struct conn *c, const struct handoff_conn *h);
/* Whether a draining worker must stay: connections in flight (not yet
 * answered), or a predecessor that may still send some while we hand on. */
bool handoff_busy(void);
/* The worker exits now: close what is held. */
void handoff_end(void);

/* The record codec (also for unit tests). Encode one record of c (its
 * listener's and protocol's names, its peer) and h into out; its size, or
 * -EMSGSIZE when it does not fit in cap. */
int handoff_rec_encode(const struct conn *c, const struct handoff_conn *h, unsigned version, unsigned char *out,
		       size_t cap);
/* A record decoded: pointers into the buffer it came from. */
struct handoff_rec {
	unsigned version;
	char listener[CONFIG_NAME_MAX + 1];
	char proto[CONFIG_PROTO_NAME_MAX + 1];
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct handoff_conn h;
};
/* Decode the record at buf (len bytes left); its size, -EBADMSG when it
 * is malformed, or -EPROTONOSUPPORT (its size still in *size) when its
 * version is newer than HANDOFF_VERSION. */
int handoff_rec_decode(const unsigned char *buf, size_t len, struct handoff_rec *r, size_t *size);

#endif
