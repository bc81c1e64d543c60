/* test_metrics: the Prometheus endpoint ([listener] metrics = yes, [http]
 * metrics_path), liveness apart from readiness ([http] live_path) and the
 * lame duck before a stop ([server] lame_duck), on the real binary over
 * real sockets:
 *  - exact deltas of the request counters, the histogram's count and the
 *    response bytes over a known set of requests;
 *  - promtool check metrics on the output (skipped without promtool);
 *  - reload counters, the generation and the last reload after a good and
 *    a failed droverctl reload; totals survive the old workers' exit;
 *  - /livez 200 from a draining worker while /healthz says 503;
 *  - after SIGTERM with lame_duck: health 503, other requests and new
 *    connections served, then a second SIGTERM stops at once; and a short
 *    lame duck that ends by itself. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
#define BIG_SIZE ((size_t)32 << 20)

static void site_start(struct h_site *s, unsigned workers, const char *server)
{
	h_site_init(s);
	h_site_file(s, "hello.txt", "hello world\n");
	h_site_start(s, &(struct h_site_opts){ .workers = workers, .server = server, .web = "metrics = yes\n" });
}

/* One request (Connection: close) on a new connection; asserts a response. */
static void req(struct h_site *s, const char *method, const char *path, struct h_response *r)
{
	char raw[512];
	snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", method, path);
	ck_assert_msg(h_http_request(s->port, raw, r), "%s %s: no response", method, path);
}

static int status_of(struct h_site *s, const char *method, const char *path, size_t *body_len)
{
	struct h_response r;
	req(s, method, path, &r);
	int st = r.status;
	if (body_len)
		*body_len = r.body_len;
	h_http_response_free(&r);
	return st;
}

/* GET /metrics: its body (malloc'd), checking status and Content-Type. */
static char *scrape(struct h_site *s, size_t *len)
{
	struct h_response r;
	req(s, "GET", "/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	char ctype[128];
	ck_assert(h_http_header(&r, "Content-Type", ctype, sizeof ctype));
	ck_assert_str_eq(ctype, METRICS_CTYPE);
	if (len)
		*len = r.body_len;
	return r.body;
}

/* The value of series (name with its labels, exactly as drover writes
 * them) in text; -1 if it is not there. */
static double value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static uint64_t count(const char *text, const char *series)
{
	double v = value(text, series);
	ck_assert_msg(v >= 0, "no series %s in:\n%s", series, text);
	return (uint64_t)v;
}

#define REQS(m, c) "drover_http_requests_total{method=\"" m "\",code=\"" c "\"}"
#define HCOUNT "drover_http_request_duration_seconds_count"
#define BYTES "drover_http_response_bytes_total"

/* ------------------------------------------------------------ counting */

START_TEST(request_counters_exact_deltas)
{
	struct h_site s;
	/* One worker: a response is counted before the worker accepts the
	 * next connection, so every count below is exact. */
	site_start(&s, 1, NULL);
	size_t first_len;
	char *before = scrape(&s, &first_len);
	uint64_t bytes = first_len; /* the scrape above is counted, after it was sent */
	size_t len;
	for (int i = 0; i < 7; i++) {
		ck_assert_int_eq(status_of(&s, "GET", "/hello.txt", &len), 200);
		ck_assert_uint_eq(len, 12);
		bytes += len;
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(status_of(&s, "GET", "/nope", &len), 404);
		bytes += len;
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(status_of(&s, "DELETE", "/hello.txt", &len), 405);
		bytes += len;
	}
	ck_assert_int_eq(status_of(&s, "HEAD", "/hello.txt", &len), 200);
	ck_assert_int_eq(status_of(&s, "BREW", "/pot", &len), 501);
	bytes += len;
	char *after = scrape(&s, NULL);

	ck_assert_uint_eq(count(after, REQS("GET", "2xx")) - count(before, REQS("GET", "2xx")), 7 + 1);
	ck_assert_uint_eq(count(after, REQS("GET", "4xx")) - count(before, REQS("GET", "4xx")), 3);
	ck_assert_uint_eq(count(after, REQS("DELETE", "4xx")) - count(before, REQS("DELETE", "4xx")), 2);
	ck_assert_uint_eq(count(after, REQS("HEAD", "2xx")) - count(before, REQS("HEAD", "2xx")), 1);
	ck_assert_uint_eq(count(after, REQS("_other", "5xx")) - count(before, REQS("_other", "5xx")), 1);
	ck_assert_uint_eq(count(after, REQS("POST", "2xx")), 0);
	ck_assert_uint_eq(count(after, HCOUNT) - count(before, HCOUNT), 7 + 3 + 2 + 1 + 1 + 1);
	ck_assert_uint_eq(count(after, "drover_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
			  count(after, HCOUNT));
	ck_assert_uint_eq(count(after, BYTES) - count(before, BYTES), bytes);
	/* The gauges of this one-worker server. */
	ck_assert_uint_eq(count(after, "drover_workers{state=\"ready\"}"), 1);
	ck_assert_uint_eq(count(after, "drover_generation"), 1);
	ck_assert_uint_eq(count(after, "drover_connections_open{state=\"active\"}"), 1); /* this scrape's own */
	ck_assert_uint_eq(count(after, "drover_connections_open{state=\"idle\"}"), 0);
	ck_assert_uint_eq(count(after, "drover_connections_open{state=\"http2\"}"), 0);
	ck_assert_uint_eq(count(after, "drover_connections_accepted_total") -
				  count(before, "drover_connections_accepted_total"),
			  15);
	ck_assert(strstr(after, "drover_build_info{version=\"" PACKAGE_VERSION "\"} 1\n") != NULL);
	free(before);
	free(after);
	h_site_stop(&s);
}
END_TEST

/* Where metrics = yes is not set, the path is nobody's: a 404. */
START_TEST(metrics_only_where_enabled)
{
	struct h_site s;
	h_site_init(&s);
	h_site_start(&s, &(struct h_site_opts){ .workers = 1 });
	ck_assert_int_eq(status_of(&s, "GET", "/metrics", NULL), 404);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ promtool */

START_TEST(promtool_check_metrics)
{
	char out[8192];
	if (h_run("command -v promtool", out, sizeof out) != 0) {
		h_skip_at("promtool", "promtool is not installed (Debian package prometheus)");
		return;
	}
	struct h_site s;
	site_start(&s, 2, NULL);
	ck_assert_int_eq(status_of(&s, "GET", "/hello.txt", NULL), 200);
	ck_assert_int_eq(status_of(&s, "GET", "/nope", NULL), 404);
	size_t len;
	char *text = scrape(&s, &len);
	char path[600];
	h_path_join(path, sizeof path, s.tmp, "metrics.txt");
	h_write_file(path, text);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
	int rc = h_run(cmd, out, sizeof out);
	ck_assert_msg(rc == 0, "promtool check metrics: exit %d:\n%s\non:\n%s", rc, out, text);
	ck_assert_msg(out[0] == '\0', "promtool check metrics says:\n%s", out);
	free(text);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ reloads */

static char *scrape_settled(struct h_site *s, unsigned workers);

/* drover_connections_open by state: a keep-alive connection between
 * requests is idle; while it waits for the rest of a request it is
 * active again. */
START_TEST(connections_open_by_state)
{
	struct h_site s;
	site_start(&s, 1, NULL);
	int fd = h_connect_tcp(s.port);
	static const char get[] = "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
	h_write_all(fd, get, sizeof get - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	char *m = scrape(&s, NULL);
	ck_assert_uint_eq(count(m, "drover_connections_open{state=\"idle\"}"), 1);
	ck_assert_uint_eq(count(m, "drover_connections_open{state=\"active\"}"), 1); /* the scrape */
	free(m);
	/* Half a request: the connection is active. */
	h_write_all(fd, "GET /hello.txt HTTP/1.1\r\n", 25);
	m = scrape(&s, NULL);
	ck_assert_uint_eq(count(m, "drover_connections_open{state=\"idle\"}"), 0);
	ck_assert_uint_eq(count(m, "drover_connections_open{state=\"active\"}"), 2);
	free(m);
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(reload_counters)
{
	struct h_site s;
	site_start(&s, 2, "control_socket = @DIR@/control.sock\n");
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(status_of(&s, "GET", "/hello.txt", NULL), 200);
	char *before = scrape(&s, NULL);
	ck_assert_uint_eq(count(before, "drover_reloads_total{result=\"ok\"}"), 0);
	ck_assert_uint_eq(count(before, "drover_last_reload_timestamp_seconds"), 0);
	char out[4096];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	ck_assert_msg(strncmp(out, "OK", 2) == 0, "reload: %s", out);
	/* The old generation's workers exit: their counts stay in the totals. */
	char *after = scrape_settled(&s, 2);
	ck_assert_uint_eq(count(after, "drover_reloads_total{result=\"ok\"}"), 1);
	ck_assert_uint_eq(count(after, "drover_reloads_total{result=\"failed\"}"), 0);
	ck_assert_uint_eq(count(after, "drover_generation"), 2);
	ck_assert_uint_eq(count(after, "drover_last_reload_success"), 1);
	ck_assert(count(after, "drover_last_reload_timestamp_seconds") > 0);
	ck_assert(count(after, REQS("GET", "2xx")) >= count(before, REQS("GET", "2xx")) + 1);
	ck_assert(count(after, "drover_connections_accepted_total") >=
		  count(before, "drover_connections_accepted_total"));

	/* A reload that fails. */
	size_t n;
	char *cfg = h_slurp(s.d->config_path, &n);
	ck_assert(cfg);
	char *bad = NULL;
	ck_assert(asprintf(&bad, "%s\n[http]\nno_such_key = 1\n", cfg) > 0);
	h_config_replace(s.d, bad);
	int fd = h_ctl_send(s.d, "reload");
	ck_assert(h_read_all(fd, out, sizeof out) > 0);
	close(fd);
	ck_assert_msg(strncmp(out, "ERR", 3) == 0, "reload of a bad config: %s", out);
	char *failed = scrape(&s, NULL);
	ck_assert_uint_eq(count(failed, "drover_reloads_total{result=\"ok\"}"), 1);
	ck_assert_uint_eq(count(failed, "drover_reloads_total{result=\"failed\"}"), 1);
	ck_assert_uint_eq(count(failed, "drover_last_reload_success"), 0);
	ck_assert_uint_eq(count(failed, "drover_generation"), 2);
	free(cfg);
	free(bad);
	free(before);
	free(after);
	free(failed);
	h_site_stop(&s);
}
END_TEST

/* Scrape until only the current generation's workers are left. */
static char *scrape_settled(struct h_site *s, unsigned workers)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		char *m = scrape(s, NULL);
		if (count(m, "drover_workers{state=\"draining\"}") == 0 &&
		    count(m, "drover_workers{state=\"starting\"}") == 0 &&
		    count(m, "drover_workers{state=\"ready\"}") == workers)
			return m;
		ck_assert_msg(h_left_ms(deadline) > 0, "old workers still there:\n%s", m);
		free(m);
		h_pause_ms(20);
	}
}

/* A binary upgrade hands the counters to the new image (the metrics
 * memfd rides beside the scoreboard's): nothing counted before is lost,
 * and the upgrade itself is counted. */
START_TEST(upgrade_keeps_counters)
{
	struct h_site s;
	site_start(&s, 2, "control_socket = @DIR@/control.sock\n");
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(status_of(&s, "GET", "/hello.txt", NULL), 200);
	char *before = scrape(&s, NULL);
	ck_assert_uint_eq(count(before, "drover_upgrades_total{result=\"ok\"}"), 0);
	char out[4096];
	h_ctl_ok(s.d, "upgrade", out, sizeof out);
	ck_assert_msg(strncmp(out, "OK", 2) == 0, "upgrade: %s", out);
	char *after = scrape_settled(&s, 2);
	ck_assert_uint_eq(count(after, "drover_upgrades_total{result=\"ok\"}"), 1);
	ck_assert_uint_eq(count(after, "drover_upgrades_total{result=\"failed\"}"), 0);
	ck_assert_uint_eq(count(after, "drover_reloads_total{result=\"ok\"}"), 0);
	ck_assert_uint_eq(count(after, "drover_generation"), 2);
	ck_assert_uint_eq(count(after, "drover_last_reload_success"), 1);
	/* The six, the scrape before, and those while waiting: none lost. */
	uint64_t was = count(before, REQS("GET", "2xx")), is = count(after, REQS("GET", "2xx"));
	ck_assert_msg(is >= was + 1, "GET 2xx counts lost in the upgrade: %" PRIu64 " before, %" PRIu64 " after",
		      was, is);
	free(before);
	free(after);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ liveness */

static void www_big(struct h_site *s, const char *rel, size_t size)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	ck_assert(ftruncate(fd, (off_t)size) == 0);
	close(fd);
}

/* A live check and a health check pipelined behind a download still in
 * flight when the stop's drain begins are answered by the draining
 * worker: live 200, health 503. */
START_TEST(live_200_health_503_while_draining)
{
	struct h_site s;
	site_start(&s, 1, NULL);
	www_big(&s, "big.bin", BIG_SIZE);
	ck_assert_int_eq(status_of(&s, "GET", "/livez", NULL), 200);
	ck_assert_int_eq(status_of(&s, "GET", "/healthz", NULL), 200);
	int fd = h_connect_tcp_rcvbuf(s.port, 4096);
	ck_assert(fd >= 0);
	const char *raw = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /livez HTTP/1.1\r\nHost: t\r\n\r\n"
			  "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	h_write_all(fd, raw, strlen(raw));
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert(poll(&p, 1, H_WAIT_MS) == 1);
	h_drover_kill(s.d, SIGTERM);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, BIG_SIZE);
	h_http_response_free(&r);
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok\n");
	h_http_response_free(&r);
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 503);
	h_http_response_free(&r);
	close(fd);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ lame duck */

/* lame_duck long enough never to end by itself here: after SIGTERM the
 * health check turns 503 while requests, new connections included, are
 * served; a second SIGTERM cuts it short and the stop proceeds. */
START_TEST(lame_duck_serves_then_second_sigterm_stops)
{
	struct h_site s;
	site_start(&s, 2, "lame_duck = 1h\n");
	ck_assert_int_eq(status_of(&s, "GET", "/healthz", NULL), 200);
	char *m = scrape(&s, NULL);
	ck_assert_uint_eq(count(m, "drover_lame_duck"), 0);
	free(m);
	h_drover_kill(s.d, SIGTERM);
	ck_assert(h_notify_wait(s.d, "STOPPING=1", NULL));
	ck_assert(h_notify_wait(s.d, "lame duck", NULL));
	/* Wait for the event (the flag reaches the workers): health 503. */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (status_of(&s, "GET", "/healthz", NULL) != 503) {
		ck_assert_msg(h_left_ms(deadline) > 0, "health never said 503 in the lame duck");
		h_pause_ms(10);
	}
	/* Everything else is served, on new connections. */
	for (int i = 0; i < 5; i++) {
		struct h_response r;
		req(&s, "GET", "/hello.txt", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "hello world\n");
		h_http_response_free(&r);
		ck_assert_int_eq(status_of(&s, "GET", "/healthz", NULL), 503);
		ck_assert_int_eq(status_of(&s, "GET", "/livez", NULL), 200);
	}
	m = scrape(&s, NULL);
	ck_assert_uint_eq(count(m, "drover_lame_duck"), 1);
	ck_assert_uint_eq(count(m, "drover_workers{state=\"ready\"}"), 2);
	free(m);
	ck_assert(kill(s.d->pid, 0) == 0); /* still running */
	h_drover_kill(s.d, SIGTERM);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	ck_assert(!h_log_contains(s.d, "lame duck over"));
	ck_assert(h_log_contains(s.d, "graceful stop"));
	h_site_stop(&s);
}
END_TEST

/* A short lame duck ends by itself and the stop follows. */
START_TEST(lame_duck_ends_by_itself)
{
	struct h_site s;
	site_start(&s, 1, "lame_duck = 200ms\n");
	h_drover_kill(s.d, SIGTERM);
	ck_assert(h_notify_wait(s.d, "lame duck", NULL));
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	ck_assert(h_log_contains(s.d, "lame duck over"));
	ck_assert(h_log_contains(s.d, "graceful stop"));
	h_site_stop(&s);
}
END_TEST

/* Without lame_duck (the default), SIGTERM stops accepting at once, as
 * before: no lame duck at all. */
START_TEST(no_lame_duck_by_default)
{
	struct h_site s;
	site_start(&s, 1, NULL);
	h_drover_kill(s.d, SIGTERM);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	ck_assert(!h_log_contains(s.d, "lame duck"));
	h_site_stop(&s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("metrics");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
		{ "counters", request_counters_exact_deltas },
		{ "connections", connections_open_by_state },
		{ "only_where_enabled", metrics_only_where_enabled },
		{ "promtool", promtool_check_metrics },
		{ "reload", reload_counters },
		{ "upgrade", upgrade_keeps_counters },
		{ "live_draining", live_200_health_503_while_draining },
		{ "lame_duck", lame_duck_serves_then_second_sigterm_stops },
		{ "lame_duck_ends", lame_duck_ends_by_itself },
		{ "no_lame_duck", no_lame_duck_by_default },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(su, tc);
	}
	int failed = h_run_suite(su);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
