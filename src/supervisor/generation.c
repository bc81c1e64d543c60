/* generation: the bookkeeping of generations (see generation.h). A reload
 * starts generation g+1; only when all of its workers are READY is g told
 * to drain. A generation that never gets ready is rolled back: g serves
 * on. The coordinator does all of that; this file only answers. */
#include "supervisor/generation.h"

size_t gen_count(const struct pool_worker *list, uint32_t generation, int state, bool older)
{
	size_t n = 0;
	for (const struct pool_worker *w = list; w; w = w->next) {
		if (older ? w->generation >= generation : w->generation != generation)
			continue;
		if (state >= 0 && (int)w->state != state)
			continue;
		n++;
	}
	return n;
}

uint32_t gen_oldest(const struct pool_worker *list)
{
	uint32_t oldest = UINT32_MAX;
	for (const struct pool_worker *w = list; w; w = w->next)
		if (w->generation < oldest)
			oldest = w->generation;
	return oldest;
}

bool gen_is_complete(const struct gen_book *g, const struct pool_worker *list, unsigned workers)
{
	return !g->announced && gen_count(list, g->current, PW_READY, false) >= workers;
}

bool gen_drains_at_ready(const struct gen_book *g, const struct pool_worker *w)
{
	return w->generation < g->current && w->state != PW_DRAINING;
}

uint32_t gen_over_cap(const struct gen_book *g, const struct pool_worker *list, unsigned max_generations)
{
	uint32_t oldest = UINT32_MAX;
	uint32_t seen[64];
	size_t gens = 0;
	bool has_current = false;
	for (const struct pool_worker *w = list; w; w = w->next) {
		bool dup = false;
		for (size_t i = 0; i < gens && !dup; i++)
			dup = seen[i] == w->generation;
		if (!dup && gens < sizeof(seen) / sizeof(seen[0]))
			seen[gens++] = w->generation;
		if (w->generation < oldest)
			oldest = w->generation;
		has_current |= w->generation == g->current;
	}
	/* The generation about to start counts too. */
	if (gens + (has_current ? 0 : 1) <= max_generations || oldest >= g->current)
		return 0;
	return oldest;
}

void gen_begin(struct gen_book *g, enum gen_change change, uint64_t now_ms)
{
	if (g->highest < g->current)
		g->highest = g->current;
	g->previous = g->current;
	g->current = ++g->highest;
	g->change = change;
	g->announced = false;
	g->change_started_ms = now_ms;
}

void gen_end(struct gen_book *g)
{
	g->change = GEN_STEADY;
	g->seq_done = g->seq_started;
}

uint32_t gen_rollback(struct gen_book *g)
{
	uint32_t failed = g->current;
	g->current = g->previous;
	g->announced = true;
	return failed;
}

bool gen_timed_out(const struct gen_book *g, uint64_t now_ms)
{
	return g->change != GEN_STEADY && now_ms - g->change_started_ms > GEN_CHANGE_TIMEOUT_MS;
}

uint64_t gen_stop_deadline(uint64_t stop_deadline_ms, uint64_t shutdown_timeout_ms)
{
	uint64_t margin = shutdown_timeout_ms / 10;
	if (margin > 500)
		margin = 500;
	return stop_deadline_ms - margin;
}
