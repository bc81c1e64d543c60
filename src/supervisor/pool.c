/* pool: the worker processes (see pool.h). Each worker's control channel
 * is read here: READY and RECYCLE_ME go to the coordinator as events,
 * DRAINING and START_FAILED are the pool's own bookkeeping. */
#include "supervisor/pool.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "supervisor/handover.h"
#include "worker/worker.h"

#define POOL_BACKOFF_FIRST_MS 100
#define POOL_BACKOFF_MAX_MS 30000
#define POOL_ABORT_GRACE_MS 2000 /* SIGABRT, then SIGKILL this much later */
#define POOL_DRAIN_GRACE_MS 1000 /* past a drain deadline, SIGKILL */

static void pool_respawn_due(struct loop *loop, struct loop_timer *t, void *arg);

void pool_init(struct pool *p, struct loop *loop, const struct sup_sink *sink)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->sink = *sink;
	loop_timer_init(&p->respawn_timer, pool_respawn_due, p);
}

void pool_set_scoreboard(struct pool *p, struct scoreboard *sb)
{
	p->sb = sb;
}

/* ------------------------------------------------------------ counting */

struct scoreboard_slot *pool_slot(const struct pool *p, const struct pool_worker *w)
{
	return w->slot >= 0 && w->slot < SCOREBOARD_SLOTS ? &p->sb->slots[w->slot] : NULL;
}

size_t pool_count(const struct pool *p)
{
	size_t n = 0;
	for (const struct pool_worker *w = p->workers; w; w = w->next)
		n++;
	return n;
}

uint64_t pool_connections(const struct pool *p)
{
	uint64_t n = 0;
	for (const struct pool_worker *w = p->workers; w; w = w->next)
		if (pool_slot(p, w))
			n += sb_load(&pool_slot(p, w)->connections);
	return n;
}

/* ------------------------------------------------- the control channel */

void pool_kill(struct pool *p, struct pool_worker *w)
{
	(void)p;
	if (w->reaped)
		return;
	w->killed = true;
	kill(w->pid, SIGKILL);
}

/* A send failed: the worker is gone (SIGCHLD reaps it) or is ended here
 * (and replaced when reaped, like one that crashed). */
static void pool_send_failed(struct pool *p, struct pool_worker *w, const char *what, int r)
{
	if (r == -EPIPE || r == -ECONNRESET)
		return;
	log_errno(LOG_ERR, r, "cannot send %s to worker pid %d (generation %u); ending it", what, (int)w->pid,
		  w->generation);
	pool_kill(p, w);
}

/* Send type with arg and fds to w, or hold it while the channel is full. */
static void pool_put_as(struct pool *p, struct pool_worker *w, enum chan_type type, uint64_t arg, const int *fds,
			size_t n, enum chan_hold how);

static void pool_put(struct pool *p, struct pool_worker *w, enum chan_type type, uint64_t arg, const int *fds,
		     size_t n)
{
	/* Each of today's messages counts once: a newer one replaces one held. */
	pool_put_as(p, w, type, arg, fds, n, CHAN_HOLD_REPLACE);
}

static void pool_put_as(struct pool *p, struct pool_worker *w, enum chan_type type, uint64_t arg, const int *fds,
			size_t n, enum chan_hold how)
{
	struct chan_msg m; /* no payload: data stays unset */
	m.type = type;
	m.arg = arg;
	m.len = 0;
	bool was_held = chan_out_held(&w->chan) > 0;
	int r = chan_out_send(&w->chan, &m, fds, n, how);
	if (r == CHAN_OUT_SENT)
		return;
	if (r < 0) {
		pool_send_failed(p, w, chan_type_name(type), r);
		return;
	}
	if (was_held)
		return;
	/* A worker that stops reading stops heartbeating too: if it never
	 * reads again, the hung-worker path in pool_tick ends it. */
	log_warning("control channel to worker pid %d (generation %u) is full; %s held until it has room",
		    (int)w->pid, w->generation, chan_type_name(type));
	loop_mod_fd(p->loop, w->chan.fd, LOOP_READ | LOOP_WRITE);
}

void pool_send(struct pool *p, struct pool_worker *w, enum chan_type type)
{
	pool_put(p, w, type, 0, NULL, 0);
}

void pool_send_files(struct pool *p, struct pool_worker *w, const struct proto_fileset *files)
{
	/* The new files themselves go along (SCM_RIGHTS). */
	int fds[PROTO_FILESET_MAX];
	for (size_t i = 0; i < files->n; i++)
		fds[i] = files->f[i].fd;
	pool_put(p, w, CHAN_REOPEN_LOGS, files->n, fds, files->n);
}

/* The channel has room: send what it held, in order. */
static void pool_flush(struct pool *p, struct pool_worker *w)
{
	int r = chan_out_flush(&w->chan);
	if (r == CHAN_OUT_HELD)
		return;
	if (r < 0)
		pool_send_failed(p, w, "the messages held", r);
	loop_mod_fd(p->loop, w->chan.fd, LOOP_READ);
}

static void pool_send_drain(struct pool *p, struct pool_worker *w)
{
	pool_put(p, w, CHAN_DRAIN, w->drain_deadline_ms | (w->drain_stop ? CHAN_DRAIN_STOP : 0), NULL, 0);
}

void pool_drain(struct pool *p, struct pool_worker *w, uint64_t deadline_ms, enum pool_drain_for why)
{
	if (w->state == PW_DRAINING && w->drain_deadline_ms <= deadline_ms) {
		/* A DRAIN still held learns of a stop begun since. */
		if (why == POOL_DRAIN_STOP && !w->drain_stop && chan_out_holds(&w->chan, CHAN_DRAIN)) {
			w->drain_stop = true;
			pool_send_drain(p, w);
		}
		return;
	}
	w->state = PW_DRAINING;
	w->drain_deadline_ms = deadline_ms;
	w->drain_stop = why == POOL_DRAIN_STOP;
	pool_send_drain(p, w);
}

/* Give from and to the two ends of a channel of their own, ahead of
 * from's DRAIN on the same (ordered) control channel: from hands its
 * connections over on it, to adopts them. The supervisor never holds a
 * connection, and sends two fds whatever their number. Appended, never
 * replacing one held: each channel counts. */
static void pool_connect(struct pool *p, struct pool_worker *from, struct pool_worker *to)
{
	int sv[2];
	int r = chan_pair(sv);
	if (r < 0) {
		log_errno(LOG_WARNING, r, "hand-off: no channel for worker pid %d", (int)from->pid);
		return;
	}
	pool_put_as(p, to, CHAN_ADOPT_FROM, (uint64_t)from->pid, &sv[0], 1, CHAN_HOLD_APPEND);
	pool_put_as(p, from, CHAN_HANDOFF_TO, (uint64_t)to->pid, &sv[1], 1, CHAN_HOLD_APPEND);
	close(sv[0]);
	close(sv[1]);
	from->handoff_to = to->pid;
}

void pool_drain_to(struct pool *p, struct pool_worker *w, struct pool_worker *to, uint64_t deadline_ms)
{
	if (to && w->state != PW_DRAINING && !w->reaped && !to->reaped && to->state == PW_READY) {
		pool_connect(p, w, to);
		/* Workers still draining into w (an older generation, a worker
		 * w replaced) go on to w's successor: w then has nobody to wait
		 * for, and generations do not pile up behind a slow client. */
		for (struct pool_worker *o = p->workers; o; o = o->next)
			if (o != w && o->handoff_to == w->pid && o->state == PW_DRAINING && !o->drain_stop &&
			    !o->reaped)
				pool_connect(p, o, to);
	}
	pool_drain(p, w, deadline_ms, POOL_DRAIN_HANDOVER);
}

void pool_drain_replaced(struct pool *p, struct pool_worker *w, uint64_t deadline_ms, bool handoff)
{
	if (!w->replaces)
		return;
	for (struct pool_worker *o = p->workers; o; o = o->next)
		if (o->pid == w->replaces && o->state != PW_DRAINING)
			pool_drain_to(p, o, handoff ? w : NULL, deadline_ms);
	w->replaces = 0;
}

/* The hand-off counters of a worker that is gone, kept per generation. */
static void pool_tally(struct pool *p, const struct pool_worker *w)
{
	const struct scoreboard_slot *s = pool_slot(p, w);
	if (!s || (sb_load32(&s->handed_off) == 0 && sb_load32(&s->adopted) == 0))
		return;
	struct pool_tally *t = NULL;
	for (size_t i = 0; i < POOL_TALLY_GENS && !t; i++)
		if (p->tally[i].used && p->tally[i].generation == w->generation)
			t = &p->tally[i];
	for (size_t i = 0; i < POOL_TALLY_GENS && !t; i++)
		if (!p->tally[i].used || (p->tally[i].generation < w->generation &&
					  (!t || p->tally[i].generation < t->generation)))
			t = &p->tally[i];
	if (!t)
		return;
	if (!t->used || t->generation != w->generation)
		*t = (struct pool_tally){ .used = true, .generation = w->generation };
	t->handed_off += sb_load32(&s->handed_off);
	t->adopted += sb_load32(&s->adopted);
}

void pool_handoff_counts(const struct pool *p, uint32_t generation, uint64_t *handed_off, uint64_t *adopted)
{
	*handed_off = *adopted = 0;
	for (size_t i = 0; i < POOL_TALLY_GENS; i++)
		if (p->tally[i].used && p->tally[i].generation == generation) {
			*handed_off += p->tally[i].handed_off;
			*adopted += p->tally[i].adopted;
		}
	for (const struct pool_worker *w = p->workers; w; w = w->next) {
		const struct scoreboard_slot *s = pool_slot(p, w);
		if (s && w->generation == generation) {
			*handed_off += sb_load32(&s->handed_off);
			*adopted += sb_load32(&s->adopted);
		}
	}
}

struct pool_worker *pool_next_ready(const struct pool *p, uint32_t generation, struct pool_worker *prev)
{
	for (int round = 0; round < 2; round++) {
		struct pool_worker *w = prev && round == 0 ? prev->next : p->workers;
		for (; w; w = w->next)
			if (w->generation == generation && w->state == PW_READY)
				return w;
	}
	return NULL;
}

void pool_recycle(struct pool *p, struct pool_worker *w, uint64_t arg)
{
	(void)p;
	w->wants_recycle = true;
	w->recycle_nomem = (arg & CHAN_RECYCLE_NOMEM) != 0;
	log_info("worker pid %d %s; starting its replacement", (int)w->pid,
		 (arg & CHAN_RECYCLE_NOMEM) ? "is short of memory" : "reached max_requests");
}

/* How a worker ended, from its wait status. */
static void pool_how(const struct pool_worker *w, int status, char *how, size_t len)
{
	if (WIFEXITED(status))
		snprintf(how, len, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(how, len, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
			 w->killed ? ", by the supervisor" : "");
}

void pool_start_error(const struct pool_worker *w, int status, char *why, size_t len)
{
	if (!w->start_failed) {
		char how[96];
		pool_how(w, status, how, sizeof(how));
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

/* One message from w: the pool's own bookkeeping, or an event. */
static void pool_message(struct pool *p, struct pool_worker *w, const struct chan_msg *m)
{
	switch (m->type) {
	case CHAN_READY:
		if (w->state == PW_STARTING)
			w->state = PW_READY;
		sup_report(&p->sink, &(struct sup_event){ .kind = SUP_EV_WORKER_READY, .worker = w });
		break;
	case CHAN_RECYCLE_ME:
		/* Once: the replacement's READY drains it. */
		if (!w->wants_recycle && w->state == PW_READY)
			sup_report(&p->sink,
				   &(struct sup_event){ .kind = SUP_EV_WORKER_RECYCLE, .worker = w, .arg = m->arg });
		break;
	case CHAN_DRAINING:
		w->state = PW_DRAINING;
		break;
	case CHAN_START_FAILED:
		/* It exits next; pool_reaped hands its reason on. */
		w->start_failed = true;
		w->start_error = m->arg;
		break;
	default:
		log_warning("unexpected %s from worker pid %d", chan_type_name(m->type), (int)w->pid);
		break;
	}
}

static void pool_control(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct pool_worker *w = arg;
	struct pool *p = w->pool;
	if ((events & LOOP_WRITE) && chan_out_held(&w->chan))
		pool_flush(p, w);
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
		pool_message(p, w, &m);
	}
}

/* Watch the control channel of an (adopted or forked) worker. */
static int pool_watch(struct pool *p, struct pool_worker *w)
{
	return loop_add_fd(p->loop, w->chan.fd, LOOP_READ, pool_control, w);
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
__attribute__((noreturn)) static void pool_child(const struct pool *p, const struct pool_spawn *s, int chan_fd,
						 int slot, uint32_t index)
{
	int keep[CONFIG_MAX_LISTENERS + 2 + PROTO_FILESET_MAX];
	size_t n_keep = 0;
	keep[n_keep++] = chan_fd;
	keep[n_keep++] = log_output_fd(); /* stderr's own non-blocking description */
	for (size_t i = 0; i < s->files->n; i++)
		keep[n_keep++] = s->files->f[i].fd;
	for (size_t i = 0; i < s->n_listeners; i++)
		keep[n_keep++] = s->listeners[i].fd;
	pool_child_close_fds(keep, n_keep);
	struct worker_params params = {
		.cfg = s->cfg,
		.sb = p->sb,
		.slot = slot,
		.generation = s->generation,
		.index = index,
		.chan_fd = chan_fd,
		.listeners = s->listeners,
		.n_listeners = s->n_listeners,
		.files = s->files,
	};
	worker_main(&params);
}

/* Fork worker index of s; NULL on failure, with *fork_err the -errno of a
 * fork() that failed (0 if something else did: the scoreboard, a socket). */
static struct pool_worker *pool_fork(struct pool *p, const struct pool_spawn *s, uint32_t index, pid_t replaces,
				     int *fork_err)
{
	*fork_err = 0;
	int sv[2];
	int r = chan_pair(sv);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot create a control channel");
		return NULL;
	}
	int slot = scoreboard_slot_alloc(p->sb, s->generation, index);
	metrics_slot_clear(slot);
	struct pool_worker *w = slot >= 0 ? calloc(1, sizeof(*w)) : NULL;
	pid_t pid = w ? fork() : -1;
	if (pid < 0) {
		if (slot < 0)
			log_error("scoreboard full: too many workers alive at once");
		else if (w)
			*fork_err = -errno;
		if (*fork_err)
			log_errno(LOG_ERR, *fork_err, "fork failed");
		if (slot >= 0)
			scoreboard_slot_free(p->sb, slot);
		close(sv[0]);
		close(sv[1]);
		free(w);
		return NULL;
	}
	if (pid == 0) {
		free(w); /* the supervisor's record of the child, not the child's */
		pool_child(p, s, sv[1], slot, index);
	}
	close(sv[1]);
	__atomic_store_n(&p->sb->slots[slot].pid, (int32_t)pid, __ATOMIC_RELAXED);
	w->pool = p;
	w->pid = pid;
	w->generation = s->generation;
	w->index = index;
	w->slot = slot;
	chan_out_init(&w->chan, sv[0], CHAN_VERSION); /* it runs our code */
	w->state = PW_STARTING;
	w->replaces = replaces;
	w->started_ms = loop_clock_ms();
	w->next = p->workers;
	p->workers = w;
	r = pool_watch(p, w);
	if (r < 0)
		log_errno(LOG_ERR, r, "cannot watch worker pid %d", (int)pid);
	log_info("started worker pid %d (generation %u, #%u)", (int)pid, s->generation, index);
	return w;
}

/* The next delay: the first one, then doubling up to the cap. */
static void pool_back_off(struct pool_respawn *rs)
{
	rs->delay_ms = rs->delay_ms ? rs->delay_ms * 2 : POOL_BACKOFF_FIRST_MS;
	if (rs->delay_ms > POOL_BACKOFF_MAX_MS)
		rs->delay_ms = POOL_BACKOFF_MAX_MS;
}

static void pool_arm_respawn_timer(struct pool *p)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
		if (p->respawn[i].pending && p->respawn[i].not_before_ms < next)
			next = p->respawn[i].not_before_ms;
	if (next == UINT64_MAX)
		loop_timer_cancel(p->loop, &p->respawn_timer);
	else
		loop_timer_arm_at(p->loop, &p->respawn_timer, next);
}

/* A slot that needs nothing has no pending respawn (or its timer would
 * fire forever). */
int pool_fill(struct pool *p, const struct pool_spawn *s, enum pool_fork_failure on_failure, char *why,
	      size_t why_len)
{
	if (p->stopping)
		return 0;
	uint64_t now = loop_clock_ms();
	for (uint32_t i = 0; i < s->cfg->server.workers; i++) {
		struct pool_worker *holder = NULL;
		bool replacement = false;
		for (struct pool_worker *w = p->workers; w; w = w->next) {
			if (w->generation != s->generation || w->index != i || w->state == PW_DRAINING)
				continue;
			if (w->replaces)
				replacement = true;
			else
				holder = w;
		}
		struct pool_respawn *rs = &p->respawn[i];
		bool want = !replacement && (!holder || holder->wants_recycle);
		if (!want) {
			rs->pending = false;
			continue;
		}
		if (rs->pending && rs->not_before_ms > now)
			continue;
		rs->pending = false;
		int fork_err;
		if (pool_fork(p, s, i, holder ? holder->pid : 0, &fork_err))
			continue;
		if (fork_err && on_failure == POOL_GIVE_UP) {
			snprintf(why, why_len, "cannot start a worker: fork: %s", strerror(-fork_err));
			pool_arm_respawn_timer(p);
			return fork_err;
		}
		/* fork or fd trouble: try again later, backing off as for
		 * workers that die at start, instead of spinning. */
		pool_back_off(rs);
		rs->pending = true;
		rs->not_before_ms = now + rs->delay_ms;
		log_warning("worker #%u not started; next attempt in %llums", i, (unsigned long long)rs->delay_ms);
	}
	pool_arm_respawn_timer(p);
	return 0;
}

static void pool_respawn_due(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct pool *p = arg;
	sup_report(&p->sink, &(struct sup_event){ .kind = SUP_EV_RESPAWN_DUE });
}

void pool_reset_backoff(struct pool *p)
{
	memset(p->respawn, 0, sizeof(p->respawn));
}

void pool_stop(struct pool *p)
{
	p->stopping = true;
	for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
		p->respawn[i].pending = false;
	loop_timer_cancel(p->loop, &p->respawn_timer);
}

/* -------------------------------------------------------------- reaping */

/* Take pid off the list; NULL if it is not a worker. */
static struct pool_worker *pool_unlink(struct pool *p, pid_t pid)
{
	struct pool_worker **pp = &p->workers;
	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	struct pool_worker *w = *pp;
	if (w)
		*pp = w->next;
	return w;
}

void pool_respawn_later(struct pool *p, const struct pool_worker *gone, uint64_t now)
{
	if (gone->index >= SCOREBOARD_SLOTS)
		return;
	struct pool_respawn *rs = &p->respawn[gone->index];
	if (now - gone->started_ms < POOL_QUICK_DEATH_MS && !gone->killed) {
		pool_back_off(rs);
		log_warning("worker #%u died %llums after start; next start in %llums", gone->index,
			    (unsigned long long)(now - gone->started_ms), (unsigned long long)rs->delay_ms);
	} else {
		rs->delay_ms = 0;
	}
	rs->pending = true;
	rs->not_before_ms = now + rs->delay_ms;
}

/* Why a worker gone is replaced, for the metrics: hung (we aborted it),
 * recycled (max_requests, or short of memory), or died unasked. */
static void pool_count_restart(const struct pool *p, const struct pool_worker *w, bool expected)
{
	if (w->abort_sent_ms)
		metrics_restart(METRICS_HUNG);
	else if (w->wants_recycle && !p->stopping)
		metrics_restart(w->recycle_nomem ? METRICS_NOMEM : METRICS_RECYCLED);
	else if (!expected)
		metrics_restart(METRICS_CRASH);
}

bool pool_reaped(struct pool *p, pid_t pid, int status, struct pool_worker *gone)
{
	struct pool_worker *w = pool_unlink(p, pid);
	if (!w)
		return false;
	char how[96];
	pool_how(w, status, how, sizeof(how));
	bool expected = w->state == PW_DRAINING || p->stopping;
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	log_msg(expected && clean ? LOG_INFO : LOG_WARNING, "worker pid %d (generation %u, #%u) %s", (int)w->pid,
		w->generation, w->index, how);
	w->reaped = true;
	/* What it said last (START_FAILED) may still be unread. */
	if (w->state == PW_STARTING)
		pool_control(p->loop, w->chan.fd, LOOP_READ, w);
	loop_del_fd(p->loop, w->chan.fd);
	chan_out_clear(&w->chan);
	close(w->chan.fd);
	pool_tally(p, w);
	pool_count_restart(p, w, expected);
	metrics_retire(p->sb, w->slot); /* its counters stay in the totals; frees the slot */
	/* A replacement starting for it now simply takes its place. */
	for (struct pool_worker *o = p->workers; o; o = o->next)
		if (o->replaces == w->pid)
			o->replaces = 0;
	*gone = *w;
	gone->next = NULL;
	chan_out_init(&gone->chan, -1, gone->chan.peer_version);
	free(w);
	return true;
}

/* ---------------------------------------------------- hung and overdue */

bool pool_tick(struct pool *p, uint64_t now, uint64_t worker_timeout_ms)
{
	bool healthy = true;
	for (struct pool_worker *w = p->workers; w; w = w->next) {
		if (w->killed || !pool_slot(p, w))
			continue;
		uint64_t hb = sb_load(&pool_slot(p, w)->heartbeat_ms);
		uint64_t age = now > hb ? now - hb : 0;
		if (age > worker_timeout_ms) {
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
				pool_kill(p, w);
			}
		}
		if (w->state == PW_DRAINING && !p->stopping && w->drain_deadline_ms &&
		    now > w->drain_deadline_ms + POOL_DRAIN_GRACE_MS) {
			log_warning("worker pid %d (generation %u) still draining past its deadline, killed",
				    (int)w->pid, w->generation);
			pool_kill(p, w);
		}
	}
	return healthy;
}

void pool_kill_all(struct pool *p)
{
	for (struct pool_worker *w = p->workers; w; w = w->next) {
		log_warning("worker pid %d (generation %u) still running at shutdown_timeout: killed",
			    (int)w->pid, w->generation);
		pool_kill(p, w);
	}
}

void pool_kill_generation(struct pool *p, uint32_t generation, unsigned max_generations)
{
	for (struct pool_worker *w = p->workers; w; w = w->next) {
		if (w->generation == generation && !w->killed) {
			log_warning("worker pid %d (generation %u): too many generations alive (max_generations = %u), killed",
				    (int)w->pid, w->generation, max_generations);
			pool_kill(p, w);
		}
	}
}

void pool_drain_generation(struct pool *p, uint32_t generation, uint64_t deadline_ms)
{
	for (struct pool_worker *w = p->workers; w; w = w->next)
		if (w->generation == generation)
			pool_drain(p, w, deadline_ms, POOL_DRAIN_HANDOVER);
}

void pool_start_generation(struct pool *p, uint32_t generation)
{
	for (struct pool_worker *w = p->workers; w; w = w->next)
		if (w->generation == generation && w->state == PW_READY)
			pool_send(p, w, CHAN_START);
}

void pool_end_all(struct pool *p, enum pool_end how, uint64_t deadline_ms)
{
	for (struct pool_worker *w = p->workers; w; w = w->next) {
		if (how == POOL_END_NOW)
			pool_send(p, w, CHAN_STOP);
		else
			pool_drain(p, w, deadline_ms, POOL_DRAIN_STOP);
	}
}

/* ------------------------------------------------------ binary upgrade */

/* The hand-over spells a worker's state 0 starting, 1 ready, 2 draining,
 * whatever the enum's values in either build. */
static int pool_state_code(enum pool_worker_state s)
{
	return s == PW_STARTING ? 0 : s == PW_READY ? 1 : 2;
}

static enum pool_worker_state pool_state_of(int code)
{
	return code == 0 ? PW_STARTING : code == 1 ? PW_READY : PW_DRAINING;
}

void pool_describe(const struct pool *p, struct handover *st)
{
	for (const struct pool_worker *w = p->workers; w && st->n_workers < HANDOVER_MAX_WORKERS; w = w->next) {
		struct handover_worker *u = &st->workers[st->n_workers++];
		u->pid = w->pid;
		u->generation = w->generation;
		u->index = w->index;
		u->slot = w->slot;
		u->chan_fd = w->chan.fd;
		u->chan_version = w->chan.peer_version;
		u->state = pool_state_code(w->state);
		u->drain_deadline_ms = w->drain_deadline_ms;
		u->handoff_to = w->handoff_to;
	}
}

int pool_adopt(struct pool *p, const struct handover *st, bool own_board)
{
	for (size_t i = 0; i < st->n_workers; i++) {
		struct pool_worker *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		const struct handover_worker *u = &st->workers[i];
		w->pool = p;
		w->pid = u->pid;
		w->generation = u->generation;
		w->index = u->index;
		w->slot = own_board ? -1 : u->slot;
		chan_out_init(&w->chan, u->chan_fd, u->chan_version);
		w->state = pool_state_of(u->state);
		w->drain_deadline_ms = u->drain_deadline_ms;
		w->handoff_to = u->handoff_to;
		w->started_ms = loop_clock_ms() - POOL_QUICK_DEATH_MS;
		w->next = p->workers;
		p->workers = w;
		if (pool_watch(p, w) < 0)
			log_warning("cannot watch adopted worker pid %d", (int)w->pid);
		/* A DRAIN the old image still held for a full channel did not
		 * cross the execve: say it again (a worker already draining
		 * keeps the earlier of two deadlines, so a repeat changes
		 * nothing). */
		if (w->state == PW_DRAINING && w->drain_deadline_ms)
			pool_send_drain(p, w);
	}
	return 0;
}
