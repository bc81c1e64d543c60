/* lameduck: [server] lame_duck, the time between a stop asked for
 * (SIGTERM, SIGINT, droverctl stop) and the stop itself, in which the
 * health path answers 503 while everything else is served and the
 * listeners stay open, so that a load balancer takes the node out before
 * it stops accepting. The flag the workers' health endpoint reads is in
 * the shared metrics header (core/metrics.h); this part sets it, logs
 * it, and reports SUP_EV_LAME_DUCK_OVER when the time is up. The
 * coordinator tells systemd (STOPPING=1, STATUS=) and then stops as it
 * always did. */
#ifndef DROVER_LAMEDUCK_H
#define DROVER_LAMEDUCK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "supervisor/event.h"

struct lame_duck {
	struct loop *loop;
	struct sup_sink sink;
	struct loop_timer timer;
	bool on;
};

void lame_duck_init(struct lame_duck *l, struct loop *loop, const struct sup_sink *sink);
/* Begin a lame duck of ms: true; false if there is none to begin (ms is 0,
 * one is on already, or no shared flag to set): the stop goes on now. */
bool lame_duck_begin(struct lame_duck *l, uint64_t ms);
/* The stop begins: no SUP_EV_LAME_DUCK_OVER any more (the flag stays set;
 * draining workers answer 503 anyway). */
void lame_duck_end(struct lame_duck *l);
static inline bool lame_duck_on(const struct lame_duck *l) { return l->on; }

#endif
