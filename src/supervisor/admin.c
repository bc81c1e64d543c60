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
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "supervisor/handover.h"

_Static_assert(ADMIN_CARRIED_MAX >= 1 + HANDOVER_MAX_CLIENTS, "every client handed over can be carried");

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

/* The answers awaited are written, or their time is up. */
static void admin_await_over(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct admin *a = arg;
	if (!a->awaiting)
		return;
	a->awaiting = false;
	sup_report(&a->sink, &(struct sup_event){ .kind = SUP_EV_ANSWERS_WRITTEN, .arg = admin_answers_pending(a) });
}

void admin_init(struct admin *a, struct loop *loop, const struct sup_sink *sink)
{
	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->sink = *sink;
	a->fd = -1;
	loop_timer_init(&a->await_timer, admin_await_over, a);
}

static void admin_client_close(struct admin *a, struct admin_client *c)
{
	struct admin_client **pp = &a->clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	loop_del_fd(a->loop, c->fd);
	close(c->fd);
	free(c->out);
	free(c);
	if (a->awaiting && admin_answers_pending(a) == 0)
		loop_timer_arm(a->loop, &a->await_timer, 0); /* from the loop, not from inside a client's close */
}

/* Write what the socket takes now; the rest waits for LOOP_WRITE. */
static void admin_flush(struct admin *a, struct admin_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_mod_fd(a->loop, c->fd, LOOP_WRITE);
			return;
		}
		if (n <= 0) {
			admin_client_close(a, c); /* gone: its answer with it */
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->closing)
		admin_client_close(a, c);
}

void admin_reply(struct admin *a, struct admin_client *c, const char *text)
{
	size_t len = strlen(text);
	size_t held = c->out_len - c->out_off;
	if (held + len > ADMIN_OUT_MAX) {
		log_warning("droverctl client does not read its answer (%zu bytes held); dropped", held + len);
		admin_client_close(a, c);
		return;
	}
	char *out = realloc(c->out, c->out_len + len);
	if (!out) {
		admin_client_close(a, c);
		return;
	}
	memcpy(out + c->out_len, text, len);
	c->out = out;
	c->out_len += len;
	c->waiting = ADMIN_WAIT_NONE;
	c->closing = true;
	admin_flush(a, c);
}

void admin_wait(struct admin *a, struct admin_client *c, enum admin_wait what, uint64_t reload_seq)
{
	(void)a;
	c->waiting = what;
	if (what == ADMIN_WAIT_RELOAD)
		c->reload_seq = reload_seq;
}

void admin_answer_reloads(struct admin *a, const char *line, uint64_t seq_done)
{
	for (struct admin_client *c = a->clients, *next; c; c = next) {
		next = c->next;
		if (c->waiting == ADMIN_WAIT_RELOAD && c->reload_seq <= seq_done)
			admin_reply(a, c, line);
	}
	/* Carried across the exec (the upgrade's client, reloads asked for
	 * meanwhile): the outcome of the upgrade is theirs, answered once. */
	for (size_t i = 0; i < a->n_carried; i++) {
		size_t len = strlen(line);
		if (send(a->carried[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
			log_warning("a droverctl waiting for the upgrade did not take its answer");
		close(a->carried[i]);
	}
	a->n_carried = 0;
}

void admin_answer_upgrade(struct admin *a, const char *line)
{
	for (struct admin_client *c = a->clients, *next; c; c = next) {
		next = c->next;
		if (c->waiting == ADMIN_WAIT_UPGRADE)
			admin_reply(a, c, line);
	}
}

size_t admin_answers_pending(const struct admin *a)
{
	size_t n = 0;
	for (const struct admin_client *c = a->clients; c; c = c->next)
		n += c->closing && c->out_off < c->out_len;
	return n;
}

size_t admin_await_answers(struct admin *a, uint64_t within_ms)
{
	size_t n = admin_answers_pending(a);
	a->awaiting = n > 0;
	if (n)
		loop_timer_arm(a->loop, &a->await_timer, within_ms);
	return n;
}

void admin_await_cancel(struct admin *a)
{
	a->awaiting = false;
	loop_timer_cancel(a->loop, &a->await_timer);
}

/* A command line from c: the table's commands go to the coordinator. */
static void admin_command_run(struct admin *a, struct admin_client *c, const char *name)
{
	const struct admin_command *cmd = admin_command_find(name);
	if (!cmd) {
		char line[ADMIN_LINE_MAX + 64];
		snprintf(line, sizeof(line), "ERR unknown command '%s'\n", name);
		admin_reply(a, c, line);
		return;
	}
	sup_report(&a->sink, &(struct sup_event){ .kind = SUP_EV_COMMAND, .client = c, .command = cmd });
}

static void admin_client_io(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct admin_client *c = arg;
	struct admin *a = c->owner;
	if (c->closing) {
		admin_flush(a, c);
		return;
	}
	if (c->waiting != ADMIN_WAIT_NONE) {
		char sink[64];
		ssize_t n = read(fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			admin_client_close(a, c); /* gave up waiting; the operation goes on */
		return;
	}
	ssize_t n = read(fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		admin_client_close(a, c);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	char *nl = strchr(c->in, '\n');
	if (!nl) {
		if (c->in_len == sizeof(c->in) - 1)
			admin_reply(a, c, "ERR command too long\n");
		return;
	}
	*nl = '\0';
	if (nl > c->in && nl[-1] == '\r')
		nl[-1] = '\0';
	admin_command_run(a, c, c->in);
}

int admin_client_add(struct admin *a, int fd, struct admin_client **out)
{
	struct admin_client *c = calloc(1, sizeof(*c));
	int r = c ? loop_add_fd(a->loop, fd, LOOP_READ, admin_client_io, c) : -ENOMEM;
	if (r < 0) {
		free(c);
		close(fd);
		return r;
	}
	c->owner = a;
	c->fd = fd;
	c->next = a->clients;
	a->clients = c;
	if (out)
		*out = c;
	return 0;
}

static void admin_accept(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct admin *a = arg;
	for (int i = 0; i < 16; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		int r = admin_client_add(a, cfd, NULL);
		if (r < 0)
			log_errno(LOG_WARNING, r, "droverctl client");
	}
}

int admin_start(struct admin *a, const char *configured)
{
	admin_socket_path(configured, a->path, sizeof(a->path));
	if (a->fd >= 0) {
		a->owned = true; /* inherited from the previous image */
	} else if (a->path[0]) {
		int fd = admin_listen(a->path);
		if (fd < 0 && configured) {
			/* An explicit path must work; the default is best effort (a
			 * second instance, or no permission on /run). */
			log_errno(LOG_ERR, fd, "cannot listen on control socket %s", a->path);
			return fd;
		}
		if (fd < 0)
			log_errno(LOG_WARNING, fd, "control socket %s unavailable; droverctl will not reach this instance",
				  a->path);
		a->fd = fd < 0 ? -1 : fd;
		a->owned = fd >= 0;
	}
	if (a->fd >= 0) {
		int r = loop_add_fd(a->loop, a->fd, LOOP_READ, admin_accept, a);
		if (r < 0)
			log_errno(LOG_WARNING, r, "cannot watch control socket %s", a->path);
	}
	return 0;
}

void admin_stop(struct admin *a)
{
	admin_await_cancel(a);
	if (a->fd >= 0) {
		close(a->fd);
		if (a->owned && a->path[0])
			unlink(a->path);
	}
	while (a->clients)
		admin_client_close(a, a->clients);
}

/* ------------------------------------------------------ binary upgrade */

/* The clients waiting for the upgrade or for a reload asked for during
 * its check: the new image answers them once it serves (it reads the
 * configuration again, so their reload is done by it). Clients connected
 * whose command we have not read yet are served by the new image. */
void admin_describe(const struct admin *a, struct handover *st)
{
	st->ctl_fd = a->fd;
	st->client_fd = -1;
	for (const struct admin_client *c = a->clients; c; c = c->next) {
		if (c->waiting == ADMIN_WAIT_NONE && !c->closing && c->in_len == 0 &&
		    st->n_idle_clients < HANDOVER_MAX_CLIENTS)
			st->idle_client_fds[st->n_idle_clients++] = c->fd;
		if (c->waiting != ADMIN_WAIT_UPGRADE && c->waiting != ADMIN_WAIT_RELOAD)
			continue;
		if (st->client_fd < 0)
			st->client_fd = c->fd;
		else if (st->n_more_clients < HANDOVER_MAX_CLIENTS)
			st->more_client_fds[st->n_more_clients++] = c->fd;
	}
}

void admin_adopt(struct admin *a, const struct handover *st)
{
	a->fd = st->ctl_fd;
	if (st->client_fd >= 0)
		a->carried[a->n_carried++] = st->client_fd;
	for (size_t i = 0; i < st->n_more_clients; i++)
		if (st->more_client_fds[i] >= 0)
			a->carried[a->n_carried++] = st->more_client_fds[i];
	for (size_t i = 0; i < st->n_idle_clients; i++) {
		/* Its command is still unread. */
		int r = admin_client_add(a, st->idle_client_fds[i], NULL);
		if (r < 0)
			log_errno(LOG_WARNING, r, "a droverctl client handed over");
	}
}
