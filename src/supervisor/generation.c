/* generation: reloads, rollback and readiness. A reload parses the file
 * again, opens what the new config adds and starts generation g+1; only
 * when all of its workers are READY is g told to drain. A generation that
 * never gets ready is rolled back: g serves on with its config and
 * listeners. The first half of the file is pure bookkeeping (struct
 * gen_book and the worker list), the second half acts on it. */
#include "supervisor/generation.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/notify.h"

/* ------------------------------------------------ pure bookkeeping */

size_t gen_count(const struct sup_worker *list, uint32_t generation, int state, bool older)
{
	size_t n = 0;
	for (const struct sup_worker *w = list; w; w = w->next) {
		if (older ? w->generation >= generation : w->generation != generation)
			continue;
		if (state >= 0 && (int)w->state != state)
			continue;
		n++;
	}
	return n;
}

bool gen_is_complete(const struct gen_book *g, const struct sup_worker *list, unsigned workers)
{
	return !g->announced && gen_count(list, g->current, SW_READY, false) >= workers;
}

bool gen_drains_at_ready(const struct gen_book *g, const struct sup_worker *w)
{
	return w->generation < g->current && w->state != SW_DRAINING;
}

uint32_t gen_over_cap(const struct gen_book *g, const struct sup_worker *list, unsigned max_generations)
{
	uint32_t oldest = UINT32_MAX;
	uint32_t seen[64];
	size_t gens = 0;
	bool has_current = false;
	for (const struct sup_worker *w = list; w; w = w->next) {
		bool dup = false;
		for (size_t i = 0; i < gens && !dup; i++)
			dup = seen[i] == w->generation;
		if (!dup && gens < sizeof(seen) / sizeof(seen[0]))
			seen[gens++] = w->generation;
		if (w->generation < oldest)
			oldest = w->generation;
		has_current |= w->generation == g->current;
	}
	/* The generation about to start counts too. */
	if (gens + (has_current ? 0 : 1) <= max_generations || oldest >= g->current)
		return 0;
	return oldest;
}

void gen_begin(struct gen_book *g, enum gen_change change, uint64_t now_ms)
{
	if (g->highest < g->current)
		g->highest = g->current;
	g->previous = g->current;
	g->current = ++g->highest;
	g->change = change;
	g->announced = false;
	g->change_started_ms = now_ms;
}

void gen_end(struct gen_book *g)
{
	g->change = GEN_STEADY;
	g->seq_done = g->seq_started;
}

uint32_t gen_rollback(struct gen_book *g)
{
	uint32_t failed = g->current;
	g->current = g->previous;
	g->announced = true;
	return failed;
}

bool gen_timed_out(const struct gen_book *g, uint64_t now_ms)
{
	return g->change != GEN_STEADY && now_ms - g->change_started_ms > SUP_RELOAD_TIMEOUT_MS;
}

/* ------------------------------------------------------ acting on it */

int gen_check_identity(const struct config *cfg, char *err, size_t err_len)
{
	struct config_identity id;
	const char *missing = "";
	int r = config_identity(cfg, &id, &missing);
	if (r < 0) {
		snprintf(err, err_len, "%s: [server] %s: no such %s '%s'", cfg->path, missing, missing,
			 strcmp(missing, "user") == 0 ? cfg->server.user : cfg->server.group);
		return r;
	}
	if (geteuid() != 0 && (id.uid != geteuid() || id.gid != getegid())) {
		snprintf(err, err_len,
			 "%s: [server] user/group: cannot switch to %s/%s without running as root",
			 cfg->path, cfg->server.user ? cfg->server.user : "-",
			 cfg->server.group ? cfg->server.group : "-");
		return -EPERM;
	}
	return 0;
}

/* A reload asked for while a change was in progress runs now; an upgrade
 * asked for meanwhile once no reload is left. */
void gen_run_pending(void)
{
	if (sup.stop.stopping)
		return;
	if (sup.gen.reload_pending) {
		sup.gen.reload_pending = false;
		gen_reload();
		return;
	}
	upgrade_run_pending();
}

void gen_request_reload(void)
{
	if (sup.stop.stopping)
		return;
	if (sup.gen.change == GEN_STEADY && !upgrade_checking()) {
		gen_reload();
		return;
	}
	/* Coalesced: one more reload after this change, not one per request. */
	if (!sup.gen.reload_pending)
		log_notice("reload queued until the %s in progress ends",
			   sup.gen.change == GEN_RELOADING ? "reload" : "upgrade");
	sup.gen.reload_pending = true;
}

void gen_change_failed(const char *why)
{
	gen_end(&sup.gen);
	admin_record_change("failed: %s", why);
	log_error("reload failed, still serving generation %u with the previous configuration: %s",
		  sup.gen.current, why);
	notify_status("serving: generation %u; reload failed: %.300s", sup.gen.current, why);
	admin_answer_changes(false, sup.reload_result);
	gen_run_pending();
}

void gen_snapshot(void)
{
	config_free(sup.prev_cfg);
	sup.prev_cfg = NULL;
	proto_files_close(&sup.prev_files);
	listen_snapshot();
}

/* Enforce max_generations: the oldest draining generation goes first; the
 * rest happens when its workers are reaped. */
static void gen_cap(void)
{
	uint32_t oldest = gen_over_cap(&sup.gen, sup.pool.workers, sup.cfg->server.max_generations);
	if (!oldest)
		return;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		if (w->generation == oldest && !w->killed) {
			log_warning("worker pid %d (generation %u): too many generations alive (max_generations = %u), killed",
				    (int)w->pid, w->generation, sup.cfg->server.max_generations);
			pool_kill(w);
		}
	}
}

/* The new config is valid and its listeners and files are open: start its
 * generation. */
static void gen_start(struct config *cfg, const struct proto_fileset *files)
{
	notify_reloading("reloading: starting a new generation");
	log_set_level(cfg->server.log_level);
	sup.prev_cfg = sup.cfg;
	sup.cfg = cfg;
	sup.prev_files = sup.files;
	sup.files = *files;
	gen_begin(&sup.gen, GEN_RELOADING, loop_now_ms(sup.loop));
	sup.sb->hdr.generation = sup.gen.current;
	sup.sb->hdr.reloads++;
	pool_reset_backoff();
	listen_build_worker();
	listen_push_fdstore();
	gen_cap();
	pool_fill();
	sup_update_status();
}

/* A reload refused for problems that each name file:line, one per line in
 * err: log them all, fail with the first. */
static void gen_change_failed_lines(char *err)
{
	char *save = NULL;
	for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_error("%s", line);
	char first[600];
	snprintf(first, sizeof(first), "%.599s", err); /* strtok_r ended it after the first line */
	gen_change_failed(first);
}

void gen_reload(void)
{
	if (sup.stop.stopping)
		return;
	sup.gen.seq_started++;
	log_notice("reloading %s", sup.cfg->path);
	char err[4096] = "";
	struct config *cfg = NULL;
	int r = config_load(sup.cfg->path, &cfg, err, sizeof(err));
	if (r < 0) {
		gen_change_failed_lines(err);
		return;
	}
	gen_snapshot();
	/* The paths its workers read must be there for them, and the files
	 * they write are opened here, as root, before the fork: either fails
	 * the reload now, by name. */
	struct proto_fileset files = { .n = 0 };
	r = gen_check_identity(cfg, err, sizeof(err));
	if (r >= 0) {
		r = proto_paths_check(cfg, err, sizeof(err));
		if (r < 0) {
			config_free(cfg);
			gen_change_failed_lines(err);
			return;
		}
	}
	if (r >= 0)
		r = proto_files_open(cfg, &files, false, err, sizeof(err));
	if (r >= 0) {
		r = listen_set_open(cfg, NULL, err, sizeof(err));
		if (r < 0)
			proto_files_close(&files);
	}
	if (r < 0) {
		config_free(cfg);
		gen_change_failed(err);
		return;
	}
	gen_start(cfg, &files);
}

void gen_check_ready(void)
{
	if (sup.stop.stopping || !gen_is_complete(&sup.gen, sup.pool.workers, sup.cfg->server.workers))
		return;
	sup.gen.announced = true;
	if (sup.upg.trial_fd >= 0) {
		/* A trial: the new binary can bring a generation up. Done. */
		upgrade_trial_report();
		sup_stop(true);
		return;
	}
	/* Only now does the old generation stop accepting: the new one is
	 * already taking connections from the same queues. */
	uint64_t deadline = loop_now_ms(sup.loop) + sup.cfg->server.shutdown_timeout_ms;
	size_t drained = 0;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		if (gen_drains_at_ready(&sup.gen, w)) {
			pool_drain(w, deadline);
			drained++;
		}
	}
	log_info("ready: generation %u, %u workers%s", sup.gen.current, sup.cfg->server.workers,
		 drained ? ", draining the previous generation" : "");
	listen_close_retired(sup.gen.current);
	char status[256];
	snprintf(status, sizeof(status), "serving: generation %u, %u workers", sup.gen.current,
		 sup.cfg->server.workers);
	notify_ready(status);
	if (!sup.gen.serving) {
		/* First start: workers accept only once READY=1 is on its way. */
		sup.gen.serving = true;
		for (struct sup_worker *w = sup.pool.workers; w; w = w->next)
			if (w->generation == sup.gen.current && w->state == SW_READY)
				pool_send(w, CHAN_START);
	}
	if (sup.gen.change == GEN_STEADY)
		return;
	bool was_upgrade = sup.gen.change == GEN_UPGRADING;
	gen_end(&sup.gen);
	config_free(sup.prev_cfg);
	sup.prev_cfg = NULL;
	proto_files_close(&sup.prev_files); /* the old workers have their own copies */
	admin_record_change("ok: generation %u serving (%s)", sup.gen.current,
			    was_upgrade ? "binary upgrade" : "reload");
	admin_answer_changes(true, sup.reload_result);
	gen_run_pending();
}

/* The new generation never became ready: the one that still serves is
 * current again, with its config and listeners; the new one drains. */
static void gen_roll_back(void)
{
	uint64_t now = loop_now_ms(sup.loop);
	uint32_t failed = sup.gen.current;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next)
		if (w->generation == failed)
			pool_drain(w, now + 1000);
	listen_rollback(failed);
	if (sup.prev_cfg) {
		config_free(sup.cfg);
		sup.cfg = sup.prev_cfg;
		sup.prev_cfg = NULL;
		log_set_level(sup.cfg->server.log_level);
		proto_files_close(&sup.files);
		sup.files = sup.prev_files;
		sup.prev_files.n = 0;
	}
	listen_defer_all(sup.cfg);
	gen_rollback(&sup.gen);
	sup.sb->hdr.generation = sup.gen.current;
	pool_reset_backoff();
	listen_build_worker();
	listen_push_fdstore();
	log_warning("generation %u did not become ready; generation %u serves on", failed, sup.gen.current);
	pool_fill(); /* the generation that serves may have lost workers meanwhile */
}

void gen_tick(uint64_t now)
{
	if (sup.stop.stopping || !gen_timed_out(&sup.gen, now))
		return;
	gen_roll_back();
	gen_change_failed("the new generation did not become ready in time");
}

void gen_workers_failed(const char *why)
{
	if (sup.stop.stopping || sup.gen.announced)
		return;
	if (sup.gen.change == GEN_STEADY) {
		sup_fail(why); /* the first generation: there is nothing to roll back to */
		return;
	}
	gen_roll_back();
	gen_change_failed(why);
}
