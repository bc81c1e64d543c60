/* handover: what crosses the execve() of a binary upgrade (see
 * handover.h). The state is a small text format in one environment
 * variable:
 *   v1 g=GEN[,HIGHEST] sb=FD[,kFD][,mFD] ctl=FD cl=FD[,FD...][,rFD...]
 *   L=fd,flags,name,address   (one per listener; address last, may hold ',')
 *   W=pid,gen,index,slot,ctlfd,state,deadline[,chanversion]
 * fields separated by ';'. Names never contain ';' (config refuses them);
 * addresses are percent-escaped. The ",..." tails are read by builds that
 * know them and ignored (sscanf stops) by older ones, so that an upgrade
 * to an older build still adopts: HIGHEST is the highest generation
 * number used so far (after a rollback it is above GEN), chanversion is
 * the control channel's version the worker reads (absent: 1), kFD the
 * TLS session ticket keys' memfd (absent: the new image makes keys of its
 * own), mFD the metrics counters' memfd (absent: the new image starts
 * its counters at 0), the further
 * client fds are more droverctl clients waiting for the change, and rFD
 * ones are connected clients whose command was not read yet (the new
 * image reads and serves them). A field the decoder does not know fails
 * the hand-over.
 *
 * So the reload history that status shows travels in a second variable,
 * which builds before it ignore (and builds after it skip fields of it
 * they do not know):
 *   HANDOVER_HISTORY_ENV=v1;g=GEN;H=TIME,TEXT;H=...   (newest first)
 * TIME in seconds since the epoch, TEXT percent-escaped. GEN is the
 * generation handed over with it: a variable an older image passed on
 * untouched names an older one and is ignored. */
#include "supervisor/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int handover_append(char *out, size_t out_len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int handover_append(char *out, size_t out_len, size_t *pos, const char *fmt, ...)
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

static void handover_escape(const char *in, char *out, size_t out_len)
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

static void handover_unescape(const char *in, size_t len, char *out, size_t out_len)
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

void handover_init(struct handover *s, uint32_t generation, uint32_t highest, int scoreboard_fd)
{
	memset(s, 0, sizeof(*s));
	s->generation = generation;
	s->highest_generation = highest > generation ? highest : generation;
	s->scoreboard_fd = scoreboard_fd;
	s->keys_fd = s->metrics_fd = s->ctl_fd = s->client_fd = -1;
}

int handover_encode(const struct handover *s, char *out, size_t out_len)
{
	size_t pos = 0;
	int r = handover_append(out, out_len, &pos, "%s=v1;g=%" PRIu32, HANDOVER_ENV, s->generation);
	if (r == 0 && s->highest_generation > s->generation)
		r = handover_append(out, out_len, &pos, ",%" PRIu32, s->highest_generation);
	if (r == 0)
		r = handover_append(out, out_len, &pos, ";sb=%d", s->scoreboard_fd);
	if (r == 0 && s->keys_fd >= 0)
		r = handover_append(out, out_len, &pos, ",k%d", s->keys_fd);
	if (r == 0 && s->metrics_fd >= 0)
		r = handover_append(out, out_len, &pos, ",m%d", s->metrics_fd);
	if (r == 0)
		r = handover_append(out, out_len, &pos, ";ctl=%d;cl=%d", s->ctl_fd, s->client_fd);
	for (size_t i = 0; r == 0 && i < s->n_more_clients; i++)
		r = handover_append(out, out_len, &pos, ",%d", s->more_client_fds[i]);
	for (size_t i = 0; r == 0 && i < s->n_idle_clients; i++)
		r = handover_append(out, out_len, &pos, ",r%d", s->idle_client_fds[i]);
	for (size_t i = 0; r == 0 && i < s->n_listeners; i++) {
		const struct handover_listener *l = &s->listeners[i];
		char addr[sizeof(l->address) * 3 + 1];
		handover_escape(l->address, addr, sizeof(addr));
		r = handover_append(out, out_len, &pos, ";L=%d,%d,%s,%s", l->fd,
				   (l->from_systemd ? 1 : 0) | (l->unix_bound ? 2 : 0), l->name, addr);
	}
	for (size_t i = 0; r == 0 && i < s->n_workers; i++) {
		const struct handover_worker *w = &s->workers[i];
		r = handover_append(out, out_len, &pos, ";W=%d,%" PRIu32 ",%" PRIu32 ",%d,%d,%d,%" PRIu64, (int)w->pid,
				   w->generation, w->index, w->slot, w->chan_fd, w->state, w->drain_deadline_ms);
		if (r == 0 && (w->chan_version > 1 || w->handoff_to))
			r = handover_append(out, out_len, &pos, ",%u", w->chan_version ? w->chan_version : 1u);
		/* A ninth field: builds before hand-off read eight and stop. */
		if (r == 0 && w->handoff_to)
			r = handover_append(out, out_len, &pos, ",%d", (int)w->handoff_to);
	}
	return r;
}

/* cl=FD[,FD...][,rFD...]: the client waiting, more waiting, idle ones. */
static int handover_decode_clients(const char *field, struct handover *s)
{
	if (sscanf(field, "cl=%d", &s->client_fd) != 1)
		return -EINVAL;
	for (const char *c = strchr(field, ','); c; c = strchr(c + 1, ',')) {
		bool idle = c[1] == 'r';
		const char *num = c + 1 + idle;
		char *end;
		long fd = strtol(num, &end, 10);
		size_t *n = idle ? &s->n_idle_clients : &s->n_more_clients;
		if (end == num || (*end && *end != ',') || fd < 0 || fd > INT32_MAX || *n >= HANDOVER_MAX_CLIENTS)
			return -EINVAL;
		(idle ? s->idle_client_fds : s->more_client_fds)[(*n)++] = (int)fd;
	}
	return 0;
}

/* L=fd,flags,name,address */
static int handover_decode_listener(const char *field, struct handover *s)
{
	if (s->n_listeners >= HANDOVER_MAX_LISTENERS)
		return -EINVAL;
	struct handover_listener *l = &s->listeners[s->n_listeners];
	int flags, n = 0;
	if (sscanf(field, "L=%d,%d,%n", &l->fd, &flags, &n) != 2 || n == 0)
		return -EINVAL;
	const char *name = field + n;
	const char *comma = strchr(name, ',');
	if (!comma || (size_t)(comma - name) > CONFIG_NAME_MAX)
		return -EINVAL;
	memcpy(l->name, name, (size_t)(comma - name));
	l->name[comma - name] = '\0';
	handover_unescape(comma + 1, strlen(comma + 1), l->address, sizeof(l->address));
	l->from_systemd = flags & 1;
	l->unix_bound = flags & 2;
	s->n_listeners++;
	return 0;
}

/* W=pid,gen,index,slot,ctlfd,state,deadline[,chanversion[,handoffto]] */
static int handover_decode_worker(const char *field, struct handover *s)
{
	if (s->n_workers >= HANDOVER_MAX_WORKERS)
		return -EINVAL;
	struct handover_worker *w = &s->workers[s->n_workers];
	int pid, to = 0;
	int n = sscanf(field, "W=%d,%" SCNu32 ",%" SCNu32 ",%d,%d,%d,%" SCNu64 ",%u,%d", &pid, &w->generation,
		       &w->index, &w->slot, &w->chan_fd, &w->state, &w->drain_deadline_ms, &w->chan_version, &to);
	if (n < 7)
		return -EINVAL;
	if (n < 8 || w->chan_version < 1)
		w->chan_version = 1;
	w->handoff_to = n >= 9 && to > 0 ? (pid_t)to : 0;
	w->pid = pid;
	s->n_workers++;
	return 0;
}

/* sb=FD[,kFD][,mFD]: the scoreboard, the ticket keys, the metrics (a
 * tail this build does not know is skipped, as older builds skip ",m"). */
static int handover_decode_board(const char *field, struct handover *s)
{
	if (sscanf(field, "sb=%d", &s->scoreboard_fd) != 1)
		return -EINVAL;
	for (const char *c = strchr(field, ','); c; c = strchr(c + 1, ',')) {
		int fd;
		if (sscanf(c, ",k%d", &fd) == 1 && fd >= 0)
			s->keys_fd = fd;
		else if (sscanf(c, ",m%d", &fd) == 1 && fd >= 0)
			s->metrics_fd = fd;
	}
	return 0;
}

/* One field of the state. */
static int handover_decode_field(const char *field, struct handover *s)
{
	if (strncmp(field, "g=", 2) == 0) {
		int n = sscanf(field, "g=%" SCNu32 ",%" SCNu32, &s->generation, &s->highest_generation);
		if (n < 1)
			return -EINVAL;
		if (n < 2 || s->highest_generation < s->generation)
			s->highest_generation = s->generation;
		return 0;
	}
	if (strncmp(field, "cl=", 3) == 0)
		return handover_decode_clients(field, s);
	if (strncmp(field, "sb=", 3) == 0)
		return handover_decode_board(field, s);
	if (sscanf(field, "ctl=%d", &s->ctl_fd) == 1)
		return 0;
	if (strncmp(field, "L=", 2) == 0)
		return handover_decode_listener(field, s);
	if (strncmp(field, "W=", 2) == 0)
		return handover_decode_worker(field, s);
	return -EINVAL;
}

int handover_decode(const char *value, struct handover *s)
{
	memset(s, 0, sizeof(*s));
	s->scoreboard_fd = s->keys_fd = s->metrics_fd = s->ctl_fd = s->client_fd = -1;
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
		if (handover_decode_field(field, s) < 0)
			return -EINVAL;
	}
	return *p == '\0' && s->scoreboard_fd >= 0 ? 0 : -EINVAL;
}

static void handover_fd(int fd, enum handover_fds how)
{
	if (fd < 0)
		return;
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return;
	fcntl(fd, F_SETFD, how == HANDOVER_FDS_INHERITED ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
}

void handover_set_fds(const struct handover *s, enum handover_fds how)
{
	handover_fd(s->scoreboard_fd, how);
	handover_fd(s->keys_fd, how);
	handover_fd(s->metrics_fd, how);
	handover_fd(s->ctl_fd, how);
	handover_fd(s->client_fd, how);
	for (size_t i = 0; i < s->n_more_clients; i++)
		handover_fd(s->more_client_fds[i], how);
	for (size_t i = 0; i < s->n_idle_clients; i++)
		handover_fd(s->idle_client_fds[i], how);
	for (size_t i = 0; i < s->n_listeners; i++)
		handover_fd(s->listeners[i].fd, how);
	for (size_t i = 0; i < s->n_workers; i++)
		handover_fd(s->workers[i].chan_fd, how);
}

/* ------------------------------------------------------ the history */

int handover_history_encode(const struct history *h, uint32_t generation, char *out, size_t out_len)
{
	size_t pos = 0;
	int r = handover_append(out, out_len, &pos, "%s=v1;g=%" PRIu32, HANDOVER_HISTORY_ENV, generation);
	for (size_t i = 0; r == 0 && i < h->n; i++) {
		char text[HISTORY_TEXT_MAX * 3 + 1];
		handover_escape(h->e[i].text, text, sizeof(text));
		r = handover_append(out, out_len, &pos, ";H=%" PRId64 ",%s", h->e[i].at, text);
	}
	return r;
}

size_t handover_history_decode(const char *value, uint32_t generation, struct history_entry *out, size_t max)
{
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "v1;g=%" PRIu32, generation);
	size_t plen = strlen(prefix);
	if (strncmp(value, prefix, plen) != 0 || (value[plen] != ';' && value[plen] != '\0'))
		return 0;
	size_t n = 0;
	for (const char *p = value + plen; *p == ';' && n < max;) {
		p++;
		size_t len = strcspn(p, ";");
		long long at;
		int off = 0;
		if (len > 2 && sscanf(p, "H=%lld,%n", &at, &off) == 1 && off > 0 && (size_t)off <= len) {
			out[n].at = at;
			handover_unescape(p + off, len - (size_t)off, out[n].text, sizeof(out[n].text));
			n++;
		}
		p += len; /* other fields: a newer build's */
	}
	return n;
}

/* ------------------------------------------------ the execve() itself */

void handover_find_exe(const char *argv0, char *exe, size_t len)
{
	if (strchr(argv0, '/')) {
		char resolved[PATH_MAX];
		snprintf(exe, len, "%s", realpath(argv0, resolved) ? resolved : argv0);
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
			char resolved[PATH_MAX];
			snprintf(exe, len, "%s", realpath(cand, resolved) ? resolved : cand);
			return;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	snprintf(exe, len, "%s", argv0);
}

/* Our environment without a previous hand-over or socket activation, plus
 * entry and more (if not NULL); NULL when out of memory. */
static char **handover_env_with(char *entry, char *more)
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
		if (strncmp(environ[i], HANDOVER_ENV "=", sizeof(HANDOVER_ENV)) != 0 &&
		    strncmp(environ[i], HANDOVER_HISTORY_ENV "=", sizeof(HANDOVER_HISTORY_ENV)) != 0 &&
		    strncmp(environ[i], "LISTEN_", 7) != 0)
			envp[k++] = environ[i];
	envp[k++] = entry;
	if (more)
		envp[k++] = more;
	envp[k] = NULL;
	return envp;
}

int handover_environment(const struct handover *s, const struct history *h, char ***envp)
{
	static char entry[65536];
	static char history_entry[HISTORY_MAX * (HISTORY_TEXT_MAX * 3 + 32) + 64];
	if (handover_encode(s, entry, sizeof(entry)) < 0)
		return -ENOBUFS;
	/* It fits by construction; were it not to, the upgrade goes on without it. */
	bool history = h && handover_history_encode(h, s->generation, history_entry, sizeof(history_entry)) == 0;
	*envp = handover_env_with(entry, history ? history_entry : NULL);
	return *envp ? 0 : -ENOMEM;
}

int handover_exec(const char *exe, char *const argv[], const struct handover *s, char **envp)
{
	handover_set_fds(s, HANDOVER_FDS_INHERITED);
	execve(exe, argv, envp);
	int r = -errno;
	handover_set_fds(s, HANDOVER_FDS_CLOEXEC);
	free(envp);
	return r;
}
