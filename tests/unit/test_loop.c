/* Unit tests for the event loop: fd events, timers in deadline order,
 * cancel and re-arm, removal of an fd from inside a batch, stop, fds
 * added ready (read at the end of the round, watched after), and events
 * dispatched by hand. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"

#include "harness.h"

struct timer_log {
	int order[64];
	int n;
};

struct tagged_timer {
	struct loop_timer t;
	struct timer_log *log;
	int tag;
};

static void record_and_maybe_stop(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct tagged_timer *tt = arg;
	tt->log->order[tt->log->n++] = tt->tag;
	if (tt->tag < 0)
		loop_stop(loop);
}

START_TEST(test_timers_fire_in_deadline_order_and_cancel_works)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	struct timer_log log = { .n = 0 };
	/* Deadlines relative to "now" in a scrambled order; one cancelled,
	 * one re-armed later; the last (tag -1) stops the loop. */
	static const int delays[] = { 30, 5, 20, 1, 25, 10, 15 };
	struct tagged_timer tt[8];
	for (int i = 0; i < 7; i++) {
		tt[i].log = &log;
		tt[i].tag = delays[i];
		loop_timer_init(&tt[i].t, record_and_maybe_stop, &tt[i]);
		loop_timer_arm(loop, &tt[i].t, (uint64_t)delays[i]);
	}
	tt[7].log = &log;
	tt[7].tag = -1;
	loop_timer_init(&tt[7].t, record_and_maybe_stop, &tt[7]);
	loop_timer_arm(loop, &tt[7].t, 40);
	loop_timer_cancel(loop, &tt[2].t); /* 20 never fires */
	ck_assert(!loop_timer_armed(&tt[2].t));
	loop_timer_cancel(loop, &tt[2].t); /* harmless twice */
	tt[1].tag = 35;
	loop_timer_arm(loop, &tt[1].t, 35); /* 5 moves to 35 */
	ck_assert_int_eq(loop_run(loop), 0);
	static const int want[] = { 1, 10, 15, 25, 30, 35, -1 };
	ck_assert_int_eq(log.n, 7);
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(log.order[i], want[i]);
	loop_free(loop);
}
END_TEST

struct pair_state {
	int fds[2];
	int reads;
	int other_fd;
	bool removed_other;
	struct loop *loop;
};

static void read_and_remove_other(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct pair_state *st = arg;
	ck_assert(events & LOOP_READ);
	char buf[16];
	ck_assert_int_gt(read(fd, buf, sizeof(buf)), 0);
	st->reads++;
	if (!st->removed_other) {
		/* The other fd may already be in this batch: it must not fire. */
		ck_assert_int_eq(loop_del_fd(loop, st->other_fd), 0);
		st->removed_other = true;
	}
}

static void stop_loop(struct loop *loop, struct loop_timer *t, void *arg)
{
	loop_stop(loop);
}

START_TEST(test_fd_removed_during_a_batch_does_not_fire)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	int a[2], b[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	struct pair_state sa = { .other_fd = b[1] }, sb = { .other_fd = a[1] };
	ck_assert_int_eq(loop_add_fd(loop, a[1], LOOP_READ, read_and_remove_other, &sa), 0);
	ck_assert_int_eq(loop_add_fd(loop, b[1], LOOP_READ, read_and_remove_other, &sb), 0);
	ck_assert_int_eq(loop_add_fd(loop, a[1], LOOP_READ, read_and_remove_other, &sa), -EEXIST);
	ck_assert_int_eq(write(a[0], "x", 1), 1);
	ck_assert_int_eq(write(b[0], "y", 1), 1);
	/* Both are ready before the first epoll_wait, so they arrive in one
	 * batch; the timer only ends the run afterwards. */
	struct loop_timer stop;
	loop_timer_init(&stop, stop_loop, NULL);
	loop_timer_arm(loop, &stop, 20);
	ck_assert_int_eq(loop_run(loop), 0);
	ck_assert_int_eq(sa.reads + sb.reads, 1);
	ck_assert_uint_eq(loop_fd_mask(loop, a[1]) | loop_fd_mask(loop, b[1]), LOOP_READ);
	loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}
END_TEST

struct write_state {
	int writable;
};

static void on_writable(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct write_state *st = arg;
	if (events & LOOP_WRITE)
		st->writable++;
	ck_assert_int_eq(loop_mod_fd(loop, fd, 0), 0); /* stop watching, stay registered */
	loop_stop(loop);
}

START_TEST(test_mod_switches_interest)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct write_state st = { 0 };
	ck_assert_int_eq(loop_add_fd(loop, sv[0], LOOP_READ, on_writable, &st), 0);
	ck_assert_int_eq(loop_mod_fd(loop, sv[0], LOOP_WRITE), 0);
	ck_assert_uint_eq(loop_fd_mask(loop, sv[0]), LOOP_WRITE);
	ck_assert_int_eq(loop_run(loop), 0);
	ck_assert_int_eq(st.writable, 1);
	ck_assert_uint_eq(loop_fd_mask(loop, sv[0]), 0);
	ck_assert_int_eq(loop_mod_fd(loop, 999, LOOP_READ), -ENOENT);
	ck_assert_int_eq(loop_del_fd(loop, sv[0]), 0);
	ck_assert_int_eq(loop_del_fd(loop, sv[0]), -ENOENT);
	loop_free(loop);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static uint64_t heap_fired[600];
static size_t heap_n_fired;

static void heap_record(struct loop *loop, struct loop_timer *t, void *arg)
{
	heap_fired[heap_n_fired++] = t->deadline_ms;
	if (arg)
		loop_stop(loop);
}

START_TEST(test_many_timers_heap_stays_ordered)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	enum { N = 500 };
	static struct loop_timer t[N + 1];
	heap_n_fired = 0;
	/* Pseudo-random deadlines, every third cancelled, every fifth re-armed:
	 * the survivors must fire exactly once each, in deadline order. */
	uint32_t x = 12345;
	for (int i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		loop_timer_init(&t[i], heap_record, NULL);
		loop_timer_arm(loop, &t[i], x % 50);
	}
	size_t expected = 0;
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0) {
			loop_timer_cancel(loop, &t[i]);
			continue;
		}
		if (i % 5 == 0) {
			x = x * 1103515245u + 12345u;
			loop_timer_arm(loop, &t[i], x % 50);
		}
		expected++;
	}
	loop_timer_init(&t[N], heap_record, &t[N]);
	loop_timer_arm(loop, &t[N], 80);
	ck_assert_int_eq(loop_run(loop), 0);
	ck_assert_uint_eq(heap_n_fired, expected + 1);
	for (size_t i = 1; i < heap_n_fired; i++)
		ck_assert_uint_le(heap_fired[i - 1], heap_fired[i]);
	for (int i = 0; i <= N; i++)
		ck_assert(!loop_timer_armed(&t[i]));
	loop_free(loop);
}
END_TEST

static int handler_hits[2];

static void handler_b(struct loop *loop, int fd, unsigned events, void *arg)
{
	handler_hits[1]++;
	char b;
	ck_assert_int_eq(read(fd, &b, 1), 1);
	loop_close_fd(loop, fd); /* forgotten and closed: no further events */
	loop_stop(loop);
}

static void handler_a(struct loop *loop, int fd, unsigned events, void *arg)
{
	handler_hits[0]++;
	char b;
	ck_assert_int_eq(read(fd, &b, 1), 1);
	/* switch to b for the next event, keeping the registration */
	ck_assert_int_eq(loop_set_handler(loop, fd, handler_b, arg), 0);
}

START_TEST(test_set_handler_and_close_fd)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	handler_hits[0] = handler_hits[1] = 0;
	ck_assert_int_eq(loop_add_fd(loop, sv[1], LOOP_READ, handler_a, NULL), 0);
	ck_assert_int_eq(write(sv[0], "ab", 2), 2);
	ck_assert_int_eq(loop_run(loop), 0);
	ck_assert_int_eq(handler_hits[0], 1);
	ck_assert_int_eq(handler_hits[1], 1);
	ck_assert_uint_eq(loop_fd_mask(loop, sv[1]), 0);
	ck_assert_int_eq(loop_set_handler(loop, sv[1], handler_a, NULL), -ENOENT);
	ck_assert_int_eq(fcntl(sv[1], F_GETFD), -1); /* really closed */
	loop_free(loop);
	close(sv[0]);
}
END_TEST

/* ---- loop_add_fd_ready: read first, watch after ---- */

struct ready_log {
	int calls;
	unsigned events[8];
	bool close_in_call; /* close the fd from the callback */
};

static void ready_cb(struct loop *loop, int fd, unsigned events, void *arg)
{
	struct ready_log *log = arg;
	if (log->calls < 8)
		log->events[log->calls] = events;
	log->calls++;
	char buf[16];
	if (events & LOOP_READ)
		(void)!read(fd, buf, sizeof buf);
	if (log->close_in_call)
		loop_close_fd(loop, fd);
}

/* loop_dispatch() calls the registered callback at once with the events
 * given, whatever epoll says, and refuses an fd it does not know. */
START_TEST(test_dispatch_calls_the_callback_with_the_events_given)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct ready_log log = { 0 };
	/* A pipe's read end is never writable, and nothing was written. */
	ck_assert_int_eq(loop_add_fd(loop, p[0], LOOP_READ | LOOP_WRITE, ready_cb, &log), 0);
	ck_assert_int_eq(loop_dispatch(loop, p[0], LOOP_WRITE), 0);
	ck_assert_int_eq(log.calls, 1);
	ck_assert_uint_eq(log.events[0], LOOP_WRITE);
	ck_assert_int_eq(loop_dispatch(loop, p[1], LOOP_READ), -ENOENT);
	ck_assert_int_eq(loop_dispatch(loop, -1, LOOP_READ), -ENOENT);
	loop_close_fd(loop, p[0]);
	ck_assert_int_eq(loop_dispatch(loop, p[0], LOOP_READ), -ENOENT);
	ck_assert_int_eq(log.calls, 1);
	close(p[1]);
	loop_free(loop);
}
END_TEST

START_TEST(test_an_fd_added_ready_is_read_at_the_end_of_the_round_then_watched)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	struct ready_log log = { 0 };
	ck_assert_int_eq(loop_add_fd_ready(loop, sv[0], LOOP_READ, ready_cb, &log), 0);
	ck_assert_uint_eq(loop_fd_mask(loop, sv[0]), LOOP_READ);
	ck_assert_int_eq(log.calls, 0); /* not from inside the add */
	h_loop_once(loop);
	ck_assert_int_eq(log.calls, 1);
	ck_assert_uint_eq(log.events[0], LOOP_READ);
	/* Still open after its call: now it is in epoll like any fd. */
	h_loop_once(loop);
	ck_assert_int_eq(log.calls, 1); /* nothing new to read */
	ck_assert_int_eq(write(sv[1], "y", 1), 1);
	h_loop_once(loop);
	ck_assert_int_eq(log.calls, 2);
	ck_assert_uint_eq(log.events[1], LOOP_READ);
	loop_close_fd(loop, sv[0]);
	close(sv[1]);
	loop_free(loop);
}
END_TEST

START_TEST(test_an_fd_added_ready_and_closed_in_its_round_is_never_watched)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	int a[2], b[2], c[2];
	/* Closed before the round ends: never called. Its number reused by
	 * another ready fd: only that one is called, once. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	struct ready_log first = { 0 }, second = { 0 };
	ck_assert_int_eq(loop_add_fd_ready(loop, a[0], LOOP_READ, ready_cb, &first), 0);
	int num = a[0];
	loop_close_fd(loop, a[0]);
	ck_assert_uint_eq(loop_fd_mask(loop, num), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
	ck_assert_int_eq(b[0], num); /* the lowest free number */
	ck_assert_int_eq(loop_add_fd_ready(loop, b[0], LOOP_READ, ready_cb, &second), 0);
	h_loop_once(loop);
	ck_assert_int_eq(first.calls, 0);
	ck_assert_int_eq(second.calls, 1);
	loop_close_fd(loop, b[0]);
	/* Closed by its own call: nothing is left watched. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c), 0);
	struct ready_log third = { .close_in_call = true };
	ck_assert_int_eq(write(c[1], "z", 1), 1);
	ck_assert_int_eq(loop_add_fd_ready(loop, c[0], LOOP_READ, ready_cb, &third), 0);
	int cnum = c[0];
	h_loop_once(loop);
	ck_assert_int_eq(third.calls, 1);
	ck_assert_uint_eq(loop_fd_mask(loop, cnum), 0);
	h_loop_once(loop);
	ck_assert_int_eq(third.calls, 1);
	/* Removed while waiting for its round: loop_del_fd needs no epoll. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
	ck_assert_int_eq(loop_add_fd_ready(loop, a[0], LOOP_READ, ready_cb, &first), 0);
	ck_assert_int_eq(loop_del_fd(loop, a[0]), 0);
	h_loop_once(loop);
	ck_assert_int_eq(first.calls, 0);
	close(a[0]);
	close(a[1]);
	close(b[1]);
	close(c[1]);
	loop_free(loop);
}
END_TEST

START_TEST(test_an_fd_added_ready_keeps_a_changed_mask_and_reports_a_failed_watch)
{
	struct loop *loop = NULL;
	ck_assert_int_eq(loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	/* Switched to LOOP_WRITE before its round: no read call, and it is
	 * watched for writing (a fresh socket is writable at once). */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct ready_log log = { 0 };
	ck_assert_int_eq(loop_add_fd_ready(loop, sv[0], LOOP_READ, ready_cb, &log), 0);
	ck_assert_int_eq(loop_mod_fd(loop, sv[0], LOOP_WRITE), 0);
	ck_assert_uint_eq(loop_fd_mask(loop, sv[0]), LOOP_WRITE);
	h_loop_once(loop); /* registered before the wait, reported by it */
	ck_assert_int_eq(log.calls, 1);
	ck_assert_uint_eq(log.events[0], LOOP_WRITE);
	loop_close_fd(loop, sv[0]);
	close(sv[1]);
	/* epoll refuses a regular file: the callback hears LOOP_ERROR after
	 * its read call, and the loop has forgotten the fd. */
	char path[] = "/tmp/drover-test-loop-XXXXXX";
	int f = mkstemp(path);
	ck_assert_int_ge(f, 0);
	unlink(path);
	struct ready_log flog = { 0 };
	ck_assert_int_eq(loop_add_fd_ready(loop, f, LOOP_READ, ready_cb, &flog), 0);
	h_loop_once(loop);
	ck_assert_int_eq(flog.calls, 2);
	ck_assert_uint_eq(flog.events[0], LOOP_READ);
	ck_assert_uint_eq(flog.events[1], LOOP_READ | LOOP_WRITE | LOOP_ERROR);
	ck_assert_uint_eq(loop_fd_mask(loop, f), 0);
	close(f);
	/* Exclusive listeners are watched at once, never this way. */
	ck_assert_int_eq(loop_add_fd_ready(loop, 0, LOOP_READ | LOOP_EXCLUSIVE, ready_cb, &flog), -EINVAL);
	loop_free(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("loop");
	tcase_add_test(tc, test_timers_fire_in_deadline_order_and_cancel_works);
	tcase_add_test(tc, test_fd_removed_during_a_batch_does_not_fire);
	tcase_add_test(tc, test_mod_switches_interest);
	tcase_add_test(tc, test_many_timers_heap_stays_ordered);
	tcase_add_test(tc, test_set_handler_and_close_fd);
	tcase_add_test(tc, test_an_fd_added_ready_is_read_at_the_end_of_the_round_then_watched);
	tcase_add_test(tc, test_an_fd_added_ready_and_closed_in_its_round_is_never_watched);
	tcase_add_test(tc, test_an_fd_added_ready_keeps_a_changed_mask_and_reports_a_failed_watch);
	tcase_add_test(tc, test_dispatch_calls_the_callback_with_the_events_given);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
