/* supervisor: holds the listeners, the config and the scoreboard; forks,
 * watches, replaces, reloads, upgrades and drains the workers. Never
 * touches a client. */
#ifndef DROVER_SUPERVISOR_H
#define DROVER_SUPERVISOR_H

struct config;

/* Run the supervisor until it stops; returns the process exit status.
 * argv0 is the path to execve() on a binary upgrade. trial_fd >= 0: this
 * is an upgrade's trial run (--upgrade-trial=FD): bring one generation up
 * on the listeners the old image lends, without accepting, write "ready"
 * to trial_fd and stop; -1 otherwise. */
int supervisor_run(struct config *cfg, const char *argv0, char *const argv[], int trial_fd);

#endif
