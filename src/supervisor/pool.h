/* pool: the worker processes. Forks them with only the fds they need,
 * talks to them over their control channels (a chan_out queue each, so a
 * worker that does not read never blocks the supervisor), reaps them,
 * respawns the ones that die (backing off when they die right after start)
 * and ends the ones that hang or overstay a drain. What a worker says goes
 * to the coordinator as an event (event.h); which worker is started,
 * drained or told what is the coordinator's decision. */
#ifndef DROVER_POOL_H
#define DROVER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/chan.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "supervisor/event.h"
#include "worker/proto.h"

#define POOL_QUICK_DEATH_MS 10000 /* a worker dying sooner than this after start backs off */

struct config;
struct handover;

/* A worker's state has one encoding, the scoreboard's (and its names). */
enum pool_worker_state { PW_STARTING = SLOT_STARTING, PW_READY = SLOT_READY, PW_DRAINING = SLOT_DRAINING };

struct pool_worker {
	struct pool_worker *next;
	struct pool *pool;      /* the pool it belongs to */
	pid_t pid;
	uint32_t generation;
	uint32_t index;
	int slot;               /* in the scoreboard; -1 for an adopted worker not watched */
	struct chan_out chan;   /* its control channel, and what the channel could not take yet */
	enum pool_worker_state state;
	bool wants_recycle;     /* sent RECYCLE_ME: start a replacement, then drain it */
	bool recycle_nomem;     /* ...because it was short of memory (CHAN_RECYCLE_NOMEM) */
	bool killed;            /* we sent SIGKILL; say so when reaped */
	bool reaped;            /* waited for: its pid may be reused, never signal it */
	bool start_failed;      /* said START_FAILED before exiting */
	uint64_t start_error;   /* its arg: why */
	bool drain_stop;        /* its DRAIN is for a stop (CHAN_DRAIN_STOP) */
	pid_t replaces;         /* drain this pid once we are READY (max_requests) */
	pid_t handoff_to;       /* hands its connections over to this pid (0: none) */
	uint64_t started_ms;
	uint64_t drain_deadline_ms;
	uint64_t abort_sent_ms; /* hung: SIGABRT sent at */
};

struct pool_respawn {
	uint64_t delay_ms;
	uint64_t not_before_ms;
	bool pending;
};

/* Hand-off counters of workers already gone, for a few recent generations. */
#define POOL_TALLY_GENS 8
struct pool_tally {
	bool used;
	uint32_t generation;
	uint64_t handed_off;
	uint64_t adopted;
};

struct pool {
	struct loop *loop;
	struct scoreboard *sb;
	struct sup_sink sink;
	struct pool_worker *workers;
	struct pool_respawn respawn[SCOREBOARD_SLOTS]; /* by worker index */
	struct loop_timer respawn_timer;
	bool stopping;          /* nothing is forked or respawned any more */
	struct pool_tally tally[POOL_TALLY_GENS];
};

/* What a worker forked now is given. */
struct pool_spawn {
	const struct config *cfg;                /* its workers count is the pool's size */
	uint32_t generation;
	const struct worker_listener *listeners;
	size_t n_listeners;
	const struct proto_fileset *files;       /* the files its protocols write, opened */
};

/* What pool_fill does when a fork fails. */
enum pool_fork_failure {
	POOL_BACK_OFF, /* try again later, backing off */
	POOL_GIVE_UP,  /* stop and say so: the generation coming up cannot have its workers */
};

/* What a DRAIN is for (CHAN_DRAIN_STOP). */
enum pool_drain_for {
	POOL_DRAIN_HANDOVER, /* a newer generation (or a replacement) serves on */
	POOL_DRAIN_STOP,     /* nobody serves after us */
};

/* An empty pool on loop, reporting to sink. */
void pool_init(struct pool *p, struct loop *loop, const struct sup_sink *sink);
/* The scoreboard its workers' slots are in. */
void pool_set_scoreboard(struct pool *p, struct scoreboard *sb);
/* A worker's scoreboard slot; NULL for an adopted worker not watched. */
struct scoreboard_slot *pool_slot(const struct pool *p, const struct pool_worker *w);
/* How many workers are alive. */
size_t pool_count(const struct pool *p);
/* Open connections over all workers. */
uint64_t pool_connections(const struct pool *p);

/* Send START or STOP to w; a full channel holds it until the channel has
 * room (a newer one of the same type takes the place of one held), a
 * failure ends the worker. */
void pool_send(struct pool *p, struct pool_worker *w, enum chan_type type);
/* Send REOPEN_LOGS with files (SCM_RIGHTS), as pool_send. */
void pool_send_files(struct pool *p, struct pool_worker *w, const struct proto_fileset *files);
/* Tell w to drain by deadline_ms (never later than an earlier DRAIN). */
void pool_drain(struct pool *p, struct pool_worker *w, uint64_t deadline_ms, enum pool_drain_for why);
/* Tell w to drain by deadline_ms for a newer worker; to (READY, or NULL:
 * none) adopts its connections first (hand-off: a channel between the
 * two, sent ahead of the DRAIN). */
void pool_drain_to(struct pool *p, struct pool_worker *w, struct pool_worker *to, uint64_t deadline_ms);
/* w is READY: the worker it replaces, if any, drains by deadline_ms
 * (handing its connections to w when handoff is set). */
void pool_drain_replaced(struct pool *p, struct pool_worker *w, uint64_t deadline_ms, bool handoff);
/* Connections generation's workers handed over and adopted, those gone
 * included. */
void pool_handoff_counts(const struct pool *p, uint32_t generation, uint64_t *handed_off, uint64_t *adopted);
/* The READY worker of generation after prev (NULL: the first), wrapping
 * round; NULL if there is none. */
struct pool_worker *pool_next_ready(const struct pool *p, uint32_t generation, struct pool_worker *prev);
/* w asked to be replaced (arg: RECYCLE_ME's): the next pool_fill starts
 * its replacement, whose READY drains it. */
void pool_recycle(struct pool *p, struct pool_worker *w, uint64_t arg);
/* SIGKILL w, remembering that we did. */
void pool_kill(struct pool *p, struct pool_worker *w);
/* SIGKILL every worker of generation to make room (max_generations). */
void pool_kill_generation(struct pool *p, uint32_t generation, unsigned max_generations);
/* Every worker of generation drains by deadline_ms (it never got ready). */
void pool_drain_generation(struct pool *p, uint32_t generation, uint64_t deadline_ms);
/* START to every READY worker of generation (READY=1 went to systemd). */
void pool_start_generation(struct pool *p, uint32_t generation);
/* SIGKILL every worker (shutdown_timeout reached), logging each. */
void pool_kill_all(struct pool *p);
/* A stop: every worker drains by deadline_ms (POOL_DRAIN_STOP), or, fast,
 * is told to STOP at once. */
enum pool_end { POOL_END_DRAIN, POOL_END_NOW };
void pool_end_all(struct pool *p, enum pool_end how, uint64_t deadline_ms);

/* Start the workers generation s->generation is missing, and the
 * replacements asked for. 0, or -errno of a fork that failed with
 * POOL_GIVE_UP (the rest is not started; why says so). */
int pool_fill(struct pool *p, const struct pool_spawn *s, enum pool_fork_failure on_failure, char *why,
	      size_t why_len);
/* A child exited (status): if it was a worker, log how, forget it (its
 * last words read, its slot freed), copy what it was into *gone (its next
 * and channel no longer valid) and return true; false if pid is no worker. */
bool pool_reaped(struct pool *p, pid_t pid, int status, struct pool_worker *gone);
/* gone died unasked: start another at the next pool_fill, after a
 * back-off if it died right after its start (no fork loop). */
void pool_respawn_later(struct pool *p, const struct pool_worker *gone, uint64_t now);
/* Why w could not start, from its START_FAILED or else its exit status. */
void pool_start_error(const struct pool_worker *w, int status, char *why, size_t len);
/* Hung workers and drains past their deadline; false if a worker is hung. */
bool pool_tick(struct pool *p, uint64_t now, uint64_t worker_timeout_ms);
/* Forget every back-off (a new generation starts afresh). */
void pool_reset_backoff(struct pool *p);
/* Stopping: cancel every pending respawn, fork nothing any more, and let
 * drains run to the stop's own deadline. */
void pool_stop(struct pool *p);

/* The workers, for the hand-over of a binary upgrade. */
void pool_describe(const struct pool *p, struct handover *st);
/* Take over the previous image's workers (own_board: their slots are in a
 * scoreboard we cannot read). 0 or -ENOMEM. */
int pool_adopt(struct pool *p, const struct handover *st, bool own_board);

#endif
