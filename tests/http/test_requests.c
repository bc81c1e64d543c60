/* test_requests: the HTTP/1.1 protocol over real sockets against the real
 * drover binary: responses and their headers, keep-alive and pipelining,
 * Range and conditional requests, directories, traversal attempts, every
 * error status, the timeouts, drain during a download, the health and
 * status endpoints and the access log.
 *
 * Each test starts its own drover with one worker (unless it needs more),
 * a TCP listener passed by socket activation ("web") and a unix-socket
 * listener with the status endpoint ("admin"). Waits are on events (a
 * response, EOF, a counter in the status JSON); every wait is bounded only
 * to turn a hang into a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "TOPSECRET-OUTSIDE-THE-ROOT"
#define BIG_SIZE ((size_t)32 << 20)

/* ------------------------------------------------------------ fixtures */

static void www_symlink(struct h_site *s, const char *target, const char *rel)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	ck_assert_msg(symlink(target, p) == 0, "symlink %s: %s", p, strerror(errno));
}

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)((i * 7u) ^ (i >> 11) ^ (i >> 19));
}

/* A file of size bytes: the pattern above, or sparse zeros. */
static void www_big(struct h_site *s, const char *rel, size_t size, bool pattern)
{
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert(fd >= 0);
	if (!pattern) {
		ck_assert(ftruncate(fd, (off_t)size) == 0);
	} else {
		static unsigned char buf[1 << 16];
		for (size_t off = 0; off < size; off += sizeof buf) {
			size_t n = size - off < sizeof buf ? size - off : sizeof buf;
			for (size_t i = 0; i < n; i++)
				buf[i] = pattern_byte(off + i);
			ck_assert(write(fd, buf, n) == (ssize_t)n);
		}
	}
	close(fd);
}

static void srv_files(struct h_site *s)
{
	char p[1024];
	h_path_join(p, sizeof p, s->tmp, "secret.txt");
	h_write_file(p, SECRET "\n");

	h_site_file(s, "index.html", "<html><body>home</body></html>\n");
	h_site_file(s, "hello.txt", "hello world\n");
	h_site_file(s, "style.css", "body { color: red }\n");
	h_site_file(s, "img.png", "\x89PNG fake\n");
	h_site_file(s, "data.zzzq", "unknown type\n");
	h_site_file(s, "range.txt", "0123456789abcdefghij");
	h_site_file(s, ".secret", "dotfile " SECRET "\n");
	h_site_dir(s, ".git");
	h_site_file(s, ".git/config", "dotdir " SECRET "\n");
	h_site_dir(s, "sub");
	h_site_file(s, "sub/index.html", "sub index\n");
	h_site_file(s, "sub/.hidden", "hidden " SECRET "\n");
	h_site_dir(s, "emptydir");
	h_site_dir(s, "listing");
	h_site_file(s, "listing/a.txt", "a\n");
	h_site_file(s, "listing/<b>.txt", "b\n");
	h_site_file(s, "listing/.hidden", "h\n");
	h_site_dir(s, "listing/subd");
	h_site_file(s, "listing/javascript:alert(1)", "j\n");
	www_symlink(s, "../hello.txt", "listing/inside_link");
	www_symlink(s, "/etc", "listing/outside_link");
	www_symlink(s, "hello.txt", "alias.txt");
	www_symlink(s, "../secret.txt", "link_out");
	www_symlink(s, "..", "dirlink");
	h_site_dir(s, "p");
	for (int i = 0; i < 50; i++) {
		char name[64], body[128];
		snprintf(name, sizeof name, "p/%d.txt", i);
		snprintf(body, sizeof body, "pipelined file number %d: %.*s\n", i, i,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		h_site_file(s, name, body);
	}
}

/* Start drover. root: NULL = our www; http_extra / server_extra: more
 * lines for [http] / [server]. */
static void srv_start_full(struct h_site *s, const char *root, const char *http_extra,
			   const char *server_extra, unsigned workers)
{
	h_site_init(s);
	srv_files(s);
	char server[2048], http[2048];
	snprintf(server, sizeof server, "shutdown_timeout = 60s\nlingering_timeout = 2s\n%s",
		 server_extra ? server_extra : "");
	snprintf(http, sizeof http, "mime_types = /etc/mime.types\nstatus_path = /status\n%s",
		 http_extra ? http_extra : "");
	h_site_start(s, &(struct h_site_opts){
		.workers = workers, .server = server, .http = http, .root = root, .admin = true });
}

static void srv_start(struct h_site *s, const char *http_extra)
{
	srv_start_full(s, NULL, http_extra, NULL, 1);
}

/* ------------------------------------------------------------ client helpers */

static int web_connect(struct h_site *s)
{
	int fd = h_connect_tcp(s->port);
	ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
	return fd;
}

/* A TCP connection with a small receive buffer, so that a large response
 * is still in flight on the server while the test does something else. */
static int web_connect_small_rcvbuf(struct h_site *s)
{
	int fd = h_connect_tcp_rcvbuf(s->port, 4096);
	ck_assert_msg(fd >= 0, "connect: %s", strerror(-fd));
	return fd;
}

static void send_str(int fd, const char *raw)
{
	h_write_all(fd, raw, strlen(raw));
}

static void read_resp(int fd, struct h_response *r, bool head)
{
	ck_assert_msg(h_http_read_response(fd, r, head), "no (complete) response");
}

/* Send raw on fd and read one response. */
static void exchange(int fd, const char *raw, struct h_response *r)
{
	send_str(fd, raw);
	read_resp(fd, r, strncmp(raw, "HEAD ", 5) == 0);
}

/* One request on a fresh connection. */
static void one(struct h_site *s, const char *raw, struct h_response *r)
{
	ck_assert_msg(h_http_request(s->port, raw, r), "no response to %.60s", raw);
}

static void get(struct h_site *s, const char *path, struct h_response *r)
{
	char raw[2048];
	snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
	one(s, raw, r);
}

static char *hdr(const struct h_response *r, const char *name)
{
	static char v[4][1024];
	static int i;
	char *out = v[i++ & 3];
	if (!h_http_header(r, name, out, sizeof v[0]))
		return NULL;
	return out;
}

static void assert_hdr(const struct h_response *r, const char *name, const char *want)
{
	char *v = hdr(r, name);
	ck_assert_msg(v != NULL, "no %s header in:\n%s", name, r->headers);
	ck_assert_msg(strcmp(v, want) == 0, "%s: got '%s', want '%s'", name, v, want);
}

static bool conn_close_hdr(const struct h_response *r)
{
	char *v = hdr(r, "Connection");
	return v && strcasecmp(v, "close") == 0;
}

/* The server closed the connection: EOF (or a reset) with no more data. */
static bool peer_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, H_WAIT_MS) <= 0)
		return false;
	char c;
	ssize_t n = read(fd, &c, 1);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void free_resp(struct h_response *r)
{
	h_http_response_free(r);
}

/* GET path_on_admin over the unix status listener. */
static void admin_get(struct h_site *s, const char *path, struct h_response *r)
{
	int fd = h_connect_unix(s->admin);
	ck_assert_msg(fd >= 0, "connect %s: %s", s->admin, strerror(-fd));
	char raw[512];
	snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n", path);
	exchange(fd, raw, r);
	close(fd);
}

/* "connections" of the first worker in the status JSON. */
static long status_connections(struct h_site *s)
{
	struct h_response r;
	admin_get(s, "/status", &r);
	ck_assert_int_eq(r.status, 200);
	const char *p = strstr(r.body, "\"connections\":");
	ck_assert_msg(p != NULL, "no connections in %s", r.body);
	long n = strtol(p + strlen("\"connections\":"), NULL, 10);
	free_resp(&r);
	return n;
}

/* ------------------------------------------------------------ basic responses */

START_TEST(get_200_headers_and_body)
{
	struct h_site s;
	/* [http] charset is none by default; this test's site says utf-8. */
	srv_start(&s, "charset = utf-8");
	struct h_response r;
	get(&s, "/index.html", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "<html><body>home</body></html>\n");
	assert_hdr(&r, "Content-Length", "31");
	assert_hdr(&r, "Content-Type", "text/html; charset=utf-8");
	assert_hdr(&r, "Accept-Ranges", "bytes");
	char *date = hdr(&r, "Date");
	ck_assert_msg(date && strlen(date) == 29 && strcmp(date + 25, " GMT") == 0, "Date: %s", date);
	char *server = hdr(&r, "Server");
	ck_assert_msg(server && strncmp(server, "drover/", 7) == 0, "Server: %s", server);
	char *etag = hdr(&r, "ETag");
	ck_assert_msg(etag && etag[0] == '"' && etag[strlen(etag) - 1] == '"', "ETag: %s", etag);
	char *lm = hdr(&r, "Last-Modified");
	ck_assert_msg(lm && strlen(lm) == 29 && strstr(lm, " GMT"), "Last-Modified: %s", lm);
	ck_assert(!conn_close_hdr(&r));
	free_resp(&r);

	get(&s, "/hello.txt", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	char *ct = hdr(&r, "Content-Type");
	ck_assert_msg(ct && strncmp(ct, "text/plain", 10) == 0, "Content-Type: %s", ct);
	free_resp(&r);

	/* "/" serves index.html; a symlink inside the root is fine. */
	get(&s, "/", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "<html><body>home</body></html>\n");
	free_resp(&r);
	get(&s, "/alias.txt", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(head_same_headers_no_body)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	struct h_response g, h, next;
	exchange(fd, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n", &g);
	/* HEAD and a GET pipelined: the GET's response must follow the HEAD's
	 * header block directly, proving no body was sent. */
	send_str(fd, "HEAD /index.html HTTP/1.1\r\nHost: t\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
	read_resp(fd, &h, true);
	read_resp(fd, &next, false);
	ck_assert_int_eq(h.status, 200);
	const char *names[] = { "Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *a = hdr(&g, names[i]), *b = hdr(&h, names[i]);
		ck_assert_msg(a && b && strcmp(a, b) == 0, "%s: GET '%s' HEAD '%s'", names[i], a, b);
	}
	ck_assert_int_eq(next.status, 200);
	ck_assert_str_eq(next.body, "hello world\n");
	free_resp(&g);
	free_resp(&h);
	free_resp(&next);
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(mime_types)
{
	struct h_site s;
	srv_start(&s, NULL);
	struct h_response r;
	get(&s, "/style.css", &r);
	ck_assert_int_eq(r.status, 200);
	char *ct = hdr(&r, "Content-Type");
	ck_assert_msg(ct && strncmp(ct, "text/css", 8) == 0, "css: %s", ct);
	free_resp(&r);
	get(&s, "/img.png", &r);
	assert_hdr(&r, "Content-Type", "image/png");
	free_resp(&r);
	get(&s, "/data.zzzq", &r);
	assert_hdr(&r, "Content-Type", "application/octet-stream");
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(options_and_health)
{
	struct h_site s;
	srv_start(&s, NULL);
	struct h_response r;
	one(&s, "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	assert_hdr(&r, "Allow", "GET, HEAD, OPTIONS");
	assert_hdr(&r, "Content-Length", "0");
	free_resp(&r);
	one(&s, "OPTIONS /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	assert_hdr(&r, "Allow", "GET, HEAD, OPTIONS");
	free_resp(&r);
	get(&s, "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok\n");
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ connections */

START_TEST(pipelining_50_in_order)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	char *buf = malloc(50 * 64);
	size_t len = 0;
	for (int i = 0; i < 50; i++)
		len += (size_t)sprintf(buf + len, "GET /p/%d.txt HTTP/1.1\r\nHost: t\r\n\r\n", i);
	h_write_all(fd, buf, len); /* all 50 in one write */
	for (int i = 0; i < 50; i++) {
		struct h_response r;
		read_resp(fd, &r, false);
		ck_assert_int_eq(r.status, 200);
		char want[128];
		snprintf(want, sizeof want, "pipelined file number %d: %.*s\n", i, i,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		ck_assert_str_eq(r.body, want);
		free_resp(&r);
	}
	free(buf);
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(keepalive_reuse)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	for (int i = 0; i < 5; i++) {
		struct h_response r;
		exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "hello world\n");
		ck_assert(!conn_close_hdr(&r));
		free_resp(&r);
	}
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(http10_close_and_keepalive)
{
	struct h_site s;
	srv_start(&s, NULL);
	/* HTTP/1.0 closes by default (RFC 9112 §9.3). */
	int fd = web_connect(&s);
	struct h_response r;
	exchange(fd, "GET /hello.txt HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.headers, "HTTP/1.1 200", 12) == 0, "%s", r.headers);
	ck_assert(conn_close_hdr(&r));
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);

	/* ... unless it asks for keep-alive. */
	fd = web_connect(&s);
	for (int i = 0; i < 2; i++) {
		exchange(fd, "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
		ck_assert_int_eq(r.status, 200);
		assert_hdr(&r, "Connection", "keep-alive");
		ck_assert_str_eq(r.body, "hello world\n");
		free_resp(&r);
	}
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(connection_close)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	struct h_response r;
	exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(conn_close_hdr(&r));
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(keepalive_requests_limit)
{
	struct h_site s;
	srv_start(&s, "keepalive_requests = 3\n");
	int fd = web_connect(&s);
	for (int i = 1; i <= 3; i++) {
		struct h_response r;
		exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_msg(conn_close_hdr(&r) == (i == 3), "response %d: %s", i, r.headers);
		free_resp(&r);
	}
	ck_assert(peer_closed(fd));
	close(fd);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ Range, conditionals */

static void range_req(struct h_site *s, const char *extra, struct h_response *r)
{
	char raw[1024];
	snprintf(raw, sizeof raw, "GET /range.txt HTTP/1.1\r\nHost: t\r\n%s\r\n", extra);
	one(s, raw, r);
}

START_TEST(range_requests)
{
	struct h_site s;
	srv_start(&s, NULL);
	static const struct {
		const char *range, *body, *content_range;
	} ok[] = {
		{ "bytes=0-4", "01234", "bytes 0-4/20" },
		{ "bytes=15-", "fghij", "bytes 15-19/20" },
		{ "bytes=-3", "hij", "bytes 17-19/20" },
		{ "bytes=5-1000", "56789abcdefghij", "bytes 5-19/20" },
		{ "bytes=19-19", "j", "bytes 19-19/20" },
	};
	struct h_response r;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char extra[128];
		snprintf(extra, sizeof extra, "Range: %s\r\n", ok[i].range);
		range_req(&s, extra, &r);
		ck_assert_msg(r.status == 206, "%s: %d", ok[i].range, r.status);
		ck_assert_str_eq(r.body, ok[i].body);
		assert_hdr(&r, "Content-Range", ok[i].content_range);
		free_resp(&r);
	}
	/* Unsatisfiable: 416 with the size (RFC 9110 §15.5.17). */
	range_req(&s, "Range: bytes=20-\r\n", &r);
	ck_assert_int_eq(r.status, 416);
	assert_hdr(&r, "Content-Range", "bytes */20");
	free_resp(&r);
	/* Several ranges: 206 multipart/byteranges (RFC 9110 §14.6; the parts
	 * are checked byte for byte in test_semantics). */
	range_req(&s, "Range: bytes=0-1,5-6\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_msg(strncmp(hdr(&r, "Content-Type"), "multipart/byteranges; boundary=", 31) == 0,
		      "Content-Type: %s", hdr(&r, "Content-Type"));
	free_resp(&r);
	/* Range is for GET only: HEAD gets the plain 200 headers. */
	one(&s, "HEAD /range.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-4\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	assert_hdr(&r, "Content-Length", "20");
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(if_range)
{
	struct h_site s;
	srv_start(&s, NULL);
	struct h_response r;
	range_req(&s, "", &r);
	char etag[256], lm[256], extra[700];
	snprintf(etag, sizeof etag, "%s", hdr(&r, "ETag"));
	snprintf(lm, sizeof lm, "%s", hdr(&r, "Last-Modified"));
	free_resp(&r);

	snprintf(extra, sizeof extra, "Range: bytes=0-4\r\nIf-Range: %s\r\n", etag);
	range_req(&s, extra, &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(r.body, "01234");
	free_resp(&r);

	snprintf(extra, sizeof extra, "Range: bytes=0-4\r\nIf-Range: %s\r\n", lm);
	range_req(&s, extra, &r);
	ck_assert_int_eq(r.status, 206);
	free_resp(&r);

	range_req(&s, "Range: bytes=0-4\r\nIf-Range: \"other\"\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "0123456789abcdefghij");
	free_resp(&r);

	/* A weak validator never matches If-Range (RFC 9110 §13.1.5). */
	snprintf(extra, sizeof extra, "Range: bytes=0-4\r\nIf-Range: W/%s\r\n", etag);
	range_req(&s, extra, &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);

	range_req(&s, "Range: bytes=0-4\r\nIf-Range: Thu, 01 Jan 1998 00:00:00 GMT\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(conditional_304)
{
	struct h_site s;
	srv_start(&s, NULL);
	struct h_response r;
	get(&s, "/hello.txt", &r);
	char etag[256], lm[256], raw[1024];
	snprintf(etag, sizeof etag, "%s", hdr(&r, "ETag"));
	snprintf(lm, sizeof lm, "%s", hdr(&r, "Last-Modified"));
	free_resp(&r);

	/* A 304 has no body: the next response on the connection must parse. */
	int fd = web_connect(&s);
	snprintf(raw, sizeof raw, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n", etag);
	exchange(fd, raw, &r);
	ck_assert_int_eq(r.status, 304);
	assert_hdr(&r, "ETag", etag);
	free_resp(&r);
	exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	close(fd);

	snprintf(raw, sizeof raw, "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\", %s\r\n\r\n", etag);
	one(&s, raw, &r);
	ck_assert_int_eq(r.status, 304);
	free_resp(&r);
	one(&s, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 304);
	free_resp(&r);
	one(&s, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);

	snprintf(raw, sizeof raw, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n", lm);
	one(&s, raw, &r);
	ck_assert_int_eq(r.status, 304);
	free_resp(&r);
	one(&s, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	/* If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2). */
	snprintf(raw, sizeof raw,
		 "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\nIf-Modified-Since: %s\r\n\r\n", lm);
	one(&s, raw, &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ directories, traversal */

START_TEST(directory_redirect_and_index)
{
	struct h_site s;
	srv_start(&s, NULL);
	struct h_response r;
	get(&s, "/sub", &r);
	ck_assert_int_eq(r.status, 301);
	assert_hdr(&r, "Location", "/sub/");
	free_resp(&r);
	get(&s, "/sub?a=1&b=2", &r);
	ck_assert_int_eq(r.status, 301);
	assert_hdr(&r, "Location", "/sub/?a=1&b=2");
	free_resp(&r);
	get(&s, "/sub/", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "sub index\n");
	free_resp(&r);
	/* No index and no autoindex: 403. */
	get(&s, "/emptydir/", &r);
	ck_assert_int_eq(r.status, 403);
	free_resp(&r);
	get(&s, "/listing/", &r);
	ck_assert_int_eq(r.status, 403);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(autoindex_listing)
{
	struct h_site s;
	srv_start(&s, "autoindex = yes\n");
	struct h_response r;
	get(&s, "/listing/", &r);
	ck_assert_int_eq(r.status, 200);
	char *ct = hdr(&r, "Content-Type");
	ck_assert_msg(ct && strncmp(ct, "text/html", 9) == 0, "%s", ct);
	ck_assert_msg(strstr(r.body, "a.txt"), "%s", r.body);
	ck_assert_msg(strstr(r.body, "subd/"), "%s", r.body);
	ck_assert_msg(strstr(r.body, "&lt;b&gt;.txt"), "names are escaped: %s", r.body);
	ck_assert_msg(!strstr(r.body, "<b>"), "unescaped name: %s", r.body);
	ck_assert_msg(!strstr(r.body, ".hidden"), "dotfile listed: %s", r.body);
	/* every link stays in this directory: a ':' cannot make a scheme */
	ck_assert_msg(strstr(r.body, "href=\"./javascript:alert(1)\""), "%s", r.body);
	ck_assert_msg(!strstr(r.body, "href=\"javascript:"), "%s", r.body);
	/* a link that leaves the root is not even named; one inside is */
	ck_assert_msg(!strstr(r.body, "outside_link"), "link out of the root listed: %s", r.body);
	ck_assert_msg(strstr(r.body, "inside_link"), "link inside the root missing: %s", r.body);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

START_TEST(traversal_never_leaves_root)
{
	struct h_site s;
	srv_start(&s, NULL);
	static const char *const targets[] = {
		"/../secret.txt",
		"/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/secret.txt",
		"/.%2e/secret.txt",
		"/..%2fsecret.txt",
		"/..%2Fsecret.txt",
		"/sub/../../secret.txt",
		"/sub/%2e%2e/%2e%2e/secret.txt",
		"/./../secret.txt",
		"//../secret.txt",
		"//secret.txt",
		"/..\\secret.txt",
		"/%00/../secret.txt",
		"/secret.txt%00",
		"/hello.txt%00.html",
		"/link_out",
		"/dirlink/secret.txt",
		"/dirlink/www/hello.txt/../../secret.txt",
		"/%252e%252e/secret.txt",
		"http://t/../secret.txt",
		"../secret.txt",
	};
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		char raw[512];
		snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", targets[i]);
		struct h_response r;
		one(&s, raw, &r);
		ck_assert_msg(r.status == 400 || r.status == 403 || r.status == 404, "%s: status %d",
			      targets[i], r.status);
		ck_assert_msg(!strstr(r.body, SECRET), "%s served the secret", targets[i]);
		free_resp(&r);
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(dotfiles_404)
{
	struct h_site s;
	srv_start(&s, NULL);
	const char *paths[] = { "/.secret", "/sub/.hidden", "/.git/config", "/.git/", "/%2esecret" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct h_response r;
		get(&s, paths[i], &r);
		ck_assert_msg(r.status == 404, "%s: %d", paths[i], r.status);
		ck_assert(!strstr(r.body, SECRET));
		free_resp(&r);
	}
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ error statuses */

/* A request that must be refused with status and Connection: close, after
 * which the server closes. */
static void expect_fatal(struct h_site *s, const char *raw, size_t raw_len, int status)
{
	int fd = web_connect(s);
	h_write_all(fd, raw, raw_len);
	struct h_response r;
	read_resp(fd, &r, false);
	ck_assert_msg(r.status == status, "want %d, got %d for %.60s", status, r.status, raw);
	ck_assert_msg(conn_close_hdr(&r), "no Connection: close on %d", status);
	char want[8];
	snprintf(want, sizeof want, "%d", status);
	ck_assert_msg(strstr(r.body, want), "body: %s", r.body);
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
}

START_TEST(error_statuses)
{
	struct h_site s;
	srv_start(&s, "max_body_size = 1k\n");
	struct h_response r;

	/* 400: HTTP/1.1 without Host (RFC 9112 §3.2). */
	const char *no_host = "GET / HTTP/1.1\r\n\r\n";
	expect_fatal(&s, no_host, strlen(no_host), 400);
	/* 403: a directory without index. */
	get(&s, "/emptydir/", &r);
	ck_assert_int_eq(r.status, 403);
	free_resp(&r);
	/* 404 */
	get(&s, "/does-not-exist.txt", &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "404 Not Found\n");
	free_resp(&r);
	/* 405 with Allow; the connection stays usable. */
	int fd = web_connect(&s);
	exchange(fd, "DELETE /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 405);
	assert_hdr(&r, "Allow", "GET, HEAD, OPTIONS");
	free_resp(&r);
	exchange(fd, "POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", &r);
	ck_assert_int_eq(r.status, 405);
	assert_hdr(&r, "Allow", "GET, HEAD, OPTIONS");
	free_resp(&r);
	exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	close(fd);
	/* 413: Content-Length above max_body_size. */
	const char *big = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
	expect_fatal(&s, big, strlen(big), 413);
	/* 413 too for a chunked body that grows past it. */
	{
		char raw[4096];
		size_t n = (size_t)sprintf(raw, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < 3; i++) {
			n += (size_t)sprintf(raw + n, "200\r\n");
			memset(raw + n, 'z', 512);
			n += 512;
			n += (size_t)sprintf(raw + n, "\r\n");
		}
		n += (size_t)sprintf(raw + n, "0\r\n\r\n");
		expect_fatal(&s, raw, n, 413);
	}
	/* 414: request line above max_request_line (8k by default). */
	{
		size_t n = 10000;
		char *raw = malloc(n + 64);
		size_t len = (size_t)sprintf(raw, "GET /");
		memset(raw + len, 'a', n);
		len += n;
		len += (size_t)sprintf(raw + len, " HTTP/1.1\r\nHost: t\r\n\r\n");
		expect_fatal(&s, raw, len, 414);
		free(raw);
	}
	/* 431: a header line above max_header_line. */
	{
		size_t n = 10000;
		char *raw = malloc(n + 128);
		size_t len = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
		memset(raw + len, 'b', n);
		len += n;
		len += (size_t)sprintf(raw + len, "\r\n\r\n");
		expect_fatal(&s, raw, len, 431);
		free(raw);
	}
	/* 431: too many header fields. */
	{
		char *raw = malloc(200 * 32 + 64);
		size_t len = (size_t)sprintf(raw, "GET / HTTP/1.1\r\nHost: t\r\n");
		for (int i = 0; i < 200; i++)
			len += (size_t)sprintf(raw + len, "X-H%d: v\r\n", i);
		len += (size_t)sprintf(raw + len, "\r\n");
		expect_fatal(&s, raw, len, 431);
		free(raw);
	}
	/* 501: a method token nobody implements (documented choice over 405). */
	fd = web_connect(&s);
	exchange(fd, "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 501);
	free_resp(&r);
	close(fd);
	/* 505 */
	const char *v2 = "GET / HTTP/2.0\r\nHost: t\r\n\r\n";
	expect_fatal(&s, v2, strlen(v2), 505);
	const char *v12 = "GET / HTTP/1.2\r\nHost: t\r\n\r\n";
	int st;
	fd = web_connect(&s);
	exchange(fd, v12, &r);
	st = r.status;
	free_resp(&r);
	close(fd);
	/* A higher minor version is answered as HTTP/1.1 (RFC 9110 §2.5). */
	ck_assert_msg(st == 200, "HTTP/1.2: %d", st);
	h_site_stop(&s);
}
END_TEST

/* 500: a root that cannot be opened when a worker starts is answered with
 * 500 (the endpoints keep working). A start or reload refuses a missing
 * root (test_config_paths), so here it goes away after the start and the worker
 * that meets it is a replacement. */
START_TEST(error_500_unusable_root)
{
	struct h_site s;
	char root[600];
	char *tmp = h_tmpdir();
	snprintf(root, sizeof root, "%s/root", tmp);
	ck_assert(mkdir(root, 0755) == 0);
	srv_start_full(&s, root, NULL, NULL, 1);
	ck_assert(rmdir(root) == 0);
	pid_t old;
	ck_assert_uint_eq(h_worker_pids(s.d, &old, 1), 1);
	ck_assert(kill(old, SIGKILL) == 0);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		pid_t now[4];
		size_t n = h_worker_pids(s.d, now, 4);
		if (n == 1 && now[0] != old)
			break;
		ck_assert_msg(h_left_ms(deadline) > 0, "no replacement for worker %d", (int)old);
		h_pause_ms(10); /* the supervisor tells nobody it forked */
	}
	struct h_response r;
	get(&s, "/index.html", &r);
	ck_assert_int_eq(r.status, 500);
	ck_assert_str_eq(r.body, "500 Internal Server Error\n");
	free_resp(&r);
	get(&s, "/healthz", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	ck_assert(h_log_contains(s.d, "cannot open root directory"));
	h_site_stop(&s);
	rmdir(tmp);
	free(tmp);
}
END_TEST

START_TEST(smuggling_rejected)
{
	struct h_site s;
	srv_start(&s, NULL);
	/* Content-Length and Transfer-Encoding together (RFC 9112 §6.1). */
	const char *clte = "POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
	expect_fatal(&s, clte, strlen(clte), 400);
	const char *two_cl = "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef";
	expect_fatal(&s, two_cl, strlen(two_cl), 400);
	const char *space = "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nabcde";
	expect_fatal(&s, space, strlen(space), 400);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ bodies */

START_TEST(request_bodies_discarded)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	struct h_response r;
	/* Content-Length body on a GET, then the next request works. */
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
		     "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "body { color: red }\n");
	free_resp(&r);
	/* Chunked, sent in pieces. */
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
	send_str(fd, "cde\r\n3;ext=1\r\nxyz\r\n0\r\nTrailer: x\r\n\r\n");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	/* A body arriving after a pipelined request already sits in the buffer. */
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /img.png HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	send_str(fd, "wxyz");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	assert_hdr(&r, "Content-Type", "image/png");
	free_resp(&r);
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(expect_100_continue)
{
	struct h_site s;
	srv_start(&s, NULL);
	int fd = web_connect(&s);
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
	struct h_response r;
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 100);
	free_resp(&r);
	send_str(fd, "abcde");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello world\n");
	free_resp(&r);
	exchange(fd, "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	close(fd);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ timeouts */

START_TEST(header_timeout_408)
{
	struct h_site s;
	srv_start(&s, "header_timeout = 1s\n");
	/* Slowloris: part of a head, then nothing. */
	int fd = web_connect(&s);
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n");
	struct h_response r;
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 408);
	ck_assert(conn_close_hdr(&r));
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
	/* Connected but silent: closed without a response. */
	fd = web_connect(&s);
	char buf[64];
	ck_assert_int_eq(h_read_all(fd, buf, sizeof buf), 0);
	close(fd);
	/* A body that stops coming: 408 too. */
	fd = web_connect(&s);
	send_str(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 408);
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(keepalive_timeout_closes_idle)
{
	struct h_site s;
	srv_start(&s, "keepalive_timeout = 1s\n");
	int fd = web_connect(&s);
	struct h_response r;
	exchange(fd, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(!conn_close_hdr(&r));
	free_resp(&r);
	char buf[64];
	ck_assert_int_eq(h_read_all(fd, buf, sizeof buf), 0); /* EOF, no bytes */
	close(fd);
	h_site_stop(&s);
}
END_TEST

START_TEST(send_timeout_drops_non_reader)
{
	struct h_site s;
	srv_start(&s, "send_timeout = 1s\n");
	www_big(&s, "huge.bin", (size_t)64 << 20, false);
	int fd = web_connect_small_rcvbuf(&s);
	send_str(fd, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	/* Wait until the worker has dropped the connection: the status JSON
	 * (whose own connection is the only one left) says so. */
	bool dropped = false;
	for (int i = 0; i < H_WAIT_MS / 20 && !dropped; i++) {
		if (status_connections(&s) == 1)
			dropped = true;
		else
			poll(NULL, 0, 20);
	}
	ck_assert_msg(dropped, "the non-reading client was never dropped");
	/* What was queued still arrives, then EOF: far less than the file. */
	static char buf[1 << 16];
	size_t total = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert(poll(&p, 1, H_WAIT_MS) == 1);
		ssize_t n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		ck_assert(n > 0);
		total += (size_t)n;
	}
	ck_assert_msg(total < ((size_t)64 << 20), "got %zu bytes", total);
	close(fd);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ drain */

START_TEST(drain_completes_download)
{
	struct h_site s;
	srv_start(&s, NULL);
	www_big(&s, "big.bin", BIG_SIZE, true);
	/* An idle keep-alive connection: the worker closes it when the drain
	 * starts, which is how the test knows the drain has begun. */
	int idle = web_connect(&s);
	struct h_response r;
	exchange(idle, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);

	int fd = web_connect_small_rcvbuf(&s);
	send_str(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert(poll(&p, 1, H_WAIT_MS) == 1); /* the download has started */
	h_drover_kill(s.d, SIGTERM);
	ck_assert_msg(peer_closed(idle), "idle keep-alive connection not closed by drain");
	close(idle);

	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		if ((unsigned char)r.body[i] != pattern_byte(i))
			ck_abort_msg("byte %zu differs", i);
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	h_site_stop(&s);
}
END_TEST

/* 503 from health_path while draining: a health check pipelined behind a
 * download that is still in flight when the drain starts is answered after
 * it, by a draining worker, with 503 and Connection: close. */
START_TEST(health_503_while_draining)
{
	struct h_site s;
	srv_start(&s, NULL);
	www_big(&s, "big.bin", BIG_SIZE, false);
	int idle = web_connect(&s);
	struct h_response r;
	exchange(idle, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);

	int fd = web_connect_small_rcvbuf(&s);
	send_str(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert(poll(&p, 1, H_WAIT_MS) == 1);
	h_drover_kill(s.d, SIGTERM);
	ck_assert(peer_closed(idle));
	close(idle);

	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, BIG_SIZE);
	free_resp(&r);
	read_resp(fd, &r, false);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "draining\n");
	ck_assert(conn_close_hdr(&r));
	free_resp(&r);
	ck_assert(peer_closed(fd));
	close(fd);
	int st = h_drover_wait(s.d);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ endpoints, log */

START_TEST(status_endpoint)
{
	struct h_site s;
	srv_start_full(&s, NULL, NULL, NULL, 2);
	ck_assert(h_wait_workers(s.d, 2));
	struct h_response r;
	admin_get(&s, "/status", &r);
	ck_assert_int_eq(r.status, 200);
	char *ct = hdr(&r, "Content-Type");
	ck_assert_msg(ct && strncmp(ct, "application/json", 16) == 0, "%s", ct);
	char want[64];
	snprintf(want, sizeof want, "\"supervisor_pid\":%d", (int)s.d->pid);
	ck_assert_msg(strstr(r.body, want), "%s not in %s", want, r.body);
	pid_t pids[8];
	size_t n = h_worker_pids(s.d, pids, 8);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof want, "\"pid\":%d,", (int)pids[i]);
		ck_assert_msg(strstr(r.body, want), "%s not in %s", want, r.body);
	}
	ck_assert(strstr(r.body, "\"state\":\"ready\""));
	ck_assert(strstr(r.body, "\"requests\":"));
	ck_assert(strstr(r.body, "\"bytes_out\":"));
	ck_assert(strstr(r.body, "\"uptime_s\":"));
	ck_assert(r.body[0] == '{');
	free_resp(&r);
	/* Not on a listener without status = yes. */
	get(&s, "/status", &r);
	ck_assert_int_eq(r.status, 404);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

static bool file_contains(const char *path, const char *needle, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

START_TEST(access_log_combined)
{
	struct h_site s;
	char extra[1024], logpath[700];
	char *tmp = h_tmpdir();
	snprintf(logpath, sizeof logpath, "%s/access.log", tmp);
	snprintf(extra, sizeof extra, "access_log = %s\n", logpath);
	srv_start(&s, extra);
	struct h_response r;
	one(&s, "GET /hello.txt?q=1 HTTP/1.1\r\nHost: t\r\nReferer: http://ref.example/\r\n"
		"User-Agent: test-agent/1.0 \"quoted\"\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	get(&s, "/nope", &r);
	free_resp(&r);
	static char buf[65536];
	const char *want = "\"GET /hello.txt?q=1 HTTP/1.1\" 200 12 \"http://ref.example/\" "
			   "\"test-agent/1.0 \\x22quoted\\x22\"\n";
	bool found = false;
	for (int i = 0; i < H_WAIT_MS / 10 && !found; i++) {
		found = file_contains(logpath, want, buf, sizeof buf) &&
			strstr(buf, "\"GET /nope HTTP/1.1\" 404 ");
		if (!found)
			poll(NULL, 0, 10);
	}
	ck_assert_msg(found, "access log: [%s]", buf);
	/* "127.0.0.1 - - [dd/Mon/yyyy:hh:mm:ss +zzzz] " */
	ck_assert_msg(strncmp(buf, "127.0.0.1 - - [", 15) == 0, "%s", buf);
	int dd, yyyy, hh, mi, ss;
	char mon[4], zone[6];
	ck_assert_msg(sscanf(buf + 15, "%2d/%3s/%4d:%2d:%2d:%2d %5s]", &dd, mon, &yyyy, &hh, &mi, &ss, zone) == 7,
		      "%s", buf);
	ck_assert_msg(zone[0] == '+' || zone[0] == '-', "%s", buf);
	h_site_stop(&s);
	char cmd[800];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	h_run(cmd, NULL, 0);
	free(tmp);
}
END_TEST

/* redirect_https on the real binary: every request but health gets a 301
 * to https:// on https_port (the request's host, without its port), on a
 * keep-alive connection; HEAD has no body; the extended access log says
 * the request time and "-" for a plain connection. */
START_TEST(redirect_https_listener)
{
	struct h_site s;
	char http[1024], logpath[700];
	char *tmp = h_tmpdir();
	snprintf(logpath, sizeof logpath, "%s/access.log", tmp);
	snprintf(http, sizeof http, "access_log = %s\naccess_log_format = extended\n", logpath);
	h_site_init(&s);
	srv_files(&s);
	h_site_start(&s, &(struct h_site_opts){ .web = "redirect_https = yes\nhttps_port = 8443\n",
						.http = http, .admin = true });
	struct h_response r;
	int fd = web_connect(&s);
	exchange(fd, "GET /hello.txt?q=1&r=2 HTTP/1.1\r\nHost: www.example:8080\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 301);
	assert_hdr(&r, "Location", "https://www.example:8443/hello.txt?q=1&r=2");
	assert_hdr(&r, "Content-Type", "text/plain; charset=utf-8");
	ck_assert_str_eq(r.body, "301 Moved Permanently\n");
	ck_assert(!conn_close_hdr(&r));
	ck_assert_ptr_null(hdr(&r, "Strict-Transport-Security")); /* never on plain HTTP */
	free_resp(&r);
	/* Same connection: HEAD, an IPv6 host, a POST. */
	exchange(fd, "HEAD /a/../dir/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 301);
	assert_hdr(&r, "Location", "https://[::1]:8443/dir/");
	assert_hdr(&r, "Content-Length", "22");
	free_resp(&r);
	exchange(fd, "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", &r);
	ck_assert_int_eq(r.status, 301);
	assert_hdr(&r, "Location", "https://h:8443/form");
	free_resp(&r);
	/* The health check is answered, not redirected. */
	exchange(fd, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok\n");
	free_resp(&r);
	/* A Host that is no host is refused, never reflected. */
	exchange(fd, "GET / HTTP/1.1\r\nHost: [evil\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_null(hdr(&r, "Location"));
	free_resp(&r);
	close(fd);
	/* HTTP/1.0 without Host, on a socket from systemd: no host to name. */
	one(&s, "GET /x HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 400);
	free_resp(&r);
	/* Other listeners serve as ever. */
	admin_get(&s, "/status", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);

	static char buf[65536];
	const char *want = "\"GET /hello.txt?q=1&r=2 HTTP/1.1\" 301 22 \"-\" \"-\" ";
	bool found = false;
	for (int i = 0; i < H_WAIT_MS / 10 && !found; i++) {
		found = file_contains(logpath, want, buf, sizeof buf) && strstr(buf, "\"GET /healthz HTTP/1.1\" 200 ");
		if (!found)
			poll(NULL, 0, 10);
	}
	ck_assert_msg(found, "access log: [%s]", buf);
	const char *t = strstr(buf, want) + strlen(want);
	unsigned long secs, ms;
	char tls[16];
	ck_assert_msg(sscanf(t, "%lu.%3lu %15s", &secs, &ms, tls) == 3, "%s", t);
	ck_assert_str_eq(tls, "-");
	const char *nl = strchr(t, '\n'); /* "S.mmm -" ends the line */
	ck_assert_msg(nl && nl - t >= 7 && memcmp(nl - 2, " -", 2) == 0 && nl[-6] == '.', "%s", t);
	h_site_stop(&s);
	char cmd[800];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	h_run(cmd, NULL, 0);
	free(tmp);
}
END_TEST

/* SIGUSR1 reopens the access log (logrotate: rename, signal, new file). */
START_TEST(access_log_reopen)
{
	struct h_site s;
	char extra[1024], logpath[700], rotated[720];
	char *tmp = h_tmpdir();
	snprintf(logpath, sizeof logpath, "%s/access.log", tmp);
	snprintf(rotated, sizeof rotated, "%s/access.log.1", tmp);
	snprintf(extra, sizeof extra, "access_log = %s\n", logpath);
	srv_start(&s, extra);
	struct h_response r;
	get(&s, "/hello.txt?before", &r);
	free_resp(&r);
	static char buf[65536];
	bool found = false;
	for (int i = 0; i < H_WAIT_MS / 10 && !found; i++) {
		found = file_contains(logpath, "/hello.txt?before", buf, sizeof buf);
		if (!found)
			poll(NULL, 0, 10);
	}
	ck_assert(found);
	ck_assert(rename(logpath, rotated) == 0);
	h_drover_kill(s.d, SIGUSR1);
	/* The signal is asynchronous: keep requesting until a line lands in a
	 * new file at the old path. */
	found = false;
	for (int i = 0; i < H_WAIT_MS / 20 && !found; i++) {
		get(&s, "/hello.txt?after", &r);
		free_resp(&r);
		found = file_contains(logpath, "/hello.txt?after", buf, sizeof buf);
		if (!found)
			poll(NULL, 0, 20);
	}
	ck_assert_msg(found, "no new access log after SIGUSR1");
	ck_assert(file_contains(rotated, "/hello.txt?before", buf, sizeof buf));
	h_site_stop(&s);
	char cmd[800];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	h_run(cmd, NULL, 0);
	free(tmp);
}
END_TEST

/* A file that shrinks while it is sent: the promised Content-Length cannot
 * be kept, so the connection is closed early (the client sees a short body,
 * never bytes of something else). */
START_TEST(file_shrinks_during_send)
{
	struct h_site s;
	srv_start(&s, NULL);
	www_big(&s, "shrink.bin", BIG_SIZE, true);
	int fd = web_connect_small_rcvbuf(&s);
	send_str(fd, "GET /shrink.bin HTTP/1.1\r\nHost: t\r\n\r\n");
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert(poll(&p, 1, H_WAIT_MS) == 1);
	char path[1024];
	h_path_join(path, sizeof path, s.www, "shrink.bin");
	ck_assert(truncate(path, 4096) == 0);
	static char buf[1 << 16];
	size_t total = 0;
	for (;;) {
		ck_assert(poll(&p, 1, H_WAIT_MS) == 1);
		ssize_t n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		ck_assert(n > 0);
		total += (size_t)n;
	}
	ck_assert_msg(total < BIG_SIZE, "got %zu bytes", total);
	close(fd);
	/* The worker is fine. */
	struct h_response r;
	get(&s, "/hello.txt", &r);
	ck_assert_int_eq(r.status, 200);
	free_resp(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ main */

int main(void)
{
	Suite *su = suite_create("http");
	struct {
		const char *name;
		const TTest *t;
	} cases[] = {
		{ "get", get_200_headers_and_body },
		{ "head", head_same_headers_no_body },
		{ "mime", mime_types },
		{ "options_health", options_and_health },
		{ "pipelining", pipelining_50_in_order },
		{ "keepalive", keepalive_reuse },
		{ "http10", http10_close_and_keepalive },
		{ "connection_close", connection_close },
		{ "keepalive_requests", keepalive_requests_limit },
		{ "range", range_requests },
		{ "if_range", if_range },
		{ "conditional", conditional_304 },
		{ "directory", directory_redirect_and_index },
		{ "autoindex", autoindex_listing },
		{ "traversal", traversal_never_leaves_root },
		{ "dotfiles", dotfiles_404 },
		{ "errors", error_statuses },
		{ "error_500", error_500_unusable_root },
		{ "smuggling", smuggling_rejected },
		{ "bodies", request_bodies_discarded },
		{ "expect", expect_100_continue },
		{ "header_timeout", header_timeout_408 },
		{ "keepalive_timeout", keepalive_timeout_closes_idle },
		{ "send_timeout", send_timeout_drops_non_reader },
		{ "drain", drain_completes_download },
		{ "health_503", health_503_while_draining },
		{ "status", status_endpoint },
		{ "access_log", access_log_combined },
		{ "access_log_reopen", access_log_reopen },
		{ "redirect_https", redirect_https_listener },
		{ "file_shrinks", file_shrinks_during_send },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, cases[i].t);
		suite_add_tcase(su, tc);
	}
	int failed = h_run_suite(su);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
