/* config_value: what a configuration value may look like (durations, sizes,
 * booleans, counts, permission bits, addresses, paths, user and group
 * names) and the "expected ..." text for each when it does not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf; configure passes it too */
#endif
#include "core/config_value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CONFIG_SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static const char config_expect_duration[] = "expected a duration like 500ms, 30s or 2m";
static const char config_expect_size[] = "expected a size like 512, 64k or 1m";
static const char config_expect_address[] =
	"expected HOST:PORT, [IPv6]:PORT, *:PORT or unix:/absolute/path";

/* ------------------------------------------------------------ messages */

/* A bound for a message, in the largest unit that states it exactly. */
static void config_format_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 86400000 == 0)
		snprintf(buf, len, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void config_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "gmk";
	for (size_t i = 0; i < 3; i++) {
		unsigned shift = (unsigned)(30 - 10 * i);
		if (bytes != 0 && bytes % (1ull << shift) == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* ------------------------------------------------------------ values */

/* One or more decimal digits and nothing else; no sign, no spaces, no
 * overflow (strtoull accepts all three). *end is the first non-digit. */
static int config_parse_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t n = 0;
	const char *c = s;
	for (; *c >= '0' && *c <= '9'; c++) {
		unsigned d = (unsigned)(*c - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -EINVAL;
		n = n * 10 + d;
	}
	if (c == s)
		return -EINVAL;
	*out = n;
	*end = c;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 },
	};
	uint64_t n;
	const char *end;
	if (!s || config_parse_digits(s, &n, &end) < 0)
		return -EINVAL;
	for (size_t i = 0; i < CONFIG_ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].unit) != 0)
			continue;
		if (n > UINT64_MAX / units[i].ms)
			return -EINVAL;
		*ms = n * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n;
	const char *end;
	unsigned shift;
	if (!s || config_parse_digits(s, &n, &end) < 0)
		return -EINVAL;
	if (*end == '\0')
		shift = 0;
	else if (end[1] != '\0')
		return -EINVAL;
	else if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	else
		return -EINVAL;
	if (n > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = n << shift;
	return 0;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < CONFIG_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int config_parse_port(const char *s, in_port_t *port)
{
	uint64_t n;
	const char *end;
	if (config_parse_digits(s, &n, &end) < 0 || *end != '\0' || n < 1 || n > 65535)
		return -EINVAL;
	*port = htons((uint16_t)n);
	return 0;
}

/* "unix:/absolute/path" into out. */
static int config_address_unix(const char *s, struct config_address *out, const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
	const char *path = s + 5;
	size_t plen = strlen(path);
	if (path[0] != '/') {
		*why = " (a unix socket path must be absolute)";
		return -EINVAL;
	}
	if (plen > CONFIG_SUN_PATH_MAX) {
		*why = " (a unix socket path must fit in 107 bytes)";
		return -EINVAL;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, plen + 1);
	out->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	out->kind = ADDR_UNIX;
	return 0;
}

/* Split "HOST:PORT" or "[HOST]:PORT": host copied out (host_len bytes of
 * room), *port pointing into s, *v6 for the bracketed form. */
static int config_address_split(const char *s, char *host, size_t host_len, const char **port,
				bool *v6, const char **why)
{
	const char *from = s, *to;
	*v6 = s[0] == '[';
	if (*v6) {
		to = strchr(s, ']');
		if (!to) {
			*why = " (missing ']' after the IPv6 address)";
			return -EINVAL;
		}
		if (to[1] != ':') {
			*why = " (missing :PORT)";
			return -EINVAL;
		}
		from = s + 1;
		*port = to + 2;
	} else {
		to = strrchr(s, ':');
		if (!to) {
			*why = " (missing :PORT)";
			return -EINVAL;
		}
		if (memchr(s, ':', (size_t)(to - s))) {
			*why = " (IPv6 addresses go in brackets, like [::1]:8080)";
			return -EINVAL;
		}
		*port = to + 1;
	}
	size_t hlen = (size_t)(to - from);
	if (hlen >= host_len || (!*v6 && hlen == 0)) {
		*why = *v6 ? " (not a numeric IPv6 address)" : " (missing or bad HOST)";
		return -EINVAL;
	}
	memcpy(host, from, hlen);
	host[hlen] = '\0';
	return 0;
}

/* "HOST:PORT", "[v6]:PORT", "*:PORT" into out. */
static int config_address_inet(const char *s, struct config_address *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	bool v6;
	in_port_t nport;
	if (config_address_split(s, host, sizeof(host), &port, &v6, why) < 0)
		return -EINVAL;
	if (config_parse_port(port, &nport) < 0) {
		*why = " (the port must be a number from 1 to 65535)";
		return -EINVAL;
	}
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = " (not a numeric IPv6 address)";
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = nport;
		out->sa_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
		/* Names would need the resolver at start-up; only these two are
		 * unambiguous enough to accept. */
		if (strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (strcmp(host, "localhost") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = " (HOST must be a numeric IPv4 address, '*' or localhost)";
			return -EINVAL;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = nport;
		out->sa_len = sizeof(*sin);
	}
	out->kind = ADDR_INET;
	return 0;
}

/* config_parse_address() that also says what was wrong, for messages. */
static int config_address_parse(const char *s, struct config_address *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = "";
	size_t len = strlen(s);
	if (len >= sizeof(out->text)) {
		*why = " (too long)";
		return -EINVAL;
	}
	int r = strncmp(s, "unix:", 5) == 0 ? config_address_unix(s, out, why)
					    : config_address_inet(s, out, why);
	if (r < 0)
		return r;
	memcpy(out->text, s, len + 1);
	return 0;
}

int config_parse_address(const char *s, struct config_address *out)
{
	const char *why;
	if (!s || !out)
		return -EINVAL;
	return config_address_parse(s, out, &why);
}

/* Same socket, however it was spelled ("localhost:80" is "127.0.0.1:80"). */
bool config_address_equal(const struct config_address *a, const struct config_address *b)
{
	if (a->kind != b->kind || a->kind == ADDR_NONE)
		return false;
	if (a->kind == ADDR_UNIX)
		return strcmp(((const struct sockaddr_un *)&a->sa)->sun_path,
			      ((const struct sockaddr_un *)&b->sa)->sun_path) == 0;
	if (a->sa.ss_family != b->sa.ss_family)
		return false;
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)&a->sa;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&b->sa;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->sa;
	const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->sa;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int config_identity_lookup(const char *user, const char *group, struct config_identity *id,
			   const char **missing)
{
	id->uid = geteuid();
	id->gid = getegid();
	id->name[0] = '\0';
	if (user) {
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			*missing = "user";
			return -ESRCH;
		}
		id->uid = pw->pw_uid;
		id->gid = pw->pw_gid;
		snprintf(id->name, sizeof(id->name), "%s", pw->pw_name);
	}
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr) {
			*missing = "group";
			return -ESRCH;
		}
		id->gid = gr->gr_gid;
	}
	return 0;
}

/* ------------------------------------------------------------ key parsers */

/* Integer fields of any width share the count/size/duration parsers. */
static void config_store_uint(void *field, size_t size, uint64_t v)
{
	if (size == sizeof(uint64_t)) {
		uint64_t x = v;
		memcpy(field, &x, sizeof(x));
	} else if (size == sizeof(uint32_t)) {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, sizeof(x));
	} else {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, sizeof(x));
	}
}

static void config_expect_count(const struct config_key *key, char *why, size_t why_len)
{
	if (key->max == UINT64_MAX || key->max == UINT32_MAX)
		snprintf(why, why_len, "expected a whole number of at least %llu",
			 (unsigned long long)key->min);
	else
		snprintf(why, why_len, "expected a whole number from %llu to %llu",
			 (unsigned long long)key->min, (unsigned long long)key->max);
}

CONFIG_KEY_PARSER(config_key_count)
{
	uint64_t n;
	const char *end;
	(void)ctx;
	if (config_parse_digits(value, &n, &end) < 0 || *end != '\0' || n < key->min ||
	    n > key->max) {
		config_expect_count(key, why, why_len);
		return -EINVAL;
	}
	config_store_uint(field, key->size, n);
	return 0;
}

unsigned config_workers_auto(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	if ((unsigned long)n > CONFIG_WORKERS_MAX)
		return CONFIG_WORKERS_MAX;
	return (unsigned)n;
}

CONFIG_KEY_PARSER(config_key_workers)
{
	if (strcasecmp(value, "auto") == 0) {
		config_store_uint(field, key->size, config_workers_auto());
		return 0;
	}
	if (config_key_count(ctx, key, field, value, why, why_len) < 0) {
		snprintf(why, why_len, "expected 'auto' or a whole number from %llu to %llu",
			 (unsigned long long)key->min, (unsigned long long)key->max);
		return -EINVAL;
	}
	return 0;
}

/* A duration or a size within [key->min, key->max]. */
static int config_key_quantity(const struct config_key *key, void *field, const char *value,
			       char *why, size_t why_len, int (*parse)(const char *, uint64_t *),
			       void (*format)(uint64_t, char *, size_t), const char *expect,
			       const char *noun)
{
	uint64_t n;
	if (parse(value, &n) < 0) {
		snprintf(why, why_len, "%s", expect);
		return -EINVAL;
	}
	if (n < key->min || n > key->max) {
		char lo[32], hi[32];
		format(key->min, lo, sizeof(lo));
		if (key->max == UINT64_MAX) {
			snprintf(why, why_len, "expected a %s of at least %s", noun, lo);
		} else {
			format(key->max, hi, sizeof(hi));
			snprintf(why, why_len, "expected a %s from %s to %s", noun, lo, hi);
		}
		return -EINVAL;
	}
	config_store_uint(field, key->size, n);
	return 0;
}

CONFIG_KEY_PARSER(config_key_duration)
{
	(void)ctx;
	return config_key_quantity(key, field, value, why, why_len, config_parse_duration,
				   config_format_duration, config_expect_duration, "duration");
}

CONFIG_KEY_PARSER(config_key_size)
{
	(void)ctx;
	return config_key_quantity(key, field, value, why, why_len, config_parse_size,
				   config_format_size, config_expect_size, "size");
}

CONFIG_KEY_PARSER(config_key_bool)
{
	bool b;
	(void)ctx;
	(void)key;
	if (config_parse_bool(value, &b) < 0) {
		snprintf(why, why_len, "expected yes or no (or true/false, on/off, 1/0)");
		return -EINVAL;
	}
	memcpy(field, &b, sizeof(b));
	return 0;
}

CONFIG_KEY_PARSER(config_key_log_level)
{
	(void)ctx;
	(void)key;
	int level = log_level_from_name(value);
	if (level < 0) {
		snprintf(why, why_len,
			 "expected a log level: emerg, alert, crit, err, warning, notice, info or debug");
		return -EINVAL;
	}
	memcpy(field, &level, sizeof(level));
	return 0;
}

/* Replace a string field; NULL value clears it. Allocation failure is
 * remembered and reported once at the end. */
void config_set_string(struct config_ctx *ctx, char **field, const char *value)
{
	char *copy = NULL;
	if (value && !(copy = strdup(value))) {
		ctx->oom = true;
		return;
	}
	free(*field);
	*field = copy;
}

/* A path as written, or joined to the file's directory when relative; not
 * otherwise normalised, and not required to exist yet. */
static char *config_resolve_path(struct config_ctx *ctx, const char *value)
{
	char *out;
	if (value[0] == '/' || !ctx->dir) {
		out = strdup(value);
	} else {
		size_t dlen = strlen(ctx->dir);
		const char *sep = dlen > 0 && ctx->dir[dlen - 1] == '/' ? "" : "/";
		if (asprintf(&out, "%s%s%s", ctx->dir, sep, value) < 0)
			out = NULL;
	}
	if (!out)
		ctx->oom = true;
	return out;
}

void config_set_path(struct config_ctx *ctx, char **field, const char *value)
{
	char *resolved = config_resolve_path(ctx, value);
	if (!resolved)
		return;
	free(*field);
	*field = resolved;
}

bool config_is_token_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

CONFIG_KEY_PARSER(config_key_account)
{
	(void)key;
	if (value[0] == '\0') {
		config_set_string(ctx, field, NULL);
		return 0;
	}
	if (!config_is_token_text(value) || strchr(value, ':') || strchr(value, '/')) {
		snprintf(why, why_len, "expected a user or group name (or a numeric id)");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

CONFIG_KEY_PARSER(config_key_control_socket)
{
	(void)key;
	if (value[0] == '\0' || strcmp(value, "off") == 0) {
		config_set_string(ctx, field, "");
		return 0;
	}
	char *resolved = config_resolve_path(ctx, value);
	if (!resolved)
		return 0;
	/* It becomes a sockaddr_un; say so now rather than at bind(). */
	if (strlen(resolved) > CONFIG_SUN_PATH_MAX) {
		free(resolved);
		snprintf(why, why_len, "expected 'off' or a unix socket path of at most %zu bytes",
			 (size_t)CONFIG_SUN_PATH_MAX);
		return -EINVAL;
	}
	/* drover replaces a stale socket there, never anything else. */
	struct stat st;
	if (lstat(resolved, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(why, why_len, "expected 'off' or a unix socket path; %.200s exists and is not a socket",
			 resolved);
		free(resolved);
		return -EINVAL;
	}
	free(*(char **)field);
	*(char **)field = resolved;
	return 0;
}

CONFIG_KEY_PARSER(config_key_pid_file)
{
	(void)key;
	(void)why;
	(void)why_len;
	if (value[0] == '\0' || strcmp(value, "off") == 0)
		config_set_string(ctx, field, NULL);
	else
		config_set_path(ctx, field, value);
	return 0;
}

CONFIG_KEY_PARSER(config_key_path)
{
	(void)key;
	if (value[0] == '\0') {
		snprintf(why, why_len, "expected a path");
		return -EINVAL;
	}
	config_set_path(ctx, field, value);
	return 0;
}

CONFIG_KEY_PARSER(config_key_address)
{
	struct config_address a;
	const char *detail;
	(void)ctx;
	(void)key;
	if (config_address_parse(value, &a, &detail) < 0) {
		snprintf(why, why_len, "%s%s", config_expect_address, detail);
		return -EINVAL;
	}
	memcpy(field, &a, sizeof(a));
	return 0;
}

CONFIG_KEY_PARSER(config_key_mode)
{
	unsigned long mode = 0;
	const char *c = value;
	(void)ctx;
	for (; *c >= '0' && *c <= '7' && mode <= key->max; c++)
		mode = mode * 8 + (unsigned long)(*c - '0');
	if (c == value || *c != '\0' || mode > key->max) {
		snprintf(why, why_len, "expected octal permissions like 0660");
		return -EINVAL;
	}
	mode_t m = (mode_t)mode;
	memcpy(field, &m, sizeof(m));
	return 0;
}
