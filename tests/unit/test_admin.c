/* Unit tests for the admin socket: the one command table droverctl and
 * the supervisor share, the socket's path rules, and the supervisor's
 * buffered answers (a client that reads slowly gets its whole answer; one
 * holding more than ADMIN_OUT_MAX unread is dropped). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "harness.h"
#include "supervisor/admin.h"

/* The server under test, with no coordinator: events go nowhere. */
static struct admin adm;
static struct loop *loop;

static void server_start(void)
{
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	struct sup_sink none = { .report = NULL };
	admin_init(&adm, loop, &none);
}

START_TEST(the_table_holds_exactly_the_public_commands)
{
	static const char *const public[] = { "status", "reload", "upgrade", "reopen-logs", "stop" };
	ck_assert_uint_eq(admin_n_commands, sizeof(public) / sizeof(public[0]));
	for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++) {
		const struct admin_command *c = admin_command_find(public[i]);
		ck_assert_msg(c, "%s is not in the table", public[i]);
		ck_assert_str_eq(c->name, public[i]);
		ck_assert_msg(c->help && c->help[0], "%s has no help text", public[i]);
	}
}
END_TEST

START_TEST(each_name_finds_its_own_entry_and_names_are_unique)
{
	for (size_t i = 0; i < admin_n_commands; i++) {
		ck_assert_ptr_eq(admin_command_find(admin_commands[i].name), &admin_commands[i]);
		for (size_t j = i + 1; j < admin_n_commands; j++) {
			ck_assert_str_ne(admin_commands[i].name, admin_commands[j].name);
			ck_assert_int_ne(admin_commands[i].id, admin_commands[j].id);
		}
	}
}
END_TEST

START_TEST(near_misses_are_not_commands)
{
	static const char *const bad[] = { "", "stat", "STATUS", "status ", " status", "reload\n", "reopen", "stopp" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!admin_command_find(bad[i]), "'%s' found", bad[i]);
}
END_TEST

START_TEST(only_stop_and_upgrade_may_end_without_an_answer)
{
	for (size_t i = 0; i < admin_n_commands; i++) {
		bool expect = admin_commands[i].id == ADMIN_STOP || admin_commands[i].id == ADMIN_UPGRADE;
		ck_assert_msg(admin_commands[i].may_end_unanswered == expect, "%s", admin_commands[i].name);
	}
}
END_TEST

START_TEST(the_socket_path_is_configured_off_or_from_the_runtime_directory)
{
	char p[108];
	admin_socket_path("/tmp/x.sock", p, sizeof(p));
	ck_assert_str_eq(p, "/tmp/x.sock");
	admin_socket_path("off", p, sizeof(p));
	ck_assert_str_eq(p, "");
	setenv("RUNTIME_DIRECTORY", "/run/drover:/run/other", 1);
	admin_socket_path(NULL, p, sizeof(p));
	ck_assert_str_eq(p, "/run/drover/control.sock");
	unsetenv("RUNTIME_DIRECTORY");
	admin_socket_path(NULL, p, sizeof(p));
	ck_assert(strstr(p, "/drover/control.sock"));
}
END_TEST

/* A server end with a small send buffer and the client end. */
static struct admin_client *small_pair(int *peer)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	*peer = sv[1];
	struct admin_client *c = NULL;
	ck_assert_int_eq(admin_client_add(&adm, sv[0], &c), 0);
	return c;
}

START_TEST(a_client_that_reads_slowly_gets_its_whole_answer)
{
	server_start();
	int peer;
	struct admin_client *c = small_pair(&peer);
	size_t len = ADMIN_OUT_MAX / 2;
	char *text = malloc(len + 1);
	memset(text, 'x', len);
	memcpy(text + len - 3, "OK\n", 4);
	admin_reply(&adm, c, text);
	/* More than the socket takes: the rest is held, nothing waited for. */
	ck_assert_ptr_eq(adm.clients, c);
	size_t got = 0;
	char buf[8192];
	bool eof = false;
	for (int rounds = 0; rounds < 100000 && !eof; rounds++) {
		ssize_t n = read(peer, buf, sizeof(buf));
		if (n > 0) {
			ck_assert(memcmp(buf, text + got, (size_t)n) == 0);
			got += (size_t)n;
		} else if (n == 0) {
			eof = true;
		} else {
			ck_assert_int_eq(errno, EAGAIN);
			h_loop_once(loop);
		}
	}
	ck_assert(eof);
	ck_assert_uint_eq(got, len);
	ck_assert_ptr_null(adm.clients);
	close(peer);
	free(text);
	loop_free(loop);
}
END_TEST

static size_t n_clients(void)
{
	size_t n = 0;
	for (struct admin_client *c = adm.clients; c; c = c->next)
		n++;
	return n;
}

START_TEST(a_client_holding_more_than_the_bound_unread_is_dropped_and_others_served)
{
	server_start();
	int slow_peer, other_peer;
	struct admin_client *slow = small_pair(&slow_peer);
	struct admin_client *other = small_pair(&other_peer);
	char *chunk = malloc(ADMIN_OUT_MAX / 4 + 1);
	memset(chunk, 'y', ADMIN_OUT_MAX / 4);
	chunk[ADMIN_OUT_MAX / 4] = '\0';
	/* Answers of a quarter of the bound each, never read. */
	for (int i = 0; i < 5 && n_clients() == 2; i++)
		admin_reply(&adm, slow, chunk);
	ck_assert_msg(n_clients() == 1 && adm.clients == other, "the slow client was kept");
	admin_reply(&adm, other, "OK fine\n");
	char buf[64];
	ssize_t n = read(other_peer, buf, sizeof(buf) - 1);
	ck_assert_int_eq(n, 8);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "OK fine\n");
	ck_assert_ptr_null(adm.clients);
	/* The dropped client sees the end of its stream, not a hang. */
	for (;;) {
		char sink[65536];
		ssize_t r = read(slow_peer, sink, sizeof(sink));
		if (r <= 0) {
			ck_assert_int_eq(r, 0);
			break;
		}
	}
	close(slow_peer);
	close(other_peer);
	free(chunk);
	loop_free(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("admin");
	tcase_add_test(tc, the_table_holds_exactly_the_public_commands);
	tcase_add_test(tc, each_name_finds_its_own_entry_and_names_are_unique);
	tcase_add_test(tc, near_misses_are_not_commands);
	tcase_add_test(tc, only_stop_and_upgrade_may_end_without_an_answer);
	tcase_add_test(tc, the_socket_path_is_configured_off_or_from_the_runtime_directory);
	tcase_add_test(tc, a_client_that_reads_slowly_gets_its_whole_answer);
	tcase_add_test(tc, a_client_holding_more_than_the_bound_unread_is_dropped_and_others_served);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
