/* sup: the supervisor's private state, shared by its files (supervisor,
 * pool, generation, listeners, upgrade, admin). One struct, grouped by the
 * role that owns each part; nothing outside src/supervisor includes this. */
#ifndef DROVER_SUP_H
#define DROVER_SUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/chan.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "supervisor/admin.h"
#include "supervisor/listeners.h"
#include "supervisor/handover.h"
#include "supervisor/history.h"
#include "supervisor/trial.h"
#include "worker/proto.h"

#define SUP_TICK_MS 250             /* hung detection, drain deadlines, STATUS= */
#define SUP_QUICK_DEATH_MS 10000    /* a worker dying sooner than this after start backs off */
#define SUP_RELOAD_TIMEOUT_MS 60000 /* a new generation not ready by then: reload failed */

/* ------------------------------------------------------------ the pool */

/* A worker's state has one encoding, the scoreboard's (and its names). */
enum sup_worker_state { SW_STARTING = SLOT_STARTING, SW_READY = SLOT_READY, SW_DRAINING = SLOT_DRAINING };

struct sup_worker {
	struct sup_worker *next;
	pid_t pid;
	uint32_t generation;
	uint32_t index;
	int slot;
	struct chan_out chan;   /* its control channel, and what the channel could not take yet */
	enum sup_worker_state state;
	bool wants_recycle;     /* sent RECYCLE_ME: start a replacement, then drain it */
	bool killed;            /* we sent SIGKILL; say so when reaped */
	bool reaped;            /* waited for: its pid may be reused, never signal it */
	bool start_failed;      /* said START_FAILED before exiting */
	uint64_t start_error;   /* its arg: why */
	pid_t replaces;         /* drain this pid once we are READY (max_requests) */
	uint64_t started_ms;
	uint64_t drain_deadline_ms;
	uint64_t abort_sent_ms; /* hung: SIGABRT sent at */
};

struct sup_respawn {
	uint64_t delay_ms;
	uint64_t not_before_ms;
	bool pending;
};

struct sup_pool {
	struct sup_worker *workers;
	struct sup_respawn respawn[SCOREBOARD_SLOTS];
	struct loop_timer respawn_timer;
};

/* ------------------------------------------------------ the generations */

enum gen_change { GEN_STEADY, GEN_RELOADING, GEN_UPGRADING };

/* Which generation serves and which one is coming up. Pure data: the
 * functions on it in generation.h never fork, signal or send. */
struct gen_book {
	uint32_t current;        /* the newest generation (coming up or serving) */
	uint32_t previous;       /* what serves until current is READY; the rollback target */
	uint32_t highest;        /* the highest number used: never used again, even after a rollback */
	enum gen_change change;  /* a reload or upgrade is bringing current up */
	bool announced;          /* current was READY once */
	bool serving;            /* READY=1 was sent once: new workers START at once */
	bool reload_pending;     /* one more reload once this change is over */
	bool upgrade_pending;    /* a binary upgrade once this change (and a pending reload) is over */
	uint64_t change_started_ms;
	uint64_t seq_started;    /* reloads asked for / answered, for waiting clients */
	uint64_t seq_done;
};

/* ------------------------------------------------------- the listeners */

struct sup_retired {
	struct listener l;
	uint32_t until_generation; /* close once no worker of a generation <= this is left */
};

struct sup_listeners {
	struct listener cur[CONFIG_MAX_LISTENERS];
	size_t n;
	struct sup_retired retired[CONFIG_MAX_LISTENERS * 4];
	size_t n_retired;
	struct worker_listener wl[CONFIG_MAX_LISTENERS]; /* what a worker forked now gets */
	/* What served before the change in progress, to roll back to. */
	struct listener prev[CONFIG_MAX_LISTENERS];
	size_t prev_n;
	size_t prev_n_retired;
};

/* --------------------------------------------------------- admin socket */

enum sup_wait { WAIT_NONE, WAIT_RELOAD, WAIT_UPGRADE };

struct sup_client {
	struct sup_client *next;
	int fd;
	char in[ADMIN_LINE_MAX];
	size_t in_len;
	enum sup_wait waiting;
	uint64_t reload_seq;
	char *out;          /* answer not yet written (the client reads slowly) */
	size_t out_len, out_off;
	bool closing;       /* answered: close once out is written */
};

struct sup_admin {
	int fd;
	char path[108];
	bool owned;             /* we created the socket file */
	struct sup_client *clients;
	int carried[1 + HANDOVER_MAX_CLIENTS]; /* droverctl clients the previous image handed over */
	size_t n_carried;
};

/* ------------------------------------------------------------- upgrade */

/* An upgrade runs two children of the installed binary before the
 * execve() (trial.c), finishes the answers in flight, then executes it in
 * our PID. */
struct sup_upgrade {
	char exe[PATH_MAX];     /* the installed binary to run again */
	char *const *argv;
	struct trial trial;     /* the check and the trial */
	bool flushing;          /* the trial passed: answers in flight, then the execve */
	struct loop_timer flush_timer;
	int trial_fd;           /* we are a trial: report "ready" here; else -1 */
};

/* ------------------------------------------------------------ the stop */

struct sup_stop {
	bool stopping;
	bool fast;
	uint64_t deadline_ms;
	struct loop_timer timer;
};

struct supervisor {
	struct config *cfg;
	struct config *prev_cfg; /* the config before a reload; NULL after an upgrade */
	struct loop *loop;
	struct scoreboard *sb;
	int sb_fd;
	struct gen_book gen;
	struct sup_pool pool;
	struct sup_listeners lst;
	struct sup_admin admin;
	struct sup_upgrade upg;
	struct sup_stop stop;
	char reload_result[HISTORY_TEXT_MAX]; /* the newest of history's texts, "" if none */
	struct history history;
	struct proto_fileset files;      /* what cfg's protocols write, opened for new workers */
	struct proto_fileset prev_files; /* prev_cfg's, while a reload may roll back to it */
	bool failed;             /* the first generation could not start: exit 1 */
	struct loop_timer tick;
	uint64_t last_watchdog_ms;
};

extern struct supervisor sup;

/* supervisor.c: the run loop, signals and the periodic tick. */
/* Graceful (fast = false) or fast stop; idempotent, a fast one may follow. */
void sup_stop(bool fast);
/* "serving", "reloading", "upgrading" or "stopping". */
const char *sup_state_word(void);
/* Refresh the STATUS= line from the current state. */
void sup_update_status(void);
/* Open the log files again and hand them to every worker (REOPEN_LOGS). */
void sup_reopen_logs(void);
/* The first generation cannot start: say why (log, STATUS=), stop, exit 1. */
void sup_fail(const char *why);

/* pool.c: workers (fork, reap, back-off, hung-worker kill). */
/* A worker's scoreboard slot; NULL for an adopted worker not watched. */
struct scoreboard_slot *pool_slot(const struct sup_worker *w);
/* How many workers are alive. */
size_t pool_count_all(void);
/* Open connections over all workers. */
uint64_t pool_connections(void);
/* Send START, REOPEN_LOGS or STOP to w (DRAIN: pool_drain); a full channel
 * holds it until the channel has room (a newer one of the same type takes
 * the place of one held), a failure ends the worker. */
void pool_send(struct sup_worker *w, enum chan_type type);
/* Tell w to drain by deadline_ms (never later than an earlier DRAIN). */
void pool_drain(struct sup_worker *w, uint64_t deadline_ms);
/* SIGKILL w, remembering that we did. */
void pool_kill(struct sup_worker *w);
/* Start the workers the current generation is missing. */
void pool_fill(void);
/* Reap exited children, replace workers that died, finish a stop. */
void pool_reap(void);
/* Watch the control channel of an (adopted or forked) worker. */
int pool_watch(struct sup_worker *w);
/* Hung workers and drains past their deadline; false if a worker is hung. */
bool pool_tick(uint64_t now);
/* Forget every back-off (a new generation starts afresh). */
void pool_reset_backoff(void);
/* Cancel every pending respawn (stopping). */
void pool_cancel_respawns(void);
/* The deadline given to workers at a stop (a little before ours). */
uint64_t pool_stop_deadline(void);
/* SIGKILL every worker (shutdown_timeout reached). */
void pool_kill_all(void);
/* Set up the respawn timer. */
void pool_init(void);

/* generation.c: reloads, rollback, ready (the stateful half; the pure
 * bookkeeping is declared in generation.h). */
/* Re-read the config and start a new generation, or fail with why. */
void gen_reload(void);
/* Run what waited for the change that just ended (a reload, then an upgrade). */
void gen_run_pending(void);
/* Ask for a reload now or after the change in progress. */
void gen_request_reload(void);
/* The current generation may have become ready: drain the old one. */
void gen_check_ready(void);
/* A reload or upgrade failed: say why, answer clients, run a pending reload. */
void gen_change_failed(const char *why);
/* Remember what serves now, to roll back to. */
void gen_snapshot(void);
/* A change that did not get ready in time: roll back and fail it. */
void gen_tick(uint64_t now);
/* A worker of the generation coming up cannot start (why): a reload or
 * upgrade fails now, rolled back; a first start fails (sup_fail). */
void gen_workers_failed(const char *why);
/* user/group must exist, and without root we must already be them; 0 or
 * -errno with a message in err. */
int gen_check_identity(const struct config *cfg, char *err, size_t err_len);

/* listeners.c (supervisor side): the set of listeners in use. */
/* Open every configured listener, reusing what we hold; on failure nothing
 * changes. 0 or -errno with err. */
int listen_set_open(const struct config *cfg, struct listen_pool *pool, char *err, size_t err_len);
/* After an upgrade: take the handed-over listeners (never failing). */
void listen_set_open_adopted(const struct config *cfg, struct listen_pool *pool,
			     const struct handover *adopted);
/* Keep a listener nobody configures until generation until_generation is gone. */
void listen_retire(const struct listener *l, uint32_t until_generation);
/* Close retired listeners whose generations have all exited, or that a
 * generation older than ready_generation was kept for (0: none): once the
 * change that retired them is ready, the old workers drain and close their
 * copies, and nobody may be left accepting on them. */
void listen_close_retired(uint32_t ready_generation);
/* Close every listener (stopping). */
void listen_close_all(void);
/* Rebuild what a new worker is given from the current set and config. */
void listen_build_worker(void);
/* Push the listeners we bound into systemd's fd store. */
void listen_push_fdstore(void);
/* Remember / restore the set around a change (rollback). */
void listen_snapshot(void);
void listen_rollback(uint32_t failed_generation);
/* [listener] defer_accept of cfg on every current listener; called once the
 * whole set is open, so a reload that fails changes nothing on the sockets
 * it would have kept, and again after a rollback. */
void listen_defer_all(const struct config *cfg);

/* upgrade.c: the binary upgrade's course (its stages: trial.c, handover.c, adopt.c). */
/* Where the installed binary is (argv0 resolved through PATH). */
void upgrade_resolve_exe(const char *argv0);
/* Start an upgrade (preflight first); c is the asking client or NULL. */
void upgrade_request(struct sup_client *c);
/* Whether the check or the trial of an upgrade is running. */
bool upgrade_checking(void);
/* In a trial image: take the listeners the old image lent us. 0 or -errno. */
int upgrade_trial_listeners(const char *value, struct listen_pool *pool);
/* In a trial image: our generation is ready; tell the old image. */
void upgrade_trial_report(void);
/* A child exited: true if it was the preflight check (then handled). */
bool upgrade_reaped(pid_t pid, int status);
/* Start an upgrade that waited for a reload to end. */
void upgrade_run_pending(void);
/* While answers in flight are finished: the last one was written; execve soon. */
void upgrade_answers_written(void);
/* Stop any preflight in progress or upgrade waiting, answering with why. */
void upgrade_cancel(const char *why);
/* Adopt what the previous image handed over (value of UPGRADE_ENV). */
int upgrade_adopt(const char *value, struct listen_pool *pool);
/* The state handed over by the previous image (zeroed if none). */
const struct handover *upgrade_adopted(void);

/* admin.c (supervisor side): the droverctl socket. */
/* Listen on the configured control socket (or keep the inherited one); 0
 * or -1 if an explicitly configured socket cannot be used. */
int admin_start(void);
/* Close the socket and every client, unlinking the socket file. */
void admin_stop(void);
/* Serve a connected client (non-blocking fd, closed on failure); NULL on failure. */
struct sup_client *admin_client_add(int fd);
/* Queue an answer to c and close it once written; a client holding more
 * than ADMIN_OUT_MAX unread is dropped. */
void admin_reply(struct sup_client *c, const char *text);
/* Answer the reload waiters whose change is over, and the clients carried
 * across an upgrade. */
void admin_answer_changes(bool ok, const char *text);
/* A reload or upgrade ended: its result becomes reload_result and the
 * newest entry of the history. */
void admin_record_change(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Add an entry that happened at the wall-clock time at (an adopted one). */
void admin_history_push(int64_t at, const char *text);
/* Answers not yet wholly written to their clients. */
size_t admin_answers_pending(void);

#endif
