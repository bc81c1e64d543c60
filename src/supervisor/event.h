/* event: what the supervisor's parts report to its coordinator
 * (supervisor.c). A part never acts on another part or on the supervisor's
 * shared state: when something happens that it did not ask for (a worker
 * speaks, a timer of its own fires, a droverctl command arrives), it says
 * so through the sink the coordinator gave it, and the coordinator decides
 * what follows. What a call the coordinator made leads to (a child
 * reaped, a trial's result) comes back as that call's return value. */
#ifndef DROVER_EVENT_H
#define DROVER_EVENT_H

#include <stdint.h>

struct admin_client;
struct admin_command;
struct pool_worker;

enum sup_event_kind {
	SUP_EV_WORKER_READY,     /* pool: worker said READY */
	SUP_EV_WORKER_RECYCLE,   /* pool: worker, READY, asks to be replaced; arg = RECYCLE_ME's */
	SUP_EV_RESPAWN_DUE,      /* pool: a worker's back-off is over: the pool may be filled */
	SUP_EV_COMMAND,          /* admin: client asked for command */
	SUP_EV_ANSWERS_WRITTEN,  /* admin: the answers awaited are written, or arg of them are not in time */
	SUP_EV_LISTENER_RETIRED, /* listeners: text, bound by us, left the set: not for the fd store */
	SUP_EV_UPGRADE_PASSED,   /* upgrade: the trial brought a generation up */
	SUP_EV_UPGRADE_EXEC,     /* upgrade: the execve is next */
	SUP_EV_UPGRADE_FAILED,   /* upgrade: it did not happen (how: failed, refused, cancelled; text: why) */
	SUP_EV_SIGNAL,           /* signals: signo arrived */
	SUP_EV_LAME_DUCK_OVER,   /* lameduck: the stop's lame duck is over */
};

struct sup_event {
	enum sup_event_kind kind;
	struct pool_worker *worker;          /* WORKER_* */
	uint64_t arg;                        /* WORKER_RECYCLE: RECYCLE_ME's; ANSWERS_WRITTEN: left */
	struct admin_client *client;         /* COMMAND */
	const struct admin_command *command; /* COMMAND */
	const char *text;                    /* LISTENER_RETIRED, UPGRADE_FAILED */
	const char *how;                     /* UPGRADE_FAILED */
	int signo;                           /* SIGNAL */
};

/* Where a part reports; handed to it by the coordinator (or a test). */
struct sup_sink {
	void (*report)(void *ctx, const struct sup_event *e);
	void *ctx;
};

static inline void sup_report(const struct sup_sink *sink, const struct sup_event *e)
{
	if (sink->report)
		sink->report(sink->ctx, e);
}

#endif
