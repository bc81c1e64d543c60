/* upgrade: the binary upgrade. SIGUSR2 or "droverctl upgrade" first runs
 * the installed binary with -t on the current config, as a child whose
 * result arrives through the loop (pipe + SIGCHLD, with its own timeout),
 * so the supervisor goes on reaping, answering and feeding the watchdog
 * meanwhile. If it passes, execve() the binary in the same PID, handing
 * over listeners, scoreboard, workers and the waiting clients; the new
 * image adopts them as the serving generation, starts its own and answers
 * the clients once it serves. An upgrade asked for during a reload waits
 * for the reload to end.
 *
 * The hand-over is a small text format in one environment variable:
 *   v1 g=GEN[,HIGHEST] sb=FD ctl=FD cl=FD[,FD...][,rFD...]
 *   L=fd,flags,name,address   (one per listener; address last, may hold ',')
 *   W=pid,gen,index,slot,ctlfd,state,deadline[,chanversion]
 * fields separated by ';'. Names never contain ';' (config refuses them);
 * addresses are percent-escaped. The ",..." tails are read by builds that
 * know them and ignored (sscanf stops) by older ones, so that an upgrade
 * to an older build still adopts: HIGHEST is the highest generation
 * number used so far (after a rollback it is above GEN), chanversion is
 * the control channel's version the worker reads (absent: 1), the further
 * client fds are more droverctl clients waiting for the change, and rFD
 * ones are connected clients whose command was not read yet (the new
 * image reads and serves them). A field the decoder does not know fails
 * the hand-over.
 *
 * So the reload history that status shows travels in a second variable,
 * which builds before it ignore (and builds after it skip fields of it
 * they do not know):
 *   UPGRADE_HISTORY_ENV=v1;g=GEN;H=TIME,TEXT;H=...   (newest first)
 * TIME in seconds since the epoch, TEXT percent-escaped. GEN is the
 * generation handed over with it: a variable an older image passed on
 * untouched names an older one and is ignored.
 *
 * Answers written in part when the trial reports (a client reading
 * slowly) are finished first: the execve waits for them, driven by the
 * loop, at most UPGRADE_FLUSH_MS; a client that has not read it all by then
 * is one that does not read, and is dropped with the old image. */
#include "supervisor/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "supervisor/notify.h"
#include "supervisor/sup.h"

#define UPGRADE_CHECK_MS 10000 /* "drover -t" of the new binary must answer by then */
#define UPGRADE_TRIAL_MS 15000 /* its trial generation must be ready by then */
#define UPGRADE_FLUSH_MS 2000  /* answers in flight are written by then, or dropped */

static int upgrade_append(char *out, size_t out_len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int upgrade_append(char *out, size_t out_len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + *pos, out_len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= out_len - *pos)
		return -ENOBUFS;
	*pos += (size_t)n;
	return 0;
}

static void upgrade_escape(const char *in, char *out, size_t out_len)
{
	size_t o = 0;
	for (; *in && o + 4 < out_len; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch == ';' || ch == '%' || ch == ',' || ch <= ' ' || ch >= 0x7f)
			o += (size_t)snprintf(out + o, out_len - o, "%%%02X", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static void upgrade_unescape(const char *in, size_t len, char *out, size_t out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < out_len; i++) {
		if (in[i] == '%' && i + 2 < len) {
			char hex[3] = { in[i + 1], in[i + 2], 0 };
			out[o++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
}

int upgrade_encode(const struct upgrade_state *s, char *out, size_t out_len)
{
	size_t pos = 0;
	int r = upgrade_append(out, out_len, &pos, "%s=v1;g=%" PRIu32, UPGRADE_ENV, s->generation);
	if (r == 0 && s->highest_generation > s->generation)
		r = upgrade_append(out, out_len, &pos, ",%" PRIu32, s->highest_generation);
	if (r == 0)
		r = upgrade_append(out, out_len, &pos, ";sb=%d;ctl=%d;cl=%d", s->scoreboard_fd, s->ctl_fd, s->client_fd);
	for (size_t i = 0; r == 0 && i < s->n_more_clients; i++)
		r = upgrade_append(out, out_len, &pos, ",%d", s->more_client_fds[i]);
	for (size_t i = 0; r == 0 && i < s->n_idle_clients; i++)
		r = upgrade_append(out, out_len, &pos, ",r%d", s->idle_client_fds[i]);
	for (size_t i = 0; r == 0 && i < s->n_listeners; i++) {
		const struct upgrade_listener *l = &s->listeners[i];
		char addr[sizeof(l->address) * 3 + 1];
		upgrade_escape(l->address, addr, sizeof(addr));
		r = upgrade_append(out, out_len, &pos, ";L=%d,%d,%s,%s", l->fd,
				   (l->from_systemd ? 1 : 0) | (l->unix_bound ? 2 : 0), l->name, addr);
	}
	for (size_t i = 0; r == 0 && i < s->n_workers; i++) {
		const struct upgrade_worker *w = &s->workers[i];
		r = upgrade_append(out, out_len, &pos, ";W=%d,%" PRIu32 ",%" PRIu32 ",%d,%d,%d,%" PRIu64, (int)w->pid,
				   w->generation, w->index, w->slot, w->chan_fd, w->state, w->drain_deadline_ms);
		if (r == 0 && w->chan_version > 1)
			r = upgrade_append(out, out_len, &pos, ",%u", w->chan_version);
	}
	return r;
}

int upgrade_decode(const char *value, struct upgrade_state *s)
{
	memset(s, 0, sizeof(*s));
	s->scoreboard_fd = s->ctl_fd = s->client_fd = -1;
	if (strncmp(value, "v1", 2) != 0 || (value[2] != ';' && value[2] != '\0'))
		return -EINVAL;
	const char *p = value + 2;
	while (*p == ';') {
		p++;
		size_t len = strcspn(p, ";");
		char field[1024];
		if (len >= sizeof(field))
			return -EINVAL;
		memcpy(field, p, len);
		field[len] = '\0';
		p += len;
		if (strncmp(field, "g=", 2) == 0) {
			int n = sscanf(field, "g=%" SCNu32 ",%" SCNu32, &s->generation, &s->highest_generation);
			if (n < 1)
				return -EINVAL;
			if (n < 2 || s->highest_generation < s->generation)
				s->highest_generation = s->generation;
			continue;
		}
		if (strncmp(field, "cl=", 3) == 0) {
			if (sscanf(field, "cl=%d", &s->client_fd) != 1)
				return -EINVAL;
			for (const char *c = strchr(field, ','); c; c = strchr(c + 1, ',')) {
				bool idle = c[1] == 'r';
				const char *num = c + 1 + idle;
				char *end;
				long fd = strtol(num, &end, 10);
				size_t *n = idle ? &s->n_idle_clients : &s->n_more_clients;
				if (end == num || (*end && *end != ',') || fd < 0 || fd > INT32_MAX || *n >= UPGRADE_MAX_CLIENTS)
					return -EINVAL;
				(idle ? s->idle_client_fds : s->more_client_fds)[(*n)++] = (int)fd;
			}
			continue;
		}
		if (sscanf(field, "sb=%d", &s->scoreboard_fd) == 1 || sscanf(field, "ctl=%d", &s->ctl_fd) == 1)
			continue;
		if (strncmp(field, "L=", 2) == 0) {
			if (s->n_listeners >= sizeof(s->listeners) / sizeof(s->listeners[0]))
				return -EINVAL;
			struct upgrade_listener *l = &s->listeners[s->n_listeners];
			int flags, n = 0;
			if (sscanf(field, "L=%d,%d,%n", &l->fd, &flags, &n) != 2 || n == 0)
				return -EINVAL;
			const char *name = field + n;
			const char *comma = strchr(name, ',');
			if (!comma || (size_t)(comma - name) > CONFIG_NAME_MAX)
				return -EINVAL;
			memcpy(l->name, name, (size_t)(comma - name));
			l->name[comma - name] = '\0';
			upgrade_unescape(comma + 1, strlen(comma + 1), l->address, sizeof(l->address));
			l->from_systemd = flags & 1;
			l->unix_bound = flags & 2;
			s->n_listeners++;
			continue;
		}
		if (strncmp(field, "W=", 2) == 0) {
			if (s->n_workers >= UPGRADE_MAX_WORKERS)
				return -EINVAL;
			struct upgrade_worker *w = &s->workers[s->n_workers];
			int pid;
			int n = sscanf(field, "W=%d,%" SCNu32 ",%" SCNu32 ",%d,%d,%d,%" SCNu64 ",%u", &pid, &w->generation,
				       &w->index, &w->slot, &w->chan_fd, &w->state, &w->drain_deadline_ms,
				       &w->chan_version);
			if (n < 7)
				return -EINVAL;
			if (n < 8 || w->chan_version < 1)
				w->chan_version = 1;
			w->pid = pid;
			s->n_workers++;
			continue;
		}
		return -EINVAL;
	}
	return *p == '\0' && s->scoreboard_fd >= 0 ? 0 : -EINVAL;
}

static void upgrade_fd_inherit(int fd, bool inherit)
{
	if (fd < 0)
		return;
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return;
	fcntl(fd, F_SETFD, inherit ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
}

void upgrade_set_inherit(const struct upgrade_state *s, bool inherit)
{
	upgrade_fd_inherit(s->scoreboard_fd, inherit);
	upgrade_fd_inherit(s->ctl_fd, inherit);
	upgrade_fd_inherit(s->client_fd, inherit);
	for (size_t i = 0; i < s->n_more_clients; i++)
		upgrade_fd_inherit(s->more_client_fds[i], inherit);
	for (size_t i = 0; i < s->n_idle_clients; i++)
		upgrade_fd_inherit(s->idle_client_fds[i], inherit);
	for (size_t i = 0; i < s->n_listeners; i++)
		upgrade_fd_inherit(s->listeners[i].fd, inherit);
	for (size_t i = 0; i < s->n_workers; i++)
		upgrade_fd_inherit(s->workers[i].chan_fd, inherit);
}

/* ------------------------------------------------------- the old image */

void upgrade_resolve_exe(const char *argv0)
{
	char *exe = sup.upg.exe;
	size_t len = sizeof(sup.upg.exe);
	/* The binary upgrade runs the *installed* path again, not
	 * /proc/self/exe (which still names the replaced file). */
	if (strchr(argv0, '/')) {
		if (!realpath(argv0, exe))
			snprintf(exe, len, "%s", argv0);
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
			if (!realpath(cand, exe))
				snprintf(exe, len, "%s", cand);
			return;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	snprintf(exe, len, "%s", argv0);
}

bool upgrade_checking(void)
{
	return sup.upg.phase != UPG_IDLE;
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
static void upgrade_describe_clients(struct upgrade_state *st)
{
	st->client_fd = -1;
	for (struct sup_client *c = sup.admin.clients; c; c = c->next) {
		if (c->waiting == WAIT_NONE && !c->closing && c->in_len == 0 &&
		    st->n_idle_clients < UPGRADE_MAX_CLIENTS)
			st->idle_client_fds[st->n_idle_clients++] = c->fd;
		if (c->waiting != WAIT_UPGRADE && c->waiting != WAIT_RELOAD)
			continue;
		if (st->client_fd < 0)
			st->client_fd = c->fd;
		else if (st->n_more_clients < UPGRADE_MAX_CLIENTS)
			st->more_client_fds[st->n_more_clients++] = c->fd;
	}
}

/* Describe what the new image takes over; 0 or -errno with why. */
static int upgrade_describe(struct upgrade_state *st, const char **why)
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
		struct upgrade_listener *u = &st->listeners[st->n_listeners++];
		u->fd = l->fd;
		snprintf(u->name, sizeof(u->name), "%s", l->name);
		snprintf(u->address, sizeof(u->address), "%s", l->address);
		u->from_systemd = l->from_systemd;
		u->unix_bound = l->unix_bound;
	}
	for (struct sup_worker *w = sup.pool.workers; w && st->n_workers < UPGRADE_MAX_WORKERS; w = w->next) {
		struct upgrade_worker *u = &st->workers[st->n_workers++];
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

/* Our environment without a previous hand-over or socket activation, plus
 * entry and more (if not NULL); NULL when out of memory. */
static char **upgrade_environment(char *entry, char *more)
{
	extern char **environ;
	size_t n_env = 0;
	while (environ[n_env])
		n_env++;
	char **envp = calloc(n_env + 3, sizeof(*envp));
	if (!envp)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=", sizeof(UPGRADE_ENV)) != 0 &&
		    strncmp(environ[i], UPGRADE_HISTORY_ENV "=", sizeof(UPGRADE_HISTORY_ENV)) != 0 &&
		    strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[k++] = environ[i];
	envp[k++] = entry;
	if (more)
		envp[k++] = more;
	envp[k] = NULL;
	return envp;
}

/* The reload history as UPGRADE_HISTORY_ENV's entry, handed over with
 * generation; 0 or -ENOBUFS. */
static int upgrade_history_encode(uint32_t generation, char *out, size_t out_len)
{
	size_t pos = 0;
	int r = upgrade_append(out, out_len, &pos, "%s=v1;g=%" PRIu32, UPGRADE_HISTORY_ENV, generation);
	for (size_t i = 0; r == 0 && i < sup.history.n; i++) {
		char text[SUP_RESULT_MAX * 3 + 1];
		upgrade_escape(sup.history.e[i].text, text, sizeof(text));
		r = upgrade_append(out, out_len, &pos, ";H=%" PRId64 ",%s", sup.history.e[i].at, text);
	}
	return r;
}

/* The preflight passed: hand everything over and become the new binary.
 * Returns only if that failed (then the old image serves on). */
static void upgrade_exec(void)
{
	static struct upgrade_state st;
	static char env_entry[65536];
	static char history_entry[SUP_HISTORY * (SUP_RESULT_MAX * 3 + 32) + 64];
	const char *why = NULL;
	if (upgrade_describe(&st, &why) < 0 ||
	    (upgrade_encode(&st, env_entry, sizeof(env_entry)) < 0 && (why = "too much state to hand over"))) {
		upgrade_failed("refused", why);
		return;
	}
	/* It fits by construction; were it not to, the upgrade goes on without it. */
	bool history = upgrade_history_encode(st.generation, history_entry, sizeof(history_entry)) == 0;
	char **envp = upgrade_environment(env_entry, history ? history_entry : NULL);
	if (!envp) {
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
	upgrade_set_inherit(&st, true);
	execve(sup.upg.exe, sup.upg.argv, envp);
	int r = -errno;
	upgrade_set_inherit(&st, false);
	free(envp);
	char err[2300];
	snprintf(err, sizeof(err), "execve(%.2000s): %.200s", sup.upg.exe, strerror(-r));
	upgrade_failed("failed", err);
	notify_ready("serving: binary upgrade failed, old binary still running");
}

/* What the check or the trial writes; EOF closes our end. A trial's
 * "ready" line means its generation came up: execute the new binary. */
static void upgrade_child_output(struct loop *loop, int fd, unsigned events, void *arg)
{
	for (;;) {
		char *buf = sup.upg.out + sup.upg.out_len;
		size_t room = sizeof(sup.upg.out) - 1 - sup.upg.out_len;
		char sink[512];
		ssize_t n = read(fd, room ? buf : sink, room ? room : sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			loop_del_fd(loop, fd);
			close(fd);
			sup.upg.child_fd = -1;
			break;
		}
		if (room)
			sup.upg.out_len += (size_t)n;
	}
	sup.upg.out[sup.upg.out_len] = '\0';
}

static void upgrade_child_timeout(struct loop *loop, struct loop_timer *t, void *arg)
{
	/* A new binary that hangs is killed; its exit ends this step. */
	sup.upg.timed_out = true;
	kill(sup.upg.child, SIGKILL);
}

/* Forget the child (reaped, being killed, or a trial that reported). */
static void upgrade_child_done(void)
{
	if (sup.upg.child_fd >= 0) {
		upgrade_child_output(sup.loop, sup.upg.child_fd, LOOP_READ, NULL);
		if (sup.upg.child_fd >= 0) {
			/* Something the child started still holds the pipe. */
			loop_del_fd(sup.loop, sup.upg.child_fd);
			close(sup.upg.child_fd);
			sup.upg.child_fd = -1;
		}
	}
	loop_timer_cancel(sup.loop, &sup.upg.timer);
	sup.upg.child = 0;
	sup.upg.phase = UPG_IDLE;
}

/* In the trial child: lend it our listeners (and nothing else), without
 * the service manager's variables, and run "exe --upgrade-trial=FD". */
__attribute__((noreturn)) static void upgrade_trial_exec(int report_fd)
{
	static struct upgrade_state st;
	static char entry[65536];
	memset(&st, 0, sizeof(st));
	st.generation = sup.gen.current;
	st.highest_generation = sup.gen.highest;
	st.scoreboard_fd = sup.sb_fd; /* the format wants one; the trial makes its own */
	st.ctl_fd = st.client_fd = -1;
	for (size_t i = 0; i < sup.lst.n && st.n_listeners < sizeof(st.listeners) / sizeof(st.listeners[0]); i++) {
		struct upgrade_listener *u = &st.listeners[st.n_listeners++];
		u->fd = sup.lst.cur[i].fd;
		snprintf(u->name, sizeof(u->name), "%s", sup.lst.cur[i].name);
		snprintf(u->address, sizeof(u->address), "%s", sup.lst.cur[i].address);
		u->from_systemd = true; /* never the trial's to unlink */
	}
	if (upgrade_encode(&st, entry, sizeof(entry)) < 0)
		_exit(126);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	char **envp = upgrade_environment(entry, NULL);
	if (!envp)
		_exit(126);
	upgrade_set_inherit(&st, true);
	int fl = fcntl(report_fd, F_GETFD);
	fcntl(report_fd, F_SETFD, fl & ~FD_CLOEXEC);
	char flag[64];
	snprintf(flag, sizeof(flag), "--upgrade-trial=%d", report_fd);
	char *argv[] = { sup.upg.exe, flag, "-c", sup.cfg->path, NULL };
	execve(sup.upg.exe, argv, envp);
	dprintf(2, "cannot execute %s: %s\n", sup.upg.exe, strerror(errno));
	_exit(127);
}

/* Start the check ("exe -t -c config", its output into the pipe) or the
 * trial (its report into the pipe); 0 or -errno and the failed call. */
static int upgrade_child_start(enum upgrade_phase phase, const char **what)
{
	int pfd[2];
	*what = "pipe";
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	*what = "fork";
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (phase == UPG_TRIAL)
			upgrade_trial_exec(pfd[1]);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execl(sup.upg.exe, sup.upg.exe, "-t", "-c", sup.cfg->path, (char *)NULL);
		dprintf(2, "cannot execute %s: %s\n", sup.upg.exe, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	int r = loop_add_fd(sup.loop, pfd[0], LOOP_READ, upgrade_child_output, NULL);
	if (r < 0) {
		kill(pid, SIGKILL);
		close(pfd[0]);
		pfd[0] = -1; /* the exit is still reaped; its output is lost */
	}
	sup.upg.phase = phase;
	sup.upg.child = pid;
	sup.upg.child_fd = pfd[0];
	sup.upg.out_len = 0;
	sup.upg.out[0] = '\0';
	sup.upg.timed_out = false;
	loop_timer_init(&sup.upg.timer, upgrade_child_timeout, NULL);
	loop_timer_arm(sup.loop, &sup.upg.timer, phase == UPG_CHECK ? UPGRADE_CHECK_MS : UPGRADE_TRIAL_MS);
	return 0;
}

/* Run the next step; its end (pool_reap, or the trial's report) decides. */
static void upgrade_step(enum upgrade_phase phase)
{
	if (phase == UPG_CHECK)
		log_notice("binary upgrade: checking %s", sup.upg.exe);
	else
		log_notice("binary upgrade: trying %s: a generation that does not accept yet", sup.upg.exe);
	const char *what;
	int r = upgrade_child_start(phase, &what);
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
	upgrade_step(UPG_CHECK);
}

void upgrade_run_pending(void)
{
	if (!sup.gen.upgrade_pending || sup.stop.stopping || sup.gen.change != GEN_STEADY || upgrade_checking())
		return;
	sup.gen.upgrade_pending = false;
	upgrade_step(UPG_CHECK);
}

/* Why the check failed, from its exit and output. */
static void upgrade_check_failure(int status, char *err, size_t len)
{
	char *buf = sup.upg.out;
	size_t n = sup.upg.out_len;
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (sup.upg.timed_out)
		snprintf(err, len, "%.1000s -t did not finish within %d s", sup.upg.exe, UPGRADE_CHECK_MS / 1000);
	else
		snprintf(err, len, "%.1000s -t failed: %.1000s", sup.upg.exe, buf[0] ? buf : "no output");
}

/* Why the trial failed, from how it ended. */
static void upgrade_trial_failure(int status, char *err, size_t len)
{
	char how[96];
	if (sup.upg.timed_out)
		snprintf(how, sizeof(how), "did not bring a generation up within %d s", UPGRADE_TRIAL_MS / 1000);
	else if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with status %d before its generation was ready", WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d (%s) before its generation was ready",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	snprintf(err, len, "%.1000s %s", sup.upg.exe, how);
}

static void upgrade_flush_end(struct loop *loop, struct loop_timer *t, void *arg)
{
	size_t left = admin_answers_pending();
	sup.upg.phase = UPG_IDLE;
	if (left)
		log_warning("binary upgrade: %zu droverctl client(s) did not read the rest of their answer within %d ms; dropped",
			    left, UPGRADE_FLUSH_MS);
	upgrade_exec();
	gen_run_pending(); /* the exec failed: a reload asked for meanwhile runs now */
}

void upgrade_answers_written(void)
{
	if (sup.upg.phase == UPG_FLUSH)
		loop_timer_arm(sup.loop, &sup.upg.timer, 0); /* from the loop, not from inside a client's close */
}

/* The trial reported: execute the new binary, once every answer written in
 * part is complete (true: that is being waited for). */
static bool upgrade_flush_first(void)
{
	size_t n = admin_answers_pending();
	if (n == 0)
		return false;
	log_info("binary upgrade: writing %zu droverctl answer(s) before executing the new binary", n);
	sup.upg.phase = UPG_FLUSH;
	loop_timer_init(&sup.upg.timer, upgrade_flush_end, NULL);
	loop_timer_arm(sup.loop, &sup.upg.timer, UPGRADE_FLUSH_MS);
	return true;
}

bool upgrade_reaped(pid_t pid, int status)
{
	if (pid != sup.upg.child || pid <= 0)
		return false;
	enum upgrade_phase phase = sup.upg.phase;
	bool timed_out = sup.upg.timed_out;
	upgrade_child_done();
	sup.upg.timed_out = timed_out;
	bool ok = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (phase == UPG_CHECK && ok) {
		upgrade_step(UPG_TRIAL);
		return true;
	}
	if (phase == UPG_TRIAL && strstr(sup.upg.out, "ready\n")) {
		if (upgrade_flush_first())
			return true; /* upgrade_flush_end goes on */
		upgrade_exec(); /* it reported just before it ended */
	} else {
		char err[2300];
		if (phase == UPG_CHECK)
			upgrade_check_failure(status, err, sizeof(err));
		else
			upgrade_trial_failure(status, err, sizeof(err));
		upgrade_failed("failed", err);
	}
	/* The upgrade failed: a reload asked for meanwhile runs now. */
	gen_run_pending();
	return true;
}

void upgrade_cancel(const char *why)
{
	if (!upgrade_checking() && !sup.gen.upgrade_pending)
		return;
	if (upgrade_checking()) {
		if (sup.upg.child > 0) /* none while answers are flushed */
			kill(sup.upg.child, SIGKILL);
		upgrade_child_done(); /* its exit is reaped as nobody's */
	}
	sup.gen.upgrade_pending = false;
	upgrade_failed("cancelled", why);
}

/* --------------------------------------------------------- the new image */

static struct upgrade_state upgrade_handed; /* what the previous image handed over */

const struct upgrade_state *upgrade_adopted(void)
{
	return &upgrade_handed;
}

/* Take over the previous image's workers as sup.pool's. */
static int upgrade_adopt_workers(const struct upgrade_state *st, bool own_board)
{
	for (size_t i = 0; i < st->n_workers; i++) {
		struct sup_worker *w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOMEM;
		const struct upgrade_worker *u = &st->workers[i];
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

/* The reload history handed over with generation, if any (an older image
 * hands over none, or passes on one that is not about generation). */
static void upgrade_history_adopt(uint32_t generation)
{
	const char *v = getenv(UPGRADE_HISTORY_ENV);
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "v1;g=%" PRIu32, generation);
	size_t plen = strlen(prefix);
	if (!v || strncmp(v, prefix, plen) != 0 || (v[plen] != ';' && v[plen] != '\0')) {
		unsetenv(UPGRADE_HISTORY_ENV);
		return;
	}
	struct sup_change got[SUP_HISTORY];
	size_t n = 0;
	for (const char *p = v + plen; *p == ';' && n < SUP_HISTORY;) {
		p++;
		size_t len = strcspn(p, ";");
		long long at;
		int off = 0;
		if (len > 2 && sscanf(p, "H=%lld,%n", &at, &off) == 1 && off > 0 && (size_t)off <= len) {
			got[n].at = at;
			upgrade_unescape(p + off, len - (size_t)off, got[n].text, sizeof(got[n].text));
			n++;
		}
		p += len; /* other fields: a newer build's */
	}
	while (n > 0) {
		n--;
		admin_history_push(got[n].at, got[n].text);
	}
	unsetenv(UPGRADE_HISTORY_ENV);
}

int upgrade_adopt(const char *value, struct listen_pool *pool)
{
	struct upgrade_state *st = &upgrade_handed;
	int r = upgrade_decode(value, st);
	if (r < 0) {
		log_error("cannot parse %s from the previous image", UPGRADE_ENV);
		return r;
	}
	upgrade_set_inherit(st, false);
	bool own_board = false;
	r = scoreboard_attach(st->scoreboard_fd, &sup.sb);
	if (r < 0) {
		/* Another layout (an older or newer build): serve on with a fresh
		 * board; the adopted workers go unwatched until they are drained. */
		log_errno(LOG_WARNING, r, "cannot attach the previous scoreboard, starting a new one");
		close(st->scoreboard_fd);
		r = scoreboard_create(&sup.sb, &st->scoreboard_fd);
		if (r < 0)
			return log_errno(LOG_ERR, r, "cannot create the scoreboard");
		own_board = true;
	}
	sup.sb_fd = st->scoreboard_fd;
	sup.sb->hdr.supervisor_pid = getpid();
	sup.gen.current = st->generation;
	sup.gen.highest = st->highest_generation;
	upgrade_history_adopt(st->generation);
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
	struct upgrade_state *st = &upgrade_handed;
	int r = upgrade_decode(value, st);
	if (r < 0) {
		log_error("cannot parse %s from the image that runs this trial", UPGRADE_ENV);
		return r;
	}
	upgrade_set_inherit(st, false);
	for (size_t i = 0; i < st->n_listeners; i++)
		listen_pool_add(pool, st->listeners[i].fd, st->listeners[i].name);
	return 0;
}

void upgrade_trial_report(void)
{
	static const char ready[] = "ready\n";
	if (write(sup.upg.trial_fd, ready, sizeof(ready) - 1) != (ssize_t)(sizeof(ready) - 1))
		log_errno(LOG_ERR, -errno, "cannot report the trial's result");
	close(sup.upg.trial_fd);
	sup.upg.trial_fd = -1;
}
