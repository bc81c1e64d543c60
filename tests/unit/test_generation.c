/* Unit tests for the supervisor's generation bookkeeping (generation.h):
 * which generation serves, which drains, which is killed for
 * max_generations, what a reload and a rollback do to the book, and how
 * generation numbers cross a binary upgrade. Worker lists are built by
 * hand; nothing forks. Also the pool's control sends (pool_send), to a
 * worker the pool adopts on a socketpair made here: a full channel holds a
 * message, a broken one ends the worker so that it is replaced. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "supervisor/generation.h"
#include "supervisor/handover.h"

/* A list of n workers with the given generations and states, linked in order. */
static struct pool_worker ws[16];

static struct pool_worker *list_of(size_t n, const uint32_t *gens, const enum pool_worker_state *states)
{
	memset(ws, 0, sizeof(ws));
	for (size_t i = 0; i < n; i++) {
		ws[i].pid = (pid_t)(100 + i);
		ws[i].generation = gens[i];
		ws[i].state = states[i];
		ws[i].next = i + 1 < n ? &ws[i + 1] : NULL;
	}
	return n ? &ws[0] : NULL;
}

START_TEST(a_generation_is_complete_only_once_all_its_workers_are_ready)
{
	struct gen_book g = { .current = 2 };
	uint32_t gens[] = { 1, 1, 2, 2 };
	enum pool_worker_state st[] = { PW_READY, PW_READY, PW_READY, PW_STARTING };
	struct pool_worker *l = list_of(4, gens, st);
	ck_assert(!gen_is_complete(&g, l, 2));
	ws[3].state = PW_READY;
	ck_assert(gen_is_complete(&g, l, 2));
	/* Ready workers of another generation do not count for this one. */
	ck_assert(!gen_is_complete(&g, l, 3));
	/* Announced once: a worker replaced later does not announce it again. */
	g.announced = true;
	ck_assert(!gen_is_complete(&g, l, 2));
}
END_TEST

START_TEST(at_ready_every_older_worker_drains_and_the_new_generation_does_not)
{
	struct gen_book g = { .current = 3 };
	uint32_t gens[] = { 1, 2, 2, 3 };
	enum pool_worker_state st[] = { PW_DRAINING, PW_READY, PW_STARTING, PW_READY };
	list_of(4, gens, st);
	ck_assert(!gen_drains_at_ready(&g, &ws[0])); /* already draining: keeps its deadline */
	ck_assert(gen_drains_at_ready(&g, &ws[1]));
	ck_assert(gen_drains_at_ready(&g, &ws[2])); /* an old worker still starting drains too */
	ck_assert(!gen_drains_at_ready(&g, &ws[3]));
}
END_TEST

START_TEST(counting_older_generations_excludes_the_given_one)
{
	uint32_t gens[] = { 1, 2, 2, 3, 3, 3 };
	enum pool_worker_state st[] = { PW_DRAINING, PW_READY, PW_DRAINING, PW_READY, PW_READY, PW_STARTING };
	struct pool_worker *l = list_of(6, gens, st);
	ck_assert_uint_eq(gen_count(l, 3, -1, false), 3);
	ck_assert_uint_eq(gen_count(l, 3, PW_READY, false), 2);
	ck_assert_uint_eq(gen_count(l, 3, -1, true), 3);
	ck_assert_uint_eq(gen_count(l, 3, PW_DRAINING, true), 2);
	ck_assert_uint_eq(gen_count(l, 1, -1, true), 0);
	ck_assert_uint_eq(gen_count(NULL, 1, -1, false), 0);
}
END_TEST

START_TEST(a_reload_brings_up_the_next_generation_while_the_current_one_serves)
{
	struct gen_book g = { .current = 4, .announced = true, .serving = true };
	gen_begin(&g, GEN_RELOADING, 1000);
	ck_assert_uint_eq(g.current, 5);
	ck_assert_uint_eq(g.previous, 4);
	ck_assert_int_eq(g.change, GEN_RELOADING);
	ck_assert(!g.announced);
	ck_assert(g.serving);
	ck_assert(!gen_timed_out(&g, 1000 + GEN_CHANGE_TIMEOUT_MS));
	ck_assert(gen_timed_out(&g, 1000 + GEN_CHANGE_TIMEOUT_MS + 1));
}
END_TEST

START_TEST(a_steady_book_never_times_out)
{
	struct gen_book g = { .current = 1, .change_started_ms = 0 };
	ck_assert(!gen_timed_out(&g, 10 * GEN_CHANGE_TIMEOUT_MS));
}
END_TEST

START_TEST(the_end_of_a_change_answers_every_reload_asked_for_so_far)
{
	struct gen_book g = { .current = 1, .seq_started = 3, .seq_done = 1 };
	gen_begin(&g, GEN_UPGRADING, 0);
	gen_end(&g);
	ck_assert_int_eq(g.change, GEN_STEADY);
	ck_assert_uint_eq(g.seq_done, 3);
}
END_TEST

START_TEST(a_rollback_makes_the_previous_generation_current_and_announced)
{
	struct gen_book g = { .current = 7, .announced = true, .serving = true };
	gen_begin(&g, GEN_RELOADING, 0);
	ck_assert_uint_eq(gen_rollback(&g), 8);
	ck_assert_uint_eq(g.current, 7);
	ck_assert(g.announced); /* it was ready before: no second READY=1, no re-drain */
	uint32_t gens[] = { 7, 8 };
	enum pool_worker_state st[] = { PW_READY, PW_STARTING };
	list_of(2, gens, st);
	/* The failed generation is newer than current: never drained "at ready". */
	ck_assert(!gen_drains_at_ready(&g, &ws[1]));
	ck_assert(!gen_drains_at_ready(&g, &ws[0]));
}
END_TEST

START_TEST(generation_numbers_never_repeat_even_after_a_rollback)
{
	struct gen_book g = { .current = 1 };
	gen_begin(&g, GEN_RELOADING, 0); /* 2 */
	gen_end(&g);
	gen_begin(&g, GEN_RELOADING, 0); /* 3 never gets ready */
	ck_assert_uint_eq(gen_rollback(&g), 3);
	gen_end(&g);
	ck_assert_uint_eq(g.current, 2);
	gen_begin(&g, GEN_RELOADING, 0);
	ck_assert_uint_eq(g.current, 4);
	ck_assert_uint_eq(g.previous, 2);
}
END_TEST

START_TEST(the_highest_generation_and_every_waiting_client_travel_in_the_hand_over)
{
	static struct handover in, out;
	memset(&in, 0, sizeof(in));
	in.generation = 5;
	in.highest_generation = 9;
	in.scoreboard_fd = 3;
	in.keys_fd = -1;
	in.metrics_fd = -1;
	in.ctl_fd = 4;
	in.client_fd = 7;
	in.more_client_fds[0] = 8;
	in.more_client_fds[1] = 11;
	in.n_more_clients = 2;
	in.idle_client_fds[0] = 12;
	in.n_idle_clients = 1;
	char env[4096];
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	const char *value = strchr(env, '=') + 1;
	ck_assert_int_eq(handover_decode(value, &out), 0);
	ck_assert_uint_eq(out.generation, 5);
	ck_assert_uint_eq(out.highest_generation, 9);
	ck_assert_int_eq(out.client_fd, 7);
	ck_assert_uint_eq(out.n_more_clients, 2);
	ck_assert_int_eq(out.more_client_fds[0], 8);
	ck_assert_int_eq(out.more_client_fds[1], 11);
	ck_assert_uint_eq(out.n_idle_clients, 1);
	ck_assert_int_eq(out.idle_client_fds[0], 12);
	/* An older build reads "g=%u" and "cl=%d" and stops at the comma. */
	unsigned g = 0;
	int cl = 0;
	const char *pg = strstr(value, ";g=") ? strstr(value, ";g=") + 1 : NULL;
	const char *pc = strstr(value, ";cl=") + 1;
	ck_assert(pg && sscanf(pg, "g=%u", &g) == 1 && g == 5);
	ck_assert(sscanf(pc, "cl=%d", &cl) == 1 && cl == 7);
	/* Without a rollback behind it, the format is what it always was. */
	in.highest_generation = 5;
	in.n_more_clients = 0;
	in.n_idle_clients = 0;
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	ck_assert(strstr(env, ";g=5;sb=3;ctl=4;cl=7") != NULL);
	ck_assert_int_eq(handover_decode(strchr(env, '=') + 1, &out), 0);
	ck_assert_uint_eq(out.highest_generation, 5);
	ck_assert_int_eq(out.keys_fd, -1);
	/* The TLS ticket keys' memfd rides on the scoreboard's field, where an
	 * older build's "sb=%d" stops at the comma. */
	in.keys_fd = 13;
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	ck_assert(strstr(env, ";sb=3,k13;ctl=4;") != NULL);
	ck_assert_int_eq(handover_decode(strchr(env, '=') + 1, &out), 0);
	ck_assert_int_eq(out.scoreboard_fd, 3);
	ck_assert_int_eq(out.keys_fd, 13);
	int sb = -1;
	ck_assert(sscanf(strstr(env, ";sb=") + 1, "sb=%d", &sb) == 1 && sb == 3);
	/* The metrics counters' memfd rides there too, after the keys: an
	 * older build's "sb=%d,k%d" reads both and stops at ",m". */
	in.metrics_fd = 14;
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	ck_assert(strstr(env, ";sb=3,k13,m14;ctl=4;") != NULL);
	ck_assert_int_eq(handover_decode(strchr(env, '=') + 1, &out), 0);
	ck_assert_int_eq(out.keys_fd, 13);
	ck_assert_int_eq(out.metrics_fd, 14);
	int k = -1;
	ck_assert(sscanf(strstr(env, ";sb=") + 1, "sb=%d,k%d", &sb, &k) == 2 && sb == 3 && k == 13);
	in.keys_fd = -1;
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	ck_assert(strstr(env, ";sb=3,m14;ctl=4;") != NULL);
	ck_assert_int_eq(handover_decode(strchr(env, '=') + 1, &out), 0);
	ck_assert_int_eq(out.keys_fd, -1);
	ck_assert_int_eq(out.metrics_fd, 14);
	ck_assert(sscanf(strstr(env, ";sb=") + 1, "sb=%d,k%d", &sb, &k) == 1 && sb == 3);
}
END_TEST

START_TEST(max_generations_counts_the_generation_about_to_start)
{
	struct gen_book g = { .current = 3 };
	uint32_t gens[] = { 1, 1, 2, 2 };
	enum pool_worker_state st[] = { PW_DRAINING, PW_DRAINING, PW_READY, PW_READY };
	struct pool_worker *l = list_of(4, gens, st);
	/* 1 and 2 alive, 3 about to start: three generations. */
	ck_assert_uint_eq(gen_over_cap(&g, l, 3), 0);
	ck_assert_uint_eq(gen_over_cap(&g, l, 2), 1);
	/* Once 3 has workers it is counted as alive, not as "about to start". */
	uint32_t gens2[] = { 1, 2, 3 };
	enum pool_worker_state st2[] = { PW_DRAINING, PW_READY, PW_STARTING };
	l = list_of(3, gens2, st2);
	ck_assert_uint_eq(gen_over_cap(&g, l, 3), 0);
	ck_assert_uint_eq(gen_over_cap(&g, l, 2), 1);
}
END_TEST

START_TEST(the_cap_never_kills_the_current_generation)
{
	struct gen_book g = { .current = 2 };
	uint32_t gens[] = { 2, 2 };
	enum pool_worker_state st[] = { PW_READY, PW_READY };
	struct pool_worker *l = list_of(2, gens, st);
	ck_assert_uint_eq(gen_over_cap(&g, l, 1), 0);
	ck_assert_uint_eq(gen_over_cap(&g, NULL, 1), 0);
}
END_TEST

/* ------------------------------------------------ control sends */

static struct pool pool;
static struct loop *loop;

/* A pool holding one worker, pid, whose control channel is chan_fd (a
 * worker handed over by a binary upgrade: nothing is forked). */
static struct pool_worker *pool_of_one(pid_t pid, int chan_fd)
{
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	struct sup_sink none = { .report = NULL };
	pool_init(&pool, loop, &none);
	static struct handover st;
	memset(&st, 0, sizeof(st));
	st.n_workers = 1;
	st.workers[0] = (struct handover_worker){ .pid = pid, .generation = 1, .slot = -1, .chan_fd = chan_fd,
						  .state = 1, .chan_version = CHAN_VERSION };
	ck_assert_int_eq(pool_adopt(&pool, &st, true), 0);
	ck_assert_ptr_nonnull(pool.workers);
	return pool.workers;
}

START_TEST(a_start_that_meets_a_full_channel_is_held_and_sent_once_there_is_room)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	size_t filled = 0;
	while (chan_send(sv[0], CHAN_REOPEN_LOGS, 0) == 0)
		filled++;
	ck_assert_uint_gt(filled, 0);
	/* pid never signalled: nothing here may end it */
	struct pool_worker *w = pool_of_one(999999, sv[0]);
	pool_send(&pool, w, CHAN_START);
	ck_assert(chan_out_holds(&w->chan, CHAN_START));
	ck_assert(!w->killed);
	/* The worker reads again: what it finds last is START. */
	struct chan_msg m, last = { 0 };
	size_t got = 0;
	for (int round = 0; round < 1000 && last.type != CHAN_START; round++) {
		while (chan_recv(sv[1], &m) == 1) {
			last = m;
			got++;
		}
		h_loop_once(loop);
	}
	ck_assert_int_eq(last.type, CHAN_START);
	ck_assert_uint_eq(got, filled + 1);
	ck_assert_uint_eq(chan_out_held(&w->chan), 0);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}
END_TEST

START_TEST(a_worker_whose_start_cannot_be_sent_at_all_is_ended_to_be_replaced)
{
	pid_t child = fork();
	ck_assert(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	/* A control fd that is no socket: send() fails with ENOTSOCK. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct pool_worker *w = pool_of_one(child, p[1]);
	pool_send(&pool, w, CHAN_START);
	ck_assert(w->killed);
	ck_assert_uint_eq(chan_out_held(&w->chan), 0);
	int st;
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("generation");
	TCase *tc = tcase_create("generation");
	tcase_add_test(tc, a_generation_is_complete_only_once_all_its_workers_are_ready);
	tcase_add_test(tc, at_ready_every_older_worker_drains_and_the_new_generation_does_not);
	tcase_add_test(tc, counting_older_generations_excludes_the_given_one);
	tcase_add_test(tc, a_reload_brings_up_the_next_generation_while_the_current_one_serves);
	tcase_add_test(tc, a_steady_book_never_times_out);
	tcase_add_test(tc, the_end_of_a_change_answers_every_reload_asked_for_so_far);
	tcase_add_test(tc, a_rollback_makes_the_previous_generation_current_and_announced);
	tcase_add_test(tc, generation_numbers_never_repeat_even_after_a_rollback);
	tcase_add_test(tc, the_highest_generation_and_every_waiting_client_travel_in_the_hand_over);
	tcase_add_test(tc, max_generations_counts_the_generation_about_to_start);
	tcase_add_test(tc, the_cap_never_kills_the_current_generation);
	tcase_add_test(tc, a_start_that_meets_a_full_channel_is_held_and_sent_once_there_is_room);
	tcase_add_test(tc, a_worker_whose_start_cannot_be_sent_at_all_is_ended_to_be_replaced);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
