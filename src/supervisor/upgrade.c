/* upgrade: the binary upgrade's course, on the supervisor's state. SIGUSR2
 * or "droverctl upgrade" first runs the check and the trial (trial.c);
 * if the new binary passes both, answers still being written are
 * finished, then the state is handed over (handover.c) and the binary
 * executed in the same PID; the new image adopts (adopt.c) the workers as
 * the serving generation, starts its own and answers the clients once it
 * serves. An upgrade asked for during a reload waits for the reload to
 * end.
 *
 * Answers written in part when the trial reports (a client reading
 * slowly) are finished first: the execve waits for them, driven by the
 * loop, at most UPGRADE_FLUSH_MS; a client that has not read it all by then
 * is one that does not read, and is dropped with the old image. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/adopt.h"
#include "supervisor/notify.h"
#include "supervisor/sup.h"

#define UPGRADE_FLUSH_MS 2000  /* answers in flight are written by then, or dropped */

void upgrade_resolve_exe(const char *argv0)
{
	handover_find_exe(argv0, sup.upg.exe, sizeof(sup.upg.exe));
}

bool upgrade_checking(void)
{
	return sup.upg.trial.phase != TRIAL_IDLE || sup.upg.flushing;
}

/* The upgrade did not happen (how: "failed", "refused", "cancelled"): the
 * old binary serves on; say why in the log, STATUS= and to the client. */
static void upgrade_failed(const char *how, const char *err)
{
	log_error("binary upgrade %s, the old binary keeps running: %s", how, err);
	admin_record_change("failed: upgrade: %.480s", err);
	notify_status("serving: generation %u; binary upgrade %s", sup.gen.current, how);
	char line[2500];
	snprintf(line, sizeof(line), "ERR upgrade %s: %s\n", how, err);
	for (struct sup_client *c = sup.admin.clients, *next; c; c = next) {
		next = c->next;
		if (c->waiting == WAIT_UPGRADE)
			admin_reply(c, line);
	}
}

/* The hand-over spells a worker's state 0 starting, 1 ready, 2 draining,
 * whatever the enum's values in either build. */
static int upgrade_state_code(enum sup_worker_state s)
{
	return s == SW_STARTING ? 0 : s == SW_READY ? 1 : 2;
}

static enum sup_worker_state upgrade_state_of(int code)
{
	return code == 0 ? SW_STARTING : code == 1 ? SW_READY : SW_DRAINING;
}

/* The clients waiting for the upgrade or for a reload asked for during
 * its check: the new image answers them once it serves (it reads the
 * configuration again, so their reload is done by it). Clients connected
 * whose command we have not read yet are served by the new image. */
static void upgrade_describe_clients(struct handover *st)
{
	st->client_fd = -1;
	for (struct sup_client *c = sup.admin.clients; c; c = c->next) {
		if (c->waiting == WAIT_NONE && !c->closing && c->in_len == 0 &&
		    st->n_idle_clients < HANDOVER_MAX_CLIENTS)
			st->idle_client_fds[st->n_idle_clients++] = c->fd;
		if (c->waiting != WAIT_UPGRADE && c->waiting != WAIT_RELOAD)
			continue;
		if (st->client_fd < 0)
			st->client_fd = c->fd;
		else if (st->n_more_clients < HANDOVER_MAX_CLIENTS)
			st->more_client_fds[st->n_more_clients++] = c->fd;
	}
}

/* Describe what the new image takes over; 0 or -errno with why. */
static int upgrade_describe(struct handover *st, const char **why)
{
	memset(st, 0, sizeof(*st));
	st->generation = sup.gen.current;
	st->highest_generation = sup.gen.highest > sup.gen.current ? sup.gen.highest : sup.gen.current;
	st->scoreboard_fd = sup.sb_fd;
	st->ctl_fd = sup.admin.fd;
	upgrade_describe_clients(st);
	if (sup.lst.n + sup.lst.n_retired > sizeof(st->listeners) / sizeof(st->listeners[0])) {
		*why = "too many listeners to hand over";
		return -E2BIG;
	}
	for (size_t i = 0; i < sup.lst.n + sup.lst.n_retired; i++) {
		const struct listener *l = i < sup.lst.n ? &sup.lst.cur[i] : &sup.lst.retired[i - sup.lst.n].l;
		struct handover_listener *u = &st->listeners[st->n_listeners++];
		u->fd = l->fd;
		snprintf(u->name, sizeof(u->name), "%s", l->name);
		snprintf(u->address, sizeof(u->address), "%s", l->address);
		u->from_systemd = l->from_systemd;
		u->unix_bound = l->unix_bound;
	}
	for (struct sup_worker *w = sup.pool.workers; w && st->n_workers < HANDOVER_MAX_WORKERS; w = w->next) {
		struct handover_worker *u = &st->workers[st->n_workers++];
		u->pid = w->pid;
		u->generation = w->generation;
		u->index = w->index;
		u->slot = w->slot;
		u->chan_fd = w->chan.fd;
		u->chan_version = w->chan.peer_version;
		u->state = upgrade_state_code(w->state);
		u->drain_deadline_ms = w->drain_deadline_ms;
	}
	return 0;
}

/* The trial passed: hand everything over and become the new binary.
 * Returns only if that failed (then the old image serves on). */
static void upgrade_exec(void)
{
	static struct handover st;
	const char *why = NULL;
	if (upgrade_describe(&st, &why) < 0) {
		upgrade_failed("refused", why);
		return;
	}
	char **envp;
	int r = handover_environment(&st, &sup.history, &envp);
	if (r == -ENOBUFS) {
		upgrade_failed("refused", "too much state to hand over");
		return;
	}
	if (r < 0) {
		upgrade_failed("failed", "out of memory");
		return;
	}
	notify_reloading("binary upgrade: starting the new binary");
	size_t unsent = notify_flush();
	if (unsent)
		/* The queue is this image's memory: the new one sends READY=1
		 * (and STATUS=) of its own once its generation serves. */
		log_warning("binary upgrade: %zu notification(s) the service manager has not read yet are dropped "
			    "with the exec", unsent);
	log_notice("binary upgrade: executing %s (generation %u and its listeners are handed over)", sup.upg.exe,
		   sup.gen.current);
	r = handover_exec(sup.upg.exe, sup.upg.argv, &st, envp);
	char err[2300];
	snprintf(err, sizeof(err), "execve(%.2000s): %.200s", sup.upg.exe, strerror(-r));
	upgrade_failed("failed", err);
	notify_ready("serving: binary upgrade failed, old binary still running");
}

/* The listeners lent to a trial (and nothing else): never the trial's to
 * unlink. */
static void upgrade_lend(struct handover *st)
{
	memset(st, 0, sizeof(*st));
	st->generation = sup.gen.current;
	st->highest_generation = sup.gen.highest;
	st->scoreboard_fd = sup.sb_fd; /* the format wants one; the trial makes its own */
	st->ctl_fd = st->client_fd = -1;
	for (size_t i = 0; i < sup.lst.n && st->n_listeners < HANDOVER_MAX_LISTENERS; i++) {
		struct handover_listener *u = &st->listeners[st->n_listeners++];
		u->fd = sup.lst.cur[i].fd;
		snprintf(u->name, sizeof(u->name), "%s", sup.lst.cur[i].name);
		snprintf(u->address, sizeof(u->address), "%s", sup.lst.cur[i].address);
		u->from_systemd = true;
	}
}

/* Run the next step; its end (pool_reap, or the trial's report) decides. */
static void upgrade_step(enum trial_phase phase)
{
	if (phase == TRIAL_CHECK)
		log_notice("binary upgrade: checking %s", sup.upg.exe);
	else
		log_notice("binary upgrade: trying %s: a generation that does not accept yet", sup.upg.exe);
	static struct handover lent;
	if (phase == TRIAL_RUN)
		upgrade_lend(&lent);
	const char *what;
	int r = trial_start(&sup.upg.trial, phase, sup.upg.exe, sup.cfg->path, phase == TRIAL_RUN ? &lent : NULL, &what);
	if (r < 0) {
		char err[128];
		snprintf(err, sizeof(err), "%s: %s", what, strerror(-r));
		upgrade_failed("failed", err);
		gen_run_pending();
	}
	sup_update_status();
}

void upgrade_request(struct sup_client *c)
{
	if (sup.stop.stopping) {
		log_warning("binary upgrade refused: drover is stopping");
		if (c)
			admin_reply(c, "ERR upgrade refused: drover is stopping\n");
		return;
	}
	if (c)
		c->waiting = WAIT_UPGRADE;
	if (upgrade_checking())
		return; /* this client waits for the same outcome */
	if (sup.gen.change != GEN_STEADY) {
		/* Like a second SIGHUP: done once the change in progress is over. */
		if (!sup.gen.upgrade_pending)
			log_notice("binary upgrade: waiting for the %s in progress to end",
				   sup.gen.change == GEN_RELOADING ? "reload" : "upgrade");
		sup.gen.upgrade_pending = true;
		return;
	}
	upgrade_step(TRIAL_CHECK);
}

void upgrade_run_pending(void)
{
	if (!sup.gen.upgrade_pending || sup.stop.stopping || sup.gen.change != GEN_STEADY || upgrade_checking())
		return;
	sup.gen.upgrade_pending = false;
	upgrade_step(TRIAL_CHECK);
}

static void upgrade_flush_end(struct loop *loop, struct loop_timer *t, void *arg)
{
	size_t left = admin_answers_pending();
	sup.upg.flushing = false;
	if (left)
		log_warning("binary upgrade: %zu droverctl client(s) did not read the rest of their answer within %d ms; dropped",
			    left, UPGRADE_FLUSH_MS);
	upgrade_exec();
	gen_run_pending(); /* the exec failed: a reload asked for meanwhile runs now */
}

void upgrade_answers_written(void)
{
	if (sup.upg.flushing)
		loop_timer_arm(sup.loop, &sup.upg.flush_timer, 0); /* from the loop, not from inside a client's close */
}

/* The trial reported: execute the new binary, once every answer written in
 * part is complete (true: that is being waited for). */
static bool upgrade_flush_first(void)
{
	size_t n = admin_answers_pending();
	if (n == 0)
		return false;
	log_info("binary upgrade: writing %zu droverctl answer(s) before executing the new binary", n);
	sup.upg.flushing = true;
	loop_timer_init(&sup.upg.flush_timer, upgrade_flush_end, NULL);
	loop_timer_arm(sup.loop, &sup.upg.flush_timer, UPGRADE_FLUSH_MS);
	return true;
}

bool upgrade_reaped(pid_t pid, int status)
{
	char err[2300];
	switch (trial_reaped(&sup.upg.trial, pid, status, err, sizeof(err))) {
	case TRIAL_NOT_OURS:
		return false;
	case TRIAL_CHECK_PASSED:
		upgrade_step(TRIAL_RUN);
		return true;
	case TRIAL_READY:
		if (upgrade_flush_first())
			return true; /* upgrade_flush_end goes on */
		upgrade_exec();
		break;
	case TRIAL_FAILED:
		upgrade_failed("failed", err);
		break;
	}
	/* The upgrade failed: a reload asked for meanwhile runs now. */
	gen_run_pending();
	return true;
}

void upgrade_cancel(const char *why)
{
	if (!upgrade_checking() && !sup.gen.upgrade_pending)
		return;
	if (sup.upg.flushing) {
		loop_timer_cancel(sup.loop, &sup.upg.flush_timer);
		sup.upg.flushing = false;
	}
	trial_cancel(&sup.upg.trial); /* its exit is reaped as nobody's */
	sup.gen.upgrade_pending = false;
	upgrade_failed("cancelled", why);
}

/* --------------------------------------------------------- the new image */

static struct handover upgrade_handed; /* what the previous image handed over */

const struct handover *upgrade_adopted(void)
{
	return &upgrade_handed;
}

/* Take over the previous image's workers as sup.pool's. */
static int upgrade_adopt_workers(const struct handover *st, bool own_board)
{
	for (size_t i = 0; i < st->n_workers; i++) {
		struct sup_worker *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		const struct handover_worker *u = &st->workers[i];
		w->pid = u->pid;
		w->generation = u->generation;
		w->index = u->index;
		w->slot = own_board ? -1 : u->slot;
		chan_out_init(&w->chan, u->chan_fd, u->chan_version);
		w->state = upgrade_state_of(u->state);
		w->drain_deadline_ms = u->drain_deadline_ms;
		w->started_ms = loop_clock_ms() - SUP_QUICK_DEATH_MS;
		w->next = sup.pool.workers;
		sup.pool.workers = w;
		if (pool_watch(w) < 0)
			log_warning("cannot watch adopted worker pid %d", (int)w->pid);
	}
	return 0;
}

int upgrade_adopt(const char *value, struct listen_pool *pool)
{
	struct handover *st = &upgrade_handed;
	bool own_board;
	int r = adopt_state(value, st, &sup.sb, &own_board);
	if (r < 0)
		return r;
	sup.sb_fd = st->scoreboard_fd;
	sup.gen.current = st->generation;
	sup.gen.highest = st->highest_generation;
	struct history_entry got[HISTORY_MAX];
	for (size_t n = adopt_history(st->generation, got, HISTORY_MAX); n > 0; n--)
		admin_history_push(got[n - 1].at, got[n - 1].text);
	sup.admin.fd = st->ctl_fd;
	if (st->client_fd >= 0)
		sup.admin.carried[sup.admin.n_carried++] = st->client_fd;
	for (size_t i = 0; i < st->n_more_clients; i++)
		if (st->more_client_fds[i] >= 0)
			sup.admin.carried[sup.admin.n_carried++] = st->more_client_fds[i];
	for (size_t i = 0; i < st->n_idle_clients; i++)
		admin_client_add(st->idle_client_fds[i]); /* its command is still unread */
	for (size_t i = 0; i < st->n_listeners; i++)
		listen_pool_add(pool, st->listeners[i].fd, st->listeners[i].name);
	r = upgrade_adopt_workers(st, own_board);
	if (r < 0)
		return r;
	log_notice("binary upgrade: adopted generation %u (%zu worker(s), %zu listener(s))", st->generation,
		   st->n_workers, st->n_listeners);
	return 0;
}

/* ------------------------------------------------------- a trial image */

int upgrade_trial_listeners(const char *value, struct listen_pool *pool)
{
	struct handover *st = &upgrade_handed;
	int r = trial_take_lent(value, st);
	if (r < 0)
		return r;
	for (size_t i = 0; i < st->n_listeners; i++)
		listen_pool_add(pool, st->listeners[i].fd, st->listeners[i].name);
	return 0;
}

void upgrade_trial_report(void)
{
	trial_report_ready(&sup.upg.trial_fd);
}
