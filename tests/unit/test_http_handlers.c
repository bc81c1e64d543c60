/* test_http_handlers: the router and the handlers of src/proto/http
 * answering requests as data, with no connection and no socket: a request
 * is parsed from its text, routed (router.c) or handed to one handler, and
 * the response (status, field lines, body source) is looked at as HTTP/2
 * will see it. The document root is a real directory; the open-file cache
 * and the root are the real ones. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/scoreboard.h"
#include "proto/http/config.h"
#include "proto/http/cache.h"
#include "proto/http/file.h"
#include "proto/http/handler.h"
#include "proto/http/listing.h"
#include "proto/http/mime.h"
#include "proto/http/parse.h"
#include "proto/http/redirect.h"
#include "proto/http/response.h"
#include "proto/http/root.h"
#include "proto/http/router.h"
#include "proto/protocols.h"
#include "worker/proto.h"

#include "harness.h"

#define BIG_SIZE 20000 /* over file_cache_max_file: a cached fd, not bytes */

static char *root;
static struct config *cfg;
static bool draining;
static struct proto_env env;
static struct http_mime *mime;
static struct http_site site;
static struct worker_listener listener;
static uint64_t now_ms;

static char raw[4096];
static struct http_request req;
static char field_buf[HTTP_FIELDS_MAX];
static struct http_response resp;

/* A file under the root, dated a minute ago: a file system's clock may run
 * a little ahead of time(), and a file dated in the future is (rightly)
 * not cached, which the cache tests would take for a failure. */
static void put(const char *rel, const char *content)
{
	char p[4096];
	h_path_join(p, sizeof p, root, rel);
	h_write_file(p, content);
	struct timespec past[2] = { { .tv_sec = time(NULL) - 60 }, { .tv_sec = time(NULL) - 60 } };
	ck_assert_int_eq(utimensat(AT_FDCWD, p, past, 0), 0);
}

static void cache_on(uint64_t valid_ms)
{
	http_cache_done();
	struct http_cache_params cp = {
		.valid_ms = valid_ms,
		.max_entries = http_cfg(cfg)->file_cache_entries,
		.max_bytes = http_cfg(cfg)->file_cache_size,
		.max_file = http_cfg(cfg)->file_cache_max_file,
		.popts = site.popts,
		.mime = mime,
		.default_type = http_cfg(cfg)->default_type,
	};
	ck_assert_int_eq(http_cache_init(&cp), 0);
}

/* A root with a small file, a big one, a directory with an index, one
 * without, and a dotfile; the worker's site as http.c sets it up. */
static void setup(void)
{
	root = h_tmpdir();
	put("hello.txt", "hello\n");
	char *big = malloc(BIG_SIZE + 1);
	memset(big, 'b', BIG_SIZE);
	big[BIG_SIZE] = '\0';
	put("big.bin", big);
	free(big);
	char p[4096];
	h_path_join(p, sizeof p, root, "site");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	put("site/index.html", "<p>index</p>\n");
	h_path_join(p, sizeof p, root, "dir");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	put("dir/a.txt", "a\n");
	put(".secret", "no\n");

	/* Two listeners, the built-in [http]: only "web" serves the status.
	 * Three more send their clients to HTTPS: "redir" (to port 443, with
	 * the status), "alt" (to 8443, on a wildcard address) and "sock"
	 * (from systemd: no address of its own). */
	h_path_join(p, sizeof p, root, "drover.ini");
	h_write_file(p, "[listener plain]\n[listener web]\nstatus = yes\n"
			"[listener redir]\naddress = 127.0.0.1:8080\nredirect_https = yes\nstatus = yes\n"
			"[listener alt]\naddress = *:8081\nredirect_https = yes\nhttps_port = 8443\n"
			"[listener sock]\nredirect_https = yes\n");
	char err[1024];
	ck_assert_msg(config_load(p, &cfg, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(unlink(p), 0);
	draining = false;
	env = (struct proto_env){ .cfg = cfg, .draining = &draining };
	mime = http_mime_load(NULL, NULL);
	ck_assert_ptr_nonnull(mime);
	site = (struct http_site){
		.env = &env,
		.http = http_cfg(cfg),
		.mime = mime,
		.popts = { .index = "index.html" },
		.redirect_https = http_redirect_any(cfg),
	};
	listener = (struct worker_listener){ .fd = -1, .name = "plain" };
	now_ms = 1000000;
	http_root_open(root, 1000, now_ms);
	cache_on(0);
	http_response_init(&resp, field_buf, sizeof field_buf);
}

static void teardown(void)
{
	http_src_release(&resp.body);
	http_cache_done();
	http_root_close();
	http_mime_free(mime);
	config_free(cfg);
	h_rm_rf(root);
	free(root);
}

/* Parse text as a request head (into raw, so its slices stay valid). */
static void parse(const char *text)
{
	struct http_parser p;
	struct http_limits lim = { 8192, 8192, 32768, 100, 1 << 20 };
	snprintf(raw, sizeof raw, "%s", text);
	http_parser_init(&p);
	memset(&req, 0, sizeof req);
	ck_assert_int_gt(http_parse_request(&p, raw, strlen(raw), &lim, &req), 0);
}

static struct http_ask ask_of(void)
{
	return (struct http_ask){
		.req = &req,
		.head_only = req.method == HTTP_METHOD_HEAD,
		.listener = &listener,
		.now_ms = now_ms,
		.site = &site,
	};
}

/* Route the request text; the response is in resp. */
static void route(const char *text)
{
	http_src_release(&resp.body);
	http_response_init(&resp, field_buf, sizeof field_buf);
	parse(text);
	struct http_ask ask = ask_of();
	http_router_answer(&ask, &resp);
	ck_assert_ptr_null(ask.path); /* the normalised path lived only in the call */
}

/* The value of field name in resp, walked as name/value pairs; NULL if absent. */
static const char *field(const char *name)
{
	static char out[1024];
	size_t pos = 0;
	struct http_str n, v;
	while (http_fields_next(&resp.fields, &pos, &n, &v)) {
		if (n.len == strlen(name) && strncasecmp(n.p, name, n.len) == 0) {
			ck_assert_uint_lt(v.len, sizeof out);
			memcpy(out, v.p, v.len);
			out[v.len] = '\0';
			return out;
		}
	}
	return NULL;
}

/* The memory body of resp as a string. */
static const char *mem_body(void)
{
	static char out[8192];
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_MEM);
	ck_assert_uint_lt(resp.body.mem_len, sizeof out);
	memcpy(out, resp.body.mem, resp.body.mem_len);
	out[resp.body.mem_len] = '\0';
	return out;
}

/* The bytes of resp's file body, read as a serialiser would. */
static const char *file_body(void)
{
	static char out[BIG_SIZE + 1];
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_FILE);
	ck_assert_uint_le(resp.body.left, BIG_SIZE);
	ssize_t n = pread(resp.body.fd, out, resp.body.left, resp.body.off);
	ck_assert_int_eq(n, (ssize_t)resp.body.left);
	out[n] = '\0';
	return out;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ------------------------------------------------------------ router */

START_TEST(test_health_is_answered_by_its_table_entry)
{
	route("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_uint_eq(resp.how, HTTP_PERSIST);
	ck_assert_str_eq(field("Content-Type"), "text/plain; charset=utf-8");
	ck_assert_str_eq(field("Cache-Control"), "no-store");
	ck_assert_str_eq(mem_body(), "ok\n");
	ck_assert_uint_eq(resp.body.length, 3);

	draining = true;
	route("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 503);
	ck_assert_uint_eq(resp.how, HTTP_CLOSE); /* a draining worker ends the connection */
	ck_assert_str_eq(mem_body(), "draining\n");
}
END_TEST

START_TEST(test_methods_are_answered_before_any_handler)
{
	route("OPTIONS /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(field("Allow"), "GET, HEAD, OPTIONS");
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_NONE);
	ck_assert_uint_eq(resp.body.length, 0); /* Content-Length: 0, not 204 */

	route("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(resp.status, 405);
	ck_assert_str_eq(field("Allow"), "GET, HEAD, OPTIONS");
	ck_assert_str_eq(mem_body(), "405 Method Not Allowed\n");

	route("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 501);
}
END_TEST

START_TEST(test_the_path_is_normalised_or_refused)
{
	route("GET /dir/../hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(file_body(), "hello\n");

	route("GET /a%2fb HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 400);
	ck_assert_uint_eq(resp.how, HTTP_CLOSE);

	static char text[4096 + 200];
	memcpy(text, "GET /", 5);
	memset(text + 5, 'a', 4200 - 5);
	strcpy(text + 4200 - 5, " HTTP/1.1\r\nHost: x\r\n\r\n");
	http_src_release(&resp.body);
	http_response_init(&resp, field_buf, sizeof field_buf);
	struct http_parser p;
	struct http_limits lim = { 8192, 8192, 32768, 100, 1 << 20 };
	http_parser_init(&p);
	ck_assert_int_gt(http_parse_request(&p, text, strlen(text), &lim, &req), 0);
	struct http_ask ask = ask_of();
	http_router_answer(&ask, &resp);
	ck_assert_int_eq(resp.status, 414);
}
END_TEST

START_TEST(test_status_only_where_the_listener_serves_it)
{
	static struct scoreboard sb;
	sb.slots[3].pid = 4242;
	sb.slots[3].state = SLOT_READY;
	sb.slots[3].requests = 7;
	env.sb = &sb;
	route("GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 404); /* status = no here: the file tree's, which has none */

	snprintf(listener.name, sizeof listener.name, "web"); /* status = yes */
	route("GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(field("Content-Type"), "application/json");
	ck_assert_ptr_nonnull(resp.body.release); /* malloc'd: freed on release */
	const char *json = mem_body();
	ck_assert_ptr_nonnull(strstr(json, "\"pid\":4242"));
	ck_assert_ptr_nonnull(strstr(json, "\"requests\":7"));
	env.sb = NULL;
}
END_TEST

/* ------------------------------------------------------------ redirect_https */

static void on_listener(const char *name)
{
	snprintf(listener.name, sizeof listener.name, "%s", name);
}

/* A 301 to where, with the body of the other 301s. */
static void assert_redirect(const char *request, const char *location)
{
	route(request);
	ck_assert_msg(resp.status == 301, "%d for %s", resp.status, request);
	ck_assert_str_eq(field("Location"), location);
	ck_assert_str_eq(field("Content-Type"), "text/plain; charset=utf-8");
	ck_assert_str_eq(mem_body(), "301 Moved Permanently\n");
	ck_assert_uint_eq(resp.how, HTTP_PERSIST);
}

START_TEST(test_redirect_https_location_forms)
{
	ck_assert(site.redirect_https);
	on_listener("redir");
	assert_redirect("GET /hello.txt HTTP/1.1\r\nHost: www.example\r\n\r\n",
			"https://www.example/hello.txt");
	/* The request's port goes, 443 is left out, the query stays. */
	assert_redirect("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: www.example:8080\r\n\r\n",
			"https://www.example/a/b?x=1&y=%20");
	assert_redirect("GET /? HTTP/1.1\r\nHost: www.example\r\n\r\n", "https://www.example/");
	/* IPv6 literals keep their brackets; IPv4 as it is. */
	assert_redirect("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", "https://[2001:db8::1]/");
	assert_redirect("GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n", "https://[::ffff:192.0.2.1]/");
	assert_redirect("GET /x HTTP/1.1\r\nHost: 192.0.2.7:80\r\n\r\n", "https://192.0.2.7/x");
	/* The path as the HTTPS side will see it: normalised, encoded. */
	assert_redirect("GET /dir/../a%20b/./c HTTP/1.1\r\nHost: h\r\n\r\n", "https://h/a%20b/c");
	/* An absolute-form target's authority is the host (RFC 9112 §3.2.2). */
	assert_redirect("GET http://other.example:81/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
			"https://other.example/p?q");
	/* Every method; HEAD gets GET's head (h1.c leaves the body out). */
	assert_redirect("HEAD /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n", "https://h/hello.txt");
	assert_redirect("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "https://h/form");
	assert_redirect("OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n", "https://h/x");
	assert_redirect("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", "https://h/pot");

	/* Another https_port is kept in the URL. */
	on_listener("alt");
	assert_redirect("GET /x?y HTTP/1.1\r\nHost: www.example:80\r\n\r\n", "https://www.example:8443/x?y");
	assert_redirect("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "https://[::1]:8443/");
}
END_TEST

START_TEST(test_redirect_https_answers_health_and_status)
{
	static struct scoreboard sb;
	env.sb = &sb;
	on_listener("redir"); /* status = yes */
	route("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(mem_body(), "ok\n");
	route("HEAD /healthz?probe=1 HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	route("GET /status HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(field("Content-Type"), "application/json");
	ck_assert_ptr_null(field("Location"));
	/* Health draining is still the load balancer's signal. */
	draining = true;
	route("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 503);
	draining = false;
	/* Methods on them are answered as anywhere. */
	route("POST /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(resp.status, 405);
	/* OPTIONS * names no path to redirect to. */
	route("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	/* A path that does not normalise is refused, not redirected. */
	route("GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 400);

	/* Without status = yes the status path is just a path: redirected. */
	on_listener("alt");
	assert_redirect("GET /status HTTP/1.1\r\nHost: h\r\n\r\n", "https://h:8443/status");
	route("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);

	/* Listeners without redirect_https serve as before. */
	on_listener("plain");
	route("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	env.sb = NULL;
}
END_TEST

START_TEST(test_redirect_https_without_or_with_a_bad_host)
{
	/* HTTP/1.0 without Host: the listener's own host, when it has one. */
	on_listener("redir");
	assert_redirect("GET /x HTTP/1.0\r\n\r\n", "https://127.0.0.1/x");
	assert_redirect("GET /x HTTP/1.1\r\nHost:\r\n\r\n", "https://127.0.0.1/x"); /* empty Host */
	/* A wildcard or socket-activated listener has none: 400, no guess. */
	on_listener("alt");
	route("GET /x HTTP/1.0\r\n\r\n");
	ck_assert_int_eq(resp.status, 400);
	ck_assert_ptr_null(field("Location"));
	on_listener("sock");
	route("GET /x HTTP/1.0\r\n\r\n");
	ck_assert_int_eq(resp.status, 400);
	assert_redirect("GET /x HTTP/1.0\r\nHost: h:80\r\n\r\n", "https://h/x");

	/* Hosts of valid bytes (parse.c) that are no uri-host[:port]: 400,
	 * never reflected into Location. */
	static const char *const bad[] = {
		"a:b", "h:80:81", "[::1", "[::1]x", "[zz::1]", "[]", "[1.2.3.4]", ":80", "a[b]",
		"x%zz", "x%4", "[::1]:8a",
	};
	on_listener("redir");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof text, "GET /x HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		route(text);
		ck_assert_msg(resp.status == 400, "%d for Host: %s", resp.status, bad[i]);
		ck_assert_ptr_null(field("Location"));
	}
	/* Percent-encoded and sub-delim names are valid reg-names. */
	assert_redirect("GET / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n\r\n", "https://xn--bcher-kva.example/");
	assert_redirect("GET / HTTP/1.1\r\nHost: a%41b:\r\n\r\n", "https://a%41b/");
}
END_TEST

START_TEST(test_redirect_host_len)
{
	ck_assert_uint_eq(http_redirect_host_len("example.com", 11), 11);
	ck_assert_uint_eq(http_redirect_host_len("example.com:443", 15), 11);
	ck_assert_uint_eq(http_redirect_host_len("[::1]:8080", 10), 5);
	ck_assert_uint_eq(http_redirect_host_len("[::1]", 5), 5);
	ck_assert_uint_eq(http_redirect_host_len("h:", 2), 1);
	ck_assert_uint_eq(http_redirect_host_len("", 0), 0);
	ck_assert_uint_eq(http_redirect_host_len("*:80", 4), 1); /* '*' is a sub-delim */
	ck_assert_uint_eq(http_redirect_host_len("[::1]:", 6), 5);
	ck_assert_uint_eq(http_redirect_host_len("a b", 3), 0);
	ck_assert_uint_eq(http_redirect_host_len("a/b", 3), 0);
	ck_assert_uint_eq(http_redirect_host_len("a@b", 3), 0);
}
END_TEST

/* A pretend metrics endpoint: what adding one takes. */
static enum http_handled metrics(const struct http_ask *ask, struct http_response *r)
{
	if (strcmp(ask->path, "/metrics") != 0)
		return HTTP_DECLINED;
	http_response_text(r, 200, "text/plain", "up 1\n", 5);
	return HTTP_ANSWERED;
}

static enum http_handled decline(const struct http_ask *ask, struct http_response *r)
{
	return HTTP_DECLINED;
}

static enum http_handled fail500(const struct http_ask *ask, struct http_response *r)
{
	(void)ask;
	http_response_error(r, 500);
	http_field(&r->fields, "X-Broken", "yes");
	return HTTP_ANSWERED;
}

/* [http] error_page_500: a handler's 500 gets the page's bytes, its
 * status and nothing else of the built-in answer; a page that is not
 * there leaves the built-in one. */
START_TEST(test_an_error_page_replaces_a_handlers_500)
{
	put("500.html", "<h1>oops</h1>\n");
	struct http_config h = *http_cfg(cfg);
	char page[] = "/500.html", missing[] = "/gone.html";
	h.error_page_500 = page;
	site.http = &h;
	const struct http_handler table[] = { { "broken", fail500 } };
	parse("GET /anything HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_ask ask = ask_of();
	http_router_answer_from(table, 1, &ask, &resp);
	ck_assert_int_eq(resp.status, 500);
	ck_assert_str_eq(file_body(), "<h1>oops</h1>\n");
	ck_assert_uint_eq(resp.body.length, 14);
	ck_assert_str_eq(field("Content-Type"), "text/html");
	ck_assert_ptr_null(field("X-Broken"));

	h.error_page_500 = missing;
	http_src_release(&resp.body);
	http_response_init(&resp, field_buf, sizeof field_buf);
	ask = ask_of();
	http_router_answer_from(table, 1, &ask, &resp);
	ck_assert_int_eq(resp.status, 500);
	ck_assert_str_eq(mem_body(), "500 Internal Server Error\n");
	site.http = http_cfg(cfg);
}
END_TEST

START_TEST(test_a_new_endpoint_is_one_table_entry)
{
	const struct http_handler table[] = {
		{ "nothing", decline },
		{ "metrics", metrics },
		{ "static", http_file_answer },
	};
	parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_ask ask = ask_of();
	http_router_answer_from(table, 3, &ask, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(mem_body(), "up 1\n");

	http_response_init(&resp, field_buf, sizeof field_buf);
	parse("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ask = ask_of();
	http_router_answer_from(table, 3, &ask, &resp);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(file_body(), "hello\n");

	/* When every handler declines: 404. */
	http_src_release(&resp.body);
	http_response_init(&resp, field_buf, sizeof field_buf);
	ask = ask_of();
	http_router_answer_from(table, 1, &ask, &resp);
	ck_assert_int_eq(resp.status, 404);
	ck_assert_str_eq(mem_body(), "404 Not Found\n");
}
END_TEST

/* ------------------------------------------------------------ static files */

START_TEST(test_a_file_is_answered_as_a_range_of_its_fd)
{
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(field("Content-Type"), "text/plain");
	ck_assert_ptr_nonnull(field("ETag"));
	ck_assert_ptr_nonnull(field("Last-Modified"));
	ck_assert_str_eq(field("Accept-Ranges"), "bytes");
	ck_assert_ptr_null(field("Content-Length")); /* the serialiser's */
	ck_assert_uint_eq(resp.body.length, 6);
	ck_assert_str_eq(file_body(), "hello\n");
	int fd = resp.body.fd;
	http_src_release(&resp.body);
	ck_assert(!fd_open(fd)); /* the body's own fd: closed on release */
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_NONE);
}
END_TEST

START_TEST(test_head_gets_the_same_answer_as_get)
{
	route("HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_uint_eq(resp.body.length, 6); /* Content-Length as for GET; the body is not sent */
}
END_TEST

START_TEST(test_errors_and_redirects_of_the_file_tree)
{
	route("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 404);
	route("GET /.secret HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 404);
	route("GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 403); /* no index, no autoindex */
	route("GET /site?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 301);
	ck_assert_str_eq(field("Location"), "/site/?x=1");
	ck_assert_str_eq(mem_body(), "301 Moved Permanently\n");
	route("GET /site/ HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(file_body(), "<p>index</p>\n");
}
END_TEST

START_TEST(test_preconditions_and_ranges)
{
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	char etag[128];
	snprintf(etag, sizeof etag, "%s", field("ETag"));

	char text[512];
	snprintf(text, sizeof text, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", etag);
	route(text);
	ck_assert_int_eq(resp.status, 304);
	ck_assert(resp.no_length);
	ck_assert_str_eq(field("ETag"), etag);
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_NONE);

	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: \"other\"\r\n\r\n");
	ck_assert_int_eq(resp.status, 412);

	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n\r\n");
	ck_assert_int_eq(resp.status, 206);
	ck_assert_str_eq(field("Content-Range"), "bytes 1-3/6");
	ck_assert_str_eq(file_body(), "ell");

	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=9-\r\n\r\n");
	ck_assert_int_eq(resp.status, 416);
	ck_assert_str_eq(field("Content-Range"), "bytes */6");
}
END_TEST

START_TEST(test_several_ranges_are_a_multipart_body)
{
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0,4-5\r\n\r\n");
	ck_assert_int_eq(resp.status, 206);
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_PARTS);
	const char *boundary = http_src_boundary(&resp.body);
	char ctype[128];
	snprintf(ctype, sizeof ctype, "multipart/byteranges; boundary=%s", boundary);
	ck_assert_str_eq(field("Content-Type"), ctype);

	/* Walk it as a serialiser does: each part's header, then its bytes. */
	char body[1024], head[512];
	size_t len = 0, n;
	while ((n = http_src_next_part(&resp.body, head, sizeof head)) > 0) {
		memcpy(body + len, head, n);
		len += n;
		if (resp.body.left) {
			ssize_t r = pread(resp.body.fd, body + len, resp.body.left, resp.body.off);
			ck_assert_int_eq(r, (ssize_t)resp.body.left);
			len += (size_t)r;
			resp.body.left = 0;
		}
	}
	body[len] = '\0';
	ck_assert_uint_eq(len, resp.body.length); /* Content-Length kept */
	char want[1024];
	snprintf(want, sizeof want,
		 "\r\n--%s\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/6\r\n\r\nh"
		 "\r\n--%s\r\nContent-Type: text/plain\r\nContent-Range: bytes 4-5/6\r\n\r\no\n"
		 "\r\n--%s--\r\n",
		 boundary, boundary, boundary);
	ck_assert_str_eq(body, want);
	ck_assert_int_eq(resp.body.fd, -1); /* given back with the closing delimiter */
}
END_TEST

START_TEST(test_a_directory_to_list_is_the_listing_handlers)
{
	site.popts.autoindex = true;
	parse("GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_ask ask = ask_of();
	ask.path = "/dir/";
	ck_assert_int_eq(http_file_answer(&ask, &resp), HTTP_DECLINED);
	ck_assert_int_eq(resp.status, 0); /* a declining handler leaves resp alone */
	ck_assert_int_eq(http_listing_answer(&ask, &resp), HTTP_ANSWERED);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_str_eq(field("Content-Type"), "text/html; charset=utf-8");
	ck_assert_ptr_nonnull(strstr(mem_body(), "<a href=\"./a.txt\">a.txt</a>"));

	route("GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_ptr_nonnull(strstr(mem_body(), "Index of /dir/"));
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_str_eq(file_body(), "hello\n"); /* files are still the static handler's */
}
END_TEST

/* ------------------------------------------------------------ the cache */

START_TEST(test_a_cached_file_lends_its_fields_and_pins_its_bytes)
{
	cache_on(60000);
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_ptr_nonnull(resp.fields.lent); /* prebuilt lines, not copied */
	ck_assert_uint_eq(resp.fields.len, 0);
	ck_assert_str_eq(field("Content-Type"), "text/plain");
	ck_assert_str_eq(field("Accept-Ranges"), "bytes");
	ck_assert_str_eq(mem_body(), "hello\n");
	const char *bytes = resp.body.mem;

	/* A hit: the same entry's bytes, no look-up. */
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_ptr_eq(resp.body.mem, bytes);

	/* The root names another directory: a new generation drops every
	 * entry, but a pinned one lives until its response is done. */
	char *other = h_tmpdir();
	char p[4096];
	h_path_join(p, sizeof p, other, "hello.txt");
	h_write_file(p, "other\n");
	struct http_body_src held = resp.body;
	resp.body = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
	uint64_t gen = http_root_generation();
	http_root_open(other, 1000, now_ms);
	ck_assert_uint_gt(http_root_generation(), gen);
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_str_eq(mem_body(), "other\n");
	ck_assert_int_eq(memcmp(held.mem, "hello\n", 6), 0); /* still valid: pinned */
	http_src_release(&held);
	http_src_release(&resp.body);
	http_cache_done();
	h_rm_rf(other);
	free(other);
}
END_TEST

START_TEST(test_a_big_cached_file_is_sent_from_the_entrys_fd)
{
	cache_on(60000);
	route("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_FILE);
	ck_assert_uint_eq(resp.body.length, BIG_SIZE);
	int fd = resp.body.fd;
	route("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_int_eq(resp.body.fd, fd); /* the entry's fd, not a new open */
	ck_assert_uint_eq(strlen(file_body()), BIG_SIZE);
	http_src_release(&resp.body);
	ck_assert(fd_open(fd)); /* unpinned, not closed: the cache keeps it */
	http_cache_done();
	ck_assert(!fd_open(fd));
}
END_TEST

START_TEST(test_conditional_and_ranged_requests_bypass_the_cache)
{
	cache_on(60000);
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n");
	ck_assert_int_eq(resp.status, 206);
	ck_assert_ptr_null(resp.fields.lent);
	route("GET /hello.txt HTTP/1.1\r\nHost: x\r\nif-none-match: \"x\"\r\n\r\n");
	ck_assert_int_eq(resp.status, 200);
	ck_assert_ptr_null(resp.fields.lent);
	ck_assert_int_eq(resp.body.kind, HTTP_SRC_FILE);
}
END_TEST

/* ------------------------------------------------------------ fields */

START_TEST(test_fields_read_back_as_name_value_pairs)
{
	static const char block[] = "Content-Type: text/plain\r\nETag: \"1-2\"\r\n";
	http_fields_lend(&resp.fields, block, sizeof block - 1);
	http_field(&resp.fields, "Cache-Control", "no-store");
	http_fieldf(&resp.fields, "Content-Range", "bytes %d-%d/%d", 0, 1, 2);
	const char *want[][2] = {
		{ "Content-Type", "text/plain" },
		{ "ETag", "\"1-2\"" },
		{ "Cache-Control", "no-store" },
		{ "Content-Range", "bytes 0-1/2" },
	};
	size_t pos = 0, i = 0;
	struct http_str n, v;
	while (http_fields_next(&resp.fields, &pos, &n, &v)) {
		ck_assert_uint_lt(i, 4);
		ck_assert_int_eq((int)n.len, (int)strlen(want[i][0]));
		ck_assert_int_eq(memcmp(n.p, want[i][0], n.len), 0);
		ck_assert_int_eq((int)v.len, (int)strlen(want[i][1]));
		ck_assert_int_eq(memcmp(v.p, want[i][1], v.len), 0);
		i++;
	}
	ck_assert_uint_eq(i, 4);

	/* A line that does not fit marks the fields, which a serialiser
	 * turns into a 500. */
	char small[16];
	struct http_fields f = { .buf = small, .cap = sizeof small };
	http_field(&f, "Name", "value");
	ck_assert(!f.overflow);
	http_fieldf(&f, "Location", "%s", "/far/too/long");
	ck_assert(f.overflow);
}
END_TEST

static Suite *handlers_suite(void)
{
	Suite *s = suite_create("http_handlers");
	TCase *tc = tcase_create("router");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_health_is_answered_by_its_table_entry);
	tcase_add_test(tc, test_methods_are_answered_before_any_handler);
	tcase_add_test(tc, test_the_path_is_normalised_or_refused);
	tcase_add_test(tc, test_status_only_where_the_listener_serves_it);
	tcase_add_test(tc, test_a_new_endpoint_is_one_table_entry);
	tcase_add_test(tc, test_an_error_page_replaces_a_handlers_500);
	suite_add_tcase(s, tc);
	tc = tcase_create("redirect_https");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_redirect_https_location_forms);
	tcase_add_test(tc, test_redirect_https_answers_health_and_status);
	tcase_add_test(tc, test_redirect_https_without_or_with_a_bad_host);
	tcase_add_test(tc, test_redirect_host_len);
	suite_add_tcase(s, tc);
	tc = tcase_create("static");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_file_is_answered_as_a_range_of_its_fd);
	tcase_add_test(tc, test_head_gets_the_same_answer_as_get);
	tcase_add_test(tc, test_errors_and_redirects_of_the_file_tree);
	tcase_add_test(tc, test_preconditions_and_ranges);
	tcase_add_test(tc, test_several_ranges_are_a_multipart_body);
	tcase_add_test(tc, test_a_directory_to_list_is_the_listing_handlers);
	suite_add_tcase(s, tc);
	tc = tcase_create("cache");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_cached_file_lends_its_fields_and_pins_its_bytes);
	tcase_add_test(tc, test_a_big_cached_file_is_sent_from_the_entrys_fd);
	tcase_add_test(tc, test_conditional_and_ranged_requests_bypass_the_cache);
	suite_add_tcase(s, tc);
	tc = tcase_create("fields");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fields_read_back_as_name_value_pairs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	proto_register(protocols);
	int failed = h_run_suite(handlers_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
