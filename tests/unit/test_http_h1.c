/* test_http_h1: the pieces of src/proto/http that decide what goes on
 * the wire without a socket: how HTTP/1.1 serialises a response into its
 * connection (h1.c) and how the response treats the connection (the
 * HTTP_CLOSE / HTTP_UNPARSED flags, drain, keepalive_requests, HTTP/1.0
 * persistence), an oversized header block, and the path encoder that
 * Location and listings rely on. A struct http_conn is built by hand
 * around real output buffers; nothing is mocked but the worker. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "proto/http/config.h"
#include "proto/http/h1.h"
#include "proto/http/path.h"
#include "proto/http/response.h"
#include "proto/http/state.h"

#include "harness.h"
#include "transport_mem.h"

static struct config cfg;
static struct http_config http; /* [http], as http_cfg() gives it to http.c */
static bool draining;
static struct proto_env env = { .cfg = &cfg, .draining = &draining };
static struct http_conn hc;

/* A keep-alive HTTP/1.1 request has just been parsed. */
static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&http, 0, sizeof(http));
	draining = false;
	http_w.env = &env;
	http_w.cfg = &cfg;
	http_w.http = &http;
	memset(&hc, 0, sizeof(hc));
	hc.src = (struct http_body_src){ .kind = HTTP_SRC_NONE, .fd = -1 };
	ck_assert_int_eq(conn_buf_init(&hc.in, 1024), 0);
	ck_assert_int_eq(conn_buf_init(&hc.out, 4096), 0);
	hc.req.keep_alive = true;
	hc.req.version_minor = 1;
}

static void teardown(void)
{
	free(http.hsts_line);
	http.hsts_line = NULL;
	conn_buf_free(&hc.in);
	conn_buf_free(&hc.out);
	http_src_release(&hc.src);
}

/* A response from memory (status, Content-Type, more field lines, body)
 * serialised into hc, as a handler's answer would be. */
static void respond_small(int status, const char *ctype, const char *extra, const char *body, size_t len)
{
	static char fields[8192];
	struct http_response r;
	http_response_init(&r, fields, sizeof(fields));
	http_response_text(&r, status, ctype, body, len);
	if (extra)
		http_field_lines(&r.fields, extra, strlen(extra));
	http_respond_with(&hc, &r);
}

/* The queued output as a string. */
static const char *out_str(void)
{
	static char s[8192];
	size_t n = conn_buf_len(&hc.out);
	ck_assert_uint_lt(n, sizeof(s));
	memcpy(s, hc.out.data + hc.out.start, n);
	s[n] = '\0';
	return s;
}

START_TEST(test_error_with_http_close_says_connection_close)
{
	http_respond_error(&hc, 500, HTTP_CLOSE);
	const char *o = out_str();
	ck_assert_ptr_eq(strstr(o, "HTTP/1.1 500 Internal Server Error\r\n"), o);
	ck_assert_ptr_nonnull(strstr(o, "\r\nConnection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Length: 26\r\n"));
	ck_assert_ptr_nonnull(strstr(o, "\r\n\r\n500 Internal Server Error\n"));
	ck_assert_int_eq(hc.state, HTTP_SEND);
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));
	/* Our close, not the client's: the close lingers. */
	ck_assert(!http_has(&hc, HC_CLOSE_REQUESTED));
	ck_assert(http_has(&hc, HC_RESPONDING));
}
END_TEST

/* The connection runs over the in-memory transport, as TLS when security
 * is given (conn_security() is what h1.c asks). */
static struct tmem mem;
static void over_transport(const char *security)
{
	memset(&mem, 0, sizeof(mem));
	mem.security = security;
	hc.base.transport = (struct transport){ .ops = &transport_mem, .state = &mem };
}

static void hsts_on(const char *line)
{
	free(http.hsts_line);
	http.hsts_line = line ? strdup(line) : NULL;
	http.hsts_line_len = line ? strlen(line) : 0;
}

START_TEST(test_hsts_only_over_tls)
{
	hsts_on("Strict-Transport-Security: max-age=31536000\r\n");
	over_transport("TLSv1.3");
	respond_small(200, "text/plain", NULL, "ok\n", 3);
	const char *o = out_str();
	ck_assert_ptr_nonnull(strstr(o, "\r\nStrict-Transport-Security: max-age=31536000\r\n"));
	ck_assert(strstr(o, "Strict") < strstr(o, "\r\n\r\n")); /* in the head */
	/* Once per response, errors included. */
	hc.out.start = hc.out.end = 0;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert_ptr_nonnull(strstr(out_str(), "\r\nStrict-Transport-Security: max-age=31536000\r\n"));

	/* The same config on a plain socket: no header. */
	hc.out.start = hc.out.end = 0;
	over_transport(NULL);
	respond_small(200, "text/plain", NULL, "ok\n", 3);
	ck_assert_ptr_null(strstr(out_str(), "Strict-Transport-Security"));
	/* A transport without a security op at all (the plain socket's table). */
	hc.out.start = hc.out.end = 0;
	hc.base.transport = (struct transport){ .ops = &transport_plain, .state = NULL };
	respond_small(200, "text/plain", NULL, "ok\n", 3);
	ck_assert_ptr_null(strstr(out_str(), "Strict-Transport-Security"));
	hsts_on(NULL);
}
END_TEST

START_TEST(test_hsts_off_sends_nothing_over_tls)
{
	hsts_on(NULL);
	over_transport("TLSv1.2");
	respond_small(200, "text/plain", NULL, "ok\n", 3);
	ck_assert_ptr_null(strstr(out_str(), "Strict-Transport-Security"));
}
END_TEST

START_TEST(test_hsts_include_subdomains_is_the_configs_line)
{
	hsts_on("Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n");
	over_transport("TLSv1.3");
	respond_small(301, "text/plain", "Location: /x/\r\n", "moved\n", 6);
	const char *o = out_str();
	const char *h = strstr(o, "\r\nStrict-Transport-Security: max-age=63072000; includeSubDomains\r\n");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_null(strstr(h + 3, "Strict-Transport-Security")); /* once */
	hsts_on(NULL);
}
END_TEST

START_TEST(test_persist_keeps_an_http11_connection_without_a_header)
{
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert_ptr_null(strstr(out_str(), "Connection:"));
	ck_assert(!http_has(&hc, HC_CLOSE_AFTER));
}
END_TEST

START_TEST(test_persist_on_http10_keep_alive_says_keep_alive)
{
	hc.req.version_minor = 0;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert_ptr_nonnull(strstr(out_str(), "\r\nConnection: keep-alive\r\n"));
	ck_assert(!http_has(&hc, HC_CLOSE_AFTER));
}
END_TEST

START_TEST(test_client_asked_close_is_marked_requested)
{
	hc.req.keep_alive = false;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert_ptr_nonnull(strstr(out_str(), "\r\nConnection: close\r\n"));
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));
	ck_assert(http_has(&hc, HC_CLOSE_REQUESTED));
}
END_TEST

START_TEST(test_unparsed_request_closes_and_sends_the_body_even_after_head)
{
	http_set(&hc, HC_HEAD_ONLY); /* left over from a HEAD before */
	http_respond_error(&hc, 400, HTTP_UNPARSED | HTTP_CLOSE);
	const char *o = out_str();
	ck_assert_ptr_nonnull(strstr(o, "\r\nConnection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(o, "\r\n\r\n400 Bad Request\n"));
	ck_assert(!http_has(&hc, HC_CLOSE_REQUESTED));
}
END_TEST

START_TEST(test_head_gets_the_length_of_the_body_without_it)
{
	http_set(&hc, HC_HEAD_ONLY);
	respond_small(200, "text/plain", NULL, "hello", 5);
	const char *o = out_str();
	ck_assert_ptr_nonnull(strstr(o, "\r\nContent-Length: 5\r\n"));
	size_t n = strlen(o);
	ck_assert_str_eq(o + n - 4, "\r\n\r\n");
}
END_TEST

START_TEST(test_draining_closes_after_the_requests_that_had_arrived)
{
	draining = true;
	/* Not yet marked (the drain began before this connection read). */
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));

	/* Marked with 100 bytes in: a request whose head ends before byte 100
	 * and has bytes of another behind it keeps the connection. */
	conn_buf_consume(&hc.out, conn_buf_len(&hc.out));
	http_set(&hc, HC_DRAIN_MARKED);
	hc.session.drain_limit = 100;
	hc.session.rx_total = 100;
	memset(hc.in.data, 'x', 60);
	hc.in.end = 60;
	hc.req.head_len = 40; /* 20 bytes of the next request are buffered */
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert(!http_has(&hc, HC_CLOSE_AFTER));

	/* The last of them: nothing behind it, so the response says close. */
	conn_buf_consume(&hc.out, conn_buf_len(&hc.out));
	hc.req.head_len = 60;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));
}
END_TEST

START_TEST(test_keepalive_requests_limit_closes_the_last_response)
{
	http.keepalive_requests = 3;
	hc.session.responses = 1;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert(!http_has(&hc, HC_CLOSE_AFTER));
	conn_buf_consume(&hc.out, conn_buf_len(&hc.out));
	hc.session.responses = 2;
	http_respond_error(&hc, 404, HTTP_PERSIST);
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));
}
END_TEST

START_TEST(test_oversized_header_block_becomes_500_and_close)
{
	char big[5000];
	memset(big, 'a', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	respond_small(200, "text/plain", big, "x", 1);
	const char *o = out_str();
	ck_assert_ptr_eq(strstr(o, "HTTP/1.1 500 "), o);
	ck_assert_ptr_null(strstr(o, "aaaa"));
	ck_assert(http_has(&hc, HC_CLOSE_AFTER));
	ck_assert_int_eq(hc.status, 500);
}
END_TEST

START_TEST(test_path_encode_round_trips_through_normalize)
{
	static const char *const paths[] = {
		"/", "/a b/", "/caf\xc3\xa9.html", "/50%", "/q?x#y", "/a:b/c@d", "/~user/-._!$&'()*+,;=",
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char enc[256], back[256];
		ck_assert(http_path_encode(paths[i], enc, sizeof(enc)));
		ck_assert_ptr_null(strpbrk(enc, " ?#\x80"));
		ck_assert_int_eq(http_path_normalize(enc, strlen(enc), back, sizeof(back)), 0);
		ck_assert_str_eq(back, paths[i]);
	}
	char tiny[4];
	ck_assert(!http_path_encode("/abcd", tiny, sizeof(tiny)));
	ck_assert(!http_path_encode("/\xff", tiny, sizeof(tiny)));
}
END_TEST

START_TEST(test_u64_dec_writes_every_length_in_decimal)
{
	static const struct {
		uint64_t v;
		const char *text;
	} cases[] = {
		{ 0, "0" }, { 7, "7" }, { 10, "10" }, { 99, "99" }, { 100, "100" }, { 1024, "1024" },
		{ 65536, "65536" }, { 1048576, "1048576" }, { 9999999999u, "9999999999" },
		{ UINT64_MAX, "18446744073709551615" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[21];
		size_t n = http_u64_dec(cases[i].v, out);
		out[n] = '\0';
		ck_assert_str_eq(out, cases[i].text);
	}
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("http_units");
	TCase *tc = tcase_create("response");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_error_with_http_close_says_connection_close);
	tcase_add_test(tc, test_persist_keeps_an_http11_connection_without_a_header);
	tcase_add_test(tc, test_persist_on_http10_keep_alive_says_keep_alive);
	tcase_add_test(tc, test_client_asked_close_is_marked_requested);
	tcase_add_test(tc, test_unparsed_request_closes_and_sends_the_body_even_after_head);
	tcase_add_test(tc, test_head_gets_the_length_of_the_body_without_it);
	tcase_add_test(tc, test_draining_closes_after_the_requests_that_had_arrived);
	tcase_add_test(tc, test_keepalive_requests_limit_closes_the_last_response);
	tcase_add_test(tc, test_oversized_header_block_becomes_500_and_close);
	tcase_add_test(tc, test_hsts_only_over_tls);
	tcase_add_test(tc, test_hsts_off_sends_nothing_over_tls);
	tcase_add_test(tc, test_hsts_include_subdomains_is_the_configs_line);
	suite_add_tcase(s, tc);
	TCase *tp = tcase_create("path");
	tcase_add_test(tp, test_path_encode_round_trips_through_normalize);
	tcase_add_test(tp, test_u64_dec_writes_every_length_in_decimal);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	int failed = h_run_suite(units_suite());
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
