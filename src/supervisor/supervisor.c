/* supervisor: the parent process's run loop. It sets up (config checked,
 * listeners and scoreboard obtained or adopted, control socket), starts the
 * first generation, and then reacts to everything through one loop: a
 * signalfd, the workers' control sockets (pool.c), the control socket
 * (admin.c), the notify socket (notify.c) and timers. The periodic tick
 * watches for hung workers and overdue changes, feeds the watchdog and
 * refreshes STATUS=. The stop lives here too. It never accepts a client. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/generation.h"
#include "supervisor/notify.h"
#include "supervisor/sup.h"

#define SUP_FAST_STOP_MS 5000 /* SIGQUIT: workers get this long to close */

struct supervisor sup;

/* ---------------------------------------------------------- STATUS= */

/* What is not the normal picture: old workers, back-offs, a failed reload. */
static void sup_status_extra(char *extra, size_t len, uint64_t now)
{
	size_t pos = 0;
	extra[0] = '\0';
	size_t old = gen_count(sup.pool.workers, sup.gen.current, -1, true);
	if (old)
		pos += (size_t)snprintf(extra + pos, len - pos, "; %zu old worker(s) draining", old);
	for (unsigned i = 0; i < sup.cfg->server.workers && pos < len - 48; i++) {
		const struct sup_respawn *rs = &sup.pool.respawn[i];
		if (rs->pending && rs->delay_ms) {
			uint64_t wait = rs->not_before_ms > now ? rs->not_before_ms - now : 0;
			pos += (size_t)snprintf(extra + pos, len - pos, "; worker %u backing off %llums", i,
						(unsigned long long)wait);
		}
	}
	if (sup.reload_result[0] && strncmp(sup.reload_result, "failed", 6) == 0 && pos < len - 32)
		snprintf(extra + pos, len - pos, "; last reload %.200s", sup.reload_result);
}

const char *sup_state_word(void)
{
	if (sup.stop.stopping)
		return "stopping";
	if (sup.gen.change == GEN_RELOADING)
		return "reloading";
	if (sup.gen.change == GEN_UPGRADING || upgrade_checking())
		return "upgrading";
	return "serving";
}

void sup_update_status(void)
{
	uint64_t now = loop_now_ms(sup.loop);
	if (sup.stop.stopping && sup.failed) {
		notify_status("%s; stopping", sup.reload_result); /* why stays in sight */
		return;
	}
	if (sup.stop.stopping) {
		uint64_t left = sup.stop.deadline_ms > now ? sup.stop.deadline_ms - now : 0;
		notify_status("stopping: waiting for %zu worker(s) to drain, %llu connection(s) open, %llu.%llus left",
			      pool_count_all(), (unsigned long long)pool_connections(),
			      (unsigned long long)(left / 1000), (unsigned long long)(left % 1000 / 100));
		return;
	}
	char extra[256];
	sup_status_extra(extra, sizeof(extra), now);
	notify_status("%s: generation %u, %zu/%u workers ready, %llu connection(s)%s", sup_state_word(), sup.gen.current,
		      gen_count(sup.pool.workers, sup.gen.current, SW_READY, false), sup.cfg->server.workers,
		      (unsigned long long)pool_connections(), extra);
}

/* ------------------------------------------------------------ the stop */

/* The first stop request: no new connections first (systemd, or the
 * kernel for sockets only we held, refuses or queues them), then nothing
 * else is started and everyone waiting is told. */
static void sup_stop_begin(bool fast)
{
	char status[160];
	snprintf(status, sizeof(status), "stopping: draining %zu worker(s)", pool_count_all());
	notify_stopping(status);
	log_notice("%s stop: closing listeners, %s %zu worker(s)", fast ? "fast" : "graceful",
		   fast ? "stopping" : "draining", pool_count_all());
	listen_close_all();
	upgrade_cancel("drover is stopping");
	sup.gen.seq_done = sup.gen.seq_started = sup.gen.seq_started + 1;
	sup.gen.change = GEN_STEADY;
	admin_answer_changes(false, "drover is stopping");
	pool_cancel_respawns();
}

void sup_stop(bool fast)
{
	if (sup.stop.stopping && (sup.stop.fast || !fast))
		return;
	bool first = !sup.stop.stopping;
	sup.stop.stopping = true;
	sup.stop.fast = fast;
	uint64_t now = loop_now_ms(sup.loop);
	uint64_t timeout = fast ? SUP_FAST_STOP_MS : sup.cfg->server.shutdown_timeout_ms;
	if (fast && timeout > sup.cfg->server.shutdown_timeout_ms)
		timeout = sup.cfg->server.shutdown_timeout_ms;
	if (first || now + timeout < sup.stop.deadline_ms)
		sup.stop.deadline_ms = now + timeout;
	if (first)
		sup_stop_begin(fast);
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		if (fast)
			pool_send(w, CHAN_STOP);
		else
			pool_drain(w, pool_stop_deadline());
	}
	loop_timer_arm_at(sup.loop, &sup.stop.timer, sup.stop.deadline_ms);
	if (!sup.pool.workers)
		loop_stop(sup.loop);
	sup_update_status();
}

static void sup_stop_deadline(struct loop *loop, struct loop_timer *t, void *arg)
{
	pool_kill_all();
}

/* Open cfg's files again into *set (closing the old ones); false, keeping
 * the old ones, if one cannot be opened. */
static bool sup_reopen_set(const struct config *cfg, struct proto_fileset *set)
{
	char err[1024] = "";
	struct proto_fileset fresh;
	int r = proto_files_open(cfg, &fresh, false, err, sizeof(err));
	if (r < 0) {
		log_error("reopen-logs: %s; writing on to the old file", err);
		return false;
	}
	proto_files_close(set);
	*set = fresh;
	return true;
}

/* The files are opened here (workers may lack the rights) and handed to
 * every worker, which puts them in place of its own. */
void sup_reopen_logs(void)
{
	log_info("reopening log files");
	sup_reopen_set(sup.cfg, &sup.files);
	if (sup.prev_cfg)
		sup_reopen_set(sup.prev_cfg, &sup.prev_files);
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next)
		pool_send(w, CHAN_REOPEN_LOGS);
}

void sup_fail(const char *why)
{
	log_error("not starting: %s", why);
	snprintf(sup.reload_result, sizeof(sup.reload_result), "failed: %.400s", why);
	notify_status("%s", sup.reload_result);
	sup.failed = true;
	sup_stop(true);
}

/* ------------------------------------------------------ signals, tick */

static void sup_signal(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			pool_reap();
			break;
		case SIGTERM:
		case SIGINT:
			sup_stop(false);
			break;
		case SIGQUIT:
			sup_stop(true);
			break;
		case SIGHUP:
			gen_request_reload();
			break;
		case SIGUSR1:
			sup_reopen_logs();
			break;
		case SIGUSR2:
			upgrade_request(NULL);
			break;
		}
	}
	/* SIGCHLD can be coalesced with others; reaping is cheap and idempotent. */
	pool_reap();
}

static void sup_tick(struct loop *loop, struct loop_timer *t, void *arg)
{
	uint64_t now = loop_now_ms(loop);
	bool healthy = pool_tick(now);
	gen_tick(now);
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

static int sup_setup_signals(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&mask, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return loop_add_fd(sup.loop, fd, LOOP_READ, sup_signal, NULL);
}

/* ------------------------------------------------------------ start-up */

static void sup_write_pid_file(void)
{
	if (!sup.cfg->server.pid_file)
		return;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp", sup.cfg->server.pid_file);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
	    rename(tmp, sup.cfg->server.pid_file) < 0)
		log_errno(LOG_WARNING, -errno, "cannot write pid file %s", sup.cfg->server.pid_file);
}

/* State, identity check, loop, notify, signals and timers; 0 or -errno. */
static int sup_init(struct config *cfg, const char *argv0, char *const argv[], int trial_fd)
{
	memset(&sup, 0, sizeof(sup));
	sup.cfg = cfg;
	sup.upg.argv = argv;
	sup.upg.trial_fd = trial_fd;
	sup.admin.fd = -1;
	sup.sb_fd = -1;
	upgrade_resolve_exe(argv0);
	log_set_role(trial_fd >= 0 ? "upgrade trial" : "supervisor");
	if (trial_fd >= 0)
		log_set_level(LOG_WARNING); /* the old image reports the outcome */
	char err[4096] = "";
	int r = gen_check_identity(cfg, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	sup.loop = loop_new();
	if (!sup.loop)
		return log_errno(LOG_ERR, -errno, "cannot create the event loop");
	notify_init(sup.loop);
	r = sup_setup_signals();
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot set up signal handling");
	loop_timer_init(&sup.tick, sup_tick, NULL);
	loop_timer_init(&sup.stop.timer, sup_stop_deadline, NULL);
	trial_init(&sup.upg.trial, sup.loop);
	pool_init();
	return 0;
}

/* A fresh start: sockets from systemd or bound here, a new scoreboard. */
static int sup_obtain_fresh(struct listen_pool *pool)
{
	char err[4096] = "";
	int r = listen_pool_from_systemd(pool, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	r = scoreboard_create(&sup.sb, &sup.sb_fd);
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot create the scoreboard");
	r = listen_set_open(sup.cfg, pool, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return r;
	}
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->fds[i] >= 0) {
			log_error("systemd passed a socket named '%s' (fd %d) but %s has no [listener %s] section",
				  pool->names[i], pool->fds[i], sup.cfg->path, pool->names[i]);
			r = -EINVAL;
		}
	}
	return r;
}

/* A trial: the old image's listeners (lent, never unlinked) and a
 * scoreboard of our own. */
static int sup_obtain_trial(struct listen_pool *pool)
{
	const char *lent = getenv(HANDOVER_ENV);
	int r = lent ? upgrade_trial_listeners(lent, pool) : -EINVAL;
	if (r < 0)
		return r;
	unsetenv(HANDOVER_ENV);
	r = scoreboard_create(&sup.sb, &sup.sb_fd);
	if (r < 0)
		return log_errno(LOG_ERR, r, "cannot create the scoreboard");
	listen_set_open_adopted(sup.cfg, pool, upgrade_adopted());
	for (size_t i = 0; i < sup.lst.n; i++)
		sup.lst.cur[i].unix_bound = false;
	for (size_t i = 0; i < sup.lst.n_retired; i++)
		sup.lst.retired[i].l.unix_bound = false;
	return 0;
}

/* Listeners and scoreboard, adopted from a previous image or fresh; sets
 * *upgraded; 0 or -errno. */
static int sup_obtain(bool *upgraded)
{
	struct listen_pool pool = { .n = 0 };
	if (sup.upg.trial_fd >= 0)
		return sup_obtain_trial(&pool);
	const char *handover = getenv(HANDOVER_ENV);
	*upgraded = handover && *handover;
	int r;
	if (*upgraded) {
		char *copy = strdup(handover);
		unsetenv(HANDOVER_ENV);
		r = copy ? upgrade_adopt(copy, &pool) : -ENOMEM;
		free(copy);
		if (r < 0)
			return r;
		listen_set_open_adopted(sup.cfg, &pool, upgrade_adopted());
	} else {
		r = sup_obtain_fresh(&pool);
		if (r < 0) {
			listen_pool_close(&pool);
			return r;
		}
	}
	listen_push_fdstore();
	return 0;
}

/* Generation 1, or after an upgrade the one after the adopted generation,
 * which serves until ours is ready. */
static void sup_start_generation(bool upgraded)
{
	if (upgraded) {
		gen_snapshot();
		gen_begin(&sup.gen, GEN_UPGRADING, loop_now_ms(sup.loop));
		sup.gen.serving = true;
	} else if (sup.upg.trial_fd >= 0) {
		sup.gen.current = upgrade_adopted()->highest_generation + 1; /* only for the log */
	} else {
		sup.gen.current = 1;
	}
	sup.sb->hdr.generation = sup.gen.current;
	listen_build_worker();
	log_info("starting generation %u: %u worker(s), %zu listener(s)", sup.gen.current, sup.cfg->server.workers,
		 sup.lst.n);
	for (size_t i = 0; i < sup.lst.n; i++) {
		const struct listener *l = &sup.lst.cur[i];
		log_info("listener '%s' on %s (%s)", l->name,
			 l->address[0] && !l->from_systemd ? l->address : "a socket passed by systemd",
			 sup.lst.wl[i].proto->name);
	}
	pool_fill();
	pool_reap(); /* adopted workers may have exited while we were exec'ing */
}

/* Before any worker drops privileges: the paths workers read are there for
 * them, and the files workers write are opened. 0 or -errno. */
static int sup_open_files(void)
{
	char err[2048] = "";
	int r = proto_paths_check(sup.cfg, err, sizeof(err));
	if (r >= 0)
		r = proto_files_open(sup.cfg, &sup.files, false, err, sizeof(err));
	if (r < 0) {
		char *save = NULL;
		for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_error("not starting: %s", line);
		notify_status("failed: %.400s", err); /* the first line */
	}
	return r;
}

int supervisor_run(struct config *cfg, const char *argv0, char *const argv[], int trial_fd)
{
	bool upgraded = false;
	bool trial = trial_fd >= 0;
	int r = sup_init(cfg, argv0, argv, trial_fd);
	if (r >= 0)
		r = sup_obtain(&upgraded);
	if (r >= 0)
		r = sup_open_files();
	if (r >= 0 && !trial)
		r = admin_start();
	if (r < 0)
		return 1;
	if (!trial)
		sup_write_pid_file();
	loop_timer_arm(sup.loop, &sup.tick, SUP_TICK_MS);
	sup_start_generation(upgraded);

	/* A start that failed at once (fork) may have nothing left to wait for. */
	r = sup.stop.stopping && !sup.pool.workers ? 0 : loop_run(sup.loop);
	if (r < 0)
		log_errno(LOG_ERR, r, "event loop failed");

	listen_close_all();
	admin_stop();
	proto_files_close(&sup.files);
	proto_files_close(&sup.prev_files);
	if (sup.cfg->server.pid_file && !trial)
		unlink(sup.cfg->server.pid_file);
	log_notice("stopped");
	notify_done();
	loop_free(sup.loop);
	config_free(sup.prev_cfg);
	config_free(sup.cfg);
	return r < 0 || sup.failed ? 1 : 0;
}
