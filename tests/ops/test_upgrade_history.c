/* test_upgrade_history: what a binary upgrade carries besides the workers
 * (the reload history, the generation numbers). Against the real binary:
 * after reloads (one of them failing) and an upgrade, droverctl status shows the upgrade as
 * the last reload and every earlier entry as before, and generation
 * numbers never repeat, across two upgrades. In the supervisor's own code
 * (the execve made to fail, so that the test survives it): an answer a
 * slow client has only partly read when the trial reports is written whole
 * before the execve, and a client that reads nothing does not hold the
 * upgrade past its deadline. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/loop.h"
#include "harness.h"
#include "supervisor/admin.h"
#include "supervisor/history.h"
#include "supervisor/supervisor.h"
#include "supervisor/trial.h"
#include "supervisor/upgrade.h"

static char *echo_config(int port, const char *extra)
{
	char server[512], listener[64];
	snprintf(server, sizeof server, "shutdown_timeout = 5s\n%s", extra);
	snprintf(listener, sizeof listener, "address = 127.0.0.1:%d\n", port);
	return h_echo_config(1, server, listener, NULL);
}

/* The config file the harness wrote, with @DIR@ replaced: read it back. */
static char *config_now(struct h_drover *d)
{
	char *text = h_slurp(d->config_path, NULL);
	ck_assert(text);
	return text;
}

/* The "reload history:" lines of a status answer, in order, into lines. */
static size_t history_lines(const char *status, char lines[][600], size_t max)
{
	size_t n = 0;
	for (const char *p = strstr(status, "reload history: "); p && n < max;
	     p = strstr(p + 1, "\nreload history: ")) {
		if (*p == '\n')
			p++;
		size_t len = strcspn(p, "\n");
		ck_assert_uint_lt(len, 600);
		memcpy(lines[n], p, len);
		lines[n][len] = '\0';
		n++;
	}
	return n;
}

/* The generation a "...ok: generation N serving (...)" line names, 0 if none. */
static unsigned line_generation(const char *line)
{
	const char *p = strstr(line, " ok: generation ");
	unsigned g = 0;
	return p && sscanf(p, " ok: generation %u serving", &g) == 1 ? g : 0;
}

static void status_serving(struct h_drover *d, char *out, size_t cap)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		h_ctl_ok(d, "status", out, cap);
		if (strstr(out, ", serving\n"))
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "never serving again: %.2500s", out);
		h_pause_ms(10);
	}
}

START_TEST(after_an_upgrade_status_shows_it_as_the_last_reload_and_keeps_the_history)
{
	char *cfg = echo_config(h_free_port(), "");
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	char out[8192], before[8192];
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 2 serving (reload)"), "%.2500s", out);
	/* A failed reload: its reason (spaces, ':', quotes) must come across whole. */
	char *good = config_now(d);
	char *bad = NULL;
	ck_assert(asprintf(&bad, "%sno_such_key = a;b,c%%d\n", good) > 0);
	h_config_replace(d, bad);
	free(bad);
	int fd = h_ctl_send(d, "reload");
	ssize_t n = h_read_all(fd, out, sizeof out);
	close(fd);
	ck_assert_msg(n > 0 && strncmp(out, "ERR failed: ", 12) == 0, "bad reload answered: %.2500s", n > 0 ? out : "");
	h_config_replace(d, good);
	free(good);
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 3 serving (reload)"), "%.2500s", out);
	h_ctl_ok(d, "status", before, sizeof before);
	char old[HISTORY_MAX][600];
	ck_assert_uint_eq(history_lines(before, old, HISTORY_MAX), 3);

	h_ctl_ok(d, "upgrade", out, sizeof out);
	ck_assert_msg(strstr(out, "OK ok: generation 4 serving (binary upgrade)"), "upgrade answered: %.2500s", out);
	status_serving(d, out, sizeof out);
	ck_assert_msg(strstr(out, "\nlast reload: ok: generation 4 serving (binary upgrade)\n"), "status: %.2500s", out);
	char now[HISTORY_MAX][600];
	ck_assert_uint_eq(history_lines(out, now, HISTORY_MAX), 4);
	ck_assert_msg(strstr(now[0], " ok: generation 4 serving (binary upgrade)"), "%s", now[0]);
	for (size_t i = 0; i < 3; i++)
		ck_assert_str_eq(now[i + 1], old[i]); /* time and text, as the old image had them */
	ck_assert_msg(strstr(now[2], "failed: ") && strstr(now[2], "no_such_key"), "%s", now[2]);

	/* Once more, and a reload after it: numbers only grow, none repeats. */
	h_ctl_ok(d, "upgrade", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 5 serving (binary upgrade)"), "upgrade answered: %.2500s", out);
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 6 serving (reload)"), "%.2500s", out);
	status_serving(d, out, sizeof out);
	ck_assert_msg(strncmp(out, "supervisor pid ", 15) == 0 && strstr(out, ", generation 6,"), "%.2500s", out);
	size_t k = history_lines(out, now, HISTORY_MAX);
	ck_assert_uint_eq(k, 6);
	unsigned last = UINT32_MAX, seen = 0;
	for (size_t i = 0; i < k; i++) {
		unsigned g = line_generation(now[i]);
		if (!g)
			continue; /* the failed reload started none */
		ck_assert_msg(g < last, "generation %u after %u: %.2500s", g, last, out);
		last = g;
		seen++;
	}
	ck_assert_uint_eq(seen, 5);
	ck_assert_uint_eq(last, 2);
	h_drover_kill(d, SIGTERM);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x; log:\n%.2500s", st, h_log_end(d));
	h_drover_free(d);
}
END_TEST

/* ------------------------------------ answers in flight at the execve */

static char *const no_argv[] = { "drover", NULL };

/* A supervisor whose trial just reported, holding one client whose
 * answer (len bytes) did not fit its socket; the client's end in *peer.
 * The installed binary does not exist: the execve fails and we go on. */
static struct loop *loop;
static struct supervisor_probe sup;

static char *flush_setup(size_t len, int *peer)
{
	sup = supervisor_test_setup("/nonexistent/drover", no_argv);
	loop = sup.loop;
	ck_assert(loop);
	struct admin *admin = sup.admin;
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	struct admin_client *c = NULL;
	ck_assert_int_eq(admin_client_add(admin, sv[0], &c), 0);
	char *text = malloc(len + 1);
	ck_assert(text);
	for (size_t i = 0; i < len; i++)
		text[i] = (char)('a' + i % 26);
	text[len - 1] = '\n';
	text[len] = '\0';
	admin_reply(admin, c, text);
	ck_assert_uint_eq(admin_answers_pending(admin), 1); /* the socket took only part of it */
	/* The trial reports ready and exits. */
	struct trial *t = &sup.upgrade->trial;
	t->phase = TRIAL_RUN;
	t->exe = "/nonexistent/drover";
	t->child = 424242;
	snprintf(t->out, sizeof(t->out), "ready\n");
	t->out_len = strlen(t->out);
	supervisor_test_child_exited(424242, 0);
	ck_assert(t->phase == TRIAL_IDLE);
	*peer = sv[1];
	return text;
}

static bool exec_attempted(void)
{
	return strstr(sup.history->last, "execve(/nonexistent/drover)") != NULL;
}

START_TEST(an_answer_written_in_part_is_finished_before_the_execve)
{
	size_t len = 128 * 1024;
	int peer;
	char *text = flush_setup(len, &peer);
	ck_assert(upgrade_busy(sup.upgrade)); /* writing the answers, then the execve */
	ck_assert(!exec_attempted());
	char *got = malloc(len);
	ck_assert(got);
	size_t have = 0;
	bool eof = false;
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (!eof) {
		ck_assert_msg(h_left_ms(deadline) > 0, "answer stalled at %zu of %zu bytes", have, len);
		/* Until the last byte is read, the execve has not been tried. */
		ck_assert_msg(!exec_attempted() || have == len, "executed with %zu of %zu bytes read", have, len);
		ssize_t n = read(peer, got + have, len - have);
		if (n > 0)
			have += (size_t)n;
		else if (n == 0)
			eof = true;
		else
			ck_assert_int_eq(errno, EAGAIN);
		h_loop_once(loop);
	}
	ck_assert_uint_eq(have, len);
	ck_assert(memcmp(got, text, len) == 0);
	/* The client's close ran the execve from the loop. */
	for (int i = 0; i < 3 && !exec_attempted(); i++)
		h_loop_once(loop);
	ck_assert_msg(exec_attempted(), "last reload: %s", sup.history->last);
	ck_assert(!upgrade_busy(sup.upgrade));
	free(got);
	free(text);
	close(peer);
	supervisor_test_teardown();
}
END_TEST

START_TEST(a_client_that_reads_nothing_holds_the_execve_only_until_the_deadline)
{
	int peer;
	char *text = flush_setup(128 * 1024, &peer);
	ck_assert(upgrade_busy(sup.upgrade)); /* writing the answers, then the execve */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (!exec_attempted()) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the execve waits for a client that never reads");
		h_loop_once(loop);
		h_pause_ms(10);
	}
	ck_assert(!upgrade_busy(sup.upgrade));
	free(text);
	close(peer);
	supervisor_test_teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("upgrade_history");
	TCase *tc = tcase_create("upgrade_history");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, after_an_upgrade_status_shows_it_as_the_last_reload_and_keeps_the_history);
	tcase_add_test(tc, an_answer_written_in_part_is_finished_before_the_execve);
	tcase_add_test(tc, a_client_that_reads_nothing_holds_the_execve_only_until_the_deadline);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
