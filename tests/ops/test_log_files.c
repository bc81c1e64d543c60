/* test_log_files: files that workers write (the access log) are opened by the
 * supervisor before privileges drop and handed to the workers, and a generation whose workers cannot start fails at once with
 * their reason, against the real drover binary: workers
 * running as nobody write into a directory only root may write, a rename
 * plus SIGUSR1 moves them to the new file, -t names an access log it
 * cannot open by file:line, a reload whose workers cannot allocate (the
 * supervisor's address space capped with prlimit, inherited by the fork)
 * or whose access log has no directory fails at once while the old
 * generation serves, and a start that cannot open it exits 1 with why.
 * Waits are on responses, lines in files and process exits; each bound
 * only turns a hang into a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct site {
	char *dir;           /* world-traversable, so that nobody reaches www */
	char www[512];
	char logs[512];      /* mode 0700, owned by root */
	char log[600];       /* logs/access.log */
	int port;
	struct h_drover *d;
};

/* The config of a site: workers as user (NULL: none), http_extra more
 * [http] lines (the access log is logs/access.log unless they set one). */
static char *site_config(const struct site *s, unsigned workers, const char *user, const char *http_extra)
{
	char *text = NULL;
	int n = asprintf(&text,
			 "[server]\nworkers = %u\n%s%s%scontrol_socket = @DIR@/control.sock\nshutdown_timeout = 5s\n\n"
			 "[listener web]\nprotocol = http\n\n"
			 "[http]\nroot = %s\n%s\n",
			 workers, user ? "user = " : "", user ? user : "", user ? "\n" : "", s->www,
			 http_extra ? http_extra : "");
	ck_assert(n > 0);
	return text;
}

static void site_make(struct site *s)
{
	memset(s, 0, sizeof(*s));
	s->dir = h_tmpdir();
	ck_assert(chmod(s->dir, 0755) == 0);
	snprintf(s->www, sizeof s->www, "%s/www", s->dir);
	snprintf(s->logs, sizeof s->logs, "%s/logs", s->dir);
	snprintf(s->log, sizeof s->log, "%s/access.log", s->logs);
	ck_assert(mkdir(s->www, 0755) == 0);
	ck_assert(mkdir(s->logs, 0700) == 0);
	char p[700];
	snprintf(p, sizeof p, "%s/page.txt", s->www);
	h_write_file(p, "page\n");
}

static void site_start(struct site *s, unsigned workers, const char *user, const char *http_extra)
{
	int fd = h_listen_tcp(&s->port);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1 };
	char *text = site_config(s, workers, user, http_extra);
	s->d = h_drover_start(text, &o);
	free(text);
	close(fd);
	ck_assert_msg(h_wait_workers(s->d, workers), "not %u workers; log:\n%s", workers, h_log_end(s->d));
}

static void site_free(struct site *s)
{
	if (s->d)
		h_drover_free(s->d);
	h_rm_rf(s->dir);
	free(s->dir);
}

/* One GET of path on a new connection; its status. */
static int get(int port, const char *path)
{
	char raw[512];
	snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	struct h_response r;
	ck_assert_msg(h_http_request(port, raw, &r), "no response to %s", path);
	int status = r.status;
	h_http_response_free(&r);
	return status;
}

static bool file_has(const char *path, const char *needle)
{
	char *s = h_slurp(path, NULL);
	bool yes = s && strstr(s, needle);
	free(s);
	return yes;
}

/* Wait until path contains needle (the line is written as the response
 * ends, which the client may see first). */
static bool file_wait(const char *path, const char *needle)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (!file_has(path, needle)) {
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(5);
	}
	return true;
}

static uid_t proc_uid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert(f != NULL);
	unsigned long uid = (unsigned long)-1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Uid: %lu", &uid) == 1)
			break;
	fclose(f);
	return (uid_t)uid;
}

static void assert_workers_are(struct site *s, uid_t uid, size_t n)
{
	pid_t pids[8];
	ck_assert_uint_eq(h_worker_pids(s->d, pids, 8), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(proc_uid(pids[i]) == uid, "worker %d runs as uid %u, not %u", (int)pids[i],
			      (unsigned)proc_uid(pids[i]), (unsigned)uid);
}

static uid_t nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");
	ck_assert_msg(pw != NULL, "no user nobody");
	return pw->pw_uid;
}

/* ------------------------------------------------------------------ tests */

START_TEST(workers_as_nobody_log_into_a_directory_only_root_may_write)
{
	struct site s;
	site_make(&s);
	char extra[700];
	snprintf(extra, sizeof extra, "access_log = %s\n", s.log);
	site_start(&s, 2, "nobody", extra);
	assert_workers_are(&s, nobody_uid(), 2);
	for (int i = 0; i < 10; i++) {
		char path[64];
		snprintf(path, sizeof path, "/page.txt?n=%d", i);
		ck_assert_int_eq(get(s.port, path), 200);
	}
	for (int i = 0; i < 10; i++) {
		char needle[64];
		snprintf(needle, sizeof needle, "\"GET /page.txt?n=%d HTTP/1.1\" 200 5 ", i);
		ck_assert_msg(file_wait(s.log, needle), "no line for request %d in %s; log:\n%s", i, s.log,
			      h_log_end(s.d));
	}
	struct stat st;
	ck_assert(stat(s.logs, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0700);
	ck_assert(!h_log_contains(s.d, "cannot open access log"));
	site_free(&s);
}
END_TEST

START_TEST(sigusr1_after_a_rename_moves_nobody_workers_to_the_new_file)
{
	struct site s;
	site_make(&s);
	char extra[700], rotated[700];
	snprintf(extra, sizeof extra, "access_log = %s\n", s.log);
	snprintf(rotated, sizeof rotated, "%s.1", s.log);
	site_start(&s, 2, "nobody", extra);
	ck_assert_int_eq(get(s.port, "/page.txt?before"), 200);
	ck_assert(file_wait(s.log, "?before "));
	ck_assert(rename(s.log, rotated) == 0);
	h_drover_kill(s.d, SIGUSR1);
	ck_assert(h_log_wait(s.d, "reopening log files"));
	/* Each worker takes the new file when it reads REOPEN_LOGS and says so. */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (h_log_count(s.d, "log files reopened (1)") < 2) {
		ck_assert_msg(h_left_ms(deadline) > 0, "not every worker reopened; log:\n%s", h_log_end(s.d));
		h_pause_ms(5);
	}
	/* From now on every line goes to the new file. */
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(get(s.port, "/page.txt?late"), 200);
	ck_assert(file_wait(s.log, "?late "));
	ck_assert_msg(file_has(rotated, "?before ") && !file_has(rotated, "?late "),
		      "the rotated file got lines after the reopen");
	assert_workers_are(&s, nobody_uid(), 2);
	ck_assert(!h_log_contains(s.d, "reopen-logs:"));
	site_free(&s);
}
END_TEST

START_TEST(check_names_an_access_log_it_cannot_open_by_file_and_line)
{
	char *dir = h_tmpdir();
	ck_assert(chmod(dir, 0755) == 0); /* the root: the workers (nobody) must search it */
	char cfg[2048], out[8192];
	/* access_log is on line 6 in each of these */
	static const char fmt[] = "[server]\nworkers = 1\nuser = nobody\n[http]\nroot = %s\naccess_log = %s\n"
				  "[listener web]\naddress = 127.0.0.1:1\n";
	char missing[600];
	snprintf(missing, sizeof missing, "%s/no-such-dir/access.log", dir);
	snprintf(cfg, sizeof cfg, fmt, dir, missing);
	ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
	ck_assert_msg(strstr(out, "drover.ini:6: [http] access_log: cannot open ") &&
			      strstr(out, "no-such-dir/access.log: No such file or directory"),
		      "-t said: %s", out);
	/* a directory is not a file to append to */
	snprintf(cfg, sizeof cfg, fmt, dir, dir);
	ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
	ck_assert_msg(strstr(out, "drover.ini:6: [http] access_log: cannot open ") && strstr(out, "Is a directory"),
		      "-t said: %s", out);
	/* a root-only directory is fine: the supervisor opens it as root */
	char logs[600], ok[700];
	snprintf(logs, sizeof logs, "%s/logs", dir);
	ck_assert(mkdir(logs, 0700) == 0);
	snprintf(ok, sizeof ok, "%s/access.log", logs);
	snprintf(cfg, sizeof cfg, fmt, dir, ok);
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "-t said: %s", out);
	snprintf(cfg, sizeof cfg, fmt, dir, "stderr");
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "-t said: %s", out);
	h_rm_rf(dir);
	free(dir);
}
END_TEST

static unsigned long vm_size_bytes(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert(f != NULL);
	unsigned long kb = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	ck_assert(kb > 0);
	return kb * 1024;
}

/* droverctl reload; its whole answer into out. */
static void ctl_reload(struct h_drover *d, char *out, size_t cap)
{
	int fd = h_ctl_send(d, "reload");
	ck_assert(h_read_all(fd, out, cap) >= 0);
	close(fd);
}

static void rewrite(struct site *s, const char *http_extra)
{
	char *text = site_config(s, 2, NULL, http_extra);
	char *p;
	/* @DIR@ is drover's own directory */
	while ((p = strstr(text, "@DIR@"))) {
		char *t = NULL;
		ck_assert(asprintf(&t, "%.*s%s%s", (int)(p - text), text, s->d->dir, p + 5) > 0);
		free(text);
		text = t;
	}
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s.new", s->d->config_path);
	h_write_file(tmp, text);
	ck_assert(rename(tmp, s->d->config_path) == 0);
	free(text);
}

START_TEST(a_reload_whose_workers_cannot_start_fails_at_once_and_the_old_generation_serves)
{
	struct site s;
	site_make(&s);
	h_asan_may_return_null();
	site_start(&s, 2, NULL, "file_cache_entries = 16\n");
	pid_t before[4];
	ck_assert_uint_eq(h_worker_pids(s.d, before, 4), 2);
	char out[4096];

	/* 1. The new workers cannot allocate their open-file cache: the
	 * supervisor's address space is capped (a fork inherits the cap)
	 * a little above what it uses, and the new config wants 8 MiB. */
	struct rlimit was, cap;
	ck_assert(prlimit(s.d->pid, RLIMIT_AS, NULL, &was) == 0);
	cap = (struct rlimit){ .rlim_cur = vm_size_bytes(s.d->pid) + (4ul << 20), .rlim_max = was.rlim_max };
	ck_assert_msg(prlimit(s.d->pid, RLIMIT_AS, &cap, NULL) == 0, "prlimit: %s", strerror(errno));
	rewrite(&s, "file_cache_entries = 1048576\n");
	ctl_reload(s.d, out, sizeof out);
	ck_assert(prlimit(s.d->pid, RLIMIT_AS, &was, NULL) == 0);
	printf("reload with workers that cannot allocate: %s", out);
	ck_assert_msg(strncmp(out, "ERR", 3) == 0 && strstr(out, "(generation 2) could not start") &&
			      !strstr(out, "in time"),
		      "reload answered: %s\nlog:\n%s", out, h_log_end(s.d));
	ck_assert_int_eq(get(s.port, "/page.txt"), 200);

	/* 2. The access log's directory does not exist: the supervisor
	 * cannot open it for the new workers, and says where it is set. */
	char extra[700];
	snprintf(extra, sizeof extra, "file_cache_entries = 16\naccess_log = %s/gone/access.log\n", s.dir);
	rewrite(&s, extra);
	ctl_reload(s.d, out, sizeof out);
	printf("reload with an access log in a missing directory: %s", out);
	ck_assert_msg(strncmp(out, "ERR", 3) == 0 && strstr(out, "drover.ini:12: [http] access_log: cannot open") &&
			      strstr(out, "No such file or directory"),
		      "reload answered: %s", out);

	/* The old generation served throughout and serves on. */
	ck_assert_int_eq(get(s.port, "/page.txt"), 200);
	pid_t after[4];
	ck_assert(h_wait_workers(s.d, 2)); /* the failed generation's other worker is gone too */
	ck_assert_uint_eq(h_worker_pids(s.d, after, 4), 2);
	for (int i = 0; i < 2; i++)
		ck_assert(after[i] == before[0] || after[i] == before[1]);
	ck_assert(h_notify_wait(s.d, "reload failed", NULL));
	site_free(&s);
}
END_TEST

START_TEST(a_start_whose_access_log_cannot_be_opened_exits_1_with_the_reason)
{
	struct site s;
	site_make(&s);
	char extra[700];
	snprintf(extra, sizeof extra, "access_log = %s/gone/access.log\n", s.dir);
	int fd = h_listen_tcp(&s.port);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1, .no_wait_ready = true };
	char *text = site_config(&s, 2, "nobody", extra);
	s.d = h_drover_start(text, &o);
	free(text);
	close(fd);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x; log:\n%s", st, h_log_end(s.d));
	ck_assert_msg(h_log_contains(s.d, "not starting: ") &&
			      h_log_contains(s.d, "drover.ini:12: [http] access_log: cannot open") &&
			      h_log_contains(s.d, "gone/access.log: No such file or directory"),
		      "log:\n%s", h_log_end(s.d));
	ck_assert(h_notify_wait(s.d, "STATUS=failed: ", NULL));
	site_free(&s);
}
END_TEST

/* ------------------------------------------- fork failing (RLIMIT_NPROC) */

/* A drover run as a uid nobody else uses, so that RLIMIT_NPROC counts its
 * own processes only (root's fork ignores the limit). Everything it needs
 * is in a world-readable directory it owns: a copy of the binary, the
 * config, the site, its log. */
#define NPROC_UID 54321

struct plain {
	char *dir;
	char bin[600], cfg[600], log[600];
	int port;
	pid_t pid;
	int notify_fd;       /* its NOTIFY_SOCKET, read by plain_notify() */
	struct h_drover ctl; /* only dir, for h_ctl_send */
};

static void plain_start(struct plain *p, rlim_t nproc)
{
	memset(p, 0, sizeof(*p));
	p->dir = h_tmpdir();
	ck_assert(chmod(p->dir, 0755) == 0 && chown(p->dir, NPROC_UID, NPROC_UID) == 0);
	snprintf(p->bin, sizeof p->bin, "%s/drover", p->dir);
	snprintf(p->cfg, sizeof p->cfg, "%s/drover.ini", p->dir);
	snprintf(p->log, sizeof p->log, "%s/drover.log", p->dir);
	const char *src = getenv("DROVER_BIN") && *getenv("DROVER_BIN") ? getenv("DROVER_BIN") : "./src/drover";
	char cmd[1400], page[700];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 0755 '%s'", src, p->bin, p->bin);
	ck_assert_int_eq(h_run(cmd, NULL, 0), 0);
	snprintf(page, sizeof page, "%s/page.txt", p->dir);
	h_write_file(page, "page\n");
	p->port = h_free_port();
	char text[2048];
	snprintf(text, sizeof text,
		 "[server]\nworkers = 2\ncontrol_socket = %s/control.sock\nshutdown_timeout = 5s\n\n"
		 "[listener web]\naddress = 127.0.0.1:%d\n\n[http]\nroot = %s\n",
		 p->dir, p->port, p->dir);
	h_write_file(p->cfg, text);
	snprintf(p->ctl.dir, sizeof p->ctl.dir, "%s", p->dir);
	int out = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(out >= 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/notify.sock", p->dir);
	p->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert(p->notify_fd >= 0 && bind(p->notify_fd, (struct sockaddr *)&sun, sizeof sun) == 0 &&
		  chmod(sun.sun_path, 0666) == 0);
	char notify_env[200];
	snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", sun.sun_path);
	p->pid = fork();
	ck_assert(p->pid >= 0);
	if (p->pid == 0) {
		struct rlimit lim;
		getrlimit(RLIMIT_NPROC, &lim);
		lim.rlim_cur = nproc < lim.rlim_max ? nproc : lim.rlim_max;
		/* the limit after the uid change: set_user() would flag an exec
		 * over it, and it is drover's forks this is about */
		if (dup2(out, 1) < 0 || dup2(out, 2) < 0 || setgroups(0, NULL) < 0 ||
		    setresgid(NPROC_UID, NPROC_UID, NPROC_UID) < 0 || setresuid(NPROC_UID, NPROC_UID, NPROC_UID) < 0 ||
		    setrlimit(RLIMIT_NPROC, &lim) < 0 || putenv(notify_env) != 0)
			_exit(121);
		execl(p->bin, p->bin, "-c", p->cfg, (char *)NULL);
		_exit(122);
	}
	close(out);
}

/* Its exit status, waiting (bounded); -1 if it did not exit. */
static int plain_wait(struct plain *p)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		int st;
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->pid = 0;
			return st;
		}
		if (h_left_ms(deadline) == 0)
			return -1;
		h_pause_ms(10);
	}
}

/* The last STATUS= it sent so far, into out ("" if none). */
static void plain_last_status(struct plain *p, char *out, size_t cap)
{
	char dgram[4096];
	ssize_t n;
	out[0] = '\0';
	while ((n = recv(p->notify_fd, dgram, sizeof dgram - 1, 0)) > 0) {
		dgram[n] = '\0';
		for (char *line = strtok(dgram, "\n"); line; line = strtok(NULL, "\n"))
			if (strncmp(line, "STATUS=", 7) == 0)
				snprintf(out, cap, "%s", line + 7);
	}
}

static bool plain_log_wait(struct plain *p, const char *needle)
{
	return file_wait(p->log, needle);
}

static void plain_free(struct plain *p)
{
	if (p->pid > 0) {
		pid_t workers[8];
		p->ctl.pid = p->pid;
		size_t n = h_worker_pids(&p->ctl, workers, 8);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		for (size_t i = 0; i < n; i++)
			kill(workers[i], SIGKILL);
	}
	close(p->notify_fd);
	h_rm_rf(p->dir);
	free(p->dir);
}

START_TEST(a_start_whose_workers_cannot_be_forked_exits_1_with_the_reason)
{
	struct plain p;
	plain_start(&p, 1); /* itself: no room for a worker */
	int st = plain_wait(&p);
	char *log = h_slurp(p.log, NULL);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %#x; log:\n%s", st, log);
	ck_assert_msg(strstr(log, "not starting: cannot start a worker: fork: Resource temporarily unavailable"),
		      "log:\n%s", log);
	free(log);
	char status[1024];
	plain_last_status(&p, status, sizeof status);
	ck_assert_msg(strstr(status, "failed: cannot start a worker: fork: Resource temporarily unavailable"),
		      "last STATUS=%s", status);
	plain_free(&p);
}
END_TEST

START_TEST(a_reload_whose_workers_cannot_be_forked_fails_at_once)
{
	struct plain p;
	plain_start(&p, RLIM_INFINITY);
	ck_assert_msg(plain_log_wait(&p, "ready: generation 1"), "drover did not start");
	ck_assert_int_eq(get(p.port, "/page.txt"), 200);
	/* the supervisor and its two workers: not one process more */
	pid_t h = fork(); /* as its uid: prlimit of another uid needs CAP_SYS_RESOURCE */
	ck_assert(h >= 0);
	if (h == 0) {
		struct rlimit cap;
		_exit(setgroups(0, NULL) < 0 || setresgid(NPROC_UID, NPROC_UID, NPROC_UID) < 0 ||
				      setresuid(NPROC_UID, NPROC_UID, NPROC_UID) < 0 ||
				      prlimit(p.pid, RLIMIT_NPROC, NULL, &cap) < 0 ||
				      (cap.rlim_cur = 3, prlimit(p.pid, RLIMIT_NPROC, &cap, NULL) < 0)
			      ? 1
			      : 0);
	}
	int st;
	ck_assert(waitpid(h, &st, 0) == h && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char out[4096];
	ctl_reload(&p.ctl, out, sizeof out);
	printf("reload that cannot fork: %s", out);
	ck_assert_msg(strncmp(out, "ERR", 3) == 0 && strstr(out, "fork: Resource temporarily unavailable") &&
			      !strstr(out, "in time"),
		      "reload answered: %s", out);
	ck_assert_int_eq(get(p.port, "/page.txt"), 200);
	plain_free(&p);
}
END_TEST

static Suite *logs_suite(void)
{
	Suite *s = suite_create("logs");
	TCase *t = tcase_create("logs");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, workers_as_nobody_log_into_a_directory_only_root_may_write);
	tcase_add_test(t, sigusr1_after_a_rename_moves_nobody_workers_to_the_new_file);
	tcase_add_test(t, check_names_an_access_log_it_cannot_open_by_file_and_line);
	tcase_add_test(t, a_reload_whose_workers_cannot_start_fails_at_once_and_the_old_generation_serves);
	tcase_add_test(t, a_start_whose_access_log_cannot_be_opened_exits_1_with_the_reason);
	tcase_add_test(t, a_start_whose_workers_cannot_be_forked_exits_1_with_the_reason);
	tcase_add_test(t, a_reload_whose_workers_cannot_be_forked_fails_at_once);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	int failed = h_run_suite(logs_suite());
	return failed ? 1 : 0;
}
