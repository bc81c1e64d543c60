/* config: the one INI file, read with inih, checked key by key. This file
 * holds [server] and the generic [listener NAME] keys with their tables and
 * defaults, the line reader that feeds inih, the sections of the file
 * (core's and those the modules registered, config_section.c), the checks
 * across keys (core's, and each module section's check()), and the
 * messages. The grammar of each value is in config_value.c; every
 * protocol's and transport's keys are in its own files.
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

#include "core/config_section.h"
#include "core/config_value.h"
#include "core/log.h"
#include "core/scoreboard.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Longest value quoted back in a message; the rest is elided. */
#define CONFIG_QUOTE_MAX 100

enum config_section_kind {
	CONFIG_SECTION_NONE,     /* before the first [section] */
	CONFIG_SECTION_SKIP,     /* unknown or broken header: its keys are not checked */
	CONFIG_SECTION_SERVER,
	CONFIG_SECTION_LISTENER,
	CONFIG_SECTION_PART,     /* a module's section: cfg->parts[p->part] */
};

static CONFIG_KEY_PARSER(config_key_protocol);

#define CONFIG_SERVER(member) CONFIG_FIELD(struct config_server, member)
#define CONFIG_LISTENER(member) CONFIG_FIELD(struct config_listener, member)

static const struct config_key config_server_keys[] = {
	{ "workers", config_key_workers, CONFIG_SERVER(workers), 1, CONFIG_WORKERS_MAX },
	{ "shutdown_timeout", config_key_duration, CONFIG_SERVER(shutdown_timeout_ms), 0, CONFIG_DURATION_MAX_MS },
	{ "lame_duck", config_key_duration, CONFIG_SERVER(lame_duck_ms), 0, CONFIG_DURATION_MAX_MS },
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
	{ "handoff", config_key_bool, CONFIG_SERVER(handoff), 0, 0 },
};

/* The generic keys of [listener NAME]; modules add theirs (config_module.listener). */
static const struct config_key config_listener_core_keys[] = {
	{ "address", config_key_address, CONFIG_LISTENER(address), 0, 0 },
	{ "protocol", config_key_protocol, CONFIG_LISTENER(protocol), 0, 0 },
	{ "backlog", config_key_count, CONFIG_LISTENER(backlog), 1, 65535 },
	{ "mode", config_key_mode, CONFIG_LISTENER(mode), 0, 0777 },
	{ "defer_accept", config_key_duration, CONFIG_LISTENER(defer_accept_ms), 0, 3600000 },
	{ "proxy_protocol", config_key_bool, CONFIG_LISTENER(proxy_protocol), 0, 0 },
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
	char section_label[32 + CONFIG_NAME_MAX]; /* "server", "listener web", ... */
	size_t listener;            /* index of the current [listener] */
	size_t part;                /* index of the current module section in cfg->parts */
	bool saw_listener_header;

	/* Line where each core key was first set (0: not yet), for "set twice";
	 * a module section's are in its struct config_part. */
	unsigned server_seen[CONFIG_ARRAY_SIZE(config_server_keys)];
	unsigned listener_seen[CONFIG_MAX_LISTENERS][CONFIG_ARRAY_SIZE(config_listener_core_keys)];

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

static CONFIG_KEY_PARSER(config_key_protocol)
{
	(void)ctx;
	(void)key;
	const struct config_protocol *proto = config_protocol_find(value);
	if (!proto) {
		/* "expected http or echo": the registered names, in table order */
		size_t off = (size_t)snprintf(why, why_len, "expected");
		const struct config_protocol *pr;
		for (size_t i = 0; (pr = config_protocol_at(i)) && off < why_len; i++)
			off += (size_t)snprintf(why + off, why_len - off, "%s %s", i ? " or" : "", pr->name);
		return -EINVAL;
	}
	char *out = field;
	snprintf(out, CONFIG_PROTO_NAME_MAX + 1, "%s", proto->name);
	return 0;
}

/* ------------------------------------------------------------ sections */

static bool config_valid_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 1 || len > CONFIG_NAME_MAX)
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
			return false;
	return true;
}

/* The NAME of a "[kind NAME]" header (header: the whole name, rest: what
 * follows kind), or NULL when it is missing or invalid (reported). hint
 * ends the invalid-name message. */
static const char *config_section_name(struct config_parser *p, const char *header, const char *kind,
				       const char *rest, const char *hint)
{
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest == '\0') {
		config_error(p, p->line, "[%s] needs a name: [%s NAME]", kind, kind);
		return NULL;
	}
	if (!config_valid_name(rest)) {
		config_error(p, p->line,
			     "[%s] invalid %s name '%s': expected 1 to %d characters of "
			     "A-Z a-z 0-9 _ . -%s",
			     header, kind, rest, CONFIG_NAME_MAX, hint);
		return NULL;
	}
	return rest;
}

/* "[listener NAME]" (rest: what follows "listener"): a new listener with
 * the generic defaults and each module's listener keys' defaults. */
static bool config_begin_listener(struct config_parser *p, const char *header, const char *rest)
{
	struct config *cfg = p->cfg;
	p->saw_listener_header = true;
	const char *lname = config_section_name(p, header, "listener", rest,
						" (it is also the systemd FileDescriptorName=)");
	if (!lname)
		return false;
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
	const struct config_protocol *first = config_protocol_at(0);
	snprintf(l->protocol, sizeof(l->protocol), "%s", first ? first->name : "");
	l->backlog = 511;
	l->mode = 0666;
	l->line = p->line;
	p->listener = cfg->n_listeners++;
	if (config_parts_for_listener(&l->ext, &l->n_ext) < 0)
		p->ctx.oom = true;
	p->section = CONFIG_SECTION_LISTENER;
	snprintf(p->section_label, sizeof(p->section_label), "listener %s", l->name);
	return true;
}

/* "[kind NAME]" of a module's named section sec: a new instance, defaults in. */
static bool config_begin_named(struct config_parser *p, const char *header,
			       const struct config_section *sec, const char *rest)
{
	struct config *cfg = p->cfg;
	const char *name = config_section_name(p, header, sec->name, rest, "");
	if (!name)
		return false;
	size_t count = 0;
	for (size_t i = 0; i < cfg->n_parts; i++) {
		count += cfg->parts[i].section->named;
		if (cfg->parts[i].section == sec && strcmp(cfg->parts[i].name, name) == 0) {
			config_error(p, p->line, "duplicate %s '%s' (first defined at line %u)", sec->name,
				     name, cfg->parts[i].line);
			return false;
		}
	}
	if (count >= CONFIG_MAX_NAMED) {
		config_error(p, p->line, "[%s %s] too many named sections (at most %d)", sec->name, name,
			     CONFIG_MAX_NAMED);
		return false;
	}
	struct config_part *part = config_parts_add(&cfg->parts, &cfg->n_parts, sec);
	if (!part) {
		p->ctx.oom = true;
		return false;
	}
	snprintf(part->name, sizeof(part->name), "%s", name);
	part->line = p->line;
	p->part = cfg->n_parts - 1;
	p->section = CONFIG_SECTION_PART;
	snprintf(p->section_label, sizeof(p->section_label), "%s %s", sec->name, part->name);
	return true;
}

/* A "[name]" line (name already trimmed): decide what its keys belong to.
 * Returns whether the section is one we check keys in. */
static bool config_begin_section(struct config_parser *p, const char *name)
{
	p->section = CONFIG_SECTION_SKIP;
	snprintf(p->section_label, sizeof(p->section_label), "%.*s",
		 (int)(sizeof(p->section_label) - 1), name);

	size_t word = 0;
	while (name[word] && !isspace((unsigned char)name[word]))
		word++;
	if (strcmp(name, "server") == 0) {
		p->section = CONFIG_SECTION_SERVER;
		return true;
	}
	if (word == 8 && strncmp(name, "listener", 8) == 0)
		return config_begin_listener(p, name, name + 8);
	const struct config_section *sec = config_section_named(name, word);
	if (sec && sec->named)
		return config_begin_named(p, name, sec, name + word);
	for (size_t i = 0; sec && name[word] == '\0' && i < p->cfg->n_parts; i++) {
		struct config_part *part = &p->cfg->parts[i];
		if (part->section != sec)
			continue;
		/* A section given twice is one section: "set twice" spans both. */
		if (!part->line)
			part->line = p->line;
		p->part = i;
		p->section = CONFIG_SECTION_PART;
		return true;
	}
	config_error(p, p->line, "unknown section [%s]", name);
	return false;
}

/* Look name up in one key table: true when it is one of its keys (then
 * set, or reported). */
static bool config_set_key(struct config_parser *p, const struct config_key *keys, size_t n_keys,
			   unsigned *seen, char *base, const char *name, const char *value)
{
	for (size_t i = 0; i < n_keys; i++) {
		if (strcmp(name, keys[i].name) != 0)
			continue;
		if (seen[i]) {
			config_error(p, p->line, "[%s] %s: set twice (first at line %u)",
				     p->section_label, name, seen[i]);
			return true;
		}
		seen[i] = p->line;
		char why[256] = "";
		if (keys[i].parse(&p->ctx, &keys[i], base + keys[i].offset, value, why, sizeof(why)) < 0)
			config_value_error(p, name, why, value);
		return true;
	}
	return false;
}

/* inih calls this for every key = value line (our reader has already
 * dropped the lines that are wrong in shape). Always returns 1: every
 * problem is collected here, none stops inih. */
static int config_handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct config_parser *p = user;
	struct config *cfg = p->cfg;
	bool found = false;
	(void)section; /* ours is tracked by the reader, including [listener] state */

	if (!name) /* builds with INI_CALL_HANDLER_ON_NEW_SECTION */
		return 1;
	if (p->long_value)
		value = p->long_value;
	if (!value)
		value = "";

	switch (p->section) {
	case CONFIG_SECTION_NONE: {
		char where[512];
		config_section_list(where, sizeof(where));
		config_error(p, p->line, "key '%s' is outside any section (put it under %s)", name, where);
		return 1;
	}
	case CONFIG_SECTION_SKIP:
		return 1; /* the header was already reported */
	case CONFIG_SECTION_SERVER:
		found = config_set_key(p, config_server_keys, CONFIG_ARRAY_SIZE(config_server_keys),
				       p->server_seen, (char *)&cfg->server, name, value);
		break;
	case CONFIG_SECTION_LISTENER: {
		struct config_listener *l = &cfg->listeners[p->listener];
		found = config_set_key(p, config_listener_core_keys, CONFIG_ARRAY_SIZE(config_listener_core_keys),
				       p->listener_seen[p->listener], (char *)l, name, value);
		for (size_t i = 0; i < l->n_ext && !found; i++)
			found = config_set_key(p, l->ext[i].section->keys, l->ext[i].section->n_keys,
					       l->ext[i].seen, l->ext[i].data, name, value);
		break;
	}
	case CONFIG_SECTION_PART:
	default: {
		struct config_part *part = &cfg->parts[p->part];
		found = config_set_key(p, part->section->keys, part->section->n_keys, part->seen,
				       part->data, name, value);
		break;
	}
	}
	if (!found)
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
	abort(); /* a typo in the table's own code, not in the user's file */
}

/* ------------------------------------------------------------ checks */

/* What a section's check() sees: the load, and the section it checks. */
struct config_check {
	struct config_parser *p;
	const struct config_part *part;
	const struct config_listener *listener; /* listener keys: whose */
	const char *owner;                      /* the protocol that registered it; NULL: a transport */
	char label[32 + CONFIG_NAME_MAX];
};

const struct config *config_check_config(const struct config_check *chk) { return chk->p->cfg; }

const struct config_listener *config_check_listener(const struct config_check *chk)
{
	return chk->listener;
}

const char *config_check_label(const struct config_check *chk) { return chk->label; }

unsigned config_check_section_line(const struct config_check *chk)
{
	return chk->listener ? chk->listener->line : chk->part->line;
}

unsigned config_check_line(const struct config_check *chk, const char *key)
{
	return config_part_line(chk->part, key);
}

void config_check_error(struct config_check *chk, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	config_verror(chk->p, line, fmt, ap);
	va_end(ap);
}

void config_check_own_protocol(struct config_check *chk, const char *key, bool on, const char *what)
{
	const struct config_listener *l = chk->listener;
	if (!on || !l || !chk->owner || strcmp(l->protocol, chk->owner) == 0)
		return;
	config_check_error(chk, config_check_line(chk, key),
			   "[listener %s] %s: expected no, because %s needs protocol = %s and this "
			   "listener is %s",
			   l->name, key, what, chk->owner, l->protocol);
}

/* Run part's check(), as listener l's keys when l is not NULL. */
static void config_check_part(struct config_parser *p, const struct config_part *part,
			      const struct config_listener *l)
{
	if (!part->section->check)
		return;
	struct config_check chk = {
		.p = p, .part = part, .listener = l, .owner = config_owner_of(part->section),
	};
	if (l)
		snprintf(chk.label, sizeof(chk.label), "listener %s", l->name);
	else if (part->section->named)
		snprintf(chk.label, sizeof(chk.label), "%s %s", part->section->name, part->name);
	else
		snprintf(chk.label, sizeof(chk.label), "%s", part->section->name);
	part->section->check(&chk, part->data);
}

/* Checks that need the whole file: listeners exist and do not collide,
 * keys that depend on each other. Core's, and each module's check(): per
 * listener its listener keys', then its sections'. */
static void config_check_all(struct config_parser *p)
{
	struct config *cfg = p->cfg;
	const size_t n_listener_keys = CONFIG_ARRAY_SIZE(config_listener_core_keys);
	const size_t address = config_key_slot(config_listener_core_keys, n_listener_keys, "address");
	const size_t defer = config_key_slot(config_listener_core_keys, n_listener_keys, "defer_accept");
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
		for (size_t e = 0; e < l->n_ext; e++)
			config_check_part(p, &l->ext[e], l);
	}
	for (size_t i = 0; i < cfg->n_parts; i++)
		config_check_part(p, &cfg->parts[i], NULL);

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
	s->handoff = true;

	/* Every single section of every module, with its defaults. */
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++) {
		for (size_t k = 0; k < m->n_sections; k++) {
			if (m->sections[k].named)
				continue;
			if (!config_parts_add(&cfg->parts, &cfg->n_parts, &m->sections[k])) {
				config_free(cfg);
				return NULL;
			}
		}
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
	for (size_t i = 0; i < cfg->n_listeners; i++)
		config_parts_free(cfg->listeners[i].ext, cfg->listeners[i].n_ext);
	config_parts_free(cfg->parts, cfg->n_parts);
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

void config_set_protocols(const struct config_protocol *list, size_t n)
{
	config_registry_protocols(list, n);
	config_registry_check(config_listener_core_keys, CONFIG_ARRAY_SIZE(config_listener_core_keys));
}

void config_set_transports(const struct config_module *const *list, size_t n)
{
	config_registry_transports(list, n);
	config_registry_check(config_listener_core_keys, CONFIG_ARRAY_SIZE(config_listener_core_keys));
}

const void *config_section(const struct config *cfg, const struct config_section *sec)
{
	for (size_t i = 0; cfg && !sec->named && i < cfg->n_parts; i++)
		if (cfg->parts[i].section == sec)
			return cfg->parts[i].data;
	return NULL;
}

const void *config_section_at(const struct config *cfg, const struct config_section *sec, size_t i,
			      const char **name)
{
	for (size_t k = 0; cfg && sec->named && k < cfg->n_parts; k++) {
		if (cfg->parts[k].section != sec)
			continue;
		if (i > 0) {
			i--;
			continue;
		}
		if (name)
			*name = cfg->parts[k].name;
		return cfg->parts[k].data;
	}
	return NULL;
}

const void *config_listener_keys(const struct config_listener *l, const struct config_section *sec)
{
	for (size_t i = 0; l && i < l->n_ext; i++)
		if (l->ext[i].section == sec)
			return l->ext[i].data;
	return NULL;
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
