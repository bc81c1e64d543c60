/* generation: the bookkeeping of generations, as pure functions over a
 * struct gen_book and the worker list (no fork, no signal, no send), so
 * that which generation serves, drains or is killed can be tested alone. */
#ifndef DROVER_GENERATION_H
#define DROVER_GENERATION_H

#include "supervisor/sup.h"

/* Workers of generation (older: of every generation below it) in state
 * (-1: any state). */
size_t gen_count(const struct sup_worker *list, uint32_t generation, int state, bool older);
/* The current generation has all its workers READY for the first time. */
bool gen_is_complete(const struct gen_book *g, const struct sup_worker *list, unsigned workers);
/* w is to be told to drain now that the current generation is ready. */
bool gen_drains_at_ready(const struct gen_book *g, const struct sup_worker *w);
/* max_generations counts the generation about to start: the oldest
 * generation to kill to make room, or 0 when none must go. */
uint32_t gen_over_cap(const struct gen_book *g, const struct sup_worker *list, unsigned max_generations);
/* A reload or upgrade begins: current + 1 comes up while current serves. */
void gen_begin(struct gen_book *g, enum gen_change change, uint64_t now_ms);
/* The change is over (ready or failed); waiting clients may be answered. */
void gen_end(struct gen_book *g);
/* The new generation never got ready: the previous one is current again
 * (and counts as announced). Returns the generation that failed. */
uint32_t gen_rollback(struct gen_book *g);
/* A change has run past SUP_RELOAD_TIMEOUT_MS. */
bool gen_timed_out(const struct gen_book *g, uint64_t now_ms);

#endif
