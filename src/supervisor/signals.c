/* signals: see signals.h. */
#include "supervisor/signals.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/loop.h"

static void signals_read(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct signals *s = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		sup_report(&s->sink, &(struct sup_event){ .kind = SUP_EV_SIGNAL, .signo = (int)si.ssi_signo });
	/* SIGCHLD can be coalesced with others; reaping is cheap and idempotent. */
	sup_report(&s->sink, &(struct sup_event){ .kind = SUP_EV_SIGNAL, .signo = SIGCHLD });
}

int signals_init(struct signals *s, struct loop *loop, const struct sup_sink *sink)
{
	s->sink = *sink;
	sigset_t mask;
	sigemptyset(&mask);
	int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&mask, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	s->fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	return loop_add_fd(loop, s->fd, LOOP_READ, signals_read, s);
}
