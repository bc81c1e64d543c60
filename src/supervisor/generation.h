/* generation: the bookkeeping of generations, as pure functions over a
 * struct gen_book and the pool's worker list (no fork, no signal, no
 * send), so that which generation serves, drains or is killed can be
 * tested alone. The coordinator holds the book and acts on the answers. */
#ifndef DROVER_GENERATION_H
#define DROVER_GENERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/pool.h"

#define GEN_CHANGE_TIMEOUT_MS 60000 /* a new generation not ready by then: the reload failed */

enum gen_change { GEN_STEADY, GEN_RELOADING, GEN_UPGRADING };

/* Which generation serves and which one is coming up. */
struct gen_book {
	uint32_t current;        /* the newest generation (coming up or serving) */
	uint32_t previous;       /* what serves until current is READY; the rollback target */
	uint32_t highest;        /* the highest number used: never used again, even after a rollback */
	enum gen_change change;  /* a reload or upgrade is bringing current up */
	bool announced;          /* current was READY once */
	bool serving;            /* READY=1 was sent once: new workers START at once */
	bool reload_pending;     /* one more reload once this change is over */
	bool upgrade_pending;    /* a binary upgrade once this change (and a pending reload) is over */
	uint64_t change_started_ms;
	uint64_t seq_started;    /* reloads asked for / answered, for waiting clients */
	uint64_t seq_done;
};

/* Workers of generation (older: of every generation below it) in state
 * (-1: any state). */
size_t gen_count(const struct pool_worker *list, uint32_t generation, int state, bool older);
/* The oldest generation with a worker alive; UINT32_MAX if none. */
uint32_t gen_oldest(const struct pool_worker *list);
/* The current generation has all its workers READY for the first time. */
bool gen_is_complete(const struct gen_book *g, const struct pool_worker *list, unsigned workers);
/* w is to be told to drain now that the current generation is ready. */
bool gen_drains_at_ready(const struct gen_book *g, const struct pool_worker *w);
/* max_generations counts the generation about to start: the oldest
 * generation to kill to make room, or 0 when none must go. */
uint32_t gen_over_cap(const struct gen_book *g, const struct pool_worker *list, unsigned max_generations);
/* A reload or upgrade begins: current + 1 comes up while current serves. */
void gen_begin(struct gen_book *g, enum gen_change change, uint64_t now_ms);
/* The change is over (ready or failed); waiting clients may be answered. */
void gen_end(struct gen_book *g);
/* The new generation never got ready: the previous one is current again
 * (and counts as announced). Returns the generation that failed. */
uint32_t gen_rollback(struct gen_book *g);
/* A change has run past GEN_CHANGE_TIMEOUT_MS. */
bool gen_timed_out(const struct gen_book *g, uint64_t now_ms);
/* The deadline workers are told in a stop ending at stop_deadline_ms: a
 * little before it, so that one finishing at its own deadline exits
 * cleanly instead of racing our SIGKILL. */
uint64_t gen_stop_deadline(uint64_t stop_deadline_ms, uint64_t shutdown_timeout_ms);

#endif
