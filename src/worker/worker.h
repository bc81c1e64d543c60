/* worker: one process, one loop. Accepts on the shared listeners, hands each
 * connection to its protocol, heartbeats into its scoreboard slot, and drains
 * when the supervisor says so (or when the supervisor is gone). */
#ifndef DROVER_WORKER_H
#define DROVER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct conn;
struct loop;
struct scoreboard;
struct scoreboard_slot;

/* A listening socket as a worker sees it. */
struct worker_listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	enum config_protocol protocol;
	bool status; /* serve the status endpoint here */
};

/* Everything a freshly forked worker needs; owned by the supervisor. */
struct worker_params {
	const struct config *cfg;
	struct scoreboard *sb;
	int slot;
	uint32_t generation;
	uint32_t index;
	int chan_fd;
	const struct worker_listener *listeners;
	size_t n_listeners;
};

struct worker;

/* Run a worker in the current (just forked) process; never returns. */
__attribute__((noreturn)) void worker_main(const struct worker_params *p);

/* For protocols: the worker is draining (stop keeping connections alive). */
bool worker_is_draining(const struct worker *w);
/* For protocols: the configuration this worker runs with. */
const struct config *worker_config(const struct worker *w);
/* For protocols: the worker's loop. */
struct loop *worker_loop(struct worker *w);
/* For protocols: this worker's scoreboard slot (counters). */
struct scoreboard_slot *worker_slot(struct worker *w);
/* For the status endpoint: the whole scoreboard. */
const struct scoreboard *worker_scoreboard(const struct worker *w);
/* Count a finished request (HTTP) toward the slot's counters and max_requests. */
void worker_request_done(struct worker *w);
/* Link a new connection into the worker (conn_init calls this). */
void worker_conn_attach(struct worker *w, struct conn *c);
/* Unlink a closing connection (conn_close calls this before freeing it). */
void worker_conn_detach(struct worker *w, struct conn *c);
/* After a connection was freed: finish a drain, or accept again below the limit. */
void worker_conn_closed(struct worker *w);

#endif
