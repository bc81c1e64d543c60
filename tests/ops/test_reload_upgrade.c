/* test_reload_upgrade: zero-downtime operations against the real binary,
 * under load.
 *
 * The harness's load client (load.h) keeps 16 keep-alive connections busy
 * with single and pipelined GETs for static files of known content, checks
 * every byte of every response, and counts what happened (re-sent requests
 * are allowed, failed ones are not: load.h says which is which).
 * While it runs, the tests reload (20 times in a row, and once with a
 * broken file), upgrade the binary in place, SIGKILL and SIGSTOP workers
 * and let max_requests recycle them. Then droverctl's commands and exit
 * codes, the systemd fd-store round trip (a fake NOTIFY_SOCKET receiving
 * the listening fd, handed back through LISTEN_FDS) and the coalescing of
 * SIGHUPs.
 *
 * Nothing here asserts speed. Waits are bounded only to turn a hang into a
 * failure; where no event exists (the process table, the load's counters,
 * a file appearing) the condition is polled at a short interval under the
 * same bound. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"

#define SLICE_MS 10            /* re-check interval for conditions without an event */
#define WAIT_MS H_WAIT_MS      /* bound of one wait */

/* ------------------------------------------------------------------ helpers */

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	for (const char *p = hay; (p = strstr(p, needle)); p += nl)
		n++;
	return n;
}

static size_t log_count(struct h_drover *d, const char *needle)
{
	char *all = h_slurp(d->log_path, NULL);
	if (!all)
		return 0;
	size_t n = count_substr(all, needle);
	free(all);
	return n;
}

/* Wait until the log holds at least n copies of needle. */
static bool log_wait_count(struct h_drover *d, const char *needle, size_t n)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		if (log_count(d, needle) >= n)
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(SLICE_MS);
	}
}

/* The highest N of "ready: generation N" in the log (0 if none). */
static unsigned log_last_ready_generation(struct h_drover *d)
{
	char *all = h_slurp(d->log_path, NULL);
	if (!all)
		return 0;
	unsigned best = 0;
	static const char key[] = "ready: generation ";
	for (const char *p = all; (p = strstr(p, key)); p += sizeof key - 1) {
		unsigned g = (unsigned)strtoul(p + sizeof key - 1, NULL, 10);
		if (g > best)
			best = g;
	}
	free(all);
	return best;
}

static bool pid_in(pid_t p, const pid_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* Wait until the supervisor has exactly n children (n == 0: any number
 * but none) and none is in old[]. */
static bool wait_workers_replaced(struct h_drover *d, size_t n, const pid_t *old, size_t n_old)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		pid_t now[256];
		size_t k = h_worker_pids(d, now, 256);
		bool fresh = n ? k == n : k > 0;
		for (size_t i = 0; i < k && fresh; i++)
			fresh = !pid_in(now[i], old, n_old);
		if (fresh)
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(SLICE_MS);
	}
}

/* Wait until pid is no longer a child of the supervisor, and the
 * supervisor has n children again. */
static bool wait_worker_replaced(struct h_drover *d, pid_t gone, size_t n)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		pid_t now[256];
		size_t k = h_worker_pids(d, now, 256);
		if (k == n && !pid_in(gone, now, k))
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(SLICE_MS);
	}
}

/* ------------------------------------------------------------------ the site */

/* Files of known, deterministic content and different sizes (an empty one,
 * one smaller than a TCP segment, one around a page, several segments, and
 * one much larger than a socket buffer), and how often the load asks for
 * each (weights out of 100). */
static struct h_load_file site_files[] = {
	{ .name = "empty.txt", .size = 0, .weight = 10 },
	{ .name = "tiny.txt", .size = 17, .weight = 35 },
	{ .name = "page.txt", .size = 4099, .weight = 25 },
	{ .name = "medium.txt", .size = 65537, .weight = 20 },
	{ .name = "large.txt", .size = 300007, .weight = 10 },
};
#define N_SITE_FILES (sizeof site_files / sizeof site_files[0])

/* A fresh directory holding the site; the caller removes it (site_free). */
static char *site_create(void) { return h_load_site(site_files, N_SITE_FILES); }

static void site_free(char *dir)
{
	h_rm_rf(dir);
	free(dir);
}

/* ------------------------------------------------------------------ droverctl */

static const char *droverctl_bin(void)
{
	const char *b = getenv("DROVERCTL_BIN");
	return b && *b ? b : "./src/droverctl";
}

/* Run "droverctl -s DIR/control.sock ARGS"; exit code. out gets stdout and
 * stderr, or only stderr with stderr_only. */
static int ctl_run(struct h_drover *d, const char *args, bool stderr_only, char *out, size_t out_len)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' -s '%s/control.sock' %s %s", droverctl_bin(), d->dir, args,
		 stderr_only ? "2>&1 >/dev/null" : "2>&1");
	return h_run(cmd, out, out_len);
}

/* droverctl ARGS must exit 0 (asserts, with its output and drover's log). */
static void ctl_ok(struct h_drover *d, const char *args, char *out, size_t out_len)
{
	char buf[16384];
	if (!out) {
		out = buf;
		out_len = sizeof buf;
	}
	int rc = ctl_run(d, args, false, out, out_len);
	ck_assert_msg(rc == 0, "droverctl %s exited %d: %s\nlog:\n%s", args, rc, out, h_log_end(d));
}

struct status {
	pid_t supervisor;
	unsigned generation;
	pid_t workers[64];
	unsigned connections[64]; /* per worker, as status reports it */
	size_t n_workers;
	char text[16384];
};

static void ctl_status(struct h_drover *d, struct status *st)
{
	memset(st, 0, sizeof *st);
	ctl_ok(d, "status", st->text, sizeof st->text);
	long sp = 0;
	unsigned g = 0;
	ck_assert_msg(sscanf(st->text, "supervisor pid %ld, generation %u", &sp, &g) == 2,
		      "unexpected status output: %s", st->text);
	st->supervisor = (pid_t)sp;
	st->generation = g;
	static const char key[] = "worker pid ";
	for (const char *p = st->text; (p = strstr(p, key)); p += sizeof key - 1) {
		if (p != st->text && p[-1] != '\n')
			continue;
		if (st->n_workers < sizeof st->workers / sizeof st->workers[0]) {
			const char *eol = strchr(p, '\n');
			const char *cn = strstr(p, " connections ");
			st->connections[st->n_workers] =
				cn && (!eol || cn < eol) ? (unsigned)strtoul(cn + 13, NULL, 10) : 0;
			st->workers[st->n_workers++] = (pid_t)strtol(p + sizeof key - 1, NULL, 10);
		}
	}
}

/* "ok: generation N serving (...)" -> N, 0 if absent. */
static unsigned ctl_reported_generation(const char *out)
{
	const char *p = strstr(out, "generation ");
	return p ? (unsigned)strtoul(p + 11, NULL, 10) : 0;
}

/* ------------------------------------------------------------------ load client */

/* The harness's load client on 127.0.0.1:port, asking for the site's files
 * (pipeline: batches of 4..8 half the time). */
static struct h_load *load_start(int port, bool pipeline)
{
	struct h_load_file files[N_SITE_FILES];
	for (size_t f = 0; f < N_SITE_FILES; f++) {
		ck_assert_msg(site_files[f].data != NULL, "site_create() first");
		files[f] = site_files[f];
	}
	struct h_load_opts o = { .port = port, .mode = H_LOAD_HTTP, .pipeline = pipeline, .files = files,
				 .n_files = N_SITE_FILES, .agent = "test_reload_upgrade" };
	return h_load_start(&o);
}

#define ASSERT_NO_FAILURES(s, d)                                                                    \
	do {                                                                                        \
		ck_assert_msg(h_load_failed(&(s)) == 0 && (s).connect_errors == 0,                    \
			      "failed=%" PRIu64 " (truncated=%" PRIu64 " wrong=%" PRIu64             \
			      " unanswered=%" PRIu64 ") connect_errors=%" PRIu64                     \
			      "; first problem: %s\nlog:\n%s",                                       \
			      h_load_failed(&(s)), (s).truncated, (s).wrong, (s).unanswered,           \
			      (s).connect_errors, (s).first_problem, h_log_end(d));                   \
		ck_assert_msg(!(s).self_stopped, "the load stopped on its own bound");              \
		ck_assert_msg((s).ok > 0, "no response at all");                                    \
	} while (0)

/* ------------------------------------------------------------------ fixtures */

/* A drover serving site on a socket-activated listener "web" (the test
 * makes the socket, so its accept queue outlives every generation). */
struct served {
	struct h_drover *d;
	char *site;
	int port;
};

static const char base_config[] =
	"[server]\n"
	"workers = %u\n"
	"control_socket = @DIR@/control.sock\n"
	"shutdown_timeout = 10s\n"
	"lingering_timeout = 2s\n"
	"%s"
	"[listener web]\n"
	"protocol = http\n"
	"[http]\n"
	"root = %s\n"
	"keepalive_timeout = 60s\n"
	"%s";

static char *config_text(unsigned workers, const char *server_extra, const char *site, const char *http_extra)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	int n = snprintf(NULL, 0, base_config, workers, server_extra, site, http_extra);
	ck_assert(n > 0);
	char *text = malloc((size_t)n + 1);
	ck_assert(text != NULL);
	snprintf(text, (size_t)n + 1, base_config, workers, server_extra, site, http_extra);
#pragma GCC diagnostic pop
	return text;
}

static void serve_start(struct served *s, unsigned workers, const char *server_extra, const char *http_extra)
{
	s->site = site_create();
	int fd = h_listen_tcp(&s->port);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .fds = &act, .n_fds = 1 };
	char *text = config_text(workers, server_extra, s->site, http_extra);
	s->d = h_drover_start(text, &o);
	free(text);
	ck_assert_msg(h_wait_workers(s->d, workers), "not %u workers; log:\n%s", workers, h_log_end(s->d));
}

static void serve_stop(struct served *s)
{
	h_drover_free(s->d);
	site_free(s->site);
}

/* Rewrite drover's config file in place (same path, @DIR@ expanded). */
static void rewrite_config(struct h_drover *d, const char *text)
{
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s.new", d->config_path);
	h_write_file(tmp, text);
	ck_assert_msg(rename(tmp, d->config_path) == 0, "rename: %s", strerror(errno));
}

/* text with every "@DIR@" replaced by d's private dir (malloc'd), for
 * rewrite_config(), which writes what it gets. */
static char *expand_dir(struct h_drover *d, const char *text)
{
	size_t cap = strlen(text) + 1, o = 0;
	for (const char *p = text; (p = strstr(p, "@DIR@")); p += 5)
		cap += strlen(d->dir);
	char *x = malloc(cap);
	ck_assert(x != NULL);
	for (const char *p = text; *p;) {
		if (strncmp(p, "@DIR@", 5) == 0) {
			o += (size_t)sprintf(x + o, "%s", d->dir);
			p += 5;
		} else {
			x[o++] = *p++;
		}
	}
	x[o] = '\0';
	return x;
}

/* Rewrite d's config from a template (see config_text). */
static void rewrite_config_from(struct h_drover *d, unsigned workers, const char *server_extra,
				const char *site, const char *http_extra)
{
	char *t = config_text(workers, server_extra, site, http_extra);
	char *x = expand_dir(d, t);
	rewrite_config(d, x);
	free(x);
	free(t);
}

/* ------------------------------------------------------------------ tests: under load */

START_TEST(steady_load_gets_every_byte_right)
{
	struct served s;
	serve_start(&s, 2, "", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 3000, s.d);
	struct h_load_stats st = h_load_stop(l, "steady");
	ASSERT_NO_FAILURES(st, s.d);
	/* nothing drops a request in steady state (keepalive_requests may
	 * close a connection, with Connection: close) */
	ck_assert_msg(st.retried_eof == 0 && st.retried_reset == 0 && st.resets == 0,
		      "retried after EOF %" PRIu64 ", after reset %" PRIu64 ", resets %" PRIu64 " with no operation: %s",
		      st.retried_eof, st.retried_reset, st.resets, st.first_problem);
	serve_stop(&s);
}
END_TEST

START_TEST(twenty_reloads_back_to_back_under_load_lose_nothing)
{
	struct served s;
	/* Room for every generation at once: how fast the old ones drain
	 * depends on the machine's load, and max_generations (default 4)
	 * killing one is the designed limit (test_generation covers it), not
	 * what this test is about. */
	serve_start(&s, 2, "max_generations = 24\n", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 500, s.d);
	unsigned gen = 1;
	for (int i = 0; i < 20; i++) {
		char out[4096];
		ctl_ok(s.d, "reload", out, sizeof out);
		unsigned g = ctl_reported_generation(out);
		ck_assert_msg(g > gen, "reload %d: generation %u after %u: %s", i + 1, g, gen, out);
		gen = g;
	}
	h_load_wait_ok(l, 500, s.d);
	struct h_load_stats st = h_load_stop(l, "20 reloads");
	ASSERT_NO_FAILURES(st, s.d);
	ck_assert_msg(st.resets == 0, "%" PRIu64 " connection(s) reset by a reload; first problem: %s",
		      st.resets, st.first_problem);
	ck_assert_msg(!h_log_contains(s.d, "too many generations alive"),
		      "a draining generation was killed by max_generations; log:\n%s", h_log_end(s.d));
	serve_stop(&s);
}
END_TEST

START_TEST(a_broken_reload_fails_with_file_and_line_and_service_continues)
{
	struct served s;
	serve_start(&s, 2, "", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 500, s.d);
	struct status before;
	ctl_status(s.d, &before);

	/* line 2 is "workers = ..." */
	char *bad = config_text(2, "", s.site, "");
	char *w = strstr(bad, "workers = 2");
	ck_assert(w != NULL);
	memcpy(w, "workers = X", 11);
	char *bad_x = expand_dir(s.d, bad);
	rewrite_config(s.d, bad_x);
	free(bad_x);
	free(bad);
	char err[4096], want[400];
	int rc = ctl_run(s.d, "reload", true, err, sizeof err);
	snprintf(want, sizeof want, "%s:2:", s.d->config_path);
	ck_assert_msg(rc == 1, "droverctl reload on a broken file exited %d: %s", rc, err);
	ck_assert_msg(strstr(err, "droverctl: reload failed:") && strstr(err, want),
		      "stderr does not name %s: %s", want, err);
	ck_assert(h_log_wait(s.d, "reload failed, still serving generation"));

	h_load_wait_ok(l, 1000, s.d); /* still serving */
	struct status after;
	ctl_status(s.d, &after);
	ck_assert_msg(after.generation == before.generation, "generation %u -> %u after a failed reload",
		      before.generation, after.generation);
	ck_assert_msg(strstr(after.text, "last reload: failed"), "status does not say so: %s", after.text);
	ck_assert_msg(after.n_workers == 2 && pid_in(after.workers[0], before.workers, before.n_workers) &&
			      pid_in(after.workers[1], before.workers, before.n_workers),
		      "the workers changed on a failed reload:\n%s\n%s", before.text, after.text);

	rewrite_config_from(s.d, 2, "", s.site, "");
	char out[4096];
	ctl_ok(s.d, "reload", out, sizeof out);
	ck_assert_msg(ctl_reported_generation(out) == before.generation + 1, "reload after repair: %s", out);
	h_load_wait_ok(l, 500, s.d);
	struct h_load_stats st = h_load_stop(l, "broken reload");
	ASSERT_NO_FAILURES(st, s.d);
	ck_assert_msg(st.resets == 0, "%" PRIu64 " reset(s): %s", st.resets, st.first_problem);
	serve_stop(&s);
}
END_TEST

START_TEST(three_binary_upgrades_under_load_keep_the_pid_and_lose_nothing)
{
	struct served s;
	serve_start(&s, 2, "", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 500, s.d);
	struct status st0;
	ctl_status(s.d, &st0);
	ck_assert_int_eq(st0.supervisor, s.d->pid);
	unsigned gen = st0.generation;
	for (int i = 0; i < 3; i++) {
		char out[4096];
		ctl_ok(s.d, "upgrade", out, sizeof out);
		struct status st;
		ctl_status(s.d, &st);
		ck_assert_msg(st.supervisor == s.d->pid, "upgrade %d: supervisor pid %ld, was %ld", i + 1,
			      (long)st.supervisor, (long)s.d->pid);
		ck_assert_msg(st.generation > gen, "upgrade %d: generation %u after %u", i + 1, st.generation, gen);
		gen = st.generation;
		h_load_wait_ok(l, 200, s.d);
	}
	ck_assert_msg(log_count(s.d, "binary upgrade: adopted generation") == 3, "log:\n%s", h_log_end(s.d));
	h_load_wait_ok(l, 500, s.d);
	struct h_load_stats st = h_load_stop(l, "3 upgrades");
	ASSERT_NO_FAILURES(st, s.d);
	ck_assert_msg(st.resets == 0, "%" PRIu64 " reset(s): %s", st.resets, st.first_problem);
	/* never a new main pid */
	ck_assert_msg(kill(s.d->pid, 0) == 0, "supervisor gone");
	serve_stop(&s);
}
END_TEST

/* The worker holding most of the load's connections (status says). */
static pid_t busiest_worker(struct h_drover *d, unsigned *conns)
{
	struct status st;
	ctl_status(d, &st);
	ck_assert_uint_gt(st.n_workers, 0);
	size_t best = 0;
	for (size_t i = 1; i < st.n_workers; i++)
		if (st.connections[i] > st.connections[best])
			best = i;
	*conns = st.connections[best];
	ck_assert_msg(*conns > 0, "no worker has a connection:\n%s", st.text);
	return st.workers[best];
}

/* What a killed worker may cost: the requests in flight on its connections,
 * at most every connection's deepest batch. */
static void assert_loss_bounded(const struct h_load_stats *st, struct h_drover *d)
{
	uint64_t lost = st->truncated + st->retried_eof + st->retried_reset;
	ck_assert_msg(st->wrong == 0 && st->unanswered == 0 && st->connect_errors == 0,
		      "wrong=%" PRIu64 " unanswered=%" PRIu64 " connect_errors=%" PRIu64 "; first problem: %s\nlog:\n%s",
		      st->wrong, st->unanswered, st->connect_errors, st->first_problem, h_log_end(d));
	/* The victim held connections: each ended with requests outstanding
	 * (lost) or, if the kill fell between two batches, in an idle close. */
	ck_assert_msg(lost + st->idle_closes >= 1,
		      "killing a worker with connections closed none of them: was it serving?");
	ck_assert_msg(st->truncated <= H_LOAD_CONNS * H_LOAD_DEPTH && lost <= H_LOAD_CONNS * H_LOAD_DEPTH,
		      "%" PRIu64 " request(s) hit (truncated %" PRIu64 "), more than %d connections x %d deep",
		      lost, st->truncated, H_LOAD_CONNS, H_LOAD_DEPTH);
	ck_assert(!st->self_stopped);
	ck_assert(st->ok > 0);
}

START_TEST(a_worker_killed_under_load_is_replaced_and_only_its_requests_are_hit)
{
	struct served s;
	serve_start(&s, 2, "", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 1000, s.d);
	unsigned conns;
	pid_t victim = busiest_worker(s.d, &conns);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	char line[128];
	snprintf(line, sizeof line, "worker pid %ld (generation 1, #", (long)victim);
	ck_assert_msg(h_log_wait(s.d, line) && h_log_wait(s.d, "killed by signal"), "log:\n%s", h_log_end(s.d));
	ck_assert_msg(wait_worker_replaced(s.d, victim, 2), "no replacement; log:\n%s", h_log_end(s.d));
	h_load_wait_ok(l, 1000, s.d);
	struct h_load_stats st = h_load_stop(l, "SIGKILL worker");
	printf("SIGKILL worker (%u connections): %" PRIu64 " request(s) hit (truncated %" PRIu64 ", re-sent %" PRIu64 ")\n",
	       conns, st.truncated + st.retried_eof + st.retried_reset, st.truncated, st.retried_eof + st.retried_reset);
	assert_loss_bounded(&st, s.d);
	serve_stop(&s);
}
END_TEST

START_TEST(a_worker_frozen_with_sigstop_is_detected_killed_and_replaced)
{
	struct served s;
	serve_start(&s, 2, "worker_timeout = 2s\n", "");
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 1000, s.d);
	unsigned conns;
	pid_t victim = busiest_worker(s.d, &conns);
	ck_assert_int_eq(kill(victim, SIGSTOP), 0);
	char line[160];
	snprintf(line, sizeof line, "worker pid %ld (generation 1) stuck for", (long)victim);
	ck_assert_msg(h_log_wait(s.d, line), "not detected; log:\n%s", h_log_end(s.d));
	ck_assert_msg(wait_worker_replaced(s.d, victim, 2), "no replacement; log:\n%s", h_log_end(s.d));
	snprintf(line, sizeof line, "worker pid %ld (generation 1, #", (long)victim);
	ck_assert_msg(h_log_wait(s.d, line), "its exit is not logged; log:\n%s", h_log_end(s.d));
	h_load_wait_ok(l, 1000, s.d);
	struct h_load_stats st = h_load_stop(l, "SIGSTOP worker");
	printf("SIGSTOP worker (%u connections): %" PRIu64 " request(s) hit (truncated %" PRIu64 ", re-sent %" PRIu64 ")\n",
	       conns, st.truncated + st.retried_eof + st.retried_reset, st.truncated, st.retried_eof + st.retried_reset);
	assert_loss_bounded(&st, s.d);
	serve_stop(&s);
}
END_TEST

START_TEST(max_requests_recycles_workers_under_load_without_losing_a_request)
{
	struct served s;
	serve_start(&s, 2, "max_requests = 50\nmax_requests_jitter = 0\n", "");
	pid_t first[8];
	size_t n_first = h_worker_pids(s.d, first, 8);
	struct h_load *l = load_start(s.port, true);
	ck_assert_msg(log_wait_count(s.d, "reached max_requests; starting its replacement", 8),
		      "fewer than 8 recycles; log:\n%s", h_log_end(s.d));
	ck_assert_msg(wait_workers_replaced(s.d, 0, first, n_first), "original workers still there; log:\n%s",
		      h_log_end(s.d));
	h_load_wait_ok(l, 300, s.d);
	struct h_load_stats st = h_load_stop(l, "max_requests");
	printf("max_requests: %zu recycle(s) logged\n", log_count(s.d, "reached max_requests"));
	ASSERT_NO_FAILURES(st, s.d);
	ck_assert_msg(st.resets == 0, "%" PRIu64 " reset(s): %s", st.resets, st.first_problem);
	serve_stop(&s);
}
END_TEST

/* Whether pid sleeps in epoll_wait now (false if that cannot be told). */
static bool proc_in_epoll_wait(pid_t pid)
{
	char path[64], buf[128];
	snprintf(path, sizeof path, "/proc/%ld/wchan", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return false;
	buf[r] = '\0';
	return h_proc_state(pid) == 'S' && (strstr(buf, "epoll_wait") || strstr(buf, "ep_poll"));
}

/* The load above sees every drain hit connections whose next request is
 * already in the socket; this pins that case down deterministically: the
 * worker is frozen while DRAIN and then a request reach it, so it finds
 * both at once, DRAIN first. The request reached the socket before the
 * worker closed the connection, so it must be answered (README.md, "The
 * path of a DRAIN message", step 3: drain without resets). */
START_TEST(a_request_already_in_the_socket_when_drain_arrives_is_answered)
{
	struct served s;
	/* The drain without hand-off (with it, the connection lives on in
	 * the new generation: tests/ops/test_handoff.c). */
	serve_start(&s, 1, "handoff = no\n", "");
	pid_t w;
	ck_assert_uint_eq(h_worker_pids(s.d, &w, 1), 1);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	static const char req1[] = "GET /tiny.txt HTTP/1.1\r\nHost: x\r\n\r\n";
	h_write_all(fd, req1, sizeof req1 - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);

	/* Freeze the worker on an idle keep-alive connection, while it sleeps
	 * in epoll_wait (then nothing of this connection is on epoll's ready
	 * list, and DRAIN comes out ahead of the request; where wchan is not
	 * readable the order is left to chance, and the test still holds). */
	int64_t asleep_by = h_now_ms() + WAIT_MS;
	while (!proc_in_epoll_wait(w) && h_left_ms(asleep_by) > 0)
		h_pause_ms(1);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (h_proc_state(w) != 'T' && h_proc_state(w) != 't') {
		ck_assert_msg(h_left_ms(deadline) > 0, "worker %ld never stopped", (long)w);
		h_pause_ms(SLICE_MS);
	}
	/* droverctl reload returns once DRAIN has been sent to the old worker */
	char out[4096];
	ctl_ok(s.d, "reload", out, sizeof out);
	/* now the next request reaches the socket, then the worker runs */
	static const char req2[] = "GET /page.txt HTTP/1.1\r\nHost: x\r\n\r\n";
	h_write_all(fd, req2, sizeof req2 - 1);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	bool answered = h_http_read_response(fd, &r, false);
	ck_assert_msg(answered, "the request that was in the socket before the drain was dropped "
				"(EOF, no response); log:\n%s", h_log_end(s.d));
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, site_files[2].size);
	ck_assert(memcmp(r.body, site_files[2].data, r.body_len) == 0);
	/* Whether it says Connection: close depends on whether the worker saw
	 * DRAIN before it built the response; either way nothing follows. */
	char conn[64] = "";
	h_http_header(&r, "Connection", conn, sizeof conn);
	printf("drain with a request in the socket: answered, Connection: '%s'\n", conn);
	h_http_response_free(&r);
	char rest[64];
	ck_assert_msg(h_read_all(fd, rest, sizeof rest) == 0, "the draining worker kept the connection open");
	close(fd);
	serve_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ droverctl */

/* A 64 MiB download nobody reads, far larger than the socket buffers: it
 * keeps the worker serving it busy. Returns the connection, with the first
 * STALLED_HEAD bytes (the status line) read. */
#define STALLED_HEAD 64
#define STALLED_SIZE ((uint64_t)64 << 20)
static int stalled_download(struct served *s)
{
	char path[600];
	snprintf(path, sizeof path, "%s/big.bin", s->site);
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(f >= 0 && ftruncate(f, (off_t)STALLED_SIZE) == 0);
	close(f);
	int c = h_connect_tcp(s->port);
	ck_assert(c >= 0);
	static const char get[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
	h_write_all(c, get, sizeof get - 1);
	char head[STALLED_HEAD];
	ck_assert(h_read_exact(c, head, sizeof head));
	ck_assert_msg(strncmp(head, "HTTP/1.1 200", 12) == 0, "%.64s", head);
	return c;
}

/* Bytes read until EOF or error. */
static uint64_t read_to_end(int fd)
{
	char buf[65536];
	uint64_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0)
			return got;
		got += (uint64_t)r;
	}
}

START_TEST(old_generations_beyond_max_generations_are_killed)
{
	struct served s;
	serve_start(&s, 1, "max_generations = 2\n", "");
	/* A download far larger than the socket buffers, read by nobody:
	 * it keeps its generation-1 worker draining. */
	int c = stalled_download(&s);
	pid_t first[4];
	ck_assert_uint_eq(h_worker_pids(s.d, first, 4), 1);

	char out[4096];
	ctl_ok(s.d, "reload", out, sizeof out); /* generation 2 serves, 1 drains */
	ck_assert_msg(h_log_wait(s.d, "draining 1 connection(s)"), "generation 1 should be draining the download");
	ctl_ok(s.d, "reload", out, sizeof out); /* 3 would make three generations */
	ck_assert_msg(h_log_wait(s.d, "too many generations alive (max_generations = 2), killed"),
		      "generation 1 was not capped; log:\n%s", h_log_end(s.d));
	char who[64];
	snprintf(who, sizeof who, "worker pid %ld (generation 1, #0) killed by signal 9", (long)first[0]);
	ck_assert_msg(h_log_wait(s.d, who), "no reap of %s; log:\n%s", who, h_log_end(s.d));
	/* the cut download ends early, and service goes on in generation 3 */
	uint64_t got = STALLED_HEAD + read_to_end(c);
	ck_assert_msg(got < STALLED_SIZE, "the killed worker's download completed (%" PRIu64 " bytes)", got);
	close(c);
	struct h_response r;
	ck_assert(h_http_request(s.port, "HEAD /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	struct status st;
	ctl_status(s.d, &st);
	ck_assert_uint_eq(st.generation, 3);
	serve_stop(&s);
}
END_TEST

/* One request on a new connection; its status. */
static int one_status(int port, const char *target)
{
	char req[256];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
	struct h_response r;
	ck_assert(h_http_request(port, req, &r));
	int status = r.status;
	h_http_response_free(&r);
	return status;
}

/* The supervisor's address space capped a little above what it uses now
 * (prlimit --as; a fork inherits the cap), remembering it in was; on =
 * false: back to was. */
static void cap_address_space(pid_t pid, struct rlimit *was, bool on)
{
	if (!on) {
		ck_assert(prlimit(pid, RLIMIT_AS, was, NULL) == 0);
		return;
	}
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert(f != NULL);
	unsigned long kb = 0;
	while (fgets(line, sizeof line, f) && sscanf(line, "VmSize: %lu kB", &kb) != 1)
		;
	fclose(f);
	ck_assert(kb > 0 && prlimit(pid, RLIMIT_AS, NULL, was) == 0);
	struct rlimit cap = { .rlim_cur = kb * 1024 + (4ul << 20), .rlim_max = was->rlim_max };
	ck_assert_msg(prlimit(pid, RLIMIT_AS, &cap, NULL) == 0, "prlimit: %s", strerror(errno));
}

START_TEST(a_recycle_whose_replacement_fails_is_retried_and_completes)
{
	/* The replacement cannot allocate its open-file cache (8 MiB: the
	 * supervisor's address space is capped, and the fork inherits the
	 * cap), so it dies at start; the supervisor retries with back-off
	 * while the old worker keeps serving, and finishes the recycle once
	 * it can. */
	struct served s;
	h_asan_may_return_null();
	serve_start(&s, 1, "max_requests = 3\nmax_requests_jitter = 0\n", "file_cache_entries = 1048576\n");
	pid_t first[2];
	ck_assert_uint_eq(h_worker_pids(s.d, first, 2), 1);
	struct rlimit was;
	cap_address_space(s.d->pid, &was, true);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(one_status(s.port, "/tiny.txt"), 200);
	ck_assert_msg(log_wait_count(s.d, "next start in", 2), "no back-off retries; log:\n%s", h_log_end(s.d));
	ck_assert_int_eq(one_status(s.port, "/tiny.txt"), 200); /* the old worker still serves */
	cap_address_space(s.d->pid, &was, false);
	char who[96];
	snprintf(who, sizeof who, "worker pid %ld (generation 1, #0) exited with status 0", (long)first[0]);
	ck_assert_msg(h_log_wait(s.d, who), "the recycle never completed; log:\n%s", h_log_end(s.d));
	ck_assert_int_eq(one_status(s.port, "/tiny.txt"), 200);
	serve_stop(&s);
}
END_TEST

START_TEST(an_upgrade_whose_new_listener_cannot_bind_keeps_serving)
{
	struct served s;
	serve_start(&s, 2, "", "");
	/* The new config adds a listener on a port somebody else holds. */
	int busy_port;
	int busy = h_listen_tcp(&busy_port);
	char *t = config_text(2, "", s.site, "");
	char *x = expand_dir(s.d, t);
	size_t len = strlen(x) + 128;
	char *with = malloc(len);
	ck_assert(with != NULL);
	snprintf(with, len, "%s[listener extra]\naddress = 127.0.0.1:%d\nprotocol = echo\n", x, busy_port);
	rewrite_config(s.d, with);
	free(with);
	free(x);
	free(t);
	struct h_load *l = load_start(s.port, true);
	h_load_wait_ok(l, 300, s.d);
	char out[4096];
	ctl_ok(s.d, "upgrade", out, sizeof out);
	ck_assert(h_log_contains(s.d, "not serving it"));
	h_load_wait_ok(l, 500, s.d);
	struct h_load_stats st = h_load_stop(l, "upgrade, unbindable listener");
	ASSERT_NO_FAILURES(st, s.d);
	ck_assert_int_eq(one_status(s.port, "/tiny.txt"), 200);
	close(busy);
	serve_stop(&s);
}
END_TEST

START_TEST(an_old_generation_still_draining_at_its_deadline_is_ended)
{
	struct served s;
	serve_start(&s, 1, "", "");
	/* shutdown_timeout bounds the drain of an old generation too: make it
	 * short, then hold a download that nobody reads on generation 1. */
	int c = stalled_download(&s);
	pid_t first[2];
	ck_assert_uint_eq(h_worker_pids(s.d, first, 2), 1);

	/* the new config: same service, a 2 s shutdown_timeout */
	char *cfg = config_text(1, "", s.site, "");
	char *shorter = expand_dir(s.d, cfg);
	char *p = strstr(shorter, "shutdown_timeout = 10s");
	ck_assert(p != NULL);
	memcpy(p, "shutdown_timeout = 2s ", 22);
	rewrite_config(s.d, shorter);
	free(shorter);
	free(cfg);
	char out[4096];
	ctl_ok(s.d, "reload", out, sizeof out);
	ck_assert_msg(h_log_wait(s.d, "draining 1 connection(s)"), "log:\n%s", h_log_end(s.d));
	/* generation 1 is drained with the new shutdown_timeout */
	ck_assert_msg(h_log_wait(s.d, "drain deadline reached, closing 1 connection(s)"),
		      "the old generation outlived its drain deadline; log:\n%s", h_log_end(s.d));
	char who[96];
	snprintf(who, sizeof who, "worker pid %ld (generation 1, #0) exited", (long)first[0]);
	ck_assert_msg(h_log_wait(s.d, who), "log:\n%s", h_log_end(s.d));
	uint64_t got = STALLED_HEAD + read_to_end(c);
	ck_assert_msg(got < STALLED_SIZE, "the download outlived the drain deadline");
	close(c);
	ck_assert_int_eq(one_status(s.port, "/tiny.txt"), 200);
	serve_stop(&s);
}
END_TEST

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

START_TEST(droverctl_commands_and_exit_codes)
{
	struct served s;
	serve_start(&s, 3, "", "access_log = @DIR@/access.log\n");
	struct h_drover *d = s.d;

	/* status: 0, the supervisor and exactly the live workers */
	struct status st;
	ctl_status(d, &st);
	ck_assert_int_eq(st.supervisor, d->pid);
	ck_assert_uint_eq(st.generation, 1);
	pid_t live[16];
	size_t n_live = h_worker_pids(d, live, 16);
	ck_assert_msg(st.n_workers == n_live && n_live == 3, "status lists %zu workers, /proc %zu:\n%s",
		      st.n_workers, n_live, st.text);
	qsort(live, n_live, sizeof live[0], pid_cmp);
	qsort(st.workers, st.n_workers, sizeof st.workers[0], pid_cmp);
	ck_assert_msg(memcmp(live, st.workers, n_live * sizeof live[0]) == 0, "pids differ:\n%s", st.text);
	ck_assert_msg(strstr(st.text, "last reload:"), "%s", st.text);

	/* reload: 0, a new generation */
	char out[4096];
	ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(ctl_reported_generation(out) == 2, "%s", out);
	ctl_status(d, &st);
	ck_assert_uint_eq(st.generation, 2);

	/* reopen-logs: after a rename, the next request lands in a new file */
	char log[400], rotated[400];
	snprintf(log, sizeof log, "%s/access.log", d->dir);
	snprintf(rotated, sizeof rotated, "%s/access.log.1", d->dir);
	struct h_response r;
	ck_assert(h_http_request(s.port, "GET /tiny.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	int64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) { /* the line is written when the response is done */
		char *all = h_slurp(log, NULL);
		bool there = all && strstr(all, "GET /tiny.txt");
		free(all);
		if (there)
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "no access log line in %s", log);
		h_pause_ms(SLICE_MS);
	}
	ck_assert_int_eq(rename(log, rotated), 0);
	ctl_ok(d, "reopen-logs", NULL, 0);
	/* Every worker reopens on its own loop: ask until one that has
	 * reopened answers (each try is one request; bounded). */
	deadline = h_now_ms() + WAIT_MS;
	bool found = false;
	for (int i = 0; !found; i++) {
		char req[200];
		snprintf(req, sizeof req, "GET /page.txt?after-reopen-%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i);
		ck_assert(h_http_request(s.port, req, &r));
		ck_assert_int_eq(r.status, 200);
		h_http_response_free(&r);
		char *all = h_slurp(log, NULL);
		found = all && strstr(all, "after-reopen-");
		free(all);
		ck_assert_msg(found || h_left_ms(deadline) > 0, "no new %s after reopen-logs; log:\n%s", log, h_log_end(d));
		if (!found)
			h_pause_ms(SLICE_MS);
	}
	char *old = h_slurp(rotated, NULL);
	ck_assert_msg(old && strstr(old, "GET /tiny.txt"), "rotated file lost its line");
	free(old);

	/* usage error: 2 */
	int rc = ctl_run(d, "frobnicate", false, out, sizeof out);
	ck_assert_msg(rc == 2, "unknown command exited %d: %s", rc, out);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "'%s' -s '%s/control.sock' 2>&1", droverctl_bin(), d->dir);
	rc = h_run(cmd, out, sizeof out);
	ck_assert_msg(rc == 2, "no command exited %d: %s", rc, out);

	/* unreachable: 3 */
	snprintf(cmd, sizeof cmd, "'%s' -s '%s/nobody-here.sock' status 2>&1", droverctl_bin(), d->dir);
	rc = h_run(cmd, out, sizeof out);
	ck_assert_msg(rc == 3, "unreachable socket exited %d: %s", rc, out);

	/* failed reload: 1, naming file:line on stderr; nothing changes */
	/* line 6 is the first line after the fixed [server] keys */
	rewrite_config_from(d, 3, "bogus_key = 1\n", s.site, "access_log = @DIR@/access.log\n");
	rc = ctl_run(d, "reload", true, out, sizeof out);
	char want[400];
	snprintf(want, sizeof want, "%s:6:", d->config_path);
	ck_assert_msg(rc == 1 && strstr(out, want), "bad reload exited %d, stderr: %s (want %s)", rc, out, want);
	ctl_status(d, &st);
	ck_assert_uint_eq(st.generation, 2);
	rewrite_config_from(d, 3, "", s.site, "access_log = @DIR@/access.log\n");

	/* stop: 0, and drover exits 0 */
	ctl_ok(d, "stop", out, sizeof out);
	int ws = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "drover ended with status 0x%x; log:\n%s", ws,
		      h_log_end(d));
	rc = ctl_run(d, "status", false, out, sizeof out);
	ck_assert_msg(rc == 3, "status after stop exited %d: %s", rc, out);
	serve_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ fd store */

/* A fake NOTIFY_SOCKET: a datagram socket the test binds and reads with
 * recvmsg(), so that the fds drover stores arrive here. */
static int notify_open(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert(fd >= 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ck_assert(strlen(path) < sizeof sun.sun_path);
	strcpy(sun.sun_path, path);
	unlink(path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0, "bind %s: %s", path, strerror(errno));
	return fd;
}

/* Read every queued datagram; text appended to buf, a received fd for an
 * "FDSTORE=1" datagram naming name kept in *stored (others closed); number
 * of FDSTORE datagrams seen. */
static int notify_drain(int fd, char *buf, size_t cap, const char *name, int *stored)
{
	int n_store = 0;
	for (;;) {
		char data[4096];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 16)];
		} ctl;
		struct iovec iov = { .iov_base = data, .iov_len = sizeof data - 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				    .msg_controllen = sizeof ctl.b };
		ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return n_store;
		data[r] = '\0';
		size_t used = strlen(buf);
		snprintf(buf + used, cap - used, "%s\n", data);
		char want[128];
		snprintf(want, sizeof want, "FDNAME=%s", name);
		bool is_store = strstr(data, "FDSTORE=1") != NULL;
		if (is_store)
			n_store++;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[16];
			memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
			for (size_t i = 0; i < nfd; i++) {
				if (is_store && strstr(data, want) && *stored < 0 && nfd == 1)
					*stored = fds[i];
				else
					close(fds[i]);
			}
		}
	}
}

static int local_port_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	ck_assert(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	ck_assert_int_eq(sin.sin_family, AF_INET);
	return ntohs(sin.sin_port);
}

START_TEST(fd_store_round_trip_keeps_the_socket_and_its_queue_across_a_restart)
{
	char *site = site_create();
	char *ndir = h_tmpdir();
	char npath[PATH_MAX], nenv[PATH_MAX + 20];
	snprintf(npath, sizeof npath, "%s/notify.sock", ndir);
	snprintf(nenv, sizeof nenv, "NOTIFY_SOCKET=%s", npath);
	int nfd = notify_open(npath);
	const char *env[] = { nenv, NULL };
	int port = h_free_port();
	char server[200];
	snprintf(server, sizeof server, "[listener web]\naddress = 127.0.0.1:%d\n", port);
	/* one config for both runs: the listener has an address, and a socket
	 * passed under its name must win over binding it */
	char *text = NULL;
	ck_assert(asprintf(&text,
			   "[server]\nworkers = 2\ncontrol_socket = @DIR@/control.sock\nshutdown_timeout = 10s\n"
			   "%sprotocol = http\n[http]\nroot = %s\n", server, site) > 0);

	/* first run: drover binds, and stores the listener with systemd */
	struct h_opts o1 = { .extra_env = env };
	struct h_drover *d1 = h_drover_start(text, &o1);
	char seen[16384] = "";
	int stored = -1;
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (stored < 0) {
		notify_drain(nfd, seen, sizeof seen, "web", &stored);
		if (stored >= 0)
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "no FDSTORE=1 with an fd for 'web'; notify:\n%s\nlog:\n%s", seen,
			      h_log_end(d1));
		struct pollfd p = { .fd = nfd, .events = POLLIN };
		poll(&p, 1, h_left_ms(deadline));
	}
	ck_assert_msg(strstr(seen, "FDNAME=web"), "%s", seen);
	ck_assert_msg(h_log_contains(d1, "listener 'web' on 127.0.0.1:"), "log:\n%s", h_log_end(d1));
	ck_assert_int_eq(local_port_of(stored), port);
	int acc = 0;
	socklen_t al = sizeof acc;
	ck_assert(getsockopt(stored, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1);

	/* it serves */
	struct h_response r;
	ck_assert(h_http_request(port, "GET /tiny.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);

	/* stop it; the stored copy keeps the socket listening */
	h_drover_kill(d1, SIGTERM);
	int ws = h_drover_wait(d1);
	ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "status 0x%x; log:\n%s", ws, h_log_end(d1));
	notify_drain(nfd, seen, sizeof seen, "web", &stored);
	ck_assert_msg(strstr(seen, "STOPPING=1"), "%s", seen);
	h_drover_free(d1);

	/* while no drover runs: connections queue, none is refused */
	enum { N_QUEUED = 8 };
	int queued[N_QUEUED];
	for (int i = 0; i < N_QUEUED; i++) {
		queued[i] = h_connect_tcp(port);
		ck_assert_msg(queued[i] >= 0, "connect %d while drover was down: %s", i, strerror(-queued[i]));
		char req[160];
		snprintf(req, sizeof req, "GET /page.txt HTTP/1.1\r\nHost: x\r\nX-Queued: %d\r\nConnection: close\r\n\r\n", i);
		h_write_all(queued[i], req, strlen(req));
	}

	/* second run: the stored fd comes back through LISTEN_FDS */
	int extra_store = -1;
	seen[0] = '\0';
	struct h_activation act = { .name = "web", .fd = stored };
	struct h_opts o2 = { .extra_env = env, .fds = &act, .n_fds = 1 };
	struct h_drover *d2 = h_drover_start(text, &o2);
	ck_assert_msg(h_log_contains(d2, "listener 'web' on a socket passed by systemd"), "log:\n%s", h_log_end(d2));
	ck_assert_msg(!h_log_contains(d2, "listener 'web' on 127.0.0.1:"), "it bound the address; log:\n%s",
		      h_log_end(d2));
	for (int i = 0; i < N_QUEUED; i++) {
		ck_assert_msg(h_http_read_response(queued[i], &r, false), "queued connection %d got no answer", i);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_len, site_files[2].size);
		ck_assert(memcmp(r.body, site_files[2].data, r.body_len) == 0);
		h_http_response_free(&r);
		close(queued[i]);
	}
	ck_assert(h_http_request(port, "GET /tiny.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	/* a socket that came from systemd is not stored again: nothing up to
	 * READY=1 (sent after any FDSTORE) stores it */
	int n_store = 0;
	deadline = h_now_ms() + WAIT_MS;
	while (!strstr(seen, "READY=1")) {
		n_store += notify_drain(nfd, seen, sizeof seen, "web", &extra_store);
		if (strstr(seen, "READY=1"))
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "second run sent no READY=1 to the fake socket:\n%s", seen);
		struct pollfd p = { .fd = nfd, .events = POLLIN };
		poll(&p, 1, h_left_ms(deadline));
	}
	ck_assert_msg(n_store == 0 && extra_store < 0, "listener passed in was stored again:\n%s", seen);

	h_drover_kill(d2, SIGTERM);
	ws = h_drover_wait(d2);
	ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "status 0x%x", ws);
	h_drover_free(d2);
	close(nfd);
	free(text);
	h_rm_rf(ndir);
	free(ndir);
	site_free(site);
}
END_TEST

/* ------------------------------------------------------------------ coalescing */

/* Whether signal sig is pending for pid (sent, not yet taken by its
 * signalfd); false if /proc cannot tell. */
static bool signal_pending(pid_t pid, int sig)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	char *all = h_slurp(path, NULL);
	if (!all)
		return false;
	bool pending = false;
	static const char *const keys[] = { "\nShdPnd:\t", "\nSigPnd:\t" };
	for (size_t i = 0; i < 2; i++) {
		const char *p = strstr(all, keys[i]);
		if (p && (strtoull(p + strlen(keys[i]), NULL, 16) >> (sig - 1)) & 1)
			pending = true;
	}
	free(all);
	return pending;
}

/* A reload stays in progress for as long as the test wants: the fork gate
 * holds the new generation's workers before they run. So the SIGHUPs
 * after the first one deterministically arrive while a reload is in
 * progress. */
START_TEST(sighups_in_a_burst_are_coalesced_and_none_is_lost)
{
	char *site = site_create();
	const char *http_extra = "";
	struct h_fork_gate gate;
	int fd = h_listen_tcp(NULL);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .fds = &act, .n_fds = 1 };
	char *text = config_text(2, "", site, http_extra);
	struct h_drover *d = h_drover_start(text, &o);
	free(text);
	ck_assert_uint_eq(log_last_ready_generation(d), 1);
	if (!h_fork_gate_close(&gate, d->pid)) { /* from now on a new worker is held before READY */
		h_skip("%s", gate.why);
		h_drover_free(d);
		site_free(site);
		return;
	}

	rewrite_config_from(d, 3, "", site, http_extra);
	h_drover_kill(d, SIGHUP);
	ck_assert_msg(h_log_wait(d, "supervisor: reloading ") && h_log_wait(d, "(generation 2, #0)"),
		      "log:\n%s", h_log_end(d));
	/* four more while generation 2 cannot become ready; the last one
	 * follows the final change of the file */
	static const unsigned workers[] = { 1, 3, 2, 4 };
	for (size_t i = 0; i < 4; i++) {
		rewrite_config_from(d, workers[i], "", site, http_extra);
		h_drover_kill(d, SIGHUP);
	}
	/* wait until the supervisor has taken them all */
	int64_t deadline = h_now_ms() + WAIT_MS;
	while (signal_pending(d->pid, SIGHUP)) {
		ck_assert_msg(h_left_ms(deadline) > 0, "SIGHUP never taken");
		h_pause_ms(1);
	}
	ck_assert_msg(log_count(d, "supervisor: reloading ") == 1, "a SIGHUP during a reload started another; log:\n%s",
		      h_log_end(d));
	struct status st;

	h_fork_gate_open(&gate); /* let the workers start */
	ck_assert_msg(h_log_wait(d, "ready: generation 2, 3 workers"), "log:\n%s", h_log_end(d));
	/* the coalesced reload: one more generation, with the last file */
	ck_assert_msg(h_log_wait(d, "ready: generation 3, 4 workers"), "the SIGHUPs after the first were lost; log:\n%s",
		      h_log_end(d));
	ck_assert_msg(h_wait_workers(d, 4), "log:\n%s", h_log_end(d));
	ctl_status(d, &st);
	size_t reloads = log_count(d, "supervisor: reloading ");
	printf("coalescing: 5 SIGHUPs (4 during a reload) started %zu reload(s); generation %u\n", reloads,
	       st.generation);
	ck_assert_msg(reloads == 2 && st.generation == 3, "%zu reloads, generation %u; log:\n%s", reloads,
		      st.generation, h_log_end(d));
	ck_assert_uint_eq(st.n_workers, 4);
	h_drover_free(d);
	site_free(site);
}
END_TEST

/* ------------------------------------------------------------------ main */

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	/* Alone in its case so that CI can run it under valgrind
	 * (CK_RUN_CASE=steady, DROVER_WRAPPER). */
	TCase *steady = tcase_create("steady");
	tcase_set_timeout(steady, 300);
	tcase_add_test(steady, steady_load_gets_every_byte_right);
	suite_add_tcase(s, steady);
	TCase *load = tcase_create("under_load");
	tcase_set_timeout(load, 300);
	tcase_add_test(load, twenty_reloads_back_to_back_under_load_lose_nothing);
	tcase_add_test(load, a_broken_reload_fails_with_file_and_line_and_service_continues);
	tcase_add_test(load, three_binary_upgrades_under_load_keep_the_pid_and_lose_nothing);
	tcase_add_test(load, a_worker_killed_under_load_is_replaced_and_only_its_requests_are_hit);
	tcase_add_test(load, a_worker_frozen_with_sigstop_is_detected_killed_and_replaced);
	tcase_add_test(load, max_requests_recycles_workers_under_load_without_losing_a_request);
	tcase_add_test(load, a_request_already_in_the_socket_when_drain_arrives_is_answered);
	suite_add_tcase(s, load);

	TCase *ctl = tcase_create("control");
	tcase_set_timeout(ctl, 300);
	tcase_add_test(ctl, droverctl_commands_and_exit_codes);
	tcase_add_test(ctl, fd_store_round_trip_keeps_the_socket_and_its_queue_across_a_restart);
	tcase_add_test(ctl, sighups_in_a_burst_are_coalesced_and_none_is_lost);
	tcase_add_test(ctl, old_generations_beyond_max_generations_are_killed);
	tcase_add_test(ctl, a_recycle_whose_replacement_fails_is_retried_and_completes);
	tcase_add_test(ctl, an_upgrade_whose_new_listener_cannot_bind_keeps_serving);
	tcase_add_test(ctl, an_old_generation_still_draining_at_its_deadline_is_ended);
	suite_add_tcase(s, ctl);
	return s;
}

int main(void)
{
	int failed = h_run_suite(ops_suite());
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
