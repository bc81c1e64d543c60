/* pool: the worker processes. Forks them with only the fds they need,
 * talks to them over their control channels, reaps them, replaces the ones
 * that die (backing off when they die right after start) and ends the ones
 * that hang or overstay a drain. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/generation.h"
#include "supervisor/sup.h"
#include "worker/worker.h"

#define POOL_BACKOFF_FIRST_MS 100
#define POOL_BACKOFF_MAX_MS 30000
#define POOL_ABORT_GRACE_MS 2000 /* SIGABRT, then SIGKILL this much later */
#define POOL_DRAIN_GRACE_MS 1000 /* past a drain deadline, SIGKILL */

/* ------------------------------------------------------------ counting */

struct scoreboard_slot *pool_slot(const struct sup_worker *w)
{
	return w->slot >= 0 && w->slot < SCOREBOARD_SLOTS ? &sup.sb->slots[w->slot] : NULL;
}

size_t pool_count_all(void)
{
	size_t n = 0;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next)
		n++;
	return n;
}

uint64_t pool_connections(void)
{
	uint64_t n = 0;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next)
		if (pool_slot(w))
			n += sb_load(&pool_slot(w)->connections);
	return n;
}

/* ------------------------------------------------- the control channel */

void pool_kill(struct sup_worker *w)
{
	if (w->reaped)
		return;
	w->killed = true;
	kill(w->pid, SIGKILL);
}

/* The files a worker of w's generation writes, as opened now (none if its
 * config is no longer known). */
static const struct proto_fileset *pool_files(const struct sup_worker *w)
{
	static const struct proto_fileset none = { .n = 0 };
	if (w->generation == sup.gen.current)
		return &sup.files;
	if (sup.prev_cfg && w->generation == sup.gen.previous)
		return &sup.prev_files;
	return &none;
}

/* A send failed: the worker is gone (SIGCHLD reaps it) or is ended here
 * (and replaced when reaped, like one that crashed). */
static void pool_send_failed(struct sup_worker *w, const char *what, int r)
{
	if (r == -EPIPE || r == -ECONNRESET)
		return;
	log_errno(LOG_ERR, r, "cannot send %s to worker pid %d (generation %u); ending it", what, (int)w->pid,
		  w->generation);
	pool_kill(w);
}

void pool_send(struct sup_worker *w, enum chan_type type)
{
	struct chan_msg m; /* no payload: data stays unset */
	m.type = type;
	m.arg = 0;
	m.len = 0;
	int fds[PROTO_FILESET_MAX];
	size_t n = 0;
	if (type == CHAN_REOPEN_LOGS) {
		/* The new files themselves go along (SCM_RIGHTS). */
		const struct proto_fileset *fs = pool_files(w);
		for (n = 0; n < fs->n; n++)
			fds[n] = fs->f[n].fd;
		m.arg = n;
	} else if (type == CHAN_DRAIN) {
		m.arg = w->drain_deadline_ms | (sup.stop.stopping ? CHAN_DRAIN_STOP : 0);
	}
	bool was_held = chan_out_held(&w->chan) > 0;
	/* Each of today's messages counts once: a newer one replaces one held. */
	int r = chan_out_send(&w->chan, &m, fds, n, CHAN_HOLD_REPLACE);
	if (r == CHAN_OUT_SENT)
		return;
	if (r < 0) {
		pool_send_failed(w, chan_type_name(type), r);
		return;
	}
	if (was_held)
		return;
	/* A worker that stops reading stops heartbeating too: if it never
	 * reads again, the hung-worker path in pool_tick ends it. */
	log_warning("control channel to worker pid %d (generation %u) is full; %s held until it has room",
		    (int)w->pid, w->generation, chan_type_name(type));
	loop_mod_fd(sup.loop, w->chan.fd, LOOP_READ | LOOP_WRITE);
}

/* The channel has room: send what it held, in order. */
static void pool_flush(struct sup_worker *w)
{
	int r = chan_out_flush(&w->chan);
	if (r == CHAN_OUT_HELD)
		return;
	if (r < 0)
		pool_send_failed(w, "the messages held", r);
	loop_mod_fd(sup.loop, w->chan.fd, LOOP_READ);
}

void pool_drain(struct sup_worker *w, uint64_t deadline_ms)
{
	if (w->state == SW_DRAINING && w->drain_deadline_ms <= deadline_ms) {
		/* A DRAIN still held learns of a stop begun since. */
		if (sup.stop.stopping && chan_out_holds(&w->chan, CHAN_DRAIN))
			pool_send(w, CHAN_DRAIN);
		return;
	}
	w->state = SW_DRAINING;
	w->drain_deadline_ms = deadline_ms;
	pool_send(w, CHAN_DRAIN);
}

/* READY from a worker: it serves, or drains at once if it is not wanted. */
static void pool_on_ready(struct sup_worker *w)
{
	uint64_t drain_by = loop_now_ms(sup.loop) + sup.cfg->server.shutdown_timeout_ms;
	if (w->state == SW_STARTING)
		w->state = SW_READY;
	if (sup.stop.stopping) {
		pool_drain(w, pool_stop_deadline());
		return;
	}
	if (w->replaces) {
		for (struct sup_worker *o = sup.pool.workers; o; o = o->next)
			if (o->pid == w->replaces && o->state != SW_DRAINING)
				pool_drain(o, drain_by);
		w->replaces = 0;
	}
	if (w->generation != sup.gen.current) {
		pool_drain(w, drain_by);
		return;
	}
	if (sup.gen.serving)
		pool_send(w, CHAN_START);
	gen_check_ready();
	sup_update_status();
}

/* RECYCLE_ME: pool_fill starts the replacement (and retries it, backing
 * off, if it dies before READY); its READY drains this one. */
static void pool_on_recycle(struct sup_worker *w, uint64_t arg)
{
	if (w->wants_recycle || w->state != SW_READY || sup.stop.stopping)
		return;
	if (w->generation != sup.gen.current) {
		pool_drain(w, loop_now_ms(sup.loop) + sup.cfg->server.shutdown_timeout_ms);
		return;
	}
	w->wants_recycle = true;
	log_info("worker pid %d %s; starting its replacement", (int)w->pid,
		 (arg & CHAN_RECYCLE_NOMEM) ? "is short of memory" : "reached max_requests");
	pool_fill();
}

/* START_FAILED: the worker says why it cannot start; it exits next, and
 * pool_reaped() reports it (and fails the change coming up). */
static void pool_on_start_failed(struct sup_worker *w, uint64_t arg)
{
	w->start_failed = true;
	w->start_error = arg;
}

/* Why w could not start, from its START_FAILED or else its exit (how). */
static void pool_start_error(const struct sup_worker *w, const char *how, char *why, size_t len)
{
	if (!w->start_failed) {
		snprintf(why, len, "worker pid %d (generation %u) could not start: %s before it was ready",
			 (int)w->pid, w->generation, how);
		return;
	}
	unsigned stage = CHAN_START_STAGE(w->start_error);
	char proto[64] = "";
	const struct proto *const *t = proto_table();
	if (stage == CHAN_STAGE_PROTOCOL && t) {
		unsigned n = 0;
		while (t[n])
			n++;
		if (CHAN_START_INDEX(w->start_error) < n)
			snprintf(proto, sizeof(proto), " %s", t[CHAN_START_INDEX(w->start_error)]->name);
	}
	snprintf(why, len, "worker pid %d (generation %u) could not start: %s%s: %s", (int)w->pid, w->generation,
		 chan_start_stage_name(stage), proto, strerror(CHAN_START_ERRNO(w->start_error)));
}

static void pool_control(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct sup_worker *w = arg;
	if ((events & LOOP_WRITE) && chan_out_held(&w->chan))
		pool_flush(w);
	for (;;) {
		struct chan_msg m;
		int r = chan_recv(fd, &m);
		if (r == -EAGAIN)
			return;
		if (r == -EBADMSG) {
			/* One message we do not understand (another build's); keep listening. */
			log_warning("unreadable control message from worker pid %d", (int)w->pid);
			continue;
		}
		if (r <= 0) {
			/* The worker is gone or going; SIGCHLD does the bookkeeping. */
			chan_out_clear(&w->chan);
			loop_del_fd(loop, fd);
			return;
		}
		/* A reaped worker's last words: only why it could not start. */
		if (w->reaped && m.type != CHAN_START_FAILED)
			continue;
		switch (m.type) {
		case CHAN_READY:
			pool_on_ready(w);
			break;
		case CHAN_RECYCLE_ME:
			pool_on_recycle(w, m.arg);
			break;
		case CHAN_DRAINING:
			w->state = SW_DRAINING;
			break;
		case CHAN_START_FAILED:
			pool_on_start_failed(w, m.arg);
			break;
		default:
			log_warning("unexpected %s from worker pid %d", chan_type_name(m.type), (int)w->pid);
			break;
		}
	}
}

int pool_watch(struct sup_worker *w)
{
	return loop_add_fd(sup.loop, w->chan.fd, LOOP_READ, pool_control, w);
}

/* ------------------------------------------------------------- forking */

/* Close every fd the new worker must not hold: other workers' control
 * sockets (or their EOF would never come), the supervisor's loop, signalfd
 * and control socket, listeners of other generations. */
static void pool_child_close_fds(const int *keep, size_t n_keep)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d) {
		for (int fd = 3; fd < 65536; fd++) {
			bool k = false;
			for (size_t i = 0; i < n_keep; i++)
				k |= keep[i] == fd;
			if (!k)
				close(fd);
		}
		return;
	}
	int fds[4096];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
		int fd = atoi(de->d_name);
		if (fd < 3 || fd == dirfd(d) || de->d_name[0] == '.')
			continue;
		bool k = false;
		for (size_t i = 0; i < n_keep; i++)
			k |= keep[i] == fd;
		if (!k)
			fds[n++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* In the child: keep the control channel and the listeners, then run. */
__attribute__((noreturn)) static void pool_child(int chan_fd, int slot, uint32_t index)
{
	int keep[CONFIG_MAX_LISTENERS + 2 + PROTO_FILESET_MAX];
	size_t n_keep = 0;
	keep[n_keep++] = chan_fd;
	keep[n_keep++] = log_output_fd(); /* stderr's own non-blocking description */
	for (size_t i = 0; i < sup.files.n; i++)
		keep[n_keep++] = sup.files.f[i].fd;
	for (size_t i = 0; i < sup.lst.n; i++)
		keep[n_keep++] = sup.lst.wl[i].fd;
	pool_child_close_fds(keep, n_keep);
	struct worker_params p = {
		.cfg = sup.cfg,
		.sb = sup.sb,
		.slot = slot,
		.generation = sup.gen.current,
		.index = index,
		.chan_fd = chan_fd,
		.listeners = sup.lst.wl,
		.n_listeners = sup.lst.n,
		.files = &sup.files,
	};
	worker_main(&p);
}

static int pool_fork_errno; /* of the last fork that failed, 0 if none */

static struct sup_worker *pool_fork(uint32_t index, pid_t replaces)
{
	pool_fork_errno = 0;
	int sv[2];
	int r = chan_pair(sv);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot create a control channel");
		return NULL;
	}
	int slot = scoreboard_slot_alloc(sup.sb, sup.gen.current, index);
	struct sup_worker *w = slot >= 0 ? calloc(1, sizeof(*w)) : NULL;
	pid_t pid = w ? fork() : -1;
	if (pid < 0) {
		if (slot < 0)
			log_error("scoreboard full: too many workers alive at once");
		else if (w)
			pool_fork_errno = errno;
		if (pool_fork_errno)
			log_errno(LOG_ERR, -pool_fork_errno, "fork failed");
		if (slot >= 0)
			scoreboard_slot_free(sup.sb, slot);
		close(sv[0]);
		close(sv[1]);
		free(w);
		return NULL;
	}
	if (pid == 0) {
		free(w); /* the supervisor's record of the child, not the child's */
		pool_child(sv[1], slot, index);
	}
	close(sv[1]);
	__atomic_store_n(&sup.sb->slots[slot].pid, (int32_t)pid, __ATOMIC_RELAXED);
	w->pid = pid;
	w->generation = sup.gen.current;
	w->index = index;
	w->slot = slot;
	chan_out_init(&w->chan, sv[0], CHAN_VERSION); /* it runs our code */
	w->state = SW_STARTING;
	w->replaces = replaces;
	w->started_ms = loop_clock_ms();
	w->next = sup.pool.workers;
	sup.pool.workers = w;
	r = pool_watch(w);
	if (r < 0)
		log_errno(LOG_ERR, r, "cannot watch worker pid %d", (int)pid);
	log_info("started worker pid %d (generation %u, #%u)", (int)pid, sup.gen.current, index);
	return w;
}

/* The next delay: the first one, then doubling up to the cap. */
static void pool_back_off(struct sup_respawn *rs)
{
	rs->delay_ms = rs->delay_ms ? rs->delay_ms * 2 : POOL_BACKOFF_FIRST_MS;
	if (rs->delay_ms > POOL_BACKOFF_MAX_MS)
		rs->delay_ms = POOL_BACKOFF_MAX_MS;
}

static void pool_arm_respawn_timer(void)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
		if (sup.pool.respawn[i].pending && sup.pool.respawn[i].not_before_ms < next)
			next = sup.pool.respawn[i].not_before_ms;
	if (next == UINT64_MAX)
		loop_timer_cancel(sup.loop, &sup.pool.respawn_timer);
	else
		loop_timer_arm_at(sup.loop, &sup.pool.respawn_timer, next);
}

/* Start the workers the current generation is missing, and the replacement
 * of a worker that asked to be recycled. A slot that needs nothing has no
 * pending respawn (or its timer would fire forever). */
void pool_fill(void)
{
	if (sup.stop.stopping)
		return;
	uint64_t now = loop_clock_ms();
	for (uint32_t i = 0; i < sup.cfg->server.workers; i++) {
		struct sup_worker *holder = NULL;
		bool replacement = false;
		for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
			if (w->generation != sup.gen.current || w->index != i || w->state == SW_DRAINING)
				continue;
			if (w->replaces)
				replacement = true;
			else
				holder = w;
		}
		struct sup_respawn *rs = &sup.pool.respawn[i];
		bool want = !replacement && (!holder || holder->wants_recycle);
		if (!want) {
			rs->pending = false;
			continue;
		}
		if (rs->pending && rs->not_before_ms > now)
			continue;
		rs->pending = false;
		if (!pool_fork(i, holder ? holder->pid : 0)) {
			if (pool_fork_errno && !sup.gen.announced) {
				/* The generation coming up cannot have its workers:
				 * the reload or start fails now, not after a timeout. */
				char why[160];
				snprintf(why, sizeof(why), "cannot start a worker: fork: %s", strerror(pool_fork_errno));
				gen_workers_failed(why);
				return;
			}
			/* fork or fd trouble: try again later, backing off as for
			 * workers that die at start, instead of spinning. */
			pool_back_off(rs);
			rs->pending = true;
			rs->not_before_ms = now + rs->delay_ms;
			log_warning("worker #%u not started; next attempt in %llums", i,
				    (unsigned long long)rs->delay_ms);
		}
	}
	pool_arm_respawn_timer();
}

static void pool_respawn_due(struct loop *loop, struct loop_timer *t, void *arg)
{
	pool_fill();
	sup_update_status();
}

void pool_reset_backoff(void)
{
	memset(sup.pool.respawn, 0, sizeof(sup.pool.respawn));
}

void pool_cancel_respawns(void)
{
	for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
		sup.pool.respawn[i].pending = false;
	loop_timer_cancel(sup.loop, &sup.pool.respawn_timer);
}

void pool_init(void)
{
	loop_timer_init(&sup.pool.respawn_timer, pool_respawn_due, NULL);
}

/* -------------------------------------------------------------- reaping */

/* Take pid off the list; NULL if it is not a worker. */
static struct sup_worker *pool_unlink(pid_t pid)
{
	struct sup_worker **pp = &sup.pool.workers;
	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	struct sup_worker *w = *pp;
	if (w)
		*pp = w->next;
	return w;
}

/* A worker of the serving generation died unasked: start another, after a
 * back-off if it died right after its start (no fork loop). */
static void pool_schedule_respawn(const struct sup_worker *w, uint64_t now)
{
	struct sup_respawn *rs = &sup.pool.respawn[w->index];
	if (now - w->started_ms < SUP_QUICK_DEATH_MS && !w->killed) {
		pool_back_off(rs);
		log_warning("worker #%u died %llums after start; next start in %llums", w->index,
			    (unsigned long long)(now - w->started_ms), (unsigned long long)rs->delay_ms);
	} else {
		rs->delay_ms = 0;
	}
	rs->pending = true;
	rs->not_before_ms = now + rs->delay_ms;
}

static void pool_reaped(struct sup_worker *w, int status)
{
	uint64_t now = loop_clock_ms();
	bool expected = w->state == SW_DRAINING || sup.stop.stopping;
	char how[96];
	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), w->killed ? ", by the supervisor" : "");
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	log_msg(expected && clean ? LOG_INFO : LOG_WARNING, "worker pid %d (generation %u, #%u) %s",
		(int)w->pid, w->generation, w->index, how);
	w->reaped = true;
	/* What it said last (START_FAILED) may still be unread. */
	if (w->state == SW_STARTING)
		pool_control(sup.loop, w->chan.fd, LOOP_READ, w);
	loop_del_fd(sup.loop, w->chan.fd);
	chan_out_clear(&w->chan);
	close(w->chan.fd);
	scoreboard_slot_free(sup.sb, w->slot);
	/* One of the generation coming up could not start: the change (or
	 * the first start) fails now, with its reason, not after a timeout. */
	char why[320] = "";
	bool failed_start = !expected && w->state == SW_STARTING && w->generation == sup.gen.current &&
			    !sup.gen.announced;
	if (failed_start || w->start_failed) {
		pool_start_error(w, how, why, sizeof(why));
		log_error("%s", why);
	}
	if (!expected && w->generation == sup.gen.current && w->index < SCOREBOARD_SLOTS && !failed_start)
		pool_schedule_respawn(w, now);
	/* A replacement starting for it now simply takes its place. */
	for (struct sup_worker *o = sup.pool.workers; o; o = o->next)
		if (o->replaces == w->pid)
			o->replaces = 0;
	free(w);
	if (failed_start)
		gen_workers_failed(why);
}

void pool_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		struct sup_worker *w = pool_unlink(pid);
		if (w)
			pool_reaped(w, status);
		else
			upgrade_reaped(pid, status); /* the upgrade's preflight, or nothing of ours */
	}
	listen_close_retired(0);
	if (sup.stop.stopping) {
		if (!sup.pool.workers)
			loop_stop(sup.loop);
		return;
	}
	pool_fill();
	sup_update_status();
}

/* ---------------------------------------------------- hung and overdue */

bool pool_tick(uint64_t now)
{
	bool healthy = true;
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		if (w->killed || !pool_slot(w))
			continue;
		uint64_t hb = sb_load(&pool_slot(w)->heartbeat_ms);
		uint64_t age = now > hb ? now - hb : 0;
		if (age > sup.cfg->server.worker_timeout_ms) {
			healthy = false;
			if (!w->abort_sent_ms) {
				/* SIGABRT first: its core dump shows where the loop hung. */
				log_error("worker pid %d (generation %u) stuck for %llums (worker_timeout), sending SIGABRT",
					  (int)w->pid, w->generation, (unsigned long long)age);
				w->abort_sent_ms = now;
				kill(w->pid, SIGABRT);
			} else if (now - w->abort_sent_ms >= POOL_ABORT_GRACE_MS) {
				log_error("worker pid %d (generation %u) still stuck %llums after SIGABRT, killed",
					  (int)w->pid, w->generation, (unsigned long long)(now - w->abort_sent_ms));
				pool_kill(w);
			}
		}
		if (w->state == SW_DRAINING && !sup.stop.stopping && w->drain_deadline_ms &&
		    now > w->drain_deadline_ms + POOL_DRAIN_GRACE_MS) {
			log_warning("worker pid %d (generation %u) still draining past its deadline, killed",
				    (int)w->pid, w->generation);
			pool_kill(w);
		}
	}
	return healthy;
}

/* Workers are told to be done a little before shutdown_timeout, so that one
 * finishing at its own deadline exits cleanly instead of racing our SIGKILL. */
uint64_t pool_stop_deadline(void)
{
	uint64_t margin = sup.cfg->server.shutdown_timeout_ms / 10;
	if (margin > 500)
		margin = 500;
	return sup.stop.deadline_ms - margin;
}

void pool_kill_all(void)
{
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		log_warning("worker pid %d (generation %u) still running at shutdown_timeout: killed",
			    (int)w->pid, w->generation);
		pool_kill(w);
	}
}
