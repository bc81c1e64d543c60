/* test_http_faults: HTTP under real faults, against the real
 * drover binary: the access log's file system fills up (a small tmpfs this
 * test mounts, as root) and frees again; mime_types names a FIFO, which
 * must not hang a worker at start. Waits are on responses and on lines
 * appearing in files; each is bounded only to turn a hang into a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* Start drover with one worker on a socket-activated listener, root
 * dir/www (with index.html), and more [http] lines. */
static struct h_drover *start(const char *dir, const char *http_extra, int *port)
{
	char www[600], cfg[2048];
	snprintf(www, sizeof www, "%s/www", dir);
	ck_assert(mkdir(www, 0755) == 0);
	char p[700];
	snprintf(p, sizeof p, "%s/index.html", www);
	h_write_file(p, "<p>home</p>\n");
	int fd = h_listen_tcp(port);
	struct h_activation act[1] = { { "web", fd } };
	int n = snprintf(cfg, sizeof cfg,
			 "[server]\nworkers = 1\nshutdown_timeout = 10s\n\n"
			 "[listener web]\nprotocol = http\n\n[http]\nroot = %s\n%s\n",
			 www, http_extra);
	ck_assert(n > 0 && (size_t)n < sizeof cfg);
	struct h_opts o = { .notify = true, .fds = act, .n_fds = 1 };
	return h_drover_start(cfg, &o);
}

/* Every line of the access log is a whole combined-format line; how many
 * contain needle. */
static size_t log_whole_lines(const char *path, const char *needle, size_t *count)
{
	size_t len;
	char *s = h_slurp(path, &len);
	ck_assert_msg(s != NULL, "cannot read %s", path);
	ck_assert_msg(len == 0 || s[len - 1] == '\n', "access log ends in a partial line");
	size_t lines = 0;
	*count = 0;
	for (char *line = s; line < s + len;) {
		char *nl = memchr(line, '\n', (size_t)(s + len - line));
		ck_assert(nl != NULL);
		*nl = '\0';
		ck_assert_msg(strncmp(line, "127.0.0.1 - - [", 15) == 0 && strstr(line, " HTTP/1.1\" ") &&
				      nl[-1] == '"',
			      "not a whole access log line: '%s'", line);
		if (strstr(line, needle))
			(*count)++;
		lines++;
		line = nl + 1;
	}
	free(s);
	return lines;
}

/* Wait until the access log has a line with needle. */
static void wait_log_line(const char *path, const char *needle)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		size_t len;
		char *s = h_slurp(path, &len);
		bool found = s && strstr(s, needle);
		free(s);
		if (found)
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "%s never got a line with %s", path, needle);
		h_pause_ms(20); /* a file has no event to wait for */
	}
}

/* Sum of N over "access log: N lines dropped: No space left on device"
 * lines in drover's log; *messages = how many. */
static unsigned long dropped_reported(struct h_drover *d, size_t *messages)
{
	char *s = h_slurp(d->log_path, NULL);
	ck_assert(s != NULL);
	unsigned long sum = 0;
	*messages = 0;
	for (const char *p = s; (p = strstr(p, "access log: ")); p++) {
		unsigned long n;
		char why[64];
		if (sscanf(p, "access log: %lu lines dropped: %63[^\n]", &n, why) == 2) {
			ck_assert_str_eq(why, "No space left on device");
			sum += n;
			(*messages)++;
		}
	}
	free(s);
	return sum;
}

START_TEST(access_log_on_a_full_filesystem_keeps_whole_lines_and_recovers)
{
	char *dir = h_tmpdir();
	char mnt[600], logp[700], filler[700], extra[800];
	snprintf(mnt, sizeof mnt, "%s/logs", dir);
	ck_assert(mkdir(mnt, 0755) == 0);
	/* In a mount namespace of this test's own (drover inherits it), so the
	 * tmpfs goes away with the test even when an assertion ends it early.
	 * That takes CAP_SYS_ADMIN, which a container may not grant. */
	const char *step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) == 0) {
		step = "mount --make-rprivate /";
		ck_assert(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
		step = "mount -t tmpfs";
		if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") == 0)
			step = NULL;
	}
	if (step) {
		ck_assert_msg(errno == EPERM || errno == EACCES, "%s: %s", step, strerror(errno));
		h_skip("cannot mount a small tmpfs to fill (%s: %s; needs CAP_SYS_ADMIN)", step, strerror(errno));
		h_rm_rf(dir);
		free(dir);
		return;
	}
	snprintf(logp, sizeof logp, "%s/access.log", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	snprintf(extra, sizeof extra, "access_log = %s", logp);
	int port;
	struct h_drover *d = start(dir, extra, &port);
	h_get_ok(port, "/before", 0, NULL);
	wait_log_line(logp, "/before");

	/* Fill the file system to the last byte. */
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	static char block[512];
	memset(block, 'x', sizeof block);
	for (;;) {
		ssize_t w = write(fd, block, sizeof block);
		if (w < (ssize_t)sizeof block) {
			while (w > 0)
				w = write(fd, block, 1);
			break;
		}
	}
	close(fd);

	/* Requests go on being served; their lines fit into what is left of
	 * the log's last page, then one does not fit, then none does. */
	int64_t t0 = h_now_ms();
	enum { N = 120 };
	for (int i = 0; i < N; i++) {
		char path[64];
		snprintf(path, sizeof path, "/full-%03d", i);
		h_get_ok(port, path, 0, NULL);
	}
	ck_assert(h_log_wait(d, "lines dropped: No space left on device"));
	size_t full_lines;
	log_whole_lines(logp, "/full-", &full_lines);
	ck_assert_uint_lt(full_lines, N);

	/* Space returns: the next line is written, whole, on its own line. */
	ck_assert(unlink(filler) == 0);
	h_get_ok(port, "/after-space-returns", 0, NULL);
	wait_log_line(logp, "/after-space-returns");
	int64_t elapsed = h_now_ms() - t0;
	size_t after;
	log_whole_lines(logp, "/after-space-returns", &after);
	ck_assert_uint_eq(after, 1);
	log_whole_lines(logp, "/full-", &full_lines);

	/* Counted, and reported at most once a second. */
	size_t messages;
	unsigned long reported = dropped_reported(d, &messages);
	ck_assert_uint_ge(messages, 1);
	ck_assert_msg(reported >= 1 && reported <= N - full_lines, "reported %lu dropped, %zu of %d logged",
		      reported, full_lines, N);
	ck_assert_msg((int64_t)messages <= 1 + elapsed / 1000, "%zu reports in %lld ms", messages,
		      (long long)elapsed);

	h_drover_free(d);
	ck_assert(umount2(mnt, MNT_DETACH) == 0);
	h_rm_rf(dir);
	free(dir);
}
END_TEST

START_TEST(mime_types_that_is_a_fifo_does_not_hang_a_worker)
{
	char *dir = h_tmpdir();
	char fifo[600], extra[700];
	snprintf(fifo, sizeof fifo, "%s/mime.types", dir);
	ck_assert(mkfifo(fifo, 0644) == 0);
	snprintf(extra, sizeof extra, "mime_types = %s", fifo);
	int port;
	struct h_drover *d = start(dir, extra, &port); /* waits for READY=1 */
	struct h_response r;
	ck_assert(h_http_request(port, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	char ct[128];
	ck_assert(h_http_header(&r, "Content-Type", ct, sizeof ct));
	ck_assert_str_eq(ct, "text/html"); /* the built-in table */
	h_http_response_free(&r);
	ck_assert(h_log_contains(d, "is not a regular file"));
	h_drover_free(d);
	h_rm_rf(dir);
	free(dir);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("http_faults");
	TCase *t = tcase_create("faults");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, access_log_on_a_full_filesystem_keeps_whole_lines_and_recovers);
	tcase_add_test(t, mime_types_that_is_a_fifo_does_not_hang_a_worker);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	int failed = h_run_suite(faults_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
