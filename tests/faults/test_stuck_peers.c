/* test_stuck_peers: the supervisor never blocks on a peer, against
 * the real binary. A NOTIFY_SOCKET nobody reads, a binary upgrade whose
 * "-t" check hangs (a wrapper script that waits on a FIFO the test holds,
 * then execs the real binary), a worker that stops reading its control
 * channel (SIGSTOP), and droverctl clients that never read: through each,
 * the supervisor still reloads, reaps and replaces workers, answers
 * droverctl, feeds the watchdog and stops.
 *
 * Waits are bounded only to turn a hang into a failure; where no event
 * exists (the process table, a file appearing) the condition is polled at
 * a short interval under the same bound. */
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
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SLICE_MS 10

static const char base_config[] =
	"[server]\n"
	"workers = 2\n"
	"control_socket = @DIR@/control.sock\n"
	"shutdown_timeout = %s\n"
	"worker_timeout = %s\n"
	"[listener main]\n"
	"address = 127.0.0.1:%d\n"
	"protocol = echo\n";

static char *config_for(const char *shutdown_timeout, const char *worker_timeout)
{
	char *text = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	ck_assert(asprintf(&text, base_config, shutdown_timeout, worker_timeout, h_free_port()) > 0);
#pragma GCC diagnostic pop
	return text;
}

/* The first log line with prefix that is not a "started ..." line, into
 * out; false if none yet. */
static bool log_line(struct h_drover *d, const char *prefix, char *out, size_t cap)
{
	size_t len;
	char *all = h_slurp(d->log_path, &len);
	char *p = all;
	while (p && (p = strstr(p, prefix)) && p - all >= 8 && strncmp(p - 8, "started ", 8) == 0)
		p += strlen(prefix);
	if (p) {
		size_t n = strcspn(p, "\n");
		snprintf(out, cap, "%.*s", (int)n, p);
	}
	free(all);
	return p != NULL;
}

static bool pid_listed(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* SIGKILL one of the supervisor's children other than spare, and wait
 * until it is gone and the supervisor has n children again. */
static void kill_one_worker_and_wait_replacement(struct h_drover *d, pid_t spare, size_t n)
{
	pid_t pids[16];
	size_t got = h_worker_pids(d, pids, 16);
	pid_t victim = 0;
	for (size_t i = 0; i < got && !victim; i++)
		if (pids[i] != spare)
			victim = pids[i];
	ck_assert_msg(victim > 0, "no worker to kill");
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		got = h_worker_pids(d, pids, 16);
		if (!pid_listed(pids, got, victim) && got == n)
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "worker %d not replaced (%zu children); log:\n%.2500s", (int)victim,
			      got, h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
}

static void expect_clean_exit(struct h_drover *d)
{
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "drover ended with status %#x; log:\n%.2500s", st, h_log_end(d));
}

/* A datagram socket bound at addr (a path, or "@name" for an abstract
 * one), receiving credentials. */
static int notify_socket(const char *addr)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert(fd >= 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(addr);
	ck_assert(n < sizeof sun.sun_path);
	memcpy(sun.sun_path, addr, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] == '@' ? 0 : 1));
	if (addr[0] == '@')
		sun.sun_path[0] = '\0';
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, len) == 0, "bind %s: %s", addr, strerror(errno));
	int one = 1;
	ck_assert(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0);
	return fd;
}

/* Receive one datagram (waiting up to H_WAIT_MS); its length, -1 if none
 * came. *sender gets the pid from its credentials. */
static ssize_t notify_recv(int fd, char *buf, size_t cap, pid_t *sender, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	union {
		char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	*sender = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;
			memcpy(&u, CMSG_DATA(c), sizeof u);
			*sender = u.pid;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int passed;
				memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
				close(passed);
			}
		}
	}
	return n;
}

/* The lifecycle word of a datagram: 'R' READY=1, 'L' RELOADING=1, 'S'
 * STOPPING=1, 'W' WATCHDOG=1, 0 for anything else. */
static char notify_kind(const char *msg)
{
	static const struct {
		const char *key;
		char kind;
	} keys[] = { { "READY=1", 'R' }, { "RELOADING=1", 'L' }, { "STOPPING=1", 'S' }, { "WATCHDOG=1", 'W' } };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t k = strlen(keys[i].key);
		if (strncmp(msg, keys[i].key, k) == 0 && (msg[k] == '\n' || msg[k] == '\0'))
			return keys[i].kind;
	}
	return 0;
}

/* ------------------------------------------------ the notify socket */

START_TEST(a_notify_socket_nobody_reads_holds_back_no_reload_replacement_or_stop)
{
	char addr[64];
	snprintf(addr, sizeof addr, "@drover-nonblock-%d-%lld", (int)getpid(), (long long)h_now_ms());
	int nfd = notify_socket(addr);
	char env[96];
	snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
	const char *extra_env[] = { env, NULL };
	struct h_opts o = { .extra_env = extra_env };
	char *cfg = config_for("10s", "30s");
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	ck_assert(h_wait_workers(d, 2));
	/* The socket's queue (about ten datagrams) fills in the first few
	 * reloads; sd_notify() would block the supervisor from there on. */
	for (unsigned i = 0; i < 30; i++) {
		char out[4096];
		h_ctl_ok(d, "reload", out, sizeof out);
		char want[64];
		snprintf(want, sizeof want, "OK ok: generation %u serving (reload)", i + 2);
		ck_assert_msg(strstr(out, want), "reload %u answered: %.2500s", i + 1, out);
	}
	/* Every old generation drains away. */
	ck_assert_msg(h_wait_workers(d, 2), "old generations still alive; log:\n%.2500s", h_log_end(d));
	ck_assert_uint_eq(h_log_count(d, "ready: generation"), 31);
	kill_one_worker_and_wait_replacement(d, 0, 2);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	/* What the socket did take is the start of the true sequence, in order:
	 * READY, then RELOADING and READY for each reload. */
	char msg[1024];
	pid_t sender;
	size_t n = 0;
	char seq[128] = "";
	while (notify_recv(nfd, msg, sizeof msg, &sender, 0) >= 0) {
		ck_assert_int_eq(sender, d->pid);
		char k = notify_kind(msg);
		if (k && n + 1 < sizeof seq) {
			seq[n++] = k;
			seq[n] = '\0';
		}
	}
	ck_assert_msg(n >= 2, "only [%s] was delivered", seq);
	for (size_t i = 0; i < n; i++) {
		char want = i == 0 ? 'R' : i % 2 ? 'L' : 'R';
		ck_assert_msg(seq[i] == want, "delivered out of order: [%s]", seq);
	}
	close(nfd);
	h_drover_free(d);
}
END_TEST

START_TEST(notifications_held_for_a_slow_reader_arrive_in_order_and_none_is_lost)
{
	char *dir = h_tmpdir();
	char path[300];
	snprintf(path, sizeof path, "%s/notify.sock", dir);
	int nfd = notify_socket(path);
	char env[400];
	snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", path);
	const char *extra_env[] = { env, "WATCHDOG_USEC=1000000", NULL };
	struct h_opts o = { .extra_env = extra_env };
	char *cfg = config_for("10s", "30s");
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	for (unsigned i = 0; i < 10; i++) {
		char out[4096];
		h_ctl_ok(d, "reload", out, sizeof out);
	}
	/* Now read: what was held comes, in order, as the socket has room. */
	char seq[256] = "";
	size_t n = 0, readies = 0, stoppings = 0;
	char msg[1024], last_status[512] = "";
	pid_t sender;
	bool stopped = false;
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (stoppings == 0) {
		ck_assert_msg(h_left_ms(deadline) > 0, "only [%s] arrived; log:\n%.2500s", seq, h_log_end(d));
		if (notify_recv(nfd, msg, sizeof msg, &sender, h_left_ms(deadline)) < 0)
			continue;
		ck_assert_msg(sender == d->pid, "credentials say pid %d, drover is %d", (int)sender, (int)d->pid);
		char k = notify_kind(msg);
		const char *st = strstr(msg, "STATUS=");
		if (st)
			snprintf(last_status, sizeof last_status, "%s", st + 7);
		if (k && k != 'W' && n + 1 < sizeof seq) {
			seq[n++] = k;
			seq[n] = '\0';
		}
		readies += k == 'R';
		stoppings += k == 'S';
		if (readies == 11 && !stopped) {
			/* Every READY is here: the stop's STOPPING=1 must follow. */
			h_drover_kill(d, SIGTERM);
			stopped = true;
		}
	}
	char want[32] = "R";
	for (int i = 0; i < 10; i++)
		strcat(want, "LR");
	strcat(want, "S");
	ck_assert_str_eq(seq, want);
	ck_assert_msg(strncmp(last_status, "stopping", 8) == 0, "last STATUS=%s", last_status);
	expect_clean_exit(d);
	close(nfd);
	h_drover_free(d);
	h_rm_rf(dir);
	free(dir);
}
END_TEST

/* ------------------------------------------- a slow upgrade check */

struct slow_upgrade {
	char dir[300];
	char wrapper[400];
	char gate[400];   /* FIFO the check waits on */
	char pidfile[400];/* the waiting check's pid */
	char *old_bin;
};

/* A wrapper that is "the installed binary": its -t waits on a FIFO until
 * the test opens the gate, then it execs the real drover (keeping its own
 * name as argv[0], so the upgrade runs the wrapper again). */
static void slow_upgrade_setup(struct slow_upgrade *u)
{
	char *dir = h_tmpdir();
	snprintf(u->dir, sizeof u->dir, "%s", dir);
	free(dir);
	snprintf(u->wrapper, sizeof u->wrapper, "%s/drover", u->dir);
	snprintf(u->gate, sizeof u->gate, "%s/gate", u->dir);
	snprintf(u->pidfile, sizeof u->pidfile, "%s/check.pid", u->dir);
	ck_assert(mkfifo(u->gate, 0600) == 0);
	const char *real = getenv("DROVER_BIN");
	ck_assert_msg(real && *real, "DROVER_BIN not set");
	char script[2048];
	snprintf(script, sizeof script,
		 "#!/bin/bash\n"
		 "if [ \"$1\" = -t ]; then echo $$ > '%s.tmp' && mv '%s.tmp' '%s'; read -r _ < '%s'; fi\n"
		 "exec -a \"$0\" '%s' \"$@\"\n",
		 u->pidfile, u->pidfile, u->pidfile, u->gate, real);
	h_write_file(u->wrapper, script);
	ck_assert(chmod(u->wrapper, 0755) == 0);
	u->old_bin = strdup(real);
	setenv("DROVER_BIN", u->wrapper, 1);
}

static void slow_upgrade_restore(struct slow_upgrade *u)
{
	setenv("DROVER_BIN", u->old_bin, 1);
	free(u->old_bin);
	h_rm_rf(u->dir);
}

/* Wait until the check runs and waits at the gate; its pid. */
static pid_t slow_upgrade_wait_check(struct slow_upgrade *u, struct h_drover *d)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		char *text = h_slurp(u->pidfile, NULL);
		if (text) {
			pid_t pid = (pid_t)strtol(text, NULL, 10);
			free(text);
			return pid;
		}
		ck_assert_msg(h_left_ms(deadline) > 0, "the upgrade check never started; log:\n%.2500s", h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
}

/* drover started as the wrapper (notify on), an upgrade asked for, and its
 * check waiting at the gate; the upgrade client's fd. */
static int slow_upgrade_start(struct slow_upgrade *u, struct h_drover **d, const char *const *extra_env, pid_t *check)
{
	slow_upgrade_setup(u);
	struct h_opts o = { .notify = true, .extra_env = extra_env };
	char *cfg = config_for("10s", "30s");
	*d = h_drover_start(cfg, &o);
	free(cfg);
	ck_assert(h_wait_workers(*d, 2));
	int up = h_ctl_send(*d, "upgrade");
	*check = slow_upgrade_wait_check(u, *d);
	return up;
}

static void slow_upgrade_open_gate(struct slow_upgrade *u)
{
	int fd = open(u->gate, O_WRONLY | O_CLOEXEC);
	ck_assert(fd >= 0);
	h_write_all(fd, "go\n", 3);
	close(fd);
}

START_TEST(a_slow_upgrade_check_does_not_stop_reaping_status_or_the_watchdog)
{
	struct slow_upgrade u;
	struct h_drover *d;
	pid_t check;
	const char *extra_env[] = { "WATCHDOG_USEC=1000000", NULL };
	int up = slow_upgrade_start(&u, &d, extra_env, &check);
	/* While the check waits at the gate: */
	char out[16384];
	h_ctl_ok(d, "status", out, sizeof out);
	ck_assert_msg(strstr(out, "upgrade: checking"), "status during the check: %s", out);
	size_t from = d->notify_len;
	ck_assert_msg(h_notify_wait(d, "WATCHDOG=1", &from), "no WATCHDOG=1 during the check; log:\n%.2500s", h_log_end(d));
	kill_one_worker_and_wait_replacement(d, check, 3);
	ck_assert_msg(h_proc_state(check) != 0 && h_proc_state(check) != 'Z',
		      "the check ended before the supervisor had done all that");
	slow_upgrade_open_gate(&u);
	ssize_t n = h_read_all(up, out, sizeof out);
	close(up);
	ck_assert_msg(n > 0 && strstr(out, "OK ok: generation") && strstr(out, "(binary upgrade)"),
		      "upgrade answered: %.2500s\nlog:\n%.2500s", n > 0 ? out : "", h_log_end(d));
	ck_assert_uint_eq(h_log_count(d, "binary upgrade: adopted generation"), 1);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
	slow_upgrade_restore(&u);
}
END_TEST

START_TEST(a_reload_asked_during_the_upgrade_check_is_answered_by_the_upgrade)
{
	struct slow_upgrade u;
	struct h_drover *d;
	pid_t check;
	int up = slow_upgrade_start(&u, &d, NULL, &check);
	char out[16384];
	h_ctl_ok(d, "status", out, sizeof out);
	ck_assert_msg(strstr(out, ", upgrading\n"), "status during the check: %s", out);
	int reload = h_ctl_send(d, "reload");
	/* The reload waits (the upgrade's new image reads the file again). */
	ck_assert_msg(h_log_wait(d, "reload queued until the upgrade in progress ends"), "log:\n%.2500s", h_log_end(d));
	slow_upgrade_open_gate(&u);
	ssize_t n = h_read_all(up, out, sizeof out);
	close(up);
	ck_assert_msg(n > 0 && strstr(out, "OK ok: generation 2 serving (binary upgrade)"), "upgrade answered: %.2500s",
		      n > 0 ? out : "");
	n = h_read_all(reload, out, sizeof out);
	close(reload);
	ck_assert_msg(n > 0 && strstr(out, "OK ok: generation 2 serving (binary upgrade)"), "reload answered: %.2500s\nlog:\n%.2500s",
		      n > 0 ? out : "", h_log_end(d));
	h_ctl_ok(d, "status", out, sizeof out);
	ck_assert_msg(strstr(out, ", serving\n") && strstr(out, "last reload: ok: generation 2 serving (binary upgrade)"),
		      "status after the upgrade: %s", out);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
	slow_upgrade_restore(&u);
}
END_TEST

START_TEST(sigterm_during_a_slow_upgrade_check_cancels_it_and_stops)
{
	struct slow_upgrade u;
	struct h_drover *d;
	pid_t check;
	int up = slow_upgrade_start(&u, &d, NULL, &check);
	h_drover_kill(d, SIGTERM);
	char out[4096];
	ssize_t n = h_read_all(up, out, sizeof out);
	close(up);
	ck_assert_msg(n > 0 && strstr(out, "ERR upgrade cancelled: drover is stopping"), "upgrade answered: %.2500s",
		      n > 0 ? out : "");
	expect_clean_exit(d);
	ck_assert(h_notify_wait(d, "STOPPING=1", NULL));
	ck_assert_msg(!h_log_contains(d, "did not finish"), "the check ran out its time; log:\n%.2500s", h_log_end(d));
	/* The check was killed, not left waiting at the gate. */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (h_proc_state(check) != 0 && h_proc_state(check) != 'Z') {
		ck_assert_msg(h_left_ms(deadline) > 0, "the check (pid %d) outlived the stop", (int)check);
		h_pause_ms(SLICE_MS);
	}
	h_drover_free(d);
	slow_upgrade_restore(&u);
}
END_TEST

/* ---------------------------------------- a full control channel */

START_TEST(a_worker_that_stops_reading_its_channel_gets_what_was_held_once_it_reads)
{
	/* worker_timeout is long: this is about the channel, not the hung path. */
	char *cfg = config_for("60s", "60s");
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	ck_assert(h_wait_workers(d, 2));
	pid_t pids[4];
	ck_assert_uint_eq(h_worker_pids(d, pids, 4), 2);
	pid_t stopped = pids[0];
	ck_assert_int_eq(kill(stopped, SIGSTOP), 0);
	/* Each reopen-logs puts one message in every worker's channel. */
	char full[128];
	snprintf(full, sizeof full, "control channel to worker pid %d (generation 1) is full", (int)stopped);
	for (int i = 0; i < 20000 && !h_log_contains(d, full); i += 100)
		for (int j = 0; j < 100; j++) {
			char out[256];
			h_ctl_ok(d, "reopen-logs", out, sizeof out);
		}
	ck_assert_msg(h_log_contains(d, full), "the channel never filled; log:\n%.2500s", h_log_end(d));
	/* A reload: the stopped worker's DRAIN waits in the supervisor. */
	char out[4096];
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 2 serving"), "reload answered: %.2500s", out);
	ck_assert_int_eq(kill(stopped, SIGCONT), 0);
	/* Continued, it reads what the supervisor held for it: DRAIN among
	 * it, so it ends on its own and cleanly, not by a SIGKILL at the
	 * drain deadline a minute from now. */
	char prefix[128], line[512];
	snprintf(prefix, sizeof prefix, "worker pid %d (generation 1, #", (int)stopped);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (!log_line(d, prefix, line, sizeof line)) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the continued worker never ended; log:\n%.2500s", h_log_end(d));
		h_pause_ms(SLICE_MS);
	}
	ck_assert_msg(strstr(line, "exited with status 0"), "not a clean exit: %s", line);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

/* ---------------------------------------- droverctl clients */

START_TEST(droverctl_clients_that_never_read_do_not_stop_others_being_answered)
{
	char *cfg = config_for("10s", "30s");
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	free(cfg);
	char path[400];
	snprintf(path, sizeof path, "%s/control.sock", d->dir);
	int stuck[20];
	for (size_t i = 0; i < 20; i++)
		stuck[i] = h_ctl_send(d, "status");
	int silent = h_connect_unix(path);   /* connects, never sends */
	ck_assert(silent >= 0);
	int partial = h_connect_unix(path);  /* half a command line */
	ck_assert(partial >= 0);
	h_write_all(partial, "sta", 3);
	char out[16384];
	h_ctl_ok(d, "status", out, sizeof out);
	h_ctl_ok(d, "reload", out, sizeof out);
	ck_assert_msg(strstr(out, "generation 2 serving"), "reload answered: %.2500s", out);
	/* Each stuck client, read at last, has its whole answer. */
	for (size_t i = 0; i < 20; i++) {
		ssize_t n = h_read_all(stuck[i], out, sizeof out);
		ck_assert_msg(n > 0 && strstr(out, "supervisor pid ") == out && strstr(out, "\nOK\n"), "client %zu: %s", i,
			      n > 0 ? out : "");
		close(stuck[i]);
	}
	close(silent);
	close(partial);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

/* A reload that adds a unix listener on a path where a live server that
 * never accepts has a full queue: the supervisor's check for a stale socket
 * must not block in connect(). The reload fails (in use), and the
 * supervisor goes on answering. */
START_TEST(a_reload_onto_a_unix_socket_with_a_full_queue_fails_and_does_not_block)
{
	char *cfg = config_for("10s", "30s");
	struct h_opts o = { 0 };
	struct h_drover *d = h_drover_start(cfg, &o);
	char path[400];
	snprintf(path, sizeof path, "%s/busy.sock", d->dir);
	int busy = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(busy, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ck_assert(strlen(path) < sizeof sun.sun_path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert(bind(busy, (struct sockaddr *)&sun, sizeof sun) == 0);
	ck_assert(listen(busy, 0) == 0);
	/* Fill its queue: connects that would block are refused with EAGAIN. */
	int queued[64];
	size_t n = 0;
	for (; n < 64; n++) {
		queued[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(queued[n], 0);
		if (connect(queued[n], (struct sockaddr *)&sun, sizeof sun) < 0) {
			ck_assert_msg(errno == EAGAIN, "connect: %s", strerror(errno));
			close(queued[n]);
			break;
		}
	}
	ck_assert_msg(n < 64, "the queue never filled");
	char *more = NULL;
	ck_assert(asprintf(&more, "%s[listener busy]\naddress = unix:%s\nprotocol = echo\n", cfg, path) > 0);
	free(cfg);
	char *text = strdup(more);
	free(more);
	/* @DIR@ is already expanded in the running config's path names. */
	char *at = strstr(text, "@DIR@");
	ck_assert(at != NULL);
	char *expanded = NULL;
	*at = '\0';
	ck_assert(asprintf(&expanded, "%s%s%s", text, d->dir, at + 5) > 0);
	free(text);
	h_config_replace(d, expanded);
	free(expanded);
	int fd = h_ctl_send(d, "reload");
	char out[16384];
	ssize_t got = h_read_all(fd, out, sizeof out);
	close(fd);
	ck_assert_msg(got > 0, "reload was not answered: the supervisor is stuck\n%s", h_log_end(d));
	ck_assert_msg(strstr(out, "ERR") && strstr(out, "in use"), "reload answered: %s", out);
	h_ctl_ok(d, "status", out, sizeof out);
	for (size_t i = 0; i < n; i++)
		close(queued[i]);
	close(busy);
	h_drover_kill(d, SIGTERM);
	expect_clean_exit(d);
	h_drover_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nonblock");
	TCase *tc = tcase_create("nonblock");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, a_notify_socket_nobody_reads_holds_back_no_reload_replacement_or_stop);
	tcase_add_test(tc, notifications_held_for_a_slow_reader_arrive_in_order_and_none_is_lost);
	tcase_add_test(tc, a_slow_upgrade_check_does_not_stop_reaping_status_or_the_watchdog);
	tcase_add_test(tc, a_reload_asked_during_the_upgrade_check_is_answered_by_the_upgrade);
	tcase_add_test(tc, sigterm_during_a_slow_upgrade_check_cancels_it_and_stops);
	tcase_add_test(tc, a_worker_that_stops_reading_its_channel_gets_what_was_held_once_it_reads);
	tcase_add_test(tc, droverctl_clients_that_never_read_do_not_stop_others_being_answered);
	tcase_add_test(tc, a_reload_onto_a_unix_socket_with_a_full_queue_fails_and_does_not_block);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
