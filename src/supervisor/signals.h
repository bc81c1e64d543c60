/* signals: the supervisor's signals, read from a signalfd the loop
 * watches. SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 and SIGUSR2
 * are blocked and each one that arrives is reported (SUP_EV_SIGNAL);
 * SIGPIPE is ignored. */
#ifndef DROVER_SIGNALS_H
#define DROVER_SIGNALS_H

#include "supervisor/event.h"

struct loop;

struct signals {
	struct sup_sink sink;
	int fd;
};

/* Block the signals and watch them through loop; 0 or -errno. */
int signals_init(struct signals *s, struct loop *loop, const struct sup_sink *sink);

#endif
