/* test_http_parse: the strict request parser and body reader, as a table of
 * requests with the answer each must get, every one of them also fed in
 * every split, plus pipelining, interpreted fields and chunked bodies. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http/parse.h"

#include "harness.h"

/* The table states a refusal as -status. The parser returns -EBADMSG with
 * the status in the parser (or body reader); these say the same thing in
 * the table's terms, and check that a refusal is always -EBADMSG. */
static int parse_request(struct http_parser *p, const char *buf, size_t len,
			 const struct http_limits *lim, struct http_request *req)
{
	int r = http_parse_request(p, buf, len, lim, req);

	ck_assert_msg(r >= 0 || r == -EBADMSG, "http_parse_request returned %d", r);
	return r == -EBADMSG ? -p->status : r;
}

static int body_consume(struct http_body_reader *br, const char *buf, size_t len, size_t *used)
{
	int r = http_body_consume(br, buf, len, used);

	ck_assert_msg(r >= 0 || r == -EBADMSG, "http_body_consume returned %d", r);
	return r == -EBADMSG ? -br->status : r;
}

/* ------------------------------------------------------------ limits */

/* The table's default limits are small so that the limit cases stay short. */
static const struct http_limits lim_table = {
	.max_request_line = 100,
	.max_header_line = 100,
	.max_header_size = 1024,
	.max_headers = 10,
	.max_body_size = 1000,
};
/* For the head-size limit: lines may be long, the head may not. */
static const struct http_limits lim_size = {
	.max_request_line = 1000,
	.max_header_line = 1000,
	.max_header_size = 200,
	.max_headers = 10,
	.max_body_size = 1000,
};
/* Something like production. */
static const struct http_limits lim_big = {
	.max_request_line = 8192,
	.max_header_line = 8192,
	.max_header_size = 65536,
	.max_headers = 1000, /* capped at HTTP_MAX_HEADERS */
	.max_body_size = UINT64_MAX,
};

/* ------------------------------------------------------------ the table */

#define NEED 1 /* want: the parser must ask for more bytes */
#define OKAY 2 /* want: success, head_len = the whole input */

struct pcase {
	const char *raw;
	size_t len;
	int want;            /* OKAY, NEED, or -status */
	int method;          /* the rest only for OKAY */
	const char *path;
	const char *query;   /* NULL: no query (len 0) */
	int minor;
	int keep_alive;
	int body;
	uint64_t cl;
	const char *host;    /* NULL: not checked */
	const struct http_limits *lim; /* NULL: lim_table */
};

#define R(s) s, sizeof(s) - 1
#define OK(s, m, p, q, v, ka) { R(s), OKAY, HTTP_METHOD_##m, p, q, v, ka, HTTP_BODY_NONE, 0, NULL, NULL }
#define OKH(s, m, p, q, v, ka, h) { R(s), OKAY, HTTP_METHOD_##m, p, q, v, ka, HTTP_BODY_NONE, 0, h, NULL }
#define OKB(s, v, b, cl) { R(s), OKAY, HTTP_METHOD_POST, "/", NULL, v, (v) == 1, HTTP_BODY_##b, cl, NULL, NULL }
#define OKL(s, m, p, lim) { R(s), OKAY, HTTP_METHOD_##m, p, NULL, 1, 1, HTTP_BODY_NONE, 0, NULL, lim }
#define BAD(s, st) { R(s), -(st), 0, NULL, NULL, 0, 0, 0, 0, NULL, NULL }
#define BADL(s, st, lim) { R(s), -(st), 0, NULL, NULL, 0, 0, 0, 0, NULL, lim }
#define MORE(s) { R(s), NEED, 0, NULL, NULL, 0, 0, 0, 0, NULL, NULL }

#define RL "GET / HTTP/1.1\r\n"
#define H "Host: a\r\n"
#define G(hdrs) RL H hdrs "\r\n"          /* GET / with Host and more fields */
#define P(hdrs) "POST / HTTP/1.1\r\n" H hdrs "\r\n"
#define P10(hdrs) "POST / HTTP/1.0\r\n" hdrs "\r\n"

#define A10 "aaaaaaaaaa"
#define A50 A10 A10 A10 A10 A10
#define A86 A50 A10 A10 A10 "aaaaaa"
#define A87 A86 "a"
#define A97 A87 A10
#define A98 A97 "a"
#define A100 A50 A50
#define X9 "X: 1\r\nX: 2\r\nX: 3\r\nX: 4\r\nX: 5\r\nX: 6\r\nX: 7\r\nX: 8\r\nX: 9\r\n"

static const struct pcase cases[] = {
	/* --- valid requests, origin-form */
	OKH(RL H "\r\n", GET, "/", NULL, 1, 1, "a"),
	OKH("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", GET, "/index.html", NULL, 1, 1, "example.com"),
	OK("GET /a?b=c HTTP/1.1\r\n" H "\r\n", GET, "/a", "b=c", 1, 1),
	OK("GET /a? HTTP/1.1\r\n" H "\r\n", GET, "/a", "", 1, 1),
	OK("GET /a?b?c/d HTTP/1.1\r\n" H "\r\n", GET, "/a", "b?c/d", 1, 1),
	OK("GET /%20x%2F/../y HTTP/1.1\r\n" H "\r\n", GET, "/%20x%2F/../y", NULL, 1, 1),
	OK("GET /~user/!$&'()*+,;=:@-._ HTTP/1.1\r\n" H "\r\n", GET, "/~user/!$&'()*+,;=:@-._", NULL, 1, 1),
	OK("HEAD / HTTP/1.1\r\n" H "\r\n", HEAD, "/", NULL, 1, 1),
	OK("POST /form HTTP/1.1\r\n" H "\r\n", POST, "/form", NULL, 1, 1),
	OK("PUT /x HTTP/1.1\r\n" H "\r\n", PUT, "/x", NULL, 1, 1),
	OK("DELETE /x HTTP/1.1\r\n" H "\r\n", DELETE, "/x", NULL, 1, 1),
	OK("TRACE /x HTTP/1.1\r\n" H "\r\n", TRACE, "/x", NULL, 1, 1),
	OK("PATCH /x HTTP/1.1\r\n" H "\r\n", PATCH, "/x", NULL, 1, 1),
	OK("OPTIONS / HTTP/1.1\r\n" H "\r\n", OPTIONS, "/", NULL, 1, 1),
	OK("OPTIONS * HTTP/1.1\r\n" H "\r\n", OPTIONS, "*", NULL, 1, 1),
	/* unknown but valid tokens: OTHER, the caller answers 501 */
	OK("BREW /pot HTTP/1.1\r\n" H "\r\n", OTHER, "/pot", NULL, 1, 1),
	OK("get / HTTP/1.1\r\n" H "\r\n", OTHER, "/", NULL, 1, 1),
	OK("M-SEARCH / HTTP/1.1\r\n" H "\r\n", OTHER, "/", NULL, 1, 1),
	OK("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n" H "\r\n", OTHER, "/", NULL, 1, 1),
	OK("GETS / HTTP/1.1\r\n" H "\r\n", OTHER, "/", NULL, 1, 1),
	/* versions and Host */
	OKH("GET / HTTP/1.0\r\n\r\n", GET, "/", NULL, 0, 0, NULL),
	OKH("GET / HTTP/1.0\r\nHost: a\r\n\r\n", GET, "/", NULL, 0, 0, "a"),
	OKH(RL "HOST: Example.COM\r\n\r\n", GET, "/", NULL, 1, 1, "Example.COM"),
	OKH(RL "Host: a:8080\r\n\r\n", GET, "/", NULL, 1, 1, "a:8080"),
	OKH(RL "Host: [::1]:8080\r\n\r\n", GET, "/", NULL, 1, 1, "[::1]:8080"),
	OKH(RL "Host: 10.0.0.1\r\n\r\n", GET, "/", NULL, 1, 1, "10.0.0.1"),
	OKH(RL "Host:a\r\n\r\n", GET, "/", NULL, 1, 1, "a"),
	OKH(RL "Host: \t a \t \r\n\r\n", GET, "/", NULL, 1, 1, "a"),
	OKH(RL "Host:\r\n\r\n", GET, "/", NULL, 1, 1, ""),
	OKH(RL "X: 1\r\n" H "Y: 2\r\n\r\n", GET, "/", NULL, 1, 1, "a"),
	/* absolute-form: path and query from the target, the authority wins over Host */
	OKH("GET http://example.com/p?q HTTP/1.1\r\nHost: other\r\n\r\n", GET, "/p", "q", 1, 1, "example.com"),
	OKH("GET http://example.com HTTP/1.1\r\n" H "\r\n", GET, "/", NULL, 1, 1, "example.com"),
	OKH("GET HTTPS://h:8443/x/y HTTP/1.1\r\n" H "\r\n", GET, "/x/y", NULL, 1, 1, "h:8443"),
	OKH("GET http://h?x=1 HTTP/1.1\r\n" H "\r\n", GET, "/", "x=1", 1, 1, "h"),
	OKH("GET http://h/ HTTP/1.0\r\n\r\n", GET, "/", NULL, 0, 0, "h"),
	OKH("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", CONNECT, "", NULL, 1, 1, "h:443"),
	OKH("CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n", CONNECT, "", NULL, 1, 1, "x"),
	/* leading empty lines (RFC 9112 §2.2) */
	OK("\r\n" RL H "\r\n", GET, "/", NULL, 1, 1),
	OK("\r\n\r\n\r\n\r\n" RL H "\r\n", GET, "/", NULL, 1, 1),
	/* Connection */
	OK(G("Connection: close\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Connection: CLOSE\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Connection: keep-alive\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: Upgrade, close\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Connection: foo\r\nConnection: close\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Connection: ,, close ,,\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Connection:\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: closed\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: keep-alive, close\r\n"), GET, "/", NULL, 1, 0),
	OK("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", GET, "/", NULL, 0, 1),
	OK("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", GET, "/", NULL, 0, 1),
	OK("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", GET, "/", NULL, 0, 0),
	OK("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", GET, "/", NULL, 0, 0),
	OK("GET / HTTP/1.0\r\nConnection: close\r\n\r\n", GET, "/", NULL, 0, 0),
	OK("GET / HTTP/1.0\r\nConnection: te\r\n\r\n", GET, "/", NULL, 0, 0),
	/* field names are matched by length, then masked word compares: the
	 * case of letters only, every byte of the name, first and last */
	OK(G("CONNECTION: CLOSE\r\n"), GET, "/", NULL, 1, 0),
	OK(G("cOnNeCtIoN: cLoSe\r\n"), GET, "/", NULL, 1, 0),
	OK(G("Donnection: close\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connectiom: close\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connec-ion: close\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: clos\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: closf\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Connection: ~lose\r\n"), GET, "/", NULL, 1, 1),
	OK("GET / HTTP/1.0\r\nConnection: keep-alivf\r\n\r\n", GET, "/", NULL, 0, 0),
	OK("GET / HTTP/1.0\r\nConnection: keep_alive\r\n\r\n", GET, "/", NULL, 0, 0),
	OKB(P("CONTENT-LENGTH: 5\r\n"), 1, LENGTH, 5),
	OKB(P("content-length: 5\r\n"), 1, LENGTH, 5),
	OKB(P("Content_Length: 5\r\n"), 1, NONE, 0),
	OKB(P("Content-Lengti: 5\r\n"), 1, NONE, 0),
	OKB(P("Kontent-Length: 5\r\n"), 1, NONE, 0),
	OKB(P("Content-Lengthh: 5\r\n"), 1, NONE, 0),
	OKB(P("Transfer-Encodinf: chunked\r\n"), 1, NONE, 0),
	BAD(P("Transfer-Encoding: chunkee\r\n"), 400),
	BAD(P("Transfer-Encoding: CHUNKED\r\ntransfer-encoding: chunked\r\n"), 400),
	OKH(RL "hOsT: a\r\n\r\n", GET, "/", NULL, 1, 1, "a"),
	BAD(RL "Hosu: a\r\n\r\n", 400),
	BAD(RL "Gost: a\r\n\r\n", 400),
	BAD(RL "HOST: a\r\nhost: b\r\n\r\n", 400),
	OK(G("Expecu: something-else\r\n"), GET, "/", NULL, 1, 1),
	BAD(G("EXPECT: 100-continuf\r\n"), 417),
	/* a head that a pipelined byte-split might cut inside a long name */
	OK(G("User-Agent: x\r\nIf-Unmodified-Since: y\r\nIf-Modified-Since: z\r\n"
	     "If-None-Match: w\r\nAccept-Encoding: gzip\r\n"), GET, "/", NULL, 1, 1),
	/* other fields */
	OK(G("X-Empty:\r\n"), GET, "/", NULL, 1, 1),
	OK(G("X-Spaces:    \r\n"), GET, "/", NULL, 1, 1),
	OK(G("X:\ta\tb\t\r\n"), GET, "/", NULL, 1, 1),
	OK(G("X: caf\xc3\xa9 \xff\x80\r\n"), GET, "/", NULL, 1, 1),
	OK(G("!#$%&'*+-.^_`|~09azAZ: v\r\n"), GET, "/", NULL, 1, 1),
	OK(G("X: a:b \"c\" (d)\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Expect: 100-continue\r\n"), GET, "/", NULL, 1, 1),
	OK(G("Expect: 100-Continue\r\n"), GET, "/", NULL, 1, 1),
	OK("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", GET, "/", NULL, 0, 0),
	OK("GET / HTTP/1.0\r\nExpect: something-else\r\n\r\n", GET, "/", NULL, 0, 0),
	/* Content-Length */
	OKB(P("Content-Length: 5\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length: 0\r\n"), 1, NONE, 0),
	OKB(P("Content-Length: 5, 5\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length: 5,5\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length: 5 ,\t5\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length: 5\r\nContent-Length: 5\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length:  5 \r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length:\t5\t\r\n"), 1, LENGTH, 5),
	OKB(P("content-LENGTH: 7\r\n"), 1, LENGTH, 7),
	OKB(P("Content-Length: 00005\r\n"), 1, LENGTH, 5),
	OKB(P("Content-Length: 1000\r\n"), 1, LENGTH, 1000),
	OKB(P10("Content-Length: 3\r\n"), 0, LENGTH, 3),
	/* Transfer-Encoding */
	OKB(P("Transfer-Encoding: chunked\r\n"), 1, CHUNKED, 0),
	OKB(P("Transfer-Encoding: Chunked\r\n"), 1, CHUNKED, 0),
	OKB(P("Transfer-Encoding: CHUNKED\r\n"), 1, CHUNKED, 0),
	OKB(P("Transfer-Encoding: chunked \r\n"), 1, CHUNKED, 0),
	OKB(P("Transfer-Encoding:\tchunked\r\n"), 1, CHUNKED, 0),
	OKB(P("TRANSFER-ENCODING: chunked\r\n"), 1, CHUNKED, 0),
	/* limits: exactly at each limit */
	OKL("GET /" A86 " HTTP/1.1\r\n" H "\r\n", GET, "/" A86, NULL),
	OKL(G("X: " A97 "\r\n"), GET, "/", NULL),
	OKL(G(X9), GET, "/", NULL),
	OKL(RL H "X: " A100 A50 A10 "aaaaaaaa\r\n\r\n", GET, "/", &lim_size), /* 200 bytes */

	/* --- request line */
	BAD("GET  / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET / HTTP/1.1 \r\n" H "\r\n", 400),
	BAD("GET /  HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /a b HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\tHTTP/1.1\r\n" H "\r\n", 400),
	BAD(" GET / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\r\n" H "\r\n", 400),
	BAD("GET\r\n" H "\r\n", 400),
	BAD("/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("G(T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("G@T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GE\"T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET/ / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("G\x01T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("G\xc3\xa9T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("{GET} / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("G\0T / HTTP/1.1\r\n" H "\r\n", 400),
	/* targets */
	BAD("GET /#frag HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /a?b#c HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\x7f HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\x80 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\x01 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET /\0 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET * HTTP/1.1\r\n" H "\r\n", 400),
	BAD("HEAD * HTTP/1.1\r\n" H "\r\n", 400),
	BAD("OPTIONS ** HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET h:443 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET example.com HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET a/b HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT h HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT h: HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT :443 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT h:44x HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT u@h:443 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT http://h:443/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET ftp://h/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET http:/h/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET http:///x HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET http://u@h/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET http:// HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET 1http://h/ HTTP/1.1\r\n" H "\r\n", 400),
	/* versions */
	BAD("GET / HTTP/2.0\r\n" H "\r\n", 505),
	/* a higher minor version is HTTP/1.1 (RFC 9110 §2.5) */
	OK("GET / HTTP/1.2\r\n" H "\r\n", GET, "/", NULL, 1, 1),
	OK("GET / HTTP/1.9\r\n" H "\r\n", GET, "/", NULL, 1, 1),
	BAD("GET / HTTP/0.9\r\n" H "\r\n", 505),
	BAD("GET / HTTP/3.0\r\n" H "\r\n", 505),
	BAD("GET / HTTP/1\r\n" H "\r\n", 400),
	BAD("GET / http/1.1\r\n" H "\r\n", 400),
	BAD("GET / Http/1.1\r\n" H "\r\n", 400),
	BAD("GET / HTTP/1.1x\r\n" H "\r\n", 400),
	BAD("GET / HTTP/11\r\n" H "\r\n", 400),
	BAD("GET / HTTP/1.a\r\n" H "\r\n", 400),
	BAD("GET / HTTP/10.0\r\n" H "\r\n", 400),
	BAD("GET / HTTP/1,1\r\n" H "\r\n", 400),
	BAD("GET / HTTPS/1.1\r\n" H "\r\n", 400),
	BAD("GET / HTTP /1.1\r\n" H "\r\n", 400),
	BAD("GET / \r\n" H "\r\n", 400),
	/* --- line endings */
	BAD("GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
	BAD("GET /\r HTTP/1.1\r\n" H "\r\n", 400),
	BAD("\rGET / HTTP/1.1\r\n" H "\r\n", 400),
	BAD(RL "Host: a\rb\r\n\r\n", 400),
	BAD(RL "Host: a\r\r\n\r\n", 400),
	BAD(RL H "X: 1\r\r\n\r\n", 400),
	BAD(RL H "\r\r\n", 400),
	BAD(RL H "\rX: 1\r\n\r\n", 400),
	BAD("\r\r\n" RL H "\r\n", 400),
	BAD("GET / HTTP/1.1\nHost: a\n\n", 400),
	BAD("GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
	BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
	BAD("\nGET / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("GET / HTTP/1.1\n" H "\r\n", 400),
	BAD(RL "X: a\nb\r\n" H "\r\n", 400),
	BAD("\r\n\r\n\r\n\r\n\r\n" RL H "\r\n", 400), /* five empty lines */
	/* --- field lines */
	BAD(RL "Host : a\r\n\r\n", 400),
	BAD(RL "Host\t: a\r\n\r\n", 400),
	BAD(RL H "Content-Length : 5\r\n\r\n", 400),
	BAD(RL H "Transfer-Encoding : chunked\r\n\r\n", 400),
	BAD(RL H ": a\r\n\r\n", 400),
	BAD(RL H ":\r\n\r\n", 400),
	BAD(RL H "Ho st: a\r\n\r\n", 400),
	BAD(RL H "NoColon\r\n\r\n", 400),
	BAD(RL H "X\x01: a\r\n\r\n", 400),
	BAD(RL H "X\0Y: a\r\n\r\n", 400),
	BAD(RL H "X\xc3\xa9: a\r\n\r\n", 400),
	BAD(RL H "X(: a\r\n\r\n", 400),
	BAD(RL H "X: a\0b\r\n\r\n", 400),
	BAD(RL H "X: \0\r\n\r\n", 400),
	BAD(RL H "X: a\x01" "b\r\n\r\n", 400),
	BAD(RL H "X: a\x1f\r\n\r\n", 400),
	BAD(RL H "X: a\x7f\r\n\r\n", 400),
	BAD(RL H "X: a\x0b\r\n\r\n", 400),
	BAD(RL H "X: a\x0c\r\n\r\n", 400),
	/* obs-fold, and whitespace after the start-line */
	BAD(RL H "X: a\r\n b\r\n\r\n", 400),
	BAD(RL H "X: a\r\n\tb\r\n\r\n", 400),
	BAD(RL " Host: a\r\n\r\n", 400),
	BAD(RL "\tHost: a\r\n\r\n", 400),
	BAD(RL H " \r\n\r\n", 400),
	/* --- Host */
	BAD("GET / HTTP/1.1\r\n\r\n", 400),
	BAD(RL "X: a\r\n\r\n", 400),
	BAD(RL H H "\r\n", 400),
	BAD(RL "Host: a\r\nHost: b\r\n\r\n", 400),
	BAD(RL "Host: a\r\nhost: a\r\n\r\n", 400),
	BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),
	BAD(RL "Host: a b\r\n\r\n", 400),
	BAD(RL "Host: a/b\r\n\r\n", 400),
	BAD(RL "Host: u@a\r\n\r\n", 400),
	BAD(RL "Host: a\tb\r\n\r\n", 400),
	BAD(RL "Host: caf\xc3\xa9\r\n\r\n", 400),
	BAD("GET http://h/ HTTP/1.1\r\n\r\n", 400), /* absolute-form still needs Host */
	/* --- Content-Length */
	BAD(P("Content-Length: 5\r\nContent-Length: 6\r\n"), 400),
	BAD(P("Content-Length: 1,2\r\n"), 400),
	BAD(P("Content-Length: 5, 5, 6\r\n"), 400),
	BAD(P("Content-Length: 5, 5\r\nContent-Length: 6\r\n"), 400),
	BAD(P("Content-Length: +5\r\n"), 400),
	BAD(P("Content-Length: -1\r\n"), 400),
	BAD(P("Content-Length: 0x5\r\n"), 400),
	BAD(P("Content-Length: 5a\r\n"), 400),
	BAD(P("Content-Length: 5.0\r\n"), 400),
	BAD(P("Content-Length: 1 2\r\n"), 400),
	BAD(P("Content-Length:\r\n"), 400),
	BAD(P("Content-Length: 5,\r\n"), 400),
	BAD(P("Content-Length: ,5\r\n"), 400),
	BAD(P("Content-Length: 5,,5\r\n"), 400),
	BAD(P("Content-Length: \"5\"\r\n"), 400),
	BAD(P("Content-Length: 9223372036854775808\r\n"), 400),
	BAD(P("Content-Length: 18446744073709551616\r\n"), 400),
	BAD(P("Content-Length: 99999999999999999999999\r\n"), 400),
	BAD(P("Content-Length: 9223372036854775807\r\n"), 413),
	BAD(P("Content-Length: 1001\r\n"), 413),
	/* --- Transfer-Encoding (and request smuggling) */
	BAD(P("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 400),
	BAD(P("Transfer-Encoding: xchunked\r\n"), 400),
	BAD(P("Transfer-Encoding: chunkedx\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked, identity\r\n"), 400),
	BAD(P("Transfer-Encoding: identity, chunked\r\n"), 400),
	BAD(P("Transfer-Encoding: gzip, chunked\r\n"), 400),
	BAD(P("Transfer-Encoding: gzip\r\n"), 400),
	BAD(P("Transfer-Encoding: identity\r\n"), 400),
	BAD(P("Transfer-Encoding:\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked, chunked\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked;q=1\r\n"), 400),
	BAD(P("Transfer-Encoding: \"chunked\"\r\n"), 400),
	BAD(P("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400),
	BAD(P("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 400),
	BAD(P10("Transfer-Encoding: chunked\r\n"), 400),
	BAD(P10("Host: a\r\nTransfer-Encoding: chunked\r\n"), 400),
	/* --- Expect */
	BAD(G("Expect: something-else\r\n"), 417),
	BAD(G("Expect: 100-continue, foo\r\n"), 417),
	BAD(G("Expect:\r\n"), 417),
	/* --- Connection list syntax */
	BAD(G("Connection: close;x\r\n"), 400),
	BAD(G("Connection: close close\r\n"), 400),
	/* --- limits */
	BADL("GET /" A87 " HTTP/1.1\r\n" H "\r\n", 414, NULL),   /* 101 bytes */
	BADL("GET /" A100 A100, 414, NULL),                      /* no CRLF yet */
	MORE("GET /" A86 " HTTP/1.1\r"),                        /* at the limit, LF to come */
	BADL(G("X: " A98 "\r\n"), 431, NULL),                    /* 101 bytes */
	BADL(RL H "X: " A100, 431, NULL),                         /* no CRLF yet */
	BADL(G(X9 "X: 10\r\n"), 431, NULL),                      /* 11 fields */
	BADL(RL H X9 "X: 10\r\n", 431, NULL),                    /* 11th field, head unfinished */
	BADL(RL H "X: " A100 A50 A10 "aaaaaaaaa\r\n\r\n", 431, &lim_size), /* 201 bytes */
	BADL(RL H "X: " A100 A100, 431, &lim_size),              /* unfinished */
	/* --- unfinished heads */
	MORE(""),
	MORE("G"),
	MORE("GET / HTTP/1.1"),
	MORE("GET / HTTP/1.1\r"),
	MORE(RL),
	MORE(RL H),
	MORE(RL H "\r"),
	MORE("\r\n"),
	MORE("\r\n\r\n\r\n\r\n"),
	MORE(RL "X: a\r\n"),
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static const struct http_limits *case_lim(const struct pcase *c)
{
	return c->lim ? c->lim : &lim_table;
}

/* The expected return value of http_parse_request for the whole input. */
static int case_result(const struct pcase *c)
{
	if (c->want == OKAY)
		return (int)c->len;
	if (c->want == NEED)
		return 0;
	return c->want;
}

static bool str_is(struct http_str s, const char *want)
{
	if (want == NULL || s.len == 0)
		return s.len == (want ? strlen(want) : 0);
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* Every slice of req lies inside buf[0, head_len). */
static void assert_inside(const char *buf, const struct http_request *req)
{
	const struct http_str *all[] = {
		&req->method_str, &req->target, &req->path, &req->query, &req->host,
		&req->if_none_match, &req->if_modified_since, &req->range, &req->if_range,
		&req->user_agent, &req->referer,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const struct http_str *s = all[i];
		if (s->p == NULL)
			continue;
		ck_assert(s->p >= buf && s->p + s->len <= buf + req->head_len);
	}
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		ck_assert(h->name.p >= buf && h->name.p + h->name.len <= buf + req->head_len);
		ck_assert(h->value.p >= buf && h->value.p + h->value.len <= buf + req->head_len);
	}
}

static void assert_case_fields(const struct pcase *c, const char *buf, const struct http_request *req)
{
	ck_assert_uint_eq(req->head_len, c->len);
	ck_assert_int_eq(req->method, c->method);
	ck_assert_msg(str_is(req->path, c->path), "path %.*s", (int)req->path.len, req->path.p);
	ck_assert_msg(str_is(req->query, c->query), "query %.*s", (int)req->query.len, req->query.p);
	ck_assert_uint_eq(req->version_minor, (unsigned)c->minor);
	ck_assert_int_eq(req->keep_alive, c->keep_alive);
	ck_assert_int_eq(req->body, c->body);
	ck_assert_uint_eq(req->content_length, c->cl);
	if (c->host)
		ck_assert_msg(str_is(req->host, c->host), "host %.*s", (int)req->host.len, req->host.p);
	ck_assert(str_is(req->method_str, http_method_name(req->method)) || req->method == HTTP_METHOD_OTHER);
	assert_inside(buf, req);
}

/* A copy of raw[0, n) in a buffer of exactly n bytes, so that ASan catches
 * a read past len. */
static char *dup_prefix(const char *raw, size_t n)
{
	char *b = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, raw, n);
	return b;
}

static struct http_request req_buf; /* large: keep it off the stack */

/* Feed raw in every way: whole; one byte more per call on one parser; every
 * two-piece split; every prefix on a fresh parser. The answer must never
 * come early (an error may: the same error, at the byte that proves it). */
static void check_splits(const struct pcase *c)
{
	const struct http_limits *lim = case_lim(c);
	int want = case_result(c);
	struct http_parser p;
	int r;

	/* one byte more per call */
	http_parser_init(&p);
	r = 0;
	size_t n;
	for (n = c->len == 0 ? 0 : 1; n <= c->len; n++) {
		char *b = dup_prefix(c->raw, n);
		r = parse_request(&p, b, n, lim, &req_buf);
		if (r > 0)
			assert_case_fields(c, b, &req_buf);
		free(b);
		if (r != 0)
			break;
	}
	ck_assert_msg(r == want, "bytewise: got %d want %d at %zu", r, want, n);
	if (want > 0)
		ck_assert_uint_eq(n, c->len);
	if (r < 0) {
		/* errors are sticky */
		ck_assert_int_eq(parse_request(&p, c->raw, c->len, lim, &req_buf), want);
	}

	/* two pieces */
	for (size_t k = 1; k < c->len; k++) {
		char *b = dup_prefix(c->raw, k);
		http_parser_init(&p);
		r = parse_request(&p, b, k, lim, &req_buf);
		free(b);
		ck_assert_msg(r == 0 || (want < 0 && r == want), "split %zu: first %d want %d", k, r, want);
		b = dup_prefix(c->raw, c->len);
		r = parse_request(&p, b, c->len, lim, &req_buf);
		if (r > 0)
			assert_case_fields(c, b, &req_buf);
		free(b);
		ck_assert_msg(r == want, "split %zu: got %d want %d", k, r, want);
	}

	/* every prefix, fresh parser */
	for (size_t k = 0; k < c->len; k++) {
		char *b = dup_prefix(c->raw, k);
		http_parser_init(&p);
		r = parse_request(&p, b, k, lim, &req_buf);
		free(b);
		ck_assert_msg(r == 0 || (want < 0 && r == want), "prefix %zu: %d want %d", k, r, want);
	}
}

START_TEST(test_table_whole)
{
	const struct pcase *c = &cases[_i];
	struct http_parser p;
	char *b = dup_prefix(c->raw, c->len);

	http_parser_init(&p);
	int r = parse_request(&p, b, c->len, case_lim(c), &req_buf);
	ck_assert_msg(r == case_result(c), "case %d: got %d want %d", _i, r, case_result(c));
	if (r > 0) {
		assert_case_fields(c, b, &req_buf);
		/* asked again: the same answer */
		ck_assert_int_eq(parse_request(&p, b, c->len, case_lim(c), &req_buf), r);
		assert_case_fields(c, b, &req_buf);
	}
	free(b);
}
END_TEST

START_TEST(test_table_splits)
{
	check_splits(&cases[_i]);
}
END_TEST

/* ------------------------------------------------------------ heads: the rest */

static int parse_once(const char *raw, size_t len, const struct http_limits *lim, struct http_request *req)
{
	struct http_parser p;
	http_parser_init(&p);
	return parse_request(&p, raw, len, lim, req);
}

START_TEST(test_request_line_limit_boundary)
{
	/* With the CR of the CRLF arriving late, a request line of exactly the
	 * limit must still wait, and one byte more is 414 at once. */
	static const char ok[] = "GET /" A86 " HTTP/1.1\r";
	static const char over[] = "GET /" A87 " HTTP/1.1";
	ck_assert_int_eq(parse_once(ok, sizeof(ok) - 1, &lim_table, &req_buf), 0);
	ck_assert_int_eq(parse_once(ok, sizeof(ok) - 2, &lim_table, &req_buf), 0);
	ck_assert_int_eq(parse_once(over, sizeof(over) - 1, &lim_table, &req_buf), -414);
	ck_assert_int_eq(parse_once(over, sizeof(over) - 2, &lim_table, &req_buf), 0);
}
END_TEST

START_TEST(test_max_headers_capped)
{
	/* The configured count is capped at HTTP_MAX_HEADERS. */
	static char buf[16384];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: %d\r\n", i, i);
	size_t at_limit = n;
	memcpy(buf + n, "\r\n", 2);
	ck_assert_int_eq(parse_once(buf, n + 2, &lim_big, &req_buf), (int)(n + 2));
	ck_assert_uint_eq(req_buf.n_headers, HTTP_MAX_HEADERS);
	n = at_limit + (size_t)snprintf(buf + at_limit, sizeof(buf) - at_limit, "X-last: 1\r\n\r\n");
	ck_assert_int_eq(parse_once(buf, n, &lim_big, &req_buf), -431);
}
END_TEST

START_TEST(test_interpreted_fields)
{
	static const char raw[] =
		"GET /f HTTP/1.1\r\n"
		"User-Agent: curl/8.0\r\n"
		"host: h.example\r\n"
		"If-None-Match: \"abc\", W/\"def\"\r\n"
		"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Range: bytes=0-99\r\n"
		"Range: bytes=5-6\r\n"
		"If-Range: \"abc\"\r\n"
		"Referer: http://x/y\r\n"
		"User-Agent: second\r\n"
		"Expect: 100-continue\r\n"
		"\r\n";
	ck_assert_int_eq(parse_once(raw, sizeof(raw) - 1, &lim_big, &req_buf), (int)sizeof(raw) - 1);
	ck_assert(str_is(req_buf.host, "h.example"));
	ck_assert(str_is(req_buf.user_agent, "curl/8.0"));
	ck_assert(str_is(req_buf.if_none_match, "\"abc\", W/\"def\""));
	ck_assert(str_is(req_buf.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT"));
	ck_assert(str_is(req_buf.range, "bytes=0-99"));
	ck_assert(str_is(req_buf.if_range, "\"abc\""));
	ck_assert(str_is(req_buf.referer, "http://x/y"));
	ck_assert(req_buf.expect_continue);
	ck_assert_uint_eq(req_buf.n_headers, 10);
	ck_assert(str_is(req_buf.headers[0].name, "User-Agent"));
	ck_assert(str_is(req_buf.headers[9].value, "100-continue"));
	ck_assert(str_is(req_buf.method_str, "GET"));
	ck_assert(str_is(req_buf.target, "/f"));

	static const char bare[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	ck_assert_int_eq(parse_once(bare, sizeof(bare) - 1, &lim_big, &req_buf), (int)sizeof(bare) - 1);
	ck_assert_ptr_null(req_buf.user_agent.p);
	ck_assert_uint_eq(req_buf.range.len, 0);
	ck_assert(!req_buf.expect_continue);
	ck_assert_uint_eq(req_buf.n_headers, 1);
}
END_TEST

START_TEST(test_pipelined)
{
	static const char raw[] =
		"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
		"HEAD /two?x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
		"POST /three HTTP/1.1\r\nHost: c\r\nContent-Length: 5\r\n\r\nhello"
		"POST /four HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"
		"\r\nGET /five HTTP/1.0\r\n\r\nGET /six";
	const char *at = raw;
	size_t left = sizeof(raw) - 1;
	const char *paths[] = { "/one", "/two", "/three", "/four", "/five" };
	struct http_parser p;

	for (size_t i = 0; i < 5; i++) {
		http_parser_init(&p);
		/* first a piece, then all that is left */
		ck_assert_int_eq(parse_request(&p, at, 3, &lim_big, &req_buf), 0);
		int r = parse_request(&p, at, left, &lim_big, &req_buf);
		ck_assert_int_gt(r, 0);
		ck_assert(str_is(req_buf.path, paths[i]));
		at += r;
		left -= (size_t)r;
		struct http_body_reader br;
		size_t used;
		http_body_init(&br, &req_buf, 1000);
		ck_assert_int_eq(body_consume(&br, at, left, &used), 1);
		at += used;
		left -= used;
		if (i == 1)
			ck_assert(!req_buf.keep_alive && str_is(req_buf.query, "x"));
	}
	ck_assert_uint_eq(left, 8);
	http_parser_init(&p);
	ck_assert_int_eq(parse_request(&p, at, left, &lim_big, &req_buf), 0);
}
END_TEST

START_TEST(test_parser_reuse)
{
	/* A parser whose scanned is past the new len starts over. */
	static const char a[] = "GET /aaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char b[] = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_parser p;
	http_parser_init(&p);
	ck_assert_int_eq(parse_request(&p, a, sizeof(a) - 1, &lim_big, &req_buf), (int)sizeof(a) - 1);
	p.scanned = 0;
	ck_assert_int_eq(parse_request(&p, b, sizeof(b) - 1, &lim_big, &req_buf), (int)sizeof(b) - 1);
	ck_assert(str_is(req_buf.path, "/b"));
}
END_TEST

START_TEST(test_str_and_names)
{
	struct http_str s = { "Keep-Alive", 10 };
	ck_assert(http_str_eq_ci(s, "keep-alive"));
	ck_assert(http_str_eq_ci(s, "KEEP-ALIVE"));
	ck_assert(!http_str_eq_ci(s, "keep-aliv"));
	ck_assert(!http_str_eq_ci(s, "keep-alivee"));
	ck_assert(http_str_eq_ci((struct http_str){ "", 0 }, ""));
	ck_assert(!http_str_eq_ci((struct http_str){ "[", 1 }, "{"));
	ck_assert_str_eq(http_method_name(HTTP_METHOD_GET), "GET");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_HEAD), "HEAD");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_POST), "POST");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_PUT), "PUT");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_DELETE), "DELETE");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_OPTIONS), "OPTIONS");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_TRACE), "TRACE");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_CONNECT), "CONNECT");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_PATCH), "PATCH");
	ck_assert_str_eq(http_method_name(HTTP_METHOD_OTHER), "OTHER");
	ck_assert_str_eq(http_method_name((enum http_method)99), "OTHER");
}
END_TEST

/* ------------------------------------------------------------ bodies */

struct bcase {
	const char *raw;
	size_t len;
	int want;        /* 1, 0, -400, -413 */
	size_t used;     /* total bytes used when want == 1 */
	uint64_t max;
};

#define BOK(s, tail) { R(s tail), 1, sizeof(s) - 1, 1000 }
#define BERR(s, st) { R(s), -(st), 0, 1000 }
#define BMORE(s) { R(s), 0, sizeof(s) - 1, 1000 }
#define BMAX(s, st, max) { R(s), -(st), 0, max }

#define K64 "0000000000000000000000000000000000000000000000000000000000000000"
#define K1024 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64 K64
#define TRL "X-Long: " K1024 K1024 K1024 "\r\n" /* 3082 bytes */

static const struct bcase bcases[] = {
	BOK("0\r\n\r\n", ""),
	BOK("0\r\n\r\n", "GET / HTTP/1.1\r\n"),
	BOK("5\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "next"),
	BOK("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", ""),
	BOK("0005\r\nhello\r\n000\r\n\r\n", ""),
	BOK("5;a=b\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5;a\r\nhello\r\n0;last\r\n\r\n", ""),
	BOK("5;a;b=c;d=\"e f\"\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5;a=\"q\\\"x\\\\\"\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5;a=\"\"\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5;!#$%&'*+-.^_`|~=tok\r\nhello\r\n0\r\n\r\n", ""),
	BOK("5\r\nhe\r\nl\r\n0\r\n\r\n", ""),          /* data may hold CRLF */
	BOK("0\r\nX: y\r\n\r\n", ""),
	BOK("0\r\nX: y\r\nZ:\r\nW:\tv a\xff\r\n\r\n", "extra"),
	BMORE("3e8\r\n" K64),
	BOK("0\r\n" TRL TRL TRL TRL TRL "\r\n", ""),   /* 15 KiB of trailers */
	BERR("0\r\n" TRL TRL TRL TRL TRL TRL "\r\n", 413),
	BMORE("5\r\nhel"),
	BMORE("5\r\nhello\r\n"),
	BMORE("5\r\nhello\r\n0\r\n"),
	BMORE("5\r\nhello\r\n0\r\nX: y\r\n"),
	BMORE("5"),
	BMORE("5;a=\"x"),
	/* chunk sizes */
	BERR("\r\n", 400),
	BERR(";x\r\n", 400),
	BERR("g\r\n", 400),
	BERR("-1\r\n", 400),
	BERR("+5\r\n", 400),
	BERR("0x5\r\n", 400),
	BERR(" 5\r\n", 400),
	BERR("5 \r\n", 400),
	BERR("5 ;x\r\n", 400),
	BERR("5\t;x\r\n", 400),
	BERR("5; x\r\n", 400),
	BERR("5;x =y\r\n", 400),
	BERR("5;x= y\r\n", 400),
	BERR("5;\r\n", 400),
	BERR("5;=y\r\n", 400),
	BERR("5;x=\r\n", 400),
	BERR("5;x=\"y\r\n", 400),
	BERR("5;x=\"y\"z\r\n", 400),
	BERR("5;x=y=z\r\n", 400),
	BERR("5;x=\"\x01\"\r\n", 400),
	BERR("10000000000000000\r\n", 400),           /* 17 digits */
	BERR("00000000000000005\r\n", 400),           /* 17 digits, small value */
	BERR("ffffffffffffffffff\r\n", 400),
	BERR("5\nhello\r\n0\r\n\r\n", 400),           /* bare LF */
	BERR("5\rhello\r\n0\r\n\r\n", 400),           /* bare CR */
	BERR("5\r\r\nhello\r\n", 400),
	/* after the data */
	BERR("5\r\nhelloX\r\n0\r\n\r\n", 400),
	BERR("5\r\nhello\n0\r\n\r\n", 400),
	BERR("5\r\nhello\r0\r\n\r\n", 400),
	BERR("5\r\nhello0\r\n\r\n", 400),
	BERR("5\r\nhello\r\n\r\n", 400),
	/* trailers and the end */
	BERR("0\r\n\n", 400),
	BERR("0\r\n\rX", 400),
	BERR("0\r\n X: y\r\n\r\n", 400),
	BERR("0\r\nX y\r\n\r\n", 400),
	BERR("0\r\nX : y\r\n\r\n", 400),
	BERR("0\r\n: y\r\n\r\n", 400),
	BERR("0\r\nX: \x01\r\n\r\n", 400),
	BERR("0\r\nX: y\n\r\n", 400),
	BERR("0\r\nX: y\r\r\n", 400),
	BERR("0\r\nX: y\r\n\r\r", 400),
	/* sizes */
	BMAX("ffffffffffffffff\r\n", 413, UINT64_MAX - 1),
	BMAX("b\r\nhello world\r\n0\r\n\r\n", 413, 10),
	BMAX("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 413, 10),
	{ R("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), 1, 25, 10 },
	BERR("1;x=" K1024 K1024 K1024 K1024 "\r\n", 400),  /* line over 4096 */
};

#define N_BCASES (sizeof(bcases) / sizeof(bcases[0]))

static const struct http_request req_chunked = { .body = HTTP_BODY_CHUNKED };

/* Feed a body in pieces of the given sizes (cycled); 0 in sizes = all at once. */
static int body_feed(const struct bcase *c, const size_t *sizes, size_t n_sizes, size_t *used_total)
{
	struct http_body_reader br;
	size_t at = 0, k = 0;
	int r = 0;

	http_body_init(&br, &req_chunked, c->max);
	*used_total = 0;
	for (;;) {
		size_t piece = sizes[k++ % n_sizes];
		if (piece == 0 || piece > c->len - at)
			piece = c->len - at;
		char *b = dup_prefix(c->raw + at, piece);
		size_t used = 0;
		r = body_consume(&br, b, piece, &used);
		free(b);
		ck_assert_uint_le(used, piece);
		*used_total += used;
		if (r != 0)
			break;
		ck_assert_uint_eq(used, piece);
		at += piece;
		if (at == c->len)
			break;
	}
	return r;
}

START_TEST(test_body_table)
{
	const struct bcase *c = &bcases[_i];
	size_t whole = 0, used;
	const size_t all[] = { 0 };
	int r = body_feed(c, all, 1, &whole);

	ck_assert_msg(r == c->want, "body case %d: got %d want %d", _i, r, c->want);
	if (c->want == 1 || c->want == 0)
		ck_assert_uint_eq(whole, c->used);

	/* every byte alone, and a few uneven rhythms */
	const size_t one[] = { 1 };
	ck_assert_int_eq(body_feed(c, one, 1, &used), r);
	ck_assert_uint_eq(used, whole);
	const size_t rhythm[] = { 2, 3, 1, 7, 5 };
	ck_assert_int_eq(body_feed(c, rhythm, 5, &used), r);
	ck_assert_uint_eq(used, whole);
	/* every two-piece split */
	for (size_t k = 1; k < c->len; k++) {
		const size_t two[] = { k, 0 };
		ck_assert_int_eq(body_feed(c, two, 2, &used), r);
		ck_assert_uint_eq(used, whole);
	}
}
END_TEST

START_TEST(test_body_long_chunk)
{
	/* A 1000-byte chunk in any rhythm, and the reader done for good after. */
	static char raw[1100];
	size_t n = (size_t)snprintf(raw, sizeof(raw), "3e8\r\n");
	memset(raw + n, 'x', 1000);
	n += 1000;
	memcpy(raw + n, "\r\n0\r\n\r\n", 7);
	n += 7;
	struct bcase c = { raw, n, 1, n, 1000 };
	size_t used;
	const size_t sizes[] = { 1, 100, 999, 2 };
	ck_assert_int_eq(body_feed(&c, sizes, 4, &used), 1);
	ck_assert_uint_eq(used, n);
	c.max = 999;
	ck_assert_int_eq(body_feed(&c, sizes, 4, &used), -413);
	ck_assert_uint_eq(used, 4); /* stopped at the LF of the size line */

	struct http_body_reader br;
	http_body_init(&br, &req_chunked, 1000);
	ck_assert_int_eq(body_consume(&br, raw, n, &used), 1);
	ck_assert_int_eq(body_consume(&br, "junk", 4, &used), 1);
	ck_assert_uint_eq(used, 0);
	/* and an error stays */
	http_body_init(&br, &req_chunked, 1000);
	ck_assert_int_eq(body_consume(&br, "x", 1, &used), -400);
	ck_assert_int_eq(body_consume(&br, "0\r\n\r\n", 5, &used), -400);
}
END_TEST

START_TEST(test_body_chunk_extensions_are_bounded_in_total)
{
	/* Each chunk's extension is within the line limit, but together they
	 * exceed what one body may carry: data is tiny, framing is not free. */
	static char raw[64 * 1024];
	size_t n = 0;
	for (int i = 0; i < 10; i++) {
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, "1;");
		memset(raw + n, 'a', 2000);
		n += 2000;
		n += (size_t)snprintf(raw + n, sizeof(raw) - n, "\r\nX\r\n");
	}
	n += (size_t)snprintf(raw + n, sizeof(raw) - n, "0\r\n\r\n");
	struct http_body_reader br;
	size_t used;
	http_body_init(&br, &req_chunked, 1000);
	ck_assert_int_eq(body_consume(&br, raw, n, &used), -400);
	ck_assert_uint_lt(used, n);
	/* the same body with a few short extensions is fine */
	static const char ok[] = "1;a=b\r\nX\r\n1;c\r\nY\r\n0\r\n\r\n";
	http_body_init(&br, &req_chunked, 1000);
	ck_assert_int_eq(body_consume(&br, ok, sizeof(ok) - 1, &used), 1);
	ck_assert_uint_eq(used, sizeof(ok) - 1);
}
END_TEST

START_TEST(test_body_length)
{
	struct http_request req = { .body = HTTP_BODY_LENGTH, .content_length = 5 };
	struct http_body_reader br;
	size_t used;

	http_body_init(&br, &req, 1000);
	ck_assert_int_eq(body_consume(&br, "hel", 3, &used), 0);
	ck_assert_uint_eq(used, 3);
	ck_assert_int_eq(body_consume(&br, "", 0, &used), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(body_consume(&br, "loGET", 5, &used), 1);
	ck_assert_uint_eq(used, 2);
	ck_assert_uint_eq(br.total, 5);

	/* every byte split */
	static const char body[] = "0123456789abcdef";
	req.content_length = 16;
	for (size_t k = 1; k <= 16; k++) {
		size_t at = 0;
		int r = 0;
		http_body_init(&br, &req, 1000);
		while (r == 0) {
			size_t piece = k < sizeof(body) - 1 - at ? k : sizeof(body) - 1 - at;
			r = body_consume(&br, body + at, piece, &used);
			ck_assert_uint_eq(used, piece);
			at += used;
		}
		ck_assert_int_eq(r, 1);
		ck_assert_uint_eq(at, 16);
	}

	/* too large for this reader's max */
	http_body_init(&br, &req, 15);
	ck_assert_int_eq(body_consume(&br, body, 16, &used), -413);
	ck_assert_uint_eq(used, 0);

	/* no body */
	struct http_request none = { .body = HTTP_BODY_NONE };
	http_body_init(&br, &none, 0);
	ck_assert_int_eq(body_consume(&br, "GET", 3, &used), 1);
	ck_assert_uint_eq(used, 0);
	struct http_request zero = { .body = HTTP_BODY_LENGTH, .content_length = 0 };
	http_body_init(&br, &zero, 0);
	ck_assert_int_eq(body_consume(&br, "GET", 3, &used), 1);
	ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_head_then_chunked_body)
{
	/* A parsed head hands the reader its kind. */
	static const char raw[] =
		"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
	int r = parse_once(raw, sizeof(raw) - 1, &lim_big, &req_buf);
	ck_assert_int_gt(r, 0);
	ck_assert_int_eq(req_buf.body, HTTP_BODY_CHUNKED);
	struct http_body_reader br;
	size_t used;
	http_body_init(&br, &req_buf, 1000);
	ck_assert_int_eq(body_consume(&br, raw + r, sizeof(raw) - 1 - (size_t)r, &used), 1);
	ck_assert_uint_eq((size_t)r + used, sizeof(raw) - 1);
	ck_assert_uint_eq(br.total, 23);
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *http_parse_suite(void)
{
	Suite *s = suite_create("http_parse");
	TCase *tc = tcase_create("table");
	tcase_add_loop_test(tc, test_table_whole, 0, (int)N_CASES);
	tcase_add_loop_test(tc, test_table_splits, 0, (int)N_CASES);
	suite_add_tcase(s, tc);

	tc = tcase_create("head");
	tcase_add_test(tc, test_request_line_limit_boundary);
	tcase_add_test(tc, test_max_headers_capped);
	tcase_add_test(tc, test_interpreted_fields);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_parser_reuse);
	tcase_add_test(tc, test_str_and_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("body");
	tcase_add_loop_test(tc, test_body_table, 0, (int)N_BCASES);
	tcase_add_test(tc, test_body_long_chunk);
	tcase_add_test(tc, test_body_chunk_extensions_are_bounded_in_total);
	tcase_add_test(tc, test_body_length);
	tcase_add_test(tc, test_head_then_chunked_body);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int failed = h_run_suite(http_parse_suite());
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
