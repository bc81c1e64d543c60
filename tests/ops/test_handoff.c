/* test_handoff: live hand-off of keep-alive connections (issue 20), against
 * the real binary on loopback.
 *
 * When a worker drains because its successor is ready (a reload, a binary
 * upgrade, max_requests recycling), each plain HTTP/1.1 and echo
 * connection goes to the successor at a request boundary, with the bytes
 * read but not parsed yet and its session, and the client sees nothing:
 * the load clients below count the TCP connections they open, and check
 * every byte. What cannot be handed over (no room in the new generation, a
 * format the successor does not read, handoff = no) is closed as before
 * hand-off existed: cleanly, never by a reset.
 *
 * Nothing here asserts speed. Waits are bounded only to turn a hang into a
 * failure; where no event exists (droverctl status, the status JSON, the
 * process table) the condition is polled at a short interval under the
 * same bound. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"

#define SLICE_MS 10
#define WAIT_MS H_WAIT_MS

/* ------------------------------------------------------------------ the site */

static struct h_load_file site_files[] = {
	{ .name = "empty.txt", .size = 0, .weight = 10 },
	{ .name = "tiny.txt", .size = 17, .weight = 40 },
	{ .name = "page.txt", .size = 4099, .weight = 25 },
	{ .name = "medium.txt", .size = 65537, .weight = 20 },
	{ .name = "large.txt", .size = 300007, .weight = 5 },
};
#define N_SITE_FILES (sizeof site_files / sizeof site_files[0])

static char *site_create(void) { return h_load_site(site_files, N_SITE_FILES); }

/* ------------------------------------------------------------------ the server */

struct srv {
	struct h_drover *d;
	char *site;
	int port;
	char admin[600]; /* unix listener "admin", status = yes */
};

/* The config: [server] extra lines, [http] extra lines; an HTTP listener
 * "web" (socket-activated) and the admin listener; and, with echo, a
 * listener "e" on echo_port with [echo] buffer_size = 1024. */
static char cfg_extra[2048]; /* more sections (a test's own listeners) */

static char *config_text(const struct srv *s, unsigned workers, const char *server, const char *http, int echo_port)
{
	char *t;
	char echo[2560] = "";
	if (echo_port)
		snprintf(echo, sizeof echo,
			 "[listener e]\naddress = 127.0.0.1:%d\nprotocol = echo\n[echo]\nbuffer_size = 1024\n", echo_port);
	strncat(echo, cfg_extra, sizeof echo - strlen(echo) - 1);
	int n = asprintf(&t,
			 "[server]\nworkers = %u\ncontrol_socket = @DIR@/control.sock\nshutdown_timeout = 10s\n"
			 "max_generations = 64\n%s"
			 "[listener web]\nprotocol = http\n"
			 "[listener admin]\nprotocol = http\nstatus = yes\n%s"
			 "[http]\nroot = %s\nkeepalive_timeout = 60s\naccess_log = off\n%s",
			 workers, server, echo, s->site, http);
	ck_assert(n > 0);
	return t;
}

static void srv_start(struct srv *s, unsigned workers, const char *server, const char *http, int echo_port,
		      const char *const *env)
{
	memset(s, 0, sizeof *s);
	s->site = site_create();
	snprintf(s->admin, sizeof s->admin, "%s/admin.sock", s->site);
	struct h_activation act[2] = { { "web", h_listen_tcp(&s->port) }, { "admin", h_listen_unix(s->admin) } };
	struct h_opts o = { .notify = true, .fds = act, .n_fds = 2, .extra_env = env };
	char *text = config_text(s, workers, server, http, echo_port);
	s->d = h_drover_start(text, &o);
	free(text);
	ck_assert_msg(h_wait_workers(s->d, workers), "not %u workers; log:\n%s", workers, h_log_end(s->d));
}

/* Rewrite the config (what a reload then reads). */
static void srv_config(struct srv *s, unsigned workers, const char *server, const char *http, int echo_port)
{
	char *text = config_text(s, workers, server, http, echo_port);
	char *x = NULL;
	size_t cap = strlen(text) + 16 * strlen(s->d->dir) + 1, o = 0;
	x = malloc(cap);
	ck_assert(x != NULL);
	for (const char *p = text; *p;) {
		if (strncmp(p, "@DIR@", 5) == 0) {
			o += (size_t)snprintf(x + o, cap - o, "%s", s->d->dir);
			p += 5;
		} else {
			x[o++] = *p++;
		}
	}
	x[o] = '\0';
	h_config_replace(s->d, x);
	free(x);
	free(text);
}

static void srv_stop(struct srv *s)
{
	h_drover_free(s->d);
	h_rm_rf(s->site);
	free(s->site);
}

/* ------------------------------------------------------------------ status */

/* droverctl status; the current generation. */
static unsigned status_text(struct srv *s, char *out, size_t cap)
{
	h_ctl_ok(s->d, "status", out, cap);
	unsigned g = 0;
	long pid;
	ck_assert_msg(sscanf(out, "supervisor pid %ld, generation %u", &pid, &g) == 2, "status: %s", out);
	return g;
}

/* "generation G handed-off X adopted Y" of droverctl status. */
static void status_handoff(const char *text, unsigned gen, unsigned long *out, unsigned long *in)
{
	char key[64];
	snprintf(key, sizeof key, "\ngeneration %u handed-off ", gen);
	const char *p = strstr(text, key);
	*out = *in = 0;
	if (p)
		ck_assert(sscanf(p + strlen(key), "%lu adopted %lu", out, in) == 2);
}

/* Wait until only the current generation's workers are alive, workers
 * of them; the generation, and droverctl status in out. */
static unsigned wait_only_current(struct srv *s, unsigned workers, char *out, size_t cap)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		unsigned g = status_text(s, out, cap);
		char key[64];
		snprintf(key, sizeof key, " generation %u #", g);
		size_t all = 0, cur = 0;
		for (const char *p = out; (p = strstr(p, "\nworker pid ")); p++) {
			all++;
			const char *eol = strchr(p + 1, '\n');
			const char *k = strstr(p, key);
			cur += k && (!eol || k < eol);
		}
		pid_t pids[64];
		if (all == workers && cur == workers && h_worker_pids(s->d, pids, 64) == workers)
			return g;
		ck_assert_msg(h_left_ms(deadline) > 0, "older workers still alive:\n%s\nlog:\n%s", out,
			      h_log_end(s->d));
		h_pause_ms(SLICE_MS);
	}
}

/* Open connections over every worker, as droverctl status reports them. */
static unsigned long status_connections(const char *text)
{
	unsigned long n = 0;
	for (const char *p = text; (p = strstr(p, " connections ")); p++)
		n += strtoul(p + 13, NULL, 10);
	return n;
}

/* The status JSON's "bytes_in" of worker pid (served on the admin socket). */
static unsigned long long json_bytes_in(struct srv *s, pid_t pid)
{
	int fd = h_connect_unix(s->admin);
	ck_assert(fd >= 0);
	static const char get[] = "GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	h_write_all(fd, get, sizeof get - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	close(fd);
	char key[64];
	snprintf(key, sizeof key, "{\"pid\":%ld,", (long)pid);
	const char *p = strstr(r.body, key);
	ck_assert_msg(p != NULL, "no worker %ld in %s", (long)pid, r.body);
	p = strstr(p, "\"bytes_in\":");
	ck_assert(p != NULL);
	unsigned long long v = strtoull(p + 11, NULL, 10);
	h_http_response_free(&r);
	return v;
}
#define JSON_GET_LEN (sizeof("GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") - 1)

/* ------------------------------------------------------------------ load */

static struct h_load *load_start(int port, unsigned conns, bool pipeline)
{
	struct h_load_file files[N_SITE_FILES];
	for (size_t f = 0; f < N_SITE_FILES; f++)
		files[f] = site_files[f];
	/* One try: a request re-sent would be a failure to hand over. */
	struct h_load_opts o = { .port = port, .mode = H_LOAD_HTTP, .conns = conns, .attempts = 1,
				 .pipeline = pipeline, .files = files, .n_files = N_SITE_FILES,
				 .agent = pipeline ? "handoff-pipelining" : "handoff-keepalive" };
	return h_load_start(&o);
}

/* Not a request failed or re-sent, not a reset, and no client opened a
 * second connection. */
static void assert_untouched(const struct h_load_stats *st, unsigned conns, struct srv *s, const char *what)
{
	ck_assert_msg(h_load_failed(st) == 0 && st->retried == 0 && st->resets == 0 && st->connect_errors == 0,
		      "%s: failed=%" PRIu64 " retried=%" PRIu64 " resets=%" PRIu64 " connect_errors=%" PRIu64
		      "; first problem: %s\nlog:\n%s",
		      what, h_load_failed(st), st->retried, st->resets, st->connect_errors, st->first_problem,
		      h_log_end(s->d));
	ck_assert_msg(st->connects == conns, "%s: %" PRIu64 " connections opened by %u clients\nlog:\n%s", what,
		      st->connects, conns, h_log_end(s->d));
	ck_assert_msg(st->server_closes == 0 && st->idle_closes == 0, "%s: %" PRIu64 " closes", what,
		      st->server_closes + st->idle_closes);
	ck_assert(!st->self_stopped && st->ok > 0);
}

/* The server for the load tests: no keepalive_requests limit in reach. */
static void load_srv_start(struct srv *s, const char *server)
{
	srv_start(s, 2, server, "keepalive_requests = 4000000000\n", 0, NULL);
}

/* ------------------------------------------------------------------ tests */

START_TEST(twenty_reloads_and_three_upgrades_hand_over_every_connection)
{
	struct srv s;
	load_srv_start(&s, "");
	struct h_load *ka = load_start(s.port, 16, false);
	struct h_load *pl = load_start(s.port, 4, true);
	h_load_wait_ok(ka, 500, s.d);
	h_load_wait_ok(pl, 200, s.d);
	char out[16384];
	for (int i = 0; i < 20; i++) {
		h_ctl_ok(s.d, "reload", out, sizeof out);
		h_load_wait_ok(ka, 100, s.d);
		h_load_wait_ok(pl, 50, s.d);
	}
	for (int i = 0; i < 3; i++) {
		h_ctl_ok(s.d, "upgrade", out, sizeof out);
		h_load_wait_ok(ka, 100, s.d);
		h_load_wait_ok(pl, 50, s.d);
	}
	/* Only the newest generation is left, and it holds the load's 20
	 * connections: the ones the clients opened at the start. */
	unsigned g = wait_only_current(&s, 2, out, sizeof out);
	ck_assert_msg(status_connections(out) == 20, "not the load's 20 connections:\n%s", out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted > 0, "generation %u adopted nothing:\n%s", g, out);
	h_load_wait_ok(ka, 200, s.d);
	h_load_wait_ok(pl, 100, s.d);
	struct h_load_stats st_ka = h_load_stop(ka, "keep-alive, 20 reloads + 3 upgrades");
	struct h_load_stats st_pl = h_load_stop(pl, "pipelining, 20 reloads + 3 upgrades");
	assert_untouched(&st_ka, 16, &s, "keep-alive");
	assert_untouched(&st_pl, 4, &s, "pipelining");
	srv_stop(&s);
}
END_TEST

START_TEST(max_requests_recycling_hands_over_every_connection)
{
	struct srv s;
	load_srv_start(&s, "max_requests = 2000\n");
	struct h_load *ka = load_start(s.port, 16, false);
	struct h_load *pl = load_start(s.port, 4, true);
	ck_assert_msg(h_log_wait(s.d, "reached max_requests; starting its replacement"), "log:\n%s", h_log_end(s.d));
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (h_log_count(s.d, "reached max_requests; starting its replacement") < 8) {
		ck_assert_msg(h_left_ms(deadline) > 0, "fewer than 8 recycles; log:\n%s", h_log_end(s.d));
		h_load_wait_ok(ka, 100, s.d);
	}
	h_load_wait_ok(pl, 100, s.d);
	struct h_load_stats st_ka = h_load_stop(ka, "keep-alive, recycling");
	struct h_load_stats st_pl = h_load_stop(pl, "pipelining, recycling");
	char out[16384];
	unsigned g = status_text(&s, out, sizeof out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	printf("recycling: %zu recycle(s), %lu connection(s) handed over\n",
	       h_log_count(s.d, "reached max_requests; starting"), handed);
	ck_assert_msg(handed > 0 && adopted > 0, "nothing handed over:\n%s", out);
	assert_untouched(&st_ka, 16, &s, "keep-alive");
	assert_untouched(&st_pl, 4, &s, "pipelining");
	srv_stop(&s);
}
END_TEST

/* Read one response on fd: status 200 with the body of file f, and
 * whether it says Connection: close. */
static bool get_ok(int fd, size_t f)
{
	char req[128];
	snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", site_files[f].name);
	h_write_all(fd, req, strlen(req));
	struct h_response r;
	ck_assert_msg(h_http_read_response(fd, &r, false), "no response");
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, site_files[f].size);
	ck_assert(memcmp(r.body, site_files[f].data, r.body_len) == 0);
	char conn[64] = "";
	h_http_header(&r, "Connection", conn, sizeof conn);
	h_http_response_free(&r);
	return strcasecmp(conn, "close") == 0;
}

START_TEST(a_request_split_across_the_hand_off_is_answered_by_the_new_worker)
{
	struct srv s;
	srv_start(&s, 1, "", "", 0, NULL);
	pid_t old;
	ck_assert_uint_eq(h_worker_pids(s.d, &old, 1), 1);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	ck_assert(!get_ok(fd, 1));
	/* The first half, read by the old worker before its drain: its
	 * bytes_in counts it (each status request counts its own bytes). */
	static const char half1[] = "GET /page.txt HTT";
	static const char half2[] = "P/1.1\r\nHost: x\r\n\r\n";
	unsigned long long b0 = json_bytes_in(&s, old);
	h_write_all(fd, half1, sizeof half1 - 1);
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (unsigned k = 1;; k++) {
		unsigned long long b = json_bytes_in(&s, old);
		if (b >= b0 + k * JSON_GET_LEN + sizeof half1 - 1)
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "the worker never read the first half");
		h_pause_ms(SLICE_MS);
	}
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	unsigned g = wait_only_current(&s, 1, out, sizeof out);
	/* The old worker is gone: the second half goes to the new one, which
	 * has the first from the hand-off. */
	h_write_all(fd, half2, sizeof half2 - 1);
	struct h_response r;
	ck_assert_msg(h_http_read_response(fd, &r, false), "no response; log:\n%s", h_log_end(s.d));
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, site_files[2].size);
	ck_assert(memcmp(r.body, site_files[2].data, r.body_len) == 0);
	h_http_response_free(&r);
	ck_assert(!get_ok(fd, 1));
	status_text(&s, out, sizeof out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted == 1, "generation %u adopted %lu:\n%s", g, adopted, out);
	close(fd);
	srv_stop(&s);
}
END_TEST

START_TEST(keepalive_requests_counts_the_requests_before_the_hand_off)
{
	struct srv s;
	srv_start(&s, 1, "", "keepalive_requests = 1000\n", 0, NULL);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	for (int i = 1; i <= 500; i++)
		ck_assert_msg(!get_ok(fd, 1), "request %d said close", i);
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	wait_only_current(&s, 1, out, sizeof out);
	for (int i = 501; i < 1000; i++)
		ck_assert_msg(!get_ok(fd, 1), "request %d said close", i);
	ck_assert_msg(get_ok(fd, 1), "the 1000th request did not say close");
	char rest[16];
	ck_assert_int_eq(h_read_all(fd, rest, sizeof rest), 0);
	close(fd);
	srv_stop(&s);
}
END_TEST

/* Whether the peer has closed fd (EOF waiting), without blocking; a reset
 * fails the test. */
static bool peer_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 0) == 0)
		return false;
	char b;
	ssize_t r = recv(fd, &b, 1, MSG_DONTWAIT);
	ck_assert_msg(r == 0, "not a clean close: %zd (%s)", r, r < 0 ? strerror(errno) : "data");
	return true;
}

START_TEST(a_new_generation_at_its_connection_limit_closes_the_excess_cleanly)
{
	struct srv s;
	srv_start(&s, 1, "max_connections = 64\nlingering_timeout = 300ms\n", "", 0, NULL);
	enum { N = 10, LIMIT = 4 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert(fds[i] >= 0);
		ck_assert(!get_ok(fds[i], 1));
	}
	char server[128];
	snprintf(server, sizeof server, "max_connections = %d\nlingering_timeout = 300ms\n", LIMIT);
	srv_config(&s, 1, server, "", 0);
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	/* The old worker drains what the new one refused as before (a grace
	 * for one more request, then a lingering close) and exits. */
	unsigned g = wait_only_current(&s, 1, out, sizeof out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted == LIMIT, "adopted %lu:\n%s", adopted, out);
	size_t closed = 0, open = 0;
	for (int i = 0; i < N; i++) {
		if (peer_closed(fds[i])) {
			closed++;
		} else {
			open++;
			ck_assert(!get_ok(fds[i], 1)); /* the new worker serves it */
		}
		close(fds[i]);
	}
	ck_assert_uint_eq(open, adopted);
	ck_assert_uint_eq(closed, N - adopted);
	srv_stop(&s);
}
END_TEST

START_TEST(an_echo_session_survives_a_reload_with_its_pending_bytes)
{
	struct srv s;
	int eport = h_free_port();
	srv_start(&s, 1, "", "", eport, NULL);
	pid_t old;
	ck_assert_uint_eq(h_worker_pids(s.d, &old, 1), 1);
	int fd = h_connect_tcp_rcvbuf(eport, 8192);
	ck_assert(fd >= 0);
	int small = 8192;
	ck_assert(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
	/* Send without reading until nothing more is taken: the worker's
	 * 1024-byte buffer is full of bytes it cannot send back. */
	enum { CHUNK = 4096 };
	const size_t cap = (size_t)64 << 20;
	unsigned char *pat = malloc(cap), *got = malloc(cap);
	ck_assert(pat && got);
	for (size_t i = 0; i < cap; i++)
		pat[i] = (unsigned char)(i * 7 + i / 251);
	size_t sent = 0;
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		ssize_t w = send(fd, pat + sent, CHUNK, MSG_DONTWAIT);
		if (w > 0) {
			sent += (size_t)w;
			ck_assert(sent + CHUNK <= cap);
			continue;
		}
		ck_assert(errno == EAGAIN);
		/* Full: but a moment ago the worker may still have been reading. */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 50) == 0)
			break;
		ck_assert(h_left_ms(deadline) > 0);
	}
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	unsigned g = wait_only_current(&s, 1, out, sizeof out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted == 1, "adopted %lu:\n%s", adopted, out);
	/* Every byte comes back, in order, through the new worker. */
	ck_assert_msg(h_read_exact(fd, got, sent), "echo cut short; log:\n%s", h_log_end(s.d));
	ck_assert(memcmp(got, pat, sent) == 0);
	h_write_all(fd, "more", 4);
	ck_assert(h_read_exact(fd, got, 4) && memcmp(got, "more", 4) == 0);
	printf("echo: %zu byte(s) in flight across the reload\n", sent);
	free(pat);
	free(got);
	close(fd);
	srv_stop(&s);
}
END_TEST

START_TEST(with_handoff_no_a_reload_drains_as_before)
{
	struct srv s;
	srv_start(&s, 1, "handoff = no\nlingering_timeout = 300ms\n", "", 0, NULL);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	ck_assert(!get_ok(fd, 1));
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	unsigned g = wait_only_current(&s, 1, out, sizeof out);
	ck_assert(peer_closed(fd));
	unsigned long handed, adopted;
	status_handoff(out, g - 1, &handed, &adopted);
	ck_assert_msg(handed == 0 && adopted == 0 && !h_log_contains(s.d, "handing connections over"), "%s", out);
	close(fd);
	srv_stop(&s);
}
END_TEST

/* A rollback: the successor reads an older format than the one sent (a
 * test hook makes every worker write a version above its own). It refuses,
 * and the sender closes those connections as before: never a failure. */
START_TEST(a_successor_that_cannot_read_the_format_refuses_and_nothing_fails)
{
	struct srv s;
	static const char *const env[] = { "DROVER_TEST_HANDOFF_VERSION=2", NULL };
	srv_start(&s, 2, "lingering_timeout = 300ms\n", "keepalive_requests = 4000000000\n", 0, env);
	struct h_load_file files[N_SITE_FILES];
	for (size_t f = 0; f < N_SITE_FILES; f++)
		files[f] = site_files[f];
	struct h_load_opts o = { .port = s.port, .mode = H_LOAD_HTTP, .conns = 8, .pipeline = true, .files = files,
				 .n_files = N_SITE_FILES, .agent = "handoff-refused" };
	struct h_load *l = h_load_start(&o);
	h_load_wait_ok(l, 300, s.d);
	char out[16384];
	for (int i = 0; i < 3; i++) {
		h_ctl_ok(s.d, "reload", out, sizeof out);
		h_load_wait_ok(l, 100, s.d);
	}
	unsigned g = wait_only_current(&s, 2, out, sizeof out);
	h_load_wait_ok(l, 100, s.d);
	struct h_load_stats st = h_load_stop(l, "newer format refused");
	ck_assert_msg(h_load_failed(&st) == 0 && st.connect_errors == 0, "failed=%" PRIu64 ": %s\nlog:\n%s",
		      h_load_failed(&st), st.first_problem, h_log_end(s.d));
	ck_assert_msg(h_log_contains(s.d, "a newer hand-off format"), "log:\n%s", h_log_end(s.d));
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted == 0, "adopted %lu:\n%s", adopted, out);
	srv_stop(&s);
}
END_TEST

/* The one worker alive that is not in old[] (0: none yet, or several). */
static pid_t new_worker(struct srv *s, const pid_t *old, size_t n_old, size_t want_alive)
{
	pid_t now[16];
	size_t k = h_worker_pids(s->d, now, 16);
	if (k != want_alive)
		return 0;
	pid_t found = 0;
	for (size_t i = 0; i < k; i++) {
		bool known = false;
		for (size_t j = 0; j < n_old; j++)
			known |= now[i] == old[j];
		if (!known) {
			if (found)
				return 0;
			found = now[i];
		}
	}
	return found;
}

static pid_t wait_new_worker(struct srv *s, const pid_t *old, size_t n_old, size_t want_alive)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		pid_t p = new_worker(s, old, n_old, want_alive);
		if (p)
			return p;
		ck_assert_msg(h_left_ms(deadline) > 0, "workers never settled; log:\n%s", h_log_end(s->d));
		h_pause_ms(SLICE_MS);
	}
}

/* A download the client does not read keeps its connection in the first
 * generation, mid-response, across two reloads. The second generation,
 * which adopted the idle connection, drains in its turn and exits at once
 * (the first is pointed past it, to the third); the download finishes on
 * the first generation, and at its boundary the connection goes to the
 * third, which answers its next request. */
static void response_in_progress(const char *second)
{
	struct srv s;
	srv_start(&s, 1, "", "", 0, NULL);
	char big[PATH_MAX];
	snprintf(big, sizeof big, "%s/big.bin", s.site);
	FILE *f = fopen(big, "w");
	ck_assert(f && ftruncate(fileno(f), 16 << 20) == 0);
	fclose(f);
	pid_t w1;
	ck_assert_uint_eq(h_worker_pids(s.d, &w1, 1), 1);
	int idle = h_connect_tcp(s.port);
	ck_assert(idle >= 0 && !get_ok(idle, 1));
	int dl = h_connect_tcp_rcvbuf(s.port, 4096);
	ck_assert(dl >= 0);
	static const char get_big[] = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
	h_write_all(dl, get_big, sizeof get_big - 1);
	char head[12];
	ck_assert(h_read_exact(dl, head, sizeof head) && memcmp(head, "HTTP/1.1 200", 12) == 0);
	char out[16384];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	pid_t w2 = wait_new_worker(&s, &w1, 1, 2);
	ck_assert(!get_ok(idle, 1));
	h_ctl_ok(s.d, second, out, sizeof out);
	pid_t known[2] = { w1, w2 };
	/* w2 goes; w1 stays, still sending the download. */
	pid_t w3 = wait_new_worker(&s, known, 2, 2);
	ck_assert_msg(kill(w2, 0) != 0 || h_proc_state(w2) == 'Z', "generation 2 is still alive");
	ck_assert_msg(kill(w1, 0) == 0, "generation 1 is gone before its download ended");
	ck_assert(!get_ok(idle, 1));
	/* The download, to its last byte; then the connection is w3's. */
	char *buf = malloc(1 << 20);
	ck_assert(buf);
	uint64_t left = (16u << 20), got = 0;
	/* Skip the head: up to the blank line. */
	char c4[4] = { 0 };
	while (memcmp(c4, "\r\n\r\n", 4) != 0) {
		memmove(c4, c4 + 1, 3);
		ck_assert(h_read_exact(dl, &c4[3], 1));
	}
	while (got < left) {
		size_t want = left - got > (1 << 20) ? (1 << 20) : (size_t)(left - got);
		ssize_t n = read(dl, buf, want);
		ck_assert_msg(n > 0, "download cut at %" PRIu64 "; log:\n%s", got, h_log_end(s.d));
		got += (uint64_t)n;
	}
	free(buf);
	ck_assert(!get_ok(dl, 2));
	pid_t only;
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (h_worker_pids(s.d, &only, 1) != 1 || only != w3) {
		ck_assert_msg(h_left_ms(deadline) > 0, "generation 1 never left; log:\n%s", h_log_end(s.d));
		h_pause_ms(SLICE_MS);
	}
	ck_assert(!get_ok(dl, 1));
	ck_assert(!get_ok(idle, 1));
	close(dl);
	close(idle);
	srv_stop(&s);
}

START_TEST(a_response_in_progress_finishes_first_and_is_handed_over_at_its_boundary)
{
	response_in_progress("reload");
}
END_TEST

/* The same across a binary upgrade: who hands over to whom crosses the
 * execve, so the first generation is pointed past the second all the same. */
START_TEST(a_binary_upgrade_points_an_older_draining_worker_past_the_one_it_drains)
{
	response_in_progress("upgrade");
}
END_TEST

/* The client of the TLS test: 4 keep-alive connections over TLS and 4
 * plain, each answered once; "ready" in DIR/ready; then, at a line on
 * stdin, one more request on each, re-sent on a new connection if the
 * server closed the old one cleanly. Its counts go to DIR/result. */
static const char tls_client_py[] =
	"import json, os, socket, ssl, sys\n"
	"d, plain, tls, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]\n"
	"ctx = ssl.create_default_context(cafile=ca)\n"
	"def conn(kind):\n"
	"    s = socket.create_connection(('127.0.0.1', tls if kind == 'tls' else plain), timeout=20)\n"
	"    return ctx.wrap_socket(s, server_hostname='localhost') if kind == 'tls' else s\n"
	"def get(s):\n"
	"    try:\n"
	"        s.sendall(b'GET /tiny.txt HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')\n"
	"    except OSError:\n"
	"        return None\n"
	"    got = b''\n"
	"    while b'\\r\\n\\r\\n' not in got or len(got.split(b'\\r\\n\\r\\n', 1)[1]) < 17:\n"
	"        try:\n"
	"            c = s.recv(4096)\n"
	"        except (ssl.SSLError, OSError):\n"
	"            if got: raise\n"
	"            return None\n"
	"        if not c:\n"
	"            if got: raise Exception('cut short')\n"
	"            return None\n"
	"        got += c\n"
	"    assert got.startswith(b'HTTP/1.1 200'), got[:40]\n"
	"    return got\n"
	"cs = [('tls', conn('tls')) for i in range(4)] + [('plain', conn('plain')) for i in range(4)]\n"
	"for k, c in cs: assert get(c)\n"
	"open(d + '/ready', 'w').close()\n"
	"sys.stdin.readline()\n"
	"r = {'tls_reconnects': 0, 'plain_reconnects': 0, 'failed': 0}\n"
	"for k, c in cs:\n"
	"    try:\n"
	"        if get(c) is None:\n"
	"            r[k + '_reconnects'] += 1\n"
	"            if get(conn(k)) is None: r['failed'] += 1\n"
	"    except Exception:\n"
	"        r['failed'] += 1\n"
	"open(d + '/result', 'w').write(json.dumps(r, sort_keys=True))\n";

/* TLS connections cannot move (an OpenSSL session stays in its process):
 * they drain as before, cleanly, while the plain ones beside them are
 * handed over. */
START_TEST(tls_connections_drain_as_before_while_plain_ones_are_handed_over)
{
	struct srv s;
	char *tmp = h_tmpdir();
	char cmd[4096], out[16384];
	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
		 "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '%s/key.pem' -out '%s/cert.pem' 2>&1",
		 tmp, tmp);
	if (h_run(cmd, out, sizeof out) != 0) {
		h_skip("no openssl to make a certificate: %s", out);
		h_rm_rf(tmp);
		free(tmp);
		return;
	}
	int tport = h_free_port();
	snprintf(cfg_extra, sizeof cfg_extra,
		 "[listener tls]\naddress = 127.0.0.1:%d\nprotocol = http\ntls = yes\n"
		 "[certificate main]\ncertificate = %s/cert.pem\nprivate_key = %s/key.pem\n",
		 tport, tmp, tmp);
	srv_start(&s, 1, "lingering_timeout = 300ms\n", "", 0, NULL);
	char script[600];
	snprintf(script, sizeof script, "%s/client.py", tmp);
	h_write_file(script, tls_client_py);
	snprintf(cmd, sizeof cmd, "python3 '%s' '%s' %d %d '%s/cert.pem' >'%s/client.log' 2>&1", script, tmp, s.port,
		 tport, tmp, tmp);
	FILE *client = popen(cmd, "w");
	ck_assert(client != NULL);
	char ready[600];
	snprintf(ready, sizeof ready, "%s/ready", tmp);
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (access(ready, F_OK) != 0) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the client never got ready; log:\n%s", h_log_end(s.d));
		h_pause_ms(SLICE_MS);
	}
	h_ctl_ok(s.d, "reload", out, sizeof out);
	unsigned g = wait_only_current(&s, 1, out, sizeof out);
	unsigned long handed, adopted;
	status_handoff(out, g, &handed, &adopted);
	ck_assert_msg(adopted == 4, "adopted %lu, not the 4 plain connections:\n%s", adopted, out);
	fputs("go\n", client);
	ck_assert_int_eq(pclose(client), 0);
	char path[600];
	snprintf(path, sizeof path, "%s/result", tmp);
	char *result = h_slurp(path, NULL);
	ck_assert_msg(result != NULL, "no result");
	printf("tls beside hand-off: %s\n", result);
	ck_assert_msg(strstr(result, "\"failed\": 0") && strstr(result, "\"plain_reconnects\": 0") &&
			      strstr(result, "\"tls_reconnects\": 4"),
		      "%s", result);
	free(result);
	srv_stop(&s);
	h_rm_rf(tmp);
	free(tmp);
}
END_TEST

static Suite *handoff_suite(void)
{
	Suite *s = suite_create("handoff");
	TCase *load = tcase_create("under_load");
	tcase_set_timeout(load, 300);
	tcase_add_test(load, twenty_reloads_and_three_upgrades_hand_over_every_connection);
	tcase_add_test(load, max_requests_recycling_hands_over_every_connection);
	tcase_add_test(load, a_successor_that_cannot_read_the_format_refuses_and_nothing_fails);
	suite_add_tcase(s, load);
	TCase *one = tcase_create("one_connection");
	tcase_set_timeout(one, 120);
	tcase_add_test(one, a_request_split_across_the_hand_off_is_answered_by_the_new_worker);
	tcase_add_test(one, keepalive_requests_counts_the_requests_before_the_hand_off);
	tcase_add_test(one, a_new_generation_at_its_connection_limit_closes_the_excess_cleanly);
	tcase_add_test(one, an_echo_session_survives_a_reload_with_its_pending_bytes);
	tcase_add_test(one, with_handoff_no_a_reload_drains_as_before);
	tcase_add_test(one, a_response_in_progress_finishes_first_and_is_handed_over_at_its_boundary);
	tcase_add_test(one, a_binary_upgrade_points_an_older_draining_worker_past_the_one_it_drains);
	tcase_add_test(one, tls_connections_drain_as_before_while_plain_ones_are_handed_over);
	suite_add_tcase(s, one);
	return s;
}

int main(void)
{
	int failed = h_run_suite(handoff_suite());
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
