/* test_defer_accept: how connections come in, against the real drover binary.
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
#include <errno.h>
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

enum how { BOUND_WITH_DEFER, INHERITED_WITH_DEFER, BOUND_WITHOUT };

static void srv_start(struct h_site *s, enum how how)
{
	h_site_init(s);
	h_site_file(s, "hello.txt", "hello\n");
	int web_fd = 0;
	char web[200] = "";
	if (how == INHERITED_WITH_DEFER) {
		web_fd = h_listen_tcp(&s->port);
		int secs = 5;
		ck_assert(setsockopt(web_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs) == 0);
	} else {
		web_fd = -1;
		s->port = h_free_port();
		snprintf(web, sizeof web, "address = 127.0.0.1:%d\n%s", s->port,
			 how == BOUND_WITH_DEFER ? "defer_accept = 5s\n" : "");
	}
	h_site_start(s, &(struct h_site_opts){
		.server = "shutdown_timeout = 10s\n", .web = web, .web_fd = web_fd, .admin = true,
		.http = "mime_types = /etc/mime.types\nstatus_path = /status\naccess_log = off\n" });
}

#define STATUS_REQ "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

/* The sum of a counter ("accepted", "bytes_in") over the current
 * generation's workers, from the status JSON (a worker of an older one may
 * still be listed). The status request itself counts: it is accepted and
 * read before the answer is made. */
static unsigned long counter(struct h_site *s, const char *name)
{
	int fd = h_connect_unix(s->admin);
	ck_assert(fd >= 0);
	h_write_all(fd, STATUS_REQ, strlen(STATUS_REQ));
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	close(fd);
	/* {"supervisor_pid":P,"generation":G,...,"workers":[{...,"generation":G,...,"accepted":N,...}]} */
	char key[64];
	snprintf(key, sizeof key, "\"%s\":", name);
	const char *g = strstr(r.body, "\"generation\":");
	ck_assert(g);
	unsigned long gen = strtoul(g + strlen("\"generation\":"), NULL, 10);
	unsigned long total = 0;
	for (const char *q = strstr(r.body, "{\"pid\":"); q; q = strstr(q + 1, "{\"pid\":")) {
		const char *wg = strstr(q, "\"generation\":"), *wv = strstr(q, key);
		ck_assert(wg && wv);
		if (strtoul(wg + strlen("\"generation\":"), NULL, 10) == gen)
			total += strtoul(wv + strlen(key), NULL, 10);
	}
	h_http_response_free(&r);
	return total;
}

static unsigned long accepted(struct h_site *s)
{
	return counter(s, "accepted");
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
	struct h_site s;
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
	h_site_stop(&s);
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
/* The listener's config with defer_accept removed, and extra appended. */
static void reload_without_defer(struct h_site *s, const char *extra)
{
	char *cfg = h_slurp(s->d->config_path, NULL);
	ck_assert(cfg);
	const char *line = "defer_accept = 5s\n";
	char *at = strstr(cfg, line);
	ck_assert(at);
	memmove(at, at + strlen(line), strlen(at + strlen(line)) + 1);
	size_t n = strlen(cfg) + strlen(extra) + 1;
	char *text = malloc(n);
	ck_assert(text);
	snprintf(text, n, "%s%s", cfg, extra);
	h_config_replace(s->d, text);
	free(text);
	free(cfg);
	h_drover_kill(s->d, SIGHUP);
}

/* Whether a silent connection made now is accepted ahead of a request on
 * another one (defer_accept off), as the count of accepted connections
 * tells: 3 more (it, the request, the status request) or 2. */
static bool silent_is_accepted(struct h_site *s)
{
	unsigned long a0 = accepted(s);
	int silent = h_connect_tcp(s->port);
	ck_assert(silent >= 0);
	int fd = h_connect_tcp(s->port);
	ck_assert(fd >= 0);
	send_str(fd, GET "Connection: close\r\n\r\n");
	expect_hello(fd, true);
	close(fd);
	unsigned long d = accepted(s) - a0;
	ck_assert_msg(d == 2 || d == 3, "%lu more connections accepted", d);
	close(silent);
	return d == 3;
}

/* A reload that turns defer_accept off applies it to the socket it keeps. */
START_TEST(a_reload_changes_defer_accept_on_the_kept_socket)
{
	struct h_site s;
	srv_start(&s, BOUND_WITH_DEFER);
	ck_assert(!silent_is_accepted(&s));
	size_t from = s.d->notify_len;
	reload_without_defer(&s, "");
	ck_assert(h_notify_wait(s.d, "RELOADING=1", &from));
	ck_assert(h_notify_wait(s.d, "READY=1", &from));
	ck_assert(h_wait_workers(s.d, 1)); /* the old generation has left */
	ck_assert(silent_is_accepted(&s));
	h_site_stop(&s);
}
END_TEST

/* A reload that fails (here a second listener on a port in use) leaves
 * defer_accept on the socket it would have kept as it was. */
START_TEST(a_failed_reload_leaves_defer_accept_as_it_was)
{
	struct h_site s;
	srv_start(&s, BOUND_WITH_DEFER);
	int busy_port;
	int busy = h_listen_tcp(&busy_port);
	char extra[200];
	snprintf(extra, sizeof extra, "\n[listener more]\naddress = 127.0.0.1:%d\nprotocol = http\n", busy_port);
	reload_without_defer(&s, extra);
	ck_assert(h_log_wait(s.d, "reload failed"));
	ck_assert(!silent_is_accepted(&s));
	close(busy);
	h_site_stop(&s);
}
END_TEST

/* A client connected and accepted by the (single) worker. */
static int connect_accepted(struct h_site *s)
{
	unsigned long a0 = accepted(s);
	int fd = h_connect_tcp(s->port);
	ck_assert(fd >= 0);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (accepted(s) < a0 + 2) { /* the status request, and fd */
		ck_assert_msg(h_left_ms(deadline) > 0, "the worker never accepted the connection");
		h_pause_ms(10);
	}
	return fd;
}

/* Whether the worker's end of the client socket fd is in quick-ack mode:
 * what getsockopt(TCP_QUICKACK) would say on it, read where any process
 * may read it, the kernel's table of this network namespace's TCP sockets
 * (/proc/net/tcp; no copy of the worker's fd, so no ptrace rights). Its
 * line is the one from the listener's port to the client's; its 15th
 * field is (quick-ack count << 1 | pingpong), and TCP_QUICKACK reads as
 * !pingpong. */
static int worker_quickack(struct h_site *s, int client)
{
	struct sockaddr_in me;
	socklen_t len = sizeof me;
	ck_assert(getsockname(client, (struct sockaddr *)&me, &len) == 0);
	char local[32], remote[32];
	snprintf(local, sizeof local, "0100007F:%04X", (unsigned)s->port);
	snprintf(remote, sizeof remote, "0100007F:%04X", (unsigned)ntohs(me.sin_port));
	FILE *f = fopen("/proc/net/tcp", "re");
	ck_assert_msg(f != NULL, "/proc/net/tcp: %s", strerror(errno));
	char line[512];
	int found = -1;
	while (found < 0 && fgets(line, sizeof line, f)) {
		char l[32], r[32], st[8];
		unsigned flags;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref
		 * pointer rto ato quick<<1|pingpong */
		if (sscanf(line, " %*s %31s %31s %7s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %u", l, r, st,
			   &flags) == 4 &&
		    strcmp(l, local) == 0 && strcmp(r, remote) == 0 && strcmp(st, "01") == 0)
			found = !(flags & 1);
	}
	fclose(f);
	ck_assert_msg(found >= 0, "no established socket from port %d to the client's %s in /proc/net/tcp", s->port,
		      remote);
	return found;
}

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
static unsigned close_exchange(struct h_site *s)
{
	int fd = connect_accepted(s);
	send_str(fd, GET "Connection: close\r\n\r\n");
	expect_hello(fd, true);
	unsigned n = segs_in(fd);
	close(fd);
	return n;
}

START_TEST(a_connection_close_exchange_costs_the_server_two_segments)
{
	struct h_site s;
	srv_start(&s, BOUND_WITHOUT);
	unsigned best = ~0u;
	for (int i = 0; i < 3 && best != 2; i++) {
		unsigned n = close_exchange(&s);
		if (n < best)
			best = n;
	}
	ck_assert_msg(best == 2, "the server sent %u segments (SYN-ACK, response + FIN: 2)", best);
	h_site_stop(&s);
}
END_TEST

/* Delayed ACKs from accept on (the request's ACK rides in the response),
 * and still on after whole requests; but as soon as the worker has read
 * part of a head it acknowledges at once again, or a client with Nagle on
 * would hold the rest of its request for the 40 ms of a delayed ACK. The
 * worker reads the part and switches in the same step, so once the status
 * page counts the part's bytes the switch has happened. */
START_TEST(a_request_that_comes_in_parts_is_acknowledged_at_once)
{
	struct h_site s;
	srv_start(&s, BOUND_WITHOUT);
	int fd = connect_accepted(&s);
	ck_assert_int_eq(worker_quickack(&s, fd), 0);
	send_str(fd, GET "\r\n");
	expect_hello(fd, false);
	ck_assert_int_eq(worker_quickack(&s, fd), 0); /* whole requests: no change */
	unsigned long b0 = counter(&s, "bytes_in");
	const char *part = "GET /hello.txt HTTP/1.1\r\nHo";
	send_str(fd, part);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (unsigned long k = 1;; k++) { /* each status request adds its own bytes */
		unsigned long b = counter(&s, "bytes_in");
		if (b - b0 - k * strlen(STATUS_REQ) >= strlen(part))
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "the worker never read the first part");
		h_pause_ms(10);
	}
	ck_assert_int_eq(worker_quickack(&s, fd), 1);
	send_str(fd, "st: x\r\nConnection: close\r\n\r\n");
	expect_hello(fd, true);
	close(fd);
	h_site_stop(&s);
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
	tcase_add_test(tc, a_failed_reload_leaves_defer_accept_as_it_was);
	tcase_add_test(tc, a_connection_close_exchange_costs_the_server_two_segments);
	tcase_add_test(tc, a_request_that_comes_in_parts_is_acknowledged_at_once);
	suite_add_tcase(s, tc);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
