/* supervisor: the parent process. It holds the listeners, the config and
 * the scoreboard, forks and reaps the workers, reloads and upgrades them
 * without closing a listener, and talks to systemd. It never accepts a
 * client. Everything it reacts to arrives through one loop: a signalfd,
 * the workers' control sockets, the control socket and timers. */
#include "supervisor/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/chan.h"
#include "supervisor/admin.h"
#include "supervisor/listeners.h"
#include "core/log.h"
#include "core/loop.h"
#include "supervisor/notify.h"
#include "core/scoreboard.h"
#include "supervisor/upgrade.h"
#include "worker/worker.h"

#define SUP_TICK_MS 250             /* hung detection, drain deadlines, STATUS= */
#define SUP_QUICK_DEATH_MS 10000    /* a worker dying sooner than this after start backs off */
#define SUP_BACKOFF_FIRST_MS 100
#define SUP_BACKOFF_MAX_MS 30000
#define SUP_ABORT_GRACE_MS 2000     /* SIGABRT, then SIGKILL this much later */
#define SUP_DRAIN_GRACE_MS 1000     /* past a drain deadline, SIGKILL */
#define SUP_FAST_STOP_MS 5000       /* SIGQUIT: workers get this long to close */
#define SUP_RELOAD_TIMEOUT_MS 60000 /* a new generation not ready by then: reload failed */
#define SUP_UPGRADE_CHECK_MS 10000  /* "drover -t" of the new binary must answer by then */

/* A worker's state has one encoding, the scoreboard's (and its names). */
enum sup_worker_state { SW_STARTING = SLOT_STARTING, SW_READY = SLOT_READY, SW_DRAINING = SLOT_DRAINING };

struct sup_worker {
	struct sup_worker *next;
	pid_t pid;
	uint32_t generation;
	uint32_t index;
	int slot;
	int chan_fd;
	enum sup_worker_state state;
	bool wants_recycle;     /* sent RECYCLE_ME: start a replacement, then drain it */
	pid_t replaces;         /* drain this pid once we are READY (max_requests) */
	uint64_t started_ms;
	uint64_t drain_deadline_ms;
	uint64_t abort_sent_ms; /* hung: SIGABRT sent at */
	bool killed;            /* we sent SIGKILL; say so when reaped */
};

struct sup_respawn {
	uint64_t delay_ms;
	uint64_t not_before_ms;
	bool pending;
};

enum sup_wait { WAIT_NONE, WAIT_RELOAD, WAIT_UPGRADE };

struct sup_client {
	struct sup_client *next;
	int fd;
	char buf[ADMIN_LINE_MAX];
	size_t len;
	enum sup_wait waiting;
	uint64_t reload_seq;
};

struct sup_retired {
	struct listener l;
	uint32_t until_generation; /* close once no worker of a generation <= this is left */
};

struct supervisor {
	struct config *cfg;
	char exe[PATH_MAX];
	char *const *argv;
	struct loop *loop;
	int signal_fd;
	struct scoreboard *sb;
	int sb_fd;
	struct listener listeners[CONFIG_MAX_LISTENERS];
	size_t n_listeners;
	struct sup_retired retired[CONFIG_MAX_LISTENERS * 4];
	size_t n_retired;
	struct worker_listener wl[CONFIG_MAX_LISTENERS];
	uint32_t generation;
	struct sup_worker *workers;
	struct sup_respawn respawn[SCOREBOARD_SLOTS];
	bool announced;          /* the current generation was READY once */
	bool serving;            /* READY=1 was sent once: new workers START at once */
	bool reloading;
	bool reload_pending;
	bool upgrading;
	uint64_t reload_started_ms;
	uint64_t reload_seq_started;
	uint64_t reload_seq_done;
	char reload_result[512];
	/* What serves while a reload or upgrade starts its generation, to go
	 * back to if the new one never becomes ready. */
	struct config *prev_cfg;            /* NULL after an upgrade: same config */
	uint32_t prev_generation;
	struct listener prev_listeners[CONFIG_MAX_LISTENERS];
	size_t prev_n_listeners;
	size_t prev_n_retired;
	bool stopping;
	bool fast;
	bool exit_now;
	int exit_status;
	uint64_t stop_deadline_ms;
	uint64_t last_watchdog_ms;
	struct loop_timer tick;
	struct loop_timer respawn_timer;
	struct loop_timer stop_timer;
	int ctl_fd;
	char ctl_path[108];
	bool ctl_owned; /* we created the socket file */
	struct sup_client *clients;
	int upgrade_client_fd; /* inherited droverctl waiting for our READY */
};

static struct supervisor sup;

/* ------------------------------------------------------------ helpers */

/* A worker's scoreboard slot; NULL for a worker adopted from an image
 * whose scoreboard could not be attached (then it is not watched). */
static struct scoreboard_slot *sup_slot(const struct sup_worker *w)
{
	return w->slot >= 0 && w->slot < SCOREBOARD_SLOTS ? &sup.sb->slots[w->slot] : NULL;
}

static size_t sup_count(uint32_t generation, int state, bool older)
{
	size_t n = 0;
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		if (older ? w->generation >= generation : w->generation != generation)
			continue;
		if (state >= 0 && (int)w->state != state)
			continue;
		n++;
	}
	return n;
}

static size_t sup_count_all(void)
{
	size_t n = 0;
	for (struct sup_worker *w = sup.workers; w; w = w->next)
		n++;
	return n;
}

static uint64_t sup_connections(void)
{
	uint64_t n = 0;
	for (struct sup_worker *w = sup.workers; w; w = w->next)
		if (sup_slot(w))
			n += sb_load(&sup_slot(w)->connections);
	return n;
}

static void sup_update_status(void)
{
	uint64_t now = loop_now_ms(sup.loop);
	if (sup.stopping) {
		uint64_t left = sup.stop_deadline_ms > now ? sup.stop_deadline_ms - now : 0;
		notify_status("stopping: waiting for %zu worker(s) to drain, %llu connection(s) open, %llu.%llus left",
			      sup_count_all(),
			      (unsigned long long)sup_connections(), (unsigned long long)(left / 1000),
			      (unsigned long long)(left % 1000 / 100));
		return;
	}
	char extra[256] = "";
	size_t pos = 0;
	size_t old = sup_count(sup.generation, -1, true);
	if (old)
		pos += (size_t)snprintf(extra + pos, sizeof(extra) - pos, "; %zu old worker(s) draining", old);
	for (unsigned i = 0; i < sup.cfg->server.workers && pos < sizeof(extra) - 48; i++) {
		if (sup.respawn[i].pending && sup.respawn[i].delay_ms) {
			uint64_t wait = sup.respawn[i].not_before_ms > now ? sup.respawn[i].not_before_ms - now : 0;
			pos += (size_t)snprintf(extra + pos, sizeof(extra) - pos,
						"; worker %u backing off %llums", i, (unsigned long long)wait);
		}
	}
	if (sup.reload_result[0] && strncmp(sup.reload_result, "failed", 6) == 0 &&
	    pos < sizeof(extra) - 32)
		snprintf(extra + pos, sizeof(extra) - pos, "; last reload %.200s", sup.reload_result);
	notify_status("%s: generation %u, %zu/%u workers ready, %llu connection(s)%s",
		      sup.reloading ? "reloading" : "serving", sup.generation,
		      sup_count(sup.generation, SW_READY, false), sup.cfg->server.workers,
		      (unsigned long long)sup_connections(), extra);
}

/* Close every fd the new worker must not hold: other workers' control
 * sockets (or their EOF would never come), the supervisor's loop, signalfd
 * and control socket, listeners of other generations. */
static void sup_child_close_fds(const int *keep, size_t n_keep)
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

static void sup_worker_control(struct loop *loop, int fd, unsigned events, void *arg);
static uint64_t sup_worker_stop_deadline(void);

static struct sup_worker *sup_fork(uint32_t index, pid_t replaces)
{
	int sv[2];
	int r = chan_pair(sv);
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot create a control channel");
		return NULL;
	}
	int slot = scoreboard_slot_alloc(sup.sb, sup.generation, index);
	if (slot < 0) {
		log_error("scoreboard full: too many workers alive at once");
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	struct sup_worker *w = calloc(1, sizeof(*w));
	if (!w) {
		scoreboard_slot_free(sup.sb, slot);
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_errno(LOG_ERR, -errno, "fork failed");
		scoreboard_slot_free(sup.sb, slot);
		close(sv[0]);
		close(sv[1]);
		free(w);
		return NULL;
	}
	if (pid == 0) {
		int keep[CONFIG_MAX_LISTENERS + 1];
		size_t n_keep = 0;
		keep[n_keep++] = sv[1];
		for (size_t i = 0; i < sup.n_listeners; i++)
			keep[n_keep++] = sup.wl[i].fd;
		sup_child_close_fds(keep, n_keep);
		struct worker_params p = {
			.cfg = sup.cfg,
			.sb = sup.sb,
			.slot = slot,
			.generation = sup.generation,
			.index = index,
			.chan_fd = sv[1],
			.listeners = sup.wl,
			.n_listeners = sup.n_listeners,
		};
		worker_main(&p);
	}
	close(sv[1]);
	__atomic_store_n(&sup.sb->slots[slot].pid, (int32_t)pid, __ATOMIC_RELAXED);
	w->pid = pid;
	w->generation = sup.generation;
	w->index = index;
	w->slot = slot;
	w->chan_fd = sv[0];
	w->state = SW_STARTING;
	w->replaces = replaces;
	w->started_ms = loop_clock_ms();
	w->next = sup.workers;
	sup.workers = w;
	r = loop_add_fd(sup.loop, sv[0], LOOP_READ, sup_worker_control, w);
	if (r < 0)
		log_errno(LOG_ERR, r, "cannot watch worker pid %d", (int)pid);
	log_info("started worker pid %d (generation %u, #%u)", (int)pid, sup.generation, index);
	return w;
}

static void sup_drain_worker(struct sup_worker *w, uint64_t deadline_ms)
{
	if (w->state == SW_DRAINING && w->drain_deadline_ms <= deadline_ms)
		return;
	w->state = SW_DRAINING;
	w->drain_deadline_ms = deadline_ms;
	int r = chan_send(w->chan_fd, CHAN_DRAIN, deadline_ms);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		log_errno(LOG_WARNING, r, "cannot send DRAIN to worker pid %d", (int)w->pid);
}

static void sup_arm_respawn_timer(void)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
		if (sup.respawn[i].pending && sup.respawn[i].not_before_ms < next)
			next = sup.respawn[i].not_before_ms;
	if (next == UINT64_MAX)
		loop_timer_cancel(sup.loop, &sup.respawn_timer);
	else
		loop_timer_arm_at(sup.loop, &sup.respawn_timer, next);
}

/* Start the workers the current generation is missing, and the replacement
 * of a worker that asked to be recycled. A slot that needs nothing has no
 * pending respawn (or its timer would fire forever). */
static void sup_fill(void)
{
	if (sup.stopping)
		return;
	uint64_t now = loop_clock_ms();
	for (uint32_t i = 0; i < sup.cfg->server.workers; i++) {
		struct sup_worker *holder = NULL;
		bool replacement = false;
		for (struct sup_worker *w = sup.workers; w; w = w->next) {
			if (w->generation != sup.generation || w->index != i || w->state == SW_DRAINING)
				continue;
			if (w->replaces)
				replacement = true;
			else
				holder = w;
		}
		struct sup_respawn *rs = &sup.respawn[i];
		bool want = !replacement && (!holder || holder->wants_recycle);
		if (!want) {
			rs->pending = false;
			continue;
		}
		if (rs->pending && rs->not_before_ms > now)
			continue;
		rs->pending = false;
		if (!sup_fork(i, holder ? holder->pid : 0)) {
			/* fork or fd trouble: try again later instead of spinning. */
			rs->pending = true;
			rs->delay_ms = rs->delay_ms ? rs->delay_ms : SUP_BACKOFF_FIRST_MS;
			rs->not_before_ms = now + rs->delay_ms;
		}
	}
	sup_arm_respawn_timer();
}

static void sup_respawn_due(struct loop *loop, struct loop_timer *t, void *arg)
{
	sup_fill();
	sup_update_status();
}

/* ------------------------------------------------------- control socket */

static void sup_client_close(struct sup_client *c)
{
	struct sup_client **pp = &sup.clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	loop_del_fd(sup.loop, c->fd);
	close(c->fd);
	free(c);
}

static void sup_reply_fd(int fd, const char *text)
{
	size_t len = strlen(text), off = 0;
	/* Replies are small; a client that does not read them loses them. */
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static void sup_reply(struct sup_client *c, const char *text)
{
	sup_reply_fd(c->fd, text);
	sup_client_close(c);
}

static void sup_answer_reloads(bool ok, const char *text)
{
	char line[640];
	snprintf(line, sizeof(line), "%s %s\n", ok ? "OK" : "ERR", text);
	struct sup_client *c = sup.clients;
	while (c) {
		struct sup_client *next = c->next;
		if (c->waiting == WAIT_RELOAD && c->reload_seq <= sup.reload_seq_done)
			sup_reply(c, line);
		else if (c->waiting == WAIT_UPGRADE && !sup.upgrading)
			sup_reply(c, line);
		c = next;
	}
	if (sup.upgrade_client_fd >= 0) {
		sup_reply_fd(sup.upgrade_client_fd, line);
		close(sup.upgrade_client_fd);
		sup.upgrade_client_fd = -1;
	}
}

static void sup_status_text(char *out, size_t out_len)
{
	uint64_t now = loop_clock_ms();
	size_t pos = 0;
#define SUP_PUT(...)                                                                              \
	do {                                                                                      \
		if (pos < out_len)                                                                \
			pos += (size_t)snprintf(out + pos, out_len - pos, __VA_ARGS__);           \
	} while (0)
	SUP_PUT("supervisor pid %d, generation %u, uptime %llus, %s\n", (int)getpid(), sup.generation,
		(unsigned long long)((now - sup.sb->hdr.started_ms) / 1000),
		sup.stopping ? "stopping" : sup.reloading ? "reloading" : "serving");
	SUP_PUT("config %s\n", sup.cfg->path);
	SUP_PUT("last reload: %s\n", sup.reload_result[0] ? sup.reload_result : "none");
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		static const struct scoreboard_slot unknown;
		const struct scoreboard_slot *s = sup_slot(w) ? sup_slot(w) : &unknown;
		uint64_t hb = s == &unknown ? now : sb_load(&s->heartbeat_ms);
		SUP_PUT("worker pid %d generation %u #%u %s connections %llu requests %llu heartbeat %llums",
			(int)w->pid, w->generation, w->index,
			scoreboard_state_name(w->state),
			(unsigned long long)sb_load(&s->connections), (unsigned long long)sb_load(&s->requests),
			(unsigned long long)(now > hb ? now - hb : 0));
		if (w->state == SW_DRAINING)
			SUP_PUT(" drain-left %llums",
				(unsigned long long)(w->drain_deadline_ms > now ? w->drain_deadline_ms - now : 0));
		SUP_PUT("\n");
	}
	for (unsigned i = 0; i < sup.cfg->server.workers; i++)
		if (sup.respawn[i].pending)
			SUP_PUT("worker #%u backing off, next start in %llums\n", i,
				(unsigned long long)(sup.respawn[i].not_before_ms > now ? sup.respawn[i].not_before_ms - now : 0));
	SUP_PUT("OK\n");
#undef SUP_PUT
}

static void sup_reload(void);
static void sup_upgrade(struct sup_client *c);
static void sup_stop(bool fast);
static void sup_reopen_logs(void);

static void sup_client_command(struct sup_client *c, const char *cmd)
{
	if (strcmp(cmd, "status") == 0) {
		char text[16384];
		sup_status_text(text, sizeof(text));
		sup_reply(c, text);
	} else if (strcmp(cmd, "reload") == 0) {
		if (sup.stopping) {
			sup_reply(c, "ERR stopping\n");
			return;
		}
		c->waiting = WAIT_RELOAD;
		c->reload_seq = sup.reloading ? sup.reload_seq_started + 1 : sup.reload_seq_started + 1;
		if (sup.reloading || sup.upgrading)
			sup.reload_pending = true;
		else
			sup_reload();
	} else if (strcmp(cmd, "upgrade") == 0) {
		sup_upgrade(c);
	} else if (strcmp(cmd, "reopen-logs") == 0) {
		sup_reopen_logs();
		sup_reply(c, "OK logs reopened\n");
	} else if (strcmp(cmd, "stop") == 0) {
		sup_reply(c, "OK stopping\n");
		sup_stop(false);
	} else {
		char line[ADMIN_LINE_MAX + 64];
		snprintf(line, sizeof(line), "ERR unknown command '%s'\n", cmd);
		sup_reply(c, line);
	}
}

static void sup_client_read(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct sup_client *c = arg;
	if (c->waiting != WAIT_NONE) {
		char sink[64];
		ssize_t n = read(fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			sup_client_close(c); /* gave up waiting; the operation goes on */
		return;
	}
	ssize_t n = read(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sup_client_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	char *nl = strchr(c->buf, '\n');
	if (!nl) {
		if (c->len == sizeof(c->buf) - 1)
			sup_reply(c, "ERR command too long\n");
		return;
	}
	*nl = '\0';
	if (nl > c->buf && nl[-1] == '\r')
		nl[-1] = '\0';
	sup_client_command(c, c->buf);
}

static void sup_ctl_accept(struct loop *loop, int fd, unsigned events, void *arg)
{
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		struct sup_client *c = calloc(1, sizeof(*c));
		if (!c || loop_add_fd(loop, cfd, LOOP_READ, sup_client_read, c) < 0) {
			free(c);
			close(cfd);
			continue;
		}
		c->fd = cfd;
		c->next = sup.clients;
		sup.clients = c;
	}
}

/* ------------------------------------------------------------ lifecycle */

static void sup_generation_ready(void)
{
	if (sup.announced || sup.stopping)
		return;
	if (sup_count(sup.generation, SW_READY, false) < sup.cfg->server.workers)
		return;
	sup.announced = true;
	/* Only now does the old generation stop accepting: the new one is
	 * already taking connections from the same queues. */
	uint64_t deadline = loop_now_ms(sup.loop) + sup.cfg->server.shutdown_timeout_ms;
	size_t drained = 0;
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		if (w->generation < sup.generation && w->state != SW_DRAINING) {
			sup_drain_worker(w, deadline);
			drained++;
		}
	}
	log_info("ready: generation %u, %u workers%s", sup.generation, sup.cfg->server.workers,
		 drained ? ", draining the previous generation" : "");
	char status[256];
	snprintf(status, sizeof(status), "serving: generation %u, %u workers", sup.generation,
		 sup.cfg->server.workers);
	notify_ready(status);
	if (!sup.serving) {
		/* First start: workers accept only now, after READY=1. */
		sup.serving = true;
		for (struct sup_worker *w = sup.workers; w; w = w->next)
			if (w->generation == sup.generation && w->state == SW_READY)
				chan_send(w->chan_fd, CHAN_START, 0);
	}
	if (sup.reloading || sup.upgrading) {
		bool was_upgrade = sup.upgrading;
		sup.reloading = false;
		sup.upgrading = false;
		sup.reload_seq_done = sup.reload_seq_started;
		config_free(sup.prev_cfg);
		sup.prev_cfg = NULL;
		snprintf(sup.reload_result, sizeof(sup.reload_result), "ok: generation %u serving (%s)",
			 sup.generation, was_upgrade ? "binary upgrade" : "reload");
		sup_answer_reloads(true, sup.reload_result);
		if (sup.reload_pending) {
			sup.reload_pending = false;
			sup_reload();
		}
	}
}

static void sup_close_retired(void)
{
	size_t j = 0;
	for (size_t i = 0; i < sup.n_retired; i++) {
		if (sup_count(sup.retired[i].until_generation + 1, -1, true) == 0) {
			log_info("closing listener '%s' (%s): removed by reload", sup.retired[i].l.name,
				 sup.retired[i].l.address[0] ? sup.retired[i].l.address : "systemd");
			listen_close(&sup.retired[i].l);
		} else {
			sup.retired[j++] = sup.retired[i];
		}
	}
	sup.n_retired = j;
}

static void sup_finish_stop(void)
{
	loop_stop(sup.loop);
	sup.exit_now = true;
}

static void sup_reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		struct sup_worker **pp = &sup.workers, *w = NULL;
		while (*pp && (*pp)->pid != pid)
			pp = &(*pp)->next;
		if (!*pp)
			continue; /* not a worker (e.g. the upgrade check) */
		w = *pp;
		*pp = w->next;
		uint64_t now = loop_clock_ms();
		bool expected = w->state == SW_DRAINING || sup.stopping;
		char how[96];
		if (WIFEXITED(status))
			snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof(how), "killed by signal %d (%s)%s", WTERMSIG(status),
				 strsignal(WTERMSIG(status)), w->killed ? ", by the supervisor" : "");
		bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		log_msg(expected && clean ? LOG_INFO : LOG_WARNING, "worker pid %d (generation %u, #%u) %s",
			(int)pid, w->generation, w->index, how);
		loop_del_fd(sup.loop, w->chan_fd);
		close(w->chan_fd);
		scoreboard_slot_free(sup.sb, w->slot);
		if (!expected && w->generation == sup.generation && w->index < SCOREBOARD_SLOTS) {
			struct sup_respawn *rs = &sup.respawn[w->index];
			if (now - w->started_ms < SUP_QUICK_DEATH_MS && !w->killed) {
				/* Dying right after start: back off instead of fork-looping. */
				rs->delay_ms = rs->delay_ms ? rs->delay_ms * 2 : SUP_BACKOFF_FIRST_MS;
				if (rs->delay_ms > SUP_BACKOFF_MAX_MS)
					rs->delay_ms = SUP_BACKOFF_MAX_MS;
				log_warning("worker #%u died %llums after start; next start in %llums", w->index,
					    (unsigned long long)(now - w->started_ms), (unsigned long long)rs->delay_ms);
			} else {
				rs->delay_ms = 0;
			}
			rs->pending = true;
			rs->not_before_ms = now + rs->delay_ms;
		}
		/* A replacement starting for it now simply takes its place. */
		for (struct sup_worker *o = sup.workers; o; o = o->next)
			if (o->replaces == w->pid)
				o->replaces = 0;
		free(w);
	}
	sup_close_retired();
	if (sup.stopping) {
		if (!sup.workers)
			sup_finish_stop();
		return;
	}
	sup_fill();
	sup_update_status();
}

static void sup_worker_control(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct sup_worker *w = arg;
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
			loop_del_fd(loop, fd);
			return;
		}
		switch (m.type) {
		case CHAN_READY:
			if (w->state == SW_STARTING)
				w->state = SW_READY;
			if (sup.stopping) {
				sup_drain_worker(w, sup_worker_stop_deadline());
				break;
			}
			if (w->replaces) {
				for (struct sup_worker *o = sup.workers; o; o = o->next)
					if (o->pid == w->replaces && o->state != SW_DRAINING)
						sup_drain_worker(o, loop_now_ms(loop) + sup.cfg->server.shutdown_timeout_ms);
				w->replaces = 0;
			}
			if (w->generation != sup.generation) {
				sup_drain_worker(w, loop_now_ms(loop) + sup.cfg->server.shutdown_timeout_ms);
				break;
			}
			if (sup.serving)
				chan_send(w->chan_fd, CHAN_START, 0);
			sup_generation_ready();
			sup_update_status();
			break;
		case CHAN_RECYCLE_ME:
			if (w->wants_recycle || w->state != SW_READY || sup.stopping)
				break;
			if (w->generation != sup.generation) {
				sup_drain_worker(w, loop_now_ms(loop) + sup.cfg->server.shutdown_timeout_ms);
				break;
			}
			/* sup_fill starts the replacement (and retries it, backing
			 * off, if it dies before READY); READY drains this one. */
			w->wants_recycle = true;
			log_info("worker pid %d reached max_requests; starting its replacement", (int)w->pid);
			sup_fill();
			break;
		case CHAN_DRAINING:
			w->state = SW_DRAINING;
			break;
		default:
			log_warning("unexpected %s from worker pid %d", chan_type_name(m.type), (int)w->pid);
			break;
		}
	}
}

/* Workers are told to be done a little before shutdown_timeout, so that one
 * finishing at its own deadline exits cleanly instead of racing our SIGKILL. */
static uint64_t sup_worker_stop_deadline(void)
{
	uint64_t margin = sup.cfg->server.shutdown_timeout_ms / 10;
	if (margin > 500)
		margin = 500;
	return sup.stop_deadline_ms - margin;
}

static void sup_stop_deadline(struct loop *loop, struct loop_timer *t, void *arg)
{
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		log_warning("worker pid %d (generation %u) still running at shutdown_timeout: killed",
			    (int)w->pid, w->generation);
		w->killed = true;
		kill(w->pid, SIGKILL);
	}
}

static void sup_close_listeners(void)
{
	for (size_t i = 0; i < sup.n_listeners; i++)
		listen_close(&sup.listeners[i]);
	for (size_t i = 0; i < sup.n_retired; i++)
		listen_close(&sup.retired[i].l);
	sup.n_retired = 0;
}

static void sup_stop(bool fast)
{
	if (sup.stopping && (sup.fast || !fast))
		return;
	bool first = !sup.stopping;
	sup.stopping = true;
	sup.fast = fast;
	uint64_t now = loop_now_ms(sup.loop);
	uint64_t timeout = fast ? SUP_FAST_STOP_MS : sup.cfg->server.shutdown_timeout_ms;
	if (fast && timeout > sup.cfg->server.shutdown_timeout_ms)
		timeout = sup.cfg->server.shutdown_timeout_ms;
	if (first || now + timeout < sup.stop_deadline_ms)
		sup.stop_deadline_ms = now + timeout;
	if (first) {
		char status[160];
		snprintf(status, sizeof(status), "stopping: draining %zu worker(s)", sup_count_all());
		notify_stopping(status);
		log_notice("%s stop: closing listeners, %s %zu worker(s)", fast ? "fast" : "graceful",
			   fast ? "stopping" : "draining", sup_count_all());
		/* The seed's order: no new connections first. systemd (or the
		 * kernel, for sockets only we held) refuses or queues them. */
		sup_close_listeners();
		sup.reload_seq_done = sup.reload_seq_started = sup.reload_seq_started + 1;
		sup.upgrading = sup.reloading = false;
		sup_answer_reloads(false, "drover is stopping");
		for (unsigned i = 0; i < SCOREBOARD_SLOTS; i++)
			sup.respawn[i].pending = false;
		loop_timer_cancel(sup.loop, &sup.respawn_timer);
	}
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		if (fast)
			chan_send(w->chan_fd, CHAN_STOP, 0);
		else
			sup_drain_worker(w, sup_worker_stop_deadline());
	}
	loop_timer_arm_at(sup.loop, &sup.stop_timer, sup.stop_deadline_ms);
	if (!sup.workers)
		sup_finish_stop();
	sup_update_status();
}

static void sup_reopen_logs(void)
{
	log_info("reopening log files");
	for (struct sup_worker *w = sup.workers; w; w = w->next)
		chan_send(w->chan_fd, CHAN_REOPEN_LOGS, 0);
}

/* user/group must exist, and without root we must already be them. */
static int sup_check_identity(const struct config *cfg, char *err, size_t err_len)
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

static void sup_build_worker_listeners(void)
{
	for (size_t i = 0; i < sup.n_listeners; i++) {
		const struct config_listener *cl = config_find_listener(sup.cfg, sup.listeners[i].name);
		struct worker_listener *wl = &sup.wl[i];
		wl->fd = sup.listeners[i].fd;
		snprintf(wl->name, sizeof(wl->name), "%s", sup.listeners[i].name);
		wl->proto = cl ? proto_find(cl->protocol) : proto_table()[0];
		wl->status = cl ? cl->status : false;
	}
}

static void sup_retire_listener(const struct listener *l, uint32_t until_generation);

/* Open every configured listener, reusing what we hold. On failure nothing
 * changes: the old set is restored. */
static int sup_open_listeners(const struct config *cfg, struct listen_pool *pool, char *err, size_t err_len)
{
	struct listener fresh[CONFIG_MAX_LISTENERS];
	struct listener old[CONFIG_MAX_LISTENERS];
	size_t n_old = sup.n_listeners;
	memcpy(old, sup.listeners, sizeof(old[0]) * n_old);
	size_t n = 0;
	int r = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		r = listen_open(&cfg->listeners[i], old, n_old, pool, cfg->n_listeners == 1, &fresh[n], err, err_len);
		if (r < 0)
			break;
		n++;
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++) {
			bool reused = false;
			for (size_t j = 0; j < n_old && !reused; j++)
				reused = fresh[i].fd == sup.listeners[j].fd;
			if (!reused)
				listen_close(&fresh[i]);
		}
		return r;
	}
	/* Listeners the new config dropped are closed once nobody uses them. */
	for (size_t j = 0; j < n_old; j++)
		if (old[j].fd >= 0)
			sup_retire_listener(&old[j], sup.generation);
	memcpy(sup.listeners, fresh, sizeof(fresh[0]) * n);
	sup.n_listeners = n;
	return 0;
}

/* Keep a listener nobody configures any more until the generations that
 * may still accept on it are gone; systemd's fd store lets go of it now,
 * or the next start would get it back. */
static void sup_retire_listener(const struct listener *l, uint32_t until_generation)
{
	if (!l->from_systemd)
		notify_fdstore_remove(l->name);
	if (sup.n_retired < sizeof(sup.retired) / sizeof(sup.retired[0])) {
		sup.retired[sup.n_retired].l = *l;
		sup.retired[sup.n_retired].until_generation = until_generation;
		sup.n_retired++;
	} else {
		struct listener copy = *l;
		listen_close(&copy);
	}
}

static void sup_push_fdstore(void)
{
	int fds[CONFIG_MAX_LISTENERS];
	const char *names[CONFIG_MAX_LISTENERS];
	unsigned n = 0;
	for (size_t i = 0; i < sup.n_listeners; i++) {
		if (sup.listeners[i].from_systemd)
			continue;
		fds[n] = sup.listeners[i].fd;
		names[n] = sup.listeners[i].name;
		n++;
	}
	/* With FileDescriptorStoreMax= systemd keeps them across a restart and
	 * passes them back in LISTEN_FDS; without it, it drops them. */
	if (n)
		notify_fdstore(fds, names, n);
}

/* Enforce max_generations: the oldest draining generation goes first. */
static void sup_cap_generations(void)
{
	for (;;) {
		uint32_t oldest = UINT32_MAX;
		size_t gens = 0;
		uint32_t seen[64];
		for (struct sup_worker *w = sup.workers; w; w = w->next) {
			bool dup = false;
			for (size_t i = 0; i < gens && !dup; i++)
				dup = seen[i] == w->generation;
			if (!dup && gens < 64)
				seen[gens++] = w->generation;
			if (w->generation < oldest)
				oldest = w->generation;
		}
		bool has_current = false;
		for (size_t i = 0; i < gens; i++)
			has_current |= seen[i] == sup.generation;
		/* The generation about to start counts too. */
		if (gens + (has_current ? 0 : 1) <= sup.cfg->server.max_generations || oldest >= sup.generation)
			return;
		for (struct sup_worker *w = sup.workers; w; w = w->next) {
			if (w->generation == oldest && !w->killed) {
				log_warning("worker pid %d (generation %u): too many generations alive (max_generations = %u), killed",
					    (int)w->pid, w->generation, sup.cfg->server.max_generations);
				w->killed = true;
				kill(w->pid, SIGKILL);
			}
		}
		return; /* the rest happens when they are reaped */
	}
}

static void sup_reload_failed(const char *why)
{
	sup.reloading = false;
	sup.reload_seq_done = sup.reload_seq_started;
	snprintf(sup.reload_result, sizeof(sup.reload_result), "failed: %s", why);
	log_error("reload failed, still serving generation %u with the previous configuration: %s",
		  sup.generation, why);
	notify_status("serving: generation %u; reload failed: %.300s", sup.generation, why);
	sup_answer_reloads(false, sup.reload_result);
	if (sup.reload_pending) {
		sup.reload_pending = false;
		sup_reload();
	}
}

/* Remember what serves now (see prev_* in struct supervisor). */
static void sup_snapshot(void)
{
	config_free(sup.prev_cfg);
	sup.prev_cfg = NULL;
	sup.prev_generation = sup.generation;
	memcpy(sup.prev_listeners, sup.listeners, sizeof(sup.listeners[0]) * sup.n_listeners);
	sup.prev_n_listeners = sup.n_listeners;
	sup.prev_n_retired = sup.n_retired;
}

/* The new generation never became ready: the one that still serves is
 * current again, with its config and listeners; the new one drains. */
static void sup_rollback(void)
{
	uint64_t now = loop_now_ms(sup.loop);
	uint32_t failed = sup.generation;
	for (struct sup_worker *w = sup.workers; w; w = w->next)
		if (w->generation == failed)
			sup_drain_worker(w, now + 1000);
	/* Listeners this attempt retired serve again; ones it opened go. */
	struct listener opened[CONFIG_MAX_LISTENERS];
	size_t n_opened = 0;
	for (size_t i = 0; i < sup.n_listeners; i++) {
		bool old = false;
		for (size_t j = 0; j < sup.prev_n_listeners && !old; j++)
			old = sup.prev_listeners[j].fd == sup.listeners[i].fd;
		if (!old)
			opened[n_opened++] = sup.listeners[i];
	}
	sup.n_retired = sup.prev_n_retired;
	memcpy(sup.listeners, sup.prev_listeners, sizeof(sup.listeners[0]) * sup.prev_n_listeners);
	sup.n_listeners = sup.prev_n_listeners;
	for (size_t i = 0; i < n_opened; i++)
		sup_retire_listener(&opened[i], failed);
	if (sup.prev_cfg) {
		config_free(sup.cfg);
		sup.cfg = sup.prev_cfg;
		sup.prev_cfg = NULL;
		log_set_level(sup.cfg->server.log_level);
	}
	sup.generation = sup.prev_generation;
	sup.sb->hdr.generation = sup.generation;
	sup.announced = true;
	memset(sup.respawn, 0, sizeof(sup.respawn));
	sup_build_worker_listeners();
	sup_push_fdstore();
	log_warning("generation %u did not become ready; generation %u serves on", failed, sup.generation);
	sup_fill(); /* the generation that serves may have lost workers meanwhile */
}

static void sup_reload(void)
{
	if (sup.stopping)
		return;
	sup.reload_seq_started++;
	log_notice("reloading %s", sup.cfg->path);
	char err[4096] = "";
	struct config *cfg = NULL;
	int r = config_load(sup.cfg->path, &cfg, err, sizeof(err));
	if (r < 0) {
		/* Each problem already names file:line; log them all. */
		char *save = NULL;
		for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_error("%s", line);
		char first[600];
		snprintf(first, sizeof(first), "%.599s", err);
		sup.reloading = true;
		sup_reload_failed(first);
		return;
	}
	sup_snapshot();
	r = sup_check_identity(cfg, err, sizeof(err));
	if (r >= 0)
		r = sup_open_listeners(cfg, NULL, err, sizeof(err));
	if (r < 0) {
		config_free(cfg);
		sup.reloading = true;
		sup_reload_failed(err);
		return;
	}
	notify_reloading("reloading: starting a new generation");
	log_set_level(cfg->server.log_level);
	sup.prev_cfg = sup.cfg;
	sup.cfg = cfg;
	sup.reloading = true;
	sup.reload_started_ms = loop_now_ms(sup.loop);
	sup.generation++;
	sup.sb->hdr.generation = sup.generation;
	sup.sb->hdr.reloads++;
	sup.announced = false;
	memset(sup.respawn, 0, sizeof(sup.respawn));
	sup_build_worker_listeners();
	sup_push_fdstore();
	sup_cap_generations();
	sup_fill();
	sup_update_status();
}

/* Run the new binary with -t on the current config; 0 or -errno with why. */
static int sup_upgrade_check(char *err, size_t err_len)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(sup.exe, sup.exe, "-t", "-c", sup.cfg->path, (char *)NULL);
		dprintf(2, "cannot execute %s: %s\n", sup.exe, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	/* The loop waits meanwhile (a config check takes milliseconds); a new
	 * binary that hangs is killed rather than freezing the supervisor. */
	uint64_t deadline = loop_clock_ms() + SUP_UPGRADE_CHECK_MS;
	size_t len = 0;
	char buf[2048];
	bool timed_out = false;
	for (;;) {
		uint64_t now = loop_clock_ms();
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };
		int pr = poll(&pf, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	close(pfd[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(err, err_len, "%.1000s -t did not finish within %d s", sup.exe, SUP_UPGRADE_CHECK_MS / 1000);
		return -ETIMEDOUT;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(err, err_len, "%.1000s -t failed: %.1000s", sup.exe, buf[0] ? buf : "no output");
	return -EINVAL;
}

static void sup_upgrade(struct sup_client *c)
{
	char err[2300];
	if (sup.stopping || sup.reloading || sup.upgrading) {
		const char *why = sup.stopping ? "drover is stopping" : "a reload or upgrade is in progress";
		log_warning("binary upgrade refused: %s", why);
		if (c) {
			snprintf(err, sizeof(err), "ERR upgrade refused: %s\n", why);
			sup_reply(c, err);
		}
		return;
	}
	log_notice("binary upgrade: checking %s", sup.exe);
	int r = sup_upgrade_check(err, sizeof(err));
	if (r < 0) {
		log_error("binary upgrade aborted, still running the old binary: %s", err);
		snprintf(sup.reload_result, sizeof(sup.reload_result), "failed: upgrade: %.480s", err);
		notify_status("serving: generation %u; binary upgrade failed", sup.generation);
		if (c) {
			char line[2400];
			snprintf(line, sizeof(line), "ERR upgrade failed: %s\n", err);
			sup_reply(c, line);
		}
		return;
	}
	static struct upgrade_state st;
	memset(&st, 0, sizeof(st));
	st.generation = sup.generation;
	st.scoreboard_fd = sup.sb_fd;
	st.ctl_fd = sup.ctl_fd;
	st.client_fd = c ? c->fd : -1;
	if (sup.n_listeners + sup.n_retired > sizeof(st.listeners) / sizeof(st.listeners[0])) {
		log_error("binary upgrade refused: too many listeners to hand over");
		if (c)
			sup_reply(c, "ERR upgrade refused: too many listeners to hand over\n");
		return;
	}
	for (size_t i = 0; i < sup.n_listeners + sup.n_retired; i++) {
		const struct listener *l = i < sup.n_listeners ? &sup.listeners[i] : &sup.retired[i - sup.n_listeners].l;
		struct upgrade_listener *u = &st.listeners[st.n_listeners++];
		u->fd = l->fd;
		snprintf(u->name, sizeof(u->name), "%s", l->name);
		snprintf(u->address, sizeof(u->address), "%s", l->address);
		u->from_systemd = l->from_systemd;
		u->unix_bound = l->unix_bound;
	}
	for (struct sup_worker *w = sup.workers; w && st.n_workers < UPGRADE_MAX_WORKERS; w = w->next) {
		struct upgrade_worker *u = &st.workers[st.n_workers++];
		u->pid = w->pid;
		u->generation = w->generation;
		u->index = w->index;
		u->slot = w->slot;
		u->chan_fd = w->chan_fd;
		u->state = (int)w->state;
		u->drain_deadline_ms = w->drain_deadline_ms;
	}
	static char env_entry[65536];
	r = upgrade_encode(&st, env_entry, sizeof(env_entry));
	if (r < 0) {
		log_error("binary upgrade aborted: too much state to hand over");
		if (c)
			sup_reply(c, "ERR upgrade failed: too much state to hand over\n");
		return;
	}
	extern char **environ;
	size_t n_env = 0;
	while (environ[n_env])
		n_env++;
	char **envp = calloc(n_env + 2, sizeof(*envp));
	if (!envp) {
		if (c)
			sup_reply(c, "ERR upgrade failed: out of memory\n");
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=", sizeof(UPGRADE_ENV)) != 0 &&
		    strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[k++] = environ[i];
	envp[k++] = env_entry;
	envp[k] = NULL;
	notify_reloading("binary upgrade: starting the new binary");
	log_notice("binary upgrade: executing %s (generation %u and its listeners are handed over)", sup.exe,
		   sup.generation);
	upgrade_set_inherit(&st, true);
	execve(sup.exe, sup.argv, envp);
	r = -errno;
	upgrade_set_inherit(&st, false);
	free(envp);
	snprintf(err, sizeof(err), "execve(%.2000s): %.200s", sup.exe, strerror(-r));
	log_error("binary upgrade failed, the old binary keeps running: %s", err);
	snprintf(sup.reload_result, sizeof(sup.reload_result), "failed: upgrade: %.480s", err);
	notify_ready("serving: binary upgrade failed, old binary still running");
	if (c) {
		char line[2400];
		snprintf(line, sizeof(line), "ERR upgrade failed: %s\n", err);
		sup_reply(c, line);
	}
}

static struct upgrade_state sup_adopted; /* what the previous image handed over */

/* Adopt what the previous image handed over. */
static int sup_adopt(const char *value, struct listen_pool *pool)
{
	struct upgrade_state *stp = &sup_adopted;
#define st (*stp)
	int r = upgrade_decode(value, &st);
	if (r < 0) {
		log_error("cannot parse %s from the previous image", UPGRADE_ENV);
		return r;
	}
	upgrade_set_inherit(&st, false);
	bool own_board = false;
	r = scoreboard_attach(st.scoreboard_fd, &sup.sb);
	if (r < 0) {
		/* Another layout (an older or newer build): serve on with a fresh
		 * board; the adopted workers go unwatched until they are drained. */
		log_errno(LOG_WARNING, r, "cannot attach the previous scoreboard, starting a new one");
		close(st.scoreboard_fd);
		r = scoreboard_create(&sup.sb, &st.scoreboard_fd);
		if (r < 0)
			return log_errno(LOG_ERR, r, "cannot create the scoreboard");
		own_board = true;
	}
	sup.sb_fd = st.scoreboard_fd;
	sup.sb->hdr.supervisor_pid = getpid();
	sup.generation = st.generation;
	sup.ctl_fd = st.ctl_fd;
	sup.upgrade_client_fd = st.client_fd;
	for (size_t i = 0; i < st.n_listeners; i++)
		listen_pool_add(pool, st.listeners[i].fd, st.listeners[i].name);
	/* Remember how each came to be, so a unix socket we bound is still
	 * unlinked on stop. */
	for (size_t i = 0; i < st.n_workers; i++) {
		struct sup_worker *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		const struct upgrade_worker *u = &st.workers[i];
		w->pid = u->pid;
		w->generation = u->generation;
		w->index = u->index;
		w->slot = own_board ? -1 : u->slot;
		w->chan_fd = u->chan_fd;
		w->state = (enum sup_worker_state)u->state;
		w->drain_deadline_ms = u->drain_deadline_ms;
		w->started_ms = loop_clock_ms() - SUP_QUICK_DEATH_MS;
		w->next = sup.workers;
		sup.workers = w;
		if (loop_add_fd(sup.loop, w->chan_fd, LOOP_READ, sup_worker_control, w) < 0)
			log_warning("cannot watch adopted worker pid %d", (int)w->pid);
	}
	log_notice("binary upgrade: adopted generation %u (%zu worker(s), %zu listener(s))", st.generation,
		   st.n_workers, st.n_listeners);
	return 0;
#undef st
}

/* The handed-over description of fd, or NULL. */
static const struct upgrade_listener *sup_adopted_listener(int fd)
{
	for (size_t j = 0; j < sup_adopted.n_listeners; j++)
		if (sup_adopted.listeners[j].fd == fd)
			return &sup_adopted.listeners[j];
	return NULL;
}

/* After a binary upgrade: listeners come from what the previous image
 * handed over, never closed because of a problem here (the old workers
 * still serve on them). A listener the new config moved to another address
 * is bound anew; one that cannot be opened is skipped and logged; the old
 * ones nobody takes are retired, closed when the old generation is gone.
 * If nothing could be opened at all, the previous set is kept. */
static void sup_open_listeners_adopted(const struct config *cfg, struct listen_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++) {
		const struct upgrade_listener *u = sup_adopted_listener(pool->fds[i]);
		const struct config_listener *cl = config_find_listener(cfg, pool->names[i]);
		/* A socket systemd passed keeps its name whatever the address says. */
		if (u && cl && !u->from_systemd && strcmp(u->address, cl->address.text) != 0)
			pool->names[i][0] = '\0';
	}
	char err[512];
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener *l = &sup.listeners[n];
		if (listen_open(&cfg->listeners[i], NULL, 0, pool, false, l, err, sizeof(err)) < 0) {
			log_error("binary upgrade: %s; not serving it", err);
			continue;
		}
		const struct upgrade_listener *u = sup_adopted_listener(l->fd);
		if (u) {
			l->from_systemd = u->from_systemd;
			l->unix_bound = u->unix_bound;
		}
		n++;
	}
	sup.n_listeners = n;
	for (size_t i = 0; i < pool->n; i++) {
		if (pool->fds[i] < 0)
			continue;
		const struct upgrade_listener *u = sup_adopted_listener(pool->fds[i]);
		struct listener old = { .fd = pool->fds[i], .from_systemd = u ? u->from_systemd : true,
					.unix_bound = u ? u->unix_bound : false };
		snprintf(old.name, sizeof(old.name), "%s", u ? u->name : pool->names[i]);
		snprintf(old.address, sizeof(old.address), "%s", u ? u->address : "");
		pool->fds[i] = -1;
		if (sup.n_listeners == 0 && cfg->n_listeners > 0) {
			log_error("binary upgrade: no configured listener could be opened; keeping '%s'", old.name);
			sup.listeners[sup.n_listeners++] = old;
			continue;
		}
		sup_retire_listener(&old, sup_adopted.generation);
	}
}

/* ------------------------------------------------------------ the loop */

static void sup_signal(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			sup_reap();
			break;
		case SIGTERM:
		case SIGINT:
			sup_stop(false);
			break;
		case SIGQUIT:
			sup_stop(true);
			break;
		case SIGHUP:
			if (sup.stopping)
				break;
			if (sup.reloading || sup.upgrading) {
				/* Coalesced: one more reload after this one, not one per signal. */
				sup.reload_pending = true;
				break;
			}
			sup_reload();
			break;
		case SIGUSR1:
			sup_reopen_logs();
			break;
		case SIGUSR2:
			sup_upgrade(NULL);
			break;
		}
	}
	/* SIGCHLD can be coalesced with others; reaping is cheap and idempotent. */
	sup_reap();
}

static void sup_tick(struct loop *loop, struct loop_timer *t, void *arg)
{
	uint64_t now = loop_now_ms(loop);
	bool healthy = true;
	for (struct sup_worker *w = sup.workers; w; w = w->next) {
		if (w->killed)
			continue;
		if (!sup_slot(w))
			continue;
		uint64_t hb = sb_load(&sup_slot(w)->heartbeat_ms);
		uint64_t age = now > hb ? now - hb : 0;
		if (age > sup.cfg->server.worker_timeout_ms) {
			healthy = false;
			if (!w->abort_sent_ms) {
				/* SIGABRT first: its core dump shows where the loop hung. */
				log_error("worker pid %d (generation %u) stuck for %llums (worker_timeout), sending SIGABRT",
					  (int)w->pid, w->generation, (unsigned long long)age);
				w->abort_sent_ms = now;
				kill(w->pid, SIGABRT);
			} else if (now - w->abort_sent_ms >= SUP_ABORT_GRACE_MS) {
				log_error("worker pid %d (generation %u) still stuck %llums after SIGABRT, killed",
					  (int)w->pid, w->generation, (unsigned long long)(now - w->abort_sent_ms));
				w->killed = true;
				kill(w->pid, SIGKILL);
			}
		}
		if (w->state == SW_DRAINING && !sup.stopping && w->drain_deadline_ms &&
		    now > w->drain_deadline_ms + SUP_DRAIN_GRACE_MS) {
			log_warning("worker pid %d (generation %u) still draining past its deadline, killed",
				    (int)w->pid, w->generation);
			w->killed = true;
			kill(w->pid, SIGKILL);
		}
	}
	if ((sup.reloading || sup.upgrading) && now - sup.reload_started_ms > SUP_RELOAD_TIMEOUT_MS &&
	    !sup.stopping) {
		sup_rollback();
		sup.upgrading = false;
		sup_reload_failed("the new generation did not become ready in time");
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
	sup.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sup.signal_fd < 0)
		return -errno;
	return loop_add_fd(sup.loop, sup.signal_fd, LOOP_READ, sup_signal, NULL);
}

static void sup_resolve_exe(const char *argv0)
{
	/* The binary upgrade runs the *installed* path again, not
	 * /proc/self/exe (which still names the replaced file). */
	if (strchr(argv0, '/')) {
		if (!realpath(argv0, sup.exe))
			snprintf(sup.exe, sizeof(sup.exe), "%s", argv0);
		return;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		char cand[PATH_MAX];
		snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, path, argv0);
		if (access(cand, X_OK) == 0) {
			if (!realpath(cand, sup.exe))
				snprintf(sup.exe, sizeof(sup.exe), "%s", cand);
			return;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	snprintf(sup.exe, sizeof(sup.exe), "%s", argv0);
}

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

int supervisor_run(struct config *cfg, const char *argv0, char *const argv[])
{
	memset(&sup, 0, sizeof(sup));
	sup.cfg = cfg;
	sup.argv = argv;
	sup.ctl_fd = -1;
	sup.sb_fd = -1;
	sup.upgrade_client_fd = -1;
	sup.generation = 0;
	sup_resolve_exe(argv0);
	log_set_role("supervisor");
	notify_init();
	char err[4096] = "";

	int r = sup_check_identity(cfg, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return 1;
	}
	sup.loop = loop_new();
	if (!sup.loop) {
		log_errno(LOG_ERR, -errno, "cannot create the event loop");
		return 1;
	}
	r = sup_setup_signals();
	if (r < 0) {
		log_errno(LOG_ERR, r, "cannot set up signal handling");
		return 1;
	}

	struct listen_pool pool = { .n = 0 };
	const char *handover = getenv(UPGRADE_ENV);
	bool upgraded = handover && *handover;
	if (upgraded) {
		char *copy = strdup(handover);
		unsetenv(UPGRADE_ENV);
		r = copy ? sup_adopt(copy, &pool) : -ENOMEM;
		free(copy);
		if (r < 0)
			return 1;
	} else {
		r = listen_pool_from_systemd(&pool, err, sizeof(err));
		if (r < 0) {
			log_error("%s", err);
			return 1;
		}
		r = scoreboard_create(&sup.sb, &sup.sb_fd);
		if (r < 0) {
			log_errno(LOG_ERR, r, "cannot create the scoreboard");
			return 1;
		}
	}

	if (upgraded) {
		sup_open_listeners_adopted(cfg, &pool);
		sup_push_fdstore();
	} else {
		r = sup_open_listeners(cfg, &pool, err, sizeof(err));
		if (r < 0) {
			log_error("%s", err);
			listen_pool_close(&pool);
			return 1;
		}
		for (size_t i = 0; i < pool.n; i++) {
			if (pool.fds[i] >= 0) {
				log_error("systemd passed a socket named '%s' (fd %d) but %s has no [listener %s] section",
					  pool.names[i], pool.fds[i], cfg->path, pool.names[i]);
				r = -EINVAL;
			}
		}
		if (r < 0) {
			listen_pool_close(&pool);
			return 1;
		}
		sup_push_fdstore();
	}

	if (sup.ctl_fd < 0) {
		admin_socket_path(cfg->server.control_socket, sup.ctl_path, sizeof(sup.ctl_path));
		if (sup.ctl_path[0]) {
			sup.ctl_fd = admin_listen(sup.ctl_path);
			if (sup.ctl_fd < 0) {
				/* An explicit path must work; the default is best effort (a
				 * second instance, or no permission on /run). */
				if (cfg->server.control_socket) {
					log_errno(LOG_ERR, sup.ctl_fd, "cannot listen on control socket %s", sup.ctl_path);
					return 1;
				}
				log_errno(LOG_WARNING, sup.ctl_fd, "control socket %s unavailable; droverctl will not reach this instance",
					  sup.ctl_path);
				sup.ctl_fd = -1;
			} else {
				sup.ctl_owned = true;
			}
		}
	} else {
		admin_socket_path(cfg->server.control_socket, sup.ctl_path, sizeof(sup.ctl_path));
		sup.ctl_owned = true;
	}
	if (sup.ctl_fd >= 0)
		loop_add_fd(sup.loop, sup.ctl_fd, LOOP_READ, sup_ctl_accept, NULL);
	sup_write_pid_file();

	loop_timer_init(&sup.tick, sup_tick, NULL);
	loop_timer_init(&sup.respawn_timer, sup_respawn_due, NULL);
	loop_timer_init(&sup.stop_timer, sup_stop_deadline, NULL);
	loop_timer_arm(sup.loop, &sup.tick, SUP_TICK_MS);

	if (upgraded)
		sup_snapshot(); /* the adopted generation serves until ours is ready */
	sup.generation++;
	sup.sb->hdr.generation = sup.generation;
	if (upgraded) {
		sup.serving = true;
		sup.upgrading = true;
		sup.reload_started_ms = loop_now_ms(sup.loop);
	}
	sup_build_worker_listeners();
	log_info("starting generation %u: %u worker(s), %zu listener(s)", sup.generation, cfg->server.workers,
		 sup.n_listeners);
	for (size_t i = 0; i < sup.n_listeners; i++)
		log_info("listener '%s' on %s (%s)", sup.listeners[i].name,
			 sup.listeners[i].address[0] && !sup.listeners[i].from_systemd ? sup.listeners[i].address : "a socket passed by systemd",
			 sup.wl[i].proto->name);
	sup_fill();
	sup_reap(); /* adopted workers may have exited while we were exec'ing */

	r = loop_run(sup.loop);
	if (r < 0)
		log_errno(LOG_ERR, r, "event loop failed");

	sup_close_listeners();
	if (sup.ctl_fd >= 0) {
		close(sup.ctl_fd);
		if (sup.ctl_owned && sup.ctl_path[0])
			unlink(sup.ctl_path);
	}
	while (sup.clients)
		sup_client_close(sup.clients);
	if (sup.cfg->server.pid_file)
		unlink(sup.cfg->server.pid_file);
	log_notice("stopped");
	int status = r < 0 ? 1 : sup.exit_status;
	loop_free(sup.loop);
	config_free(sup.prev_cfg);
	config_free(sup.cfg);
	return status;
}
