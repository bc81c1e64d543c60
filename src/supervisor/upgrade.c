/* upgrade: a small text format for the binary-upgrade hand-over:
 *   v1 g=GEN sb=FD ctl=FD cl=FD
 *   L=fd,flags,name,address   (one per listener; address last, may hold ',')
 *   W=pid,gen,index,slot,ctlfd,state,deadline
 * fields separated by ';'. Names never contain ';' (config refuses them);
 * addresses are percent-escaped. */
#include "supervisor/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int r = upgrade_append(out, out_len, &pos, "%s=v1;g=%" PRIu32 ";sb=%d;ctl=%d;cl=%d", UPGRADE_ENV,
			       s->generation, s->scoreboard_fd, s->ctl_fd, s->client_fd);
	for (size_t i = 0; r == 0 && i < s->n_listeners; i++) {
		const struct upgrade_listener *l = &s->listeners[i];
		char addr[sizeof(l->address) * 3 + 1];
		upgrade_escape(l->address, addr, sizeof(addr));
		r = upgrade_append(out, out_len, &pos, ";L=%d,%d,%s,%s", l->fd,
				   (l->from_systemd ? 1 : 0) | (l->unix_bound ? 2 : 0), l->name, addr);
	}
	for (size_t i = 0; r == 0 && i < s->n_workers; i++) {
		const struct upgrade_worker *w = &s->workers[i];
		r = upgrade_append(out, out_len, &pos, ";W=%d,%" PRIu32 ",%" PRIu32 ",%d,%d,%d,%" PRIu64,
				   (int)w->pid, w->generation, w->index, w->slot, w->chan_fd, w->state,
				   w->drain_deadline_ms);
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
		if (sscanf(field, "g=%" SCNu32, &s->generation) == 1 || sscanf(field, "sb=%d", &s->scoreboard_fd) == 1 ||
		    sscanf(field, "ctl=%d", &s->ctl_fd) == 1 || sscanf(field, "cl=%d", &s->client_fd) == 1)
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
			if (sscanf(field, "W=%d,%" SCNu32 ",%" SCNu32 ",%d,%d,%d,%" SCNu64, &pid, &w->generation,
				   &w->index, &w->slot, &w->chan_fd, &w->state, &w->drain_deadline_ms) != 7)
				return -EINVAL;
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
	for (size_t i = 0; i < s->n_listeners; i++)
		upgrade_fd_inherit(s->listeners[i].fd, inherit);
	for (size_t i = 0; i < s->n_workers; i++)
		upgrade_fd_inherit(s->workers[i].chan_fd, inherit);
}
