/* http config: the [http] and [http2] sections and the listener keys
 * (status, http2, redirect_https, https_port), as the
 * HTTP protocol registers them (http_config_module, in proto_http's table
 * entry): their keys, defaults and cross-checks, and how HTTP code reads
 * them back from a struct config (http_cfg(), http_listener_cfg()). */
#ifndef DROVER_PROTO_HTTP_CONFIG_H
#define DROVER_PROTO_HTTP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "proto/http/coding.h"

/* Upper bound of [http] max_ranges. */
#define HTTP_CONFIG_MAX_RANGES 100
/* [http] hsts: "off", or a max-age of at most two years (in seconds). */
#define HTTP_HSTS_OFF UINT64_MAX
#define HTTP_HSTS_MAX_S 63072000u

/* [http] access_log_format. */
enum http_log_format {
	HTTP_LOG_COMBINED = 0, /* the combined log format */
	HTTP_LOG_EXTENDED,     /* combined, then the request time and the TLS version */
};

/* [http] */
struct http_config {
	char *root;                  /* absolute (relative ones resolved against the file's directory) */
	unsigned root_line;          /* where root is set (0: default), for messages */
	char *index;
	bool autoindex;
	bool follow_symlinks;
	bool dotfiles;
	char *mime_types;
	unsigned mime_types_line;    /* where mime_types is set (0: default, which may be missing) */
	char *default_type;
	char *access_log;            /* path, "stderr" or "off" */
	unsigned access_log_line;    /* where access_log is set (0: default), for messages */
	char *health_path;           /* "" disables */
	char *status_path;
	char *live_path;             /* liveness: 200 while the worker runs, draining too; "" disables */
	char *metrics_path;          /* Prometheus text, on listeners with metrics = yes */
	uint64_t header_timeout_ms;
	uint64_t keepalive_timeout_ms;
	uint64_t send_timeout_ms;
	unsigned keepalive_requests;
	unsigned max_connections;    /* per worker, http only; 0 = [server] max_connections */
	uint64_t max_body_size;
	size_t max_request_line;
	size_t max_header_line;
	size_t max_header_size;
	unsigned max_headers;
	uint64_t file_cache_valid_ms; /* how long a looked-up root (or file) is trusted; 0 = not at all */
	unsigned max_ranges;         /* ranges in one Range header; more: the whole file */
	char *charset;               /* added to text types' Content-Type; NULL = none */
	unsigned file_cache_entries; /* open-file cache: most files per worker */
	size_t file_cache_max_file;  /* largest file whose bytes are cached */
	size_t file_cache_size;      /* cached bytes per worker, all files together */
	unsigned access_log_format;  /* enum http_log_format */
	uint64_t hsts_s;             /* Strict-Transport-Security max-age; HTTP_HSTS_OFF: none */
	bool hsts_include_subdomains;
	/* The whole "Strict-Transport-Security: ...\r\n" line, built once per
	 * config (check()); NULL when hsts = off. Sent on TLS responses only. */
	char *hsts_line;
	size_t hsts_line_len;
	/* Precompressed files, cache headers, error pages (issue 21). */
	struct http_precompressed precompressed; /* codings looked for, in order; n = 0: off */
	char *error_page_403;        /* normalised URL paths under the root; NULL: the built-in page */
	char *error_page_404;
	char *error_page_500;
	/* The [cache NAME] patterns, built once per config (check()), in file
	 * order; each points at its section's "Cache-Control: ...\r\n" line. */
	struct http_cache_rule *cache_rules;
	size_t n_cache_rules;
};

/* Longest [cache NAME] cache_control value. */
#define HTTP_CACHE_CONTROL_MAX 512u

/* One pattern of a [cache NAME] section's match. */
struct http_cache_rule {
	const char *pattern;    /* "/assets/" (a prefix) or ".woff2" (an extension, the '*' dropped) */
	size_t len;
	bool prefix;
	char *line;             /* "Cache-Control: VALUE\r\n" */
	size_t line_len;
};

/* [http2] */
struct http2_config {
	unsigned max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
	unsigned initial_window_size;    /* SETTINGS_INITIAL_WINDOW_SIZE, bytes */
	size_t max_header_list_size;     /* SETTINGS_MAX_HEADER_LIST_SIZE; 0: [http] max_header_size */
};

/* The keys HTTP adds to every [listener NAME]. */
struct http_listener_config {
	bool status; /* serve [http] status_path on this listener (an http one) */
	/* HTTP/2: by ALPN h2 on a TLS listener, by the client preface (prior
	 * knowledge, h2c) on a plain one. Default: yes on TLS, no on plain. */
	bool http2;
	bool metrics; /* serve [http] metrics_path on this listener (an http one) */
	/* Answer every request but health and status with a 301 to https://
	 * (redirect.c); https_port is the port put in that URL (443: none). */
	bool redirect_https;
	uint16_t https_port;
};

/* [http] and the listener keys, for proto_http's table entry. */
extern const struct config_module http_config_module;

/* cfg's [http] (its defaults when the file has none); NULL only for a
 * config made before proto_register(). */
const struct http_config *http_cfg(const struct config *cfg);
/* cfg's [http2] (defaults when the file has none); a
 * max_header_list_size of 0 means [http] max_header_size. */
const struct http2_config *http2_cfg(const struct config *cfg);
/* The HTTP keys of listener l (status = no unless set); NULL when l is
 * NULL or was made before proto_register(). */
const struct http_listener_config *http_listener_cfg(const struct config_listener *l);
/* The Cache-Control line ("Cache-Control: ...\r\n", length in *len) of
 * the [cache NAME] rules for a file answered at path (normalised) whose
 * file name is name (a directory's index: the index's): the longest
 * matching prefix, else the first extension that matches, file order
 * breaking ties; NULL (len 0) when none matches. */
const char *http_cache_control(const struct http_config *h, const char *path, const char *name, size_t *len);
/* [http] error_page_STATUS for status (403, 404, 500), or NULL. */
const char *http_error_page(const struct http_config *h, int status);

#endif
