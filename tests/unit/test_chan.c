/* Unit tests for the control channel: encoding and decoding (both
 * versions of the wire format), the SOCK_SEQPACKET transport (message
 * boundaries, payloads, fds, EOF) and the send queue (bounded, in order,
 * never waiting). Also the binary upgrade hand-over format, which travels
 * with the same fds. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/chan.h"
#include "supervisor/handover.h"

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
			ck_assert_int_eq(chan_encode(&in, buf, sizeof(buf)), CHAN_MSG_SIZE);
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
	ck_assert_int_eq(chan_encode(&m, buf, sizeof(buf)), CHAN_MSG_SIZE);
	static const unsigned char want[CHAN_MSG_SIZE] = { 0x44, 1, 0, 0, 16, 0, 0, 0,
							       8, 7, 6, 5, 4, 3, 2, 1 };
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_decode_rejects_bad_messages)
{
	unsigned char buf[CHAN_MSG_SIZE + 1];
	struct chan_msg m = { .type = CHAN_READY, .arg = 7 }, out;
	chan_encode(&m, buf, sizeof(buf));
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE - 1, &out), -EBADMSG); /* short */
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + 1, &out), -EBADMSG); /* long */
	buf[0] = 'X';
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE, &out), -EBADMSG); /* magic */
	chan_encode(&m, buf, sizeof(buf));
	buf[1] = 2;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE, &out), -EBADMSG); /* version */
	chan_encode(&m, buf, sizeof(buf));
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

/* ----------------------------------------------------- payloads (version 2) */

static void fill(struct chan_msg *m, enum chan_type type, uint64_t arg, size_t len)
{
	m->type = type;
	m->arg = arg;
	m->len = len;
	for (size_t i = 0; i < len; i++)
		m->data[i] = (unsigned char)(i * 7 + 3);
}

START_TEST(a_payload_travels_in_the_version_2_form_and_comes_back_whole)
{
	static struct chan_msg in, out;
	static unsigned char buf[CHAN_DATAGRAM_MAX];
	static const size_t lens[] = { 1, 2, 300, CHAN_DATA_MAX };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		fill(&in, CHAN_DRAIN, 0xfeedull + i, lens[i]);
		ck_assert_uint_eq(chan_msg_version(&in), 2);
		ck_assert_int_eq(chan_encode(&in, buf, sizeof(buf)), (int)(CHAN_MSG_SIZE + lens[i]));
		ck_assert_uint_eq(buf[0], 0x44);
		ck_assert_uint_eq(buf[1], 2);
		ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + lens[i], &out), 0);
		ck_assert_int_eq(out.type, CHAN_DRAIN);
		ck_assert_uint_eq(out.arg, 0xfeedull + i);
		ck_assert_uint_eq(out.len, lens[i]);
		ck_assert_mem_eq(out.data, in.data, lens[i]);
	}
}
END_TEST

START_TEST(a_message_without_payload_is_the_version_1_form_old_builds_read)
{
	/* A build before version 2 accepts exactly 16 bytes with version 1:
	 * today's messages must still be that, whatever else is added. */
	struct chan_msg m = { .type = CHAN_START, .arg = 0, .len = 0 };
	unsigned char buf[CHAN_DATAGRAM_MAX];
	ck_assert_uint_eq(chan_msg_version(&m), 1);
	ck_assert_int_eq(chan_encode(&m, buf, sizeof(buf)), 16);
	ck_assert_uint_eq(buf[1], 1);
}
END_TEST

START_TEST(sizes_and_versions_that_do_not_match_are_refused)
{
	static struct chan_msg m, out;
	static unsigned char buf[CHAN_DATAGRAM_MAX + 1];
	fill(&m, CHAN_READY, 1, CHAN_DATA_MAX);
	m.len = CHAN_DATA_MAX + 1;
	ck_assert_int_eq(chan_encode(&m, buf, sizeof(buf)), -EMSGSIZE); /* payload over the bound */
	fill(&m, CHAN_READY, 1, 10);
	ck_assert_int_eq(chan_encode(&m, buf, CHAN_MSG_SIZE + 9), -EMSGSIZE); /* no room */
	ck_assert_int_eq(chan_encode(&m, buf, sizeof(buf)), CHAN_MSG_SIZE + 10);
	buf[1] = 1;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + 10, &out), -EBADMSG); /* version 1 has no payload */
	buf[1] = 3;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + 10, &out), -EBADMSG); /* an unknown version */
	buf[1] = 2;
	ck_assert_int_eq(chan_decode(buf, CHAN_MSG_SIZE + 10, &out), 0);
	memset(buf + CHAN_MSG_SIZE, 0, sizeof(buf) - CHAN_MSG_SIZE);
	ck_assert_int_eq(chan_decode(buf, CHAN_DATAGRAM_MAX, &out), 0);
	ck_assert_int_eq(chan_decode(buf, CHAN_DATAGRAM_MAX + 1, &out), -EBADMSG); /* too long */
}
END_TEST

START_TEST(a_payload_and_fds_cross_the_socketpair_together)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	static struct chan_msg in, out;
	fill(&in, CHAN_REOPEN_LOGS, 1, 700);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(chan_send_msg(sv[0], &in, &p[1], 1), 0);
	close(p[1]);
	int fds[CHAN_MAX_FDS];
	size_t n_fds = 0;
	ck_assert_int_eq(chan_recv_fds(sv[1], &out, fds, CHAN_MAX_FDS, &n_fds), 1);
	ck_assert_uint_eq(out.len, 700);
	ck_assert_mem_eq(out.data, in.data, 700);
	ck_assert_uint_eq(n_fds, 1);
	ck_assert_int_eq(write(fds[0], "x", 1), 1);
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(fds[0]);
	close(p[0]);
	/* A datagram longer than any message is refused whole. */
	static unsigned char big[CHAN_DATAGRAM_MAX + 100];
	memset(big, 0, sizeof(big));
	ck_assert_int_eq(write(sv[0], big, sizeof(big)), (ssize_t)sizeof(big));
	ck_assert_int_eq(chan_recv(sv[1], &out), -EBADMSG);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ------------------------------------------------------------ the queue */

/* Fill sv[0]'s way to sv[1] until the socket takes no more; how many went. */
static size_t fill_socket(int fd)
{
	size_t n = 0;
	while (chan_send(fd, CHAN_DRAINING, n) == 0)
		n++;
	ck_assert_uint_gt(n, 0);
	return n;
}

/* Read everything sv has; the messages into got (up to max), their count. */
static size_t drain_socket(int fd, struct chan_msg *got, size_t max)
{
	size_t n = 0;
	static struct chan_msg m;
	while (chan_recv(fd, &m) == 1) {
		if (n < max)
			got[n] = m;
		n++;
	}
	return n;
}

START_TEST(the_queue_sends_at_once_while_the_socket_has_room)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	static struct chan_msg m, got;
	fill(&m, CHAN_START, 5, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), CHAN_OUT_SENT);
	ck_assert_uint_eq(chan_out_held(&q), 0);
	ck_assert_int_eq(chan_recv(sv[1], &got), 1);
	ck_assert_int_eq(got.type, CHAN_START);
	ck_assert_uint_eq(got.arg, 5);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(a_full_socket_holds_messages_and_the_flush_sends_them_in_order)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	size_t filled = fill_socket(sv[0]);
	static struct chan_msg m;
	for (uint64_t i = 0; i < 10; i++) {
		fill(&m, CHAN_DRAIN, 1000 + i, i % 3 ? 0 : 100); /* with and without payload */
		ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), CHAN_OUT_HELD);
	}
	ck_assert_uint_eq(chan_out_held(&q), 10);
	/* Nothing is lost or reordered, however the reader and the flush interleave. */
	static struct chan_msg got[4096];
	size_t n = 0;
	for (int rounds = 0; rounds < 1000 && chan_out_held(&q); rounds++) {
		n += drain_socket(sv[1], got + n, sizeof(got) / sizeof(got[0]) - n);
		int r = chan_out_flush(&q);
		ck_assert(r == CHAN_OUT_SENT || r == CHAN_OUT_HELD);
	}
	ck_assert_uint_eq(chan_out_held(&q), 0);
	n += drain_socket(sv[1], got + n, sizeof(got) / sizeof(got[0]) - n);
	ck_assert_uint_eq(n, filled + 10);
	for (uint64_t i = 0; i < 10; i++) {
		ck_assert_int_eq(got[filled + i].type, CHAN_DRAIN);
		ck_assert_uint_eq(got[filled + i].arg, 1000 + i);
		ck_assert_uint_eq(got[filled + i].len, i % 3 ? 0 : 100);
	}
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(the_queue_is_bounded)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	fill_socket(sv[0]);
	static struct chan_msg m;
	fill(&m, CHAN_DRAIN, 1, 0);
	for (size_t i = 0; i < CHAN_OUT_MAX_MSGS; i++)
		ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), CHAN_OUT_HELD);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), -ENOBUFS);
	ck_assert_uint_eq(chan_out_held(&q), CHAN_OUT_MAX_MSGS);
	chan_out_clear(&q);
	/* In bytes too: big messages reach the bound before the count does. */
	fill(&m, CHAN_DRAIN, 1, CHAN_DATA_MAX);
	size_t held = 0;
	while (chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND) == CHAN_OUT_HELD)
		held++;
	ck_assert_uint_eq(held, CHAN_OUT_MAX_BYTES / CHAN_DATAGRAM_MAX);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), -ENOBUFS);
	chan_out_clear(&q);
	ck_assert_uint_eq(chan_out_held(&q), 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(a_replacing_message_takes_the_place_of_the_one_of_its_type_held)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	size_t filled = fill_socket(sv[0]);
	static struct chan_msg m;
	fill(&m, CHAN_START, 0, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_REPLACE), CHAN_OUT_HELD);
	fill(&m, CHAN_DRAIN, 500, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_REPLACE), CHAN_OUT_HELD);
	fill(&m, CHAN_STOP, 0, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_REPLACE), CHAN_OUT_HELD);
	fill(&m, CHAN_DRAIN, 400, 0); /* an earlier deadline: only it counts, where DRAIN was */
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_REPLACE), CHAN_OUT_HELD);
	ck_assert_uint_eq(chan_out_held(&q), 3);
	static struct chan_msg got[4096];
	size_t n = 0;
	for (int rounds = 0; rounds < 1000 && chan_out_held(&q); rounds++) {
		n += drain_socket(sv[1], got + n, sizeof(got) / sizeof(got[0]) - n);
		chan_out_flush(&q);
	}
	n += drain_socket(sv[1], got + n, sizeof(got) / sizeof(got[0]) - n);
	ck_assert_uint_eq(n, filled + 3);
	ck_assert_int_eq(got[filled].type, CHAN_START);
	ck_assert_int_eq(got[filled + 1].type, CHAN_DRAIN);
	ck_assert_uint_eq(got[filled + 1].arg, 400);
	ck_assert_int_eq(got[filled + 2].type, CHAN_STOP);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Open fds of this process. */
static size_t open_fds(void)
{
	size_t n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

START_TEST(held_fds_are_copies_delivered_after_the_sender_closed_its_own)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	size_t filled = fill_socket(sv[0]);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	static struct chan_msg m;
	fill(&m, CHAN_REOPEN_LOGS, 1, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, &p[1], 1, CHAN_HOLD_APPEND), CHAN_OUT_HELD);
	close(p[1]); /* the file was reopened again meanwhile */
	size_t n = 0;
	int fds[CHAN_MAX_FDS];
	size_t n_fds = 0;
	static struct chan_msg got;
	for (int rounds = 0; rounds < 1000 && n <= filled; rounds++) {
		int r;
		while ((r = chan_recv_fds(sv[1], &got, fds, CHAN_MAX_FDS, &n_fds)) == 1 && ++n <= filled)
			;
		chan_out_flush(&q);
	}
	ck_assert_int_eq(got.type, CHAN_REOPEN_LOGS);
	ck_assert_uint_eq(n_fds, 1);
	ck_assert_int_eq(write(fds[0], "y", 1), 1);
	char c;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(fds[0]);
	/* Dropping what is held closes the copies it made. */
	size_t before = open_fds();
	fill_socket(sv[0]);
	int p2[2];
	ck_assert_int_eq(pipe(p2), 0);
	ck_assert_int_eq(chan_out_send(&q, &m, p2, 2, CHAN_HOLD_APPEND), CHAN_OUT_HELD);
	ck_assert_uint_eq(open_fds(), before + 4);
	chan_out_clear(&q);
	ck_assert_uint_eq(open_fds(), before + 2);
	close(p2[0]);
	close(p2[1]);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(a_peer_of_version_1_gets_only_messages_without_payload)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], 1);
	static struct chan_msg m;
	fill(&m, CHAN_DRAIN, 9, 20);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), -EPROTONOSUPPORT);
	fill(&m, CHAN_DRAIN, 9, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), CHAN_OUT_SENT);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(a_peer_gone_drops_what_is_held_and_says_so)
{
	int sv[2];
	ck_assert_int_eq(chan_pair(sv), 0);
	struct chan_out q;
	chan_out_init(&q, sv[0], CHAN_VERSION);
	fill_socket(sv[0]);
	static struct chan_msg m;
	fill(&m, CHAN_STOP, 0, 0);
	ck_assert_int_eq(chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND), CHAN_OUT_HELD);
	close(sv[1]);
	int r = chan_out_flush(&q); /* unread messages died with it: a reset */
	ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "flush: %d", r);
	ck_assert_uint_eq(chan_out_held(&q), 0);
	r = chan_out_send(&q, &m, NULL, 0, CHAN_HOLD_APPEND);
	ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "send: %d", r);
	close(sv[0]);
}
END_TEST

START_TEST(test_upgrade_state_round_trip)
{
	static struct handover in, out;
	memset(&in, 0, sizeof(in));
	in.generation = 7;
	in.scoreboard_fd = 5;
	in.ctl_fd = 6;
	in.client_fd = -1;
	in.n_listeners = 2;
	in.listeners[0] = (struct handover_listener){ .fd = 3, .name = "web", .from_systemd = true, .address = "" };
	in.listeners[1] = (struct handover_listener){ .fd = 4, .name = "admin", .unix_bound = true,
						     .address = "unix:/run/a;b,c%d e" };
	in.n_workers = 2;
	in.workers[0] = (struct handover_worker){ .pid = 100, .generation = 7, .index = 0, .slot = 3,
						 .chan_fd = 9, .state = 1, .drain_deadline_ms = 0, .chan_version = 2 };
	in.workers[1] = (struct handover_worker){ .pid = 101, .generation = 6, .index = 1, .slot = 4,
						 .chan_fd = 10, .state = 2, .drain_deadline_ms = 123456789012ull,
						 .handoff_to = 100 };
	char env[8192];
	ck_assert_int_eq(handover_encode(&in, env, sizeof(env)), 0);
	ck_assert_ptr_nonnull(strchr(env, '='));
	ck_assert_int_eq(handover_decode(strchr(env, '=') + 1, &out), 0);
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
	/* The channel's version travels; a worker without one reads version 1. */
	ck_assert_uint_eq(out.workers[0].chan_version, 2);
	ck_assert_uint_eq(out.workers[1].chan_version, 1);
	/* Whom a draining worker hands over to travels too (hand-off). */
	ck_assert_int_eq(out.workers[0].handoff_to, 0);
	ck_assert_int_eq(out.workers[1].handoff_to, 100);
	const char *w1 = strstr(env, ";W=101,");
	ck_assert_ptr_nonnull(w1);
	int pid1, state1, slot1, fd1;
	unsigned gen1, index1, version1;
	unsigned long long deadline1;
	/* A build before hand-off reads its eight fields and stops there. */
	ck_assert_int_eq(sscanf(w1 + 1, "W=%d,%u,%u,%d,%d,%d,%llu,%u", &pid1, &gen1, &index1, &slot1, &fd1, &state1,
				&deadline1, &version1),
			 8);
	ck_assert_uint_eq(version1, 1);
	/* A build that knows only seven worker fields still reads them all. */
	const char *w = strstr(env, ";W=100,");
	ck_assert_ptr_nonnull(w);
	int pid, state, slot, fd;
	unsigned gen, index;
	unsigned long long deadline;
	ck_assert_int_eq(sscanf(w + 1, "W=%d,%u,%u,%d,%d,%d,%llu", &pid, &gen, &index, &slot, &fd, &state, &deadline), 7);
	ck_assert_int_eq(fd, 9);
	ck_assert_uint_eq(deadline, 0);
}
END_TEST

START_TEST(test_upgrade_state_rejects_garbage)
{
	static struct handover s;
	ck_assert_int_eq(handover_decode("", &s), -EINVAL);
	ck_assert_int_eq(handover_decode("v2;sb=3", &s), -EINVAL);
	ck_assert_int_eq(handover_decode("v1;g=1", &s), -EINVAL); /* no scoreboard */
	ck_assert_int_eq(handover_decode("v1;sb=3;W=1,2", &s), -EINVAL);
	ck_assert_int_eq(handover_decode("v1;sb=3;Q=1", &s), -EINVAL);
	ck_assert_int_eq(handover_decode("v1;sb=3;L=4,0,nocomma", &s), -EINVAL);
	ck_assert_int_eq(handover_decode("v1;sb=3", &s), 0);
}
END_TEST

START_TEST(test_upgrade_encode_reports_overflow)
{
	static struct handover s;
	memset(&s, 0, sizeof(s));
	s.scoreboard_fd = 3;
	s.n_workers = 50;
	char small[64];
	ck_assert_int_eq(handover_encode(&s, small, sizeof(small)), -ENOBUFS);
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
	tcase_add_test(tc, a_payload_travels_in_the_version_2_form_and_comes_back_whole);
	tcase_add_test(tc, a_message_without_payload_is_the_version_1_form_old_builds_read);
	tcase_add_test(tc, sizes_and_versions_that_do_not_match_are_refused);
	tcase_add_test(tc, a_payload_and_fds_cross_the_socketpair_together);
	tcase_add_test(tc, the_queue_sends_at_once_while_the_socket_has_room);
	tcase_add_test(tc, a_full_socket_holds_messages_and_the_flush_sends_them_in_order);
	tcase_add_test(tc, the_queue_is_bounded);
	tcase_add_test(tc, a_replacing_message_takes_the_place_of_the_one_of_its_type_held);
	tcase_add_test(tc, held_fds_are_copies_delivered_after_the_sender_closed_its_own);
	tcase_add_test(tc, a_peer_of_version_1_gets_only_messages_without_payload);
	tcase_add_test(tc, a_peer_gone_drops_what_is_held_and_says_so);
	tcase_add_test(tc, test_upgrade_state_round_trip);
	tcase_add_test(tc, test_upgrade_state_rejects_garbage);
	tcase_add_test(tc, test_upgrade_encode_reports_overflow);
	suite_add_tcase(s, tc);
	int failed = h_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
