/* handover: what crosses the execve() of a binary upgrade. The old image
 * describes what it passes on (listener fds, the scoreboard, the workers'
 * pids, control fds and channel versions, the waiting droverctl clients)
 * in one environment variable and its reload history in a second; the new
 * image parses them back. Also the environment and the execve() itself,
 * and where the installed binary is. The format is in handover.c. */
#ifndef DROVER_HANDOVER_H
#define DROVER_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "supervisor/history.h"

#define HANDOVER_ENV "DROVER_UPGRADE_STATE"
#define HANDOVER_HISTORY_ENV "DROVER_UPGRADE_HISTORY" /* the reload history */
#define HANDOVER_MAX_WORKERS 256
#define HANDOVER_MAX_CLIENTS 16 /* droverctl clients carried besides client_fd */
#define HANDOVER_MAX_LISTENERS (CONFIG_MAX_LISTENERS * 5) /* current + retired */

struct handover_listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	bool from_systemd;
	bool unix_bound;
	char address[160];
};

struct handover_worker {
	pid_t pid;
	uint32_t generation;
	uint32_t index;
	int slot;
	int chan_fd;
	int state; /* the supervisor's view: 0 starting, 1 ready, 2 draining */
	uint64_t drain_deadline_ms;
	unsigned chan_version; /* the newest control message form it reads (1 if not handed over) */
	pid_t handoff_to;      /* the worker it hands its connections to (hand-off), 0: none */
};

struct handover {
	uint32_t generation;
	uint32_t highest_generation; /* never below generation */
	int scoreboard_fd;
	int keys_fd;       /* the TLS session ticket keys' memfd (tls_keys.h), -1 if none */
	int metrics_fd;    /* the metrics counters' memfd (core/metrics.h), -1 if none */
	int ctl_fd;        /* the control socket, -1 if none */
	int client_fd;     /* the droverctl that asked for the upgrade, -1 if none */
	int more_client_fds[HANDOVER_MAX_CLIENTS]; /* others waiting (a reload asked for meanwhile) */
	size_t n_more_clients;
	int idle_client_fds[HANDOVER_MAX_CLIENTS]; /* connected, no command read yet: served on */
	size_t n_idle_clients;
	struct handover_listener listeners[HANDOVER_MAX_LISTENERS];
	size_t n_listeners;
	struct handover_worker workers[HANDOVER_MAX_WORKERS];
	size_t n_workers;
};

/* An empty hand-over of generation (highest: the highest number used) and
 * the scoreboard's fd: no listener, worker or client yet. */
void handover_init(struct handover *s, uint32_t generation, uint32_t highest, int scoreboard_fd);
/* Serialise s into a "HANDOVER_ENV=VALUE" environment string; 0 or -ENOBUFS. */
int handover_encode(const struct handover *s, char *out, size_t out_len);
/* Parse the value of HANDOVER_ENV; 0 or -EINVAL. */
int handover_decode(const char *value, struct handover *s);

/* Whether the fds of a hand-over survive an execve(). */
enum handover_fds { HANDOVER_FDS_INHERITED, HANDOVER_FDS_CLOEXEC };
/* Clear or set FD_CLOEXEC on every fd s describes. */
void handover_set_fds(const struct handover *s, enum handover_fds how);

/* The history, handed over with generation, as a "HANDOVER_HISTORY_ENV=..."
 * string; 0 or -ENOBUFS. */
int handover_history_encode(const struct history *h, uint32_t generation, char *out, size_t out_len);
/* The entries of HANDOVER_HISTORY_ENV's value, newest first, if it was
 * handed over with generation (an older image passes on one about an older
 * generation untouched); how many, at most max. */
size_t handover_history_decode(const char *value, uint32_t generation, struct history_entry *out, size_t max);

/* Where the installed binary is: argv0 resolved through PATH, not
 * /proc/self/exe (which still names a replaced file). */
void handover_find_exe(const char *argv0, char *exe, size_t len);
/* The environment for another image, into *envp: ours without a previous
 * hand-over or socket activation, plus s and (when h is not NULL, and it
 * fits) the history, handed over with s->generation. 0, -ENOBUFS when s
 * does not fit, or -ENOMEM. The strings stay valid until the next call;
 * free() the array. */
int handover_environment(const struct handover *s, const struct history *h, char ***envp);
/* Execute exe in this process with argv and envp, s's fds inherited.
 * Returns only when that failed: -errno, the fds CLOEXEC again, envp freed. */
int handover_exec(const char *exe, char *const argv[], const struct handover *s, char **envp);

#endif
