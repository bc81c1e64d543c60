/* upgrade: the hand-over of a binary upgrade. The old image describes what
 * it passes through execve() (listener fds, the scoreboard, the workers'
 * pids and control fds, the waiting droverctl client) in one environment
 * variable; the new image parses it back. */
#ifndef DROVER_UPGRADE_H
#define DROVER_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"

#define UPGRADE_ENV "DROVER_UPGRADE_STATE"
#define UPGRADE_HISTORY_ENV "DROVER_UPGRADE_HISTORY" /* the reload history, see upgrade.c */
#define UPGRADE_MAX_WORKERS 256
#define UPGRADE_MAX_CLIENTS 16 /* droverctl clients carried besides client_fd */

struct upgrade_listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	bool from_systemd;
	bool unix_bound;
	char address[160];
};

struct upgrade_worker {
	pid_t pid;
	uint32_t generation;
	uint32_t index;
	int slot;
	int chan_fd;
	int state; /* the supervisor's view: 0 starting, 1 ready, 2 draining */
	uint64_t drain_deadline_ms;
	unsigned chan_version; /* the newest control message form it reads (1 if not handed over) */
};

struct upgrade_state {
	uint32_t generation;
	uint32_t highest_generation; /* never below generation */
	int scoreboard_fd;
	int ctl_fd;        /* the control socket, -1 if none */
	int client_fd;     /* the droverctl that asked for the upgrade, -1 if none */
	int more_client_fds[UPGRADE_MAX_CLIENTS]; /* others waiting (a reload asked for meanwhile) */
	size_t n_more_clients;
	int idle_client_fds[UPGRADE_MAX_CLIENTS]; /* connected, no command read yet: served on */
	size_t n_idle_clients;
	struct upgrade_listener listeners[CONFIG_MAX_LISTENERS * 5]; /* current + retired */
	size_t n_listeners;
	struct upgrade_worker workers[UPGRADE_MAX_WORKERS];
	size_t n_workers;
};

/* Serialise s into a "KEY=VALUE" environment string; 0 or -ENOBUFS. */
int upgrade_encode(const struct upgrade_state *s, char *out, size_t out_len);
/* Parse the value of UPGRADE_ENV; 0 or -EINVAL. */
int upgrade_decode(const char *value, struct upgrade_state *s);
/* Clear (inherit=true) or set FD_CLOEXEC on every fd s describes. */
void upgrade_set_inherit(const struct upgrade_state *s, bool inherit);

#endif
