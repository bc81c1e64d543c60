/* test_file_cache: the open-file cache (src/proto/http/cache.c) and the
 * batched answers to pipelined requests, against the real drover binary.
 *
 * A cached hit gives the same bytes and headers as a lookup; with a long
 * file_cache_valid a hit really skips the lookup, with 0 there is no cache;
 * a file replaced by rename(), rewritten in place, deleted, made unreadable
 * or swapped for a symlink out of the root is noticed (polled until a
 * bounded deadline: file_cache_valid is a time, no event reports it);
 * traversal and dotfile rules hold on paths whose neighbours are cached.
 * Fifty pipelined requests in one write are answered in order, and many
 * to a client that does not read at first keep their order through
 * back-pressure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "TOPSECRET-OUTSIDE-THE-ROOT"

/* A file of size bytes of a pattern (so a body can be checked). */
static void www_big(struct h_site *s, const char *rel, size_t size)
{
	char *buf = malloc(size + 1);
	ck_assert(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)('a' + (i * 7 + i / 13) % 26);
	buf[size] = '\0';
	h_site_file(s, rel, buf);
	free(buf);
}

/* Start drover with one worker; http_extra / server_extra: more lines. */
static void site_start(struct h_site *s, const char *http_extra, const char *server_extra)
{
	h_site_init(s);
	char p[1024];
	h_path_join(p, sizeof p, s->tmp, "secret.txt");
	h_write_file(p, SECRET "\n");
	h_site_file(s, "a.txt", "version one\n");
	h_site_file(s, ".hidden", "dot " SECRET "\n");
	h_site_dir(s, "sub");
	h_site_file(s, "sub/index.html", "sub index\n");
	char server[1024], http[1024];
	snprintf(server, sizeof server, "shutdown_timeout = 10s\n%s", server_extra ? server_extra : "");
	snprintf(http, sizeof http, "mime_types = /etc/mime.types\naccess_log = off\n%s", http_extra ? http_extra : "");
	h_site_start(s, &(struct h_site_opts){ .server = server, .http = http });
}

/* GET path on a fresh connection. */
static void get(struct h_site *s, const char *path, struct h_response *r)
{
	char raw[1024];
	snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	ck_assert_msg(h_http_request(s->port, raw, r), "no response to GET %s", path);
}

/* GET path until its answer is status with body (NULL: any body), or the
 * bound passes; the test fails unless it does. Never a response carrying
 * SECRET. */
static void poll_until(struct h_site *s, const char *path, int status, const char *body)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		struct h_response r;
		get(s, path, &r);
		ck_assert_msg(!strstr(r.body, SECRET), "%s served a file it must not: %s", path, r.body);
		bool done = r.status == status && (!body || strcmp(r.body, body) == 0);
		int got = r.status;
		h_http_response_free(&r);
		if (done)
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "%s: still %d, want %d", path, got, status);
		h_pause_ms(50);
	}
}

static void expect(struct h_site *s, const char *path, int status, const char *body)
{
	struct h_response r;
	get(s, path, &r);
	ck_assert_msg(r.status == status, "%s: %d, want %d", path, r.status, status);
	if (body)
		ck_assert_msg(strcmp(r.body, body) == 0, "%s: body \"%s\", want \"%s\"", path, r.body, body);
	ck_assert(!strstr(r.body, SECRET));
	h_http_response_free(&r);
}

/* Replace path's content atomically: write a temp file, rename() it over. */
static void replace_by_rename(struct h_site *s, const char *rel, const char *content)
{
	char tmp[1024], dst[1024];
	h_path_join(tmp, sizeof tmp, s->www, "tmp.new");
	h_path_join(dst, sizeof dst, s->www, rel);
	h_write_file(tmp, content);
	ck_assert(rename(tmp, dst) == 0);
}

/* Rewrite in place: same inode, same length. */
static void rewrite_in_place(struct h_site *s, const char *rel, const char *content)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	ck_assert(fd >= 0);
	ck_assert(pwrite(fd, content, strlen(content), 0) == (ssize_t)strlen(content));
	close(fd);
}

/* ------------------------------------------------------------ hits */

START_TEST(a_hit_answers_like_a_lookup)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 1h\n", NULL);
	www_big(&s, "big.txt", 100000); /* over file_cache_max_file: sent from an fd */
	char want_big[100001];
	for (size_t i = 0; i < 100000; i++)
		want_big[i] = (char)('a' + (i * 7 + i / 13) % 26);
	want_big[100000] = '\0';
	struct h_response r1, r2;
	get(&s, "/a.txt", &r1); /* the miss that fills */
	get(&s, "/a.txt", &r2); /* the hit */
	ck_assert_int_eq(r1.status, 200);
	ck_assert_int_eq(r2.status, 200);
	ck_assert_str_eq(r2.body, "version one\n");
	const char *names[] = { "Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges" };
	char etag[300] = "";
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char v1[256], v2[256];
		ck_assert_msg(h_http_header(&r1, names[i], v1, sizeof v1), "no %s", names[i]);
		ck_assert_msg(h_http_header(&r2, names[i], v2, sizeof v2), "no %s on a hit", names[i]);
		ck_assert_str_eq(v1, v2);
		if (i == 2)
			snprintf(etag, sizeof etag, "%s", v2);
	}
	char ctype[256];
	ck_assert(h_http_header(&r2, "Content-Type", ctype, sizeof ctype));
	ck_assert_msg(strncmp(ctype, "text/plain", 10) == 0, "Content-Type %s", ctype);
	h_http_response_free(&r1);
	h_http_response_free(&r2);

	/* The hit's validators are the ones conditional requests compare. */
	char raw[512];
	snprintf(raw, sizeof raw, "GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\nConnection: close\r\n\r\n",
		 etag);
	ck_assert(h_http_request(s.port, raw, &r1));
	ck_assert_int_eq(r1.status, 304);
	h_http_response_free(&r1);
	/* Range is not the cache's: still 206. */
	ck_assert(h_http_request(s.port, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-6\r\nConnection: close\r\n\r\n",
				 &r1));
	ck_assert_int_eq(r1.status, 206);
	ck_assert_str_eq(r1.body, "version");
	h_http_response_free(&r1);
	/* HEAD on a hit: the headers, no body. */
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	const char head[] = "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
	h_write_all(fd, head, sizeof head - 1);
	ck_assert(h_http_read_response(fd, &r1, true));
	ck_assert_int_eq(r1.status, 200);
	char len[32];
	ck_assert(h_http_header(&r1, "Content-Length", len, sizeof len));
	ck_assert_str_eq(len, "12");
	h_http_response_free(&r1);
	ck_assert(h_http_read_response(fd, &r1, false)); /* and the next response follows it directly */
	ck_assert_str_eq(r1.body, "version one\n");
	h_http_response_free(&r1);
	close(fd);

	/* A large file, twice (the second from the cached fd). */
	for (int i = 0; i < 2; i++) {
		get(&s, "/big.txt", &r1);
		ck_assert_int_eq(r1.status, 200);
		ck_assert_uint_eq(r1.body_len, 100000);
		ck_assert(memcmp(r1.body, want_big, 100000) == 0);
		h_http_response_free(&r1);
	}
	/* A directory's index through the cache. */
	expect(&s, "/sub/", 200, "sub index\n");
	expect(&s, "/sub/", 200, "sub index\n");
	h_site_stop(&s);
}
END_TEST

START_TEST(a_long_validity_really_caches_and_zero_turns_it_off)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 1h\n", NULL);
	expect(&s, "/a.txt", 200, "version one\n");
	replace_by_rename(&s, "a.txt", "version two\n");
	/* Within the hour the cached file is still answered: proof of a hit. */
	expect(&s, "/a.txt", 200, "version one\n");
	h_site_stop(&s);

	site_start(&s, "file_cache_valid = 0\n", NULL);
	expect(&s, "/a.txt", 200, "version one\n");
	replace_by_rename(&s, "a.txt", "version two\n");
	expect(&s, "/a.txt", 200, "version two\n");
	rewrite_in_place(&s, "a.txt", "version 333\n");
	expect(&s, "/a.txt", 200, "version 333\n");
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ invalidation */

/* Start with a short file_cache_valid, cache /a.txt (a miss, then a hit),
 * change it, and poll until the answer is status with body. */
static void change_is_noticed(void (*change)(struct h_site *), const char *server_extra, int status,
			      const char *body)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 300ms\n", server_extra);
	expect(&s, "/a.txt", 200, "version one\n");
	expect(&s, "/a.txt", 200, "version one\n");
	change(&s);
	poll_until(&s, "/a.txt", status, body);
	h_site_stop(&s);
}

static void change_rename(struct h_site *s)
{
	replace_by_rename(s, "a.txt", "version two, longer\n");
}

static void change_rewrite(struct h_site *s)
{
	rewrite_in_place(s, "a.txt", "VERSION TWO\n"); /* same inode, same size */
}

static void change_unlink(struct h_site *s)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, "a.txt");
	ck_assert(unlink(p) == 0);
}

static void change_chmod(struct h_site *s)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, "a.txt");
	ck_assert(chmod(p, 0600) == 0); /* root's only */
}

START_TEST(a_file_replaced_by_rename_is_noticed)
{
	change_is_noticed(change_rename, NULL, 200, "version two, longer\n");
}
END_TEST

START_TEST(a_file_rewritten_in_place_is_noticed)
{
	change_is_noticed(change_rewrite, NULL, 200, "VERSION TWO\n");
}
END_TEST

START_TEST(a_deleted_file_is_noticed)
{
	change_is_noticed(change_unlink, NULL, 404, NULL);
}
END_TEST

START_TEST(a_file_made_unreadable_is_noticed)
{
	if (geteuid() != 0 || !getpwnam("nobody") || !getgrnam("nogroup"))
		return; /* root reads every file: the worker must run as another user */
	change_is_noticed(change_chmod, "user = nobody\ngroup = nogroup\n", 403, NULL);
}
END_TEST

START_TEST(a_cached_file_swapped_for_a_symlink_out_of_the_root_is_refused)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 300ms\n", NULL);
	expect(&s, "/a.txt", 200, "version one\n");
	expect(&s, "/a.txt", 200, "version one\n");
	char link[1024], tmp[1024];
	h_path_join(link, sizeof link, s.www, "a.txt");
	h_path_join(tmp, sizeof tmp, s.www, "a.lnk");
	ck_assert(symlink("../secret.txt", tmp) == 0);
	ck_assert(rename(tmp, link) == 0);
	/* Answered as a link out of the root is without the cache (404 or
	 * 403), and never with the secret (poll_until checks every body). */
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		struct h_response r;
		get(&s, "/a.txt", &r);
		ck_assert(!strstr(r.body, SECRET));
		int st = r.status;
		h_http_response_free(&r);
		if (st == 404 || st == 403)
			break;
		ck_assert_msg(st == 200 && h_left_ms(deadline) > 0, "status %d", st);
		h_pause_ms(50);
	}
	/* And it stays refused on every later request (nothing refused is cached). */
	for (int i = 0; i < 5; i++) {
		struct h_response r;
		get(&s, "/a.txt", &r);
		ck_assert(r.status == 404 || r.status == 403);
		h_http_response_free(&r);
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(traversal_and_dotfiles_are_refused_next_to_cached_files)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 1h\n", NULL);
	char p[1024];
	h_path_join(p, sizeof p, s.www, "inside.lnk");
	ck_assert(symlink("a.txt", p) == 0);
	h_path_join(p, sizeof p, s.www, "outside.lnk");
	ck_assert(symlink("../secret.txt", p) == 0);
	for (int round = 0; round < 3; round++) {
		expect(&s, "/a.txt", 200, "version one\n");
		expect(&s, "/sub/../a.txt", 200, "version one\n"); /* the same normalised key */
		expect(&s, "/./a.txt", 200, "version one\n");
		expect(&s, "/inside.lnk", 200, "version one\n");
		struct h_response r;
		get(&s, "/outside.lnk", &r);
		ck_assert_msg(r.status == 404 || r.status == 403, "outside link: %d", r.status);
		h_http_response_free(&r);
		expect(&s, "/.hidden", 404, NULL);
		expect(&s, "/../secret.txt", 400, NULL);
		expect(&s, "/%2e%2e/secret.txt", 400, NULL);
		expect(&s, "/sub/..%2f..%2fsecret.txt", 400, NULL);
	}
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ pipelining */

START_TEST(fifty_pipelined_requests_in_one_write_are_answered_in_order)
{
	struct h_site s;
	site_start(&s, NULL, NULL);
	char p[1024];
	h_path_join(p, sizeof p, s.www, "p");
	ck_assert(mkdir(p, 0755) == 0);
	char *all = malloc(50 * 128);
	ck_assert(all);
	size_t len = 0;
	for (int i = 0; i < 50; i++) {
		char name[64], body[1200];
		snprintf(name, sizeof name, "p/%d.txt", i);
		/* Sizes from 30 to ~1 KB: several responses fill the output buffer. */
		int n = snprintf(body, sizeof body, "pipelined %d ", i);
		for (int k = 0; k < i * 20; k++)
			body[n++] = (char)('a' + (i + k) % 26);
		body[n++] = '\n';
		body[n] = '\0';
		h_site_file(&s, name, body);
		len += (size_t)snprintf(all + len, 50 * 128 - len, "GET /p/%d.txt HTTP/1.1\r\nHost: x\r\n\r\n", i);
	}
	for (int pass = 0; pass < 2; pass++) { /* misses, then hits */
		int fd = h_connect_tcp(s.port);
		ck_assert(fd >= 0);
		h_write_all(fd, all, len);
		for (int i = 0; i < 50; i++) {
			struct h_response r;
			ck_assert_msg(h_http_read_response(fd, &r, false), "response %d missing", i);
			ck_assert_int_eq(r.status, 200);
			char want[64];
			int n = snprintf(want, sizeof want, "pipelined %d ", i);
			ck_assert_msg(strncmp(r.body, want, (size_t)n) == 0, "response %d is \"%.20s\"", i, r.body);
			ck_assert_uint_eq(r.body_len, (size_t)n + (size_t)i * 20 + 1);
			h_http_response_free(&r);
		}
		close(fd);
	}
	free(all);
	h_site_stop(&s);
}
END_TEST

/* Many pipelined requests to a client that reads nothing until all are
 * sent: the batched answers fill the socket, the server stops (back-
 * pressure: its output and input buffers are bounded) and goes on as the
 * client reads; every answer arrives, in order. */
START_TEST(batched_answers_keep_order_under_back_pressure)
{
	struct h_site s;
	site_start(&s, "keepalive_requests = 100000\n", NULL);
	static char body[12002]; /* cached, and two fit in one batch */
	for (int i = 0; i < 12000; i++)
		body[i] = (char)('A' + i % 26);
	body[12000] = '\n';
	body[12001] = '\0';
	h_site_file(&s, "k.txt", body);
	enum { N = 600 };
	char *all = malloc(N * 64);
	ck_assert(all);
	size_t len = 0;
	for (int i = 0; i < N; i++) /* every 50th is a miss: a different answer */
		len += (size_t)snprintf(all + len, N * 64 - len, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
					i % 50 == 49 ? "/none" : "/k.txt");
	/* A small receive buffer: the answers cannot all fit in the socket. */
	int fd = h_connect_tcp_rcvbuf(s.port, 4096);
	ck_assert(fd >= 0);
	/* ~20 kB of requests, ~7 MB of answers: more than the socket
	 * buffers hold, so the server blocks mid-batch. */
	h_write_all(fd, all, len);
	for (int i = 0; i < N; i++) {
		struct h_response r;
		ck_assert_msg(h_http_read_response(fd, &r, false), "response %d missing", i);
		if (i % 50 == 49) {
			ck_assert_int_eq(r.status, 404);
		} else {
			ck_assert_int_eq(r.status, 200);
			ck_assert_str_eq(r.body, body);
		}
		h_http_response_free(&r);
	}
	close(fd);
	free(all);
	h_site_stop(&s);
}
END_TEST

/* Big cached files are sent from the entry's own fd, pinned by each
 * download. Downloads that stall while their entry is replaced (the file
 * renamed over) and evicted (file_cache_entries = 1) finish byte for byte
 * with the old file; new requests get the new one; the old fd is closed
 * with the last of them (under ASan: no use after free). */
START_TEST(downloads_from_a_pinned_entry_finish_after_it_is_replaced_and_evicted)
{
	struct h_site s;
	site_start(&s, "file_cache_valid = 10s\nfile_cache_entries = 1\n", NULL);
	enum { BIG = 4 << 20 };
	www_big(&s, "big.bin", BIG);
	char *old = malloc(BIG), *got = malloc(BIG);
	ck_assert(old && got);
	char p[1024];
	h_path_join(p, sizeof p, s.www, "big.bin");
	size_t len;
	char *f = h_slurp(p, &len);
	ck_assert(f && len == BIG);
	memcpy(old, f, BIG);
	free(f);
	/* Two downloads of the same entry, each stalled after its head and a
	 * little body: the socket buffers are full, the rest is in flight. */
	int fd[2];
	struct h_response r;
	for (int i = 0; i < 2; i++) {
		fd[i] = h_connect_tcp_rcvbuf(s.port, 4096);
		ck_assert(fd[i] >= 0);
		const char *req = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
		h_write_all(fd[i], req, strlen(req));
		ck_assert(h_http_read_response(fd[i], &r, true));
		ck_assert_int_eq(r.status, 200);
		h_http_response_free(&r);
	}
	/* Replaced: the next lookup (valid for 10s, so force it with another
	 * file first: entries = 1 evicts big.bin) builds a new entry. */
	char *next = malloc(BIG + 1);
	ck_assert(next);
	memset(next, 'N', BIG);
	next[BIG] = '\0';
	replace_by_rename(&s, "big.bin", next);
	expect(&s, "/a.txt", 200, "version one\n");     /* evicts the pinned entry */
	get(&s, "/big.bin", &r);                          /* a new entry, new content */
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, BIG);
	ck_assert(memcmp(r.body, next, BIG) == 0);
	h_http_response_free(&r);
	expect(&s, "/a.txt", 200, "version one\n");     /* and evicts that one too */
	/* The stalled downloads still send the old file, to its last byte. */
	for (int i = 0; i < 2; i++) {
		ck_assert(h_read_exact(fd[i], got, BIG));
		ck_assert_msg(memcmp(got, old, BIG) == 0, "download %d changed under its feet", i);
		close(fd[i]);
	}
	expect(&s, "/a.txt", 200, "version one\n"); /* the worker is fine */
	free(next);
	free(old);
	free(got);
	h_site_stop(&s);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *su = suite_create("http_cache");
	TCase *tc = tcase_create("cache");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_hit_answers_like_a_lookup);
	tcase_add_test(tc, a_long_validity_really_caches_and_zero_turns_it_off);
	tcase_add_test(tc, a_file_replaced_by_rename_is_noticed);
	tcase_add_test(tc, a_file_rewritten_in_place_is_noticed);
	tcase_add_test(tc, a_deleted_file_is_noticed);
	tcase_add_test(tc, a_file_made_unreadable_is_noticed);
	tcase_add_test(tc, a_cached_file_swapped_for_a_symlink_out_of_the_root_is_refused);
	tcase_add_test(tc, traversal_and_dotfiles_are_refused_next_to_cached_files);
	tcase_add_test(tc, fifty_pipelined_requests_in_one_write_are_answered_in_order);
	tcase_add_test(tc, batched_answers_keep_order_under_back_pressure);
	tcase_add_test(tc, downloads_from_a_pinned_entry_finish_after_it_is_replaced_and_evicted);
	suite_add_tcase(su, tc);
	return su;
}

int main(void)
{
	int failed = h_run_suite(cache_suite());
	return failed ? 1 : 0;
}
