/* Unit tests for the worker's pieces that carry risk without a process
 * around them: the connection set (attach, detach, counts per protocol,
 * drain all, the callback when it empties), the scoreboard (slots, layout,
 * hand-over by fd) and the protocol table (registration, lookup, and the
 * names config lists when a listener names an unknown protocol). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "core/chan.h"
#include "core/config.h"
#include "core/loop.h"
#include "core/scoreboard.h"
#include "worker/conn.h"
#include "worker/handoff.h"
#include "worker/proto.h"

#include "harness.h"

/* ------------------------------------------------------------ connection set */

struct tconn {
	struct conn c;
	int drained; /* ops->drain calls */
	bool close_on_drain;
	bool freed;
};

static int t_freed, t_closed_calls, t_empty_calls;
static size_t t_count_at_empty;

static void tconn_drain(struct conn *c)
{
	struct tconn *t = (struct tconn *)c;
	t->drained++;
	if (t->close_on_drain)
		conn_close(c);
}

static void tconn_free(struct conn *c)
{
	struct tconn *t = (struct tconn *)c;
	t->freed = true;
	t_freed++;
}

static const struct conn_ops tconn_ops = { .drain = tconn_drain, .free = tconn_free };

static void t_closed(struct conn_set *s, void *arg)
{
	(void)s;
	(void)arg;
	t_closed_calls++;
}

static void t_empty(struct conn_set *s, void *arg)
{
	t_empty_calls++;
	t_count_at_empty = conn_set_count(s);
	ck_assert_ptr_eq(arg, &t_empty_calls);
}

static const struct proto t_proto_a = { .name = "alpha" };
static const struct proto t_proto_b = { .name = "beta" };

struct tworld {
	struct loop *loop;
	struct conn_set set;
	struct proto_env env;
	struct scoreboard_slot slot;
	struct worker_listener la, lb;
	bool draining;
};

static void tworld_init(struct tworld *w)
{
	memset(w, 0, sizeof(*w));
	t_freed = t_closed_calls = t_empty_calls = 0;
	t_count_at_empty = SIZE_MAX;
	ck_assert_int_eq(loop_new(&w->loop), 0);
	ck_assert_ptr_nonnull(w->loop);
	conn_set_init(&w->set, t_closed, t_empty, &t_empty_calls, &w->slot);
	w->env = (struct proto_env){ .loop = w->loop, .conns = &w->set, .draining = &w->draining };
	w->la = (struct worker_listener){ .fd = -1, .name = "a", .proto = &t_proto_a };
	w->lb = (struct worker_listener){ .fd = -1, .name = "b", .proto = &t_proto_b };
}

/* A connection on a real fd (one end of a socketpair; the other is closed). */
static void tconn_open(struct tworld *w, struct tconn *t, const struct worker_listener *l)
{
	int sv[2];
	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	conn_init(&t->c, &w->env, l, sv[0], NULL, 0, &tconn_ops);
}

START_TEST(the_set_counts_connections_in_total_and_per_protocol)
{
	struct tworld w;
	struct tconn t[5];
	tworld_init(&w);
	ck_assert_uint_eq(conn_set_count(&w.set), 0);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_a), 0);
	for (int i = 0; i < 3; i++)
		tconn_open(&w, &t[i], &w.la);
	for (int i = 3; i < 5; i++)
		tconn_open(&w, &t[i], &w.lb);
	ck_assert_uint_eq(conn_set_count(&w.set), 5);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_a), 3);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_b), 2);
	/* The scoreboard's gauge follows the set. */
	ck_assert_uint_eq(sb_load(&w.slot.connections), 5);

	conn_close(&t[1].c);
	conn_close(&t[4].c);
	ck_assert(t[1].freed && t[4].freed);
	ck_assert_uint_eq(conn_set_count(&w.set), 3);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_a), 2);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_b), 1);
	ck_assert_uint_eq(sb_load(&w.slot.connections), 3);
	ck_assert_int_eq(t_closed_calls, 2);
	ck_assert_int_eq(t_empty_calls, 0);
	conn_set_close_all(&w.set);
	loop_free(w.loop);
}
END_TEST

START_TEST(detach_unlinks_from_head_middle_and_tail_and_keeps_the_rest_reachable)
{
	struct tworld w;
	struct tconn t[4];
	tworld_init(&w);
	for (int i = 0; i < 4; i++)
		tconn_open(&w, &t[i], &w.la);
	/* The set is a list with the newest first: t3 t2 t1 t0. */
	ck_assert_ptr_eq(w.set.head, &t[3].c);
	conn_set_detach(&w.set, &t[3].c); /* head */
	conn_set_detach(&w.set, &t[1].c); /* middle */
	conn_set_detach(&w.set, &t[0].c); /* tail */
	ck_assert_uint_eq(conn_set_count(&w.set), 1);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_a), 1);
	ck_assert_ptr_eq(w.set.head, &t[2].c);
	ck_assert_ptr_null(t[2].c.next);
	ck_assert_ptr_null(t[2].c.prev);
	/* Attach puts a detached connection back at the head. */
	conn_set_attach(&w.set, &t[1].c);
	ck_assert_ptr_eq(w.set.head, &t[1].c);
	ck_assert_ptr_eq(t[1].c.next, &t[2].c);
	ck_assert_ptr_eq(t[2].c.prev, &t[1].c);
	ck_assert_uint_eq(conn_set_count(&w.set), 2);
	close(t[0].c.fd); /* detached: the set no longer closes them */
	close(t[3].c.fd);
	conn_set_close_all(&w.set);
	loop_free(w.loop);
}
END_TEST

START_TEST(drain_all_reaches_every_connection_even_when_each_closes_itself)
{
	struct tworld w;
	struct tconn t[6];
	tworld_init(&w);
	for (int i = 0; i < 6; i++) {
		tconn_open(&w, &t[i], i % 2 ? &w.lb : &w.la);
		t[i].close_on_drain = i % 3 != 0; /* idle ones close at once */
	}
	conn_set_drain_all(&w.set);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(t[i].drained, 1);
	ck_assert_int_eq(t_freed, 4);
	ck_assert_uint_eq(conn_set_count(&w.set), 2);
	ck_assert_int_eq(t_empty_calls, 0);
	/* The last busy ones finish: the set empties once, with n == 0. */
	conn_close(&t[0].c);
	ck_assert_int_eq(t_empty_calls, 0);
	conn_close(&t[3].c);
	ck_assert_int_eq(t_empty_calls, 1);
	ck_assert_uint_eq(t_count_at_empty, 0);
	ck_assert_uint_eq(sb_load(&w.slot.connections), 0);
	loop_free(w.loop);
}
END_TEST

START_TEST(the_empty_callback_runs_each_time_the_last_connection_leaves)
{
	struct tworld w;
	struct tconn t;
	tworld_init(&w);
	tconn_open(&w, &t, &w.la);
	conn_close(&t.c);
	ck_assert_int_eq(t_empty_calls, 1);
	ck_assert_int_eq(t_closed_calls, 1);
	tconn_open(&w, &t, &w.lb);
	conn_close(&t.c);
	ck_assert_int_eq(t_empty_calls, 2);
	ck_assert_uint_eq(conn_set_count_proto(&w.set, &t_proto_b), 0);
	loop_free(w.loop);
}
END_TEST

START_TEST(close_all_frees_everything_without_callbacks)
{
	struct tworld w;
	struct tconn t[3];
	tworld_init(&w);
	for (int i = 0; i < 3; i++)
		tconn_open(&w, &t[i], &w.la);
	int fd0 = t[0].c.fd;
	conn_set_close_all(&w.set);
	ck_assert_int_eq(t_freed, 3);
	ck_assert_uint_eq(conn_set_count(&w.set), 0);
	/* The worker is exiting: neither "closed" nor "empty" may run again. */
	ck_assert_int_eq(t_closed_calls, 0);
	ck_assert_int_eq(t_empty_calls, 0);
	ck_assert_int_eq(fcntl(fd0, F_GETFD), -1); /* the fds are closed */
	loop_free(w.loop);
}
END_TEST

START_TEST(a_set_without_callbacks_or_gauge_still_counts)
{
	struct tworld w;
	struct tconn t;
	tworld_init(&w);
	conn_set_init(&w.set, NULL, NULL, NULL, NULL);
	tconn_open(&w, &t, &w.la);
	ck_assert_uint_eq(conn_set_count(&w.set), 1);
	conn_close(&t.c);
	ck_assert_uint_eq(conn_set_count(&w.set), 0);
	ck_assert(t.freed);
	loop_free(w.loop);
}
END_TEST

/* ------------------------------------------------------------ scoreboard */

START_TEST(slots_fill_whole_cache_lines_of_their_own)
{
	struct scoreboard *sb;
	int fd;
	ck_assert_int_eq(scoreboard_create(&sb, &fd), 0);
	ck_assert_uint_eq(sizeof(struct scoreboard_slot) % SCOREBOARD_SLOT_ALIGN, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq((uintptr_t)&sb->slots[i] % SCOREBOARD_SLOT_ALIGN, 0);
	munmap(sb, sizeof(*sb));
	close(fd);
}
END_TEST

START_TEST(slot_alloc_takes_free_slots_and_free_returns_them)
{
	struct scoreboard *sb;
	int fd;
	ck_assert_int_eq(scoreboard_create(&sb, &fd), 0);
	ck_assert_int_eq(sb->hdr.supervisor_pid, getpid());
	int a = scoreboard_slot_alloc(sb, 3, 0);
	int b = scoreboard_slot_alloc(sb, 3, 1);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	ck_assert_int_ne(a, b);
	ck_assert_uint_eq(sb->slots[b].generation, 3);
	ck_assert_uint_eq(sb->slots[b].index, 1);
	ck_assert_str_eq(scoreboard_state_name(sb->slots[a].state), "starting");

	/* A reused slot starts from zero, whatever its last worker left. */
	sb_add(&sb->slots[a].requests, 41);
	sb_add(&sb->slots[a].requests, 1);
	ck_assert_uint_eq(sb_load(&sb->slots[a].requests), 42);
	sb->slots[a].pid = 1234;
	scoreboard_slot_free(sb, a);
	ck_assert_str_eq(scoreboard_state_name(sb->slots[a].state), "free");
	ck_assert_int_eq(sb->slots[a].pid, 0);
	int c = scoreboard_slot_alloc(sb, 4, 0);
	ck_assert_int_eq(c, a);
	ck_assert_uint_eq(sb_load(&sb->slots[c].requests), 0);
	ck_assert_uint_eq(sb->slots[c].generation, 4);

	/* Full: -ENOSPC, and a bad slot number is ignored on free. */
	int n = 0;
	while (scoreboard_slot_alloc(sb, 5, 0) >= 0)
		n++;
	ck_assert_int_eq(n, SCOREBOARD_SLOTS - 2);
	ck_assert_int_eq(scoreboard_slot_alloc(sb, 5, 0), -ENOSPC);
	scoreboard_slot_free(sb, -1);
	scoreboard_slot_free(sb, SCOREBOARD_SLOTS);
	munmap(sb, sizeof(*sb));
	close(fd);
}
END_TEST

START_TEST(attach_maps_the_same_board_and_refuses_a_foreign_one)
{
	struct scoreboard *sb, *again;
	int fd;
	ck_assert_int_eq(scoreboard_create(&sb, &fd), 0);
	int s = scoreboard_slot_alloc(sb, 1, 0);
	ck_assert_int_eq(scoreboard_attach(fd, &again), 0);
	sb_store(&sb->slots[s].bytes_out, 777);
	ck_assert_uint_eq(sb_load(&again->slots[s].bytes_out), 777);
	munmap(again, sizeof(*again));

	/* Another layout (an older image's) is refused, not misread. */
	uint32_t version = 1;
	ck_assert_int_eq(pwrite(fd, &version, sizeof(version), offsetof(struct scoreboard_header, version)),
			 (ssize_t)sizeof(version));
	ck_assert_int_eq(scoreboard_attach(fd, &again), -EPROTO);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(scoreboard_attach(fd, &again), -EPROTO);
	ck_assert_int_eq(scoreboard_attach(-1, &again), -EBADF);
	munmap(sb, sizeof(*sb));
	close(fd);
}
END_TEST

START_TEST(state_names_cover_every_state)
{
	ck_assert_str_eq(scoreboard_state_name(SLOT_FREE), "free");
	ck_assert_str_eq(scoreboard_state_name(SLOT_STARTING), "starting");
	ck_assert_str_eq(scoreboard_state_name(SLOT_READY), "ready");
	ck_assert_str_eq(scoreboard_state_name(SLOT_DRAINING), "draining");
	ck_assert_str_eq(scoreboard_state_name(99), "unknown");
}
END_TEST

/* ------------------------------------------------------------ protocol table */

/* finger has a status endpoint, so it adds the listener key status, which
 * only its own listeners may turn on (as HTTP does in proto/http/config.c). */
struct t_finger_listener {
	bool status;
};

static void t_finger_check(struct config_check *chk, void *data)
{
	const struct t_finger_listener *fl = data;
	config_check_own_protocol(chk, "status", fl->status, "the status endpoint");
}

static const struct config_key t_finger_keys[] = {
	{ "status", config_key_bool, CONFIG_FIELD(struct t_finger_listener, status), 0, 0 },
};
static const struct config_section t_finger_listener_keys = {
	.keys = t_finger_keys,
	.n_keys = 1,
	.size = sizeof(struct t_finger_listener),
	.check = t_finger_check,
};
static const struct config_module t_finger_config = { .listener = &t_finger_listener_keys };

static const struct proto t_proto_gopher = { .name = "gopher" };
static const struct proto t_proto_finger = { .name = "finger", .config = &t_finger_config };

/* Load text as a config file; returns config_load()'s result, messages in err. */
static int t_load(const char *text, struct config **cfg, char *err, size_t err_len)
{
	char path[] = "/tmp/drover-units-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int r = config_load(path, cfg, err, err_len);
	unlink(path);
	return r;
}

START_TEST(proto_find_looks_names_up_in_the_registered_table_ignoring_case)
{
	static const struct proto *const table[] = { &t_proto_gopher, &t_proto_finger, NULL };
	proto_register(table);
	ck_assert_ptr_eq(proto_find("gopher"), &t_proto_gopher);
	ck_assert_ptr_eq(proto_find("FINGER"), &t_proto_finger);
	ck_assert_ptr_null(proto_find("http"));
	ck_assert_ptr_null(proto_find(""));
	ck_assert_ptr_eq(proto_table(), table);
}
END_TEST

START_TEST(config_accepts_registered_names_and_defaults_to_the_first)
{
	static const struct proto *const table[] = { &t_proto_gopher, &t_proto_finger, NULL };
	proto_register(table);
	struct config *cfg = NULL;
	char err[4096];
	int r = t_load("[listener a]\naddress = 127.0.0.1:7001\n"
		       "[listener b]\naddress = 127.0.0.1:7002\nprotocol = Finger\nstatus = yes\n",
		       &cfg, err, sizeof(err));
	ck_assert_msg(r == 0, "%s", err);
	ck_assert_str_eq(config_find_listener(cfg, "a")->protocol, "gopher");
	ck_assert_str_eq(config_find_listener(cfg, "b")->protocol, "finger");
	config_free(cfg);
}
END_TEST

START_TEST(an_unknown_protocol_is_refused_with_the_registered_names_in_table_order)
{
	static const struct proto *const table[] = { &t_proto_gopher, &t_proto_finger, NULL };
	proto_register(table);
	struct config *cfg = NULL;
	char err[4096];
	int r = t_load("[listener a]\naddress = 127.0.0.1:7001\nprotocol = http\n", &cfg, err,
		       sizeof(err));
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(err, ":3: [listener a] protocol: expected gopher or finger, got 'http'"),
		      "%s", err);
	/* A protocol without a status endpoint cannot serve one, and the
	 * message names the one that can. */
	r = t_load("[listener a]\naddress = 127.0.0.1:7001\nstatus = yes\n", &cfg, err, sizeof(err));
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(err, "needs protocol = finger and this listener is gopher"), "%s", err);
}
END_TEST

START_TEST(registering_another_table_replaces_the_names_config_knows)
{
	static const struct proto *const first[] = { &t_proto_gopher, NULL };
	static const struct proto *const second[] = { &t_proto_finger, NULL };
	struct config *cfg = NULL;
	char err[4096];
	proto_register(first);
	proto_register(second);
	ck_assert_ptr_null(proto_find("gopher"));
	int r = t_load("[listener a]\naddress = 127.0.0.1:7001\nprotocol = gopher\n", &cfg, err,
		       sizeof(err));
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(err, "protocol: expected finger, got 'gopher'"), "%s", err);
}
END_TEST

/* ------------------------------------------------------------ hand-off records */

START_TEST(a_handoff_record_round_trips_and_a_newer_version_is_refused_but_skippable)
{
	struct tworld w;
	tworld_init(&w);
	struct tconn t;
	tconn_open(&w, &t, &w.la);
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(4242) };
	peer.sin_addr.s_addr = htonl(0x7f000001);
	memcpy(&t.c.peer, &peer, sizeof peer);
	t.c.peer_len = sizeof peer;
	static const char half[] = "GET /page.txt HTT";
	struct handoff_conn h = { .requests = 999, .flags = 0x801, .idle_left_ms = 12345, .bytes = half,
				  .len = sizeof half - 1 };
	unsigned char buf[CHAN_DATA_MAX];
	int n = handoff_rec_encode(&t.c, &h, HANDOFF_VERSION, buf, sizeof buf);
	ck_assert_int_eq(n, HANDOFF_REC_HDR + 1 + 5 + (int)(sizeof half - 1));
	struct handoff_rec r;
	size_t size = 0;
	ck_assert_int_eq(handoff_rec_decode(buf, (size_t)n, &r, &size), n);
	ck_assert_uint_eq(size, (size_t)n);
	ck_assert_str_eq(r.listener, "a");
	ck_assert_str_eq(r.proto, "alpha");
	ck_assert_uint_eq(r.h.requests, 999);
	ck_assert_uint_eq(r.h.flags, 0x801);
	ck_assert_uint_eq(r.h.idle_left_ms, 12345);
	ck_assert_uint_eq(r.h.len, sizeof half - 1);
	ck_assert(memcmp(r.h.bytes, half, r.h.len) == 0);
	ck_assert_uint_eq(r.h.peer_len, sizeof peer);
	ck_assert(memcmp(r.h.peer, &peer, sizeof peer) == 0);
	/* Cut short, or a length that lies: malformed. */
	ck_assert_int_eq(handoff_rec_decode(buf, (size_t)n - 1, &r, &size), -EBADMSG);
	buf[4]--;
	ck_assert_int_eq(handoff_rec_decode(buf, (size_t)n, &r, &size), -EBADMSG);
	buf[4]++;
	/* A newer version: refused, and its size still lets a reader skip it. */
	ck_assert_int_eq(handoff_rec_encode(&t.c, &h, HANDOFF_VERSION + 1, buf, sizeof buf), n);
	size = 0;
	ck_assert_int_eq(handoff_rec_decode(buf, (size_t)n, &r, &size), -EPROTONOSUPPORT);
	ck_assert_uint_eq(size, (size_t)n);
	/* Too many bytes for a hand-off, or for the room given. */
	h.len = HANDOFF_BYTES_MAX + 1;
	ck_assert_int_eq(handoff_rec_encode(&t.c, &h, HANDOFF_VERSION, buf, sizeof buf), -EMSGSIZE);
	h.len = 4;
	ck_assert_int_eq(handoff_rec_encode(&t.c, &h, HANDOFF_VERSION, buf, HANDOFF_REC_HDR), -EMSGSIZE);
	conn_close(&t.c);
	loop_free(w.loop);
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("units_core");
	TCase *set = tcase_create("connection_set");
	tcase_add_test(set, the_set_counts_connections_in_total_and_per_protocol);
	tcase_add_test(set, detach_unlinks_from_head_middle_and_tail_and_keeps_the_rest_reachable);
	tcase_add_test(set, drain_all_reaches_every_connection_even_when_each_closes_itself);
	tcase_add_test(set, the_empty_callback_runs_each_time_the_last_connection_leaves);
	tcase_add_test(set, close_all_frees_everything_without_callbacks);
	tcase_add_test(set, a_set_without_callbacks_or_gauge_still_counts);
	suite_add_tcase(s, set);
	TCase *sb = tcase_create("scoreboard");
	tcase_add_test(sb, slots_fill_whole_cache_lines_of_their_own);
	tcase_add_test(sb, slot_alloc_takes_free_slots_and_free_returns_them);
	tcase_add_test(sb, attach_maps_the_same_board_and_refuses_a_foreign_one);
	tcase_add_test(sb, state_names_cover_every_state);
	suite_add_tcase(s, sb);
	TCase *ho = tcase_create("handoff");
	tcase_add_test(ho, a_handoff_record_round_trips_and_a_newer_version_is_refused_but_skippable);
	suite_add_tcase(s, ho);
	TCase *pt = tcase_create("protocol_table");
	tcase_add_test(pt, proto_find_looks_names_up_in_the_registered_table_ignoring_case);
	tcase_add_test(pt, config_accepts_registered_names_and_defaults_to_the_first);
	tcase_add_test(pt, an_unknown_protocol_is_refused_with_the_registered_names_in_table_order);
	tcase_add_test(pt, registering_another_table_replaces_the_names_config_knows);
	suite_add_tcase(s, pt);
	return s;
}

int main(void)
{
	int failed = h_run_suite(units_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
