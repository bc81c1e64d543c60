/* test_http_conn: the HTTP/1.1 connection state machine (src/proto/http
 * conn.c, with idle.c's two forms and worker/conn.c's closes) over the
 * in-memory transport: no daemon, no socket. The whole protocol runs as in
 * a worker (proto_http.init, .reserve, .accept, a real loop and connection
 * set); the test plays the client and delivers the loop's events by hand
 * (loop_dispatch), and runs the loop only to let timeouts expire.
 *
 * What it pins down: a keep-alive request and the idle form; pipelined
 * requests answered in order in one write; partial writes and the events
 * watched meanwhile; TCP_NODELAY only when a write can be delayed by
 * Nagle, quick ACKs back on when a request comes in parts; a file body
 * after its header block (more-to-come), a wake-up at a time; the header,
 * keep-alive and send timeouts; drain (a request already sent is answered
 * with Connection: close; an idle connection closes at a stop); the
 * lingering close (FIN, discard, close at the client's EOF or the linger
 * timeout); a half-closed client; and a transport that must write to read
 * or read to write (want-read / want-write). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "proto/http/http.h"
#include "proto/protocols.h"
#include "worker/conn.h"
#include "worker/proto.h"

#include "harness.h"
#include "transport_mem.h"

#define BIG_SIZE (1300 * 1024) /* more than two sendfile shares of a wake-up */

static char *dir;
static struct config *cfg;
static struct loop *loop;
static struct conn_set set;
static struct scoreboard_slot slot;
static bool draining, stopping;
static unsigned requests_done;
static struct proto_env env;
static struct worker_listener web;

static void count_request(const struct proto_env *e)
{
	(void)e;
	requests_done++;
}

static void write_big_file(const char *path)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < BIG_SIZE; i++)
		fputc('a' + (int)(i % 23), f);
	ck_assert_int_eq(fclose(f), 0);
}

static void stop_loop(struct loop *l, struct loop_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	loop_stop(l);
}

/* Let ms of real time pass in the loop: timers fire, nothing else does
 * (no fd of the test is ever ready). */
static void run_ms(uint64_t ms)
{
	struct loop_timer t;
	loop_timer_init(&t, stop_loop, NULL);
	loop_timer_arm_at(loop, &t, loop_clock_ms() + ms);
	ck_assert_int_eq(loop_run(loop), 0);
	loop_timer_cancel(loop, &t);
}

static struct proto_fileset files; /* the access log, when a test has one */
static char log_path[600];

#define HTTP_TIMEOUTS "header_timeout = 60ms\nkeepalive_timeout = 60ms\nsend_timeout = 60ms\n"

/* The worker as the supervisor would start it, with these [http] keys
 * (the timeouts among them); with an access log file when log is set. */
static void setup_with(const char *http_keys, bool log)
{
	dir = h_tmpdir();
	char path[512], text[2048];
	snprintf(path, sizeof(path), "%s/www", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/www/a.txt", dir);
	h_write_file(path, "alpha\n");
	snprintf(path, sizeof(path), "%s/www/b.txt", dir);
	h_write_file(path, "bravo\n");
	snprintf(path, sizeof(path), "%s/www/c.txt", dir);
	h_write_file(path, "charlie\n");
	snprintf(path, sizeof(path), "%s/www/big.bin", dir);
	write_big_file(path);
	snprintf(log_path, sizeof(log_path), "%s/access.log", dir);
	snprintf(text, sizeof(text),
		 "[server]\nlingering_timeout = 400ms\n"
		 "[listener web]\naddress = 127.0.0.1:8080\n"
		 "[http]\nroot = %s/www\naccess_log = %s\n%s",
		 dir, log ? log_path : "off", http_keys);
	snprintf(path, sizeof(path), "%s/drover.ini", dir);
	h_write_file(path, text);
	proto_register(protocols);
	char err[1024];
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);

	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	memset(&slot, 0, sizeof(slot));
	conn_set_init(&set, NULL, NULL, NULL, &slot);
	draining = stopping = false;
	requests_done = 0;
	files = (struct proto_fileset){ .n = 0 };
	if (log) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		ck_assert_int_ge(fd, 0);
		files = (struct proto_fileset){ .n = 1, .f = { { .proto = &proto_http, .index = 0, .fd = fd } } };
	}
	env = (struct proto_env){ .loop = loop, .cfg = cfg, .slot = &slot, .conns = &set,
				  .draining = &draining, .stopping = &stopping, .request_done = count_request,
				  .files = &files };
	web = (struct worker_listener){ .fd = -1, .name = "web", .proto = &proto_http, .transport = &transport_mem };
	ck_assert_int_eq(proto_http.init(&env), 0);
	run_ms(0); /* the loop's clock is now, not the start of the set-up */
}

static void setup(void)
{
	setup_with(HTTP_TIMEOUTS, false);
}

static void teardown(void)
{
	conn_set_close_all(&set);
	proto_http.done();
	if (files.n)
		close(files.f[0].fd);
	loop_free(loop);
	config_free(cfg);
	h_rm_rf(dir);
	free(dir);
}

/* A client connects (over TCP, as far as the connection can tell). */
static void client_connect(struct tmem *m)
{
	tmem_init(m);
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(proto_http.reserve(&env), 0);
	ck_assert_int_eq(proto_http.accept(&env, &web, m->fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
}

/* The client (a test's local) goes: whatever connection is still open is
 * closed first, so nothing (teardown's close-all) reaches it afterwards. */
static void client_free(struct tmem *m)
{
	conn_set_close_all(&set);
	tmem_free(m);
}

/* The loop reports events on m's connection. */
static void event(struct tmem *m, unsigned events)
{
	ck_assert_int_ge(m->fd, 0);
	ck_assert_int_eq(loop_dispatch(loop, m->fd, events), 0);
}

/* The client sends s, and the connection hears of it. */
static void client_send(struct tmem *m, const char *s)
{
	tmem_push_str(m, s);
	event(m, LOOP_READ);
}

/* The events the connection watches. */
static unsigned watched(const struct tmem *m)
{
	return loop_fd_mask(loop, m->fd);
}

/* How many times needle occurs in hay. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ------------------------------------------------------------ requests */

START_TEST(a_keep_alive_request_is_answered_and_the_connection_waits_for_the_next)
{
	struct tmem m;
	client_connect(&m);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	client_send(&m, GET("/a.txt"));
	const char *o = tmem_out(&m);
	ck_assert_msg(strncmp(o, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", o);
	ck_assert_ptr_nonnull(strstr(o, "\r\n\r\nalpha\n"));
	ck_assert_ptr_null(strstr(o, "Connection: close"));
	ck_assert_uint_eq(m.writes, 1); /* head and body together */
	ck_assert_uint_eq(requests_done, 1);
	ck_assert(!m.closed && !m.shut);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	/* A small answer never needs TCP_NODELAY. */
	ck_assert_uint_eq(m.nodelay, 0);
	tmem_out_clear(&m);
	client_send(&m, GET("/b.txt"));
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "\r\n\r\nbravo\n"));
	ck_assert_uint_eq(requests_done, 2);
	client_free(&m);
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_order_in_one_write)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, GET("/a.txt") GET("/b.txt") GET("/c.txt"));
	const char *o = tmem_out(&m);
	ck_assert_int_eq(count_of(o, "HTTP/1.1 200 OK\r\n"), 3);
	const char *a = strstr(o, "alpha\n"), *b = strstr(o, "bravo\n"), *c = strstr(o, "charlie\n");
	ck_assert(a && b && c && a < b && b < c);
	ck_assert_uint_eq(m.writes, 1);
	ck_assert_uint_eq(requests_done, 3);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	client_free(&m);
}
END_TEST

START_TEST(a_partial_write_waits_for_room_and_keeps_the_next_request)
{
	struct tmem m;
	client_connect(&m);
	m.room = 40;
	client_send(&m, GET("/a.txt"));
	ck_assert_uint_eq(m.out_len, 40);
	/* Waiting to write, and still reading (a pipelined request). */
	ck_assert_uint_eq(watched(&m), LOOP_READ | LOOP_WRITE);
	/* What follows a write the socket did not take whole may wait for
	 * an ACK behind Nagle: TCP_NODELAY, once. */
	ck_assert_uint_eq(m.nodelay, 1);
	ck_assert_uint_eq(requests_done, 0);
	/* The next request is read and kept until the answer is out. */
	client_send(&m, GET("/b.txt"));
	ck_assert_uint_eq(m.in_off, m.in_len);
	ck_assert_uint_eq(m.out_len, 40);
	ck_assert_uint_eq(requests_done, 0);
	m.room = 25;
	event(&m, LOOP_WRITE);
	ck_assert_uint_eq(m.out_len, 65);
	ck_assert_uint_eq(watched(&m), LOOP_READ | LOOP_WRITE);
	m.room = TMEM_UNLIMITED;
	event(&m, LOOP_WRITE);
	const char *o = tmem_out(&m);
	ck_assert_int_eq(count_of(o, "HTTP/1.1 200 OK\r\n"), 2);
	const char *a = strstr(o, "alpha\n"), *b = strstr(o, "bravo\n");
	ck_assert(a && b && a < b);
	ck_assert_uint_eq(requests_done, 2);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	ck_assert_uint_eq(m.nodelay, 1);
	client_free(&m);
}
END_TEST

START_TEST(a_file_body_follows_its_header_block_a_share_per_wake_up)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, GET("/big.bin"));
	/* The header block went first, marked more-to-come so the kernel
	 * packs it with the file's first bytes. */
	ck_assert_uint_eq(m.writes, 1);
	ck_assert_uint_eq(m.more_writes, 1);
	ck_assert_uint_ge(m.sendfiles, 1);
	ck_assert_uint_ge(m.nodelay, 1);
	/* One wake-up sends a share, then asks to be called again. */
	ck_assert_uint_lt(m.out_len, BIG_SIZE);
	ck_assert_uint_eq(watched(&m), LOOP_READ | LOOP_WRITE);
	for (int i = 0; i < 10 && (watched(&m) & LOOP_WRITE); i++)
		event(&m, LOOP_WRITE);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	const char *o = tmem_out(&m);
	const char *body = strstr(o, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Length: 1331200\r\n"));
	ck_assert_uint_eq(m.out_len - (size_t)(body - o), BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i += 4099)
		ck_assert_int_eq(body[i], 'a' + (int)(i % 23));
	ck_assert_uint_eq(requests_done, 1);
	client_free(&m);
}
END_TEST

START_TEST(a_request_that_asks_for_close_ends_with_fin_on_its_last_write)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, "GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	const char *o = tmem_out(&m);
	ck_assert_ptr_nonnull(strstr(o, "\r\nConnection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(o, "alpha\n"));
	/* The last write is held for the close's FIN to share its segment. */
	ck_assert(m.last_flags & TRANSPORT_MORE);
	/* The client asked and sent nothing more: a plain close. */
	ck_assert(m.closed);
	ck_assert(!m.shut);
	client_free(&m);
}
END_TEST

START_TEST(a_half_closed_client_still_gets_its_answer)
{
	struct tmem m;
	client_connect(&m);
	tmem_push_str(&m, GET("/a.txt"));
	m.in_eof = true;
	event(&m, LOOP_READ);
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(requests_done, 1);
	event(&m, LOOP_READ); /* the end of stream */
	ck_assert(m.closed);
	client_free(&m);
}
END_TEST

START_TEST(a_request_in_parts_turns_quick_acks_back_on)
{
	struct tmem m;
	client_connect(&m);
	/* A new TCP connection leaves quick-ack mode at once. */
	ck_assert_uint_eq(m.acks_delayed, 1);
	client_send(&m, "GET /a.txt HTTP/1.1\r\n");
	ck_assert_uint_eq(m.acks_now, 1);
	ck_assert_uint_eq(m.out_len, 0);
	client_send(&m, "Host: t\r\n\r\n");
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(m.acks_now, 1);
	client_free(&m);
}
END_TEST

START_TEST(a_data_first_connection_is_served_in_the_round_of_its_accept)
{
	struct tmem m;
	web.data_first = true;
	tmem_init(&m);
	tmem_push_str(&m, GET("/a.txt"));
	struct sockaddr_in peer = { .sin_family = AF_INET };
	ck_assert_int_eq(proto_http.reserve(&env), 0);
	ck_assert_int_eq(proto_http.accept(&env, &web, m.fd, (struct sockaddr *)&peer, sizeof(peer)), 0);
	ck_assert_uint_eq(m.out_len, 0);
	run_ms(0); /* no event: the loop reads it at the end of the round */
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(m.acks_delayed, 0); /* its request was acknowledged already */
	client_free(&m);
}
END_TEST

/* ------------------------------------------------------------ timeouts */

START_TEST(a_fresh_connection_that_sends_nothing_is_closed_at_header_timeout)
{
	struct tmem m;
	client_connect(&m);
	run_ms(120);
	ck_assert(m.closed);
	ck_assert(!m.shut); /* no request could race: no FIN first */
	ck_assert_uint_eq(m.out_len, 0);
	client_free(&m);
}
END_TEST

START_TEST(a_slow_head_gets_408_and_a_lingering_close)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, "GET /a.txt HTTP/1.1\r\nHost: t\r\n");
	run_ms(120);
	const char *o = tmem_out(&m);
	ck_assert_msg(strncmp(o, "HTTP/1.1 408 ", 13) == 0, "%s", o);
	ck_assert_ptr_nonnull(strstr(o, "\r\nConnection: close\r\n"));
	/* FIN after the answer; the client's bytes are then read and dropped
	 * until its EOF, so the answer is not destroyed by a reset. */
	ck_assert(m.shut);
	ck_assert_uint_eq(m.out_at_shut, m.out_len);
	ck_assert(!m.closed);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	tmem_push_str(&m, "Accept: */*\r\n");
	event(&m, LOOP_READ);
	ck_assert(!m.closed);
	ck_assert_uint_eq(m.in_off, m.in_len); /* discarded */
	m.in_eof = true;
	event(&m, LOOP_READ);
	ck_assert(m.closed);
	client_free(&m);
}
END_TEST

START_TEST(a_keep_alive_connection_closes_lingering_at_keepalive_timeout)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, GET("/a.txt"));
	run_ms(100);
	/* After a response a request may race with the close: FIN first. */
	ck_assert(m.shut);
	ck_assert(!m.closed);
	/* A client that never closes is closed at lingering_timeout. */
	run_ms(500);
	ck_assert(m.closed);
	client_free(&m);
}
END_TEST

START_TEST(a_client_that_reads_nothing_is_dropped_at_send_timeout)
{
	struct tmem m;
	client_connect(&m);
	m.room = 0;
	client_send(&m, GET("/a.txt"));
	ck_assert_uint_eq(m.out_len, 0);
	ck_assert(watched(&m) & LOOP_WRITE);
	run_ms(120);
	ck_assert(m.closed);
	ck_assert(!m.shut);
	client_free(&m);
}
END_TEST

/* ------------------------------------------------------------ drain */

START_TEST(a_drain_answers_a_request_already_sent_with_connection_close)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, GET("/a.txt"));
	tmem_out_clear(&m);
	/* The next request is in the "socket", not read yet. */
	tmem_push_str(&m, GET("/b.txt"));
	draining = true;
	conn_set_drain_all(&set);
	const char *o = tmem_out(&m);
	ck_assert_ptr_nonnull(strstr(o, "bravo\n"));
	ck_assert_ptr_nonnull(strstr(o, "\r\nConnection: close\r\n"));
	ck_assert(m.shut);
	ck_assert_uint_eq(requests_done, 2);
	client_free(&m);
}
END_TEST

START_TEST(a_stop_closes_an_idle_keep_alive_connection_at_once_with_fin)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, GET("/a.txt"));
	tmem_out_clear(&m);
	draining = stopping = true;
	conn_set_drain_all(&set);
	ck_assert(m.shut);
	ck_assert_uint_eq(m.out_len, 0);
	m.in_eof = true;
	event(&m, LOOP_READ);
	ck_assert(m.closed);
	client_free(&m);
}
END_TEST

START_TEST(a_stop_lets_a_response_in_flight_finish_then_closes_with_fin)
{
	struct tmem m;
	client_connect(&m);
	m.room = 30;
	client_send(&m, GET("/a.txt"));
	draining = stopping = true;
	conn_set_drain_all(&set);
	ck_assert(!m.shut && !m.closed);
	m.room = TMEM_UNLIMITED;
	event(&m, LOOP_WRITE);
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(requests_done, 1);
	ck_assert(m.shut);
	ck_assert_uint_eq(m.out_at_shut, m.out_len);
	client_free(&m);
}
END_TEST

/* ------------------------------------------------------------ want-read / want-write */

START_TEST(a_read_that_must_write_first_watches_for_writable)
{
	struct tmem m;
	client_connect(&m);
	m.read_waits_writable = true;
	client_send(&m, GET("/a.txt"));
	ck_assert_uint_eq(m.out_len, 0);
	ck_assert_uint_eq(watched(&m), LOOP_WRITE);
	event(&m, LOOP_WRITE); /* writable: the read goes on */
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	client_free(&m);
}
END_TEST

START_TEST(a_write_that_must_read_first_watches_for_readable)
{
	struct tmem m;
	client_connect(&m);
	m.write_waits_readable = true;
	client_send(&m, GET("/a.txt"));
	ck_assert_uint_eq(m.out_len, 0);
	/* Not writable: readable, which reading wants as well. */
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	event(&m, LOOP_READ); /* readable: the write goes on */
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "alpha\n"));
	ck_assert_uint_eq(requests_done, 1);
	ck_assert_uint_eq(watched(&m), LOOP_READ);
	client_free(&m);
}
END_TEST

/* ------------------------------------------------------------ TLS, as HTTP sees it */

/* HSTS on, the extended access log; timeouts long enough that a request
 * sent in two parts some milliseconds apart is never a 408. */
static void setup_tls_log(void)
{
	setup_with("header_timeout = 5s\nkeepalive_timeout = 5s\nsend_timeout = 5s\n"
		   "hsts = 1d\nhsts_include_subdomains = yes\naccess_log_format = extended\n",
		   true);
}

/* The access log so far. */
static const char *log_text(void)
{
	static char text[8192];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	text[n] = '\0';
	return text;
}

/* Whether line (one of the log) matches the extended regex re. */
static bool log_matches(const char *text, const char *re)
{
	regex_t rx;
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
	bool ok = regexec(&rx, text, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

#define HSTS_LINE "\r\nStrict-Transport-Security: max-age=86400; includeSubDomains\r\n"

START_TEST(hsts_and_the_tls_version_only_over_tls)
{
	struct tmem m;
	client_connect(&m);
	m.security = "TLSv1.3"; /* the handshake is done: the transport says so */
	client_send(&m, GET("/a.txt"));
	const char *o = tmem_out(&m);
	ck_assert_msg(strncmp(o, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", o);
	ck_assert_ptr_nonnull(strstr(o, HSTS_LINE));
	ck_assert_ptr_nonnull(strstr(o, "\r\n\r\nalpha\n"));
	tmem_out_clear(&m);
	client_send(&m, GET("/nothing-here")); /* errors too */
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "HTTP/1.1 404 "));
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), HSTS_LINE));
	client_free(&m);

	struct tmem p;
	client_connect(&p); /* a plain socket */
	client_send(&p, GET("/b.txt"));
	ck_assert_ptr_nonnull(strstr(tmem_out(&p), "\r\n\r\nbravo\n"));
	ck_assert_ptr_null(strstr(tmem_out(&p), "Strict-Transport-Security"));
	client_free(&p);

	/* The combined line, then the request time and the TLS version. */
	const char *log = log_text();
	ck_assert_msg(log_matches(log, "^127\\.0\\.0\\.1 - - \\[[^]]+\\] \"GET /a\\.txt HTTP/1\\.1\" 200 6 "
				       "\"-\" \"-\" [0-9]+\\.[0-9]{3} TLSv1\\.3$"), "%s", log);
	ck_assert_msg(log_matches(log, "\"GET /nothing-here HTTP/1\\.1\" 404 [0-9]+ \"-\" \"-\" "
				       "[0-9]+\\.[0-9]{3} TLSv1\\.3$"), "%s", log);
	ck_assert_msg(log_matches(log, "\"GET /b\\.txt HTTP/1\\.1\" 200 6 \"-\" \"-\" [0-9]+\\.[0-9]{3} -$"),
		      "%s", log);
}
END_TEST

START_TEST(the_request_time_runs_from_the_first_bytes_of_the_request)
{
	struct tmem m;
	client_connect(&m);
	client_send(&m, "GET /c.txt HTTP/1.1\r\n");
	run_ms(40);
	client_send(&m, "Host: t\r\nUser-Agent: slow/1\r\n\r\n");
	ck_assert_ptr_nonnull(strstr(tmem_out(&m), "\r\n\r\ncharlie\n"));
	client_free(&m);
	const char *log = log_text();
	ck_assert_msg(log_matches(log, "\"GET /c\\.txt HTTP/1\\.1\" 200 8 \"-\" \"slow/1\" [0-9]+\\.[0-9]{3} -$"),
		      "%s", log);
	const char *t = strstr(log, "\"slow/1\" ");
	ck_assert_ptr_nonnull(t);
	double secs = strtod(t + 10, NULL);
	ck_assert_msg(secs >= 0.040 && secs < 5.0, "request time %.3f", secs);
}
END_TEST

static Suite *http_conn_suite(void)
{
	Suite *s = suite_create("http_conn");
	TCase *tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_keep_alive_request_is_answered_and_the_connection_waits_for_the_next);
	tcase_add_test(tc, pipelined_requests_are_answered_in_order_in_one_write);
	tcase_add_test(tc, a_partial_write_waits_for_room_and_keeps_the_next_request);
	tcase_add_test(tc, a_file_body_follows_its_header_block_a_share_per_wake_up);
	tcase_add_test(tc, a_request_that_asks_for_close_ends_with_fin_on_its_last_write);
	tcase_add_test(tc, a_half_closed_client_still_gets_its_answer);
	tcase_add_test(tc, a_request_in_parts_turns_quick_acks_back_on);
	tcase_add_test(tc, a_data_first_connection_is_served_in_the_round_of_its_accept);
	suite_add_tcase(s, tc);
	tc = tcase_create("timeouts");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_fresh_connection_that_sends_nothing_is_closed_at_header_timeout);
	tcase_add_test(tc, a_slow_head_gets_408_and_a_lingering_close);
	tcase_add_test(tc, a_keep_alive_connection_closes_lingering_at_keepalive_timeout);
	tcase_add_test(tc, a_client_that_reads_nothing_is_dropped_at_send_timeout);
	suite_add_tcase(s, tc);
	tc = tcase_create("drain");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_drain_answers_a_request_already_sent_with_connection_close);
	tcase_add_test(tc, a_stop_closes_an_idle_keep_alive_connection_at_once_with_fin);
	tcase_add_test(tc, a_stop_lets_a_response_in_flight_finish_then_closes_with_fin);
	suite_add_tcase(s, tc);
	tc = tcase_create("want");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_read_that_must_write_first_watches_for_writable);
	tcase_add_test(tc, a_write_that_must_read_first_watches_for_readable);
	suite_add_tcase(s, tc);
	tc = tcase_create("tls");
	tcase_add_checked_fixture(tc, setup_tls_log, teardown);
	tcase_add_test(tc, hsts_and_the_tls_version_only_over_tls);
	tcase_add_test(tc, the_request_time_runs_from_the_first_bytes_of_the_request);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return h_run_suite(http_conn_suite()) ? EXIT_FAILURE : EXIT_SUCCESS;
}
