/* admin: the droverctl socket. The top half is shared by both ends (the
 * command table, the socket's address, connect and listen); the bottom half
 * is the supervisor's server: clients are read and written through the
 * loop, answers are buffered for a client that reads slowly (up to
 * ADMIN_OUT_MAX, then it is dropped), and nothing waits on a client. */
#include "supervisor/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/generation.h"
#include "supervisor/sup.h"

#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

const struct admin_command admin_commands[] = {
	{ "status", ADMIN_STATUS,
	  "generation, workers (pid, state, connections, requests),\n"
	  "               old generations draining, last reload result", false },
	{ "reload", ADMIN_RELOAD,
	  "re-read the configuration; returns once the new generation\n"
	  "               serves, or fails (exit 1) with the reason", false },
	{ "upgrade", ADMIN_UPGRADE, "re-execute the installed drover binary in place", true },
	{ "reopen-logs", ADMIN_REOPEN_LOGS, "reopen log files (after logrotate)", false },
	{ "stop", ADMIN_STOP, "graceful stop", true },
};
const size_t admin_n_commands = sizeof(admin_commands) / sizeof(admin_commands[0]);

const struct admin_command *admin_command_find(const char *name)
{
	for (size_t i = 0; i < admin_n_commands; i++)
		if (strcmp(admin_commands[i].name, name) == 0)
			return &admin_commands[i];
	return NULL;
}

void admin_socket_path(const char *configured, char *out, size_t out_len)
{
	if (configured) {
		if (strcmp(configured, "off") == 0)
			snprintf(out, out_len, "%s", "");
		else
			snprintf(out, out_len, "%s", configured);
		return;
	}
	/* systemd's RuntimeDirectory= tells us where our runtime files go. */
	const char *rt = getenv("RUNTIME_DIRECTORY");
	if (rt && *rt) {
		/* It may list several directories separated by ':'; use the first. */
		size_t n = strcspn(rt, ":");
		snprintf(out, out_len, "%.*s/control.sock", (int)n, rt);
		return;
	}
	snprintf(out, out_len, "%s/drover/control.sock", RUNSTATEDIR);
}

static int ctl_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

int admin_connect(const char *path)
{
	struct sockaddr_un sun;
	int r = ctl_address(path, &sun);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int admin_listen(const char *path)
{
	struct sockaddr_un sun;
	int r = ctl_address(path, &sun);
	if (r < 0)
		return r;
	/* Create the parent directory if it is missing (the default one, or
	 * "run" next to the example config): 0700, ours, since only our user
	 * may talk to us anyway. Its own parent must exist. */
	char dir[sizeof(sun.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	/* Only a socket nobody answers on is replaced, never another file. */
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	/* Another drover answers there (or would: a full queue is EAGAIN
	 * without blocking us): leave it alone. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	r = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
	int e = errno;
	close(probe);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS)
		return -EADDRINUSE;
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0177); /* 0600: only our user may reload or stop us */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* ------------------------------------------------------ the server side */

static void admin_client_close(struct sup_client *c)
{
	struct sup_client **pp = &sup.admin.clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	loop_del_fd(sup.loop, c->fd);
	close(c->fd);
	free(c->out);
	free(c);
	if (sup.upg.flushing && admin_answers_pending() == 0)
		upgrade_answers_written();
}

/* Write what the socket takes now; the rest waits for LOOP_WRITE. */
static void admin_flush(struct sup_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_mod_fd(sup.loop, c->fd, LOOP_WRITE);
			return;
		}
		if (n <= 0) {
			admin_client_close(c); /* gone: its answer with it */
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->closing)
		admin_client_close(c);
}

void admin_reply(struct sup_client *c, const char *text)
{
	size_t len = strlen(text);
	size_t held = c->out_len - c->out_off;
	if (held + len > ADMIN_OUT_MAX) {
		log_warning("droverctl client does not read its answer (%zu bytes held); dropped", held + len);
		admin_client_close(c);
		return;
	}
	char *out = realloc(c->out, c->out_len + len);
	if (!out) {
		admin_client_close(c);
		return;
	}
	memcpy(out + c->out_len, text, len);
	c->out = out;
	c->out_len += len;
	c->waiting = WAIT_NONE;
	c->closing = true;
	admin_flush(c);
}

void admin_answer_changes(bool ok, const char *text)
{
	char line[640];
	snprintf(line, sizeof(line), "%s %s\n", ok ? "OK" : "ERR", text);
	for (struct sup_client *c = sup.admin.clients, *next; c; c = next) {
		next = c->next;
		if (c->waiting == WAIT_RELOAD && c->reload_seq <= sup.gen.seq_done)
			admin_reply(c, line);
	}
	/* Carried across the exec (the upgrade's client, reloads asked for
	 * meanwhile): the outcome of the upgrade is theirs, answered once. */
	for (size_t i = 0; i < sup.admin.n_carried; i++) {
		size_t len = strlen(line);
		if (send(sup.admin.carried[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
			log_warning("a droverctl waiting for the upgrade did not take its answer");
		close(sup.admin.carried[i]);
	}
	sup.admin.n_carried = 0;
}

void admin_history_push(int64_t at, const char *text)
{
	history_push(&sup.history, at, text);
	snprintf(sup.reload_result, sizeof(sup.reload_result), "%s", text);
}

void admin_record_change(const char *fmt, ...)
{
	char text[HISTORY_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	admin_history_push((int64_t)time(NULL), text);
}

size_t admin_answers_pending(void)
{
	size_t n = 0;
	for (const struct sup_client *c = sup.admin.clients; c; c = c->next)
		n += c->closing && c->out_off < c->out_len;
	return n;
}

/* Every reload and upgrade result kept, newest first, with its UTC time. */
static void admin_status_history(FILE *f)
{
	for (size_t i = 0; i < sup.history.n; i++) {
		time_t at = (time_t)sup.history.e[i].at;
		struct tm tm;
		char when[32] = "?";
		if (gmtime_r(&at, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(f, "reload history: %s %s\n", when, sup.history.e[i].text);
	}
}

static void admin_status_workers(FILE *f, uint64_t now)
{
	for (struct sup_worker *w = sup.pool.workers; w; w = w->next) {
		static const struct scoreboard_slot unknown;
		const struct scoreboard_slot *s = pool_slot(w) ? pool_slot(w) : &unknown;
		uint64_t hb = s == &unknown ? now : sb_load(&s->heartbeat_ms);
		fprintf(f, "worker pid %d generation %u #%u %s connections %llu requests %llu heartbeat %llums",
			(int)w->pid, w->generation, w->index, scoreboard_state_name(w->state),
			(unsigned long long)sb_load(&s->connections), (unsigned long long)sb_load(&s->requests),
			(unsigned long long)(now > hb ? now - hb : 0));
		fprintf(f, " dropped-no-memory %llu", (unsigned long long)sb_load(&s->dropped_nomem));
		if (w->state == SW_DRAINING)
			fprintf(f, " drain-left %llums",
				(unsigned long long)(w->drain_deadline_ms > now ? w->drain_deadline_ms - now : 0));
		fprintf(f, "\n");
	}
	for (unsigned i = 0; i < sup.cfg->server.workers; i++) {
		const struct sup_respawn *rs = &sup.pool.respawn[i];
		if (rs->pending)
			fprintf(f, "worker #%u backing off, next start in %llums\n", i,
				(unsigned long long)(rs->not_before_ms > now ? rs->not_before_ms - now : 0));
	}
}

/* The status report; malloc'd, NULL when out of memory. */
static char *admin_status_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	uint64_t now = loop_clock_ms();
	fprintf(f, "supervisor pid %d, generation %u, uptime %llus, %s\n", (int)getpid(), sup.gen.current,
		(unsigned long long)((now - sup.sb->hdr.started_ms) / 1000), sup_state_word());
	fprintf(f, "config %s\n", sup.cfg->path);
	fprintf(f, "last reload: %s\n", sup.reload_result[0] ? sup.reload_result : "none");
	admin_status_history(f);
	admin_status_workers(f, now);
	if (sup.upg.trial.phase == TRIAL_CHECK)
		fprintf(f, "upgrade: checking %s -t\n", sup.upg.exe);
	else if (sup.upg.trial.phase == TRIAL_RUN)
		fprintf(f, "upgrade: checking %s with a trial generation\n", sup.upg.exe);
	else if (sup.upg.flushing)
		fprintf(f, "upgrade: writing %zu answer(s), then executing %s\n", admin_answers_pending(),
			sup.upg.exe);
	fprintf(f, "OK\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void admin_command_run(struct sup_client *c, const char *name)
{
	const struct admin_command *cmd = admin_command_find(name);
	if (!cmd) {
		char line[ADMIN_LINE_MAX + 64];
		snprintf(line, sizeof(line), "ERR unknown command '%s'\n", name);
		admin_reply(c, line);
		return;
	}
	switch (cmd->id) {
	case ADMIN_STATUS: {
		char *text = admin_status_text();
		admin_reply(c, text ? text : "ERR out of memory\n");
		free(text);
		break;
	}
	case ADMIN_RELOAD:
		if (sup.stop.stopping) {
			admin_reply(c, "ERR stopping\n");
			break;
		}
		c->waiting = WAIT_RELOAD;
		c->reload_seq = sup.gen.seq_started + 1;
		gen_request_reload();
		break;
	case ADMIN_UPGRADE:
		upgrade_request(c);
		break;
	case ADMIN_REOPEN_LOGS:
		sup_reopen_logs();
		admin_reply(c, "OK logs reopened\n");
		break;
	case ADMIN_STOP:
		admin_reply(c, "OK stopping\n");
		sup_stop(false);
		break;
	}
}

static void admin_client_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct sup_client *c = arg;
	if (c->closing) {
		admin_flush(c);
		return;
	}
	if (c->waiting != WAIT_NONE) {
		char sink[64];
		ssize_t n = read(fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			admin_client_close(c); /* gave up waiting; the operation goes on */
		return;
	}
	ssize_t n = read(fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		admin_client_close(c);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	char *nl = strchr(c->in, '\n');
	if (!nl) {
		if (c->in_len == sizeof(c->in) - 1)
			admin_reply(c, "ERR command too long\n");
		return;
	}
	*nl = '\0';
	if (nl > c->in && nl[-1] == '\r')
		nl[-1] = '\0';
	admin_command_run(c, c->in);
}

struct sup_client *admin_client_add(int fd)
{
	struct sup_client *c = calloc(1, sizeof(*c));
	if (!c || loop_add_fd(sup.loop, fd, LOOP_READ, admin_client_io, c) < 0) {
		free(c);
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->next = sup.admin.clients;
	sup.admin.clients = c;
	return c;
}

static void admin_accept(struct loop *loop, int fd, unsigned events, void *arg)
{
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		admin_client_add(cfd);
	}
}

int admin_start(void)
{
	const char *configured = sup.cfg->server.control_socket;
	admin_socket_path(configured, sup.admin.path, sizeof(sup.admin.path));
	if (sup.admin.fd >= 0) {
		sup.admin.owned = true; /* inherited from the previous image */
	} else if (sup.admin.path[0]) {
		int fd = admin_listen(sup.admin.path);
		if (fd < 0 && configured) {
			/* An explicit path must work; the default is best effort (a
			 * second instance, or no permission on /run). */
			log_errno(LOG_ERR, fd, "cannot listen on control socket %s", sup.admin.path);
			return -1;
		}
		if (fd < 0)
			log_errno(LOG_WARNING, fd, "control socket %s unavailable; droverctl will not reach this instance",
				  sup.admin.path);
		sup.admin.fd = fd < 0 ? -1 : fd;
		sup.admin.owned = fd >= 0;
	}
	if (sup.admin.fd >= 0) {
		int r = loop_add_fd(sup.loop, sup.admin.fd, LOOP_READ, admin_accept, NULL);
		if (r < 0)
			log_errno(LOG_WARNING, r, "cannot watch control socket %s", sup.admin.path);
	}
	return 0;
}

void admin_stop(void)
{
	if (sup.admin.fd >= 0) {
		close(sup.admin.fd);
		if (sup.admin.owned && sup.admin.path[0])
			unlink(sup.admin.path);
	}
	while (sup.admin.clients)
		admin_client_close(sup.admin.clients);
}
