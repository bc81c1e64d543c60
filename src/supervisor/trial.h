/* trial: the two children a binary upgrade runs before its execve(), and
 * the trial image's side of the second. First the check, "exe -t" on the
 * current config; then the trial, "exe --upgrade-trial=FD": the new binary
 * brings up a whole generation on listeners the old image lends it,
 * without accepting, and writes "ready" to FD. Each child's output and
 * exit arrive through the loop (a pipe, and SIGCHLD reaped by the
 * coordinator), each with its own time limit, so the supervisor goes on
 * serving meanwhile. */
#ifndef DROVER_TRIAL_H
#define DROVER_TRIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/loop.h"

struct handover;

enum trial_phase {
	TRIAL_IDLE,
	TRIAL_CHECK, /* "exe -t -c config" */
	TRIAL_RUN,   /* "exe --upgrade-trial=FD -c config" */
};

/* What a child's exit meant (trial_reaped). */
enum trial_result {
	TRIAL_NOT_OURS,     /* not the check or the trial */
	TRIAL_CHECK_PASSED, /* the check passed: run the trial next */
	TRIAL_READY,        /* the trial brought a generation up: execute the new binary */
	TRIAL_FAILED,       /* either failed; why says how */
};

struct trial {
	struct loop *loop;
	enum trial_phase phase;
	const char *exe;      /* the binary being tried (the caller's string) */
	pid_t child;          /* 0 if none */
	int child_fd;         /* check: its output; trial: its report; -1 if none */
	char out[2048];
	size_t out_len;
	bool timed_out;
	struct loop_timer timer;
};

/* An idle trial driven by loop. */
void trial_init(struct trial *t, struct loop *loop);
/* Start the check (lent: NULL) or the trial on the listeners lent
 * describes; 0 or -errno and the call that failed in what. */
int trial_start(struct trial *t, enum trial_phase phase, const char *exe, const char *config_path,
		const struct handover *lent, const char **what);
/* A child exited: whose it was and what it meant; why holds the reason
 * of a TRIAL_FAILED. The trial is idle again unless TRIAL_NOT_OURS. */
enum trial_result trial_reaped(struct trial *t, pid_t pid, int status, char *why, size_t why_len);
/* Kill the child in progress, if any, and forget it (its exit is reaped
 * as nobody's). */
void trial_cancel(struct trial *t);

/* In a trial image: take the listeners lent in HANDOVER_ENV's value into
 * st (CLOEXEC again). 0 or -errno, logged. */
int trial_take_lent(const char *value, struct handover *st);
/* In a trial image: our generation is ready; tell the old image through
 * *fd, which is closed and set to -1. */
void trial_report_ready(int *fd);

#endif
