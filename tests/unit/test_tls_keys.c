/* Unit tests of tls_keys: the shared session ticket keys. Rotation keeps
 * exactly one previous key for opening tickets; a forked process sees the
 * supervisor's rotation through the mapping; a binary upgrade's new image
 * maps the same keys from the memfd; keys from a ticket_key_file replace
 * the generated ones and are never rotated; the file's format is checked. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/tls_keys.h"

static int keys_fd = -1;

static void setup(void)
{
	/* Each test runs in its own process (Check forks): fresh keys. */
	ck_assert_int_eq(tls_keys_create(&keys_fd), 0);
}

START_TEST(rotation_keeps_one_previous_key)
{
	struct tls_ticket_key k1, k2, k3, got;
	ck_assert(tls_keys_current(&k1));
	ck_assert_int_eq(tls_keys_find(k1.name, &got), 1);
	ck_assert_mem_eq(got.aes, k1.aes, sizeof(k1.aes));
	/* The first tick starts the schedule; nothing rotates before the
	 * period, or ever without one. */
	ck_assert(!tls_keys_tick(10000, 5000));
	ck_assert(!tls_keys_tick(14999, 5000));
	ck_assert(!tls_keys_tick(UINT64_C(1) << 40, 0));
	ck_assert(tls_keys_current(&got));
	ck_assert_mem_eq(got.name, k1.name, sizeof(k1.name));
	/* A period later: a new key seals, the old one still opens (and asks
	 * for a fresh ticket: 2). */
	ck_assert(tls_keys_tick(15000, 5000));
	ck_assert(tls_keys_current(&k2));
	ck_assert(memcmp(k2.name, k1.name, sizeof(k1.name)) != 0);
	ck_assert_int_eq(tls_keys_find(k2.name, &got), 1);
	ck_assert_int_eq(tls_keys_find(k1.name, &got), 2);
	ck_assert_mem_eq(got.hmac, k1.hmac, sizeof(k1.hmac));
	/* Another period: the first key is retired (a full handshake). */
	ck_assert(!tls_keys_tick(19999, 5000));
	ck_assert(tls_keys_tick(20000, 5000));
	ck_assert(tls_keys_current(&k3));
	ck_assert_int_eq(tls_keys_find(k3.name, &got), 1);
	ck_assert_int_eq(tls_keys_find(k2.name, &got), 2);
	ck_assert_int_eq(tls_keys_find(k1.name, &got), 0);
}
END_TEST

START_TEST(a_forked_worker_sees_the_rotation_and_a_new_image_maps_the_same_keys)
{
	struct tls_ticket_key before, after;
	ck_assert(tls_keys_current(&before));
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The worker: waits for the supervisor's rotation, then reports
		 * the key it would seal with now. */
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		struct tls_ticket_key k;
		_exit(tls_keys_current(&k) && write(done[1], &k, sizeof(k)) == (ssize_t)sizeof(k) ? 0 : 3);
	}
	ck_assert(!tls_keys_tick(1, 1)); /* starts the schedule */
	ck_assert(tls_keys_tick(2, 1));
	ck_assert(tls_keys_current(&after));
	ck_assert(memcmp(after.name, before.name, sizeof(before.name)) != 0);
	ck_assert_int_eq(write(go[1], "x", 1), 1);
	struct tls_ticket_key seen;
	ck_assert_int_eq(read(done[0], &seen, sizeof(seen)), (ssize_t)sizeof(seen));
	ck_assert_mem_eq(seen.name, after.name, sizeof(after.name));
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* An upgrade: the memfd crosses execve and is mapped again. */
	int copy = dup(tls_keys_fd());
	ck_assert_int_ge(copy, 0);
	ck_assert_int_eq(tls_keys_attach(copy), 0);
	struct tls_ticket_key again;
	ck_assert(tls_keys_current(&again));
	ck_assert_mem_eq(again.name, after.name, sizeof(after.name));
	ck_assert_int_eq(tls_keys_find(before.name, &again), 2);
	/* Something else handed over is refused. */
	int bogus = memfd_create("bogus", MFD_CLOEXEC);
	ck_assert_int_ge(bogus, 0);
	ck_assert_int_eq(tls_keys_attach(bogus), -EPROTO);
	ck_assert_int_eq(ftruncate(bogus, 4096), 0);
	ck_assert_int_eq(tls_keys_attach(bogus), -EPROTO);
	close(bogus);
	ck_assert_int_eq(tls_keys_fd(), copy);
	keys_fd = copy;
}
END_TEST

static char *write_file(const void *data, size_t len)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/drover-test-keys-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(keys_from_a_file_replace_generated_ones_and_do_not_rotate)
{
	unsigned char raw[3 * TLS_TICKET_KEY_LEN];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7 + 3);
	char *path = write_file(raw, sizeof(raw));
	struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
	size_t n = 0;
	char why[256] = "";
	ck_assert_int_eq(tls_keys_read_file(path, keys, &n, why, sizeof(why)), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(keys[1].name, raw + TLS_TICKET_KEY_LEN, 16);
	ck_assert_mem_eq(keys[1].hmac, raw + TLS_TICKET_KEY_LEN + 16, 32);
	ck_assert_mem_eq(keys[1].aes, raw + TLS_TICKET_KEY_LEN + 48, 32);
	unlink(path);

	struct tls_ticket_key generated, got;
	ck_assert(tls_keys_current(&generated));
	tls_keys_set(keys, n, 5000);
	ck_assert(tls_keys_current(&got));
	ck_assert_mem_eq(got.name, keys[0].name, 16); /* the first seals */
	ck_assert_int_eq(tls_keys_find(keys[2].name, &got), 2); /* all open */
	ck_assert_int_eq(tls_keys_find(generated.name, &got), 0);
	ck_assert(!tls_keys_tick(UINT64_C(1) << 50, 1)); /* the operator rotates them */
	/* Back to generated keys (a reload without the file): fresh ones. */
	tls_keys_set(NULL, 0, 6000);
	ck_assert(tls_keys_current(&got));
	ck_assert(memcmp(got.name, keys[0].name, 16) != 0);
	ck_assert(memcmp(got.name, generated.name, 16) != 0);
	ck_assert_int_eq(tls_keys_find(keys[0].name, &got), 0);
}
END_TEST

START_TEST(a_key_file_of_the_wrong_size_or_missing_is_refused_with_why)
{
	struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
	size_t n = 0;
	char why[256];
	unsigned char raw[TLS_TICKET_KEY_LEN * (TLS_TICKET_KEYS_MAX + 1)];
	memset(raw, 1, sizeof(raw));
	char *path = write_file(raw, 48); /* nginx's short key format */
	ck_assert_int_eq(tls_keys_read_file(path, keys, &n, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "keys of 80 bytes each"));
	ck_assert_ptr_nonnull(strstr(why, "got 48 bytes"));
	unlink(path);
	path = write_file(raw, 0);
	ck_assert_int_eq(tls_keys_read_file(path, keys, &n, why, sizeof(why)), -EINVAL);
	unlink(path);
	path = write_file(raw, sizeof(raw)); /* 17 keys: one too many */
	ck_assert_int_eq(tls_keys_read_file(path, keys, &n, why, sizeof(why)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "or more bytes"));
	unlink(path);
	ck_assert_int_eq(tls_keys_read_file("/nonexistent/ticket.key", keys, &n, why, sizeof(why)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(why, "cannot read /nonexistent/ticket.key: No such file or directory"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tls_keys");
	TCase *t = tcase_create("keys");
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_add_test(t, rotation_keeps_one_previous_key);
	tcase_add_test(t, a_forked_worker_sees_the_rotation_and_a_new_image_maps_the_same_keys);
	tcase_add_test(t, keys_from_a_file_replace_generated_ones_and_do_not_rotate);
	tcase_add_test(t, a_key_file_of_the_wrong_size_or_missing_is_refused_with_why);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
