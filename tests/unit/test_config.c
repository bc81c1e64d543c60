/* test_config: the INI file, key by key — values, defaults, and the exact
 * messages (file:line, section, key, what was expected) for every mistake. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "core/config.h"
#include "proto/echo.h"
#include "proto/http/config.h"
#include "proto/http/http.h"
#include "proto/protocols.h"
#include "worker/tls.h"
#include "worker/tls_config.h"
#include "worker/proto.h"

#include "harness.h"

static char tdir[PATH_MAX];      /* private directory for every file written */
static char tpath[PATH_MAX + 64]; /* the last config file written */
static char terr[16384];         /* messages of the last config_load() */
static unsigned tcounter;

/* Write text to a fresh file in tdir (or under sub, created if needed). */
static const char *write_config_in(const char *sub, const char *text)
{
	char dir[PATH_MAX + 32];
	if (sub) {
		snprintf(dir, sizeof(dir), "%s/%s", tdir, sub);
		mkdir(dir, 0755);
	} else {
		snprintf(dir, sizeof(dir), "%s", tdir);
	}
	snprintf(tpath, sizeof(tpath), "%s/t%ld-%u.ini", dir, (long)getpid(), tcounter++);
	FILE *f = fopen(tpath, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	return tpath;
}

static const char *write_config(const char *text)
{
	return write_config_in(NULL, text);
}

/* Load text that must be valid. */
static struct config *load_ok(const char *text)
{
	struct config *cfg = (struct config *)1;
	int r = config_load(write_config(text), &cfg, terr, sizeof(terr));
	ck_assert_msg(r == 0, "config_load failed (%d): %s", r, terr);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Load text that must be rejected; returns the messages. */
static const char *load_bad(const char *text)
{
	struct config *cfg = (struct config *)1;
	int r = config_load(write_config(text), &cfg, terr, sizeof(terr));
	ck_assert_msg(r == -EINVAL, "expected -EINVAL, got %d for:\n%s", r, text);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(terr[0] != '\0', "no message");
	return terr;
}

/* The messages contain "PATH:LINE: " followed by the formatted rest. */
static void assert_error_at(unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void assert_error_at(unsigned line, const char *fmt, ...)
{
	char want[2048];
	int n;
	if (line)
		n = snprintf(want, sizeof(want), "%s:%u: ", tpath, line);
	else
		n = snprintf(want, sizeof(want), "%s: ", tpath);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want + n, sizeof(want) - (size_t)n, fmt, ap);
	va_end(ap);
	ck_assert_msg(strstr(terr, want), "wanted '%s' in:\n%s", want, terr);
}

static unsigned count_lines(const char *s)
{
	unsigned n = *s ? 1 : 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A listener so that a file about something else is complete. */
#define WEB "[listener web]\naddress = 127.0.0.1:8080\n"

/* Load "[section]\nkey = value\n" + a listener and expect one error at line 2. */
static void assert_bad_value(const char *section, const char *key, const char *value,
			     const char *expected)
{
	char text[1024];
	/* A [listener] under test is the file's listener; others need one. */
	snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s", section, key, value,
		 strncmp(section, "listener", 8) == 0 ? "" : WEB);
	load_bad(text);
	assert_error_at(2, "[%s] %s: %s, got '%s'", section, key, expected, value);
	ck_assert_uint_eq(count_lines(terr), 1);
}

/* ------------------------------------------------------------ whole files */

START_TEST(test_full_file_every_key)
{
	struct config *cfg = load_ok(
		"; every key\n"
		"[server]\n"
		"workers = 3\n"
		"shutdown_timeout = 45s\n"
		"log_level = debug\n"
		"user = www-data\n"
		"group = www-data\n"
		"max_connections = 2000\n"
		"worker_timeout = 1m\n"
		"max_requests = 5000\n"
		"max_requests_jitter = 77\n"
		"lingering_timeout = 1500ms\n"
		"max_generations = 3\n"
		"control_socket = /run/drover/ctl.sock\n"
		"pid_file = /run/drover.pid\n"
		"\n"
		"[listener web]\n"
		"address = [::1]:8443\n"
		"protocol = http\n"
		"backlog = 128\n"
		"status = yes\n"
		"\n"
		"[listener diag]\n"
		"address = unix:/run/drover/echo.sock\n"
		"protocol = echo\n"
		"mode = 0600\n"
		"\n"
		"[echo]\n"
		"idle_timeout = 2m\n"
		"buffer_size = 128k\n"
		"\n"
		"[http]\n"
		"root = /srv/www\n"
		"index = home.html\n"
		"autoindex = on\n"
		"follow_symlinks = true\n"
		"dotfiles = 1\n"
		"mime_types = /usr/share/mime.types\n"
		"default_type = text/plain\n"
		"access_log = /var/log/drover/access.log\n"
		"health_path = /ping\n"
		"status_path = /_status\n"
		"header_timeout = 5s\n"
		"keepalive_timeout = 20s\n"
		"send_timeout = 2m\n"
		"keepalive_requests = 50\n"
		"max_connections = 900\n"
		"max_body_size = 2m\n"
		"max_request_line = 4k\n"
		"max_header_line = 2k\n"
		"max_header_size = 16k\n"
		"max_headers = 50\n");

	ck_assert_str_eq(cfg->path, tpath);
	ck_assert_uint_eq(cfg->server.workers, 3);
	ck_assert_uint_eq(cfg->server.shutdown_timeout_ms, 45000);
	ck_assert_int_eq(cfg->server.log_level, LOG_DEBUG);
	ck_assert_str_eq(cfg->server.user, "www-data");
	ck_assert_str_eq(cfg->server.group, "www-data");
	ck_assert_uint_eq(cfg->server.max_connections, 2000);
	ck_assert_uint_eq(cfg->server.worker_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->server.max_requests, 5000);
	ck_assert_uint_eq(cfg->server.max_requests_jitter, 77);
	ck_assert_uint_eq(cfg->server.lingering_timeout_ms, 1500);
	ck_assert_uint_eq(cfg->server.max_generations, 3);
	ck_assert_str_eq(cfg->server.control_socket, "/run/drover/ctl.sock");
	ck_assert_str_eq(cfg->server.pid_file, "/run/drover.pid");

	ck_assert_uint_eq(cfg->n_listeners, 2);
	const struct config_listener *w = &cfg->listeners[0];
	ck_assert_str_eq(w->name, "web");
	ck_assert_int_eq(w->address.kind, ADDR_INET);
	ck_assert_str_eq(w->address.text, "[::1]:8443");
	ck_assert_int_eq(w->address.sa.ss_family, AF_INET6);
	ck_assert_str_eq(w->protocol, "http");
	ck_assert_int_eq(w->backlog, 128);
	ck_assert_int_eq(http_listener_cfg(w)->status, true);
	ck_assert_uint_eq(w->line, 17);
	const struct config_listener *d = &cfg->listeners[1];
	ck_assert_str_eq(d->name, "diag");
	ck_assert_int_eq(d->address.kind, ADDR_UNIX);
	ck_assert_str_eq(d->protocol, "echo");
	ck_assert_uint_eq(d->mode, 0600);
	ck_assert_int_eq(http_listener_cfg(d)->status, false);
	ck_assert_int_eq(d->backlog, 511);
	ck_assert_uint_eq(d->line, 23);

	ck_assert_uint_eq(echo_cfg(cfg)->idle_timeout_ms, 120000);
	ck_assert_uint_eq(echo_cfg(cfg)->buffer_size, 128 * 1024);

	ck_assert_str_eq(http_cfg(cfg)->root, "/srv/www");
	ck_assert_str_eq(http_cfg(cfg)->index, "home.html");
	ck_assert_int_eq(http_cfg(cfg)->autoindex, true);
	ck_assert_int_eq(http_cfg(cfg)->follow_symlinks, true);
	ck_assert_int_eq(http_cfg(cfg)->dotfiles, true);
	ck_assert_str_eq(http_cfg(cfg)->mime_types, "/usr/share/mime.types");
	ck_assert_str_eq(http_cfg(cfg)->default_type, "text/plain");
	ck_assert_str_eq(http_cfg(cfg)->access_log, "/var/log/drover/access.log");
	ck_assert_str_eq(http_cfg(cfg)->health_path, "/ping");
	ck_assert_str_eq(http_cfg(cfg)->status_path, "/_status");
	ck_assert_uint_eq(http_cfg(cfg)->header_timeout_ms, 5000);
	ck_assert_uint_eq(http_cfg(cfg)->keepalive_timeout_ms, 20000);
	ck_assert_uint_eq(http_cfg(cfg)->send_timeout_ms, 120000);
	ck_assert_uint_eq(http_cfg(cfg)->keepalive_requests, 50);
	ck_assert_uint_eq(http_cfg(cfg)->max_connections, 900);
	ck_assert_uint_eq(http_cfg(cfg)->max_body_size, 2 * 1024 * 1024);
	ck_assert_uint_eq(http_cfg(cfg)->max_request_line, 4096);
	ck_assert_uint_eq(http_cfg(cfg)->max_header_line, 2048);
	ck_assert_uint_eq(http_cfg(cfg)->max_header_size, 16384);
	ck_assert_uint_eq(http_cfg(cfg)->max_headers, 50);
	config_free(cfg);
}
END_TEST

static void assert_defaults(const struct config *cfg)
{
	ck_assert_uint_ge(cfg->server.workers, 1);
	ck_assert_uint_eq(cfg->server.shutdown_timeout_ms, 30000);
	ck_assert_int_eq(cfg->server.log_level, LOG_INFO);
	ck_assert_ptr_null(cfg->server.user);
	ck_assert_ptr_null(cfg->server.group);
	ck_assert_uint_eq(cfg->server.max_connections, 1024);
	ck_assert_uint_eq(cfg->server.worker_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->server.max_requests, 0);
	ck_assert_uint_eq(cfg->server.max_requests_jitter, 0);
	ck_assert_uint_eq(cfg->server.lingering_timeout_ms, 2000);
	ck_assert_uint_eq(cfg->server.max_generations, 4);
	ck_assert_ptr_null(cfg->server.control_socket);
	ck_assert_ptr_null(cfg->server.pid_file);
	ck_assert_uint_eq(echo_cfg(cfg)->idle_timeout_ms, 60000);
	ck_assert_uint_eq(echo_cfg(cfg)->buffer_size, 65536);
	ck_assert_str_eq(http_cfg(cfg)->root, PKGDATADIR "/www");
	ck_assert_str_eq(http_cfg(cfg)->index, "index.html");
	ck_assert_int_eq(http_cfg(cfg)->autoindex, false);
	ck_assert_int_eq(http_cfg(cfg)->follow_symlinks, false);
	ck_assert_int_eq(http_cfg(cfg)->dotfiles, false);
	ck_assert_str_eq(http_cfg(cfg)->mime_types, "/etc/mime.types");
	ck_assert_str_eq(http_cfg(cfg)->default_type, "application/octet-stream");
	ck_assert_str_eq(http_cfg(cfg)->access_log, "off");
	ck_assert_str_eq(http_cfg(cfg)->health_path, "/healthz");
	ck_assert_str_eq(http_cfg(cfg)->status_path, "/status");
	ck_assert_uint_eq(http_cfg(cfg)->header_timeout_ms, 10000);
	ck_assert_uint_eq(http_cfg(cfg)->keepalive_timeout_ms, 15000);
	ck_assert_uint_eq(http_cfg(cfg)->send_timeout_ms, 60000);
	ck_assert_uint_eq(http_cfg(cfg)->keepalive_requests, 1000);
	ck_assert_uint_eq(http_cfg(cfg)->max_connections, 0);
	ck_assert_uint_eq(http_cfg(cfg)->max_body_size, 1024 * 1024);
	ck_assert_uint_eq(http_cfg(cfg)->max_request_line, 8192);
	ck_assert_uint_eq(http_cfg(cfg)->max_header_line, 8192);
	ck_assert_uint_eq(http_cfg(cfg)->max_header_size, 32768);
	ck_assert_uint_eq(http_cfg(cfg)->max_headers, 100);
}

START_TEST(test_defaults_when_keys_absent)
{
	struct config *cfg = load_ok("[listener web]\n");
	assert_defaults(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_new_default)
{
	struct config *cfg = config_new_default();
	ck_assert_ptr_nonnull(cfg);
	assert_defaults(cfg);
	ck_assert_uint_eq(cfg->n_listeners, 0);
	config_free(cfg);
	config_free(NULL);
}
END_TEST

START_TEST(test_listener_defaults)
{
	struct config *cfg = load_ok("\n[listener http]\n");
	ck_assert_uint_eq(cfg->n_listeners, 1);
	const struct config_listener *l = &cfg->listeners[0];
	ck_assert_str_eq(l->name, "http");
	ck_assert_int_eq(l->address.kind, ADDR_NONE);
	ck_assert_str_eq(l->address.text, "");
	ck_assert_str_eq(l->protocol, "http");
	ck_assert_int_eq(l->backlog, 511);
	ck_assert_uint_eq(l->defer_accept_ms, 0); /* off */
	ck_assert_uint_eq(l->mode, 0666);
	ck_assert_int_eq(http_listener_cfg(l)->status, false);
	ck_assert_uint_eq(l->line, 2);
	config_free(cfg);
}
END_TEST

START_TEST(test_workers_auto)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
	struct config *cfg = load_ok("[server]\nworkers = auto\n" WEB);
	ck_assert_uint_eq(cfg->server.workers, want);
	config_free(cfg);
	cfg = load_ok("[server]\nworkers = 256\n" WEB);
	ck_assert_uint_eq(cfg->server.workers, 256);
	config_free(cfg);
}
END_TEST

START_TEST(test_workers_bad)
{
	assert_bad_value("server", "workers", "0", "expected 'auto' or a whole number from 1 to 256");
	assert_bad_value("server", "workers", "257", "expected 'auto' or a whole number from 1 to 256");
	assert_bad_value("server", "workers", "-2", "expected 'auto' or a whole number from 1 to 256");
	assert_bad_value("server", "workers", "automatic", "expected 'auto' or a whole number from 1 to 256");
}
END_TEST

START_TEST(test_comments_blank_and_indented_lines)
{
	struct config *cfg = load_ok(
		"# hash comment\n"
		"; semicolon comment\n"
		"\n"
		"   [server]   ; trailing comment\n"
		"\tworkers = 2 ; inline comment\n"
		"   log_level=warning\n"
		"[listener  web] # comment\n"
		"address: 127.0.0.1:8081\n");
	ck_assert_uint_eq(cfg->server.workers, 2);
	ck_assert_int_eq(cfg->server.log_level, LOG_WARNING);
	ck_assert_str_eq(cfg->listeners[0].name, "web");
	ck_assert_str_eq(cfg->listeners[0].address.text, "127.0.0.1:8081");
	config_free(cfg);
}
END_TEST

START_TEST(test_crlf_and_bom)
{
	struct config *cfg = load_ok("\xEF\xBB\xBF[server]\r\nworkers = 5\r\n[listener web]\r\n"
				     "address = 127.0.0.1:81\r\n");
	ck_assert_uint_eq(cfg->server.workers, 5);
	ck_assert_str_eq(cfg->listeners[0].address.text, "127.0.0.1:81");
	config_free(cfg);
}
END_TEST

START_TEST(test_long_line_value)
{
	/* Longer than inih's 200-byte line buffer: the value must arrive whole. */
	char root[400], text[600];
	memset(root, 'a', sizeof(root));
	root[0] = '/';
	root[sizeof(root) - 1] = '\0';
	snprintf(text, sizeof(text), "[http]\nroot = %s   ; a comment\n" WEB, root);
	struct config *cfg = load_ok(text);
	ck_assert_str_eq(http_cfg(cfg)->root, root);
	config_free(cfg);

	snprintf(text, sizeof(text), "[http]\nroot = %s\nindex = x/y\n" WEB, root);
	load_bad(text);
	assert_error_at(3, "[http] index: expected a file name without '/', got 'x/y'");
	ck_assert_uint_eq(count_lines(terr), 1);
}
END_TEST

START_TEST(test_shipped_config)
{
	const char *srcdir = getenv("srcdir");
	char path[PATH_MAX], want[3 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/etc/drover.ini", srcdir ? srcdir : ".");
	struct config *cfg = NULL;
	int r = config_load(path, &cfg, terr, sizeof(terr));
	ck_assert_msg(r == 0, "%s: %s", path, terr);
	const struct config_listener *l = config_find_listener(cfg, "http");
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->address.text, "127.0.0.1:8080");
	ck_assert_str_eq(l->protocol, "http");
	ck_assert_str_eq(http_cfg(cfg)->access_log, "stderr");
	ck_assert_int_eq(http_cfg(cfg)->root[0], '/');
	snprintf(want, sizeof(want), "%s/www", "/etc");
	ck_assert_msg(strlen(http_cfg(cfg)->root) > 8 &&
			      strcmp(http_cfg(cfg)->root + strlen(http_cfg(cfg)->root) - 8, "/etc/www") == 0,
		      "root is %s", http_cfg(cfg)->root);
	/* next to the file too, so that droverctl -c etc/drover.ini finds a
	 * drover started with it (the parent, run, is created at start) */
	const char *cs = cfg->server.control_socket;
	ck_assert_msg(cs && cs[0] == '/' && strlen(cs) > 21 &&
			      strcmp(cs + strlen(cs) - 21, "/etc/run/control.sock") == 0,
		      "control_socket is %s", cs ? cs : "(unset)");
	ck_assert_mem_eq(cs, http_cfg(cfg)->root, strlen(http_cfg(cfg)->root) - 3);
	config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------ values */

START_TEST(test_duration_valid)
{
	uint64_t ms = 1;
	ck_assert_int_eq(config_parse_duration("500ms", &ms), 0);
	ck_assert_uint_eq(ms, 500);
	ck_assert_int_eq(config_parse_duration("30s", &ms), 0);
	ck_assert_uint_eq(ms, 30000);
	ck_assert_int_eq(config_parse_duration("2m", &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(config_parse_duration("1h", &ms), 0);
	ck_assert_uint_eq(ms, 3600000);
	ck_assert_int_eq(config_parse_duration("1d", &ms), 0);
	ck_assert_uint_eq(ms, 86400000);
	ck_assert_int_eq(config_parse_duration("730D", &ms), 0);
	ck_assert_uint_eq(ms, 730ull * 86400000);
	ck_assert_int_eq(config_parse_duration("0d", &ms), 0);
	ck_assert_uint_eq(ms, 0);
	/* The largest whole number of days that fits. */
	ck_assert_int_eq(config_parse_duration("213503982334d", &ms), 0);
	ck_assert_uint_eq(ms, 213503982334ull * 86400000);
	ck_assert_int_eq(config_parse_duration("45", &ms), 0);
	ck_assert_uint_eq(ms, 45000);
	ck_assert_int_eq(config_parse_duration("0", &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ck_assert_int_eq(config_parse_duration("007s", &ms), 0);
	ck_assert_uint_eq(ms, 7000);
	ck_assert_int_eq(config_parse_duration("18446744073709551615ms", &ms), 0);
	ck_assert_uint_eq(ms, UINT64_MAX);
}
END_TEST

START_TEST(test_duration_invalid)
{
	static const char *const bad[] = {
		"", "-1", "5x", "ms", "s", "+5s", " 5s", "5 s", "5s ", "1.5s", "1m30s", "5sec",
		"18446744073709551616ms",   /* one more than UINT64_MAX */
		"18446744073709551615s",    /* overflows when scaled */
		"99999999999999999999999h",
		"d", "1dd", "1d1h", "1 d", "1day", "1.5d",
		"213503982335d",            /* overflows when scaled */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ms = 42;
		ck_assert_msg(config_parse_duration(bad[i], &ms) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_uint_eq(ms, 42);
	}
	ck_assert_int_eq(config_parse_duration(NULL, &(uint64_t){ 0 }), -EINVAL);
}
END_TEST

START_TEST(test_duration_in_file)
{
	assert_bad_value("server", "shutdown_timeout", "abc",
			 "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("http", "send_timeout", "-1", "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("http", "header_timeout", "", "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("server", "worker_timeout", "500ms", "expected a duration from 1s to 7d");
	assert_bad_value("http", "keepalive_timeout", "0", "expected a duration from 1ms to 7d");
	assert_bad_value("echo", "idle_timeout", "200h", "expected a duration from 1ms to 7d");
	/* Days work for every duration key; a bound in days is stated in days. */
	assert_bad_value("echo", "idle_timeout", "8d", "expected a duration from 1ms to 7d");
	assert_bad_value("listener web", "defer_accept", "soon", "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("listener web", "defer_accept", "2h", "expected a duration from 0s to 1h");
	struct config *cfg = load_ok("[listener web]\naddress = 127.0.0.1:8080\ndefer_accept = 1500ms\n");
	ck_assert_uint_eq(cfg->listeners[0].defer_accept_ms, 1500);
	ck_assert(cfg->listeners[0].defer_accept_set);
	config_free(cfg);
	cfg = load_ok("[listener web]\naddress = 127.0.0.1:8080\n");
	ck_assert(!cfg->listeners[0].defer_accept_set); /* a socket from systemd keeps its own */
	config_free(cfg);
	load_bad("[listener web]\naddress = unix:/run/drover/web.sock\ndefer_accept = 1s\n");
	assert_error_at(3, "[listener web] defer_accept: only for a TCP address, not unix:/run/drover/web.sock");
	/* Days in any duration key. */
	cfg = load_ok("[server]\nshutdown_timeout = 1d\n" WEB);
	ck_assert_uint_eq(cfg->server.shutdown_timeout_ms, 86400000);
	config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------ HTTPS-related HTTP keys */

START_TEST(test_hsts_and_log_format_defaults)
{
	struct config *cfg = load_ok(WEB);
	const struct http_config *h = http_cfg(cfg);
	ck_assert_uint_eq(h->hsts_s, HTTP_HSTS_OFF);
	ck_assert_ptr_null(h->hsts_line);
	ck_assert(!h->hsts_include_subdomains);
	ck_assert_uint_eq(h->access_log_format, HTTP_LOG_COMBINED);
	const struct http_listener_config *lc = http_listener_cfg(&cfg->listeners[0]);
	ck_assert(!lc->redirect_https);
	ck_assert_uint_eq(lc->https_port, 443);
	config_free(cfg);
}
END_TEST

START_TEST(test_hsts_values)
{
	struct config *cfg = load_ok("[http]\nhsts = 365d\n" WEB);
	const struct http_config *h = http_cfg(cfg);
	ck_assert_uint_eq(h->hsts_s, 31536000);
	ck_assert_str_eq(h->hsts_line, "Strict-Transport-Security: max-age=31536000\r\n");
	ck_assert_uint_eq(h->hsts_line_len, strlen(h->hsts_line));
	config_free(cfg);

	cfg = load_ok("[http]\nhsts = 730d\nhsts_include_subdomains = yes\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->hsts_line,
			 "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n");
	config_free(cfg);

	cfg = load_ok("[http]\nhsts = 63072000\n" WEB); /* seconds: exactly two years */
	ck_assert_uint_eq(http_cfg(cfg)->hsts_s, 63072000);
	config_free(cfg);

	/* 0 is max-age=0: browsers forget the host's HSTS (RFC 6797 §6.1.1). */
	cfg = load_ok("[http]\nhsts = 0\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->hsts_line, "Strict-Transport-Security: max-age=0\r\n");
	config_free(cfg);

	cfg = load_ok("[http]\nhsts = off\nhsts_include_subdomains = yes\n" WEB);
	ck_assert_ptr_null(http_cfg(cfg)->hsts_line);
	config_free(cfg);

	cfg = load_ok("[http]\naccess_log_format = extended\n" WEB);
	ck_assert_uint_eq(http_cfg(cfg)->access_log_format, HTTP_LOG_EXTENDED);
	config_free(cfg);
	cfg = load_ok("[http]\naccess_log_format = combined\n" WEB);
	ck_assert_uint_eq(http_cfg(cfg)->access_log_format, HTTP_LOG_COMBINED);
	config_free(cfg);
}
END_TEST

START_TEST(test_hsts_errors)
{
	static const char hsts[] = "expected 'off' or a duration in whole seconds up to 730d (two years)";
	assert_bad_value("http", "hsts", "731d", hsts);
	assert_bad_value("http", "hsts", "63072001", hsts);
	assert_bad_value("http", "hsts", "1500ms", hsts);
	assert_bad_value("http", "hsts", "forever", hsts);
	assert_bad_value("http", "hsts", "", hsts);
	assert_bad_value("http", "hsts", "-1", hsts);
	assert_bad_value("http", "hsts_include_subdomains", "maybe",
			 "expected yes or no (or true/false, on/off, 1/0)");
	assert_bad_value("http", "access_log_format", "json", "expected combined or extended");
	assert_bad_value("http", "access_log_format", "", "expected combined or extended");
}
END_TEST

/* [http] precompressed, error_page_*, and [cache NAME] (issue 21). */
START_TEST(test_assets_keys)
{
	struct config *cfg = load_ok(WEB);
	const struct http_config *h = http_cfg(cfg);
	ck_assert_uint_eq(h->precompressed.n, 1); /* default: gzip */
	ck_assert_int_eq(h->precompressed.order[0], HTTP_CODING_GZIP);
	ck_assert_ptr_null(h->error_page_404);
	ck_assert_uint_eq(h->n_cache_rules, 0);
	config_free(cfg);

	cfg = load_ok("[http]\nprecompressed = zstd br gzip\nerror_page_404 = /errors/../404.html\n"
		      "error_page_500 = off\n"
		      "[cache long]\nmatch = /assets/ *.woff2\ncache_control = public, max-age=31536000, immutable\n"
		      "[cache short]\nmatch = /assets/x/\ncache_control = no-cache\n" WEB);
	h = http_cfg(cfg);
	ck_assert_uint_eq(h->precompressed.n, 3);
	ck_assert_int_eq(h->precompressed.order[0], HTTP_CODING_ZSTD);
	ck_assert_int_eq(h->precompressed.order[1], HTTP_CODING_BR);
	ck_assert_int_eq(h->precompressed.order[2], HTTP_CODING_GZIP);
	ck_assert_str_eq(h->error_page_404, "/404.html");
	ck_assert_ptr_null(h->error_page_500);
	ck_assert_uint_eq(h->n_cache_rules, 3);
	size_t len;
	const char *line = http_cache_control(h, "/assets/a.css", "a.css", &len);
	ck_assert_str_eq(line, "Cache-Control: public, max-age=31536000, immutable\r\n");
	ck_assert_uint_eq(len, strlen(line));
	ck_assert_str_eq(http_cache_control(h, "/assets/x/a.css", "a.css", &len), "Cache-Control: no-cache\r\n");
	ck_assert_str_eq(http_cache_control(h, "/f/a.WOFF2", "a.WOFF2", &len),
			 "Cache-Control: public, max-age=31536000, immutable\r\n");
	ck_assert_ptr_null(http_cache_control(h, "/a.css", "a.css", &len));
	ck_assert_uint_eq(len, 0);
	config_free(cfg);

	cfg = load_ok("[http]\nprecompressed = off\n" WEB);
	ck_assert_uint_eq(http_cfg(cfg)->precompressed.n, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_assets_errors)
{
	static const char pc[] = "expected 'off' or a list of br, gzip, zstd (each once, separated by spaces)";
	assert_bad_value("http", "precompressed", "deflate", pc);
	assert_bad_value("http", "precompressed", "gzip gzip", pc);
	assert_bad_value("http", "precompressed", "", pc);
	assert_bad_value("http", "precompressed", "x-gzip", pc);
	static const char ep[] = "expected the URL path of a file under the root, like /404.html, or 'off'";
	assert_bad_value("http", "error_page_404", "404.html", ep);
	assert_bad_value("http", "error_page_403", "/errors/", ep);
	assert_bad_value("http", "error_page_500", "/../../etc/passwd", ep);
	assert_bad_value("http", "error_page_404", "/a b.html", ep);
	static const char m[] = "expected path prefixes starting with '/' or extensions like *.woff2, "
				"separated by spaces";
	static const char cc[] = "expected a Cache-Control value like 'public, max-age=3600'";
	static const struct {
		const char *match, *cc, *bad, *why;
	} cases[] = {
		{ "assets/", "no-cache", "assets/", m },
		{ "/assets/ *.", "no-cache", "/assets/ *.", m },
		{ "*.tar.*", "no-cache", "*.tar.*", m },
		{ "*/x", "no-cache", "*/x", m },
		{ "/a/", "", "", cc },
		{ "/a/", "max-age=1\x01", "max-age=1\x01", cc },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "[cache a]\n%s = %s\n%s = %s\n" WEB,
			 cases[i].match == cases[i].bad ? "match" : "cache_control", cases[i].bad,
			 cases[i].match == cases[i].bad ? "cache_control" : "match",
			 cases[i].match == cases[i].bad ? cases[i].cc : cases[i].match);
		load_bad(text);
		assert_error_at(2, "[cache a] %s: %s, got '%s'", cases[i].match == cases[i].bad ? "match" : "cache_control",
				cases[i].why, cases[i].bad);
		ck_assert_uint_eq(count_lines(terr), 1);
	}
	char long_cc[600];
	memset(long_cc, 'x', 513);
	long_cc[513] = '\0';
	char text[1024];
	snprintf(text, sizeof(text), "[cache a]\nmatch = /a/\ncache_control = %s\n" WEB, long_cc);
	load_bad(text);
	assert_error_at(3, "[cache a] cache_control: expected a Cache-Control value of at most 512 characters");
	long_cc[512] = '\0';
	snprintf(text, sizeof(text), "[cache a]\nmatch = /a/\ncache_control = %s\n" WEB, long_cc);
	config_free(load_ok(text));
	load_bad("[cache a]\nmatch = /a/\ncache_control = no-cache\nexpires = 1d\n" WEB);
	assert_error_at(4, "[cache a] unknown key 'expires'");
	ck_assert_uint_eq(count_lines(terr), 1);

	/* Both keys are needed: the section's line is named. */
	load_bad("[cache a]\nmatch = /a/\n" WEB);
	assert_error_at(1, "[cache a] cache_control: expected a Cache-Control value like 'public, "
			   "max-age=3600', got nothing");
	load_bad(WEB "[cache b]\ncache_control = no-store\n");
	assert_error_at(3, "[cache b] match: expected path prefixes starting with '/' or extensions "
			   "like *.woff2, got nothing");
}
END_TEST

START_TEST(test_redirect_https_keys)
{
	struct config *cfg = load_ok("[listener web]\naddress = 127.0.0.1:8080\nredirect_https = yes\n"
				     "https_port = 8443\n"
				     "[listener lb]\naddress = 127.0.0.1:8081\nredirect_https = yes\n");
	const struct http_listener_config *lc = http_listener_cfg(config_find_listener(cfg, "web"));
	ck_assert(lc->redirect_https);
	ck_assert_uint_eq(lc->https_port, 8443);
	lc = http_listener_cfg(config_find_listener(cfg, "lb"));
	ck_assert(lc->redirect_https);
	ck_assert_uint_eq(lc->https_port, 443);
	config_free(cfg);

	assert_bad_value("listener web", "redirect_https", "sometimes",
			 "expected yes or no (or true/false, on/off, 1/0)");
	assert_bad_value("listener web", "https_port", "0", "expected a whole number from 1 to 65535");
	assert_bad_value("listener web", "https_port", "65536", "expected a whole number from 1 to 65535");
	assert_bad_value("listener web", "https_port", "https", "expected a whole number from 1 to 65535");

	/* HTTP's keys, on an echo listener. */
	load_bad("[listener e]\nprotocol = echo\nredirect_https = yes\nhttps_port = 8443\n");
	assert_error_at(3, "[listener e] redirect_https: expected no, because the redirect to HTTPS "
			   "needs protocol = http and this listener is echo");
	assert_error_at(4, "[listener e] https_port: expected no https_port, because the redirect "
			   "to HTTPS needs protocol = http and this listener is echo");
	ck_assert_uint_eq(count_lines(terr), 2);
	/* Off is fine anywhere, as status = no. */
	cfg = load_ok("[listener e]\nprotocol = echo\nredirect_https = no\n");
	config_free(cfg);
}
END_TEST

START_TEST(test_http2_keys)
{
	/* Defaults: on with TLS, off without; [http2]'s limits. */
	struct config *cfg = load_ok("[listener web]\naddress = 127.0.0.1:8080\n"
				     "[listener s]\naddress = 127.0.0.1:8443\ntls = yes\n"
				     "[listener s1]\naddress = 127.0.0.1:8444\ntls = yes\nhttp2 = no\n"
				     "[listener c]\naddress = 127.0.0.1:8081\nhttp2 = yes\n"
				     "[certificate a]\ncertificate = a.pem\nprivate_key = a.key\n");
	ck_assert(!http_listener_cfg(config_find_listener(cfg, "web"))->http2);
	ck_assert(http_listener_cfg(config_find_listener(cfg, "s"))->http2);
	ck_assert(!http_listener_cfg(config_find_listener(cfg, "s1"))->http2);
	ck_assert(http_listener_cfg(config_find_listener(cfg, "c"))->http2);
	const struct http2_config *h2 = http2_cfg(cfg);
	ck_assert_uint_eq(h2->max_concurrent_streams, 128);
	ck_assert_uint_eq(h2->initial_window_size, 65536);
	ck_assert_uint_eq(h2->max_header_list_size, 0); /* [http] max_header_size */
	config_free(cfg);

	cfg = load_ok("[http2]\nmax_concurrent_streams = 100\ninitial_window_size = 1m\n"
		      "max_header_list_size = 16k\n" WEB);
	h2 = http2_cfg(cfg);
	ck_assert_uint_eq(h2->max_concurrent_streams, 100);
	ck_assert_uint_eq(h2->initial_window_size, 1u << 20);
	ck_assert_uint_eq(h2->max_header_list_size, 16u << 10);
	config_free(cfg);

	assert_bad_value("http2", "max_concurrent_streams", "0", "expected a whole number from 1 to 65536");
	assert_bad_value("http2", "max_concurrent_streams", "lots", "expected a whole number from 1 to 65536");
	assert_bad_value("http2", "initial_window_size", "2g", "expected a size from 0 to 2147483647");
	assert_bad_value("http2", "max_header_list_size", "10", "expected a size from 64 to 16m");
	assert_bad_value("listener web", "http2", "maybe", "expected yes or no (or true/false, on/off, 1/0)");
	/* HTTP/2 on an echo listener. */
	load_bad("[listener e]\nprotocol = echo\nhttp2 = yes\n");
	assert_error_at(3, "[listener e] http2: expected no, because HTTP/2 needs protocol = http and "
			   "this listener is echo");
}
END_TEST

/* [tls], [certificate NAME] and tls = yes: what config itself checks (the
 * files are read by tls_load, tested against the real binary). */
START_TEST(test_tls_keys)
{
	struct config *cfg = load_ok(WEB);
	const struct tls_config *t = tls_cfg(cfg);
	ck_assert_uint_eq(t->protocols, TLS_PROTO_12 | TLS_PROTO_13);
	ck_assert_str_eq(t->ciphers, TLS_DEFAULT_CIPHERS);
	ck_assert_ptr_null(t->ciphersuites);
	ck_assert_str_eq(t->groups, "X25519:prime256v1:secp384r1");
	ck_assert(t->session_tickets);
	ck_assert_uint_eq(t->session_timeout_ms, 3600 * 1000);
	ck_assert_ptr_null(t->ticket_key_file);
	ck_assert(!tls_listener_on(config_find_listener(cfg, "web")));
	ck_assert(!tls_in_use(cfg));
	config_free(cfg);

	cfg = load_ok("[listener s]\naddress = 127.0.0.1:8443\ntls = yes\n"
		      "[certificate b]\ncertificate = b.pem\nprivate_key = /k/b.key\nnames = b.example *.b.example\n"
		      "[certificate a]\ncertificate = a.pem\nprivate_key = a.key\n"
		      "[tls]\nprotocols = TLSv1.3\nciphersuites = TLS_AES_128_GCM_SHA256\nsession_tickets = no\n"
		      "session_timeout = 2h\nticket_key_file = keys.bin\n");
	ck_assert(tls_listener_on(config_find_listener(cfg, "s")));
	ck_assert(tls_in_use(cfg));
	t = tls_cfg(cfg);
	ck_assert_uint_eq(t->protocols, TLS_PROTO_13);
	ck_assert_str_eq(t->ciphersuites, "TLS_AES_128_GCM_SHA256");
	ck_assert(!t->session_tickets);
	ck_assert_uint_eq(tls_session_timeout_ms(cfg), 2 * 3600 * 1000);
	ck_assert_ptr_nonnull(strstr(t->ticket_key_file, "/keys.bin"));
	/* Certificates in file order, paths joined to the file's directory. */
	const struct config_part *p = tls_cert_part(cfg, 0);
	ck_assert_str_eq(p->name, "b");
	const struct tls_cert_config *cc = p->data;
	ck_assert_str_eq(cc->private_key, "/k/b.key");
	ck_assert_str_eq(cc->names, "b.example *.b.example");
	ck_assert_ptr_nonnull(strstr(cc->certificate, "/b.pem"));
	ck_assert_str_eq(tls_cert_part(cfg, 1)->name, "a");
	ck_assert_ptr_null(((const struct tls_cert_config *)tls_cert_part(cfg, 1)->data)->names);
	ck_assert_ptr_null(tls_cert_part(cfg, 2));
	config_free(cfg);

	assert_bad_value("tls", "protocols", "TLSv1.1 TLSv1.2",
			 "expected TLSv1.2 and/or TLSv1.3 (older versions are not offered)");
	assert_bad_value("tls", "ciphers", "A B", "expected a colon-separated OpenSSL list without spaces");
	assert_bad_value("tls", "session_timeout", "0", "expected a duration from 1s to 7d");
	assert_bad_value("listener web", "tls", "maybe", "expected yes or no (or true/false, on/off, 1/0)");

	/* A TLS listener with no certificate; a certificate without its files;
	 * a wildcard that is not a whole leading label. */
	load_bad("[listener s]\naddress = 127.0.0.1:8443\ntls = yes\n");
	assert_error_at(3, "[listener s] tls: expected a [certificate NAME] section for it, got none");
	load_bad(WEB "[certificate c]\nnames = c.example\n");
	assert_error_at(3, "[certificate c] certificate: expected a PEM file (the chain, leaf first), got nothing");
	assert_error_at(3, "[certificate c] private_key: expected a PEM file, got nothing");
	load_bad(WEB "[certificate c]\ncertificate = c.pem\nprivate_key = c.key\nnames = www.*.example\n");
	assert_error_at(6, "[certificate c] names: expected a wildcard only as a leading '*.' (as in *.example.com), "
			   "got 'www.*.example'");
	/* Redirecting to HTTPS from a listener that is HTTPS itself. */
	load_bad("[listener s]\naddress = 127.0.0.1:8443\ntls = yes\nredirect_https = yes\n"
		 "[certificate c]\ncertificate = c.pem\nprivate_key = c.key\n");
	assert_error_at(4, "[listener s] redirect_https: expected no, because this listener is itself TLS (tls = yes)");
	ck_assert_uint_eq(count_lines(terr), 1);
}
END_TEST

START_TEST(test_size_valid)
{
	uint64_t b = 1;
	ck_assert_int_eq(config_parse_size("0", &b), 0);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(config_parse_size("512", &b), 0);
	ck_assert_uint_eq(b, 512);
	ck_assert_int_eq(config_parse_size("64k", &b), 0);
	ck_assert_uint_eq(b, 65536);
	ck_assert_int_eq(config_parse_size("64K", &b), 0);
	ck_assert_uint_eq(b, 65536);
	ck_assert_int_eq(config_parse_size("1m", &b), 0);
	ck_assert_uint_eq(b, 1048576);
	ck_assert_int_eq(config_parse_size("3M", &b), 0);
	ck_assert_uint_eq(b, 3145728);
	ck_assert_int_eq(config_parse_size("2g", &b), 0);
	ck_assert_uint_eq(b, 2147483648u);
	ck_assert_int_eq(config_parse_size("1G", &b), 0);
	ck_assert_uint_eq(b, 1073741824u);
}
END_TEST

START_TEST(test_size_invalid)
{
	static const char *const bad[] = {
		"", "k", "-1", "1.5k", "64kb", "64 k", "1t", "x", "+1", "18446744073709551616",
		"17179869184g", /* 2^34 g = 2^64 bytes */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t b = 42;
		ck_assert_msg(config_parse_size(bad[i], &b) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_uint_eq(b, 42);
	}
	assert_bad_value("http", "max_body_size", "lots", "expected a size like 512, 64k or 1m");
	assert_bad_value("echo", "buffer_size", "512", "expected a size from 1k to 64m");
	assert_bad_value("echo", "buffer_size", "65m", "expected a size from 1k to 64m");
	assert_bad_value("http", "max_request_line", "63", "expected a size from 64 to 1m");
}
END_TEST

START_TEST(test_bool)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "On", "1" };
	static const char *const no[] = { "no", "NO", "false", "FALSE", "off", "oFf", "0" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		bool b = false;
		ck_assert_int_eq(config_parse_bool(yes[i], &b), 0);
		ck_assert_msg(b, "%s", yes[i]);
		b = true;
		ck_assert_int_eq(config_parse_bool(no[i], &b), 0);
		ck_assert_msg(!b, "%s", no[i]);
	}
	bool b = true;
	ck_assert_int_eq(config_parse_bool("", &b), -EINVAL);
	ck_assert_int_eq(config_parse_bool("2", &b), -EINVAL);
	ck_assert_int_eq(config_parse_bool("yess", &b), -EINVAL);
	ck_assert_int_eq(config_parse_bool("y", &b), -EINVAL);
	ck_assert_int_eq(b, true);
	assert_bad_value("http", "autoindex", "maybe",
			 "expected yes or no (or true/false, on/off, 1/0)");
	assert_bad_value("listener web", "status", "sure",
			 "expected yes or no (or true/false, on/off, 1/0)");
}
END_TEST

START_TEST(test_counts)
{
	assert_bad_value("server", "max_connections", "0", "expected a whole number from 1 to 1048576");
	assert_bad_value("server", "max_generations", "1", "expected a whole number from 2 to 64");
	assert_bad_value("server", "max_requests", "lots", "expected a whole number of at least 0");
	assert_bad_value("http", "keepalive_requests", "0", "expected a whole number of at least 1");
	assert_bad_value("http", "max_headers", "0", "expected a whole number from 1 to 128");
	assert_bad_value("http", "max_headers", "129", "expected a whole number from 1 to 128");
	assert_bad_value("listener web", "backlog", "0", "expected a whole number from 1 to 65535");
	assert_bad_value("listener web", "backlog", "65536", "expected a whole number from 1 to 65535");
	assert_bad_value("server", "max_requests", "18446744073709551616",
			 "expected a whole number of at least 0");
	struct config *cfg = load_ok("[listener web]\nbacklog = 65535\n[http]\nmax_headers = 128\n");
	ck_assert_int_eq(cfg->listeners[0].backlog, 65535);
	ck_assert_uint_eq(http_cfg(cfg)->max_headers, 128);
	config_free(cfg);
}
END_TEST

START_TEST(test_max_requests_jitter_default)
{
	struct config *cfg = load_ok("[server]\nmax_requests = 1000\n" WEB);
	ck_assert_uint_eq(cfg->server.max_requests_jitter, 100);
	config_free(cfg);
	cfg = load_ok("[server]\nmax_requests_jitter = 0\nmax_requests = 1000\n" WEB);
	ck_assert_uint_eq(cfg->server.max_requests_jitter, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_log_level)
{
	struct config *cfg = load_ok("[server]\nlog_level = err\n" WEB);
	ck_assert_int_eq(cfg->server.log_level, LOG_ERR);
	config_free(cfg);
	cfg = load_ok("[server]\nlog_level = emerg\n" WEB);
	ck_assert_int_eq(cfg->server.log_level, LOG_EMERG);
	config_free(cfg);
	assert_bad_value("server", "log_level", "loud",
			 "expected a log level: emerg, alert, crit, err, warning, notice, info or debug");
}
END_TEST

START_TEST(test_protocol_and_mode)
{
	struct config *cfg = load_ok("[listener e]\naddress = unix:/tmp/e.sock\nprotocol = echo\n"
				     "mode = 660\n");
	ck_assert_str_eq(cfg->listeners[0].protocol, "echo");
	ck_assert_uint_eq(cfg->listeners[0].mode, 0660);
	config_free(cfg);
	assert_bad_value("listener web", "protocol", "gopher", "expected http or echo");
	assert_bad_value("listener web", "mode", "0668", "expected octal permissions like 0660");
	assert_bad_value("listener web", "mode", "01777", "expected octal permissions like 0660");
	assert_bad_value("listener web", "mode", "", "expected octal permissions like 0660");
	ck_assert_ptr_eq(proto_find("http"), &proto_http);
	ck_assert_ptr_eq(proto_find("ECHO"), &proto_echo);
	ck_assert_ptr_null(proto_find("gopher"));
}
END_TEST

START_TEST(test_http_strings)
{
	assert_bad_value("http", "index", "a/index.html", "expected a file name without '/'");
	assert_bad_value("http", "index", "..", "expected a file name without '/'");
	assert_bad_value("http", "status_path", "status", "expected a URL path starting with '/'");
	assert_bad_value("http", "health_path", "healthz",
			 "expected a URL path starting with '/' or 'off'");
	assert_bad_value("http", "default_type", "text", "expected a media type like text/plain");
	assert_bad_value("http", "root", "", "expected a path");
	assert_bad_value("http", "access_log", "", "expected a path, 'stderr' or 'off'");

	struct config *cfg = load_ok("[http]\nhealth_path = off\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->health_path, "");
	config_free(cfg);
	cfg = load_ok("[http]\nhealth_path =\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->health_path, "");
	config_free(cfg);
	cfg = load_ok("[http]\ndefault_type = text/plain; charset=utf-8\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->default_type, "text/plain; charset=utf-8");
	config_free(cfg);
}
END_TEST

START_TEST(test_health_equals_status)
{
	load_bad("[http]\nstatus_path = /x\nhealth_path = /x\n" WEB);
	assert_error_at(3, "[http] status_path: expected a path other than health_path, got '/x'");
}
END_TEST

/* The metrics, liveness and lame duck keys: defaults, values, and the
 * built-in paths kept apart. */
START_TEST(test_metrics_live_lame_duck)
{
	struct config *cfg = load_ok(WEB);
	ck_assert_uint_eq(cfg->server.lame_duck_ms, 0);
	ck_assert_str_eq(http_cfg(cfg)->live_path, "/livez");
	ck_assert_str_eq(http_cfg(cfg)->metrics_path, "/metrics");
	ck_assert(!http_listener_cfg(config_find_listener(cfg, "web"))->metrics);
	config_free(cfg);
	cfg = load_ok("[server]\nlame_duck = 20s\n[http]\nlive_path = off\nmetrics_path = /m\n"
		      "[listener web]\naddress = 127.0.0.1:8080\nmetrics = yes\n");
	ck_assert_uint_eq(cfg->server.lame_duck_ms, 20000);
	ck_assert_str_eq(http_cfg(cfg)->live_path, "");
	ck_assert_str_eq(http_cfg(cfg)->metrics_path, "/m");
	ck_assert(http_listener_cfg(config_find_listener(cfg, "web"))->metrics);
	config_free(cfg);
	assert_bad_value("server", "lame_duck", "soon", "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("http", "metrics_path", "metrics", "expected a URL path starting with '/'");
	assert_bad_value("http", "live_path", "livez", "expected a URL path starting with '/' or 'off'");
	load_bad("[http]\nhealth_path = /x\nmetrics_path = /x\n" WEB);
	assert_error_at(3, "[http] metrics_path: expected a path other than health_path, got '/x'");
	load_bad("[http]\nlive_path = /s\nstatus_path = /s\n" WEB);
	assert_error_at(3, "[http] status_path: expected a path other than live_path, got '/s'");
}
END_TEST

START_TEST(test_server_paths)
{
	struct config *cfg = load_ok("[server]\ncontrol_socket = off\npid_file = off\n" WEB);
	ck_assert_str_eq(cfg->server.control_socket, "");
	ck_assert_ptr_null(cfg->server.pid_file);
	config_free(cfg);
	cfg = load_ok("[server]\ncontrol_socket =\nuser =\n" WEB);
	ck_assert_str_eq(cfg->server.control_socket, "");
	ck_assert_ptr_null(cfg->server.user);
	config_free(cfg);

	cfg = load_ok("[server]\ncontrol_socket = run/ctl\npid_file = run/pid\n" WEB);
	char want[3 * PATH_MAX];
	snprintf(want, sizeof(want), "%s/run/ctl", tdir);
	ck_assert_str_eq(cfg->server.control_socket, want);
	snprintf(want, sizeof(want), "%s/run/pid", tdir);
	ck_assert_str_eq(cfg->server.pid_file, want);
	config_free(cfg);

	char text[512], longpath[200];
	memset(longpath, 'c', sizeof(longpath));
	longpath[0] = '/';
	longpath[120] = '\0';
	snprintf(text, sizeof(text), "[server]\ncontrol_socket = %s\n" WEB, longpath);
	load_bad(text);
	assert_error_at(2, "[server] control_socket: expected 'off' or a unix socket path of at most 107 bytes");
	assert_bad_value("server", "user", "a b", "expected a user or group name (or a numeric id)");
}
END_TEST

/* ------------------------------------------------------------ addresses */

START_TEST(test_address_v4)
{
	struct config_address a;
	ck_assert_int_eq(config_parse_address("192.0.2.7:8080", &a), 0);
	ck_assert_int_eq(a.kind, ADDR_INET);
	ck_assert_str_eq(a.text, "192.0.2.7:8080");
	ck_assert_uint_eq(a.sa_len, sizeof(struct sockaddr_in));
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0xC0000207u);

	ck_assert_int_eq(config_parse_address("localhost:1", &a), 0);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	ck_assert_uint_eq(ntohs(sin->sin_port), 1);
	ck_assert_int_eq(config_parse_address("127.0.0.1:65535", &a), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 65535);
}
END_TEST

START_TEST(test_address_star)
{
	struct config_address a;
	ck_assert_int_eq(config_parse_address("*:80", &a), 0);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
	ck_assert_int_eq(a.kind, ADDR_INET);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_uint_eq(ntohs(sin->sin_port), 80);
	ck_assert_str_eq(a.text, "*:80");
}
END_TEST

START_TEST(test_address_v6)
{
	struct config_address a;
	ck_assert_int_eq(config_parse_address("[::1]:443", &a), 0);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;
	ck_assert_int_eq(a.kind, ADDR_INET);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(a.sa_len, sizeof(struct sockaddr_in6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 443);
	ck_assert_int_eq(memcmp(&sin6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)), 0);
	ck_assert_str_eq(a.text, "[::1]:443");
	ck_assert_int_eq(config_parse_address("[::]:8080", &a), 0);
	ck_assert_int_eq(memcmp(&sin6->sin6_addr, &in6addr_any, sizeof(in6addr_any)), 0);
	ck_assert_int_eq(config_parse_address("[2001:db8::42]:1", &a), 0);
}
END_TEST

START_TEST(test_address_unix)
{
	struct config_address a;
	ck_assert_int_eq(config_parse_address("unix:/run/drover/http.sock", &a), 0);
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.sa;
	ck_assert_int_eq(a.kind, ADDR_UNIX);
	ck_assert_int_eq(sun->sun_family, AF_UNIX);
	ck_assert_str_eq(sun->sun_path, "/run/drover/http.sock");
	ck_assert_uint_eq(a.sa_len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/drover/http.sock") + 1);
	ck_assert_str_eq(a.text, "unix:/run/drover/http.sock");

	char s[200];
	memset(s, 'x', sizeof(s));
	memcpy(s, "unix:/", 6);
	s[5 + 107] = '\0'; /* 107-byte path: the most sun_path holds */
	ck_assert_int_eq(config_parse_address(s, &a), 0);
	s[5 + 107] = 'x';
	s[5 + 108] = '\0';
	ck_assert_int_eq(config_parse_address(s, &a), -EINVAL);
}
END_TEST

START_TEST(test_address_invalid)
{
	static const char *const bad[] = {
		"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:abc", "127.0.0.1:", "127.0.0.1",
		"127.0.0.1:-1", "127.0.0.1:+80", ":80", "example.com:80", "256.0.0.1:80",
		"::1:80", "[::1]", "[::1]80", "[::1:80", "[::g]:80", "[127.0.0.1]:80", "[]:80",
		"unix:relative.sock", "unix:", "", "*", "1.2.3:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config_address a;
		ck_assert_msg(config_parse_address(bad[i], &a) == -EINVAL, "accepted '%s'", bad[i]);
	}
}
END_TEST

START_TEST(test_address_in_file)
{
	const char *exp = "expected HOST:PORT, [IPv6]:PORT, *:PORT or unix:/absolute/path";
	char why[256];
	snprintf(why, sizeof(why), "%s (the port must be a number from 1 to 65535)", exp);
	assert_bad_value("listener web", "address", "127.0.0.1:0", why);
	assert_bad_value("listener web", "address", "127.0.0.1:65536", why);
	assert_bad_value("listener web", "address", "127.0.0.1:abc", why);
	snprintf(why, sizeof(why), "%s (missing :PORT)", exp);
	assert_bad_value("listener web", "address", "127.0.0.1", why);
	snprintf(why, sizeof(why), "%s (IPv6 addresses go in brackets, like [::1]:8080)", exp);
	assert_bad_value("listener web", "address", "::1:80", why);
	snprintf(why, sizeof(why), "%s (not a numeric IPv6 address)", exp);
	assert_bad_value("listener web", "address", "[::zz]:80", why);
	snprintf(why, sizeof(why), "%s (a unix socket path must be absolute)", exp);
	assert_bad_value("listener web", "address", "unix:run/x.sock", why);
}
END_TEST

/* ------------------------------------------------------------ bad files */

START_TEST(test_err_unknown_section)
{
	load_bad(WEB "\n[sever]\nworkers = 4\nbogus = 1\n");
	assert_error_at(4, "unknown section [sever]");
	/* Its keys are not reported one by one on top of that. */
	ck_assert_uint_eq(count_lines(terr), 1);
}
END_TEST

START_TEST(test_err_unknown_key)
{
	load_bad("[server]\nwokers = 4\n" WEB);
	assert_error_at(2, "[server] unknown key 'wokers'");
	load_bad(WEB "colour = blue\n");
	assert_error_at(3, "[listener web] unknown key 'colour'");
}
END_TEST

START_TEST(test_err_key_outside_section)
{
	load_bad("workers = 4\n" WEB);
	assert_error_at(1, "key 'workers' is outside any section (put it under [server], [http], "
			   "[http2], [cache NAME], [echo], [tls], [certificate NAME] or [listener NAME])");
}
END_TEST

START_TEST(test_err_message_exact)
{
	load_bad("[listener web]\n[http]\n\nheader_timeout = abc\n");
	char want[3 * PATH_MAX];
	snprintf(want, sizeof(want),
		 "%s:4: [http] header_timeout: expected a duration like 500ms, 30s or 2m, got 'abc'",
		 tpath);
	ck_assert_str_eq(terr, want);
}
END_TEST

START_TEST(test_err_duplicate_listener)
{
	load_bad("[listener web]\naddress = 127.0.0.1:1\n[listener web]\naddress = 127.0.0.1:2\n");
	assert_error_at(3, "duplicate listener 'web' (first defined at line 1)");
	ck_assert_uint_eq(count_lines(terr), 1);
}
END_TEST

START_TEST(test_err_duplicate_address)
{
	load_bad("[listener a]\naddress = 127.0.0.1:80\n\n[listener b]\nprotocol = echo\n"
		 "address = 127.0.0.1:80\n");
	assert_error_at(6, "[listener b] address: 127.0.0.1:80 is already used by [listener a]");
	/* The same socket spelled differently is still the same socket. */
	load_bad("[listener a]\naddress = 127.0.0.1:80\n[listener b]\naddress = localhost:80\n");
	assert_error_at(4, "[listener b] address: localhost:80 is already used by [listener a]");
	load_bad("[listener a]\naddress = unix:/run/x\n[listener b]\naddress = unix:/run/x\n");
	assert_error_at(4, "[listener b] address: unix:/run/x is already used by [listener a]");
	/* Different ports, families or systemd-only listeners do not collide. */
	struct config *cfg = load_ok("[listener a]\naddress = 127.0.0.1:80\n[listener b]\n"
				     "address = 127.0.0.1:81\n[listener c]\naddress = [::1]:80\n"
				     "[listener d]\n[listener e]\n");
	ck_assert_uint_eq(cfg->n_listeners, 5);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_no_listeners)
{
	load_bad("[server]\nworkers = 2\n");
	char want[3 * PATH_MAX];
	snprintf(want, sizeof(want),
		 "%s: no [listener NAME] section: drover needs at least one socket to serve", tpath);
	ck_assert_str_eq(terr, want);
	load_bad("");
	assert_error_at(0, "no [listener NAME] section: drover needs at least one socket to serve");
}
END_TEST

START_TEST(test_err_bad_listener_name)
{
	load_bad("[listener we:b]\naddress = 127.0.0.1:80\n");
	assert_error_at(1, "[listener we:b] invalid listener name 'we:b': expected 1 to 63 characters");
	/* A broken header is one message, not also "no listener". */
	ck_assert_uint_eq(count_lines(terr), 1);

	char text[200] = "[listener ";
	memset(text + 10, 'n', 64);
	strcpy(text + 74, "]\n");
	load_bad(text);
	assert_error_at(1, "[listener %.64s] invalid listener name", text + 10);

	load_bad("[listener]\n" WEB);
	assert_error_at(1, "[listener] needs a name: [listener NAME]");
	load_bad("[listener a b]\n" WEB);
	assert_error_at(1, "[listener a b] invalid listener name 'a b'");

	text[10 + 63] = ']';
	text[10 + 64] = '\n';
	text[10 + 65] = '\0';
	struct config *cfg = load_ok(text);
	ck_assert_uint_eq(strlen(cfg->listeners[0].name), 63);
	config_free(cfg);
	cfg = load_ok("[listener A-z_0.9]\n");
	ck_assert_str_eq(cfg->listeners[0].name, "A-z_0.9");
	config_free(cfg);
}
END_TEST

START_TEST(test_err_too_many_listeners)
{
	char text[8192] = "";
	size_t len = 0;
	for (int i = 0; i < CONFIG_MAX_LISTENERS + 1; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "[listener l%d]\n", i);
	load_bad(text);
	assert_error_at(CONFIG_MAX_LISTENERS + 1, "[listener l64] too many listeners (at most 64)");
	text[strlen(text) - strlen("[listener l64]\n")] = '\0';
	struct config *cfg = load_ok(text);
	ck_assert_uint_eq(cfg->n_listeners, CONFIG_MAX_LISTENERS);
	config_free(cfg);
}
END_TEST

START_TEST(test_err_set_twice)
{
	load_bad("[server]\nworkers = 2\nworkers = 3\n" WEB);
	assert_error_at(3, "[server] workers: set twice (first at line 2)");
	/* Split sections are still one section. */
	load_bad("[http]\nroot = /a\n" WEB "[http]\nroot = /b\n");
	assert_error_at(6, "[http] root: set twice (first at line 2)");
	/* The same key in two listeners is fine; twice in one is not. */
	load_bad("[listener a]\nbacklog = 1\n[listener b]\nbacklog = 2\nbacklog = 3\n");
	assert_error_at(5, "[listener b] backlog: set twice (first at line 4)");
	ck_assert_uint_eq(count_lines(terr), 1);
}
END_TEST

START_TEST(test_err_syntax)
{
	load_bad(WEB "this is not ini\n");
	assert_error_at(3, "syntax error (expected 'key = value', '[section]' or a comment)");
	load_bad("[server\nworkers = 2\n" WEB);
	assert_error_at(1, "syntax error (expected 'key = value', '[section]' or a comment)");
	load_bad(WEB "[http] junk\n");
	assert_error_at(3, "syntax error");
	load_bad(WEB "= value\n");
	assert_error_at(3, "syntax error");
	/* Every syntax error is reported, not just inih's first. */
	load_bad(WEB "one\ntwo\n[http]\nthree\n");
	assert_error_at(3, "syntax error");
	assert_error_at(4, "syntax error");
	assert_error_at(6, "syntax error");
	ck_assert_uint_eq(count_lines(terr), 3);
}
END_TEST

START_TEST(test_err_inline_hash_is_not_a_comment)
{
	load_bad("[server]\nworkers = 4 # four\n" WEB);
	assert_error_at(2, "[server] workers: expected 'auto' or a whole number from 1 to 256, got '4 # four'");
}
END_TEST

START_TEST(test_err_missing_file)
{
	char path[PATH_MAX + 32], want[3 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/does-not-exist.ini", tdir);
	struct config *cfg = (struct config *)1;
	ck_assert_int_eq(config_load(path, &cfg, terr, sizeof(terr)), -ENOENT);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	ck_assert_str_eq(terr, want);
}
END_TEST

START_TEST(test_err_directory)
{
	struct config *cfg = (struct config *)1;
	int r = config_load(tdir, &cfg, terr, sizeof(terr));
	ck_assert_int_eq(r, -EISDIR);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(strstr(terr, "cannot read: Is a directory"));
}
END_TEST

START_TEST(test_err_many_at_once)
{
	load_bad("[server]\n"                 /* 1 */
		 "workers = many\n"           /* 2 */
		 "wokers = 4\n"               /* 3 */
		 "[http]\n"                   /* 4 */
		 "max_body_size = 1q\n"       /* 5 */
		 "autoindex = perhaps\n"      /* 6 */
		 "[nope]\n"                   /* 7 */
		 "[listener a]\n"             /* 8 */
		 "address = 127.0.0.1:99999\n"/* 9 */
		 "protocol = ftp\n"           /* 10 */
		 "garbage\n");                /* 11 */
	ck_assert_uint_eq(count_lines(terr), 8);
	assert_error_at(2, "[server] workers: expected 'auto'");
	assert_error_at(3, "[server] unknown key 'wokers'");
	assert_error_at(5, "[http] max_body_size: expected a size like 512, 64k or 1m, got '1q'");
	assert_error_at(6, "[http] autoindex: expected yes or no");
	assert_error_at(7, "unknown section [nope]");
	assert_error_at(9, "[listener a] address: expected HOST:PORT");
	assert_error_at(10, "[listener a] protocol: expected http or echo, got 'ftp'");
	assert_error_at(11, "syntax error");
}
END_TEST

START_TEST(test_err_status_on_echo)
{
	load_bad("[listener e]\nstatus = yes\nprotocol = echo\n");
	assert_error_at(2, "[listener e] status: expected no");
}
END_TEST

START_TEST(test_err_truncated_buffer)
{
	char small[40];
	struct config *cfg = (struct config *)1;
	memset(small, 'Z', sizeof(small));
	int r = config_load(write_config("[a]\n[b]\n[c]\n[d]\n"), &cfg, small, 20);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(strlen(small), 19);
	ck_assert_int_eq(small[20], 'Z'); /* nothing written past err_len */
	ck_assert_int_eq(config_load(tpath, &cfg, NULL, 0), -EINVAL);
	ck_assert_int_eq(config_load(tpath, &cfg, small, 1), -EINVAL);
	ck_assert_int_eq(small[0], '\0');
}
END_TEST

/* ------------------------------------------------------------ modules */

/* A stand-in transport shaped as TLS registers itself (worker/tls_config.c):
 * the registry and storage are tested with it, on their own. A single [tls], a named
 * and repeatable [certificate NAME], and the listener key tls, which a
 * listener of any protocol may set but which needs a certificate. */
struct t_tls {
	uint64_t session_timeout_ms;
	bool session_tickets;
};
struct t_cert {
	char *certificate;
	char *private_key;
};
struct t_tls_listener {
	bool tls;
};

static int t_tls_init(void *data)
{
	struct t_tls *t = data;
	t->session_timeout_ms = 3600000;
	t->session_tickets = true;
	return 0;
}

static void t_cert_release(void *data)
{
	struct t_cert *c = data;
	free(c->certificate);
	free(c->private_key);
}

static void t_cert_check(struct config_check *chk, void *data)
{
	const struct t_cert *c = data;
	if (!c->certificate)
		config_check_error(chk, 0, "[%s] certificate: expected a file", config_check_label(chk));
}

static const struct config_key t_tls_keys[] = {
	{ "session_timeout", config_key_duration, CONFIG_FIELD(struct t_tls, session_timeout_ms), 1, 86400000 },
	{ "session_tickets", config_key_bool, CONFIG_FIELD(struct t_tls, session_tickets), 0, 0 },
};
static const struct config_key t_cert_keys[] = {
	{ "certificate", config_key_path, CONFIG_FIELD(struct t_cert, certificate), 0, 0 },
	{ "private_key", config_key_path, CONFIG_FIELD(struct t_cert, private_key), 0, 0 },
};
static const struct config_section t_tls_sections[] = {
	{ .name = "tls", .keys = t_tls_keys, .n_keys = 2, .size = sizeof(struct t_tls), .init = t_tls_init },
	{ .name = "certificate", .named = true, .keys = t_cert_keys, .n_keys = 2,
	  .size = sizeof(struct t_cert), .release = t_cert_release, .check = t_cert_check },
};

static void t_tls_listener_check(struct config_check *chk, void *data)
{
	const struct t_tls_listener *tl = data;
	const struct config *cfg = config_check_config(chk);
	if (tl->tls && !config_section_at(cfg, &t_tls_sections[1], 0, NULL))
		config_check_error(chk, config_check_line(chk, "tls"),
				   "[listener %s] tls: expected no, because there is no [certificate NAME]",
				   config_check_listener(chk)->name);
}

static const struct config_key t_tls_listener_keys[] = {
	{ "tls", config_key_bool, CONFIG_FIELD(struct t_tls_listener, tls), 0, 0 },
};
static const struct config_section t_tls_listener = {
	.keys = t_tls_listener_keys, .n_keys = 1, .size = sizeof(struct t_tls_listener),
	.check = t_tls_listener_check,
};
static const struct config_module t_tls_module = {
	.sections = t_tls_sections, .n_sections = 2, .listener = &t_tls_listener,
};
static const struct config_module *const t_transports[] = { &t_tls_module };

static void transports_on(void) { config_set_transports(t_transports, 1); }
static void transports_off(void) { tls_register(); } /* the real transport again */

START_TEST(test_module_sections_and_listener_keys)
{
	struct config *cfg = load_ok("[certificate b]\ncertificate = b.pem\nprivate_key = /k/b.key\n"
				     "[listener web]\ntls = yes\nstatus = yes\n"
				     "[tls]\nsession_timeout = 2h\n"
				     "[certificate a]\ncertificate = /c/a.pem\n"
				     "[listener diag]\nprotocol = echo\ntls = on\n"
				     "[listener plain]\n");
	const struct t_tls *t = config_section(cfg, &t_tls_sections[0]);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->session_timeout_ms, 7200000);
	ck_assert_int_eq(t->session_tickets, true); /* its default */

	/* Named sections: each its own storage, in file order, by name. */
	const char *name = NULL;
	const struct t_cert *c = config_section_at(cfg, &t_tls_sections[1], 0, &name);
	ck_assert_str_eq(name, "b");
	char want[PATH_MAX + 16];
	snprintf(want, sizeof(want), "%s/b.pem", tdir);
	ck_assert_str_eq(c->certificate, want);
	ck_assert_str_eq(c->private_key, "/k/b.key");
	c = config_section_at(cfg, &t_tls_sections[1], 1, &name);
	ck_assert_str_eq(name, "a");
	ck_assert_str_eq(c->certificate, "/c/a.pem");
	ck_assert_ptr_null(c->private_key);
	ck_assert_ptr_null(config_section_at(cfg, &t_tls_sections[1], 2, &name));
	ck_assert_ptr_null(config_section(cfg, &t_tls_sections[1])); /* named: by index only */
	ck_assert_ptr_null(config_section_at(cfg, &t_tls_sections[0], 0, &name)); /* single */

	/* Listener keys of a transport, on listeners of any protocol; each
	 * module's keys in their own storage. */
	const struct config_listener *web = config_find_listener(cfg, "web");
	const struct config_listener *diag = config_find_listener(cfg, "diag");
	const struct config_listener *plain = config_find_listener(cfg, "plain");
	ck_assert_int_eq(((const struct t_tls_listener *)config_listener_keys(web, &t_tls_listener))->tls, true);
	ck_assert_int_eq(((const struct t_tls_listener *)config_listener_keys(diag, &t_tls_listener))->tls, true);
	ck_assert_int_eq(((const struct t_tls_listener *)config_listener_keys(plain, &t_tls_listener))->tls, false);
	ck_assert_int_eq(http_listener_cfg(web)->status, true);
	ck_assert_int_eq(http_listener_cfg(diag)->status, false);
	config_free(cfg);

	/* Without the sections in the file: the defaults, no named one. */
	cfg = load_ok(WEB);
	t = config_section(cfg, &t_tls_sections[0]);
	ck_assert_uint_eq(t->session_timeout_ms, 3600000);
	ck_assert_ptr_null(config_section_at(cfg, &t_tls_sections[1], 0, &name));
	config_free(cfg);
}
END_TEST

START_TEST(test_module_errors)
{
	load_bad("[certificate]\ncertificate = /a\n" WEB);
	assert_error_at(1, "[certificate] needs a name: [certificate NAME]");
	ck_assert_uint_eq(count_lines(terr), 1); /* its keys are not checked */

	load_bad("[certificate a/b]\n" WEB);
	assert_error_at(1, "[certificate a/b] invalid certificate name 'a/b': expected 1 to 63 "
			   "characters of A-Z a-z 0-9 _ . -");

	load_bad("[certificate a]\ncertificate = /a\n[certificate a]\n" WEB);
	assert_error_at(3, "duplicate certificate 'a' (first defined at line 1)");

	load_bad("[certificate a]\ncertificate = /a\ncolour = blue\ncertificate = /b\n" WEB);
	assert_error_at(3, "[certificate a] unknown key 'colour'");
	assert_error_at(4, "[certificate a] certificate: set twice (first at line 2)");

	assert_bad_value("tls", "session_timeout", "2w", "expected a duration like 500ms, 30s or 2m");
	assert_bad_value("listener web", "tls", "maybe", "expected yes or no (or true/false, on/off, 1/0)");

	/* Each section's and each listener's check(), after the whole file. */
	load_bad("[certificate a]\nprivate_key = /k\n" WEB);
	assert_error_at(0, "[certificate a] certificate: expected a file");
	load_bad("[listener web]\naddress = 127.0.0.1:8443\ntls = yes\n");
	assert_error_at(3, "[listener web] tls: expected no, because there is no [certificate NAME]");

	load_bad("key = 1\n" WEB);
	assert_error_at(1, "key 'key' is outside any section (put it under [server], [http], [http2], "
			   "[cache NAME], [echo], [tls], [certificate NAME] or [listener NAME])");
	load_bad("[tls x]\n" WEB);
	assert_error_at(1, "unknown section [tls x]");
}
END_TEST

/* A section or listener key claimed twice is a bug in a table. */
static const struct config_section t_second_http[] = { { .name = "http" } };
static const struct config_module t_second_http_module = { .sections = t_second_http, .n_sections = 1 };
static const struct config_module *const t_second_http_list[] = { &t_second_http_module };

START_TEST(test_module_section_claimed_twice_aborts)
{
	config_set_transports(t_second_http_list, 1);
}
END_TEST

static const struct config_key t_backlog_key[] = {
	{ "backlog", config_key_bool, 0, sizeof(bool), 0, 0 },
};
static const struct config_section t_backlog_listener = { .keys = t_backlog_key, .n_keys = 1, .size = sizeof(bool) };
static const struct config_module t_backlog_module = { .listener = &t_backlog_listener };
static const struct config_module *const t_backlog_list[] = { &t_backlog_module };

START_TEST(test_module_listener_key_claimed_twice_aborts)
{
	config_set_transports(t_backlog_list, 1);
}
END_TEST

/* ------------------------------------------------------------ paths */

START_TEST(test_relative_root)
{
	struct config *cfg = (struct config *)1;
	const char *path = write_config_in("site", "[http]\nroot = www\naccess_log = logs/a.log\n"
						   "mime_types = mime.types\n" WEB);
	ck_assert_int_eq(config_load(path, &cfg, terr, sizeof(terr)), 0);
	char want[3 * PATH_MAX];
	snprintf(want, sizeof(want), "%s/site/www", tdir);
	ck_assert_str_eq(http_cfg(cfg)->root, want);
	snprintf(want, sizeof(want), "%s/site/logs/a.log", tdir);
	ck_assert_str_eq(http_cfg(cfg)->access_log, want);
	snprintf(want, sizeof(want), "%s/site/mime.types", tdir);
	ck_assert_str_eq(http_cfg(cfg)->mime_types, want);
	config_free(cfg);

	/* Joined, not normalised, and need not exist. */
	cfg = load_ok("[http]\nroot = ../elsewhere/./x\n" WEB);
	snprintf(want, sizeof(want), "%s/../elsewhere/./x", tdir);
	ck_assert_str_eq(http_cfg(cfg)->root, want);
	config_free(cfg);

	cfg = load_ok("[http]\nroot = /abs/www\naccess_log = stderr\n" WEB);
	ck_assert_str_eq(http_cfg(cfg)->root, "/abs/www");
	ck_assert_str_eq(http_cfg(cfg)->access_log, "stderr");
	config_free(cfg);
}
END_TEST

START_TEST(test_relative_root_relative_config_path)
{
	/* The file named relative to the cwd still gives an absolute root. */
	write_config_in("rel", "[http]\nroot = www\n" WEB);
	ck_assert_int_eq(chdir(tdir), 0);
	char rel[PATH_MAX + 32], want[3 * PATH_MAX];
	snprintf(rel, sizeof(rel), "rel/%s", strrchr(tpath, '/') + 1);
	struct config *cfg = NULL;
	ck_assert_int_eq(config_load(rel, &cfg, terr, sizeof(terr)), 0);
	snprintf(want, sizeof(want), "%s/rel/www", tdir);
	ck_assert_str_eq(http_cfg(cfg)->root, want);
	ck_assert_str_eq(cfg->path, rel);
	config_free(cfg);

	ck_assert_int_eq(chdir("rel"), 0);
	ck_assert_int_eq(config_load(strrchr(tpath, '/') + 1, &cfg, terr, sizeof(terr)), 0);
	ck_assert_str_eq(http_cfg(cfg)->root, want);
	config_free(cfg);
}
END_TEST

START_TEST(test_find_listener)
{
	struct config *cfg = load_ok("[listener http]\naddress = 127.0.0.1:80\n"
				     "[listener echo]\nprotocol = echo\naddress = unix:/run/e\n");
	const struct config_listener *l = config_find_listener(cfg, "echo");
	ck_assert_ptr_eq(l, &cfg->listeners[1]);
	ck_assert_str_eq(l->protocol, "echo");
	ck_assert_ptr_eq(config_find_listener(cfg, "http"), &cfg->listeners[0]);
	ck_assert_ptr_null(config_find_listener(cfg, "HTTP"));
	ck_assert_ptr_null(config_find_listener(cfg, "ftp"));
	ck_assert_ptr_null(config_find_listener(cfg, ""));
	ck_assert_ptr_null(config_find_listener(NULL, "http"));
	config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------ runner */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *files = tcase_create("files");
	tcase_add_test(files, test_full_file_every_key);
	tcase_add_test(files, test_defaults_when_keys_absent);
	tcase_add_test(files, test_new_default);
	tcase_add_test(files, test_listener_defaults);
	tcase_add_test(files, test_workers_auto);
	tcase_add_test(files, test_workers_bad);
	tcase_add_test(files, test_comments_blank_and_indented_lines);
	tcase_add_test(files, test_crlf_and_bom);
	tcase_add_test(files, test_long_line_value);
	tcase_add_test(files, test_shipped_config);
	suite_add_tcase(s, files);

	TCase *values = tcase_create("values");
	tcase_add_test(values, test_duration_valid);
	tcase_add_test(values, test_duration_invalid);
	tcase_add_test(values, test_duration_in_file);
	tcase_add_test(values, test_hsts_and_log_format_defaults);
	tcase_add_test(values, test_hsts_values);
	tcase_add_test(values, test_hsts_errors);
	tcase_add_test(values, test_assets_keys);
	tcase_add_test(values, test_assets_errors);
	tcase_add_test(values, test_redirect_https_keys);
	tcase_add_test(values, test_http2_keys);
	tcase_add_test(values, test_size_valid);
	tcase_add_test(values, test_size_invalid);
	tcase_add_test(values, test_bool);
	tcase_add_test(values, test_counts);
	tcase_add_test(values, test_max_requests_jitter_default);
	tcase_add_test(values, test_log_level);
	tcase_add_test(values, test_protocol_and_mode);
	tcase_add_test(values, test_http_strings);
	tcase_add_test(values, test_health_equals_status);
	tcase_add_test(values, test_metrics_live_lame_duck);
	tcase_add_test(values, test_server_paths);
	suite_add_tcase(s, values);

	TCase *addr = tcase_create("addresses");
	tcase_add_test(addr, test_address_v4);
	tcase_add_test(addr, test_address_star);
	tcase_add_test(addr, test_address_v6);
	tcase_add_test(addr, test_address_unix);
	tcase_add_test(addr, test_address_invalid);
	tcase_add_test(addr, test_address_in_file);
	suite_add_tcase(s, addr);

	TCase *errs = tcase_create("errors");
	tcase_add_test(errs, test_err_unknown_section);
	tcase_add_test(errs, test_err_unknown_key);
	tcase_add_test(errs, test_err_key_outside_section);
	tcase_add_test(errs, test_err_message_exact);
	tcase_add_test(errs, test_err_duplicate_listener);
	tcase_add_test(errs, test_err_duplicate_address);
	tcase_add_test(errs, test_err_no_listeners);
	tcase_add_test(errs, test_err_bad_listener_name);
	tcase_add_test(errs, test_err_too_many_listeners);
	tcase_add_test(errs, test_err_set_twice);
	tcase_add_test(errs, test_err_syntax);
	tcase_add_test(errs, test_err_inline_hash_is_not_a_comment);
	tcase_add_test(errs, test_err_missing_file);
	tcase_add_test(errs, test_err_directory);
	tcase_add_test(errs, test_err_many_at_once);
	tcase_add_test(errs, test_err_status_on_echo);
	tcase_add_test(errs, test_err_truncated_buffer);
	suite_add_tcase(s, errs);

	TCase *modules = tcase_create("modules");
	tcase_add_checked_fixture(modules, transports_on, transports_off);
	tcase_add_test(modules, test_module_sections_and_listener_keys);
	tcase_add_test(modules, test_module_errors);
	suite_add_tcase(s, modules);
	TCase *claims = tcase_create("claims");
	tcase_add_test_raise_signal(claims, test_module_section_claimed_twice_aborts, SIGABRT);
	tcase_add_test_raise_signal(claims, test_module_listener_key_claimed_twice_aborts, SIGABRT);
	suite_add_tcase(s, claims);

	TCase *paths = tcase_create("paths");
	tcase_add_test(paths, test_relative_root);
	tcase_add_test(paths, test_relative_root_relative_config_path);
	tcase_add_test(paths, test_find_listener);
	tcase_add_test(paths, test_tls_keys);
	suite_add_tcase(s, paths);
	return s;
}

int main(void)
{
	proto_register(protocols);
	tls_register();
	const char *tmp = getenv("TMPDIR");
	snprintf(tdir, sizeof(tdir), "%s/drover-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* The config directory is compared as a string: use the one getcwd()
	 * reports, in case TMPDIR goes through a symlink. */
	char *cwd = getcwd(NULL, 0);
	if (cwd && chdir(tdir) == 0) {
		char *real = getcwd(NULL, 0);
		if (real && strlen(real) < sizeof(tdir))
			strcpy(tdir, real);
		free(real);
		if (chdir(cwd) != 0)
			perror("chdir");
	}
	free(cwd);

	int failed = h_run_suite(config_suite());
	nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? 0 : 1;
}
