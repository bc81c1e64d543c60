/* http config: [http] and the listener keys (status, redirect_https,
 * https_port). The keys, their
 * defaults, the HTTP-only value grammars (index file name, media type,
 * charset, URL paths, access log), and the checks across keys; the file
 * itself is read by core/config.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strdup; configure passes it too */
#endif
#include "proto/http/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "core/config_value.h"
#include "proto/http/coding.h"
#include "proto/http/path.h"
#include "worker/tls.h"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/drover"
#endif

/* ------------------------------------------------------------ values */

static CONFIG_KEY_PARSER(http_key_access_log)
{
	(void)key;
	if (value[0] == '\0') {
		snprintf(why, why_len, "expected a path, 'stderr' or 'off'");
		return -EINVAL;
	}
	if (strcmp(value, "stderr") == 0 || strcmp(value, "off") == 0)
		config_set_string(ctx, field, value);
	else
		config_set_path(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(http_key_index)
{
	(void)key;
	/* A file name inside each directory, never a way out of it. */
	if (value[0] == '\0' || strchr(value, '/') || strcmp(value, ".") == 0 ||
	    strcmp(value, "..") == 0 || !config_is_token_text(value)) {
		snprintf(why, why_len, "expected a file name without '/'");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(http_key_mime_type)
{
	(void)key;
	/* Goes into Content-Type verbatim: no CR/LF, and shaped like type/subtype
	 * (parameters such as "; charset=utf-8" are fine). */
	bool ok = value[0] != '\0' && value[0] != '/' && strchr(value, '/');
	for (const char *c = value; ok && *c; c++)
		if ((unsigned char)*c < ' ' || (unsigned char)*c >= 0x7f)
			ok = false;
	if (!ok) {
		snprintf(why, why_len, "expected a media type like text/plain");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(http_key_url_path)
{
	(void)key;
	if (value[0] != '/' || !config_is_token_text(value)) {
		snprintf(why, why_len, "expected a URL path starting with '/'");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(http_key_health_path)
{
	if (value[0] == '\0' || strcmp(value, "off") == 0) {
		config_set_string(ctx, field, "");
		return 0;
	}
	if (http_key_url_path(ctx, key, field, value, why, why_len) < 0) {
		snprintf(why, why_len, "expected a URL path starting with '/' or 'off'");
		return -EINVAL;
	}
	return 0;
}

static CONFIG_KEY_PARSER(http_key_charset)
{
	(void)key;
	if (value[0] == '\0' || strcmp(value, "none") == 0) {
		config_set_string(ctx, field, NULL);
		return 0;
	}
	/* Goes into Content-Type as "; charset=VALUE": a token (RFC 9110 §5.6.2). */
	for (const char *c = value; *c; c++) {
		if (!strchr("!#$%&'*+-.^_`|~", *c) && !(*c >= '0' && *c <= '9') &&
		    !(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z')) {
			snprintf(why, why_len, "expected a charset name like utf-8, or none");
			return -EINVAL;
		}
	}
	config_set_string(ctx, field, value);
	return 0;
}

/* "off", or a max-age: whole seconds (max-age is in seconds, RFC 6797
 * §6.1.1), at most two years (browsers' preload lists want at least one;
 * two is the common long setting, and more is most likely a typo). */
static CONFIG_KEY_PARSER(http_key_hsts)
{
	(void)ctx;
	(void)key;
	uint64_t ms, s = HTTP_HSTS_OFF;
	if (strcasecmp(value, "off") != 0) {
		if (config_parse_duration(value, &ms) < 0 || ms % 1000 != 0 ||
		    ms / 1000 > HTTP_HSTS_MAX_S) {
			snprintf(why, why_len,
				 "expected 'off' or a duration in whole seconds up to 730d (two years)");
			return -EINVAL;
		}
		s = ms / 1000;
	}
	memcpy(field, &s, sizeof(s));
	return 0;
}

static CONFIG_KEY_PARSER(http_key_log_format)
{
	(void)ctx;
	(void)key;
	unsigned f;
	if (strcasecmp(value, "combined") == 0) {
		f = HTTP_LOG_COMBINED;
	} else if (strcasecmp(value, "extended") == 0) {
		f = HTTP_LOG_EXTENDED;
	} else {
		snprintf(why, why_len, "expected combined or extended");
		return -EINVAL;
	}
	memcpy(field, &f, sizeof(f));
	return 0;
}

/* ------------------------------------------------------------ issue 21:
 * precompressed files, cache headers ([cache NAME]), error pages */

static CONFIG_KEY_PARSER(http_key_precompressed)
{
	(void)ctx;
	(void)key;
	return http_precompressed_parse(value, field, why, why_len);
}

/* "off" (or nothing): the built-in page; else a file under the root, by
 * its URL path, kept normalised. */
static CONFIG_KEY_PARSER(http_key_error_page)
{
	(void)key;
	if (value[0] == '\0' || strcmp(value, "off") == 0) {
		config_set_string(ctx, field, NULL);
		return 0;
	}
	char norm[HTTP_PATH_MAX];
	size_t len = strlen(value);
	if (value[0] != '/' || !config_is_token_text(value) || value[len - 1] == '/' ||
	    http_path_normalize(value, len, norm, sizeof(norm)) < 0 || strcmp(norm, "/") == 0) {
		snprintf(why, why_len, "expected the URL path of a file under the root, like /404.html, or 'off'");
		return -EINVAL;
	}
	config_set_string(ctx, field, norm);
	return 0;
}

/* The storage of a [cache NAME] section. */
struct http_cache_section {
	char *match;         /* patterns, space-separated, as written */
	char *cache_control; /* the header's value */
};

/* Whether match[0, len) is a pattern: "/prefix" or "*.ext". */
static bool http_cache_pattern_ok(const char *p, size_t len)
{
	if (len >= 1 && p[0] == '/')
		return true;
	if (len < 3 || p[0] != '*' || p[1] != '.')
		return false;
	for (size_t i = 2; i < len; i++)
		if (p[i] == '/' || p[i] == '*')
			return false;
	return true;
}

static CONFIG_KEY_PARSER(http_key_cache_match)
{
	(void)key;
	bool ok = true;
	size_t n = 0;
	for (const char *s = value; ok && *s;) {
		s += strspn(s, " ");
		size_t len = strcspn(s, " ");
		for (size_t i = 0; i < len; i++)
			ok &= (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f;
		if (len) {
			ok &= http_cache_pattern_ok(s, len);
			n++;
		}
		s += len;
	}
	if (!ok || n == 0) {
		snprintf(why, why_len, "expected path prefixes starting with '/' or extensions like *.woff2, "
			 "separated by spaces");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(http_key_cache_control)
{
	(void)key;
	bool ok = value[0] != '\0';
	for (const char *c = value; ok && *c; c++)
		ok = (unsigned char)*c >= ' ' && (unsigned char)*c < 0x7f;
	if (!ok) {
		snprintf(why, why_len, "expected a Cache-Control value like 'public, max-age=3600'");
		return -EINVAL;
	}
	/* It goes into every answer's head, and into a cache entry's lines. */
	if (strlen(value) > HTTP_CACHE_CONTROL_MAX) {
		snprintf(why, why_len, "expected a Cache-Control value of at most %u characters",
			 HTTP_CACHE_CONTROL_MAX);
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

#define HTTP_CACHE_KEY(member) CONFIG_FIELD(struct http_cache_section, member)

static const struct config_key http_cache_keys[] = {
	{ "match", http_key_cache_match, HTTP_CACHE_KEY(match), 0, 0 },
	{ "cache_control", http_key_cache_control, HTTP_CACHE_KEY(cache_control), 0, 0 },
};

static void http_cache_section_release(void *data)
{
	struct http_cache_section *c = data;
	free(c->match);
	free(c->cache_control);
}

static void http_cache_section_check(struct config_check *chk, void *data)
{
	const struct http_cache_section *c = data;
	/* A key given with a bad value has had its message. */
	if (!c->match && !config_check_line(chk, "match"))
		config_check_error(chk, config_check_section_line(chk),
				   "[%s] match: expected path prefixes starting with '/' or extensions like "
				   "*.woff2, got nothing", config_check_label(chk));
	if (!c->cache_control && !config_check_line(chk, "cache_control"))
		config_check_error(chk, config_check_section_line(chk),
				   "[%s] cache_control: expected a Cache-Control value like 'public, "
				   "max-age=3600', got nothing", config_check_label(chk));
}

static void http_cache_rules_free(struct http_config *h)
{
	for (size_t i = 0; i < h->n_cache_rules; i++)
		free(h->cache_rules[i].line);
	free(h->cache_rules);
	h->cache_rules = NULL;
	h->n_cache_rules = 0;
}

static const struct config_section http_sections[];
/* [cache NAME]'s place in http_sections ([http], [http2], [cache NAME]). */
enum { HTTP_SECTION_CACHE = 2 };

/* The [cache NAME] sections as rules, one per pattern, in file order, each
 * with its whole Cache-Control line: responses copy it, nothing is
 * formatted per request. */
static void http_cache_rules_build(struct config_check *chk, struct http_config *h)
{
	const struct config *cfg = config_check_config(chk);
	const struct config_section *sec = &http_sections[HTTP_SECTION_CACHE];
	const char *name;
	const struct http_cache_section *c;
	size_t n = 0;
	http_cache_rules_free(h);
	for (size_t i = 0; (c = config_section_at(cfg, sec, i, &name)); i++)
		for (const char *s = c->match; s && *s; s += strcspn(s, " "))
			n += *(s += strspn(s, " ")) != '\0';
	if (n == 0)
		return;
	h->cache_rules = calloc(n, sizeof(*h->cache_rules));
	for (size_t i = 0; h->cache_rules && (c = config_section_at(cfg, sec, i, &name)); i++) {
		if (!c->cache_control)
			continue;
		for (const char *s = c->match; s && *s;) {
			s += strspn(s, " ");
			size_t len = strcspn(s, " ");
			if (len == 0)
				break;
			struct http_cache_rule *r = &h->cache_rules[h->n_cache_rules++];
			r->prefix = s[0] == '/';
			r->pattern = r->prefix ? s : s + 1; /* "*.css": ".css" */
			r->len = r->prefix ? len : len - 1;
			int ln = asprintf(&r->line, "Cache-Control: %s\r\n", c->cache_control);
			if (ln < 0) {
				r->line = NULL;
				config_check_error(chk, 0, "[cache %s] cache_control: out of memory", name);
				return;
			}
			r->line_len = (size_t)ln;
			s += len;
		}
	}
	if (!h->cache_rules)
		config_check_error(chk, 0, "[http]: out of memory for the [cache NAME] rules");
}

const char *http_cache_control(const struct http_config *h, const char *path, const char *name, size_t *len)
{
	const struct http_cache_rule *best = NULL;
	size_t path_len = strlen(path), name_len = name ? strlen(name) : 0;
	for (size_t i = 0; i < h->n_cache_rules; i++) {
		const struct http_cache_rule *r = &h->cache_rules[i];
		if (r->prefix) {
			if (r->len <= path_len && memcmp(path, r->pattern, r->len) == 0 &&
			    (!best || !best->prefix || r->len > best->len))
				best = r;
		} else if (!best && r->len < name_len &&
			   strncasecmp(name + name_len - r->len, r->pattern, r->len) == 0) {
			best = r;
		}
	}
	*len = best ? best->line_len : 0;
	return best ? best->line : NULL;
}

const char *http_error_page(const struct http_config *h, int status)
{
	switch (status) {
	case 403: return h->error_page_403;
	case 404: return h->error_page_404;
	case 500: return h->error_page_500;
	default: return NULL;
	}
}

/* ------------------------------------------------------------ [http] */

#define HTTP_KEY(member) CONFIG_FIELD(struct http_config, member)

static const struct config_key http_keys[] = {
	{ "root", config_key_path, HTTP_KEY(root), 0, 0 },
	{ "index", http_key_index, HTTP_KEY(index), 0, 0 },
	{ "autoindex", config_key_bool, HTTP_KEY(autoindex), 0, 0 },
	{ "follow_symlinks", config_key_bool, HTTP_KEY(follow_symlinks), 0, 0 },
	{ "dotfiles", config_key_bool, HTTP_KEY(dotfiles), 0, 0 },
	{ "mime_types", config_key_path, HTTP_KEY(mime_types), 0, 0 },
	{ "default_type", http_key_mime_type, HTTP_KEY(default_type), 0, 0 },
	{ "access_log", http_key_access_log, HTTP_KEY(access_log), 0, 0 },
	{ "health_path", http_key_health_path, HTTP_KEY(health_path), 0, 0 },
	{ "status_path", http_key_url_path, HTTP_KEY(status_path), 0, 0 },
	{ "live_path", http_key_health_path, HTTP_KEY(live_path), 0, 0 },
	{ "metrics_path", http_key_url_path, HTTP_KEY(metrics_path), 0, 0 },
	{ "header_timeout", config_key_duration, HTTP_KEY(header_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "keepalive_timeout", config_key_duration, HTTP_KEY(keepalive_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "send_timeout", config_key_duration, HTTP_KEY(send_timeout_ms), 1, CONFIG_DURATION_MAX_MS },
	{ "keepalive_requests", config_key_count, HTTP_KEY(keepalive_requests), 1, UINT32_MAX },
	{ "max_connections", config_key_count, HTTP_KEY(max_connections), 0, CONFIG_CONNECTIONS_MAX },
	{ "max_body_size", config_key_size, HTTP_KEY(max_body_size), 0, UINT64_MAX },
	{ "max_request_line", config_key_size, HTTP_KEY(max_request_line), 64, 1u << 20 },
	{ "max_header_line", config_key_size, HTTP_KEY(max_header_line), 64, 1u << 20 },
	{ "max_header_size", config_key_size, HTTP_KEY(max_header_size), 64, 16u << 20 },
	{ "max_headers", config_key_count, HTTP_KEY(max_headers), 1, 128 },
	{ "file_cache_valid", config_key_duration, HTTP_KEY(file_cache_valid_ms), 0, CONFIG_DURATION_MAX_MS },
	{ "max_ranges", config_key_count, HTTP_KEY(max_ranges), 1, HTTP_CONFIG_MAX_RANGES },
	{ "charset", http_key_charset, HTTP_KEY(charset), 0, 0 },
	{ "file_cache_entries", config_key_count, HTTP_KEY(file_cache_entries), 1, 1u << 20 },
	{ "file_cache_max_file", config_key_size, HTTP_KEY(file_cache_max_file), 0, 32u << 10 },
	{ "file_cache_size", config_key_size, HTTP_KEY(file_cache_size), 0, 1u << 30 },
	{ "access_log_format", http_key_log_format, HTTP_KEY(access_log_format), 0, 0 },
	{ "hsts", http_key_hsts, HTTP_KEY(hsts_s), 0, 0 },
	{ "hsts_include_subdomains", config_key_bool, HTTP_KEY(hsts_include_subdomains), 0, 0 },
	/* issue 21 */
	{ "precompressed", http_key_precompressed, HTTP_KEY(precompressed), 0, 0 },
	{ "error_page_403", http_key_error_page, HTTP_KEY(error_page_403), 0, 0 },
	{ "error_page_404", http_key_error_page, HTTP_KEY(error_page_404), 0, 0 },
	{ "error_page_500", http_key_error_page, HTTP_KEY(error_page_500), 0, 0 },
};

static int http_config_init(void *data)
{
	struct http_config *h = data;
	h->root = strdup(PKGDATADIR "/www");
	h->index = strdup("index.html");
	h->mime_types = strdup("/etc/mime.types");
	h->default_type = strdup("application/octet-stream");
	h->access_log = strdup("off");
	h->health_path = strdup("/healthz");
	h->status_path = strdup("/status");
	h->live_path = strdup("/livez");
	h->metrics_path = strdup("/metrics");
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
	h->access_log_format = HTTP_LOG_COMBINED;
	h->hsts_s = HTTP_HSTS_OFF;
	h->hsts_include_subdomains = false;
	h->hsts_line = NULL;
	h->precompressed = (struct http_precompressed){ .n = 1, .order = { HTTP_CODING_GZIP } };
	if (!h->root || !h->index || !h->mime_types || !h->default_type || !h->access_log ||
	    !h->health_path || !h->status_path || !h->live_path || !h->metrics_path)
		return -ENOMEM;
	return 0;
}

static void http_config_release(void *data)
{
	struct http_config *h = data;
	free(h->root);
	free(h->index);
	free(h->mime_types);
	free(h->default_type);
	free(h->access_log);
	free(h->health_path);
	free(h->status_path);
	free(h->live_path);
	free(h->metrics_path);
	free(h->charset);
	free(h->hsts_line);
	free(h->error_page_403);
	free(h->error_page_404);
	free(h->error_page_500);
	http_cache_rules_free(h);
}

/* The Strict-Transport-Security line, once per config: responses copy it
 * as it is (h1.c), nothing is formatted per request. */
static void http_config_hsts_line(struct config_check *chk, struct http_config *h)
{
	free(h->hsts_line);
	h->hsts_line = NULL;
	h->hsts_line_len = 0;
	if (h->hsts_s == HTTP_HSTS_OFF)
		return;
	char line[96];
	int n = snprintf(line, sizeof(line), "Strict-Transport-Security: max-age=%llu%s\r\n",
			 (unsigned long long)h->hsts_s,
			 h->hsts_include_subdomains ? "; includeSubDomains" : "");
	h->hsts_line = n > 0 && (size_t)n < sizeof(line) ? strdup(line) : NULL;
	if (!h->hsts_line) {
		config_check_error(chk, config_check_line(chk, "hsts"), "[http] hsts: out of memory");
		return;
	}
	h->hsts_line_len = (size_t)n;
}

/* The built-in paths (health, live, status, metrics) are four apart:
 * each answers its own (health_path against status_path is checked above,
 * with its message of old). */
static void http_config_paths_apart(struct config_check *chk, const struct http_config *h)
{
	const char *keys[4] = { "health_path", "status_path", "live_path", "metrics_path" };
	const char *vals[4] = { h->health_path, h->status_path, h->live_path, h->metrics_path };
	for (int i = 2; i < 4; i++)
		for (int k = 0; k < i; k++)
			if (vals[i] && vals[k] && vals[i][0] && strcmp(vals[i], vals[k]) == 0) {
				unsigned a = config_check_line(chk, keys[i]), b = config_check_line(chk, keys[k]);
				config_check_error(chk, a > b ? a : b, "[http] %s: expected a path other than %s, got '%s'",
						   a >= b ? keys[i] : keys[k], a >= b ? keys[k] : keys[i], vals[i]);
			}
}

static void http_config_check(struct config_check *chk, void *data)
{
	struct http_config *h = data;
	/* Where the path keys were set, for the checks of what they name
	 * (proto_paths_check, proto_files_open). */
	h->access_log_line = config_check_line(chk, "access_log");
	h->root_line = config_check_line(chk, "root");
	h->mime_types_line = config_check_line(chk, "mime_types");
	http_config_hsts_line(chk, h);
	http_cache_rules_build(chk, h);

	if (h->health_path && h->status_path && h->health_path[0] &&
	    strcmp(h->health_path, h->status_path) == 0) {
		unsigned status = config_check_line(chk, "status_path");
		unsigned health = config_check_line(chk, "health_path");
		config_check_error(chk, status > health ? status : health,
				   "[http] status_path: expected a path other than health_path, got '%s'",
				   h->status_path);
	}
	http_config_paths_apart(chk, h);
}

/* ------------------------------------------------------------ [http2] */

#define HTTP2_KEY(member) CONFIG_FIELD(struct http2_config, member)

/* Bounds of RFC 9113 §6.5.2: a window of at most 2^31-1 bytes; fewer than
 * 1 stream would refuse every request. */
static const struct config_key http2_keys[] = {
	{ "max_concurrent_streams", config_key_count, HTTP2_KEY(max_concurrent_streams), 1, 65536 },
	{ "initial_window_size", config_key_size, HTTP2_KEY(initial_window_size), 0, 0x7fffffffu },
	{ "max_header_list_size", config_key_size, HTTP2_KEY(max_header_list_size), 64, 16u << 20 },
};

static int http2_config_init(void *data)
{
	struct http2_config *h = data;
	h->max_concurrent_streams = 128;
	h->initial_window_size = 64 * 1024;
	h->max_header_list_size = 0; /* [http] max_header_size, resolved in http2_cfg() */
	return 0;
}

/* ------------------------------------------------------------ [listener] */

#define HTTP_LISTENER_KEY(member) CONFIG_FIELD(struct http_listener_config, member)

static const struct config_key http_listener_keys[] = {
	{ "status", config_key_bool, HTTP_LISTENER_KEY(status), 0, 0 },
	{ "http2", config_key_bool, HTTP_LISTENER_KEY(http2), 0, 0 },
	{ "metrics", config_key_bool, HTTP_LISTENER_KEY(metrics), 0, 0 },
	{ "redirect_https", config_key_bool, HTTP_LISTENER_KEY(redirect_https), 0, 0 },
	{ "https_port", config_key_count, HTTP_LISTENER_KEY(https_port), 1, 65535 },
};

static int http_listener_init(void *data)
{
	struct http_listener_config *lc = data;
	lc->https_port = 443;
	return 0;
}

/* HTTP's listener keys only on HTTP listeners, and no redirect to HTTPS
 * on a listener that is itself TLS (tls = yes, the TLS transport's key). */
static void http_listener_check(struct config_check *chk, void *data)
{
	const struct http_listener_config *lc = data;
	config_check_own_protocol(chk, "status", lc->status, "the status endpoint");
	config_check_own_protocol(chk, "metrics", lc->metrics, "the metrics endpoint");
	config_check_own_protocol(chk, "redirect_https", lc->redirect_https, "the redirect to HTTPS");
	const struct config_listener *l = config_check_listener(chk);
	struct http_listener_config *mut = data;
	if (l && !config_check_line(chk, "http2"))
		mut->http2 = tls_listener_on(l) && strcmp(l->protocol, "http") == 0;
	config_check_own_protocol(chk, "http2", config_check_line(chk, "http2") && lc->http2, "HTTP/2");
	if (lc->redirect_https && l && tls_listener_on(l))
		config_check_error(chk, config_check_line(chk, "redirect_https"),
				   "[listener %s] redirect_https: expected no, because this listener is "
				   "itself TLS (tls = yes)", l->name);
	unsigned port_line = config_check_line(chk, "https_port");
	if (port_line && l && strcmp(l->protocol, "http") != 0)
		config_check_error(chk, port_line,
				   "[listener %s] https_port: expected no https_port, because the "
				   "redirect to HTTPS needs protocol = http and this listener is %s",
				   l->name, l->protocol);
}

/* ------------------------------------------------------------ module */

static const struct config_section http_sections[] = {
	{
		.name = "http",
		.keys = http_keys,
		.n_keys = sizeof(http_keys) / sizeof(http_keys[0]),
		.size = sizeof(struct http_config),
		.init = http_config_init,
		.release = http_config_release,
		.check = http_config_check,
	},
	{
		.name = "http2",
		.keys = http2_keys,
		.n_keys = sizeof(http2_keys) / sizeof(http2_keys[0]),
		.size = sizeof(struct http2_config),
		.init = http2_config_init,
	},
	[HTTP_SECTION_CACHE] = {
		.name = "cache",
		.named = true,
		.keys = http_cache_keys,
		.n_keys = sizeof(http_cache_keys) / sizeof(http_cache_keys[0]),
		.size = sizeof(struct http_cache_section),
		.release = http_cache_section_release,
		.check = http_cache_section_check,
	},
};

static const struct config_section http_listener_section = {
	.keys = http_listener_keys,
	.n_keys = sizeof(http_listener_keys) / sizeof(http_listener_keys[0]),
	.size = sizeof(struct http_listener_config),
	.init = http_listener_init,
	.check = http_listener_check,
};

const struct config_module http_config_module = {
	.sections = http_sections,
	.n_sections = sizeof(http_sections) / sizeof(http_sections[0]),
	.listener = &http_listener_section,
};

const struct http_config *http_cfg(const struct config *cfg)
{
	return config_section(cfg, &http_sections[0]);
}

const struct http2_config *http2_cfg(const struct config *cfg)
{
	return config_section(cfg, &http_sections[1]);
}

const struct http_listener_config *http_listener_cfg(const struct config_listener *l)
{
	return config_listener_keys(l, &http_listener_section);
}
