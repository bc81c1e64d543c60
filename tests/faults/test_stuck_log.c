/* test_stuck_log: drover's diagnostics never block it. With stderr a pipe or a
 * stream socket that nobody reads (a stuck journal, a busy log collector), a
 * burst of log lines (200 reloads at log_level = debug) stops neither the
 * supervisor nor a worker: every reload completes, HTTP is answered, SIGTERM
 * stops it. Lines that could not be written are dropped whole and counted,
 * and "drover: N log lines dropped" is written once the reader catches up.
 * An access log set to "stderr" shares the same rules.
 * Reload completion is seen on the notify socket (the log is the thing that
 * is stuck); nothing here sleeps in place of an event. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define RELOADS 200
#define OUT_CAP (4 << 20)

static const char config[] =
	"[server]\n"
	"workers = 2\n"
	"log_level = debug\n"
	"shutdown_timeout = 10s\n"
	"control_socket = off\n"
	"[listener web]\n"
	"protocol = http\n"
	"[http]\n"
	"root = @DIR@\n";

/* Everything readable on fd now (non-blocking), appended to out. */
static size_t drain_now(int fd, char *out, size_t len, size_t cap)
{
	for (;;) {
		ssize_t n = read(fd, out + len, cap - 1 - len);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	out[len] = '\0';
	return len;
}

/* Read fd until EOF (every drover process gone), bounded by H_WAIT_MS. */
static size_t drain_to_eof(int fd, char *out, size_t len, size_t cap)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert_msg(poll(&p, 1, h_left_ms(deadline)) == 1, "no EOF on drover's stderr");
		ssize_t n = read(fd, out + len, cap - 1 - len);
		if (n == 0)
			break;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		ck_assert_msg(n > 0, "read: %s", strerror(errno));
		len += (size_t)n;
		ck_assert_msg(len < cap - 1, "more output than expected");
	}
	out[len] = '\0';
	return len;
}

/* Every line is whole: it starts as drover's lines start (or as an access
 * log line from 127.0.0.1 does) and ends in '\n'. */
static void assert_whole_lines(const char *text, size_t len)
{
	ck_assert_msg(len == 0 || text[len - 1] == '\n', "output ends in a torn line");
	for (const char *l = text; l < text + len;) {
		const char *nl = strchr(l, '\n');
		ck_assert_msg(strncmp(l, "drover[", 7) == 0 || strncmp(l, "drover: ", 8) == 0 ||
				      (strncmp(l, "127.0.0.1 - - [", 15) == 0 && nl[-1] == '"'),
			      "torn or foreign line: %.*s", (int)(nl ? nl - l : 80), l);
		l = nl + 1;
	}
}

/* The sum of N over the "drover: N log lines dropped" lines. */
static unsigned long dropped_total(const char *text, size_t *notes)
{
	unsigned long sum = 0;
	*notes = 0;
	for (const char *p = text; (p = strstr(p, "drover: ")); p += 8) {
		unsigned long n;
		char tail[32];
		if ((p == text || p[-1] == '\n') &&
		    sscanf(p, "drover: %lu log lines droppe%31[d]\n", &n, tail) == 2) {
			sum += n;
			(*notes)++;
		}
	}
	return sum;
}

/* Run the burst with drover's stderr = wfd (read end rfd, never read until
 * the burst is over). */
static void burst_with_unread_stderr(int rfd, int wfd)
{
	int port;
	int lfd = h_listen_tcp(&port);
	struct h_activation act = { .name = "web", .fd = lfd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1, .stderr_fd = wfd };
	struct h_drover *d = h_drover_start(config, &o);
	close(wfd); /* only drover holds the writing end now: EOF when all are gone */
	char index[400];
	snprintf(index, sizeof index, "%s/index.html", d->dir);
	h_write_file(index, "logging test\n");
	h_get_ok(port, "/index.html", 200, "logging test\n");

	for (unsigned i = 0; i < RELOADS; i++) {
		char want[64];
		/* generation i + 2 serving: this reload completed */
		snprintf(want, sizeof want, "serving: generation %u,", i + 2);
		h_drover_kill(d, SIGHUP);
		ck_assert_msg(h_notify_wait(d, want, NULL),
			      "reload %u did not complete with stderr unread (notify: %.300s)", i + 1,
			      d->notify_buf);
		/* Keep the notify buffer small over 200 reloads. */
		d->notify_len = 0;
		d->notify_buf[0] = '\0';
	}
	/* The workers answer while the log is still stuck. */
	for (int i = 0; i < 10; i++)
		h_get_ok(port, "/index.html", 200, "logging test\n");

	/* The reader catches up; the next lines carry the count of the dropped. */
	char *out = malloc(OUT_CAP);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(fcntl(rfd, F_SETFL, O_NONBLOCK), 0);
	size_t len = drain_now(rfd, out, 0, OUT_CAP);
	ck_assert_msg(len > 0, "nothing was logged at all");
	size_t notes;
	h_drover_kill(d, SIGTERM);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "drover did not stop cleanly: %#x", st);
	len = drain_to_eof(rfd, out, len, OUT_CAP);
	assert_whole_lines(out, len);
	unsigned long dropped = dropped_total(out, &notes);
	ck_assert_msg(notes > 0 && dropped > 0, "no 'drover: N log lines dropped' line in:\n%.2000s",
		      out);
	/* Workers' lines are there too, not only the supervisor's. */
	ck_assert_msg(strstr(out, "]: worker "), "no line from a worker in:\n%.2000s", out);
	/* And lines written after the note are there too: the stop itself. */
	const char *note = strstr(out, " log lines dropped\n");
	ck_assert_msg(strstr(note, "drover["), "nothing logged after the note");
	free(out);
	close(rfd);
	h_drover_free(d);
}

START_TEST(an_access_log_on_a_full_stderr_pipe_does_not_stop_serving)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 8192), 0);
	int port;
	int lfd = h_listen_tcp(&port);
	struct h_activation act = { .name = "web", .fd = lfd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1, .stderr_fd = p[1] };
	char text[sizeof config + 64];
	snprintf(text, sizeof text, "%saccess_log = stderr\nkeepalive_requests = 10000\n", config);
	struct h_drover *d = h_drover_start(text, &o);
	close(p[1]);
	char index[400];
	snprintf(index, sizeof index, "%s/index.html", d->dir);
	h_write_file(index, "logging test\n");
	/* 1000 access log lines (about 100 KB) into an 8 KB pipe nobody reads:
	 * every request is still answered. */
	static const char req[] = "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n";
	int fd = h_connect_tcp(port);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 1000; i++) {
		h_write_all(fd, req, sizeof req - 1);
		struct h_response r;
		ck_assert_msg(h_http_read_response(fd, &r, false), "request %d unanswered", i + 1);
		ck_assert_int_eq(r.status, 200);
		h_http_response_free(&r);
	}
	close(fd);
	char *out = malloc(OUT_CAP);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	size_t len = drain_now(p[0], out, 0, OUT_CAP);
	h_drover_kill(d, SIGTERM);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "drover did not stop cleanly: %#x", st);
	len = drain_to_eof(p[0], out, len, OUT_CAP);
	assert_whole_lines(out, len);
	ck_assert_msg(strstr(out, "\n127.0.0.1 - - ["), "no access log line in:\n%.2000s", out);
	size_t notes;
	ck_assert_msg(dropped_total(out, &notes) > 0, "no 'drover: N log lines dropped' line in:\n%.2000s",
		      out);
	free(out);
	close(p[0]);
	h_drover_free(d);
}
END_TEST

START_TEST(a_full_stderr_pipe_blocks_neither_reloads_nor_serving_nor_the_stop)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	/* A small pipe fills within the first reloads. */
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 8192), 0);
	burst_with_unread_stderr(p[0], p[1]);
}
END_TEST

START_TEST(a_full_stderr_stream_socket_blocks_neither_reloads_nor_serving_nor_the_stop)
{
	/* What the journal's stdout/stderr stream is: a unix stream socket. */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
	shutdown(sv[0], SHUT_WR);
	burst_with_unread_stderr(sv[0], sv[1]);
}
END_TEST

static Suite *logging_suite(void)
{
	Suite *s = suite_create("logging");
	TCase *tc = tcase_create("unread_stderr");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_full_stderr_pipe_blocks_neither_reloads_nor_serving_nor_the_stop);
	tcase_add_test(tc, a_full_stderr_stream_socket_blocks_neither_reloads_nor_serving_nor_the_stop);
	tcase_add_test(tc, an_access_log_on_a_full_stderr_pipe_does_not_stop_serving);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	int failed = h_run_suite(logging_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
