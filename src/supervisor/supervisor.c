/* supervisor: the coordinator. It owns the supervisor's state (the
 * generation book, the stop, the reload history) and makes every
 * decision; each part owns its own state and does what it is told:
 * settings.c (the config in force and its files), pool.c (the workers),
 * listeners.c (the listening sockets), admin.c (droverctl's socket),
 * upgrade.c (a binary upgrade's course), notify.c (systemd), signals.c, lameduck.c,
 * plus the pure generation.c (bookkeeping) and status.c (the state in
 * words). What happens on a part's side reaches sup_on_event (event.h);
 * what a call leads to comes back as its return value. Parts never call
 * each other. It never accepts a client.
 *
 * The file reads top to bottom: the state, STATUS=, the stop, workers,
 * reloads and readiness, the binary upgrade, droverctl's commands, the
 * event switch, the tick, start-up. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/scoreboard.h"
#include "supervisor/admin.h"
#include "supervisor/event.h"
#include "supervisor/generation.h"
#include "supervisor/history.h"
#include "supervisor/lameduck.h"
#include "supervisor/listeners.h"
#include "supervisor/notify.h"
#include "supervisor/pool.h"
#include "supervisor/settings.h"
#include "supervisor/signals.h"
#include "supervisor/status.h"
#include "supervisor/upgrade.h"
#include "worker/tls_keys.h"

#define SUP_TICK_MS 250       /* hung detection, drain deadlines, STATUS= */
#define SUP_FAST_STOP_MS 5000 /* SIGQUIT: workers get this long to close */
#define SUP_FLUSH_MS 2000     /* upgrade: answers in flight are written by then, or dropped */

/* The supervisor's state: only this file writes it. */
static struct supervisor {
	struct loop *loop;
	struct scoreboard *sb;
	int sb_fd;
	struct gen_book gen;
	struct history history;  /* of reloads and upgrades; carried across a binary upgrade */
	struct {
		bool stopping;
		bool fast;
		uint64_t deadline_ms;
		struct loop_timer timer;
	} stop;
	bool failed;             /* the first generation could not start: exit 1 */
	struct loop_timer tick;
	uint64_t last_watchdog_ms;
	/* The parts. */
	struct settings set;     /* the config in force and the files its workers write */
	struct pool pool;
	struct listen_set lst;
	struct admin admin;
	struct upgrade upg;
	struct signals sig;
	struct lame_duck lame;
} sup;

static void sup_stop(bool fast);
static void sup_run_pending(void);
static void sup_upgrade_request(struct admin_client *c);
static void sup_upgrade_begin(void);

/* ---------------------------------------------------------- STATUS= */

/* "serving", "reloading", "upgrading" or "stopping". */
static const char *sup_state_word(void)
{
	if (sup.stop.stopping || lame_duck_on(&sup.lame))
		return sup.stop.stopping ? "stopping" : "lame duck";
	if (sup.gen.change == GEN_RELOADING)
		return "reloading";
	if (sup.gen.change == GEN_UPGRADING || upgrade_busy(&sup.upg))
		return "upgrading";
	return "serving";
}

/* What status.c is shown; upgrade is the buffer for the upgrade's line. */
static struct status_view sup_view(char *upgrade, size_t len)
{
	upgrade_describe_phase(&sup.upg, admin_answers_pending(&sup.admin), upgrade, len);
	return (struct status_view){
		.cfg = sup.set.cfg,
		.gen = &sup.gen,
		.pool = &sup.pool,
		.history = &sup.history,
		.state = sup_state_word(),
		.last_result = sup.history.last,
		.upgrade = upgrade,
		.stopping = sup.stop.stopping,
		.failed = sup.failed,
		.stop_deadline_ms = sup.stop.deadline_ms,
		.started_ms = sup.sb ? sup.sb->hdr.started_ms : 0,
		.pid = (int)getpid(),
	};
}

/* Refresh the STATUS= line from the current state. */
static void sup_update_status(void)
{
	char upgrade[PATH_MAX + 64], line[512];
	struct status_view v = sup_view(upgrade, sizeof(upgrade));
	status_line(&v, loop_now_ms(sup.loop), line, sizeof(line));
	notify_status("%s", line);
}

/* Push the listeners we bound into systemd's fd store. */
static void sup_push_fdstore(void)
{
	int fds[CONFIG_MAX_LISTENERS];
	const char *names[CONFIG_MAX_LISTENERS];
	size_t n = listen_fdstore(&sup.lst, fds, names, CONFIG_MAX_LISTENERS);
	if (n)
		notify_fdstore(fds, names, (unsigned)n);
}

/* ------------------------------------------------------------ the stop */

static uint64_t sup_stop_deadline(void)
{
	return gen_stop_deadline(sup.stop.deadline_ms, sup.set.cfg->server.shutdown_timeout_ms);
}

/* The first stop request: no new connections first (systemd, or the
 * kernel for sockets only we held, refuses or queues them), then nothing
 * else is started and everyone waiting is told. */
static void sup_stop_begin(bool fast)
{
	char status[160];
	snprintf(status, sizeof(status), "stopping: draining %zu worker(s)", pool_count(&sup.pool));
	notify_stopping(status);
	log_notice("%s stop: closing listeners, %s %zu worker(s)", fast ? "fast" : "graceful",
		   fast ? "stopping" : "draining", pool_count(&sup.pool));
	listen_close_all(&sup.lst);
	admin_await_cancel(&sup.admin);
	upgrade_fail(&sup.upg, "cancelled", "drover is stopping");
	sup.gen.seq_done = sup.gen.seq_started = sup.gen.seq_started + 1;
	sup.gen.change = GEN_STEADY;
	admin_answer_reloads(&sup.admin, "ERR drover is stopping\n", sup.gen.seq_done);
	pool_stop(&sup.pool);
}

/* Graceful (fast = false) or fast stop; idempotent, a fast one may follow. */
static void sup_stop(bool fast)
{
	if (sup.stop.stopping && (sup.stop.fast || !fast))
		return;
	bool first = !sup.stop.stopping;
	sup.stop.stopping = true;
	lame_duck_end(&sup.lame);
	sup.stop.fast = fast;
	uint64_t now = loop_now_ms(sup.loop);
	uint64_t timeout = fast ? SUP_FAST_STOP_MS : sup.set.cfg->server.shutdown_timeout_ms;
	if (fast && timeout > sup.set.cfg->server.shutdown_timeout_ms)
		timeout = sup.set.cfg->server.shutdown_timeout_ms;
	if (first || now + timeout < sup.stop.deadline_ms)
		sup.stop.deadline_ms = now + timeout;
	if (first)
		sup_stop_begin(fast);
	pool_end_all(&sup.pool, fast ? POOL_END_NOW : POOL_END_DRAIN, sup_stop_deadline());
	loop_timer_arm_at(sup.loop, &sup.stop.timer, sup.stop.deadline_ms);
	if (!sup.pool.workers)
		loop_stop(sup.loop);
	sup_update_status();
}

static void sup_stop_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	pool_kill_all(&sup.pool);
}

/* SIGTERM, SIGINT, droverctl stop: the lame duck first (lameduck.h), or
 * the stop now if there is none or it is asked for again. */
static void sup_stop_request(void)
{
	if (!sup.stop.stopping && lame_duck_begin(&sup.lame, sup.set.cfg->server.lame_duck_ms))
		notify_stopping("lame duck: health answers 503, then stopping");
	else
		sup_stop(false);
}

/* The first generation cannot start: say why (log, STATUS=), stop, exit 1. */
static void sup_fail(const char *why)
{
	log_error("not starting: %s", why);
	char text[HISTORY_TEXT_MAX];
	snprintf(text, sizeof(text), "failed: %.400s", why);
	history_set_last(&sup.history, text);
	notify_status("%s", sup.history.last);
	sup.failed = true;
	sup_stop(true);
}

/* ------------------------------------------------------------- workers */

static void sup_workers_failed(const char *why);
static void sup_check_ready(void);

/* The files are opened here (workers may lack the rights) and handed to
 * every worker, which puts them in place of its own. */
static void sup_reopen_logs(void)
{
	log_info("reopening log files");
	settings_reopen(&sup.set);
	for (struct pool_worker *w = sup.pool.workers; w; w = w->next)
		pool_send_files(&sup.pool, w,
				settings_files_for(&sup.set, w->generation, sup.gen.current, sup.gen.previous));
}

/* Start the workers the current generation is missing; a fork that fails
 * for a generation never ready fails its start or change at once. */
static void sup_fill(void)
{
	if (sup.stop.stopping)
		return;
	struct pool_spawn s = {
		.cfg = sup.set.cfg,
		.generation = sup.gen.current,
		.listeners = sup.lst.wl,
		.n_listeners = sup.lst.n,
		.files = &sup.set.files,
	};
	char why[160];
	if (pool_fill(&sup.pool, &s, sup.gen.announced ? POOL_BACK_OFF : POOL_GIVE_UP, why, sizeof(why)) < 0)
		sup_workers_failed(why);
}

/* READY from a worker: it serves, or drains at once if it is not wanted. */
static void sup_worker_ready(struct pool_worker *w)
{
	uint64_t drain_by = loop_now_ms(sup.loop) + sup.set.cfg->server.shutdown_timeout_ms;
	if (sup.stop.stopping) {
		pool_drain(&sup.pool, w, sup_stop_deadline(), POOL_DRAIN_STOP);
		return;
	}
	pool_drain_replaced(&sup.pool, w, drain_by, sup.set.cfg->server.handoff);
	if (w->generation != sup.gen.current) {
		pool_drain(&sup.pool, w, drain_by, POOL_DRAIN_HANDOVER);
		return;
	}
	if (sup.gen.serving)
		pool_send(&sup.pool, w, CHAN_START);
	sup_check_ready();
	sup_update_status();
}

/* RECYCLE_ME: the next fill starts the replacement (and retries it,
 * backing off, if it dies before READY); its READY drains this one. */
static void sup_worker_recycle(struct pool_worker *w, uint64_t arg)
{
	if (sup.stop.stopping)
		return;
	if (w->generation != sup.gen.current) {
		/* An old generation's worker: the current one's workers are its
		 * successors (those ready already). */
		pool_drain_to(&sup.pool, w, sup.set.cfg->server.handoff ? pool_next_ready(&sup.pool, sup.gen.current, NULL) : NULL,
			      loop_now_ms(sup.loop) + sup.set.cfg->server.shutdown_timeout_ms);
		return;
	}
	pool_recycle(&sup.pool, w, arg);
	sup_fill();
}

/* A worker exited and the pool has forgotten it: respawn it if it died
 * unasked, and fail the change if it was one of the generation coming up
 * that could not start. */
static void sup_worker_exited(const struct pool_worker *w, int status)
{
	bool expected = w->state == PW_DRAINING || sup.stop.stopping;
	bool failed_start = !expected && w->state == PW_STARTING && w->generation == sup.gen.current &&
			    !sup.gen.announced;
	char why[320] = "";
	if (failed_start || w->start_failed) {
		pool_start_error(w, status, why, sizeof(why));
		log_error("%s", why);
	}
	if (!expected && w->generation == sup.gen.current && !failed_start)
		pool_respawn_later(&sup.pool, w, loop_clock_ms());
	if (failed_start)
		sup_workers_failed(why);
}

/* A child exited: a worker, the upgrade's check or trial, or nothing of
 * ours. An upgrade it ended (failed, or executed and failed): what waited
 * for it runs now. */
static void sup_child_exited(pid_t pid, int status)
{
	struct pool_worker gone;
	if (pool_reaped(&sup.pool, pid, status, &gone))
		sup_worker_exited(&gone, status);
	else if (upgrade_child(&sup.upg, pid, status) && !upgrade_busy(&sup.upg))
		sup_run_pending();
}

/* SIGCHLD: reap every child that exited, then close what nobody uses any
 * more and start what is missing. */
static void sup_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		sup_child_exited(pid, status);
	}
	listen_close_retired(&sup.lst, 0, gen_oldest(sup.pool.workers));
	if (sup.stop.stopping) {
		if (!sup.pool.workers)
			loop_stop(sup.loop);
		return;
	}
	sup_fill();
	sup_update_status();
}

/* ------------------------------------------- reloads, rollback, ready */

/* A reload or upgrade failed: say why, answer clients, run a pending one. */
static void sup_change_failed(const char *why)
{
	metrics_change(sup.gen.change == GEN_UPGRADING ? METRICS_UPGRADE : METRICS_RELOAD, METRICS_FAILED);
	gen_end(&sup.gen);
	history_record(&sup.history, "failed: %s", why);
	log_error("reload failed, still serving generation %u with the previous configuration: %s",
		  sup.gen.current, why);
	notify_status("serving: generation %u; reload failed: %.300s", sup.gen.current, why);
	char line[640];
	snprintf(line, sizeof(line), "ERR %s\n", sup.history.last);
	admin_answer_reloads(&sup.admin, line, sup.gen.seq_done);
	sup_run_pending();
}

/* Remember what serves now, to roll back to. */
static void sup_snapshot(void)
{
	settings_forget_previous(&sup.set);
	listen_snapshot(&sup.lst);
}

/* What a new worker of the current generation is given, after a change. */
static void sup_refresh_workers(void)
{
	sup.sb->hdr.generation = sup.gen.current;
	pool_reset_backoff(&sup.pool);
	listen_build_worker(&sup.lst, sup.set.cfg);
	sup_push_fdstore();
}

/* Re-read the config and start a new generation, or fail with why. */
static void sup_reload(void)
{
	if (sup.stop.stopping)
		return;
	sup.gen.seq_started++;
	log_notice("reloading %s", sup.set.cfg->path);
	char err[4096] = "";
	struct config *cfg;
	struct proto_fileset files;
	int r = settings_load(sup.set.cfg->path, &cfg, &files, err, sizeof(err));
	if (r >= 0) {
		sup_snapshot();
		r = listen_set_open(&sup.lst, cfg, sup.gen.current, err, sizeof(err));
		if (r < 0)
			settings_discard(cfg, &files);
	}
	if (r < 0) {
		sup_change_failed(err);
		return;
	}
	notify_reloading("reloading: starting a new generation");
	settings_begin(&sup.set, cfg, &files);
	gen_begin(&sup.gen, GEN_RELOADING, loop_now_ms(sup.loop));
	sup.sb->hdr.reloads++;
	sup_refresh_workers();
	/* max_generations: the oldest draining generation goes first; the rest
	 * happens when its workers are reaped. */
	uint32_t oldest = gen_over_cap(&sup.gen, sup.pool.workers, sup.set.cfg->server.max_generations);
	if (oldest)
		pool_kill_generation(&sup.pool, oldest, sup.set.cfg->server.max_generations);
	sup_fill();
	sup_update_status();
}

/* A reload asked for while a change was in progress runs now; an upgrade
 * asked for meanwhile once no reload is left. */
static void sup_run_pending(void)
{
	if (sup.stop.stopping)
		return;
	if (sup.gen.reload_pending) {
		sup.gen.reload_pending = false;
		sup_reload();
	} else if (sup.upg.pending && sup.gen.change == GEN_STEADY && !upgrade_busy(&sup.upg)) {
		sup_upgrade_begin();
	}
}

/* Ask for a reload now or after the change in progress. */
static void sup_request_reload(void)
{
	if (sup.stop.stopping)
		return;
	if (sup.gen.change == GEN_STEADY && !upgrade_busy(&sup.upg)) {
		sup_reload();
		return;
	}
	/* Coalesced: one more reload after this change, not one per request. */
	if (!sup.gen.reload_pending)
		log_notice("reload queued until the %s in progress ends",
			   sup.gen.change == GEN_RELOADING ? "reload" : "upgrade");
	sup.gen.reload_pending = true;
}

/* The current generation became ready (all READY): old workers drain, the
 * listeners the change retired close, systemd hears READY=1, and the
 * change is over. */
static void sup_generation_ready(void)
{
	/* Only now does the old generation stop accepting: the new one is
	 * already taking connections from the same queues. */
	uint64_t deadline = loop_now_ms(sup.loop) + sup.set.cfg->server.shutdown_timeout_ms;
	size_t drained = 0;
	struct pool_worker *to = NULL;
	for (struct pool_worker *w = sup.pool.workers; w; w = w->next) {
		if (gen_drains_at_ready(&sup.gen, w)) {
			/* Each old worker hands its connections to one of the new
			 * generation, in turn. */
			to = sup.set.cfg->server.handoff ? pool_next_ready(&sup.pool, sup.gen.current, to) : NULL;
			pool_drain_to(&sup.pool, w, to, deadline);
			drained++;
		}
	}
	log_info("ready: generation %u, %u workers%s", sup.gen.current, sup.set.cfg->server.workers,
		 drained ? ", draining the previous generation" : "");
	listen_close_retired(&sup.lst, sup.gen.current, gen_oldest(sup.pool.workers));
	char status[256];
	snprintf(status, sizeof(status), "serving: generation %u, %u workers", sup.gen.current,
		 sup.set.cfg->server.workers);
	notify_ready(status);
	if (!sup.gen.serving) {
		/* First start: workers accept only once READY=1 is on its way. */
		sup.gen.serving = true;
		pool_start_generation(&sup.pool, sup.gen.current);
	}
	if (sup.gen.change == GEN_STEADY)
		return;
	bool was_upgrade = sup.gen.change == GEN_UPGRADING;
	metrics_change(was_upgrade ? METRICS_UPGRADE : METRICS_RELOAD, METRICS_OK);
	gen_end(&sup.gen);
	settings_forget_previous(&sup.set); /* the old workers have their own copies */
	history_record(&sup.history, "ok: generation %u serving (%s)", sup.gen.current,
		       was_upgrade ? "binary upgrade" : "reload");
	char line[640];
	snprintf(line, sizeof(line), "OK %s\n", sup.history.last);
	admin_answer_reloads(&sup.admin, line, sup.gen.seq_done);
	sup_run_pending();
}

/* The current generation may have become ready. */
static void sup_check_ready(void)
{
	if (sup.stop.stopping || !gen_is_complete(&sup.gen, sup.pool.workers, sup.set.cfg->server.workers))
		return;
	sup.gen.announced = true;
	if (sup.upg.trial_fd >= 0) {
		/* A trial: the new binary can bring a generation up. Done. */
		upgrade_report_ready(&sup.upg);
		sup_stop(true);
		return;
	}
	sup_generation_ready();
}

/* The new generation never became ready: the one that still serves is
 * current again, with its config and listeners; the new one drains. */
static void sup_roll_back(void)
{
	uint32_t failed = sup.gen.current;
	pool_drain_generation(&sup.pool, failed, loop_now_ms(sup.loop) + 1000);
	listen_rollback(&sup.lst, failed);
	settings_roll_back(&sup.set);
	listen_defer_all(&sup.lst, sup.set.cfg);
	gen_rollback(&sup.gen);
	sup_refresh_workers();
	log_warning("generation %u did not become ready; generation %u serves on", failed, sup.gen.current);
	sup_fill(); /* the generation that serves may have lost workers meanwhile */
}

/* A worker of the generation coming up cannot start (why): a reload or
 * upgrade fails now, rolled back; a first start fails (sup_fail). */
static void sup_workers_failed(const char *why)
{
	if (sup.stop.stopping || sup.gen.announced)
		return;
	if (sup.gen.change == GEN_STEADY) {
		sup_fail(why); /* the first generation: there is nothing to roll back to */
		return;
	}
	sup_roll_back();
	sup_change_failed(why);
}

/* ------------------------------------------------------ binary upgrade */

/* Begin an upgrade: the check, then a trial on our listeners (lent). A
 * check that cannot start ends it, and what waited for it runs. */
static void sup_upgrade_begin(void)
{
	static struct handover lent; /* its scoreboard: the format wants one; the trial makes its own */
	handover_init(&lent, sup.gen.current, sup.gen.highest, sup.sb_fd);
	listen_describe(&sup.lst, &lent, LISTEN_LEND);
	upgrade_begin(&sup.upg, sup.set.cfg->path, &lent);
	if (!upgrade_busy(&sup.upg))
		sup_run_pending();
	sup_update_status();
}

/* An upgrade is asked for (c: the asking client, or NULL). */
static void sup_upgrade_request(struct admin_client *c)
{
	if (sup.stop.stopping || lame_duck_on(&sup.lame)) {
		log_warning("binary upgrade refused: drover is stopping");
		if (c)
			admin_reply(&sup.admin, c, "ERR upgrade refused: drover is stopping\n");
		return;
	}
	if (c)
		admin_wait(&sup.admin, c, ADMIN_WAIT_UPGRADE, 0);
	if (upgrade_busy(&sup.upg))
		return; /* this client waits for the same outcome */
	if (sup.gen.change != GEN_STEADY)
		upgrade_defer(&sup.upg, sup.gen.change == GEN_RELOADING ? "reload" : "upgrade");
	else
		sup_upgrade_begin();
}

/* The upgrade did not happen (how: "failed", "refused", "cancelled"): the
 * old binary serves on; say why in the log, STATUS= and to the clients. */
static void sup_upgrade_failed(const char *how, const char *why)
{
	log_error("binary upgrade %s, the old binary keeps running: %s", how, why);
	history_record(&sup.history, "failed: upgrade: %.480s", why);
	notify_status("serving: generation %u; binary upgrade %s", sup.gen.current, how);
	char line[2500];
	snprintf(line, sizeof(line), "ERR upgrade %s: %s\n", how, why);
	admin_answer_upgrade(&sup.admin, line);
}

/* The trial passed and the answers in flight are written (or left of them
 * could not be in time): hand everything over and become the new binary.
 * Returns only if that failed. */
static void sup_upgrade_exec(size_t left)
{
	if (left)
		log_warning("binary upgrade: %zu droverctl client(s) did not read the rest of their answer within %d ms; dropped",
			    left, SUP_FLUSH_MS);
	static struct handover st;
	handover_init(&st, sup.gen.current, sup.gen.highest, sup.sb_fd);
	st.keys_fd = tls_keys_fd();
	st.metrics_fd = metrics_fd();
	admin_describe(&sup.admin, &st);
	pool_describe(&sup.pool, &st);
	if (listen_describe(&sup.lst, &st, LISTEN_HAND_OVER) < 0)
		upgrade_fail(&sup.upg, "refused", "too many listeners to hand over");
	else if (upgrade_exec(&sup.upg, &st, &sup.history))
		notify_ready("serving: binary upgrade failed, old binary still running");
}

/* ---------------------------------------------------- droverctl commands */

static void sup_command(struct admin_client *c, const struct admin_command *cmd)
{
	char upgrade[PATH_MAX + 64];
	struct status_view v;
	switch (cmd->id) {
	case ADMIN_STATUS: {
		v = sup_view(upgrade, sizeof(upgrade));
		char *text = status_report(&v, loop_clock_ms());
		admin_reply(&sup.admin, c, text ? text : "ERR out of memory\n");
		free(text);
		break;
	}
	case ADMIN_RELOAD:
		if (sup.stop.stopping) {
			admin_reply(&sup.admin, c, "ERR stopping\n");
			break;
		}
		admin_wait(&sup.admin, c, ADMIN_WAIT_RELOAD, sup.gen.seq_started + 1);
		sup_request_reload();
		break;
	case ADMIN_UPGRADE:
		sup_upgrade_request(c);
		break;
	case ADMIN_REOPEN_LOGS:
		sup_reopen_logs();
		admin_reply(&sup.admin, c, "OK logs reopened\n");
		break;
	case ADMIN_STOP:
		admin_reply(&sup.admin, c, "OK stopping\n");
		sup_stop_request();
		break;
	}
}

/* ------------------------------------------------------ what happens */

static void sup_signal(int signo)
{
	switch (signo) {
	case SIGCHLD:
		sup_reap();
		break;
	case SIGTERM:
	case SIGINT:
		sup_stop_request();
		break;
	case SIGQUIT:
		sup_stop(true);
		break;
	case SIGHUP:
		sup_request_reload();
		break;
	case SIGUSR1:
		sup_reopen_logs();
		break;
	case SIGUSR2:
		sup_upgrade_request(NULL);
		break;
	}
}

static void sup_on_event(void *ctx, const struct sup_event *e)
{
	switch (e->kind) {
	case SUP_EV_WORKER_READY:
		sup_worker_ready(e->worker);
		break;
	case SUP_EV_WORKER_RECYCLE:
		sup_worker_recycle(e->worker, e->arg);
		break;
	case SUP_EV_RESPAWN_DUE:
		sup_fill();
		sup_update_status();
		break;
	case SUP_EV_COMMAND:
		sup_command(e->client, e->command);
		break;
	case SUP_EV_ANSWERS_WRITTEN:
		if (sup.upg.passed) {
			sup_upgrade_exec((size_t)e->arg);
			sup_run_pending(); /* the exec failed: a reload asked for meanwhile runs now */
		}
		break;
	case SUP_EV_LISTENER_RETIRED:
		notify_fdstore_remove(e->text);
		break;
	case SUP_EV_UPGRADE_PASSED:
		/* Answers written in part (a client reading slowly) are finished
		 * first, at most SUP_FLUSH_MS: a client that has not read it all
		 * by then is one that does not read, dropped with the old image. */
		if (admin_await_answers(&sup.admin, SUP_FLUSH_MS))
			log_info("binary upgrade: writing %zu droverctl answer(s) before executing the new binary",
				 admin_answers_pending(&sup.admin));
		else
			sup_upgrade_exec(0);
		break;
	case SUP_EV_UPGRADE_EXEC:
		notify_before_exec("binary upgrade: starting the new binary");
		break;
	case SUP_EV_UPGRADE_FAILED:
		sup_upgrade_failed(e->how, e->text);
		break;
	case SUP_EV_SIGNAL:
		sup_signal(e->signo);
		break;
	case SUP_EV_LAME_DUCK_OVER:
		sup_stop(false);
		break;
	}
}

/* Hung workers and overdue drains, a change that did not get ready in
 * time (rolled back), the watchdog, STATUS=. */
static void sup_tick(struct loop *loop, struct loop_timer *t, void *arg)
{
	uint64_t now = loop_now_ms(loop);
	bool healthy = pool_tick(&sup.pool, now, sup.set.cfg->server.worker_timeout_ms);
	if (sup.upg.trial_fd < 0)
		settings_keys_tick(&sup.set, now);
	if (!sup.stop.stopping && gen_timed_out(&sup.gen, now)) {
		sup_roll_back();
		sup_change_failed("the new generation did not become ready in time");
	}
	uint64_t wd = notify_watchdog_ms();
	if (wd && healthy && now - sup.last_watchdog_ms >= wd / 2) {
		/* Only a supervisor whose loop runs and whose workers are not hung
		 * says it is alive; otherwise systemd restarts us. */
		notify_watchdog();
		sup.last_watchdog_ms = now;
	}
	sup_update_status();
	uint64_t next = SUP_TICK_MS;
	if (wd && wd / 4 < next)
		next = wd / 4 ? wd / 4 : 1;
	loop_timer_arm(loop, t, next);
}

/* ------------------------------------------------------------ start-up */

/* The state and the parts, on a fresh loop; no identity check, no signals. */
static int sup_init_state(struct config *cfg, const char *exe, char *const argv[], int trial_fd)
{
	memset(&sup, 0, sizeof(sup));
	sup.sb_fd = -1;
	int r = loop_new(&sup.loop);
	if (r < 0)
		return r;
	struct sup_sink sink = { .report = sup_on_event, .ctx = NULL };
	settings_init(&sup.set, cfg);
	pool_init(&sup.pool, sup.loop, &sink);
	listen_set_init(&sup.lst, &sink);
	admin_init(&sup.admin, sup.loop, &sink);
	upgrade_init(&sup.upg, sup.loop, &sink, exe, argv, trial_fd);
	loop_timer_init(&sup.tick, sup_tick, NULL);
	loop_timer_init(&sup.stop.timer, sup_stop_timeout, NULL);
	lame_duck_init(&sup.lame, sup.loop, &sink);
	return 0;
}

/* State, identity check, loop, notify, signals and timers; 0 or -errno. */
static int sup_init(struct config *cfg, const char *argv0, char *const argv[], int trial_fd)
{
	char exe[PATH_MAX];
	handover_find_exe(argv0, exe, sizeof(exe));
	log_set_role(trial_fd >= 0 ? "upgrade trial" : "supervisor");
	if (trial_fd >= 0)
		log_set_level(LOG_WARNING); /* the old image reports the outcome */
	char err[4096] = "";
	int r = settings_check_identity(cfg, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	r = sup_init_state(cfg, exe, argv, trial_fd);
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot create the event loop");
	notify_init(sup.loop);
	r = signals_init(&sup.sig, sup.loop, &(struct sup_sink){ .report = sup_on_event });
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot set up signal handling");
	return 0;
}

/* After a binary upgrade: each part takes its share of what the previous
 * image handed over. */
static int sup_adopt(bool own_board)
{
	const struct handover *st = &sup.upg.handed;
	sup.gen.current = st->generation;
	sup.gen.highest = st->highest_generation;
	admin_adopt(&sup.admin, st);
	int r = pool_adopt(&sup.pool, st, own_board);
	if (r < 0)
		return r;
	log_notice("binary upgrade: adopted generation %u (%zu worker(s), %zu listener(s))", st->generation,
		   st->n_workers, st->n_listeners);
	listen_set_start_handed(&sup.lst, sup.set.cfg, st, LISTEN_HAND_OVER);
	return 0;
}

/* Listeners and scoreboard: lent to a trial (with a scoreboard of its
 * own), adopted from a previous image, or fresh; sets *upgraded; 0 or -errno. */
static int sup_obtain(bool *upgraded)
{
	bool trial = sup.upg.trial_fd >= 0, own_board = false;
	struct history_entry got[HISTORY_MAX];
	size_t n = 0;
	sup.sb = NULL;
	int r = trial ? upgrade_take_lent(&sup.upg)
		      : upgrade_adopt(&sup.upg, upgraded, &sup.sb, &own_board, got, HISTORY_MAX, &n);
	while (n > 0) {
		n--;
		history_push(&sup.history, got[n].at, got[n].text);
	}
	if (r >= 0 && sup.sb)
		sup.sb_fd = sup.upg.handed.scoreboard_fd;
	else if (r >= 0 && (r = scoreboard_create(&sup.sb, &sup.sb_fd)) < 0)
		log_errno(LOG_ERR, r, "cannot create the scoreboard");
	if (r < 0)
		return r;
	settings_keys_start(*upgraded ? sup.upg.handed.keys_fd : -1);
	settings_metrics_start(*upgraded ? sup.upg.handed.metrics_fd : -1);
	pool_set_scoreboard(&sup.pool, sup.sb);
	if (trial) {
		listen_set_start_handed(&sup.lst, sup.set.cfg, &sup.upg.handed, LISTEN_LEND);
		return 0;
	}
	r = *upgraded ? sup_adopt(own_board) : listen_set_start(&sup.lst, sup.set.cfg);
	if (r >= 0)
		sup_push_fdstore();
	return r;
}

/* Generation 1, or after an upgrade the one after the adopted generation,
 * which serves until ours is ready. */
static void sup_start_generation(bool upgraded)
{
	if (upgraded) {
		sup_snapshot();
		gen_begin(&sup.gen, GEN_UPGRADING, loop_now_ms(sup.loop));
		sup.gen.serving = true;
	} else if (sup.upg.trial_fd >= 0) {
		sup.gen.current = sup.upg.handed.highest_generation + 1; /* only for the log */
	} else {
		sup.gen.current = 1;
	}
	sup.sb->hdr.generation = sup.gen.current;
	listen_build_worker(&sup.lst, sup.set.cfg);
	log_info("starting generation %u: %u worker(s), %zu listener(s)", sup.gen.current,
		 sup.set.cfg->server.workers, sup.lst.n);
	listen_log_set(&sup.lst);
	sup_fill();
	sup_reap(); /* adopted workers may have exited while we were exec'ing */
}

int supervisor_run(struct config *cfg, const char *argv0, char *const argv[], int trial_fd)
{
	bool upgraded = false;
	bool trial = trial_fd >= 0;
	char err[2048] = "";
	int r = sup_init(cfg, argv0, argv, trial_fd);
	if (r >= 0)
		r = sup_obtain(&upgraded);
	if (r >= 0) {
		/* Before any worker drops privileges: the paths workers read are
		 * there for them, and the files workers write are opened. */
		r = settings_open_files(&sup.set, err, sizeof(err));
		if (r < 0)
			notify_status("failed: %.400s", err); /* the first problem */
	}
	if (r >= 0 && !trial)
		r = admin_start(&sup.admin, sup.set.cfg->server.control_socket);
	if (r < 0)
		return 1;
	if (!trial)
		settings_write_pid_file(&sup.set);
	loop_timer_arm(sup.loop, &sup.tick, SUP_TICK_MS);
	sup_start_generation(upgraded);

	/* A start that failed at once (fork) may have nothing left to wait for. */
	r = sup.stop.stopping && !sup.pool.workers ? 0 : loop_run(sup.loop);
	if (r < 0)
		log_errno(LOG_ERR, r, "event loop failed");

	listen_close_all(&sup.lst);
	admin_stop(&sup.admin);
	if (!trial)
		settings_remove_pid_file(&sup.set);
	log_notice("stopped");
	notify_done();
	loop_free(sup.loop);
	settings_free(&sup.set);
	return r < 0 || sup.failed ? 1 : 0;
}

/* ------------------------------------------------------------ for tests */

struct supervisor_probe supervisor_test_setup(const char *exe, char *const argv[])
{
	int r = sup_init_state(NULL, exe, argv, -1);
	return (struct supervisor_probe){ .loop = r < 0 ? NULL : sup.loop, .admin = &sup.admin, .upgrade = &sup.upg,
					  .history = &sup.history };
}

void supervisor_test_child_exited(pid_t pid, int status)
{
	sup_child_exited(pid, status);
}

void supervisor_test_teardown(void)
{
	admin_stop(&sup.admin);
	loop_free(sup.loop);
	sup.loop = NULL;
}
