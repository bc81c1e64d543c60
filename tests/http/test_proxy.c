/* test_proxy: [listener NAME] proxy_protocol = yes against the real drover
 * binary. A connection starts with a PROXY protocol header (v1 text or v2
 * binary, whole or in pieces), and the client address it names is the one
 * the access log shows, over HTTP/1.1, HTTP/2 with prior knowledge, TLS
 * (the header before the ClientHello), echo, and after a reload hands the
 * connection to the next generation. A connection without a valid header,
 * or silent past header_timeout, is closed without an answer; v1 UNKNOWN
 * and v2 LOCAL keep the real peer; the key's errors name file, line, key
 * and what was expected. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "tls_harness.h"

/* ------------------------------------------------------------ fixture */

struct px {
	struct h_site s;
	char log[700]; /* the access log */
};

/* A site whose listener "web" reads a PROXY header first (h2c allowed),
 * header_timeout 2 s; extra: more sections after [http]. */
static void px_start(struct px *p, const char *extra)
{
	h_site_init(&p->s);
	h_path_join(p->log, sizeof p->log, p->s.tmp, "access.log");
	static const char *const files[] = { "a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt",
					     "g.txt", "h.txt", "h2.txt", "tls.txt", "k.txt" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		h_site_file(&p->s, files[i], "hello\n");
	char http[2048];
	snprintf(http, sizeof http, "access_log = %s\nheader_timeout = 2s\n\n%s",
		 p->log, extra ? extra : "");
	h_site_start(&p->s, &(struct h_site_opts){ .web = "proxy_protocol = yes\nhttp2 = yes\n", .http = http,
						   .server = "control_socket = @DIR@/control.sock\n" });
}

static void px_stop(struct px *p)
{
	h_site_stop(&p->s);
}

/* Whether the access log has a line that starts with addr + " - - [" and
 * holds what; waits for it. */
static bool px_logged(struct px *p, const char *addr, const char *what)
{
	char start[128];
	snprintf(start, sizeof start, "%s - - [", addr);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	do {
		char *text = h_slurp(p->log, NULL);
		bool found = false;
		for (char *line = text, *next; line && *line && !found; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			found = strncmp(line, start, strlen(start)) == 0 && strstr(line, what);
			if (!next)
				break;
		}
		free(text);
		if (found)
			return true;
		h_pause_ms(10);
	} while (h_left_ms(deadline) > 0);
	return false;
}

static const char *px_log_text(struct px *p)
{
	static char buf[8192];
	char *text = h_slurp(p->log, NULL);
	snprintf(buf, sizeof buf, "%s", text ? text : "(none)");
	free(text);
	return buf;
}

static int px_connect(struct px *p)
{
	int fd = h_connect_tcp(p->s.port);
	ck_assert(fd >= 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* each write its own segment */
	return fd;
}

/* Send the pieces with a pause between them (NULL-terminated, each with
 * its length; a length of 0 means strlen). */
static void px_send(int fd, const void *const *parts, const size_t *lens)
{
	for (size_t i = 0; parts[i]; i++) {
		if (i)
			h_pause_ms(60);
		h_write_all(fd, parts[i], lens && lens[i] ? lens[i] : strlen(parts[i]));
	}
}

static void px_expect_hello(int fd)
{
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello\n");
	h_http_response_free(&r);
}

/* The connection ends with no byte of an answer (EOF or a reset). */
static void px_expect_closed(int fd)
{
	char buf[256];
	int64_t t0 = h_now_ms();
	ssize_t n = h_read_all(fd, buf, sizeof buf);
	ck_assert_msg(n <= 0, "an answer came: %s", buf);
	/* -1 is a reset, or a wait that ran out: not the latter. */
	ck_assert_msg(h_now_ms() - t0 < H_WAIT_MS / 2, "the connection stayed open");
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

/* A v2 header: PROXY over TCP (fam 0x11 or 0x21) or LOCAL (cmd 0x20). */
static size_t v2_header(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const char *src, const char *dst,
			unsigned sport, unsigned dport, size_t tlv_len)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	size_t alen = 0;
	uint8_t *a = out + 16;
	if (fam == 0x11 || fam == 0x21) {
		int af = fam == 0x11 ? AF_INET : AF_INET6;
		size_t al = fam == 0x11 ? 4 : 16;
		ck_assert(inet_pton(af, src, a) == 1);
		ck_assert(inet_pton(af, dst, a + al) == 1);
		a[2 * al] = (uint8_t)(sport >> 8);
		a[2 * al + 1] = (uint8_t)sport;
		a[2 * al + 2] = (uint8_t)(dport >> 8);
		a[2 * al + 3] = (uint8_t)dport;
		alen = 2 * al + 4;
	}
	if (tlv_len) { /* one PP2_TYPE_NOOP TLV of tlv_len bytes in all */
		ck_assert(tlv_len >= 3);
		a[alen] = 0x04;
		a[alen + 1] = (uint8_t)((tlv_len - 3) >> 8);
		a[alen + 2] = (uint8_t)(tlv_len - 3);
		memset(a + alen + 3, 'T', tlv_len - 3);
		alen += tlv_len;
	}
	out[14] = (uint8_t)(alen >> 8);
	out[15] = (uint8_t)alen;
	return 16 + alen;
}

/* ------------------------------------------------------------ tests */

START_TEST(v1_tcp4_and_tcp6_headers_give_the_client_address)
{
	struct px p;
	px_start(&p, NULL);
	int fd = px_connect(&p);
	h_write_all(fd, "PROXY TCP4 192.0.2.10 198.51.100.1 40000 80\r\n" GET("/a.txt"),
		    strlen("PROXY TCP4 192.0.2.10 198.51.100.1 40000 80\r\n" GET("/a.txt")));
	px_expect_hello(fd);
	close(fd);
	fd = px_connect(&p);
	h_write_all(fd, "PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n" GET("/b.txt"),
		    strlen("PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n" GET("/b.txt")));
	px_expect_hello(fd);
	close(fd);
	/* UNKNOWN: the real peer. */
	fd = px_connect(&p);
	h_write_all(fd, "PROXY UNKNOWN\r\n" GET("/c.txt"), strlen("PROXY UNKNOWN\r\n" GET("/c.txt")));
	px_expect_hello(fd);
	close(fd);
	ck_assert_msg(px_logged(&p, "192.0.2.10", "\"GET /a.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "2001:db8::7", "\"GET /b.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "127.0.0.1", "\"GET /c.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	px_stop(&p);
}
END_TEST

START_TEST(v2_headers_ipv4_ipv6_with_tlvs_and_local)
{
	struct px p;
	px_start(&p, NULL);
	uint8_t h[1024];
	size_t n = v2_header(h, 0x21, 0x11, "192.0.2.20", "198.51.100.1", 50000, 8080, 0);
	memcpy(h + n, GET("/d.txt"), strlen(GET("/d.txt")));
	int fd = px_connect(&p);
	h_write_all(fd, h, n + strlen(GET("/d.txt")));
	px_expect_hello(fd);
	close(fd);
	/* IPv6 with 600 bytes of TLVs: read and dropped, not served as HTTP. */
	n = v2_header(h, 0x21, 0x21, "2001:db8::20", "2001:db8::1", 50001, 443, 600);
	memcpy(h + n, GET("/e.txt"), strlen(GET("/e.txt")));
	fd = px_connect(&p);
	h_write_all(fd, h, n + strlen(GET("/e.txt")));
	px_expect_hello(fd);
	close(fd);
	/* LOCAL (a balancer's health check): the real peer. */
	n = v2_header(h, 0x20, 0x00, NULL, NULL, 0, 0, 0);
	memcpy(h + n, GET("/f.txt"), strlen(GET("/f.txt")));
	fd = px_connect(&p);
	h_write_all(fd, h, n + strlen(GET("/f.txt")));
	px_expect_hello(fd);
	close(fd);
	ck_assert_msg(px_logged(&p, "192.0.2.20", "\"GET /d.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "2001:db8::20", "\"GET /e.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "127.0.0.1", "\"GET /f.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	px_stop(&p);
}
END_TEST

/* The header in pieces (and the request in its own write): nothing of
 * the request is lost, nothing of the header is served. */
START_TEST(a_header_split_across_writes)
{
	struct px p;
	px_start(&p, NULL);
	int fd = px_connect(&p);
	px_send(fd, (const void *const[]){ "PRO", "XY TCP4 192.0.2.30 ", "198.51.100.1 1234 80\r", "\n",
					   GET("/g.txt"), NULL }, NULL);
	px_expect_hello(fd);
	close(fd);
	uint8_t h[1024];
	size_t n = v2_header(h, 0x21, 0x11, "192.0.2.31", "198.51.100.1", 1, 2, 300);
	fd = px_connect(&p);
	/* 5 bytes, up to the length, into the addresses, the TLVs' middle,
	 * the rest with the request's start. */
	char rest[2048];
	memcpy(rest, h + 200, n - 200);
	memcpy(rest + n - 200, "GET /h.txt HT", 13);
	px_send(fd, (const void *const[]){ h, h + 5, h + 16, h + 20, rest, "TP/1.1\r\nHost: x\r\n\r\n", NULL },
		(const size_t[]){ 5, 11, 4, 180, n - 200 + 13, 0 });
	px_expect_hello(fd);
	/* Keep-alive: the next request on the same connection. */
	h_write_all(fd, GET("/a.txt"), strlen(GET("/a.txt")));
	px_expect_hello(fd);
	close(fd);
	ck_assert_msg(px_logged(&p, "192.0.2.30", "\"GET /g.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "192.0.2.31", "\"GET /h.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	ck_assert_msg(px_logged(&p, "192.0.2.31", "\"GET /a.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	px_stop(&p);
}
END_TEST

START_TEST(no_or_a_bad_header_closes_the_connection)
{
	struct px p;
	px_start(&p, NULL);
	static const char *const bad[] = {
		GET("/a.txt"),                                               /* no header */
		"PROXY TCP4 192.0.2.1 198.51.100.1 99999 80\r\n" GET("/a.txt"), /* bad port */
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 80\r\n" GET("/a.txt"),
		"PROXY TCP4 192.0.2.1 198.51.100.1 1 80\n" GET("/a.txt"),        /* no CR */
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",               /* a ClientHello */
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int fd = px_connect(&p);
		h_write_all(fd, bad[i], strlen(bad[i]));
		px_expect_closed(fd);
		close(fd);
	}
	/* Binary: version 1 in a v2 header; a line of 107 bytes without CRLF. */
	uint8_t h[256];
	size_t n = v2_header(h, 0x11, 0x11, "192.0.2.1", "198.51.100.1", 1, 2, 0);
	int fd = px_connect(&p);
	h_write_all(fd, h, n);
	px_expect_closed(fd);
	close(fd);
	char line[200];
	memset(line, 'x', sizeof line);
	memcpy(line, "PROXY UNKNOWN ", 14);
	fd = px_connect(&p);
	h_write_all(fd, line, sizeof line);
	px_expect_closed(fd);
	close(fd);
	/* The worker serves on. */
	fd = px_connect(&p);
	h_write_all(fd, "PROXY UNKNOWN\r\n" GET("/a.txt"), strlen("PROXY UNKNOWN\r\n" GET("/a.txt")));
	px_expect_hello(fd);
	close(fd);
	px_stop(&p);
}
END_TEST

/* header_timeout (2 s here): a silent connection, and one whose header
 * stops half way, are closed then; not before. */
START_TEST(a_header_that_does_not_come_in_time_closes_the_connection)
{
	struct px p;
	px_start(&p, NULL);
	int64_t t0 = h_now_ms();
	int silent = px_connect(&p);
	int half = px_connect(&p);
	h_write_all(half, "PROXY TCP4 192.0.2.1 ", strlen("PROXY TCP4 192.0.2.1 "));
	px_expect_closed(silent);
	px_expect_closed(half);
	int64_t took = h_now_ms() - t0;
	ck_assert_msg(took >= 1800 && took < 8000, "closed after %lld ms (header_timeout = 2s)", (long long)took);
	close(silent);
	close(half);
	px_stop(&p);
}
END_TEST

/* HTTP/2 with prior knowledge (h2c) after a v1 header: the preface is the
 * protocol's first byte, as without a header. */
START_TEST(http2_prior_knowledge_after_a_header)
{
	struct px p;
	px_start(&p, NULL);
	static const char head[] = "PROXY TCP4 192.0.2.40 198.51.100.1 5 80\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const uint8_t frames[] = {
		/* SETTINGS, empty */
		0, 0, 0, 0x04, 0, 0, 0, 0, 0,
		/* HEADERS, END_STREAM | END_HEADERS, stream 1: GET http /h2.txt, authority x */
		0, 0, 14, 0x01, 0x05, 0, 0, 0, 1, 0x82, 0x86, 0x04, 7, '/', 'h', '2', '.', 't', 'x', 't', 0x01, 1,
		'x',
	};
	uint8_t req[sizeof head + sizeof frames];
	memcpy(req, head, sizeof head - 1);
	memcpy(req + sizeof head - 1, frames, sizeof frames);
	int fd = px_connect(&p);
	h_write_all(fd, req, sizeof head - 1 + sizeof frames);
	/* Frames until the HEADERS of stream 1: its block starts with
	 * :status 200 (static table index 8). */
	bool got = false;
	for (int i = 0; i < 16 && !got; i++) {
		uint8_t fh[9], payload[16384];
		ck_assert(h_read_exact(fd, fh, sizeof fh));
		size_t len = (size_t)fh[0] << 16 | (size_t)fh[1] << 8 | fh[2];
		ck_assert(len <= sizeof payload);
		ck_assert(len == 0 || h_read_exact(fd, payload, len));
		uint32_t stream = ((uint32_t)fh[5] << 24 | (uint32_t)fh[6] << 16 | (uint32_t)fh[7] << 8 | fh[8]) &
				  0x7fffffffu;
		if (fh[3] == 0x01 && stream == 1) {
			ck_assert_int_eq(payload[0], 0x88);
			got = true;
		}
	}
	ck_assert(got);
	close(fd);
	ck_assert_msg(px_logged(&p, "192.0.2.40", "\"GET /h2.txt HTTP/2.0\" 200"), "%s", px_log_text(&p));
	px_stop(&p);
}
END_TEST

/* A TLS listener with proxy_protocol: the header, then the handshake
 * (ALPN h2 as well). */
START_TEST(tls_after_a_header)
{
	char *certs = h_tmpdir();
	ck_assert(chmod(certs, 0755) == 0);
	h_tls_ca(certs, "ca");
	h_tls_cert(certs, "a", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "a.example", .sans = "DNS:a.example",
						    .serial = 0xA1, .ecdsa = true });
	int port = h_free_port();
	char extra[2048];
	snprintf(extra, sizeof extra,
		 "[listener tls]\naddress = 127.0.0.1:%d\nprotocol = http\ntls = yes\nproxy_protocol = yes\n\n"
		 "[certificate a]\ncertificate = %s/a.crt\nprivate_key = %s/a.key\n",
		 port, certs, certs);
	struct px p;
	px_start(&p, extra);
	uint8_t h[256];
	size_t n = v2_header(h, 0x21, 0x21, "2001:db8::50", "2001:db8::1", 50050, 443, 0);
	char cafile[600];
	snprintf(cafile, sizeof cafile, "%s/ca.crt", certs);
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, &(struct h_tls_opts){ .sni = "a.example", .cafile = cafile,
								   .prefix = h, .prefix_len = n }),
		      "%s", t.why);
	const char *req = GET("/tls.txt");
	h_tls_write_all(&t, req, strlen(req));
	struct h_response r;
	ck_assert(h_tls_read_response(&t, &r, false));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "hello\n");
	h_http_response_free(&r);
	h_tls_close(&t);
	/* ALPN after a header: HTTP/2 is chosen as without one. */
	ck_assert_msg(h_tls_connect(&t, port, &(struct h_tls_opts){ .sni = "a.example", .cafile = cafile,
								   .alpn = "h2", .prefix = h, .prefix_len = n }),
		      "%s", t.why);
	char alpn[32];
	h_tls_alpn(&t, alpn, sizeof alpn);
	ck_assert_str_eq(alpn, "h2");
	h_tls_close(&t);
	/* Without the header, the ClientHello is no header: closed. */
	ck_assert(!h_tls_connect(&t, port, &(struct h_tls_opts){ .sni = "a.example", .cafile = cafile }));
	h_tls_close(&t);
	ck_assert_msg(px_logged(&p, "2001:db8::50", "\"GET /tls.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	px_stop(&p);
	h_rm_rf(certs);
	free(certs);
}
END_TEST

/* A keep-alive connection handed to the next generation on a reload keeps
 * the header's address there. */
START_TEST(a_reload_hands_the_connection_over_with_its_address)
{
	struct px p;
	px_start(&p, NULL);
	int fd = px_connect(&p);
	const char *h = "PROXY TCP4 192.0.2.60 198.51.100.1 60000 80\r\n";
	h_write_all(fd, h, strlen(h));
	h_write_all(fd, "GET /k.txt HTTP/1.1\r\nHost: x\r\n\r\n", strlen("GET /k.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
	px_expect_hello(fd);
	size_t from = p.s.d->notify_len;
	h_drover_kill(p.s.d, SIGHUP);
	ck_assert(h_notify_wait(p.s.d, "RELOADING=1", &from));
	ck_assert(h_notify_wait(p.s.d, "READY=1", &from));
	ck_assert(h_wait_workers(p.s.d, 1)); /* the old generation has left */
	h_write_all(fd, GET("/k.txt"), strlen(GET("/k.txt")));
	px_expect_hello(fd);
	close(fd);
	ck_assert_msg(px_logged(&p, "192.0.2.60", "\"GET /k.txt HTTP/1.1\" 200"), "%s", px_log_text(&p));
	char *text = h_slurp(p.log, NULL);
	size_t count = 0;
	for (char *q = text; (q = strstr(q, "192.0.2.60 - - [")); q++)
		count++;
	free(text);
	ck_assert_msg(count == 2, "%zu lines from 192.0.2.60: %s", count, px_log_text(&p));
	px_stop(&p);
}
END_TEST

/* Echo after a header: the header's bytes are not echoed, the rest is,
 * whether it came with the header or after it. */
START_TEST(echo_after_a_header)
{
	int port = h_free_port();
	char listener[200];
	snprintf(listener, sizeof listener, "address = 127.0.0.1:%d\nproxy_protocol = yes\n", port);
	char *cfg = h_echo_config(1, NULL, listener, NULL);
	struct h_drover *d = h_drover_start(cfg, &(struct h_opts){ .notify = true });
	free(cfg);
	uint8_t h[256];
	size_t n = v2_header(h, 0x21, 0x11, "192.0.2.70", "198.51.100.1", 1, 7, 40);
	memcpy(h + n, "hello\n", 6);
	int fd = h_connect_tcp(port);
	ck_assert(fd >= 0);
	h_write_all(fd, h, n + 6);
	char buf[16];
	ck_assert(h_read_exact(fd, buf, 6));
	ck_assert(memcmp(buf, "hello\n", 6) == 0);
	h_write_all(fd, "again\n", 6);
	ck_assert(h_read_exact(fd, buf, 6));
	ck_assert(memcmp(buf, "again\n", 6) == 0);
	close(fd);
	fd = h_connect_tcp(port);
	ck_assert(fd >= 0);
	h_write_all(fd, "PROXY TCP4 192.0.2.71 198.51.100.1 1 7\r\n", 40);
	h_pause_ms(60);
	h_write_all(fd, "later\n", 6);
	ck_assert(h_read_exact(fd, buf, 6));
	ck_assert(memcmp(buf, "later\n", 6) == 0);
	close(fd);
	fd = h_connect_tcp(port);
	ck_assert(fd >= 0);
	h_write_all(fd, "hello\n", 6);
	int64_t t0 = h_now_ms();
	ssize_t got = h_read_all(fd, buf, sizeof buf);
	ck_assert_msg(got <= 0, "echo without a header answered");
	ck_assert_msg(h_now_ms() - t0 < H_WAIT_MS / 2, "the connection stayed open");
	close(fd);
	h_drover_free(d);
}
END_TEST

START_TEST(config_errors_name_file_line_key_and_what_is_expected)
{
	char out[4096];
	const char *cfg = "[server]\nworkers = 1\n\n[listener web]\naddress = 127.0.0.1:1\nprotocol = http\n"
			  "proxy_protocol = maybe\n\n[http]\nroot = /tmp\n";
	ck_assert_int_ne(h_drover_check(cfg, NULL, out, sizeof out), 0);
	ck_assert_msg(strstr(out, "drover.ini:7:"), "%s", out);
	ck_assert_msg(strstr(out, "proxy_protocol"), "%s", out);
	ck_assert_msg(strstr(out, "expected yes or no"), "%s", out);
	ck_assert_msg(strstr(out, "maybe"), "%s", out);
	cfg = "[server]\nworkers = 1\n\n[listener web]\naddress = 127.0.0.1:1\nprotocol = http\n"
	      "proxy_protocol = yes\n\n[http]\nroot = /tmp\n";
	ck_assert_msg(h_drover_check(cfg, NULL, out, sizeof out) == 0, "%s", out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, v1_tcp4_and_tcp6_headers_give_the_client_address);
	tcase_add_test(tc, v2_headers_ipv4_ipv6_with_tlvs_and_local);
	tcase_add_test(tc, a_header_split_across_writes);
	tcase_add_test(tc, no_or_a_bad_header_closes_the_connection);
	tcase_add_test(tc, a_header_that_does_not_come_in_time_closes_the_connection);
	tcase_add_test(tc, http2_prior_knowledge_after_a_header);
	tcase_add_test(tc, tls_after_a_header);
	tcase_add_test(tc, a_reload_hands_the_connection_over_with_its_address);
	tcase_add_test(tc, echo_after_a_header);
	tcase_add_test(tc, config_errors_name_file_line_key_and_what_is_expected);
	suite_add_tcase(s, tc);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
