/* upgrade: the course of a binary upgrade. Its stages are modules of
 * their own: trial.c (the check and the trial children), handover.c (what
 * crosses the execve(), and the execve) and adopt.c (the new image's
 * side). This part runs them in order: the check, then the trial on the
 * listeners lent, then, once the coordinator has had the answers in
 * flight written and describes what is handed over, the execve. The
 * coordinator says when an upgrade may begin (never while stopping; after
 * a change in progress) and hears how it goes: SUP_EV_UPGRADE_PASSED (the
 * trial brought a generation up), SUP_EV_UPGRADE_EXEC (the execve is
 * next) or SUP_EV_UPGRADE_FAILED. */
#ifndef DROVER_UPGRADE_H
#define DROVER_UPGRADE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/event.h"
#include "supervisor/handover.h"
#include "supervisor/trial.h"

struct history;
struct history_entry;
struct loop;
struct scoreboard;

struct upgrade {
	struct sup_sink sink;
	char exe[PATH_MAX];      /* the installed binary to run again */
	char *const *argv;
	const char *config_path; /* the check's and the trial's -c */
	struct trial trial;
	struct handover lent;    /* the listeners lent to the trial */
	bool pending;            /* asked for during a change: to begin once it is over */
	bool passed;             /* the trial passed: the execve comes next */
	int trial_fd;            /* in a trial image: report "ready" here; else -1 */
	struct handover handed;  /* what the previous image handed over, or lent this trial */
};

/* No upgrade yet; exe is the installed binary, argv what it runs with;
 * trial_fd >= 0 in a trial image. */
void upgrade_init(struct upgrade *u, struct loop *loop, const struct sup_sink *sink, const char *exe,
		  char *const argv[], int trial_fd);
/* Whether an upgrade is being checked or tried, or passed (the execve is next). */
bool upgrade_busy(const struct upgrade *u);
/* What it is doing, as a status line ("" if nothing); answers: in flight. */
void upgrade_describe_phase(const struct upgrade *u, size_t answers, char *out, size_t len);
/* Begin: the check of config_path now, then the trial on the listeners in
 * lent (copied). A stage that cannot start fails the upgrade. */
void upgrade_begin(struct upgrade *u, const char *config_path, const struct handover *lent);
/* Asked for while a change is in progress (what: "reload" or "upgrade"):
 * pending until the coordinator begins it. */
void upgrade_defer(struct upgrade *u, const char *what);
/* A child exited: false if it was not the check or the trial. */
bool upgrade_child(struct upgrade *u, pid_t pid, int status);
/* Execute the new binary with st handed over (and the history h): its
 * environment is built, SUP_EV_UPGRADE_EXEC reported (the last word to
 * the service manager), then the execve. Returns only if that failed (the
 * upgrade failed, reported; the old image serves on): true if the execve
 * itself was tried. */
bool upgrade_exec(struct upgrade *u, const struct handover *st, const struct history *h);
/* End the upgrade under way or pending (how: "refused", "cancelled"; why),
 * reported as failed; nothing if there is none. */
void upgrade_fail(struct upgrade *u, const char *how, const char *why);

/* In the new image, right after the execve: take what was handed over
 * (into u->handed) and its scoreboard, and the reload history (newest
 * first into history, at most max; *n_history). *upgraded: there was a
 * hand-over at all. 0 or -errno, logged. */
int upgrade_adopt(struct upgrade *u, bool *upgraded, struct scoreboard **sb, bool *own_board,
		  struct history_entry *history, size_t max, size_t *n_history);
/* In a trial image: take the listeners the old image lent (into
 * u->handed). 0 or -errno, logged. */
int upgrade_take_lent(struct upgrade *u);
/* In a trial image, our generation is ready: tell the old image. */
void upgrade_report_ready(struct upgrade *u);

#endif
