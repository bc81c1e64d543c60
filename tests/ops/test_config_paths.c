/* test_config_paths: what the config names must be there when a generation
 * starts, and the example config works from the tree.
 *
 * - [http] root must exist, be a directory, and be searchable (it and
 *   every directory above it) by the workers' [server] user; an explicitly
 *   set mime_types must exist and be readable. drover -t, a start (exit 1)
 *   and a reload (droverctl reload exit 1, the log, STATUS=; the old
 *   generation serves on) refuse it with "FILE:LINE: [http] root: PATH:
 *   why". A root that goes away while drover runs is test_requests' and
 *   test_semantics' (served on, picked up again).
 * - README command 1 as a newcomer runs it: ./src/drover -c etc/drover.ini
 *   from a copy of the tree (the listener moved to a free port, nothing
 *   else changed), then ./src/droverctl -c etc/drover.ini status, reload,
 *   upgrade and stop; as root and, when the tests run as root, as nobody. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NOBODY_UID 65534 /* Debian's nobody and nogroup */

/* ------------------------------------------------------------ fixture */

/* dir (0755): www/ with index.html, file (a regular file), private/ (0700,
 * root's) with www/ (0755) inside. */
struct tree {
	char *dir;
	char www[512];
	char file[512];
	char missing[512];
	char private_dir[512];
	char private_www[600];
	char mime[512];      /* a mime.types that exists */
	char no_mime[512];   /* one that does not */
};

static void tree_make(struct tree *t)
{
	memset(t, 0, sizeof(*t));
	t->dir = h_tmpdir();
	ck_assert(chmod(t->dir, 0755) == 0); /* the workers may be nobody */
	h_path_join(t->www, sizeof t->www, t->dir, "www");
	h_path_join(t->file, sizeof t->file, t->dir, "file");
	h_path_join(t->missing, sizeof t->missing, t->dir, "www-typo");
	h_path_join(t->private_dir, sizeof t->private_dir, t->dir, "private");
	h_path_join(t->private_www, sizeof t->private_www, t->private_dir, "www");
	h_path_join(t->mime, sizeof t->mime, t->dir, "mime.types");
	h_path_join(t->no_mime, sizeof t->no_mime, t->dir, "no-mime.types");
	ck_assert(mkdir(t->www, 0755) == 0);
	ck_assert(mkdir(t->private_dir, 0700) == 0);
	ck_assert(mkdir(t->private_www, 0755) == 0);
	char p[700];
	h_path_join(p, sizeof p, t->www, "index.html");
	h_write_file(p, "old root\n");
	h_write_file(t->file, "not a directory\n");
	h_write_file(t->mime, "text/plain txt\n");
}

static void tree_free(struct tree *t)
{
	h_rm_rf(t->dir);
	free(t->dir);
}

/* The config: root on line 8, mime_types on line 9. user: a [server] user
 * or NULL; activated: the listener comes by socket activation (else an
 * address -t does not bind); mime: mime_types or NULL (the default). */
#define ROOT_LINE 8
#define MIME_LINE 9
static void config_text(char *out, size_t cap, const char *user, bool activated, const char *root,
			const char *mime)
{
	int n = snprintf(out, cap,
			 "[server]\n"
			 "workers = 1\n"
			 "%s%s\n"
			 "control_socket = @DIR@/control.sock\n"
			 "[listener web]\n"
			 "%s\n"
			 "[http]\n"
			 "root = %s\n"
			 "%s%s\n",
			 user ? "user = " : "# no user", user ? user : "",
			 activated ? "protocol = http" : "address = 127.0.0.1:1", root,
			 mime ? "mime_types = " : "# default mime_types", mime ? mime : "");
	ck_assert(n > 0 && (size_t)n < cap);
}

/* A root the config must refuse, and why. */
struct bad_root {
	const char *root;
	const char *user;   /* [server] user */
	const char *reason; /* after "drover.ini:8: [http] root: ROOT: " */
};

/* The roots to refuse; the unsearchable ones only when we are root (as
 * another user, the workers stay us and a start refuses the user). */
static size_t bad_roots(const struct tree *t, struct bad_root *out)
{
	size_t n = 0;
	out[n++] = (struct bad_root){ t->missing, NULL, "No such file or directory" };
	out[n++] = (struct bad_root){ t->file, NULL, "Not a directory" };
	if (geteuid() == 0) {
		static const char denied[] = "Permission denied (the workers run as user 'nobody')";
		out[n++] = (struct bad_root){ t->private_dir, "nobody", denied };
		/* not the root itself but a directory above it */
		out[n++] = (struct bad_root){ t->private_www, "nobody", denied };
	}
	return n;
}

static void expected_message(char *out, size_t cap, unsigned line, const char *key, const char *path,
			     const char *reason)
{
	int n = snprintf(out, cap, "drover.ini:%u: %s: %s: %s", line, key, path, reason);
	ck_assert(n > 0 && (size_t)n < cap);
}

static const char *droverctl_bin(void)
{
	const char *b = getenv("DROVERCTL_BIN");
	return b && *b ? b : "./src/droverctl";
}

/* droverctl -s DIR/control.sock ARGS (stdout and stderr in out); exit code. */
static int ctl(struct h_drover *d, const char *args, char *out, size_t cap)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "'%s' -s '%s/control.sock' %s 2>&1", droverctl_bin(), d->dir, args);
	return h_run(cmd, out, cap);
}

/* ------------------------------------------------------------ drover -t */

START_TEST(check_refuses_a_root_the_workers_cannot_use)
{
	struct tree t;
	tree_make(&t);
	struct bad_root bad[8];
	size_t n = bad_roots(&t, bad);
	char cfg[4096], out[8192], want[1400];
	for (size_t i = 0; i < n; i++) {
		config_text(cfg, sizeof cfg, bad[i].user, false, bad[i].root, NULL);
		ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
		expected_message(want, sizeof want, ROOT_LINE, "[http] root", bad[i].root, bad[i].reason);
		ck_assert_msg(strstr(out, want) && strstr(out, "configuration has errors"),
			      "-t said: %s\nexpected: %s", out, want);
		ck_assert_msg(!strstr(out, "configuration OK"), "-t said: %s", out);
	}
	/* what the workers can use passes */
	config_text(cfg, sizeof cfg, geteuid() == 0 ? "nobody" : NULL, false, t.www, NULL);
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "-t said: %s", out);
	config_text(cfg, sizeof cfg, NULL, false, t.private_www, NULL); /* workers stay root */
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "-t said: %s", out);
	tree_free(&t);
}
END_TEST

START_TEST(check_refuses_an_explicit_mime_types_that_is_not_there)
{
	struct tree t;
	tree_make(&t);
	char cfg[4096], out[8192], want[1400];
	config_text(cfg, sizeof cfg, NULL, false, t.www, t.no_mime);
	ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
	expected_message(want, sizeof want, MIME_LINE, "[http] mime_types", t.no_mime,
			 "No such file or directory");
	ck_assert_msg(strstr(out, want), "-t said: %s\nexpected: %s", out, want);
	config_text(cfg, sizeof cfg, NULL, false, t.www, t.www);
	ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
	expected_message(want, sizeof want, MIME_LINE, "[http] mime_types", t.www, "Is a directory");
	ck_assert_msg(strstr(out, want), "-t said: %s\nexpected: %s", out, want);
	/* both wrong: both reported */
	config_text(cfg, sizeof cfg, NULL, false, t.missing, t.no_mime);
	ck_assert_int_eq(h_drover_check(cfg, NULL, out, sizeof out), 1);
	ck_assert_msg(strstr(out, ":8: [http] root: ") && strstr(out, ":9: [http] mime_types: "), "-t said: %s",
		      out);
	config_text(cfg, sizeof cfg, NULL, false, t.www, t.mime);
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "-t said: %s", out);
	tree_free(&t);
}
END_TEST

/* ------------------------------------------------------------ a start */

/* Start on cfg: drover must exit 1 before it is ready, saying want in its
 * log and in STATUS=. */
static void start_fails_with(const char *cfg, const char *want)
{
	int fd, port;
	fd = h_listen_tcp(&port);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1, .no_wait_ready = true };
	struct h_drover *d = h_drover_start(cfg, &o);
	int st = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d; log:\n%s", st, h_log_end(d));
	ck_assert_msg(h_log_contains(d, "not starting: ") && h_log_contains(d, want), "expected %s; log:\n%s",
		      want, h_log_end(d));
	ck_assert_msg(h_notify_wait(d, "STATUS=failed: ", NULL) && strstr(d->notify_buf, want),
		      "notify: %s", d->notify_buf);
	ck_assert_msg(!strstr(d->notify_buf, "READY=1"), "notify: %s", d->notify_buf);
	h_drover_free(d);
}

START_TEST(start_refuses_a_root_the_workers_cannot_use)
{
	struct tree t;
	tree_make(&t);
	struct bad_root bad[8];
	size_t n = bad_roots(&t, bad);
	char cfg[4096], want[1400];
	for (size_t i = 0; i < n; i++) {
		config_text(cfg, sizeof cfg, bad[i].user, true, bad[i].root, NULL);
		expected_message(want, sizeof want, ROOT_LINE, "[http] root", bad[i].root, bad[i].reason);
		start_fails_with(cfg, want);
	}
	config_text(cfg, sizeof cfg, NULL, true, t.www, t.no_mime);
	expected_message(want, sizeof want, MIME_LINE, "[http] mime_types", t.no_mime, "No such file or directory");
	start_fails_with(cfg, want);
	tree_free(&t);
}
END_TEST

/* ------------------------------------------------------------ a reload */

START_TEST(reload_refuses_a_root_the_workers_cannot_use_and_the_old_generation_serves)
{
	struct tree t;
	tree_make(&t);
	const char *user = geteuid() == 0 ? "nobody" : NULL;
	char cfg[4096], want[1400], out[16384];
	config_text(cfg, sizeof cfg, user, true, t.www, NULL);
	int port;
	int fd = h_listen_tcp(&port);
	struct h_activation act = { .name = "web", .fd = fd };
	struct h_opts o = { .notify = true, .fds = &act, .n_fds = 1 };
	struct h_drover *d = h_drover_start(cfg, &o);

	struct bad_root bad[9];
	size_t n = bad_roots(&t, bad);
	bad[n++] = (struct bad_root){ t.www, NULL, NULL }; /* the mime_types case below */
	size_t seen = 0;
	for (size_t i = 0; i < n; i++) {
		if (bad[i].reason) {
			/* the same user as the running generation: only root changes */
			config_text(cfg, sizeof cfg, user, true, bad[i].root, NULL);
			expected_message(want, sizeof want, ROOT_LINE, "[http] root", bad[i].root, bad[i].reason);
		} else {
			config_text(cfg, sizeof cfg, user, true, t.www, t.no_mime);
			expected_message(want, sizeof want, MIME_LINE, "[http] mime_types", t.no_mime,
					 "No such file or directory");
		}
		h_config_replace(d, cfg);
		int rc = ctl(d, "reload", out, sizeof out);
		ck_assert_msg(rc == 1 && strstr(out, want), "droverctl reload exited %d: %s\nexpected: %s", rc, out,
			      want);
		ck_assert_msg(h_log_wait(d, want) && h_log_contains(d, "reload failed, still serving generation 1"),
			      "log:\n%s", h_log_end(d));
		char status[2048];
		snprintf(status, sizeof status, "reload failed: %s/%s", d->dir, want);
		ck_assert_msg(h_notify_wait(d, status, &seen), "wanted %s\nnotify: %s\nlog:\n%s", status,
			      d->notify_buf, h_log_end(d));
		/* the old generation, on the old root */
		struct h_response r;
		ck_assert(h_http_request(port, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n", &r));
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "old root\n");
		h_http_response_free(&r);
		ck_assert_int_eq(ctl(d, "status", out, sizeof out), 0);
		ck_assert_msg(strstr(out, "generation 1,"), "status: %s", out);
	}
	/* and a root that is fine is taken */
	config_text(cfg, sizeof cfg, user, true, t.www, NULL);
	h_config_replace(d, cfg);
	ck_assert_int_eq(ctl(d, "reload", out, sizeof out), 0);
	ck_assert_msg(strstr(out, "generation 2"), "reload: %s", out);
	h_drover_free(d);
	tree_free(&t);
}
END_TEST

/* ------------------------------------------------------------ README command 1 */

/* In dir, the tree as a newcomer has it after building: etc/ (drover.ini
 * and www/) and src/drover, src/droverctl; the one change is the listener's
 * port, since 127.0.0.1:8080 may be taken. owner: chown everything to it
 * (-1: leave). Returns the port. */
static int readme_tree(const char *dir, uid_t owner)
{
	const char *src = getenv("DROVER_SRCDIR");
	const char *bin = getenv("DROVER_BIN");
	ck_assert_msg(src && *src && bin && *bin, "DROVER_SRCDIR and DROVER_BIN are set by make check");
	char cmd[4096], out[4096];
	/* chmod: under make distcheck the source tree is read-only */
	snprintf(cmd, sizeof cmd,
		 "mkdir '%s/src' && cp -R '%s/etc' '%s/etc' && chmod -R u+w '%s/etc' && "
		 "cp '%s' '%s/src/drover' && cp '%s' '%s/src/droverctl'",
		 dir, src, dir, dir, bin, dir, droverctl_bin(), dir);
	ck_assert_msg(h_run(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);

	char ini[600];
	h_path_join(ini, sizeof ini, dir, "etc/drover.ini");
	size_t len;
	char *text = h_slurp(ini, &len);
	ck_assert_ptr_nonnull(text);
	static const char example[] = "\naddress = 127.0.0.1:8080\n";
	char *at = strstr(text, example);
	ck_assert_msg(at, "etc/drover.ini no longer has the line%s", example);
	ck_assert_msg(strstr(text, "\ncontrol_socket = run/control.sock\n"),
		      "etc/drover.ini does not set control_socket = run/control.sock");
	int port = h_free_port();
	char *moved = NULL;
	ck_assert(asprintf(&moved, "%.*s\naddress = 127.0.0.1:%d\n%s", (int)(at - text), text, port,
			   at + sizeof example - 1) > 0);
	h_write_file(ini, moved);
	free(moved);
	free(text);
	if (owner != (uid_t)-1) {
		snprintf(cmd, sizeof cmd, "chown -R %u:%u '%s'", (unsigned)owner, (unsigned)owner, dir);
		ck_assert_msg(h_run(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
	}
	return port;
}

/* "./src/droverctl -c etc/drover.ini ARGS" in the current directory, as
 * user (NULL: us); exit code, output in out. */
static int readme_ctl(const char *as, const char *args, char *out, size_t cap)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s./src/droverctl -c etc/drover.ini %s 2>&1", as ? as : "", args);
	return h_run(cmd, out, cap);
}

static void readme_steps(bool as_nobody)
{
	uid_t uid = as_nobody ? NOBODY_UID : geteuid();
	char *dir = h_tmpdir();
	int port = readme_tree(dir, as_nobody ? NOBODY_UID : (uid_t)-1);
	char cwd[PATH_MAX];
	ck_assert(getcwd(cwd, sizeof cwd) != NULL);
	ck_assert(chdir(dir) == 0);

	/* ./src/drover -c etc/drover.ini: the harness's own -c comes first and
	 * is not used (the last -c wins); it waits for "ready" in the log. */
	const char *as = as_nobody ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : NULL;
	const char *old_wrapper = getenv("DROVER_WRAPPER");
	char wrapper[512];
	if (as_nobody) {
		snprintf(wrapper, sizeof wrapper, "%s%s", as, old_wrapper ? old_wrapper : "");
		ck_assert(setenv("DROVER_WRAPPER", wrapper, 1) == 0);
	}
	ck_assert(setenv("DROVER_BIN", "./src/drover", 1) == 0);
	static const char *const args[] = { "-c", "etc/drover.ini", NULL };
	struct h_opts o = { .extra_args = args };
	struct h_drover *d = h_drover_start("# not used: the -c after it is\n", &o);

	char out[16384], want[64];
	int rc = readme_ctl(as, "status", out, sizeof out);
	snprintf(want, sizeof want, "supervisor pid %d, generation 1,", (int)d->pid);
	ck_assert_msg(rc == 0 && strstr(out, want), "droverctl status exited %d: %s\nlog:\n%s", rc, out,
		      h_log_end(d));
	/* the example site, and the socket's directory made for it */
	struct h_response r;
	ck_assert(h_http_request(port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	struct stat st;
	ck_assert(stat("etc/run", &st) == 0);
	ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == uid,
		      "etc/run: mode %o, owner %u", (unsigned)st.st_mode, (unsigned)st.st_uid);
	ck_assert(lstat("etc/run/control.sock", &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == uid);

	rc = readme_ctl(as, "reload", out, sizeof out);
	ck_assert_msg(rc == 0 && strstr(out, "generation 2"), "droverctl reload exited %d: %s\nlog:\n%s", rc, out,
		      h_log_end(d));
	rc = readme_ctl(as, "upgrade", out, sizeof out);
	ck_assert_msg(rc == 0 && strstr(out, "generation 3"), "droverctl upgrade exited %d: %s\nlog:\n%s", rc,
		      out, h_log_end(d));
	rc = readme_ctl(as, "stop", out, sizeof out);
	ck_assert_msg(rc == 0, "droverctl stop exited %d: %s\nlog:\n%s", rc, out, h_log_end(d));
	int status = h_drover_wait(d);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d; log:\n%s", status, h_log_end(d));
	ck_assert_msg(lstat("etc/run/control.sock", &st) < 0 && errno == ENOENT, "the socket is left behind");

	h_drover_free(d);
	ck_assert(chdir(cwd) == 0);
	h_rm_rf(dir);
	free(dir);
}

START_TEST(readme_command_1_then_droverctl_with_the_same_config)
{
	readme_steps(false);
}
END_TEST

START_TEST(readme_command_1_then_droverctl_as_an_ordinary_user)
{
	readme_steps(true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("paths");
	TCase *t = tcase_create("paths");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, check_refuses_a_root_the_workers_cannot_use);
	tcase_add_test(t, check_refuses_an_explicit_mime_types_that_is_not_there);
	tcase_add_test(t, start_refuses_a_root_the_workers_cannot_use);
	tcase_add_test(t, reload_refuses_a_root_the_workers_cannot_use_and_the_old_generation_serves);
	tcase_add_test(t, readme_command_1_then_droverctl_with_the_same_config);
	/* as root, also as the ordinary user nobody (not root, the first one is) */
	if (geteuid() == 0)
		tcase_add_test(t, readme_command_1_then_droverctl_as_an_ordinary_user);
	suite_add_tcase(s, t);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
