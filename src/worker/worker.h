/* worker: one process, one loop. Accepts on the shared listeners, hands each
 * connection to its protocol, heartbeats into its scoreboard slot, and drains
 * when the supervisor says so (or when the supervisor is gone). */
#ifndef DROVER_WORKER_H
#define DROVER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "worker/proto.h"

struct scoreboard;

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
	const struct proto_fileset *files; /* the files its protocols write, opened */
};

/* Run a worker in the current (just forked) process; never returns. */
__attribute__((noreturn)) void worker_main(const struct worker_params *p);

#endif
