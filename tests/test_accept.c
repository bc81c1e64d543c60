/* test_accept: how connections come in, against the real drover binary.
 *
 * [listener] defer_accept sets TCP_DEFER_ACCEPT on a socket drover binds,
 * and a socket from systemd may come with it (DeferAcceptSec=). Either
 * way the kernel hands a connection over only once its first bytes have
 * arrived, and the worker reads them at once, before the connection is in
 * epoll (loop_add_fd_ready). These tests show the option really reaches the
 * socket (a silent connection is not accepted, although it queued first)
 * and that every way a request can arrive on such a connection is served:
 * Connection: close, keep-alive, a head split over two writes, and a
 * connection that was silent for a while. And the packets of a
 * Connection: close exchange are as few as TCP allows. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_segs_in */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

struct srv {
	struct h_drover *d;
	char *tmp;
	char admin[600];
	int port;
};

enum how { BOUND_WITH_DEFER, INHERITED_WITH_DEFER, BOUND_WITHOUT };

static void srv_start(struct srv *s, enum how how)
{
	memset(s, 0, sizeof *s);
	s->tmp = h_tmpdir();
	ck_assert(chmod(s->tmp, 0755) == 0);
	char www[600];
	h_path_join(www, sizeof www, s->tmp, "www");
	ck_assert(mkdir(www, 0755) == 0);
	char p[700];
	h_path_join(p, sizeof p, www, "hello.txt");
	h_write_file(p, "hello\n");
	h_path_join(s->admin, sizeof s->admin, s->tmp, "admin.sock");
	struct h_activation fds[2];
	size_t n_fds = 0;
	char web[200];
	if (how == INHERITED_WITH_DEFER) {
		int fd = h_listen_tcp(&s->port);
		int secs = 5;
		ck_assert(setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) == 0);
		fds[n_fds++] = (struct h_activation){ "web", fd };
		snprintf(web, sizeof web, "[listener web]\nprotocol = http\n");
	} else {
		s->port = h_free_port();
		snprintf(web, sizeof web, "[listener web]\naddress = 127.0.0.1:%d\nprotocol = http\n%s", s->port,
			 how == BOUND_WITH_DEFER ? "defer_accept = 5s\n" : "");
	}
	fds[n_fds++] = (struct h_activation){ "admin", h_listen_unix(s->admin) };
	char cfg[2048];
	int n = snprintf(cfg, sizeof cfg,
			 "[server]\nworkers = 1\nshutdown_timeout = 10s\n\n%s\n"
			 "[listener admin]\nprotocol = http\nstatus = yes\n\n"
			 "[http]\nroot = %s\nmime_types = /etc/mime.types\nstatus_path = /status\naccess_log = off\n",
			 web, www);
	ck_assert(n > 0 && (size_t)n < sizeof cfg);
	struct h_opts o = { .notify = true, .fds = fds, .n_fds = n_fds };
	s->d = h_drover_start(cfg, &o);
}

static void srv_stop(struct srv *s)
{
	h_drover_free(s->d);
	h_rm_rf(s->tmp);
	free(s->tmp);
}

/* Connections the current generation's workers have accepted, on all
 * listeners (status JSON); a worker of an older one may still be listed. */
static unsigned long accepted(struct srv *s)
{
	int fd = h_connect_unix(s->admin);
	ck_assert(fd >= 0);
	const char *req = "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	h_write_all(fd, req, strlen(req));
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	close(fd);
	/* {"supervisor_pid":P,"generation":G,...,"workers":[{...,"generation":G,...,"accepted":N,...}]} */
	const char *g = strstr(r.body, "\"generation\":");
	ck_assert(g);
	unsigned long gen = strtoul(g + strlen("\"generation\":"), NULL, 10);
	unsigned long total = 0;
	for (const char *q = strstr(r.body, "{\"pid\":"); q; q = strstr(q + 1, "{\"pid\":")) {
		const char *wg = strstr(q, "\"generation\":"), *wa = strstr(q, "\"accepted\":");
		ck_assert(wg && wa);
		if (strtoul(wg + strlen("\"generation\":"), NULL, 10) == gen)
			total += strtoul(wa + strlen("\"accepted\":"), NULL, 10);
	}
	h_http_response_free(&r);
	return total;
}

static void expect_hello(int fd, bool closed_after)
{
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello\n");
	h_http_response_free(&r);
	if (closed_after) {
		char c;
		ck_assert_int_eq(h_read_all(fd, &c, 1), 0); /* FIN, no reset */
	}
}

static void send_str(int fd, const char *s)
{
	h_write_all(fd, s, strlen(s));
}

#define GET "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"

/* Every way a request arrives is served; the silent connection, queued
 * before the others, is accepted only once it speaks when defer is on,
 * and at once (FIFO accept queue) when it is off. */
static void check_served(enum how how)
{
	struct srv s;
	srv_start(&s, how);
	int silent = h_connect_tcp(s.port);
	ck_assert(silent >= 0);
	/* Connection: close: answered, then FIN. */
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	send_str(fd, GET "Connection: close\r\n\r\n");
	expect_hello(fd, true);
	close(fd);
	/* The close request's connection, and one per status request. */
	unsigned long a = accepted(&s);
	ck_assert_uint_eq(a, how == BOUND_WITHOUT ? 3 : 2);
	/* Keep-alive: the first request is read at accept, the others come
	 * through epoll. */
	fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	for (int i = 0; i < 3; i++) {
		send_str(fd, GET "\r\n");
		expect_hello(fd, false);
	}
	/* A head in two writes: the first part is what accept brings. */
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHo");
	h_pause_ms(50); /* two segments, not one */
	send_str(fd, "st: x\r\n\r\n");
	expect_hello(fd, false);
	close(fd);
	fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHo");
	h_pause_ms(50);
	send_str(fd, "st: x\r\nConnection: close\r\n\r\n");
	expect_hello(fd, true);
	close(fd);
	/* The silent connection speaks at last: served. */
	send_str(silent, GET "Connection: close\r\n\r\n");
	expect_hello(silent, true);
	close(silent);
	srv_stop(&s);
}

START_TEST(a_bound_listener_with_defer_accept_serves_every_request)
{
	check_served(BOUND_WITH_DEFER);
}
END_TEST

START_TEST(a_socket_from_systemd_with_defer_accept_serves_every_request)
{
	check_served(INHERITED_WITH_DEFER);
}
END_TEST

START_TEST(without_defer_accept_a_silent_connection_is_accepted_at_once)
{
	check_served(BOUND_WITHOUT);
}
END_TEST

/* A reload that turns defer_accept off applies it to the socket it keeps:
 * a silent connection is then accepted at once. */
START_TEST(a_reload_changes_defer_accept_on_the_kept_socket)
{
	struct srv s;
	srv_start(&s, BOUND_WITH_DEFER);
	int silent = h_connect_tcp(s.port);
	ck_assert(silent >= 0);
	ck_assert_uint_eq(accepted(&s), 1); /* only the status request */
	char *cfg = h_slurp(s.d->config_path, NULL);
	ck_assert(cfg);
	char *at = strstr(cfg, "defer_accept = 5s\n");
	ck_assert(at);
	memmove(at, at + strlen("defer_accept = 5s\n"), strlen(at + strlen("defer_accept = 5s\n")) + 1);
	h_config_replace(s.d, cfg);
	free(cfg);
	size_t from = s.d->notify_len;
	h_drover_kill(s.d, SIGHUP);
	ck_assert(h_notify_wait(s.d, "RELOADING=1", &from));
	ck_assert(h_notify_wait(s.d, "READY=1", &from));
	ck_assert(h_wait_workers(s.d, 1)); /* the old generation has left */
	/* Now a silent connection is accepted at once, ahead of a request. */
	unsigned long a0 = accepted(&s);
	int late = h_connect_tcp(s.port);
	ck_assert(late >= 0);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	send_str(fd, GET "Connection: close\r\n\r\n");
	expect_hello(fd, true);
	close(fd);
	ck_assert_uint_eq(accepted(&s) - a0, 3); /* late, the request, the status request */
	/* Queued before the reload and still deferred in the kernel: served
	 * once it speaks, and so is the late one. */
	send_str(silent, GET "Connection: close\r\n\r\n");
	expect_hello(silent, true);
	send_str(late, GET "Connection: close\r\n\r\n");
	expect_hello(late, true);
	close(silent);
	close(late);
	srv_stop(&s);
}
END_TEST

/* Segments the server sent on fd so far (TCP_INFO of the client side). */
static unsigned segs_in(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	ck_assert(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0);
	return ti.tcpi_segs_in;
}

/* One Connection: close exchange, counted from the client: the server
 * sends its SYN-ACK, then the response with the FIN in its last segment,
 * and no ACK of its own for the request (it rides in the response). So 2
 * segments, not 4. The request is sent only once the worker has the
 * connection (it leaves quick-ack mode at accept). A delayed-ACK timer
 * could still fire on a very slow machine, so one exchange in three must
 * show it. */
static unsigned close_exchange(struct srv *s)
{
	unsigned long a0 = accepted(s);
	int fd = h_connect_tcp(s->port);
	ck_assert(fd >= 0);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (accepted(s) < a0 + 2) { /* the status request, and fd */
		ck_assert_msg(h_left_ms(deadline) > 0, "the worker never accepted the connection");
		h_pause_ms(10);
	}
	send_str(fd, GET "Connection: close\r\n\r\n");
	expect_hello(fd, true);
	unsigned n = segs_in(fd);
	close(fd);
	return n;
}

START_TEST(a_connection_close_exchange_costs_the_server_two_segments)
{
	struct srv s;
	srv_start(&s, BOUND_WITHOUT);
	unsigned best = ~0u;
	for (int i = 0; i < 3 && best != 2; i++) {
		unsigned n = close_exchange(&s);
		if (n < best)
			best = n;
	}
	ck_assert_msg(best == 2, "the server sent %u segments (SYN-ACK, response + FIN: 2)", best);
	srv_stop(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("accept");
	TCase *tc = tcase_create("accept");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_bound_listener_with_defer_accept_serves_every_request);
	tcase_add_test(tc, a_socket_from_systemd_with_defer_accept_serves_every_request);
	tcase_add_test(tc, without_defer_accept_a_silent_connection_is_accepted_at_once);
	tcase_add_test(tc, a_reload_changes_defer_accept_on_the_kept_socket);
	tcase_add_test(tc, a_connection_close_exchange_costs_the_server_two_segments);
	suite_add_tcase(s, tc);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
