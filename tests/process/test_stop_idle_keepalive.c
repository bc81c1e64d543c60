/* test_stop_idle_keepalive: what a graceful stop does to idle keep-alive
 * connections, against the real drover binary. On a stop nobody serves after the
 * draining workers, so an idle keep-alive connection gets its FIN at once
 * (no grace for one more request, which is kept for reloads): a request
 * racing that FIN meets a clean EOF, never a reset, and the client re-sends
 * it (RFC 9112 §9.3.1) to whatever the socket unit starts next. Waits are
 * on log lines and on socket events, each bounded only to turn a hang into
 * a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define N_IDLE 20

static const char request[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

static struct h_drover *start(int *port)
{
	char *dir = h_tmpdir();
	char www[600], p[700], cfg[2048];
	snprintf(www, sizeof www, "%s/www", dir);
	ck_assert(mkdir(www, 0755) == 0);
	snprintf(p, sizeof p, "%s/index.html", www);
	h_write_file(p, "<p>home</p>\n");
	int fd = h_listen_tcp(port);
	struct h_activation act[1] = { { "web", fd } };
	/* keepalive_timeout far beyond the test: only the stop closes them. */
	snprintf(cfg, sizeof cfg,
		 "[server]\nworkers = 1\nshutdown_timeout = 20s\nlog_level = info\n\n"
		 "[listener web]\nprotocol = http\n\n[http]\nroot = %s\nkeepalive_timeout = 300s\n",
		 www);
	struct h_opts o = { .notify = true, .fds = act, .n_fds = 1 };
	struct h_drover *d = h_drover_start(cfg, &o);
	close(fd); /* drover's copies are the only ones now, as without systemd */
	free(dir);
	return d;
}

/* A keep-alive connection that has had one answer and is idle now. */
static int idle_keepalive(int port)
{
	int fd = h_connect_tcp(port);
	ck_assert_int_ge(fd, 0);
	h_write_all(fd, request, sizeof request - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	return fd;
}

START_TEST(a_stop_closes_idle_keepalives_at_once_and_a_late_request_sees_eof_not_a_reset)
{
	int port;
	struct h_drover *d = start(&port);
	int fds[N_IDLE];
	for (int i = 0; i < N_IDLE; i++)
		fds[i] = idle_keepalive(port);
	h_drover_kill(d, SIGTERM);
	/* Logged once every connection has been told to drain. */
	ck_assert_msg(h_log_wait(d, "connection(s) for a stop"), "%s", h_log_end(d));
	for (int i = 0; i < N_IDLE; i++) {
		/* The request that races the FIN: not answered, and no reset
		 * (the worker discards it while it lingers). */
		ssize_t w = send(fds[i], request, sizeof request - 1, MSG_NOSIGNAL);
		ck_assert_msg(w == (ssize_t)(sizeof request - 1), "send: %s", strerror(errno));
		char buf[4096];
		ssize_t n = h_read_all(fds[i], buf, sizeof buf);
		ck_assert_msg(n == 0, "connection %d: expected a clean EOF, got %zd bytes (%s)", i, n,
			      n > 0 ? buf : "error");
		close(fds[i]);
	}
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d\n%s", st, h_log_end(d));
	h_drover_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stop");
	TCase *tc = tcase_create("stop");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_stop_closes_idle_keepalives_at_once_and_a_late_request_sees_eof_not_a_reset);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
