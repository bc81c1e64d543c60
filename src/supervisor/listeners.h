/* listeners: obtain the listening sockets, from systemd socket activation
 * (or the fd store), from the previous image during a binary upgrade, or by
 * binding them here; and the supervisor's set of them: the ones in use, the
 * ones a reload retired (kept until no worker may accept on them), what a
 * worker forked now is given, and what to roll back to. */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "supervisor/event.h"
#include "worker/proto.h"

struct handover;

/* One listening socket owned by the supervisor. */
struct listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	char address[160];   /* config text; "" for systemd-only listeners */
	bool from_systemd;   /* passed in, not bound here (do not unlink unix paths) */
	bool unix_bound;     /* we created a unix socket file at address */
};

/* Close a listener (unlinking a unix socket file we created). */
void listen_close(struct listener *l);

/* ------------------------------------------------ the supervisor's set */

struct listen_retired {
	struct listener l;
	uint32_t until_generation; /* close once no worker of a generation <= this is left */
};

struct listen_set {
	struct sup_sink sink;
	struct listener cur[CONFIG_MAX_LISTENERS];
	size_t n;
	struct listen_retired retired[CONFIG_MAX_LISTENERS * 4];
	size_t n_retired;
	struct worker_listener wl[CONFIG_MAX_LISTENERS]; /* what a worker forked now gets */
	/* What served before the change in progress, to roll back to. */
	struct listener prev[CONFIG_MAX_LISTENERS];
	size_t prev_n;
	size_t prev_n_retired;
};

/* An empty set; a listener we bound that leaves it is reported to sink
 * (SUP_EV_LISTENER_RETIRED: systemd's fd store must let go of it). */
void listen_set_init(struct listen_set *s, const struct sup_sink *sink);
/* A fresh start: cfg's listeners, from the sockets systemd passed (by
 * name) or bound here; a socket systemd passed for no [listener] is an
 * error too. 0 or -errno, logged. */
int listen_set_start(struct listen_set *s, const struct config *cfg);
/* A reload: open every listener of cfg, reusing what s holds; the ones
 * cfg drops are retired until generation is gone. On failure nothing
 * changes. 0 or -errno with err. */
int listen_set_open(struct listen_set *s, const struct config *cfg, uint32_t generation, char *err, size_t err_len);
/* Close retired listeners whose generations have all exited (none is at
 * or above oldest_alive, the oldest generation with a worker), or that a
 * generation older than ready_generation was kept for (0: none): once the
 * change that retired them is ready, the old workers drain and close their
 * copies, and nobody may be left accepting on them. */
void listen_close_retired(struct listen_set *s, uint32_t ready_generation, uint32_t oldest_alive);
/* Close every listener (stopping). */
void listen_close_all(struct listen_set *s);
/* Rebuild what a new worker is given from the current set and cfg. */
void listen_build_worker(struct listen_set *s, const struct config *cfg);
/* Log each listener a new generation gets (after listen_build_worker). */
void listen_log_set(const struct listen_set *s);
/* The listeners we bound (systemd's are its own), for its fd store; how
 * many, at most max. */
size_t listen_fdstore(const struct listen_set *s, int *fds, const char **names, size_t max);
/* Remember / restore the set around a change (rollback). */
void listen_snapshot(struct listen_set *s);
void listen_rollback(struct listen_set *s, uint32_t failed_generation);
/* [listener] defer_accept of cfg on every current listener; called once the
 * whole set is open, so a reload that fails changes nothing on the sockets
 * it would have kept, and again after a rollback. */
void listen_defer_all(const struct listen_set *s, const struct config *cfg);

/* What a binary upgrade hands over of the set. */
enum listen_hand {
	LISTEN_HAND_OVER, /* every listener, current and retired, as it is: to the new image */
	LISTEN_LEND,      /* the current ones, never the borrower's to unlink: to a trial */
};
/* Describe the set into st for the new image or a trial; -E2BIG if it
 * does not fit, else 0. */
int listen_describe(const struct listen_set *s, struct handover *st, enum listen_hand how);
/* The new image (LISTEN_HAND_OVER) or a trial (LISTEN_LEND): take the
 * listeners st describes for cfg. Never fails: a listener that cannot be
 * opened is logged and not served, and with none at all the old set stays. */
void listen_set_start_handed(struct listen_set *s, const struct config *cfg, const struct handover *st,
			     enum listen_hand how);

#endif
