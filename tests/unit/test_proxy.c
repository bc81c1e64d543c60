/* test_proxy: the PROXY protocol header parser (worker/proxy.c), as a
 * table of headers with what each must give; every valid one is also fed
 * byte by byte (each prefix must ask for more, never fail), and every
 * invalid one must fail as soon as its bytes cannot begin a header. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/proxy.h"

#include "harness.h"

/* A v2 header: signature, ver_cmd, fam, then len bytes of addresses (and TLVs). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *addr, size_t len)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (len)
		memcpy(out + 16, addr, len);
	return 16 + len;
}

static void want_v4(const struct proxy_header *h, const char *addr, unsigned port)
{
	char s[INET6_ADDRSTRLEN];
	ck_assert(!h->local);
	ck_assert_int_eq(h->src.sa.sa_family, AF_INET);
	ck_assert_uint_eq(h->src_len, sizeof(struct sockaddr_in));
	ck_assert(inet_ntop(AF_INET, &h->src.in.sin_addr, s, sizeof s));
	ck_assert_str_eq(s, addr);
	ck_assert_uint_eq(ntohs(h->src.in.sin_port), port);
}

static void want_v6(const struct proxy_header *h, const char *addr, unsigned port)
{
	char s[INET6_ADDRSTRLEN];
	ck_assert(!h->local);
	ck_assert_int_eq(h->src.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(h->src_len, sizeof(struct sockaddr_in6));
	ck_assert(inet_ntop(AF_INET6, &h->src.in6.sin6_addr, s, sizeof s));
	ck_assert_str_eq(s, addr);
	ck_assert_uint_eq(ntohs(h->src.in6.sin6_port), port);
}

/* Every prefix of a valid header shorter than need asks for more. */
static void prefixes_ask_for_more(const void *buf, size_t need)
{
	struct proxy_header h;
	for (size_t i = 0; i < need; i++)
		ck_assert_msg(proxy_parse(buf, i, &h) == 0, "prefix of %zu bytes", i);
}

START_TEST(v1_tcp4)
{
	const char *s = "PROXY TCP4 192.0.2.10 198.51.100.1 40000 80\r\nGET / HTTP/1.1\r\n";
	size_t len = strlen("PROXY TCP4 192.0.2.10 198.51.100.1 40000 80\r\n");
	struct proxy_header h;
	ck_assert_int_eq(proxy_parse(s, strlen(s), &h), 1);
	ck_assert_uint_eq(h.len, len);
	ck_assert_int_eq(h.version, 1);
	want_v4(&h, "192.0.2.10", 40000);
	prefixes_ask_for_more(s, len);
	ck_assert_int_eq(proxy_parse(s, len, &h), 1);
}
END_TEST

START_TEST(v1_tcp6_and_unknown)
{
	const char *s = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
	struct proxy_header h;
	ck_assert_int_eq(proxy_parse(s, strlen(s), &h), 1);
	ck_assert_uint_eq(h.len, strlen(s));
	want_v6(&h, "2001:db8::7", 65535);
	prefixes_ask_for_more(s, strlen(s));
	const char *u = "PROXY UNKNOWN\r\n";
	ck_assert_int_eq(proxy_parse(u, strlen(u), &h), 1);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, strlen(u));
	const char *u2 = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nrest";
	ck_assert_int_eq(proxy_parse(u2, strlen(u2), &h), 1);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, strlen(u2) - 4);
	/* The longest line the specification allows: 107 bytes. */
	char longest[200];
	snprintf(longest, sizeof longest, "PROXY UNKNOWN %091d\r\n", 0);
	ck_assert_uint_eq(strlen(longest), 107);
	ck_assert_int_eq(proxy_parse(longest, strlen(longest), &h), 1);
}
END_TEST

static const char *const v1_bad[] = {
	"GET / HTTP/1.1\r\n",
	"PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",            /* no CR */
	"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",         /* trailing space */
	"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",         /* two spaces */
	"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",            /* a port missing */
	"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",        /* a field too many */
	"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",      /* port too large */
	"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
	"PROXY TCP4 1.2.3.4 5.6.7.8 1x 2\r\n",
	"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",      /* a v6 address in TCP4 */
	"PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n",      /* a v4 address in TCP6 */
	"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
	"PROXY TCP4 1.2.3.4 5.6.7.999 1 2\r\n",        /* the destination is checked too */
	"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
	"PROXY \r\n",
	"PROXY UNKNOWNX\r\n",
	"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",        /* a control character */
};

START_TEST(v1_invalid)
{
	struct proxy_header h;
	const char *s = v1_bad[_i];
	ck_assert_msg(proxy_parse(s, strlen(s), &h) == -EINVAL, "%s", s);
}
END_TEST

START_TEST(v1_without_crlf_in_107_bytes)
{
	char s[200];
	memset(s, 'x', sizeof s);
	memcpy(s, "PROXY UNKNOWN ", 14);
	struct proxy_header h;
	ck_assert_int_eq(proxy_parse(s, 106, &h), 0);
	ck_assert_int_eq(proxy_parse(s, 107, &h), -EINVAL);
	ck_assert_int_eq(proxy_parse(s, sizeof s, &h), -EINVAL);
	/* A line feed past the 107th byte does not count. */
	s[150] = '\n';
	s[149] = '\r';
	ck_assert_int_eq(proxy_parse(s, sizeof s, &h), -EINVAL);
	/* Bytes that cannot begin a header fail at once. */
	ck_assert_int_eq(proxy_parse("G", 1, &h), -EINVAL);
	ck_assert_int_eq(proxy_parse("PRI", 3, &h), -EINVAL);
	ck_assert_int_eq(proxy_parse("\x16\x03\x01", 3, &h), -EINVAL); /* a TLS ClientHello */
	ck_assert_int_eq(proxy_parse("PROX", 4, &h), 0);
}
END_TEST

START_TEST(v2_ipv4_and_ipv6)
{
	uint8_t buf[600], a[300];
	struct proxy_header h;
	/* 192.0.2.20:50000 -> 198.51.100.1:8080 */
	uint8_t v4[12] = { 192, 0, 2, 20, 198, 51, 100, 1, 0xC3, 0x50, 0x1F, 0x90 };
	size_t n = v2(buf, 0x21, 0x11, v4, sizeof v4);
	memcpy(buf + n, "GET", 3);
	ck_assert_int_eq(proxy_parse(buf, n + 3, &h), 1);
	ck_assert_uint_eq(h.len, n);
	ck_assert_int_eq(h.version, 2);
	want_v4(&h, "192.0.2.20", 50000);
	prefixes_ask_for_more(buf, n);
	/* IPv6, with TLVs after the addresses: the header is whole once the
	 * addresses are there; its length covers the TLVs (to be skipped). */
	memset(a, 0, sizeof a);
	ck_assert(inet_pton(AF_INET6, "2001:db8::20", a) == 1);
	ck_assert(inet_pton(AF_INET6, "2001:db8::1", a + 16) == 1);
	a[32] = 0x01;
	a[33] = 0xBB; /* 443 */
	a[34] = 0x00;
	a[35] = 0x50;
	a[36] = 0x04; /* PP2_TYPE_NOOP, 200 bytes */
	a[37] = 0;
	a[38] = 200;
	n = v2(buf, 0x21, 0x21, a, 36 + 3 + 200);
	ck_assert_int_eq(proxy_parse(buf, 16 + 36, &h), 1);
	ck_assert_uint_eq(h.len, n);
	want_v6(&h, "2001:db8::20", 443);
	prefixes_ask_for_more(buf, 16 + 36);
}
END_TEST

START_TEST(v2_local_and_other_families)
{
	uint8_t buf[600], a[300];
	struct proxy_header h;
	memset(a, 0, sizeof a);
	/* LOCAL, no addresses (HAProxy's health checks). */
	size_t n = v2(buf, 0x20, 0x00, a, 0);
	ck_assert_int_eq(proxy_parse(buf, n, &h), 1);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, 16);
	/* LOCAL with addresses: ignored, skipped. */
	n = v2(buf, 0x20, 0x11, a, 12);
	ck_assert_int_eq(proxy_parse(buf, 16, &h), 1);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, 28);
	/* PROXY over UDP, UNSPEC, a unix socket: the real peer is kept. */
	ck_assert_int_eq(proxy_parse(buf, v2(buf, 0x21, 0x12, a, 12), &h), 1);
	ck_assert(h.local);
	ck_assert_int_eq(proxy_parse(buf, v2(buf, 0x21, 0x00, a, 0), &h), 1);
	ck_assert(h.local);
	ck_assert_int_eq(proxy_parse(buf, v2(buf, 0x21, 0x31, a, 216), &h), 1);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, 16 + 216);
}
END_TEST

START_TEST(v2_invalid)
{
	uint8_t buf[600], a[64];
	struct proxy_header h;
	memset(a, 0, sizeof a);
	v2(buf, 0x21, 0x11, a, 12);
	buf[3] = 0x0B; /* a broken signature fails at that byte */
	ck_assert_int_eq(proxy_parse(buf, 4, &h), -EINVAL);
	ck_assert_int_eq(proxy_parse(buf, 3, &h), 0);
	v2(buf, 0x11, 0x11, a, 12); /* version 1 in binary */
	ck_assert_int_eq(proxy_parse(buf, 13, &h), -EINVAL);
	v2(buf, 0x22, 0x11, a, 12); /* command 2 */
	ck_assert_int_eq(proxy_parse(buf, 13, &h), -EINVAL);
	v2(buf, 0x21, 0x41, a, 12); /* family 4 */
	ck_assert_int_eq(proxy_parse(buf, 14, &h), -EINVAL);
	v2(buf, 0x21, 0x13, a, 12); /* transport 3 */
	ck_assert_int_eq(proxy_parse(buf, 14, &h), -EINVAL);
	v2(buf, 0x21, 0x11, a, 11); /* IPv4 needs 12 bytes */
	ck_assert_int_eq(proxy_parse(buf, 27, &h), -EINVAL);
	v2(buf, 0x21, 0x21, a, 12); /* IPv6 needs 36 */
	ck_assert_int_eq(proxy_parse(buf, 28, &h), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, v1_tcp4);
	tcase_add_test(tc, v1_tcp6_and_unknown);
	tcase_add_loop_test(tc, v1_invalid, 0, (int)(sizeof v1_bad / sizeof v1_bad[0]));
	tcase_add_test(tc, v1_without_crlf_in_107_bytes);
	tcase_add_test(tc, v2_ipv4_and_ipv6);
	tcase_add_test(tc, v2_local_and_other_families);
	tcase_add_test(tc, v2_invalid);
	suite_add_tcase(s, tc);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
