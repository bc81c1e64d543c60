/* test_http_pool: memory per connection (src/proto/http/pool.c and the idle
 * form of a connection in conn.c), against the real drover binary.
 *
 * Idle keep-alive connections give their buffers back (the worker's RSS
 * grows by far less than a buffer per connection) and wake up to serve
 * their next request; a request larger than the pooled buffers still
 * works; when memory runs out (RLIMIT_DATA set on the worker for real) the
 * connections that cannot get a buffer are closed, the others are served,
 * and the worker carries on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
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

struct srv {
	struct h_drover *d;
	char *tmp;
	int port;
	pid_t worker;
};

static void srv_start(struct srv *s, const char *http_extra)
{
	memset(s, 0, sizeof *s);
	s->tmp = h_tmpdir();
	char www[512], p[600];
	snprintf(www, sizeof www, "%s/www", s->tmp);
	ck_assert(mkdir(www, 0755) == 0);
	snprintf(p, sizeof p, "%s/a.txt", www);
	h_write_file(p, "pooled\n");
	int web = h_listen_tcp(&s->port);
	struct h_activation fds[1] = { { "web", web } };
	char cfg[2048];
	int n = snprintf(cfg, sizeof cfg,
			 "[server]\nworkers = 1\nshutdown_timeout = 10s\nmax_connections = 4000\n\n"
			 "[listener web]\nprotocol = http\n\n"
			 "[http]\nroot = %s\naccess_log = off\n%s\n",
			 www, http_extra ? http_extra : "");
	ck_assert(n > 0 && (size_t)n < sizeof cfg);
	struct h_opts o = { .notify = true, .fds = fds, .n_fds = 1 };
	s->d = h_drover_start(cfg, &o);
	ck_assert(h_wait_workers(s->d, 1));
	ck_assert_uint_eq(h_worker_pids(s->d, &s->worker, 1), 1);
}

static void srv_stop(struct srv *s)
{
	h_drover_free(s->d);
	h_rm_rf(s->tmp);
	free(s->tmp);
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
	struct srv s;
	srv_start(&s, NULL);
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
	long before = proc_kb(s.worker, "VmRSS");
	static int fds[IDLE_CONNS];
	for (int i = 0; i < IDLE_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert_msg(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
		get_a(fds[i]); /* one request each, then idle */
	}
	long after = proc_kb(s.worker, "VmRSS");
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
	srv_stop(&s);
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
	struct srv s;
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
	srv_stop(&s);
}
END_TEST

#define EXHAUST_CONNS 60

START_TEST(running_out_of_memory_closes_only_the_connections_without_buffers)
{
#ifdef H_UNDER_ASAN
	return;
#endif
	struct srv s;
	srv_start(&s, NULL);
	/* The connections exist (idle, no buffers) before the limit. */
	int fds[EXHAUST_CONNS];
	for (int i = 0; i < EXHAUST_CONNS; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert(fds[i] >= 0);
	}
	get_a(fds[0]); /* all accepted and registered by now */
	/* Room for a couple of requests' buffers beyond what is in use. */
	long data_kb = proc_kb(s.worker, "VmData");
	struct rlimit rl = { (rlim_t)(data_kb + 256) * 1024, RLIM_INFINITY };
	ck_assert_msg(prlimit(s.worker, RLIMIT_DATA, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
	/* Every connection starts a request at once: each needs buffers. */
	for (int i = 0; i < EXHAUST_CONNS; i++)
		h_write_all(fds[i], "GET /a.txt HTTP/1.1\r\n", 21);
	/* Then finishes it: a connection that got buffers is answered 200; one
	 * that did not was closed (EOF or reset), nothing in between. */
	int served = 0, closed = 0;
	for (int i = 0; i < EXHAUST_CONNS; i++) {
		if (send(fds[i], "Host: x\r\n\r\n", 11, MSG_NOSIGNAL) != 11) {
			closed++;
			continue;
		}
		struct h_response r;
		if (!h_http_read_response(fds[i], &r, false)) {
			closed++;
			continue;
		}
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "pooled\n");
		h_http_response_free(&r);
		served++;
	}
	ck_assert_msg(closed > 0, "the limit was never reached (%d served)", served);
	ck_assert_msg(served > 0, "no connection was served under the limit");
	for (int i = 0; i < EXHAUST_CONNS; i++)
		close(fds[i]);
	/* The worker carries on, still under the limit. */
	pid_t w;
	ck_assert_uint_eq(h_worker_pids(s.d, &w, 1), 1);
	ck_assert_int_eq(w, s.worker);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	get_a(fd);
	close(fd);
	srv_stop(&s);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *su = suite_create("http_pool");
	TCase *tc = tcase_create("pool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, idle_connections_give_their_buffers_back);
	tcase_add_test(tc, a_request_larger_than_the_pooled_buffers_still_works);
	tcase_add_test(tc, running_out_of_memory_closes_only_the_connections_without_buffers);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	int failed = h_run_suite(pool_suite());
	return failed ? 1 : 0;
}
