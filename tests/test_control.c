/* Unit tests for the control channel: encoding, decoding, and the
 * SOCK_SEQPACKET transport (message boundaries, EOF). Also the binary
 * upgrade hand-over format, which travels with the same fds. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/chan.h"
#include "supervisor/upgrade.h"

#include "harness.h"

START_TEST(test_encode_decode_round_trip)
{
	static const enum chan_type types[] = { CHAN_READY, CHAN_RECYCLE_ME, CHAN_DRAINING, CHAN_START,
						    CHAN_DRAIN, CHAN_STOP, CHAN_REOPEN_LOGS };
	static const uint64_t args[] = { 0, 1, 0xffffffffull, 0x0123456789abcdefull, UINT64_MAX };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		for (size_t j = 0; j < sizeof(args) / sizeof(args[0]); j++) {
			unsigned char buf[CHAN_MSG_SIZE];
			struct chan_msg in = { .type = types[i], .arg = args[j] }, out;
			chan_encode(&in, buf);
			ck_assert_int_eq(chan_decode(buf, sizeof(buf), &out), 0);
			ck_assert_int_eq(out.type, in.type);
			ck_assert_uint_eq(out.arg, in.arg);
		}
	}
}
END_TEST

START_TEST(test_encoding_is_fixed_little_endian)
{
	/* Images of different builds must agree during a binary upgrade. */
	unsigned char buf[CHAN_MSG_SIZE];
	struct chan_msg m = { .type = CHAN_DRAIN, .arg = 0x0102030405060708ull };
	chan_encode(&m, buf);
	static const unsigned char want[CHAN_MSG_SIZE] = { 0x44, 1, 0, 0, 16, 0, 0, 0,
							       8, 7, 6, 5, 4, 3, 2, 1 };
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_decode_rejects_bad_messages)
{
	unsigned char buf[CHAN_MSG_SIZE + 1];
	struct chan_msg m = { .type = CHAN_READY, .arg = 7 }, out;
	chan_encode(&m, buf);
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE - 1, &out), -EBADMSG); /* short */
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + 1, &out), -EBADMSG); /* long */
	buf[0] = 'X';
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE, &out), -EBADMSG); /* magic */
	chan_encode(&m, buf);
	buf[1] = 2;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE, &out), -EBADMSG); /* version */
	chan_encode(&m, buf);
	buf[4] = 99;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE, &out), -EBADMSG); /* type */
}
END_TEST

START_TEST(test_type_names)
{
	ck_assert_str_eq(chan_type_name(CHAN_DRAIN), "DRAIN");
	ck_assert_str_eq(chan_type_name(CHAN_READY), "READY");
	ck_assert_str_eq(chan_type_name(CHAN_RECYCLE_ME), "RECYCLE_ME");
	ck_assert_str_eq(chan_type_name((enum chan_type)1234), "?");
}
END_TEST

START_TEST(test_pair_keeps_message_boundaries_and_reports_eof)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_msg m;
	ck_assert_int_eq(chan_recv(sv[1], &m), -EAGAIN); /* non-blocking, nothing yet */
	ck_assert_int_eq(chan_send(sv[0], CHAN_READY, 0), 0);
	ck_assert_int_eq(chan_send(sv[0], CHAN_DRAIN, 123456789), 0);
	ck_assert_int_eq(chan_recv(sv[1], &m), 1);
	ck_assert_int_eq(m.type, CHAN_READY);
	ck_assert_int_eq(chan_recv(sv[1], &m), 1);
	ck_assert_int_eq(m.type, CHAN_DRAIN);
	ck_assert_uint_eq(m.arg, 123456789);
	ck_assert_int_eq(chan_recv(sv[1], &m), -EAGAIN);
	close(sv[0]);
	ck_assert_int_eq(chan_recv(sv[1], &m), 0); /* the peer is gone */
	ck_assert_int_eq(chan_send(sv[1], CHAN_READY, 0), -EPIPE);
	close(sv[1]);
}
END_TEST

START_TEST(test_recv_rejects_garbage_datagram)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	ck_assert_int_eq(write(sv[0], "hello", 5), 5);
	struct chan_msg m;
	ck_assert_int_eq(chan_recv(sv[1], &m), -EBADMSG);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_upgrade_state_round_trip)
{
	static struct upgrade_state in, out;
	memset(&in, 0, sizeof(in));
	in.generation = 7;
	in.scoreboard_fd = 5;
	in.ctl_fd = 6;
	in.client_fd = -1;
	in.n_listeners = 2;
	in.listeners[0] = (struct upgrade_listener){ .fd = 3, .name = "web", .from_systemd = true, .address = "" };
	in.listeners[1] = (struct upgrade_listener){ .fd = 4, .name = "admin", .unix_bound = true,
						     .address = "unix:/run/a;b,c%d e" };
	in.n_workers = 2;
	in.workers[0] = (struct upgrade_worker){ .pid = 100, .generation = 7, .index = 0, .slot = 3,
						 .chan_fd = 9, .state = 1, .drain_deadline_ms = 0 };
	in.workers[1] = (struct upgrade_worker){ .pid = 101, .generation = 6, .index = 1, .slot = 4,
						 .chan_fd = 10, .state = 2, .drain_deadline_ms = 123456789012ull };
	char env[8192];
	ck_assert_int_eq(upgrade_encode(&in, env, sizeof(env)), 0);
	ck_assert_ptr_nonnull(strchr(env, '='));
	ck_assert_int_eq(upgrade_decode(strchr(env, '=') + 1, &out), 0);
	ck_assert_uint_eq(out.generation, 7);
	ck_assert_int_eq(out.scoreboard_fd, 5);
	ck_assert_int_eq(out.ctl_fd, 6);
	ck_assert_int_eq(out.client_fd, -1);
	ck_assert_uint_eq(out.n_listeners, 2);
	ck_assert_str_eq(out.listeners[0].name, "web");
	ck_assert(out.listeners[0].from_systemd);
	ck_assert_str_eq(out.listeners[1].address, "unix:/run/a;b,c%d e");
	ck_assert(out.listeners[1].unix_bound);
	ck_assert_uint_eq(out.n_workers, 2);
	ck_assert_int_eq(out.workers[1].pid, 101);
	ck_assert_int_eq(out.workers[1].chan_fd, 10);
	ck_assert_int_eq(out.workers[1].state, 2);
	ck_assert_uint_eq(out.workers[1].drain_deadline_ms, 123456789012ull);
}
END_TEST

START_TEST(test_upgrade_state_rejects_garbage)
{
	static struct upgrade_state s;
	ck_assert_int_eq(upgrade_decode("", &s), -EINVAL);
	ck_assert_int_eq(upgrade_decode("v2;sb=3", &s), -EINVAL);
	ck_assert_int_eq(upgrade_decode("v1;g=1", &s), -EINVAL); /* no scoreboard */
	ck_assert_int_eq(upgrade_decode("v1;sb=3;W=1,2", &s), -EINVAL);
	ck_assert_int_eq(upgrade_decode("v1;sb=3;Q=1", &s), -EINVAL);
	ck_assert_int_eq(upgrade_decode("v1;sb=3;L=4,0,nocomma", &s), -EINVAL);
	ck_assert_int_eq(upgrade_decode("v1;sb=3", &s), 0);
}
END_TEST

START_TEST(test_upgrade_encode_reports_overflow)
{
	static struct upgrade_state s;
	memset(&s, 0, sizeof(s));
	s.scoreboard_fd = 3;
	s.n_workers = 50;
	char small[64];
	ck_assert_int_eq(upgrade_encode(&s, small, sizeof(small)), -ENOBUFS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");
	tcase_add_test(tc, test_encode_decode_round_trip);
	tcase_add_test(tc, test_encoding_is_fixed_little_endian);
	tcase_add_test(tc, test_decode_rejects_bad_messages);
	tcase_add_test(tc, test_type_names);
	tcase_add_test(tc, test_pair_keeps_message_boundaries_and_reports_eof);
	tcase_add_test(tc, test_recv_rejects_garbage_datagram);
	tcase_add_test(tc, test_upgrade_state_round_trip);
	tcase_add_test(tc, test_upgrade_state_rejects_garbage);
	tcase_add_test(tc, test_upgrade_encode_reports_overflow);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
