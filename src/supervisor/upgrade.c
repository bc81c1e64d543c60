/* upgrade: a binary upgrade's course (see upgrade.h). The check's and the
 * trial's exits come from the coordinator's reaping; a stage that fails
 * ends the course with its reason, and the old image serves on. */
#include "supervisor/upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "supervisor/adopt.h"

void upgrade_init(struct upgrade *u, struct loop *loop, const struct sup_sink *sink, const char *exe,
		  char *const argv[], int trial_fd)
{
	memset(u, 0, sizeof(*u));
	u->sink = *sink;
	snprintf(u->exe, sizeof(u->exe), "%s", exe);
	u->argv = argv;
	u->trial_fd = trial_fd;
	trial_init(&u->trial, loop);
}

bool upgrade_busy(const struct upgrade *u)
{
	return u->trial.phase != TRIAL_IDLE || u->passed;
}

void upgrade_describe_phase(const struct upgrade *u, size_t answers, char *out, size_t len)
{
	out[0] = '\0';
	if (u->trial.phase == TRIAL_CHECK)
		snprintf(out, len, "upgrade: checking %s -t\n", u->exe);
	else if (u->trial.phase == TRIAL_RUN)
		snprintf(out, len, "upgrade: checking %s with a trial generation\n", u->exe);
	else if (u->passed)
		snprintf(out, len, "upgrade: writing %zu answer(s), then executing %s\n", answers, u->exe);
}

/* The upgrade did not happen (how: "failed", "refused", "cancelled"). */
static void upgrade_failed(struct upgrade *u, const char *how, const char *why)
{
	u->passed = false;
	metrics_change(METRICS_UPGRADE, METRICS_FAILED);
	sup_report(&u->sink, &(struct sup_event){ .kind = SUP_EV_UPGRADE_FAILED, .how = how, .text = why });
}

/* Run the check or the trial; its exit (upgrade_child) decides what follows. */
static void upgrade_step(struct upgrade *u, enum trial_phase phase)
{
	if (phase == TRIAL_CHECK)
		log_notice("binary upgrade: checking %s", u->exe);
	else
		log_notice("binary upgrade: trying %s: a generation that does not accept yet", u->exe);
	const char *what;
	int r = trial_start(&u->trial, phase, u->exe, u->config_path, phase == TRIAL_RUN ? &u->lent : NULL, &what);
	if (r < 0) {
		char err[128];
		snprintf(err, sizeof(err), "%s: %s", what, strerror(-r));
		upgrade_failed(u, "failed", err);
	}
}

void upgrade_begin(struct upgrade *u, const char *config_path, const struct handover *lent)
{
	u->pending = false;
	u->config_path = config_path;
	u->lent = *lent;
	upgrade_step(u, TRIAL_CHECK);
}

void upgrade_defer(struct upgrade *u, const char *what)
{
	/* Like a second SIGHUP: done once the change in progress is over. */
	if (!u->pending)
		log_notice("binary upgrade: waiting for the %s in progress to end", what);
	u->pending = true;
}

bool upgrade_child(struct upgrade *u, pid_t pid, int status)
{
	char err[2300];
	switch (trial_reaped(&u->trial, pid, status, err, sizeof(err))) {
	case TRIAL_NOT_OURS:
		return false;
	case TRIAL_CHECK_PASSED:
		upgrade_step(u, TRIAL_RUN);
		break;
	case TRIAL_READY:
		u->passed = true;
		sup_report(&u->sink, &(struct sup_event){ .kind = SUP_EV_UPGRADE_PASSED });
		break;
	case TRIAL_FAILED:
		upgrade_failed(u, "failed", err);
		break;
	}
	return true;
}

bool upgrade_exec(struct upgrade *u, const struct handover *st, const struct history *h)
{
	char **envp;
	int r = handover_environment(st, h, &envp);
	if (r < 0) {
		upgrade_failed(u, r == -ENOBUFS ? "refused" : "failed",
			       r == -ENOBUFS ? "too much state to hand over" : "out of memory");
		return false;
	}
	sup_report(&u->sink, &(struct sup_event){ .kind = SUP_EV_UPGRADE_EXEC });
	log_notice("binary upgrade: executing %s (generation %u and its listeners are handed over)", u->exe,
		   st->generation);
	r = handover_exec(u->exe, u->argv, st, envp);
	char err[2300];
	snprintf(err, sizeof(err), "execve(%.2000s): %.200s", u->exe, strerror(-r));
	upgrade_failed(u, "failed", err);
	return true;
}

void upgrade_fail(struct upgrade *u, const char *how, const char *why)
{
	if (!upgrade_busy(u) && !u->pending)
		return;
	trial_cancel(&u->trial); /* its exit is reaped as nobody's */
	u->pending = false;
	upgrade_failed(u, how, why);
}

/* --------------------------------------------------------- the new image */

int upgrade_adopt(struct upgrade *u, bool *upgraded, struct scoreboard **sb, bool *own_board,
		  struct history_entry *history, size_t max, size_t *n_history)
{
	const char *value = getenv(HANDOVER_ENV);
	*upgraded = value && *value;
	*n_history = 0;
	if (!*upgraded)
		return 0;
	char *copy = strdup(value);
	unsetenv(HANDOVER_ENV);
	int r = copy ? adopt_state(copy, &u->handed, sb, own_board) : -ENOMEM;
	free(copy);
	if (r >= 0)
		*n_history = adopt_history(u->handed.generation, history, max);
	return r;
}

/* ------------------------------------------------------ a trial image */

int upgrade_take_lent(struct upgrade *u)
{
	const char *lent = getenv(HANDOVER_ENV);
	int r = lent ? trial_take_lent(lent, &u->handed) : -EINVAL;
	if (r >= 0)
		unsetenv(HANDOVER_ENV);
	return r;
}

void upgrade_report_ready(struct upgrade *u)
{
	trial_report_ready(&u->trial_fd);
}
