/* test_semantics: what careful clients and real deployments rely on,
 * against the real drover binary over real sockets:
 * preconditions in the order of RFC 9110 §13.2.2 with 412, Last-Modified
 * never later than Date, a document root swapped by a symlink (or deleted
 * and created again) followed without a reload, repeated conditional
 * fields, multiple ranges as multipart/byteranges, HTTP/1.2 answered as
 * HTTP/1.1, [http] charset, and directory listings that say when they are
 * cut. Each test starts its own drover with one worker and a socket-
 * activated TCP listener; waits are on responses, and the one wait on a
 * deploy is bounded only to turn a hang into a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"

struct site {
	struct h_drover *d;
	char *tmp;
	char www[512]; /* the root as configured (a directory or a symlink) */
	int port;
};

/* ------------------------------------------------------------ fixtures */

static void put(const char *dir, const char *rel, const char *content)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	h_write_file(p, content);
}

/* Set the modification time of dir/rel. */
static void set_mtime(const char *dir, const char *rel, time_t t)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	ck_assert_msg(utimensat(AT_FDCWD, p, ts, 0) == 0, "utimensat %s: %s", p, strerror(errno));
}

/* Start drover on root (NULL: tmp/www, created with a few files) with more
 * [http] lines. */
static void site_start(struct site *s, const char *root, const char *http_extra)
{
	memset(s, 0, sizeof *s);
	s->tmp = h_tmpdir();
	if (root) {
		snprintf(s->www, sizeof s->www, "%s", root);
	} else {
		snprintf(s->www, sizeof s->www, "%s/www", s->tmp);
		ck_assert(mkdir(s->www, 0755) == 0);
		put(s->www, "index.html", "<p>home</p>\n");
		put(s->www, "range.txt", "0123456789abcdefghij");
		put(s->www, "empty.txt", "");
		put(s->www, "logo.png", "\x89PNG\n");
	}
	int fd = h_listen_tcp(&s->port);
	struct h_activation act[1] = { { "web", fd } };
	char cfg[2048];
	int n = snprintf(cfg, sizeof cfg,
			 "[server]\nworkers = 1\nshutdown_timeout = 10s\n\n"
			 "[listener web]\nprotocol = http\n\n"
			 "[http]\nroot = %s\nmime_types = /etc/mime.types\n%s\n",
			 s->www, http_extra ? http_extra : "");
	ck_assert(n > 0 && (size_t)n < sizeof cfg);
	struct h_opts o = { .notify = true, .fds = act, .n_fds = 1 };
	s->d = h_drover_start(cfg, &o);
}

static void site_stop(struct site *s)
{
	h_drover_free(s->d);
	h_rm_rf(s->tmp);
	free(s->tmp);
}

/* ------------------------------------------------------------ requests */

/* GET (or HEAD, by method) path with more header lines; one connection. */
static void req(struct site *s, const char *method, const char *path, const char *extra,
		struct h_response *r)
{
	char raw[4096];
	int n = snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n", method, path,
			 extra ? extra : "");
	ck_assert(n > 0 && (size_t)n < sizeof raw);
	if (strcmp(method, "HEAD") == 0) {
		int fd = h_connect_tcp(s->port);
		ck_assert(fd >= 0);
		h_write_all(fd, raw, (size_t)n);
		ck_assert(h_http_read_response(fd, r, true));
		close(fd);
		return;
	}
	ck_assert_msg(h_http_request(s->port, raw, r), "no response to %s %s", method, path);
}

static int status_of(struct site *s, const char *path, const char *extra)
{
	struct h_response r;
	req(s, "GET", path, extra, &r);
	int st = r.status;
	h_http_response_free(&r);
	return st;
}

static char *hdr(const struct h_response *r, const char *name)
{
	static char v[4][1024];
	static int i;
	char *out = v[i++ & 3];
	return h_http_header(r, name, out, sizeof v[0]) ? out : NULL;
}

/* The ETag and Last-Modified of path. */
static void validators(struct site *s, const char *path, char *etag, char *lastmod)
{
	struct h_response r;
	req(s, "GET", path, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(etag, 128, "%s", hdr(&r, "ETag"));
	snprintf(lastmod, 64, "%s", hdr(&r, "Last-Modified"));
	h_http_response_free(&r);
}

static time_t parse_date(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	ck_assert_msg(end && *end == '\0', "not an IMF-fixdate: %s", s);
	return timegm(&tm);
}

/* ------------------------------------------------------------ 1. preconditions */

START_TEST(if_match_and_if_unmodified_since_fail_with_412_in_rfc_order)
{
	struct site s;
	site_start(&s, NULL, NULL);
	set_mtime(s.www, "range.txt", 1577836800); /* 2020-01-01 */
	char etag[128], lm[64], extra[512];
	validators(&s, "/range.txt", etag, lm);

	/* If-Match: no match (strong and weak forms) is 412, with or without Range. */
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Match: \"nope\"\r\n"), 412);
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Match: W/\"nope\"\r\n"), 412);
	snprintf(extra, sizeof extra, "If-Match: W/%s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 412); /* strong comparison */
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Match: \"nope\"\r\nRange: bytes=0-1\r\n"), 412);
	/* Matching, and "*" for any existing file. */
	snprintf(extra, sizeof extra, "If-Match: \"x\", %s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Match: *\r\n"), 200);

	/* If-Unmodified-Since older than the file: 412; not older: 200. */
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Unmodified-Since: Tue, 31 Dec 2019 23:59:59 GMT\r\n"),
			 412);
	snprintf(extra, sizeof extra, "If-Unmodified-Since: %s\r\n", lm);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	ck_assert_int_eq(status_of(&s, "/range.txt",
				   "If-Unmodified-Since: Tue, 31 Dec 2019 23:59:59 GMT\r\nRange: bytes=0-1\r\n"),
			 412);
	/* Garbage is ignored, as the RFC says. */
	ck_assert_int_eq(status_of(&s, "/range.txt", "If-Unmodified-Since: yesterday\r\n"), 200);

	/* The order of §13.2.2: If-Match decides before If-Unmodified-Since
	 * (which is then not evaluated) and before If-None-Match. */
	snprintf(extra, sizeof extra, "If-Match: %s\r\nIf-Unmodified-Since: Tue, 31 Dec 2019 23:59:59 GMT\r\n",
		 etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	snprintf(extra, sizeof extra, "If-Match: \"nope\"\r\nIf-None-Match: %s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 412);
	snprintf(extra, sizeof extra, "If-Match: %s\r\nIf-None-Match: %s\r\n", etag, etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 304);
	/* If-None-Match wins over If-Modified-Since. */
	snprintf(extra, sizeof extra, "If-None-Match: \"other\"\r\nIf-Modified-Since: %s\r\n", lm);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	/* A 412 is a 412 for HEAD too. */
	struct h_response r;
	req(&s, "HEAD", "/range.txt", "If-Match: \"nope\"\r\n", &r);
	ck_assert_int_eq(r.status, 412);
	h_http_response_free(&r);
	site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ 2. Last-Modified <= Date */

START_TEST(future_mtime_is_sent_as_date_and_a_rewrite_is_seen)
{
	struct site s;
	site_start(&s, NULL, NULL);
	set_mtime(s.www, "range.txt", 4102444800); /* 2100-01-01 */
	struct h_response r;
	req(&s, "GET", "/range.txt", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	char lm[64], date[64], etag[128];
	snprintf(lm, sizeof lm, "%s", hdr(&r, "Last-Modified"));
	snprintf(date, sizeof date, "%s", hdr(&r, "Date"));
	snprintf(etag, sizeof etag, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	ck_assert_msg(parse_date(lm) <= parse_date(date), "Last-Modified %s after Date %s", lm, date);
	ck_assert_msg(parse_date(lm) < 4102444800, "Last-Modified: %s", lm);

	/* The file is rewritten after that response's second. A revalidation
	 * with what the client was given must see the new file. */
	time_t t0 = parse_date(date);
	while (time(NULL) <= t0)
		h_pause_ms(20); /* the wall clock has no event to wait for */
	put(s.www, "range.txt", "rewritten");
	char extra[256];
	snprintf(extra, sizeof extra, "If-Modified-Since: %s\r\n", lm);
	req(&s, "GET", "/range.txt", extra, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "rewritten");
	h_http_response_free(&r);
	snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ 3. root swaps */

/* GET path until its body is want (a deploy is seen within
 * file_cache_valid; the bound only turns a hang into a failure). */
static void wait_body(struct site *s, const char *path, const char *want)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		struct h_response r;
		req(s, "GET", path, NULL, &r);
		bool ok = r.status == 200 && strcmp(r.body, want) == 0;
		h_http_response_free(&r);
		if (ok)
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "%s never became '%s'", path, want);
		h_pause_ms(50);
	}
}

static void mkdirs(const char *base, const char *rel)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/%s", base, rel);
	ck_assert_msg(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
}

START_TEST(root_symlink_swap_is_served_without_reload_and_in_flight_finishes)
{
	char *base = h_tmpdir();
	char rel41[600], rel42[600], cur[600], tmp[600], big[700];
	mkdirs(base, "releases");
	snprintf(rel41, sizeof rel41, "%s/releases/41", base);
	snprintf(rel42, sizeof rel42, "%s/releases/42", base);
	ck_assert(mkdir(rel41, 0755) == 0 && mkdir(rel42, 0755) == 0);
	put(rel41, "index.html", "41");
	put(rel42, "index.html", "42");
	put(base, "secret.txt", "SECRET");
	/* The new release tries to reach outside the root: still refused. */
	ck_assert(symlink("../../secret.txt", strcat(strcpy(big, rel42), "/leak")) == 0);
	/* A large file in 41, to be downloading while the deploy happens. */
	snprintf(big, sizeof big, "%s/big.bin", rel41);
	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	static char chunk[1 << 16];
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (char)('a' + i % 26);
	for (int i = 0; i < 128; i++) /* 8 MiB */
		ck_assert(write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk);
	close(fd);
	snprintf(cur, sizeof cur, "%s/current", base);
	ck_assert(symlink("releases/41", cur) == 0);

	struct site s;
	site_start(&s, cur, NULL);
	wait_body(&s, "/", "41");

	/* Start the download on a small receive buffer and read only its head. */
	int dl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int sz = 4096;
	ck_assert(setsockopt(dl, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz) == 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s.port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(connect(dl, (struct sockaddr *)&sa, sizeof sa) == 0);
	const char *get_big = "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	h_write_all(dl, get_big, strlen(get_big));
	char head[256];
	ck_assert(h_read_exact(dl, head, 12));
	ck_assert(memcmp(head, "HTTP/1.1 200", 12) == 0);

	/* The atomic deploy. */
	snprintf(tmp, sizeof tmp, "%s/current.tmp", base);
	ck_assert(symlink("releases/42", tmp) == 0);
	ck_assert(rename(tmp, cur) == 0);
	wait_body(&s, "/", "42");
	ck_assert_int_eq(status_of(&s, "/leak", NULL), 404);
	ck_assert_int_eq(status_of(&s, "/big.bin", NULL), 404);

	/* The download in flight finishes from the old tree, byte for byte. */
	static char rest[(8 << 20) + 4096];
	ssize_t got = h_read_all(dl, rest, sizeof rest);
	close(dl);
	ck_assert(got > 0);
	char *body = strstr(rest, "\r\n\r\n");
	ck_assert(body != NULL);
	body += 4;
	size_t body_len = (size_t)(rest + got - body);
	ck_assert_uint_eq(body_len, (size_t)8 << 20);
	for (size_t i = 0; i < body_len; i += 4093)
		ck_assert_int_eq(body[i], 'a' + (i % sizeof chunk) % 26);

	site_stop(&s);
	h_rm_rf(base);
	free(base);
}
END_TEST

START_TEST(root_deleted_and_recreated_is_served_without_reload)
{
	char *base = h_tmpdir();
	char root[600];
	snprintf(root, sizeof root, "%s/site", base);
	ck_assert(mkdir(root, 0755) == 0);
	put(root, "index.html", "old");
	struct site s;
	site_start(&s, root, NULL);
	wait_body(&s, "/", "old");
	h_rm_rf(root);
	ck_assert(mkdir(root, 0755) == 0);
	put(root, "index.html", "new");
	wait_body(&s, "/", "new");
	site_stop(&s);
	h_rm_rf(base);
	free(base);
}
END_TEST

/* ------------------------------------------------------------ 5. repeated fields */

START_TEST(repeated_conditional_fields_lists_combined_singletons_ignored)
{
	struct site s;
	site_start(&s, NULL, NULL);
	set_mtime(s.www, "range.txt", 1577836800);
	char etag[128], lm[64], extra[512];
	validators(&s, "/range.txt", etag, lm);

	/* If-None-Match is a list: the second line matches. */
	snprintf(extra, sizeof extra, "If-None-Match: \"a\"\r\nIf-None-Match: %s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 304);
	/* If-Match too: the second line matches, so no 412. */
	snprintf(extra, sizeof extra, "If-Match: \"a\"\r\nIf-Match: %s\r\n", etag);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	/* If-Modified-Since twice is invalid and ignored: 200, not the 304
	 * that either line alone would give. */
	snprintf(extra, sizeof extra, "If-Modified-Since: %s\r\nIf-Modified-Since: %s\r\n", lm, lm);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 200);
	snprintf(extra, sizeof extra, "If-Modified-Since: %s\r\n", lm);
	ck_assert_int_eq(status_of(&s, "/range.txt", extra), 304);
	/* If-Unmodified-Since twice: ignored, not a 412. */
	ck_assert_int_eq(status_of(&s, "/range.txt",
				   "If-Unmodified-Since: Tue, 31 Dec 2019 23:59:59 GMT\r\n"
				   "If-Unmodified-Since: Tue, 31 Dec 2019 23:59:59 GMT\r\n"),
			 200);
	/* If-Range twice: the condition is invalid, so the Range is ignored. */
	snprintf(extra, sizeof extra, "Range: bytes=0-1\r\nIf-Range: %s\r\nIf-Range: %s\r\n", etag, etag);
	struct h_response r;
	req(&s, "GET", "/range.txt", extra, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "0123456789abcdefghij");
	h_http_response_free(&r);
	site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ 6. ranges */

/* The multipart/byteranges body drover must send for parts of content
 * (RFC 9110 §14.6), given the boundary it chose. */
static size_t expected_multipart(const char *boundary, const char *ctype, const char *content,
				 size_t size, const size_t (*parts)[2], size_t n, char *out, size_t cap)
{
	size_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		pos += (size_t)snprintf(out + pos, cap - pos,
					"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %zu-%zu/%zu\r\n\r\n",
					boundary, ctype, parts[i][0], parts[i][1], size);
		memcpy(out + pos, content + parts[i][0], parts[i][1] - parts[i][0] + 1);
		pos += parts[i][1] - parts[i][0] + 1;
	}
	pos += (size_t)snprintf(out + pos, cap - pos, "\r\n--%s--\r\n", boundary);
	return pos;
}

/* GET with Range; check a multipart answer with these parts byte for byte. */
static void expect_multipart(struct site *s, const char *path, const char *extra, const char *content,
			     size_t size, const char *ctype, const size_t (*parts)[2], size_t n)
{
	struct h_response r;
	req(s, "GET", path, extra, &r);
	ck_assert_int_eq(r.status, 206);
	char *ct = hdr(&r, "Content-Type");
	ck_assert_msg(ct && strncmp(ct, "multipart/byteranges; boundary=", 31) == 0, "Content-Type: %s", ct);
	char boundary[128];
	snprintf(boundary, sizeof boundary, "%s", ct + 31);
	static char want[1 << 16];
	size_t len = expected_multipart(boundary, ctype, content, size, parts, n, want, sizeof want);
	ck_assert_uint_eq(r.body_len, len);
	ck_assert(memcmp(r.body, want, len) == 0);
	ck_assert_ptr_null(hdr(&r, "Content-Range"));
	h_http_response_free(&r);
}

START_TEST(multiple_ranges_are_multipart_byteranges)
{
	struct site s;
	site_start(&s, NULL, "max_ranges = 4");
	static const char content[] = "0123456789abcdefghij";
	static const size_t two[][2] = { { 0, 1 }, { 5, 6 } };
	expect_multipart(&s, "/range.txt", "Range: bytes=0-1,5-6\r\n", content, 20, "text/plain", two, 2);
	/* Sorted, and overlapping or adjacent ranges merged. */
	static const size_t merged[][2] = { { 0, 3 }, { 10, 19 } };
	expect_multipart(&s, "/range.txt", "Range: bytes=10-,2-3,0-2,15-16\r\n", content, 20, "text/plain",
			 merged, 2);
	/* Merged into one: a plain 206. */
	struct h_response r;
	req(&s, "GET", "/range.txt", "Range: bytes=0-4,3-7\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(hdr(&r, "Content-Range"), "bytes 0-7/20");
	ck_assert_str_eq(r.body, "01234567");
	h_http_response_free(&r);
	/* More than max_ranges, or more bytes than the file: the whole file. */
	req(&s, "GET", "/range.txt", "Range: bytes=0-0,2-2,4-4,6-6,8-8\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, content);
	h_http_response_free(&r);
	req(&s, "GET", "/range.txt", "Range: bytes=0-19,0-19\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	/* If-Range that does not match: the whole file; that matches: parts. */
	req(&s, "GET", "/range.txt", "Range: bytes=0-1,5-6\r\nIf-Range: \"other\"\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, content);
	h_http_response_free(&r);
	char etag[128], lm[64], extra[512];
	validators(&s, "/range.txt", etag, lm);
	snprintf(extra, sizeof extra, "Range: bytes=0-1,5-6\r\nIf-Range: %s\r\n", etag);
	expect_multipart(&s, "/range.txt", extra, content, 20, "text/plain", two, 2);
	/* HEAD ignores Range as for one range (RFC 9110 §14.2): the 200 head. */
	req(&s, "HEAD", "/range.txt", "Range: bytes=0-1,5-6\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(hdr(&r, "Content-Length"), "20");
	h_http_response_free(&r);
	/* None satisfiable: 416. */
	req(&s, "GET", "/range.txt", "Range: bytes=30-40,50-\r\n", &r);
	ck_assert_int_eq(r.status, 416);
	ck_assert_str_eq(hdr(&r, "Content-Range"), "bytes */20");
	h_http_response_free(&r);
	site_stop(&s);
}
END_TEST

START_TEST(multiple_ranges_of_a_large_file_by_sendfile)
{
	struct site s;
	site_start(&s, NULL, NULL);
	static char content[1 << 20];
	for (size_t i = 0; i < sizeof content; i++)
		content[i] = (char)('A' + (i * 7) % 26);
	char p[700];
	snprintf(p, sizeof p, "%s/big.dat", s.www);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	ck_assert(write(fd, content, sizeof content) == (ssize_t)sizeof content);
	close(fd);
	static const size_t parts[][2] = { { 0, 1 }, { 500000, 520000 }, { 1048571, 1048575 } };
	expect_multipart(&s, "/big.dat", "Range: bytes=0-1,500000-520000,-5\r\n", content, sizeof content,
			 "application/octet-stream", parts, 3);
	site_stop(&s);
}
END_TEST

START_TEST(curl_parses_multiple_ranges_back_byte_for_byte)
{
	if (h_run("command -v curl >/dev/null", NULL, 0) != 0)
		return; /* curl is in .ci/deps; without it the raw-socket tests above still run */
	struct site s;
	site_start(&s, NULL, NULL);
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof cmd, "curl -sS -r 0-1,5-6 -D %s/h.txt -o %s/b.bin http://127.0.0.1:%d/range.txt",
		 s.tmp, s.tmp, s.port);
	ck_assert_int_eq(h_run(cmd, out, sizeof out), 0);
	char path[700];
	snprintf(path, sizeof path, "%s/h.txt", s.tmp);
	char *head = h_slurp(path, NULL);
	ck_assert(head && strstr(head, "HTTP/1.1 206 Partial Content"));
	char *b = strstr(head, "boundary=");
	ck_assert(b);
	char boundary[64];
	ck_assert(sscanf(b + 9, "%63[0-9a-f]", boundary) == 1);
	snprintf(path, sizeof path, "%s/b.bin", s.tmp);
	size_t len;
	char *body = h_slurp(path, &len);
	char want[1024];
	static const size_t two[][2] = { { 0, 1 }, { 5, 6 } };
	size_t wlen = expected_multipart(boundary, "text/plain", "0123456789abcdefghij", 20, two, 2, want,
					 sizeof want);
	ck_assert_uint_eq(len, wlen);
	ck_assert(memcmp(body, want, wlen) == 0);
	free(head);
	free(body);
	site_stop(&s);
}
END_TEST

START_TEST(suffix_range_of_an_empty_file_is_200)
{
	struct site s;
	site_start(&s, NULL, NULL);
	struct h_response r;
	req(&s, "GET", "/empty.txt", "Range: bytes=-5\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(hdr(&r, "Content-Length"), "0");
	h_http_response_free(&r);
	/* A first-pos at or past the end is still unsatisfiable. */
	ck_assert_int_eq(status_of(&s, "/empty.txt", "Range: bytes=0-\r\n"), 416);
	site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ 7. versions */

START_TEST(http_1_2_is_answered_as_1_1_and_2_0_is_505)
{
	struct site s;
	site_start(&s, NULL, NULL);
	struct h_response r;
	ck_assert(h_http_request(s.port, "GET /range.txt HTTP/1.2\r\nHost: t\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "0123456789abcdefghij");
	ck_assert_ptr_null(hdr(&r, "Connection")); /* persistent, as 1.1 */
	h_http_response_free(&r);
	/* 1.1 rules: Host is required. */
	ck_assert(h_http_request(s.port, "GET / HTTP/1.2\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	h_http_response_free(&r);
	ck_assert(h_http_request(s.port, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 505);
	h_http_response_free(&r);
	site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ 8. charset */

START_TEST(charset_is_none_by_default_and_added_to_text_types_when_set)
{
	struct site s;
	site_start(&s, NULL, NULL);
	struct h_response r;
	req(&s, "GET", "/index.html", NULL, &r);
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/html");
	h_http_response_free(&r);
	site_stop(&s);

	site_start(&s, NULL, "charset = utf-8");
	req(&s, "GET", "/index.html", NULL, &r);
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/html; charset=utf-8");
	h_http_response_free(&r);
	req(&s, "GET", "/logo.png", NULL, &r);
	ck_assert_str_eq(hdr(&r, "Content-Type"), "image/png");
	h_http_response_free(&r);
	site_stop(&s);

	site_start(&s, NULL, "charset = iso-8859-1");
	req(&s, "GET", "/range.txt", NULL, &r);
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/plain; charset=iso-8859-1");
	h_http_response_free(&r);
	site_stop(&s);

	/* A value that is not a charset name: drover -t says file, line, key. */
	char out[2048];
	int rc = h_drover_check("[listener web]\naddress = 127.0.0.1:1\n[http]\nroot = /\ncharset = utf 8\n",
				NULL, out, sizeof out);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(out, ":5:") && strstr(out, "charset"), "drover -t: %s", out);
	rc = h_drover_check("[listener web]\naddress = 127.0.0.1:1\n[http]\nroot = /\nmax_ranges = 0\n", NULL,
			    out, sizeof out);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(out, ":5:") && strstr(out, "max_ranges"), "drover -t: %s", out);
}
END_TEST

/* ------------------------------------------------------------ 9. listings */

START_TEST(listing_of_more_than_10000_entries_says_it_is_cut)
{
	struct site s;
	site_start(&s, NULL, "autoindex = yes");
	char dir[700];
	snprintf(dir, sizeof dir, "%s/many", s.www);
	ck_assert(mkdir(dir, 0755) == 0);
	for (int i = 0; i < 10050; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%05d", i);
		int fd = openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		ck_assert(fd >= 0);
		int f = openat(fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ck_assert(f >= 0);
		close(f);
		close(fd);
	}
	struct h_response r;
	req(&s, "GET", "/many/", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strstr(r.body, "Listing cut: 10000 of 10050 entries shown."), "no note in the listing");
	size_t items = 0;
	for (const char *p = r.body; (p = strstr(p, "<li><a href=\"./f")); p++)
		items++;
	ck_assert_uint_eq(items, 10000);
	h_http_response_free(&r);

	/* A listing that fits says nothing of the kind. */
	req(&s, "GET", "/", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(strstr(r.body, "Listing cut"));
	h_http_response_free(&r);
	site_stop(&s);
}
END_TEST

static Suite *semantics_suite(void)
{
	Suite *su = suite_create("http_semantics");
	TCase *t = tcase_create("semantics");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, if_match_and_if_unmodified_since_fail_with_412_in_rfc_order);
	tcase_add_test(t, future_mtime_is_sent_as_date_and_a_rewrite_is_seen);
	tcase_add_test(t, root_symlink_swap_is_served_without_reload_and_in_flight_finishes);
	tcase_add_test(t, root_deleted_and_recreated_is_served_without_reload);
	tcase_add_test(t, repeated_conditional_fields_lists_combined_singletons_ignored);
	tcase_add_test(t, multiple_ranges_are_multipart_byteranges);
	tcase_add_test(t, multiple_ranges_of_a_large_file_by_sendfile);
	tcase_add_test(t, curl_parses_multiple_ranges_back_byte_for_byte);
	tcase_add_test(t, suffix_range_of_an_empty_file_is_200);
	tcase_add_test(t, http_1_2_is_answered_as_1_1_and_2_0_is_505);
	tcase_add_test(t, charset_is_none_by_default_and_added_to_text_types_when_set);
	tcase_add_test(t, listing_of_more_than_10000_entries_says_it_is_cut);
	suite_add_tcase(su, t);
	return su;
}

int main(void)
{
	int failed = h_run_suite(semantics_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
