/* test_supervisor_faults: faults on the supervisor's side, against the
 * real binary. A new binary that passes "-t" but cannot run (/bin/true, one
 * that crashes at start, one that hangs before READY) fails the upgrade
 * while the old one serves on, under load, without a failed request. A
 * listener a reload retires stops accepting at once even
 * while the old generation drains; fork failures (a pids cgroup that
 * allows no more tasks) back off, doubling, and an upgrade that cannot
 * fork says so; a control_socket path holding another file is refused and
 * left alone; a reload and an upgrade asked at the same moment are both
 * done and answered; a START that meets a full control channel (a worker
 * held before it runs while reopen-logs fills it) is delivered once the
 * worker reads.
 *
 * Waits are bounded only to turn a hang into a failure; where no event
 * exists (a port refusing, the process table) the condition is polled at a
 * short interval under the same bound. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"

#define SLICE_MS 10

/* workers, shutdown_timeout, then the [listener main] port. */
static char *echo_config(unsigned workers, const char *shutdown_timeout, int port)
{
	char server[64], listener[64];
	snprintf(server, sizeof server, "shutdown_timeout = %s\n", shutdown_timeout);
	snprintf(listener, sizeof listener, "address = 127.0.0.1:%d\n", port);
	return h_echo_config(workers, server, listener, NULL);
}

static void expect_clean_exit(struct h_drover *d)
{
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "drover ended with status %#x; log:\n%.2500s", st,
		      h_log_end(d));
}

/* ------------------------------------------------ a broken new binary */

/* "The installed binary": a file the test can replace, first a wrapper that
 * runs the real drover under that name (so an upgrade runs it again). */
struct installed {
	char dir[300];
	char path[400];
	char *real;
};

static void installed_write(struct installed *in, const void *data, size_t len)
{
	char tmp[420];
	snprintf(tmp, sizeof tmp, "%s.new", in->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ck_assert(fd >= 0);
	h_write_all(fd, data, len);
	close(fd);
	ck_assert(rename(tmp, in->path) == 0);
}

static void installed_real(struct installed *in)
{
	char script[1024];
	snprintf(script, sizeof script, "#!/bin/bash\nexec -a \"$0\" '%s' \"$@\"\n", in->real);
	installed_write(in, script, strlen(script));
}

static void installed_setup(struct installed *in)
{
	char *dir = h_tmpdir();
	snprintf(in->dir, sizeof in->dir, "%s", dir);
	free(dir);
	snprintf(in->path, sizeof in->path, "%s/drover", in->dir);
	const char *real = getenv("DROVER_BIN");
	ck_assert_msg(real && *real, "DROVER_BIN not set");
	in->real = strdup(real);
	installed_real(in);
	setenv("DROVER_BIN", in->path, 1);
}

static void installed_free(struct installed *in)
{
	setenv("DROVER_BIN", in->real, 1);
	free(in->real);
	h_rm_rf(in->dir);
}

/* The harness's load client in echo mode: round trips on new connections,
 * one at a time, 1 ms apart (pacing, not waiting for anything), until told
 * to stop; a round trip that does not come back whole is not re-sent. */
static struct h_load *load_start(int port)
{
	struct h_load_opts o = { .port = port, .mode = H_LOAD_ECHO, .conns = 1, .attempts = 1, .pause_ms = 1 };
	return h_load_start(&o);
}

START_TEST(a_new_binary_that_cannot_run_never_loses_the_service)
{
	struct installed in;
	installed_setup(&in);
	int port = h_free_port();
	char *cfg = echo_config(2, "10s", port);
	struct h_opts o = { .notify = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	struct h_load *l = load_start(port);
	static const char crash[] = "#!/bin/bash\n"
				    "if [ \"$1\" = -t ]; then echo 'drover: configuration OK'; exit 0; fi\n"
				    "kill -SEGV $$\n";
	static const char hang[] = "#!/bin/bash\n"
				   "if [ \"$1\" = -t ]; then echo 'drover: configuration OK'; exit 0; fi\n"
				   "exec sleep 600\n";
	size_t true_len;
	char *true_bin = h_slurp("/bin/true", &true_len);
	ck_assert(true_bin);
	const struct {
		const char *data;
		size_t len;
		const char *reason;
	} broken[] = {
		{ true_bin, true_len, "exited with status 0 before its generation was ready" },
		{ crash, sizeof crash - 1, "was killed by signal 11" },
		{ hang, sizeof hang - 1, "did not bring a generation up within 15 s" },
	};
	char out[4096];
	for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
		installed_write(&in, broken[i].data, broken[i].len);
		size_t from = d->notify_len;
		int up = h_ctl_send(d, "upgrade");
		ssize_t n = h_read_all(up, out, sizeof out);
		close(up);
		ck_assert_msg(n > 0 && strstr(out, "ERR upgrade failed: ") && strstr(out, broken[i].reason),
			      "case %zu: upgrade answered: %.2500s\nlog:\n%.2500s", i, n > 0 ? out : "", h_log_end(d));
		/* STATUS= says why (a newer STATUS= may replace the first one, and
		 * carries the reason on as "last reload failed: ..."). */
		ck_assert_msg(h_notify_wait(d, broken[i].reason, &from),
			      "case %zu: no STATUS=; notify: %.2000s", i, d->notify_buf + (d->notify_len > 2000 ? d->notify_len - 2000 : 0));
		h_ctl_ok(d, "status", out, sizeof out);
		char want[64];
		snprintf(want, sizeof want, "supervisor pid %d, generation 1,", (int)d->pid);
		ck_assert_msg(strstr(out, want) && strstr(out, ", serving\n"), "case %zu: status: %.2500s", i, out);
	}
	free(true_bin);
	ck_assert_uint_eq(h_log_count(d, "binary upgrade failed, the old binary keeps running"), 3);
	/* The real binary again: the old image was never harmed. */
	installed_real(&in);
	h_ctl_ok(d, "upgrade", out, sizeof out);
	ck_assert_msg(strstr(out, "(binary upgrade)"), "upgrade answered: %.2500s", out);
	struct h_load_stats st = h_load_stop(l, "upgrades");
	uint64_t failed = h_load_failed(&st) + st.connect_errors;
	ck_assert_msg(failed == 0 && st.ok > 0, "%" PRIu64 " of %" PRIu64 " requests failed; first problem: %s", failed,
		      st.ok + failed, st.first_problem);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
	installed_free(&in);
}
END_TEST

/* ------------------------------------------------ a retired listener */

/* An HTTP config serving site on port, with the control socket in dir
 * (NULL before the start: the harness fills it in). */
static char *http_config(const char *dir, const char *site, int port)
{
	char *text = NULL;
	ck_assert(asprintf(&text,
			   "[server]\n"
			   "workers = 1\n"
			   "control_socket = %s/control.sock\n"
			   "shutdown_timeout = 60s\n"
			   "[listener main]\n"
			   "address = 127.0.0.1:%d\n"
			   "protocol = http\n"
			   "[http]\n"
			   "root = %s\n",
			   dir ? dir : "@DIR@", port, site) > 0);
	return text;
}

START_TEST(a_listener_a_reload_retires_refuses_at_once_while_the_old_generation_drains)
{
	char *site = h_tmpdir();
	char big[300];
	snprintf(big, sizeof big, "%s/big", site);
	int bfd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert(bfd >= 0 && ftruncate(bfd, 256 << 20) == 0);
	close(bfd);
	int old_port = h_free_port();
	char *cfg = http_config(NULL, site, old_port);
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	/* A download nobody reads keeps the old worker draining until its
	 * deadline, a minute away. */
	int stuck = h_connect_tcp(old_port);
	ck_assert(stuck >= 0);
	static const char get[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
	h_write_all(stuck, get, sizeof get - 1);
	char first[16];
	ck_assert(h_read_exact(stuck, first, sizeof first)); /* the response has begun */
	int new_port = h_free_port();
	cfg = http_config(d->dir, site, new_port);
	h_config_replace(d, cfg);
	free(cfg);
	char out[4096];
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 2 serving"), "reload answered: %.2500s", out);
	/* Nobody may accept on the old port any more: refused, not queued. */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		int fd = h_connect_tcp(old_port);
		if (fd == -ECONNREFUSED)
			break;
		if (fd >= 0)
			close(fd);
		ck_assert_msg(h_left_ms(deadline) > 0, "port %d still accepts after the reload; log:\n%.2500s", old_port,
			      h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	/* ...while the old generation is still there, draining. */
	h_ctl_ok(d, "status", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 1 #0 draining"), "status: %.2500s", out);
	struct h_response r;
	ck_assert(h_http_request(new_port, "GET /big HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 206);
	h_http_response_free(&r);
	close(stuck);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
	h_rm_rf(site);
	free(site);
}
END_TEST

/* ------------------------------------------------ fork failures */

#define PIDS_ROOT "/sys/fs/cgroup/pids"

static bool write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok;
}

START_TEST(fork_failures_back_off_doubling_and_an_upgrade_says_fork_failed)
{
	char group[300];
	snprintf(group, sizeof group, PIDS_ROOT "/drover-test-%d", (int)getpid());
	if (access(PIDS_ROOT "/cgroup.procs", W_OK) != 0 || mkdir(group, 0755) != 0) {
		h_skip("no writable pids cgroup at %s (%s) to make fork fail", PIDS_ROOT, strerror(errno));
		return;
	}
	char path[400], pid[32];
	char *cfg = echo_config(2, "10s", h_free_port());
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	ck_assert(h_wait_workers(d, 2));
	/* The supervisor alone in a group that allows no more tasks. */
	snprintf(path, sizeof path, "%s/pids.max", group);
	ck_assert(write_text(path, "1"));
	snprintf(path, sizeof path, "%s/cgroup.procs", group);
	snprintf(pid, sizeof pid, "%d", (int)d->pid);
	ck_assert(write_text(path, pid));
	pid_t pids[4];
	ck_assert_uint_eq(h_worker_pids(d, pids, 4), 2);
	ck_assert(kill(pids[0], SIGKILL) == 0);
	/* Its quick death took the first 100ms; each failed fork doubles it. */
	ck_assert_msg(h_log_wait(d, "not started; next attempt in 1600ms"), "log:\n%.2500s", h_log_end(d));
	ck_assert_uint_eq(h_log_count(d, "not started; next attempt in 200ms"), 1);
	ck_assert_uint_eq(h_log_count(d, "not started; next attempt in 400ms"), 1);
	ck_assert_uint_eq(h_log_count(d, "not started; next attempt in 800ms"), 1);
	ck_assert_msg(h_log_contains(d, "fork failed: Resource temporarily unavailable"), "log:\n%.2500s", h_log_end(d));
	int up = h_ctl_send(d, "upgrade");
	char out[4096];
	ssize_t n = h_read_all(up, out, sizeof out);
	close(up);
	ck_assert_msg(n > 0 && strstr(out, "ERR upgrade failed: fork: Resource temporarily unavailable"),
		      "upgrade answered: %.2500s", n > 0 ? out : "");
	/* Room again: the worker comes back. */
	snprintf(path, sizeof path, "%s/pids.max", group);
	ck_assert(write_text(path, "max"));
	ck_assert_msg(h_wait_workers(d, 2), "not replaced; log:\n%.2500s", h_log_end(d));
	ck_assert(write_text(PIDS_ROOT "/cgroup.procs", pid));
	rmdir(group);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

/* -------------------------------- a control_socket that is not a socket */

START_TEST(a_control_socket_path_holding_another_file_is_refused_and_left_alone)
{
	char *dir = h_tmpdir();
	char file[300];
	snprintf(file, sizeof file, "%s/precious", dir);
	h_write_file(file, "keep me\n");
	char *cfg = NULL;
	ck_assert(asprintf(&cfg,
			   "[server]\n"
			   "workers = 1\n"
			   "control_socket = %s\n"
			   "[listener main]\n"
			   "address = 127.0.0.1:%d\n"
			   "protocol = echo\n",
			   file, h_free_port()) > 0);
	char out[4096];
	int rc = h_drover_check(cfg, NULL, out, sizeof out);
	ck_assert_msg(rc == 1 && strstr(out, ":3: [server] control_socket:") && strstr(out, "is not a socket"),
		      "drover -t exited %d: %s", rc, out);
	struct h_opts o = { .no_wait_ready = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "drover started: status %#x; log:\n%.2500s", st, h_log_end(d));
	char *left = h_slurp(file, NULL);
	ck_assert_msg(left && strcmp(left, "keep me\n") == 0, "the file was replaced");
	free(left);
	free(cfg);
	h_drover_free(d);
	h_rm_rf(dir);
	free(dir);
}
END_TEST

/* ----------------------------------------------- racing commands */

START_TEST(a_droverctl_connection_open_across_an_upgrade_is_served_by_the_new_image)
{
	char *cfg = echo_config(1, "10s", h_free_port());
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	char path[400];
	snprintf(path, sizeof path, "%s/control.sock", d->dir);
	int early = h_connect_unix(path);
	ck_assert(early >= 0);
	char out[4096];
	/* drover has taken the connection in before the upgrade starts. */
	h_ctl_ok(d, "status", out, sizeof out);
	h_ctl_ok(d, "upgrade", out, sizeof out);
	ck_assert_msg(strstr(out, "(binary upgrade)"), "upgrade answered: %.2500s", out);
	/* Its command comes only now: the new image reads and answers it. */
	h_write_all(early, "status\n", 7);
	ssize_t n = h_read_all(early, out, sizeof out);
	close(early);
	char want[64];
	snprintf(want, sizeof want, "supervisor pid %d, generation 2,", (int)d->pid);
	ck_assert_msg(n > 0 && strstr(out, want) && strstr(out, "\nOK\n"), "answered: %.2500s\nlog:\n%.2500s",
		      n > 0 ? out : "", h_log_end(d));
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

START_TEST(a_reload_and_an_upgrade_asked_at_once_are_both_done_and_answered)
{
	char *cfg = echo_config(2, "10s", h_free_port());
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	/* Both lines are in before drover reads either. */
	int reload = h_ctl_send(d, "reload");
	int up = h_ctl_send(d, "upgrade");
	char out[4096];
	ssize_t n = h_read_all(reload, out, sizeof out);
	close(reload);
	ck_assert_msg(n > 0 && strncmp(out, "OK ok: generation", 17) == 0, "reload answered: %.2500s\nlog:\n%.2500s",
		      n > 0 ? out : "", h_log_end(d));
	n = h_read_all(up, out, sizeof out);
	close(up);
	ck_assert_msg(n > 0 && strstr(out, "OK ok: generation") && strstr(out, "(binary upgrade)"),
		      "upgrade answered: %.2500s\nlog:\n%.2500s", n > 0 ? out : "", h_log_end(d));
	ck_assert_uint_eq(h_log_count(d, "binary upgrade: adopted generation"), 1);
	/* SIGHUP and SIGUSR2 back to back: the upgrade waits for the reload. */
	h_drover_kill(d, SIGHUP);
	h_drover_kill(d, SIGUSR2);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (h_log_count(d, "binary upgrade: adopted generation") < 2) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the second upgrade never happened; log:\n%.2500s", h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	ck_assert_msg(!h_log_contains(d, "binary upgrade refused"), "log:\n%.2500s", h_log_end(d));
	/* "upgrading" until the new image's generation serves, then "serving". */
	deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		h_ctl_ok(d, "status", out, sizeof out);
		if (strstr(out, ", serving\n"))
			break;
		ck_assert_msg(strstr(out, ", upgrading\n") && h_left_ms(deadline) > 0, "status: %.2500s", out);
		h_pause_ms(SLICE_MS);
	}
	unsigned gen = 0;
	ck_assert(sscanf(out, "supervisor pid %*d, generation %u", &gen) == 1);
	char want[96];
	snprintf(want, sizeof want, "last reload: ok: generation %u serving (binary upgrade)", gen);
	ck_assert_msg(strstr(out, want), "status: %.2500s", out);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

/* ------------------------------------------- a START that cannot be sent */

/* The replacement of a killed worker is held before it runs (the fork
 * gate) while reopen-logs fills its control channel; once it runs, it
 * reports READY before it reads, so its START meets a full channel. It
 * must get START once it reads (or be replaced), never sit idle. */
START_TEST(a_start_that_meets_a_full_control_channel_is_delivered_once_the_worker_reads)
{
	int port = h_free_port();
	char *cfg = echo_config(1, "5s", port);
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	pid_t pids[4];
	ck_assert_uint_eq(h_worker_pids(d, pids, 4), 1);
	struct h_fork_gate gate;
	if (!h_fork_gate_close(&gate, d->pid)) {
		h_skip("%s", gate.why);
		h_drover_free(d);
		return;
	}
	ck_assert(kill(pids[0], SIGKILL) == 0);
	/* The replacement is seen in /proc, not asked for: a droverctl
	 * connection open at the fork would be copied into the held worker,
	 * and its answer would then never end (no EOF while it is held). */
	char out[8192];
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	pid_t now[4];
	while (h_worker_pids(d, now, 4) != 1 || now[0] == pids[0]) {
		ck_assert_msg(h_left_ms(deadline) > 0, "no replacement forked; log:\n%.2500s", h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	h_ctl_ok(d, "status", out, sizeof out);
	ck_assert_msg(strstr(out, " #0 starting ") && !strstr(out, "backing off"), "%.2500s", out);
	const char *line = strstr(out, "worker pid ");
	int held = 0;
	ck_assert_msg(line && sscanf(line, "worker pid %d", &held) == 1 && held == now[0], "%.2500s", out);
	unsigned sent = 0;
	while (!h_log_contains(d, "is full; REOPEN_LOGS held")) {
		ck_assert_msg(sent < 100000 && h_left_ms(deadline) > 0, "channel never full after %u; log:\n%.2500s", sent,
			      h_log_end(d));
		h_ctl_ok(d, "reopen-logs", out, sizeof out);
		sent++;
	}
	h_fork_gate_open(&gate);
	/* Served: the worker got START (or its replacement did). */
	bool echoed = false;
	while (!echoed) {
		ck_assert_msg(h_left_ms(deadline) > 0, "nobody serves after the channel was full; log:\n%.2500s",
			      h_log_end(d));
		int fd = h_connect_tcp(port);
		if (fd >= 0) {
			char got[6] = "";
			h_write_all(fd, "hello\n", 6);
			echoed = h_read_exact(fd, got, 6) && memcmp(got, "hello\n", 6) == 0;
			close(fd);
		}
		if (!echoed)
			h_pause_ms(SLICE_MS);
	}
	/* The worker that was held is the one serving: START reached it. */
	ck_assert_uint_eq(h_worker_pids(d, pids, 4), 1);
	ck_assert_int_eq(pids[0], held);
	printf("full control channel: %u reopen-logs filled it; START delivered once the worker read\n", sent);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults_sup");
	TCase *tc = tcase_create("faults_sup");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_new_binary_that_cannot_run_never_loses_the_service);
	tcase_add_test(tc, a_listener_a_reload_retires_refuses_at_once_while_the_old_generation_drains);
	tcase_add_test(tc, fork_failures_back_off_doubling_and_an_upgrade_says_fork_failed);
	tcase_add_test(tc, a_control_socket_path_holding_another_file_is_refused_and_left_alone);
	tcase_add_test(tc, a_droverctl_connection_open_across_an_upgrade_is_served_by_the_new_image);
	tcase_add_test(tc, a_reload_and_an_upgrade_asked_at_once_are_both_done_and_answered);
	tcase_add_test(tc, a_start_that_meets_a_full_control_channel_is_delivered_once_the_worker_reads);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
