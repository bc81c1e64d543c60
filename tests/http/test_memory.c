/* test_memory: memory per connection (src/proto/http/pool.c and the idle
 * form of a connection in conn.c), against the real drover binary.
 *
 * Idle keep-alive connections give their buffers back (the worker's RSS
 * grows by far less than a buffer per connection) and wake up to serve
 * their next request; a request larger than the pooled buffers still
 * works; when memory runs out (RLIMIT_DATA set on the worker for real) a
 * connection that cannot get a buffer waits for one with its request
 * unread, and is served when memory comes back; one that waits longer than
 * header_timeout is answered 503 and closed cleanly, and counted (log,
 * droverctl status). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define IDLE_CONNS 1000

/* Start drover with one worker on a site with a.txt; its pid. */
static pid_t srv_start_with(struct h_site *s, const char *http_extra, const char *server_extra)
{
	h_site_init(s);
	h_site_file(s, "a.txt", "pooled\n");
	char http[1024], server[512];
	snprintf(http, sizeof http, "access_log = off\n%s", http_extra ? http_extra : "");
	snprintf(server, sizeof server,
		 "shutdown_timeout = 10s\nmax_connections = 4000\ncontrol_socket = @DIR@/control.sock\n%s",
		 server_extra ? server_extra : "");
	h_site_start(s, &(struct h_site_opts){ .server = server, .web = "status = yes\nhttp2 = yes\n", .http = http });
	pid_t worker;
	ck_assert(h_wait_workers(s->d, 1));
	ck_assert_uint_eq(h_worker_pids(s->d, &worker, 1), 1);
	return worker;
}

static pid_t srv_start(struct h_site *s, const char *http_extra)
{
	return srv_start_with(s, http_extra, NULL);
}

/* A /proc/PID/status field in kB. */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert(f);
	long v = -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			v = strtol(line + fl + 1, NULL, 10);
	fclose(f);
	ck_assert(v >= 0);
	return v;
}

static const char req_a[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";

/* One keep-alive request on fd, answered 200 "pooled\n". */
static void get_a(int fd)
{
	h_write_all(fd, req_a, sizeof req_a - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "pooled\n");
	h_http_response_free(&r);
}

static void raise_nofile(void)
{
	struct rlimit rl = { IDLE_CONNS + 256, IDLE_CONNS + 256 };
	ck_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

START_TEST(idle_connections_give_their_buffers_back)
{
	raise_nofile(); /* before the start: the worker inherits it */
	struct h_site s;
	pid_t worker = srv_start(&s, NULL);
	/* Warm up: the pool's spares and the cache exist before measuring. */
	int warm[32];
	for (int i = 0; i < 32; i++) {
		warm[i] = h_connect_tcp(s.port);
		ck_assert(warm[i] >= 0);
		h_write_all(warm[i], req_a, sizeof req_a - 1);
	}
	for (int i = 0; i < 32; i++) {
		struct h_response r;
		ck_assert(h_http_read_response(warm[i], &r, false));
		h_http_response_free(&r);
		close(warm[i]);
	}
	long before = proc_kb(worker, "VmRSS");
	static int fds[IDLE_CONNS];
	for (int i = 0; i < IDLE_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert_msg(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
		get_a(fds[i]); /* one request each, then idle */
	}
	long after = proc_kb(worker, "VmRSS");
	long per_conn = (after - before) * 1024 / IDLE_CONNS;
	/* A buffer per idle connection would be tens of kB each (in 48k, out
	 * 40k); the idle form is a few hundred bytes. 2 kB leaves room for
	 * page granularity and the loop's tables. */
	ck_assert_msg(per_conn < 2048, "%ld bytes of RSS per idle connection (%ld kB -> %ld kB)", per_conn,
		      before, after);
	/* Every idle connection wakes up for its next request. */
	for (int i = 0; i < IDLE_CONNS; i++) {
		get_a(fds[i]);
		close(fds[i]);
	}
	h_site_stop(&s);
}
END_TEST

#define HEAD_MAX 32768

/* After the n bytes of request line and first fields in head: five 6,000
 * byte fields (each under max_header_line, 30 kB in all, under
 * max_header_size) and the empty line. The length of it all. */
static size_t big_head(char *head, size_t n)
{
	for (int i = 0; i < 5; i++) {
		n += (size_t)snprintf(head + n, HEAD_MAX - n, "X-Pad-%d: ", i);
		memset(head + n, 'p', 6000);
		n += 6000;
		memcpy(head + n, "\r\n", 2);
		n += 2;
	}
	memcpy(head + n, "\r\n", 2);
	return n + 2;
}

START_TEST(a_request_larger_than_the_pooled_buffers_still_works)
{
	struct h_site s;
	srv_start(&s, "max_body_size = 4m\n");
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	/* A head of ~30 kB (under max_header_size) and a 1 MiB body: far more
	 * than the input buffer holds at once. */
	char *head = malloc(HEAD_MAX);
	ck_assert(head);
	int n = snprintf(head, 256, "POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", 1 << 20);
	size_t len = big_head(head, (size_t)n);
	h_write_all(fd, head, len);
	char *body = calloc(1, 1 << 20);
	ck_assert(body);
	h_write_all(fd, body, 1 << 20);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 405); /* files take GET and HEAD */
	h_http_response_free(&r);
	get_a(fd); /* and the connection goes on */
	/* A GET with the big head too. */
	n = snprintf(head, 256, "GET /a.txt HTTP/1.1\r\nHost: x\r\n");
	len = big_head(head, (size_t)n);
	h_write_all(fd, head, len);
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "pooled\n");
	h_http_response_free(&r);
	close(fd);
	free(head);
	free(body);
	h_site_stop(&s);
}
END_TEST

#define EXHAUST_CONNS 60

START_TEST(running_out_of_memory_delays_requests_instead_of_closing_them)
{
#ifdef H_UNDER_ASAN
	return;
#endif
	struct h_site s;
	pid_t worker = srv_start(&s, NULL);
	/* The connections exist (idle, no buffers) before the limit. */
	int fds[EXHAUST_CONNS];
	for (int i = 0; i < EXHAUST_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert(fds[i] >= 0);
	}
	get_a(fds[0]); /* all accepted and registered by now */
	/* Room for a couple of requests' buffers beyond what is in use. */
	long data_kb = proc_kb(worker, "VmData");
	struct rlimit rl = { (rlim_t)(data_kb + 256) * 1024, RLIM_INFINITY };
	ck_assert_msg(prlimit(worker, RLIMIT_DATA, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
	/* Every connection starts a request at once: each needs buffers, and
	 * a request in parts holds them. */
	for (int i = 0; i < EXHAUST_CONNS; i++)
		h_write_all(fds[i], "GET /a.txt HTTP/1.1\r\n", 21);
	ck_assert_msg(h_log_wait(s.d, "accept paused: Cannot allocate memory"), "the limit was never reached");
	/* Then each finishes its request: those without buffers waited, with
	 * their bytes unread, and get theirs as the others are answered.
	 * Every one is served; none is closed. */
	for (int i = 0; i < EXHAUST_CONNS; i++) {
		ck_assert_msg(send(fds[i], "Host: x\r\n\r\n", 11, MSG_NOSIGNAL) == 11, "connection %d closed", i);
		struct h_response r;
		ck_assert_msg(h_http_read_response(fds[i], &r, false), "connection %d got no answer", i);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "pooled\n");
		h_http_response_free(&r);
	}
	ck_assert_msg(!h_log_contains(s.d, "connection(s) dropped"), "%s", h_log_end(s.d));
	for (int i = 0; i < EXHAUST_CONNS; i++)
		close(fds[i]);
	/* Still served (by the capped worker or, its shortage lasting, by its
	 * replacement). */
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	get_a(fd);
	close(fd);
	h_site_stop(&s);
}
END_TEST

#define HOLDERS 4

/* Sum of N over the "out of memory: N connection(s) dropped" lines. */
static unsigned long dropped_logged(struct h_drover *d)
{
	return h_log_sum(d, "out of memory:", "connection(s) dropped", NULL);
}

/* Starve worker (the only one of s) of memory with requests in flight:
 * HOLDERS downloads that do not read hold every buffer it has, two more
 * connections are accepted idle, its data segment is capped just above
 * what it uses, and then the two send a request each. */
static void starve_with_victims(struct h_site *s, pid_t worker, int holders[HOLDERS], int victims[2])
{
	char big[600];
	snprintf(big, sizeof big, "%s/www/big.bin", s->tmp);
	int bfd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(bfd >= 0);
	ck_assert(ftruncate(bfd, 16 << 20) == 0);
	close(bfd);
	/* Downloads that do not read hold every buffer the worker has (a
	 * response stuck in the socket keeps its connection's). */
	static const char get_big[] = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
	for (int i = 0; i < HOLDERS; i++) {
		holders[i] = h_connect_tcp_rcvbuf(s->port, 4096);
		ck_assert(holders[i] >= 0);
		h_write_all(holders[i], get_big, sizeof get_big - 1);
		char head[12];
		ck_assert(h_read_exact(holders[i], head, sizeof head)); /* the response has begun */
		ck_assert(memcmp(head, "HTTP/1.1 200", 12) == 0);
	}
	/* Two more connections, accepted and idle before the limit. */
	for (int i = 0; i < 2; i++) {
		victims[i] = h_connect_tcp(s->port);
		ck_assert(victims[i] >= 0);
	}
	char out[8192];
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) { /* the worker has taken both (the status is the only sign) */
		h_ctl_ok(s->d, "status", out, sizeof out);
		if (strstr(out, "connections 6 "))
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "the worker never took both: %s", out);
		h_pause_ms(20);
	}
	/* No room for one more connection's buffers. */
	long data_kb = proc_kb(worker, "VmData");
	struct rlimit rl = { (rlim_t)(data_kb + 32) * 1024, RLIM_INFINITY };
	ck_assert_msg(prlimit(worker, RLIMIT_DATA, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		h_write_all(victims[i], req_a, sizeof req_a - 1);
}

START_TEST(a_request_without_memory_for_header_timeout_gets_503_and_is_counted)
{
#ifdef H_UNDER_ASAN
	return;
#endif
	struct h_site s;
	/* header_timeout also bounds how long the two victims below may sit
	 * unused between their accept and their request (the set-up's
	 * status polls and the cap): far more than that takes. */
	/* Without hand-off: the worker short of memory asks to be replaced,
	 * and its replacement would adopt the waiting victims and answer
	 * them (200); what is tested here is the last resort. */
	pid_t worker = srv_start_with(&s, "header_timeout = 5s\n", "handoff = no\n");
	int holders[HOLDERS], victims[2];
	starve_with_victims(&s, worker, holders, victims);
	char out[8192];
	/* No memory came back within header_timeout: a 503 the worker could
	 * send without allocating, then a clean close (EOF, not a reset,
	 * though the request was never read). */
	for (int i = 0; i < 2; i++) {
		struct h_response r;
		ck_assert_msg(h_http_read_response(victims[i], &r, false), "no answer: %s", h_log_end(s.d));
		ck_assert_int_eq(r.status, 503);
		h_http_response_free(&r);
		char b;
		ck_assert_int_eq(read(victims[i], &b, 1), 0);
		close(victims[i]);
	}
	/* Both counted: in the log (the second line comes from the report's
	 * timer, with no further fault to trigger it) and in the status. */
	while (dropped_logged(s.d) < 2)
		ck_assert_msg(h_log_wait(s.d, "connection(s) dropped since the last report"), "%s", h_log_end(s.d));
	ck_assert_uint_eq(dropped_logged(s.d), 2);
	h_ctl_ok(s.d, "status", out, sizeof out);
	char line[64];
	snprintf(line, sizeof line, "worker pid %d ", (int)worker);
	const char *w = strstr(out, line);
	ck_assert_msg(w, "%s", out);
	const char *eol = strchr(w, '\n');
	const char *count = strstr(w, " dropped-no-memory 2");
	ck_assert_msg(count && (!eol || count < eol), "%s", out);
	/* Its shortage lasts: it is replaced, and while it drains (the
	 * downloads keep it) its replacement's status JSON has its count. */
	ck_assert(h_log_wait(s.d, "is short of memory; starting its replacement"));
	ck_assert(h_log_wait(s.d, "worker 1.0: draining"));
	struct h_response r;
	ck_assert(h_http_request(s.port, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	snprintf(line, sizeof line, "{\"pid\":%d,", (int)worker);
	const char *entry = strstr(r.body, line);
	ck_assert_msg(entry, "%s", r.body);
	const char *end = strchr(entry, '}');
	const char *field = strstr(entry, "\"dropped_no_memory\":2,");
	ck_assert_msg(field && field < end, "%s", r.body);
	h_http_response_free(&r);
	for (int i = 0; i < HOLDERS; i++)
		close(holders[i]);
	h_site_stop(&s);
}
END_TEST

/* With hand-off (the default), the replacement of a worker short of
 * memory adopts the requests waiting for memory (their bytes still in
 * their sockets) and answers them: the same victims get 200, on the
 * connection they sent them on. */
START_TEST(a_worker_short_of_memory_hands_its_waiting_requests_to_its_replacement)
{
#ifdef H_UNDER_ASAN
	return;
#endif
	struct h_site s;
	/* Far more than the replacement takes to start: the victims must
	 * not meet the last resort (the 503 above) meanwhile. */
	pid_t worker = srv_start_with(&s, "header_timeout = 120s\n", NULL);
	int holders[HOLDERS], victims[2];
	starve_with_victims(&s, worker, holders, victims);
	char out[8192];
	for (int i = 0; i < 2; i++) {
		struct h_response r;
		ck_assert_msg(h_http_read_response(victims[i], &r, false), "no answer: %s", h_log_end(s.d));
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "pooled\n");
		h_http_response_free(&r);
	}
	ck_assert(h_log_contains(s.d, "is short of memory; starting its replacement"));
	ck_assert_msg(dropped_logged(s.d) == 0, "%s", h_log_end(s.d));
	/* Served by the replacement, which adopted them. */
	h_ctl_ok(s.d, "status", out, sizeof out);
	const char *gl = strstr(out, "\ngeneration 1 handed-off ");
	unsigned long handed = 0, adopted = 0;
	ck_assert_msg(gl && sscanf(gl, "\ngeneration 1 handed-off %lu adopted %lu", &handed, &adopted) == 2, "%s", out);
	ck_assert_msg(handed >= 2 && adopted >= 2, "%s", out);
	for (int i = 0; i < 2; i++)
		close(victims[i]);
	for (int i = 0; i < HOLDERS; i++)
		close(holders[i]);
	h_site_stop(&s);
}
END_TEST

#define H2_CONNS 16

/* An HTTP/2 (prior knowledge) GET of /a.txt on stream 1: the preface, an
 * empty SETTINGS, and HEADERS with HPACK's static entries. */
static void h2_get_a(int fd)
{
	static const char req[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				  "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
				  "\x00\x00\x0d\x01\x05\x00\x00\x00\x01"
				  "\x82\x86\x44\x06/a.txt\x41\x01x";
	h_write_all(fd, req, sizeof req - 1);
}

/* Whether fd's server answers stream 1 with :status 200 (HPACK's static
 * entry 8) before it closes; false on a close (or H_WAIT_MS of nothing). */
static bool h2_answered(int fd)
{
	unsigned char buf[4096];
	size_t have = 0;
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		for (size_t off = 0; have - off >= 9;) {
			size_t len = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
			if (have - off < 9 + len)
				break;
			if (buf[off + 3] == 1 && buf[off + 8] == 1 && len > 0)
				return buf[off + 9] == 0x88;
			off += 9 + len;
			memmove(buf, buf + off, have - off);
			have -= off;
			off = 0;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (have == sizeof buf || poll(&p, 1, (int)h_left_ms(deadline)) <= 0)
			return false;
		ssize_t n = read(fd, buf + have, sizeof buf - have);
		if (n <= 0)
			return false;
		have += (size_t)n;
	}
}

/* HTTP/2 short of memory for its session: the connection is closed and
 * counted as dropped, the worker lives, and serves HTTP/2 again once
 * memory is back. The pool has spare buffers first, so that what fails is
 * the session, not the wake-up (which would wait, as HTTP/1.1 does). */
START_TEST(http2_connections_without_memory_for_a_session_are_dropped_and_counted)
{
#ifdef H_UNDER_ASAN
	return;
#endif
	struct h_site s;
	pid_t worker = srv_start(&s, NULL);
	int fds[H2_CONNS];
	/* Fill the pool: H2_CONNS requests in flight at once, then done. */
	for (int i = 0; i < H2_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert(fds[i] >= 0);
		h_write_all(fds[i], "GET /a.txt HTTP/1.1\r\n", 21);
	}
	for (int i = 0; i < H2_CONNS; i++) {
		h_write_all(fds[i], "Host: x\r\n\r\n", 11);
		struct h_response r;
		ck_assert(h_http_read_response(fds[i], &r, false));
		h_http_response_free(&r);
		close(fds[i]);
	}
	for (int i = 0; i < H2_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert(fds[i] >= 0);
	}
	int sync = h_connect_tcp(s.port);
	get_a(sync); /* every connection above is accepted by now */
	close(sync);
	long data_kb = proc_kb(worker, "VmData");
	struct rlimit tight = { (rlim_t)(data_kb + 8) * 1024, RLIM_INFINITY };
	ck_assert_msg(prlimit(worker, RLIMIT_DATA, &tight, NULL) == 0, "prlimit: %s", strerror(errno));
	for (int i = 0; i < H2_CONNS; i++)
		h2_get_a(fds[i]);
	int answered = 0;
	for (int i = 0; i < H2_CONNS; i++)
		answered += h2_answered(fds[i]);
	ck_assert_msg(answered < H2_CONNS, "memory never ran short");
	ck_assert_msg(h_log_wait(s.d, "connection(s) dropped"), "%s", h_log_end(s.d));
	for (int i = 0; i < H2_CONNS; i++)
		close(fds[i]);
	struct rlimit loose = { RLIM_INFINITY, RLIM_INFINITY };
	ck_assert(prlimit(worker, RLIMIT_DATA, &loose, NULL) == 0);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	h2_get_a(fd);
	ck_assert_msg(h2_answered(fd), "HTTP/2 not served after memory came back");
	close(fd);
	h_site_stop(&s);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *su = suite_create("http_pool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, idle_connections_give_their_buffers_back);
	tcase_add_test(tc, a_request_larger_than_the_pooled_buffers_still_works);
	tcase_add_test(tc, running_out_of_memory_delays_requests_instead_of_closing_them);
	tcase_add_test(tc, a_request_without_memory_for_header_timeout_gets_503_and_is_counted);
	tcase_add_test(tc, a_worker_short_of_memory_hands_its_waiting_requests_to_its_replacement);
	tcase_add_test(tc, http2_connections_without_memory_for_a_session_are_dropped_and_counted);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	int failed = h_run_suite(pool_suite());
	return failed ? 1 : 0;
}
