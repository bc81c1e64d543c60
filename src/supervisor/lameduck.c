/* lameduck: see lameduck.h. */
#include "supervisor/lameduck.h"

#include "core/log.h"
#include "core/metrics.h"

static void lame_duck_over(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct lame_duck *l = arg;
	(void)loop;
	(void)t;
	log_notice("lame duck over, stopping");
	sup_report(&l->sink, &(struct sup_event){ .kind = SUP_EV_LAME_DUCK_OVER });
}

void lame_duck_init(struct lame_duck *l, struct loop *loop, const struct sup_sink *sink)
{
	l->loop = loop;
	l->sink = *sink;
	l->on = false;
	loop_timer_init(&l->timer, lame_duck_over, l);
}

bool lame_duck_begin(struct lame_duck *l, uint64_t ms)
{
	if (!ms || l->on || !metrics_region())
		return false;
	l->on = true;
	metrics_set_lame_duck(true);
	log_notice("lame duck: health answers 503 for %llums, then the stop (SIGTERM, SIGINT or droverctl "
		   "stop again: the stop now)", (unsigned long long)ms);
	loop_timer_arm(l->loop, &l->timer, ms);
	return true;
}

void lame_duck_end(struct lame_duck *l)
{
	if (l->loop)
		loop_timer_cancel(l->loop, &l->timer);
}
