/* supervisor: the parent process. Holds the listeners, the config and the
 * scoreboard; forks, watches, replaces, reloads, upgrades and drains the
 * workers. Never touches a client. supervisor.c is its coordinator: the
 * one owner of its state and of every decision (see there). */
#ifndef DROVER_SUPERVISOR_H
#define DROVER_SUPERVISOR_H

#include <sys/types.h>

struct admin;
struct config;
struct history;
struct loop;
struct upgrade;

/* Run the supervisor until it stops; returns the process exit status.
 * argv0 is the path to execve() on a binary upgrade. trial_fd >= 0: this
 * is an upgrade's trial run (--upgrade-trial=FD): bring one generation up
 * on the listeners the old image lends, without accepting, write "ready"
 * to trial_fd and stop; -1 otherwise. */
int supervisor_run(struct config *cfg, const char *argv0, char *const argv[], int trial_fd);

/* ------------------------------------------------------------ for tests
 * A supervisor in this process with no config, workers, listeners or
 * signals, and exe as its installed binary (argv for the execve): a test
 * plays the parts' side and watches what the coordinator decides. */
struct supervisor_probe {
	struct loop *loop;              /* NULL if it could not be set up */
	struct admin *admin;            /* its droverctl server */
	struct upgrade *upgrade;        /* its upgrade's course */
	const struct history *history;  /* its reload history and last result */
};
struct supervisor_probe supervisor_test_setup(const char *exe, char *const argv[]);
/* A child exited (as SIGCHLD would report it). */
void supervisor_test_child_exited(pid_t pid, int status);
/* Close its clients and free its loop. */
void supervisor_test_teardown(void);

#endif
