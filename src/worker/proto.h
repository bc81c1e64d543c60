/* proto: the seam between a worker and the protocols it serves.
 *
 * A protocol is a table entry (struct proto). The table itself lives in the
 * protocol layer (src/proto/protocols.c) and is handed down as data:
 * proto_register() gives the worker layer the table and config the names.
 * A worker calls a protocol only through its entry, so it knows no protocol
 * by name, and a new protocol is one file plus one table line.
 *
 * What a protocol may ask of its worker is struct proto_env: the loop, the
 * configuration, the scoreboard slot, whether the worker is draining, a
 * "request done" hook, and the connection set. No calls into worker.c. */
#ifndef DROVER_WORKER_PROTO_H
#define DROVER_WORKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"

struct conn_set;
struct loop;
struct proto;
struct scoreboard;
struct scoreboard_slot;

/* A listening socket as a worker sees it. */
struct worker_listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	const struct proto *proto;
	bool status; /* serve the status endpoint here */
};

/* What a protocol may ask of the worker that runs it. */
struct proto_env {
	struct loop *loop;
	const struct config *cfg;
	struct scoreboard_slot *slot;  /* this worker's counters */
	const struct scoreboard *sb;   /* everyone's, for the status endpoint */
	struct conn_set *conns;        /* the worker's connections */
	const bool *draining;          /* true once the worker drains */
	const bool *stopping;          /* ...and no newer generation takes over */
	/* Count one finished request (counters, max_requests). */
	void (*request_done)(const struct proto_env *env);
	void *worker;                  /* the worker's own, for request_done */
};

static inline bool proto_env_draining(const struct proto_env *env) { return *env->draining; }
/* Draining for a stop: nobody serves after us, so an idle keep-alive
 * connection is closed at once (its client re-sends elsewhere, RFC 9112
 * §9.3.1) rather than given a grace for one more request. */
static inline bool proto_env_stopping(const struct proto_env *env) { return *env->stopping; }

struct proto {
	const char *name;        /* as written in [listener] protocol = */
	bool status_endpoint;    /* a listener of this protocol may set status = yes */
	/* Once per worker, before the first accept, when a listener uses this
	 * protocol; 0 or -errno (the worker cannot start). */
	int (*init)(const struct proto_env *env);
	/* Release what init() set up (the worker is exiting). */
	void (*done)(void);
	/* Take a freshly accepted, non-blocking fd. 0: the protocol owns fd
	 * now. -errno: it does not (the caller closes fd). */
	int (*accept)(const struct proto_env *env, const struct worker_listener *l, int fd,
		      const struct sockaddr *peer, socklen_t peer_len);
	/* Reopen log files (SIGUSR1 / REOPEN_LOGS); may be NULL. */
	void (*reopen_logs)(void);
	/* This protocol's own per-worker connection limit; 0 = only
	 * [server] max_connections applies. May be NULL. */
	unsigned (*max_connections)(const struct config *cfg);
};

/* Make table (NULL-terminated) the protocols this process knows, and tell
 * config their names. Called once by each main before loading a config. */
void proto_register(const struct proto *const *table);
/* The registered protocol called name (case-insensitive), or NULL. */
const struct proto *proto_find(const char *name);
/* The registered table (NULL-terminated), or NULL before proto_register(). */
const struct proto *const *proto_table(void);

#endif
