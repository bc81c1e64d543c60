/* config: the one INI file, read with inih, checked key by key. This file
 * holds the sections and their key tables, the line reader that feeds inih,
 * the checks across keys, and the messages; the grammar of each value is in
 * config_value.c.
 *
 * inih splits lines into sections and key = value pairs; everything else is
 * ours. Debian's libinih is built without INI_HANDLER_LINENO and with a
 * 200-byte line buffer, so we feed inih through our own reader: it reads whole
 * lines, counts them (so every message can name its line), finds syntax errors
 * itself (inih only reports the first one), and hands over over-long values
 * out of band instead of letting inih cut them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf, strndup; configure passes it too */
#endif
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config_value.h"
#include "core/log.h"
#include "core/scoreboard.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/drover"
#endif

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Longest value quoted back in a message; the rest is elided. */
#define CONFIG_QUOTE_MAX 100

enum config_section_kind {
	CONFIG_SECTION_NONE,     /* before the first [section] */
	CONFIG_SECTION_SKIP,     /* unknown or broken header: its keys are not checked */
	CONFIG_SECTION_SERVER,
	CONFIG_SECTION_ECHO,
	CONFIG_SECTION_HTTP,
	CONFIG_SECTION_LISTENER,
};

static CONFIG_KEY_PARSER(config_key_protocol);

#define CONFIG_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)
#define CONFIG_SERVER(member) CONFIG_FIELD(struct config_server, member)
#define CONFIG_ECHO(member) CONFIG_FIELD(struct config_echo, member)
#define CONFIG_HTTP(member) CONFIG_FIELD(struct config_http, member)
#define CONFIG_LISTENER(member) CONFIG_FIELD(struct config_listener, member)

static const struct config_key config_server_keys[] = {
	{ "workers", config_key_workers, CONFIG_SERVER(workers), 1, CONFIG_WORKERS_MAX },
	{ "shutdown_timeout", config_key_duration, CONFIG_SERVER(shutdown_timeout_ms), 0, CONFIG_DURATION_MAX_MS },
	{ "log_level", config_key_log_level, CONFIG_SERVER(log_level), 0, 0 },
	{ "user", config_key_account, CONFIG_SERVER(user), 0, 0 },
	{ "group", config_key_account, CONFIG_SERVER(group), 0, 0 },
	{ "max_connections", config_key_count, CONFIG_SERVER(max_connections), 1, CONFIG_CONNECTIONS_MAX },
	{ "worker_timeout", config_key_duration, CONFIG_SERVER(worker_timeout_ms), 1000, CONFIG_DURATION_MAX_MS },
	{ "max_requests", config_key_count, CONFIG_SERVER(max_requests), 0, UINT64_MAX },
	{ "max_requests_jitter", config_key_count, CONFIG_SERVER(max_requests_jitter), 0, UINT64_MAX },
	{ "lingering_timeout", config_key_duration, CONFIG_SERVER(lingering_timeout_ms), 0, CONFIG_DURATION_MAX_MS },
	{ "max_generations", config_key_count, CONFIG_SERVER(max_generations), 2, 64 },
	{ "control_socket", config_key_control_socket, CONFIG_SERVER(control_socket), 0, 0 },
	{ "pid_file", config_key_pid_file, CONFIG_SERVER(pid_file), 0, 0 },
};

static const struct config_key config_echo_keys[] = {
	{ "idle_timeout", config_key_duration, CONFIG_ECHO(idle_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "buffer_size", config_key_size, CONFIG_ECHO(buffer_size), 1024, 64u << 20 },
};

static const struct config_key config_http_keys[] = {
	{ "root", config_key_path, CONFIG_HTTP(root), 0, 0 },
	{ "index", config_key_index, CONFIG_HTTP(index), 0, 0 },
	{ "autoindex", config_key_bool, CONFIG_HTTP(autoindex), 0, 0 },
	{ "follow_symlinks", config_key_bool, CONFIG_HTTP(follow_symlinks), 0, 0 },
	{ "dotfiles", config_key_bool, CONFIG_HTTP(dotfiles), 0, 0 },
	{ "mime_types", config_key_path, CONFIG_HTTP(mime_types), 0, 0 },
	{ "default_type", config_key_mime_type, CONFIG_HTTP(default_type), 0, 0 },
	{ "access_log", config_key_access_log, CONFIG_HTTP(access_log), 0, 0 },
	{ "health_path", config_key_health_path, CONFIG_HTTP(health_path), 0, 0 },
	{ "status_path", config_key_url_path, CONFIG_HTTP(status_path), 0, 0 },
	{ "header_timeout", config_key_duration, CONFIG_HTTP(header_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "keepalive_timeout", config_key_duration, CONFIG_HTTP(keepalive_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "send_timeout", config_key_duration, CONFIG_HTTP(send_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "keepalive_requests", config_key_count, CONFIG_HTTP(keepalive_requests), 1, UINT32_MAX },
	{ "max_connections", config_key_count, CONFIG_HTTP(max_connections), 0, CONFIG_CONNECTIONS_MAX },
	{ "max_body_size", config_key_size, CONFIG_HTTP(max_body_size), 0, UINT64_MAX },
	{ "max_request_line", config_key_size, CONFIG_HTTP(max_request_line), 64, 1u << 20 },
	{ "max_header_line", config_key_size, CONFIG_HTTP(max_header_line), 64, 1u << 20 },
	{ "max_header_size", config_key_size, CONFIG_HTTP(max_header_size), 64, 16u << 20 },
	{ "max_headers", config_key_count, CONFIG_HTTP(max_headers), 1, 128 },
	{ "file_cache_valid", config_key_duration, CONFIG_HTTP(file_cache_valid_ms), 0, CONFIG_DURATION_MAX_MS },
	{ "max_ranges", config_key_count, CONFIG_HTTP(max_ranges), 1, CONFIG_HTTP_MAX_RANGES },
	{ "charset", config_key_charset, CONFIG_HTTP(charset), 0, 0 },
	{ "file_cache_entries", config_key_count, CONFIG_HTTP(file_cache_entries), 1, 1u << 20 },
	{ "file_cache_max_file", config_key_size, CONFIG_HTTP(file_cache_max_file), 0, 32u << 10 },
	{ "file_cache_size", config_key_size, CONFIG_HTTP(file_cache_size), 0, 1u << 30 },
};

static const struct config_key config_listener_keys[] = {
	{ "address", config_key_address, CONFIG_LISTENER(address), 0, 0 },
	{ "protocol", config_key_protocol, CONFIG_LISTENER(protocol), 0, 0 },
	{ "backlog", config_key_count, CONFIG_LISTENER(backlog), 1, 65535 },
	{ "mode", config_key_mode, CONFIG_LISTENER(mode), 0, 0777 },
	{ "defer_accept", config_key_duration, CONFIG_LISTENER(defer_accept_ms), 0, 3600000 },
	{ "status", config_key_bool, CONFIG_LISTENER(status), 0, 0 },
};

/* Everything one config_load() call needs while inih drives it. */
struct config_parser {
	struct config *cfg;
	const char *path;
	struct config_ctx ctx;      /* what the key parsers see: directory, out of memory */
	FILE *file;
	char *linebuf;              /* the current physical line (getline) */
	size_t linecap;
	unsigned line;              /* number of the current line, from 1 */
	const char *long_value;     /* the value of a line too long for inih's buffer */
	int read_errno;

	enum config_section_kind section;
	char section_label[16 + CONFIG_NAME_MAX]; /* "server", "listener web", ... */
	size_t listener;            /* index of the current [listener] */
	bool saw_listener_header;

	/* Line where each key was first set (0: not yet), for "set twice". */
	unsigned server_seen[CONFIG_ARRAY_SIZE(config_server_keys)];
	unsigned echo_seen[CONFIG_ARRAY_SIZE(config_echo_keys)];
	unsigned http_seen[CONFIG_ARRAY_SIZE(config_http_keys)];
	unsigned listener_seen[CONFIG_MAX_LISTENERS][CONFIG_ARRAY_SIZE(config_listener_keys)];

	char *err;
	size_t err_len;
	size_t err_used;
	unsigned n_errors;
};

/* ------------------------------------------------------------ messages */

/* Append one message line to the caller's buffer, truncating safely. */
static void config_verror(struct config_parser *p, unsigned line, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void config_verror(struct config_parser *p, unsigned line, const char *fmt, va_list ap)
{
	p->n_errors++;
	if (!p->err || p->err_len == 0 || p->err_used >= p->err_len - 1)
		return;
	char *at = p->err + p->err_used;
	size_t room = p->err_len - p->err_used;
	int n;
	if (line > 0)
		n = snprintf(at, room, "%s%s:%u: ", p->err_used ? "\n" : "", p->path, line);
	else
		n = snprintf(at, room, "%s%s: ", p->err_used ? "\n" : "", p->path);
	if (n < 0)
		return;
	p->err_used += (size_t)n < room ? (size_t)n : room - 1;
	if (p->err_used >= p->err_len - 1)
		return;
	at = p->err + p->err_used;
	room = p->err_len - p->err_used;
	n = vsnprintf(at, room, fmt, ap);
	if (n < 0)
		return;
	p->err_used += (size_t)n < room ? (size_t)n : room - 1;
}

static void config_error(struct config_parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void config_error(struct config_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	config_verror(p, line, fmt, ap);
	va_end(ap);
}

/* "[section] key: expected ..., got 'value'" on the current line. */
static void config_value_error(struct config_parser *p, const char *key, const char *why,
			       const char *value)
{
	size_t len = strlen(value);
	config_error(p, p->line, "[%s] %s: %s, got '%.*s%s'", p->section_label, key, why,
		     len > CONFIG_QUOTE_MAX ? CONFIG_QUOTE_MAX : (int)len, value,
		     len > CONFIG_QUOTE_MAX ? "..." : "");
}

/* ------------------------------------------------------------ protocols */

static const struct config_protocol *config_protocols;
static size_t config_n_protocols;

void config_set_protocols(const struct config_protocol *list, size_t n)
{
	config_protocols = list;
	config_n_protocols = n;
}

static const struct config_protocol *config_protocol_find(const char *name)
{
	for (size_t i = 0; i < config_n_protocols; i++)
		if (strcasecmp(config_protocols[i].name, name) == 0)
			return &config_protocols[i];
	return NULL;
}

static CONFIG_KEY_PARSER(config_key_protocol)
{
	(void)ctx;
	(void)key;
	const struct config_protocol *proto = config_protocol_find(value);
	if (!proto) {
		/* "expected http or echo": the registered names, in table order */
		size_t off = (size_t)snprintf(why, why_len, "expected");
		for (size_t i = 0; i < config_n_protocols && off < why_len; i++)
			off += (size_t)snprintf(why + off, why_len - off, "%s %s", i ? " or" : "",
						config_protocols[i].name);
		return -EINVAL;
	}
	char *out = field;
	snprintf(out, CONFIG_PROTO_NAME_MAX + 1, "%s", proto->name);
	return 0;
}

/* ------------------------------------------------------------ sections */

static bool config_valid_listener_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 1 || len > CONFIG_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
			return false;
	return true;
}

/* A "[name]" line (name already trimmed): decide what its keys belong to.
 * Returns whether the section is one we check keys in. */
static bool config_begin_section(struct config_parser *p, const char *name)
{
	struct config *cfg = p->cfg;
	p->section = CONFIG_SECTION_SKIP;
	snprintf(p->section_label, sizeof(p->section_label), "%.*s",
		 (int)(sizeof(p->section_label) - 1), name);

	if (strcmp(name, "server") == 0)
		p->section = CONFIG_SECTION_SERVER;
	else if (strcmp(name, "echo") == 0)
		p->section = CONFIG_SECTION_ECHO;
	else if (strcmp(name, "http") == 0)
		p->section = CONFIG_SECTION_HTTP;
	if (p->section != CONFIG_SECTION_SKIP)
		return true;

	if (strncmp(name, "listener", 8) != 0 || (name[8] != '\0' && !isspace((unsigned char)name[8]))) {
		config_error(p, p->line, "unknown section [%s]", name);
		return false;
	}
	p->saw_listener_header = true;
	const char *lname = name + 8;
	while (isspace((unsigned char)*lname))
		lname++;
	if (*lname == '\0') {
		config_error(p, p->line, "[listener] needs a name: [listener NAME]");
		return false;
	}
	if (!config_valid_listener_name(lname)) {
		config_error(p, p->line,
			     "[%s] invalid listener name '%s': expected 1 to %d characters of "
			     "A-Z a-z 0-9 _ . - (it is also the systemd FileDescriptorName=)",
			     name, lname, CONFIG_NAME_MAX);
		return false;
	}
	const struct config_listener *dup = config_find_listener(cfg, lname);
	if (dup) {
		config_error(p, p->line, "duplicate listener '%s' (first defined at line %u)", lname,
			     dup->line);
		return false;
	}
	if (cfg->n_listeners >= CONFIG_MAX_LISTENERS) {
		config_error(p, p->line, "[listener %s] too many listeners (at most %d)", lname,
			     CONFIG_MAX_LISTENERS);
		return false;
	}

	struct config_listener *l = &cfg->listeners[cfg->n_listeners];
	memset(l, 0, sizeof(*l));
	memcpy(l->name, lname, strlen(lname) + 1);
	l->address.kind = ADDR_NONE;
	snprintf(l->protocol, sizeof(l->protocol), "%s", config_n_protocols ? config_protocols[0].name : "");
	l->backlog = 511;
	l->mode = 0666;
	l->status = false;
	l->line = p->line;
	p->listener = cfg->n_listeners++;
	p->section = CONFIG_SECTION_LISTENER;
	snprintf(p->section_label, sizeof(p->section_label), "listener %s", l->name);
	return true;
}

/* inih calls this for every key = value line (our reader has already
 * dropped the lines that are wrong in shape). Always returns 1: every
 * problem is collected here, none stops inih. */
static int config_handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct config_parser *p = user;
	const struct config_key *keys;
	size_t n_keys;
	unsigned *seen;
	char *base;
	(void)section; /* ours is tracked by the reader, including [listener] state */

	if (!name) /* builds with INI_CALL_HANDLER_ON_NEW_SECTION */
		return 1;
	if (p->long_value)
		value = p->long_value;
	if (!value)
		value = "";

	switch (p->section) {
	case CONFIG_SECTION_NONE:
		config_error(p, p->line,
			     "key '%s' is outside any section (put it under [server], [http], "
			     "[echo] or [listener NAME])",
			     name);
		return 1;
	case CONFIG_SECTION_SKIP:
		return 1; /* the header was already reported */
	case CONFIG_SECTION_SERVER:
		keys = config_server_keys;
		n_keys = CONFIG_ARRAY_SIZE(config_server_keys);
		seen = p->server_seen;
		base = (char *)&p->cfg->server;
		break;
	case CONFIG_SECTION_ECHO:
		keys = config_echo_keys;
		n_keys = CONFIG_ARRAY_SIZE(config_echo_keys);
		seen = p->echo_seen;
		base = (char *)&p->cfg->echo;
		break;
	case CONFIG_SECTION_HTTP:
		keys = config_http_keys;
		n_keys = CONFIG_ARRAY_SIZE(config_http_keys);
		seen = p->http_seen;
		base = (char *)&p->cfg->http;
		break;
	case CONFIG_SECTION_LISTENER:
	default:
		keys = config_listener_keys;
		n_keys = CONFIG_ARRAY_SIZE(config_listener_keys);
		seen = p->listener_seen[p->listener];
		base = (char *)&p->cfg->listeners[p->listener];
		break;
	}

	for (size_t i = 0; i < n_keys; i++) {
		if (strcmp(name, keys[i].name) != 0)
			continue;
		if (seen[i]) {
			config_error(p, p->line, "[%s] %s: set twice (first at line %u)",
				     p->section_label, name, seen[i]);
			return 1;
		}
		seen[i] = p->line;
		char why[256] = "";
		if (keys[i].parse(&p->ctx, &keys[i], base + keys[i].offset, value, why, sizeof(why)) < 0)
			config_value_error(p, name, why, value);
		return 1;
	}
	config_error(p, p->line, "[%s] unknown key '%s'", p->section_label, name);
	return 1;
}

/* ------------------------------------------------------------ reading */

/* Where inih would end a key name: '=' or ':', or an inline " ;" comment
 * (the same rule as inih's find_chars_or_comment()). */
static char *config_find_separator(char *s)
{
	bool was_space = false;
	for (; *s; s++) {
		if (*s == '=' || *s == ':' || (was_space && *s == ';'))
			return s;
		was_space = isspace((unsigned char)*s);
	}
	return s;
}

static void config_rstrip(char *s)
{
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
}

/* For a key line too long for inih: cut the value out the way inih would
 * (leading blanks, inline " ;" comment, trailing blanks). */
static char *config_split_value(char *sep)
{
	char *value = sep + 1;
	while (isspace((unsigned char)*value))
		value++;
	bool was_space = false;
	for (char *c = value; *c; c++) {
		if (was_space && *c == ';') {
			*c = '\0';
			break;
		}
		was_space = isspace((unsigned char)*c);
	}
	config_rstrip(value);
	return value;
}

static char *config_blank_line(char *buf, int num)
{
	if (num >= 2)
		memcpy(buf, "\n", 2);
	else if (num == 1)
		buf[0] = '\0';
	return buf;
}

/* inih's ini_reader: exactly one physical line per call, so inih's line
 * count and ours agree, and p->line is the line the handler is called for. */
static char *config_read_line(char *buf, int num, void *stream)
{
	struct config_parser *p = stream;
	errno = 0;
	ssize_t n = getline(&p->linebuf, &p->linecap, p->file);
	if (n < 0) {
		if (ferror(p->file))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->line++;
	p->long_value = NULL;
	if (num < 1)
		return NULL;

	char *s = p->linebuf;
	if (memchr(s, '\0', (size_t)n)) {
		config_error(p, p->line, "syntax error (the line contains a NUL byte)");
		return config_blank_line(buf, num);
	}
	if (p->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	config_rstrip(s);
	/* Leading blanks are dropped, so that inih never treats an indented line
	 * as the continuation of the previous value. */
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return config_blank_line(buf, num);

	if (*s == '[') {
		char *close = strchr(s, ']');
		char *rest = close ? close + 1 : NULL;
		while (rest && isspace((unsigned char)*rest))
			rest++;
		if (!close || (*rest != '\0' && *rest != ';' && *rest != '#')) {
			config_error(p, p->line,
				     "syntax error (expected 'key = value', '[section]' or a comment)");
			p->section = CONFIG_SECTION_SKIP;
			return config_blank_line(buf, num);
		}
		*close = '\0';
		char *name = s + 1;
		while (isspace((unsigned char)*name))
			name++;
		config_rstrip(name);
		bool known = config_begin_section(p, name);
		/* inih only needs to see that a section started; a name it would
		 * misread (such as one containing " ;") is already reported. */
		if (!known || (size_t)num < strlen(name) + 4)
			return config_blank_line(buf, num);
		snprintf(buf, (size_t)num, "[%s]\n", name);
		return buf;
	}

	char *sep = config_find_separator(s);
	if ((*sep != '=' && *sep != ':') || sep == s) {
		config_error(p, p->line,
			     "syntax error (expected 'key = value', '[section]' or a comment)");
		return config_blank_line(buf, num);
	}
	size_t len = strlen(s);
	if (len + 2 <= (size_t)num) {
		memcpy(buf, s, len);
		memcpy(buf + len, "\n", 2);
		return buf;
	}
	/* inih's buffer is too small for this line: give it the key alone and
	 * the handler the value through p->long_value. */
	size_t key_len = (size_t)(sep - s);
	if (key_len + 3 > (size_t)num) {
		config_error(p, p->line, "syntax error (key name too long)");
		return config_blank_line(buf, num);
	}
	memcpy(buf, s, key_len);
	memcpy(buf + key_len, "=\n", 3);
	p->long_value = config_split_value(sep);
	return buf;
}

/* The absolute directory holding path ("." made absolute with getcwd). */
static char *config_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (slash == path)
		return strdup("/");
	if (slash && path[0] == '/')
		return strndup(path, (size_t)(slash - path));

	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	int r;
	if (slash)
		r = asprintf(&dir, "%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/",
			     (int)(slash - path), path);
	else
		r = asprintf(&dir, "%s", cwd);
	free(cwd);
	return r < 0 ? NULL : dir;
}

/* Position of a key in its table, to find where it was set. */
static size_t config_key_slot(const struct config_key *keys, size_t n_keys, const char *name)
{
	for (size_t i = 0; i < n_keys; i++)
		if (strcmp(keys[i].name, name) == 0)
			return i;
	abort(); /* a typo in this file, not in the user's */
}

/* Checks that need the whole file: listeners exist and do not collide,
 * keys that depend on each other. */
static void config_check_all(struct config_parser *p)
{
	struct config *cfg = p->cfg;
	const size_t n_listener_keys = CONFIG_ARRAY_SIZE(config_listener_keys);
	const size_t address = config_key_slot(config_listener_keys, n_listener_keys, "address");
	const size_t status = config_key_slot(config_listener_keys, n_listener_keys, "status");
	const size_t defer = config_key_slot(config_listener_keys, n_listener_keys, "defer_accept");
	const size_t health = config_key_slot(config_http_keys, CONFIG_ARRAY_SIZE(config_http_keys),
					      "health_path");
	const size_t status_path = config_key_slot(config_http_keys,
						   CONFIG_ARRAY_SIZE(config_http_keys), "status_path");
	const size_t jitter = config_key_slot(config_server_keys, CONFIG_ARRAY_SIZE(config_server_keys),
					      "max_requests_jitter");

	if (!p->saw_listener_header)
		config_error(p, 0, "no [listener NAME] section: drover needs at least one socket to serve");

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct config_listener *l = &cfg->listeners[i];
		for (size_t j = 0; j < i; j++) {
			if (!config_address_equal(&l->address, &cfg->listeners[j].address))
				continue;
			config_error(p, p->listener_seen[i][address],
				     "[listener %s] address: %s is already used by [listener %s]",
				     l->name, l->address.text, cfg->listeners[j].name);
			break;
		}
		l->defer_accept_set = p->listener_seen[i][defer] != 0;
		if (l->defer_accept_ms && l->address.kind == ADDR_UNIX)
			config_error(p, p->listener_seen[i][defer],
				     "[listener %s] defer_accept: only for a TCP address, not %s", l->name,
				     l->address.text);
		const struct config_protocol *lp = config_protocol_find(l->protocol);
		if (l->status && !(lp && lp->status)) {
			const char *with = "";
			for (size_t k = 0; k < config_n_protocols; k++)
				if (config_protocols[k].status) {
					with = config_protocols[k].name;
					break;
				}
			config_error(p, p->listener_seen[i][status],
				     "[listener %s] status: expected no, because the status endpoint "
				     "needs protocol = %s and this listener is %s",
				     l->name, with, l->protocol);
		}
	}

	/* Where the path keys were set, for the checks of what they name
	 * (proto_paths_check, proto_files_open). */
	const size_t n_http = CONFIG_ARRAY_SIZE(config_http_keys);
	cfg->http.access_log_line = p->http_seen[config_key_slot(config_http_keys, n_http, "access_log")];
	cfg->http.root_line = p->http_seen[config_key_slot(config_http_keys, n_http, "root")];
	cfg->http.mime_types_line = p->http_seen[config_key_slot(config_http_keys, n_http, "mime_types")];

	const struct config_http *h = &cfg->http;
	if (h->health_path && h->status_path && h->health_path[0] &&
	    strcmp(h->health_path, h->status_path) == 0) {
		unsigned line = p->http_seen[status_path] > p->http_seen[health]
					? p->http_seen[status_path] : p->http_seen[health];
		config_error(p, line, "[http] status_path: expected a path other than health_path, got '%s'",
			     h->status_path);
	}

	/* Every worker of every generation alive at once needs a scoreboard slot. */
	if ((uint64_t)cfg->server.workers * cfg->server.max_generations > SCOREBOARD_SLOTS) {
		const size_t gens = config_key_slot(config_server_keys, CONFIG_ARRAY_SIZE(config_server_keys),
						    "max_generations");
		config_error(p, p->server_seen[gens],
			     "[server] max_generations: expected at most %u with workers = %u "
			     "(workers x max_generations <= %u), got %u",
			     SCOREBOARD_SLOTS / cfg->server.workers, cfg->server.workers, SCOREBOARD_SLOTS,
			     cfg->server.max_generations);
	}

	/* Unset jitter follows max_requests, so that workers started together
	 * are not all recycled together. */
	if (!p->server_seen[jitter])
		cfg->server.max_requests_jitter = cfg->server.max_requests / 10;
}

/* ------------------------------------------------------------ public */

struct config *config_new_default(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	struct config_server *s = &cfg->server;
	s->workers = config_workers_auto();
	s->shutdown_timeout_ms = 30000;
	s->log_level = LOG_INFO;
	s->max_connections = 1024;
	s->worker_timeout_ms = 30000;
	s->max_requests = 0;
	s->max_requests_jitter = 0;
	s->lingering_timeout_ms = 2000;
	s->max_generations = 4;

	cfg->echo.idle_timeout_ms = 60000;
	cfg->echo.buffer_size = 64 * 1024;

	struct config_http *h = &cfg->http;
	h->root = strdup(PKGDATADIR "/www");
	h->index = strdup("index.html");
	h->mime_types = strdup("/etc/mime.types");
	h->default_type = strdup("application/octet-stream");
	h->access_log = strdup("off");
	h->health_path = strdup("/healthz");
	h->status_path = strdup("/status");
	h->header_timeout_ms = 10000;
	h->keepalive_timeout_ms = 15000;
	h->send_timeout_ms = 60000;
	h->keepalive_requests = 1000;
	h->max_connections = 0;
	h->max_body_size = 1024 * 1024;
	h->max_request_line = 8192;
	h->max_header_line = 8192;
	h->max_header_size = 32768;
	h->max_headers = 100;
	h->file_cache_valid_ms = 1000;
	h->max_ranges = 16;
	h->charset = NULL; /* none, as nginx */
	h->file_cache_entries = 512;
	h->file_cache_max_file = 16 * 1024;
	h->file_cache_size = 4u << 20;
	if (!h->root || !h->index || !h->mime_types || !h->default_type || !h->access_log ||
	    !h->health_path || !h->status_path) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->server.user);
	free(cfg->server.group);
	free(cfg->server.control_socket);
	free(cfg->server.pid_file);
	free(cfg->http.root);
	free(cfg->http.index);
	free(cfg->http.mime_types);
	free(cfg->http.default_type);
	free(cfg->http.access_log);
	free(cfg->http.health_path);
	free(cfg->http.status_path);
	free(cfg->http.charset);
	free(cfg);
}

const struct config_listener *config_find_listener(const struct config *cfg, const char *name)
{
	if (!cfg || !name)
		return NULL;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	return NULL;
}

int config_identity(const struct config *cfg, struct config_identity *id, const char **missing)
{
	return config_identity_lookup(cfg->server.user, cfg->server.group, id, missing);
}

int config_load(const char *path, struct config **out, char *err, size_t err_len)
{
	int r = 0;
	if (out)
		*out = NULL;
	if (err && err_len > 0)
		err[0] = '\0';
	if (!path || !out)
		return -EINVAL;

	/* Big (listener_seen), so not on the stack. */
	struct config_parser *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->path = path;
	p->err = err;
	p->err_len = err_len;
	p->section = CONFIG_SECTION_NONE;

	p->file = fopen(path, "re");
	if (!p->file) {
		r = -errno;
		config_error(p, 0, "cannot open: %s", strerror(-r));
		goto out;
	}
	p->cfg = config_new_default();
	p->ctx.dir = config_dir_of(path);
	if (!p->cfg || !p->ctx.dir || !(p->cfg->path = strdup(path))) {
		r = -ENOMEM;
		config_error(p, 0, "out of memory");
		goto out;
	}

	int line = ini_parse_stream(config_read_line, p, config_handle_key, p);
	if (p->read_errno) {
		r = -p->read_errno;
		config_error(p, 0, "cannot read: %s", strerror(p->read_errno));
		goto out;
	}
	if (line == -2)
		p->ctx.oom = true;
	else if (line > 0) /* only if our reader and inih disagree on a line */
		config_error(p, (unsigned)line,
			     "syntax error (expected 'key = value', '[section]' or a comment)");
	if (p->ctx.oom) {
		r = -ENOMEM;
		config_error(p, 0, "out of memory");
		goto out;
	}

	config_check_all(p);
	if (p->ctx.oom) {
		r = -ENOMEM;
		config_error(p, 0, "out of memory");
	} else if (p->n_errors > 0) {
		r = -EINVAL;
	}

out:
	if (r == 0) {
		*out = p->cfg;
		p->cfg = NULL;
	}
	config_free(p->cfg);
	if (p->file)
		fclose(p->file);
	free(p->linebuf);
	free(p->ctx.dir);
	free(p);
	return r;
}
