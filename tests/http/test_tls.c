/* test_tls: HTTPS (issue 18) against the real binary on 127.0.0.1, over
 * real sockets, with a C TLS client (OpenSSL, tls_harness.h) and curl.
 *
 * The certificates are made once per run, before the tests, in a private
 * directory removed at exit: a test CA; RSA and ECDSA certificates for
 * a.example (sharing names), ECDSA ones for b.example and *.w.example; a
 * renewed a.example; an expired one; an intermediate CA with a leaf under
 * it; a key that belongs to no certificate. Every served certificate is
 * told apart by its serial.
 *
 * What is covered: handshakes (TLS 1.3, 1.2, a TLS 1.0 client refused,
 * curl), SNI with exact and wildcard names and the first section as
 * default, RSA and ECDSA chosen by the client's signature algorithms, ALPN;
 * what [tls] sets (protocols, suites, ciphers, groups, tickets); HTTP over
 * TLS (keep-alive, pipelining, records read ahead, 32 MiB checked byte by
 * byte, Range, 304, HSTS, the extended access log); header_timeout for a
 * silent client and 200 half-open handshakes; echo over TLS; drover -t
 * naming file and line of every TLS error; a certificate renewed by reload
 * (and SIGHUP, and an upgrade) under keep-alive TLS load; downloads in
 * flight across a reload and an upgrade; a reload with a key matching
 * nothing; session resumption (TLS 1.3 and 1.2, C and openssl s_client)
 * on both workers, after a reload and a binary upgrade, across two
 * instances sharing a ticket_key_file, and that file's keys and reload; a
 * root-only key with workers as nobody; garbage, truncated records and a
 * renegotiation attempt on the read path; close_notify and its logging;
 * the status JSON's handshake counters and certificates.
 *
 * Nothing asserts speed; every wait is bounded (H_WAIT_MS) only to turn a
 * hang into a failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tls_harness.h"

/* ------------------------------------------------------------------ certificates */

static char certs[512]; /* the run's certificate directory */
static char cafile[600]; /* its CA */

#define SERIAL_A "A1"     /* a.example RSA (SANs a.example, www.a.example) */
#define SERIAL_A_EC "A2"  /* a.example ECDSA, same names */
#define SERIAL_A_NEW "A3" /* a.example RSA, renewed */
#define SERIAL_B "B1"     /* b.example ECDSA */
#define SERIAL_W "C1"     /* *.w.example ECDSA */

static pid_t certs_owner;

static void certs_cleanup(void)
{
	if (certs[0] && getpid() == certs_owner)
		h_rm_rf(certs);
}

/* An unchecked fixture of every TCase (ck_assert works there, not in
 * main): made once, in the runner's process, which the tests fork from. */
static void make_certs(void)
{
	if (certs[0])
		return;
	char *dir = h_tmpdir();
	snprintf(certs, sizeof certs, "%s", dir);
	free(dir);
	certs_owner = getpid();
	atexit(certs_cleanup);
	ck_assert(chmod(certs, 0755) == 0);
	h_tls_ca(certs, "ca");
	h_tls_cert(certs, "a", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "a.example",
			       .sans = "DNS:a.example,DNS:www.a.example", .serial = 0xA1 });
	h_tls_cert(certs, "a_ec", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "a.example",
				  .sans = "DNS:a.example,DNS:www.a.example", .serial = 0xA2, .ecdsa = true });
	h_tls_cert(certs, "a_new", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "a.example",
				   .sans = "DNS:a.example,DNS:www.a.example", .serial = 0xA3 });
	h_tls_cert(certs, "b", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "b.example", .sans = "DNS:b.example",
			       .serial = 0xB1, .ecdsa = true });
	h_tls_cert(certs, "w", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "w.example",
			       .sans = "DNS:*.w.example", .serial = 0xC1, .ecdsa = true });
	h_tls_cert(certs, "old", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "old.example",
				 .sans = "DNS:old.example", .serial = 0xE1, .ecdsa = true, .expired = true });
	h_tls_cert(certs, "inter", &(struct h_tls_cert_opts){ .issuer = "ca", .cn = "inter", .serial = 0x1001,
				   .ecdsa = true, .ca = true });
	h_tls_cert(certs, "il", &(struct h_tls_cert_opts){ .issuer = "inter", .cn = "il.example",
				.sans = "DNS:il.example", .serial = 0xD1, .ecdsa = true });
	h_tls_key(certs, "stray", false);
	char out[600], f1[600], f2[600], f3[600];
	snprintf(f1, sizeof f1, "%s/il.crt", certs);
	snprintf(f2, sizeof f2, "%s/inter.crt", certs);
	snprintf(f3, sizeof f3, "%s/ca.crt", certs);
	snprintf(out, sizeof out, "%s/il_chain.crt", certs);
	h_tls_cat(out, (const char *const[]){ f1, f2, NULL });
	snprintf(out, sizeof out, "%s/il_badchain.crt", certs);
	h_tls_cat(out, (const char *const[]){ f1, f3, f2, NULL });
	snprintf(out, sizeof out, "%s/garbage.key", certs);
	h_write_file(out, "this is not a key\n");
	snprintf(cafile, sizeof cafile, "%s/ca.crt", certs);
}


/* "[certificate SECTION]" for certs/FILE.crt and .key. */
static void cert_section(char *out, size_t cap, const char *section, const char *file)
{
	int n = snprintf(out, cap, "[certificate %s]\ncertificate = %s/%s.crt\nprivate_key = %s/%s.key\n", section,
			 certs, file, certs, file);
	ck_assert(n > 0 && (size_t)n < cap);
}

/* ------------------------------------------------------------------ sites */

static const char hello[] = "hello over tls\n";

/* A site (1 or more workers) whose web listener has tls = yes, a control
 * socket, status = yes on web (status_path /status), and the given
 * certificate sections and more [http] / [server] lines. */
static void tsite_start(struct h_site *s, unsigned workers, const char *sections, const char *http,
			const char *server)
{
	h_site_file(s, "hello.txt", hello);
	char h[3072], sv[512];
	int n = snprintf(h, sizeof h, "mime_types = /etc/mime.types\nstatus_path = /status\n%s\n%s", http ? http : "",
			 sections);
	ck_assert(n > 0 && (size_t)n < sizeof h);
	snprintf(sv, sizeof sv, "control_socket = @DIR@/control.sock\n%s", server ? server : "");
	h_site_start(s, &(struct h_site_opts){ .workers = workers, .server = sv, .web = "tls = yes\nstatus = yes\n",
					       .http = h });
}

static const struct h_tls_opts *opts_sni(struct h_tls_opts *o, const char *sni)
{
	memset(o, 0, sizeof *o);
	o->sni = sni;
	o->cafile = cafile;
	return o;
}

static const char get_hello[] = "GET /hello.txt HTTP/1.1\r\nHost: a.example\r\n\r\n";

/* GET /hello.txt on a new TLS connection: 200 and the body; the served
 * serial in serial. */
static void hello_ok(int port, const struct h_tls_opts *o, char *serial, size_t len)
{
	struct h_response r;
	h_tls_request(port, o, get_hello, &r, serial, len);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, hello);
	h_http_response_free(&r);
}

/* The serial a handshake with these options is served (asserts it works). */
static void served_serial(int port, const struct h_tls_opts *o, char *serial, size_t len)
{
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, o), "handshake (sni %s): %s", o->sni ? o->sni : "-", t.why);
	h_tls_peer_serial(&t, serial, len);
	h_tls_close(&t);
}

/* ------------------------------------------------------------------ handshakes, SNI, ALPN */

START_TEST(tls13_and_tls12_handshakes_sni_wildcard_default_and_alpn)
{
	struct h_site s;
	h_site_init(&s);
	char sec[2048], a[512], b[512], w[512];
	cert_section(a, sizeof a, "a", "a");
	cert_section(b, sizeof b, "b", "b");
	cert_section(w, sizeof w, "w", "w");
	snprintf(sec, sizeof sec, "%s%s%s", a, b, w);
	tsite_start(&s, 1, sec, NULL, NULL);

	struct h_tls_opts o;
	char serial[80], cn[80], alpn[32];
	/* TLS 1.3 and TLS 1.2, each verified against the test CA */
	static const int versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };
	for (size_t i = 0; i < 2; i++) {
		opts_sni(&o, "a.example");
		o.min_version = o.max_version = versions[i];
		o.alpn = "http/1.1";
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "version %x: %s", versions[i], t.why);
		ck_assert_int_eq(h_tls_version(&t), versions[i]);
		h_tls_alpn(&t, alpn, sizeof alpn);
		ck_assert_str_eq(alpn, "http/1.1");
		h_tls_peer_cn(&t, cn, sizeof cn);
		ck_assert_str_eq(cn, "a.example");
		h_tls_write_all(&t, get_hello, strlen(get_hello));
		struct h_response r;
		ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, hello);
		h_http_response_free(&r);
		h_tls_close(&t);
	}
	/* SNI: exact names, a wildcard, and the first section without SNI or
	 * for a name no section has (the client then does not verify the name) */
	static const struct {
		const char *sni;
		const char *serial, *cn;
		bool verify_name;
	} cases[] = {
		{ "a.example", SERIAL_A, "a.example", true },
		{ "www.a.example", SERIAL_A, "a.example", true },
		{ "b.example", SERIAL_B, "b.example", true },
		{ "b.example.", SERIAL_B, "b.example", false }, /* a trailing dot */
		{ "B.Example", SERIAL_B, "b.example", false },
		{ "foo.w.example", SERIAL_W, "w.example", true },
		{ "bar.w.example", SERIAL_W, "w.example", true },
		{ "x.foo.w.example", SERIAL_A, "a.example", false }, /* a wildcard is one label */
		{ "w.example", SERIAL_A, "a.example", false },
		{ "unknown.example", SERIAL_A, "a.example", false },
		{ NULL, SERIAL_A, "a.example", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&o, 0, sizeof o);
		o.sni = cases[i].sni;
		/* the default certificate does not carry the name asked for:
		 * verified (chain and name) only where it should match */
		o.cafile = cases[i].verify_name ? cafile : NULL;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "sni %s: %s", o.sni ? o.sni : "(none)", t.why);
		h_tls_peer_serial(&t, serial, sizeof serial);
		h_tls_peer_cn(&t, cn, sizeof cn);
		ck_assert_msg(strcmp(serial, cases[i].serial) == 0 && strcmp(cn, cases[i].cn) == 0,
			      "sni %s: served serial %s CN %s, expected %s %s", cases[i].sni ? cases[i].sni : "(none)",
			      serial, cn, cases[i].serial, cases[i].cn);
		h_tls_close(&t);
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(a_tls10_client_is_refused_by_the_server)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, NULL, NULL);
	struct h_tls_opts o = { .sni = "a.example", .min_version = TLS1_VERSION, .max_version = TLS1_VERSION };
	struct h_tls t;
	ck_assert_msg(!h_tls_connect(&t, s.port, &o), "a TLS 1.0 handshake succeeded");
	/* refused by the server (a protocol_version alert), not by this
	 * client's own policy, which would fail before sending anything */
	ck_assert_msg(ERR_GET_REASON(t.err) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
			      ERR_GET_REASON(t.err) == SSL_R_UNSUPPORTED_PROTOCOL,
		      "TLS 1.0: %s", t.why);
	ck_assert_msg(ERR_GET_REASON(t.err) != SSL_R_NO_PROTOCOLS_AVAILABLE, "the client did not offer TLS 1.0: %s",
		      t.why);
	h_tls_close(&t);
	/* TLS 1.1 alike */
	o.min_version = o.max_version = TLS1_1_VERSION;
	ck_assert_msg(!h_tls_connect(&t, s.port, &o), "a TLS 1.1 handshake succeeded");
	h_tls_close(&t);
	hello_ok(s.port, opts_sni(&o, "a.example"), NULL, 0);
	h_site_stop(&s);
}
END_TEST

START_TEST(curl_over_tls13_and_tls12)
{
	struct h_site s;
	h_site_init(&s);
	char sec[1024], a[512], b[512];
	cert_section(a, sizeof a, "a", "a");
	cert_section(b, sizeof b, "b", "b");
	snprintf(sec, sizeof sec, "%s%s", a, b);
	tsite_start(&s, 1, sec, NULL, NULL);
	static const char *const flags[] = { "--tlsv1.3", "--tlsv1.2 --tls-max 1.2" };
	for (size_t i = 0; i < 2; i++) {
		char cmd[1024], out[4096];
		snprintf(cmd, sizeof cmd,
			 "curl -sS --http1.1 %s --cacert '%s' --resolve b.example:%d:127.0.0.1 "
			 "-w '|%%{http_code}|%%{ssl_verify_result}' https://b.example:%d/hello.txt 2>&1",
			 flags[i], cafile, s.port, s.port);
		int rc = h_run(cmd, out, sizeof out);
		char want[128];
		snprintf(want, sizeof want, "%s|200|0", hello);
		ck_assert_msg(rc == 0 && strcmp(out, want) == 0, "curl %s: exit %d: %s", flags[i], rc, out);
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(rsa_and_ecdsa_sections_sharing_names_are_chosen_by_signature_algorithms)
{
	struct h_site s;
	h_site_init(&s);
	char sec[1024], a[512], e[512];
	cert_section(a, sizeof a, "rsa", "a");
	cert_section(e, sizeof e, "ecdsa", "a_ec");
	snprintf(sec, sizeof sec, "%s%s", a, e);
	tsite_start(&s, 1, sec, NULL, NULL);
	static const struct {
		int version;
		const char *sigalgs;
		const char *serial;
		int type;
	} cases[] = {
		{ TLS1_3_VERSION, "ECDSA+SHA256:ECDSA+SHA384", SERIAL_A_EC, EVP_PKEY_EC },
		{ TLS1_3_VERSION, "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384", SERIAL_A, EVP_PKEY_RSA },
		{ TLS1_2_VERSION, "ECDSA+SHA256", SERIAL_A_EC, EVP_PKEY_EC },
		{ TLS1_2_VERSION, "RSA+SHA256:rsa_pss_rsae_sha256", SERIAL_A, EVP_PKEY_RSA },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (int sni = 0; sni < 2; sni++) {
			struct h_tls_opts o;
			opts_sni(&o, sni ? "www.a.example" : NULL);
			o.min_version = o.max_version = cases[i].version;
			o.sigalgs = cases[i].sigalgs;
			struct h_tls t;
			ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s: %s", cases[i].sigalgs, t.why);
			char serial[80];
			h_tls_peer_serial(&t, serial, sizeof serial);
			ck_assert_msg(strcmp(serial, cases[i].serial) == 0 && h_tls_peer_key_type(&t) == cases[i].type,
				      "TLS %x sigalgs %s sni %d: served %s, expected %s", cases[i].version,
				      cases[i].sigalgs, sni, serial, cases[i].serial);
			h_tls_close(&t);
		}
	}
	h_site_stop(&s);
}
END_TEST

static void hello_ok_on(struct h_tls *t);
static char *status_on(struct h_tls *t);
static void reload_ok(struct h_drover *d);
static void install_live(const char *dir, const char *crt_from, const char *key_from);
static int check_run(const char *sections, char *out, size_t cap);
static void assert_names(const char *out, unsigned line, const char *what, const char *detail);

/* What a handshake with o negotiates: true if it succeeds; the cipher's
 * name and the group in cipher/group. */
static bool negotiate(int port, const struct h_tls_opts *o, char *cipher, size_t len, int *group)
{
	struct h_tls t;
	bool ok = h_tls_connect(&t, port, o);
	cipher[0] = '\0';
	if (ok) {
		snprintf(cipher, len, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(t.ssl)));
		if (group)
			*group = SSL_get_negotiated_group(t.ssl);
		hello_ok_on(&t);
	}
	h_tls_close(&t);
	return ok;
}

START_TEST(tls_section_protocols_suites_ciphers_groups_tickets_and_alpn)
{
	char a[512], e[512], sec[2048];
	cert_section(a, sizeof a, "a", "a");
	cert_section(e, sizeof e, "e", "a_ec");
	char cipher[128];
	int group = 0;
	struct h_tls_opts o;
	/* TLS 1.3 only, one suite, one group, no tickets */
	{
		struct h_site s;
		h_site_init(&s);
		snprintf(sec, sizeof sec,
			 "[tls]\nprotocols = TLSv1.3\nciphersuites = TLS_CHACHA20_POLY1305_SHA256\ngroups = secp384r1\n"
			 "session_tickets = no\n%s",
			 a);
		tsite_start(&s, 1, sec, NULL, NULL);
		opts_sni(&o, "a.example");
		o.max_version = TLS1_2_VERSION;
		ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "TLS 1.2 accepted: %s", cipher);
		opts_sni(&o, "a.example");
		ck_assert(negotiate(s.port, &o, cipher, sizeof cipher, &group)); /* the client offers X25519 first: HRR */
		ck_assert_str_eq(cipher, "TLS_CHACHA20_POLY1305_SHA256");
		ck_assert_int_eq(group, NID_secp384r1);
		o.ciphersuites = "TLS_AES_128_GCM_SHA256";
		ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "a suite not configured: %s", cipher);
		opts_sni(&o, "a.example");
		o.groups = "X25519";
		ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "a group not configured accepted");
		/* no ticket: nothing to resume */
		opts_sni(&o, "a.example");
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		hello_ok_on(&t);
		SSL_SESSION *sess = SSL_get1_session(t.ssl);
		h_tls_close(&t);
		ck_assert_msg(sess == NULL || !SSL_SESSION_is_resumable(sess), "session_tickets = no sent a ticket");
		SSL_SESSION_free(sess);
		h_site_stop(&s);
	}
	/* TLS 1.2 only, one cipher (ECDSA certificate) */
	{
		struct h_site s;
		h_site_init(&s);
		snprintf(sec, sizeof sec, "[tls]\nprotocols = TLSv1.2\nciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n%s", e);
		tsite_start(&s, 1, sec, NULL, NULL);
		opts_sni(&o, "a.example");
		o.min_version = TLS1_3_VERSION;
		ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "TLS 1.3 accepted: %s", cipher);
		opts_sni(&o, "a.example");
		ck_assert(negotiate(s.port, &o, cipher, sizeof cipher, NULL));
		ck_assert_str_eq(cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
		o.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
		ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "a cipher not configured: %s", cipher);
		h_site_stop(&s);
	}
	/* the defaults: TLS 1.2 with a CBC or RSA-key-exchange cipher is
	 * refused (Mozilla intermediate: ECDHE and DHE with AEADs only) */
	{
		struct h_site s;
		h_site_init(&s);
		tsite_start(&s, 1, a, NULL, NULL);
		static const char *const weak[] = { "AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
						    "ECDHE-RSA-AES256-SHA384" };
		for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
			opts_sni(&o, "a.example");
			o.max_version = TLS1_2_VERSION;
			o.ciphers = weak[i];
			ck_assert_msg(!negotiate(s.port, &o, cipher, sizeof cipher, NULL), "%s accepted", weak[i]);
		}
		opts_sni(&o, "a.example");
		o.max_version = TLS1_2_VERSION;
		o.ciphers = "ECDHE-RSA-CHACHA20-POLY1305";
		ck_assert(negotiate(s.port, &o, cipher, sizeof cipher, NULL));
		ck_assert_str_eq(cipher, "ECDHE-RSA-CHACHA20-POLY1305");
		/* ALPN: a client offering nothing we speak goes on without ALPN */
		opts_sni(&o, "a.example");
		o.alpn = "spdy/3.1";
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "offering spdy/3.1 only: %s", t.why);
		char alpn[32];
		h_tls_alpn(&t, alpn, sizeof alpn);
		ck_assert_str_eq(alpn, "");
		hello_ok_on(&t);
		h_tls_close(&t);
		h_site_stop(&s);
	}
	/* drover -t on bad [tls] values names the line */
	static const struct {
		const char *line;
		const char *key;
	} bad[] = {
		{ "protocols = TLSv1.1", "[tls] protocols:" },
		{ "ciphers = NO-SUCH-CIPHER", "[tls] ciphers:" },
		{ "ciphersuites = TLS_NO_SUCH_SUITE", "[tls] ciphersuites:" },
		{ "groups = nosuchgroup", "[tls] groups:" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[8192];
		snprintf(sec, sizeof sec, "[tls]\n%s\n%s", bad[i].line, a);
		int rc = check_run(sec, out, sizeof out);
		ck_assert_msg(rc != 0, "%s passed -t: %s", bad[i].line, out);
		assert_names(out, 8, bad[i].key, NULL);
	}
}
END_TEST

START_TEST(names_override_the_subject_alt_names_and_a_reload_rereads_them)
{
	struct h_site s;
	h_site_init(&s);
	install_live(s.tmp, "a", "a");
	char sec[2048];
	/* [certificate b] names: alias.example only (b.example is then no name) */
	snprintf(sec, sizeof sec,
		 "[certificate live]\ncertificate = %s/live.crt\nprivate_key = %s/live.key\n"
		 "[certificate b]\ncertificate = %s/b.crt\nprivate_key = %s/b.key\nnames = alias.example *.alias.example\n",
		 s.tmp, s.tmp, certs, certs);
	tsite_start(&s, 1, sec, NULL, NULL);
	static const struct {
		const char *sni, *serial;
	} before[] = {
		{ "alias.example", SERIAL_B }, { "x.alias.example", SERIAL_B }, { "b.example", SERIAL_A },
		{ "w.example", SERIAL_A },
	};
	struct h_tls_opts o;
	char serial[80];
	for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
		memset(&o, 0, sizeof o);
		o.sni = before[i].sni;
		served_serial(s.port, &o, serial, sizeof serial);
		ck_assert_msg(strcmp(serial, before[i].serial) == 0, "sni %s: %s, expected %s", before[i].sni, serial,
			      before[i].serial);
	}
	/* live's files now hold the *.w.example certificate: its names come
	 * from the new file's subjectAltNames after a reload */
	install_live(s.tmp, "w", "w");
	reload_ok(s.d);
	memset(&o, 0, sizeof o);
	o.sni = "foo.w.example";
	served_serial(s.port, &o, serial, sizeof serial);
	ck_assert_msg(strcmp(serial, SERIAL_W) == 0, "after the reload, foo.w.example: %s", serial);
	o.sni = "www.a.example";
	served_serial(s.port, &o, serial, sizeof serial);
	ck_assert_msg(strcmp(serial, SERIAL_W) == 0, "after the reload, the default: %s", serial);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ HTTP over TLS */

/* A deterministic, non-repeating pattern. */
static void fill_pattern(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t k = len - i < 8 ? len - i : 8;
		memcpy(p + i, &x, k);
	}
}

START_TEST(keepalive_pipelining_range_and_304_over_tls)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	unsigned char data[3000];
	fill_pattern(data, sizeof data, 7);
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)('a' + data[i] % 26); /* text: h_site_file takes a string */
	char text[sizeof data + 1];
	memcpy(text, data, sizeof data);
	text[sizeof data] = '\0';
	h_site_file(&s, "p.txt", text);
	tsite_start(&s, 1, a, NULL, NULL);
	struct h_tls_opts o;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, s.port, opts_sni(&o, "a.example")), "%s", t.why);
	/* keep-alive: one after another */
	for (int i = 0; i < 5; i++) {
		h_tls_write_all(&t, get_hello, strlen(get_hello));
		struct h_response r;
		ck_assert_msg(h_tls_read_response(&t, &r, false), "request %d: %s", i, t.why);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, hello);
		h_http_response_free(&r);
	}
	/* pipelined in one write (one TLS record): GET, HEAD, Range, GET */
	static const char pipe[] = "GET /p.txt HTTP/1.1\r\nHost: a\r\n\r\n"
				   "HEAD /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n"
				   "GET /p.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=1000-1999\r\n\r\n"
				   "GET /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n";
	h_tls_write_all(&t, pipe, sizeof pipe - 1);
	struct h_response r;
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, sizeof data);
	ck_assert(memcmp(r.body, data, sizeof data) == 0);
	char etag[128];
	ck_assert(h_http_header(&r, "ETag", etag, sizeof etag));
	h_http_response_free(&r);
	ck_assert_msg(h_tls_read_response(&t, &r, true), "%s", t.why);
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	ck_assert_int_eq(r.status, 206);
	ck_assert_uint_eq(r.body_len, 1000);
	ck_assert(memcmp(r.body, data + 1000, 1000) == 0);
	char cr[128];
	ck_assert(h_http_header(&r, "Content-Range", cr, sizeof cr));
	ck_assert_str_eq(cr, "bytes 1000-1999/3000");
	h_http_response_free(&r);
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, hello);
	h_http_response_free(&r);
	/* 304 for the ETag, then a suffix range, still on the same connection */
	char req[512];
	snprintf(req, sizeof req, "GET /p.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: %s\r\n\r\n"
		 "GET /p.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=-10\r\n\r\n", etag);
	h_tls_write_all(&t, req, strlen(req));
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	ck_assert_int_eq(r.status, 304);
	ck_assert_uint_eq(r.body_len, 0);
	h_http_response_free(&r);
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	ck_assert_int_eq(r.status, 206);
	ck_assert_uint_eq(r.body_len, 10);
	ck_assert(memcmp(r.body, data + sizeof data - 10, 10) == 0);
	h_http_response_free(&r);
	h_tls_close(&t);
	h_site_stop(&s);
}
END_TEST

/* Records that OpenSSL reads ahead sit in its buffer, where epoll does not
 * see them: 32 requests, each its own record, and one request split over
 * three records, all in one TCP write, must all be answered. */
START_TEST(pipelined_requests_in_separate_records_of_one_segment_are_all_answered)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	h_site_file(&s, "two.txt", "second file\n");
	tsite_start(&s, 1, a, NULL, NULL);
	struct h_tls_opts o;
	for (int v = 0; v < 2; v++) {
		opts_sni(&o, "a.example");
		o.max_version = v ? TLS1_2_VERSION : 0;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		enum { N = 32 };
		static const char two[] = "GET /two.txt HTTP/1.1\r\nHost: a\r\n\r\n";
		const void *bufs[N + 3];
		size_t lens[N + 3];
		for (int i = 0; i < N; i++) {
			bufs[i] = i % 2 ? two : get_hello;
			lens[i] = strlen(bufs[i]);
		}
		static const char split[] = "GET /two.txt HT" "TP/1.1\r\nHost:" " a\r\n\r\n";
		bufs[N] = split;
		lens[N] = 15;
		bufs[N + 1] = split + 15;
		lens[N + 1] = 15;
		bufs[N + 2] = split + 30;
		lens[N + 2] = sizeof split - 1 - 30;
		h_tls_write_records(&t, bufs, lens, N + 3);
		for (int i = 0; i <= N; i++) {
			struct h_response r;
			ck_assert_msg(h_tls_read_response(&t, &r, false), "TLS %s: response %d of %d: %s",
				      v ? "1.2" : "1.3", i + 1, N + 1, t.why);
			ck_assert_int_eq(r.status, 200);
			ck_assert_str_eq(r.body, i < N && i % 2 == 0 ? hello : "second file\n");
			h_http_response_free(&r);
		}
		h_tls_close(&t);
	}
	h_site_stop(&s);
}
END_TEST

/* HTTP over TLS is the same HTTP: each request, then a GET on the same
 * connection if the first answer kept it open, gets the same answers over
 * TLS as over a plain listener of the same site. */
START_TEST(the_same_answers_over_tls_as_over_plain_http)
{
	struct h_site s;
	h_site_init(&s);
	h_site_file(&s, "hello.txt", hello);
	char a[512], http[1024];
	cert_section(a, sizeof a, "a", "a");
	snprintf(http, sizeof http, "mime_types = /etc/mime.types\n%s", a);
	h_site_start(&s, &(struct h_site_opts){ .web = "tls = yes\n", .http = http, .admin = true });
	size_t big = 300000;
	char *body = malloc(big + 1);
	ck_assert(body != NULL);
	memset(body, 'b', big);
	body[big] = '\0';
	char *post = NULL, *huge = NULL;
	ck_assert(asprintf(&post, "POST /hello.txt HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n%s", big, body) > 0);
	memset(body, 'x', 20000);
	body[20000] = '\0';
	ck_assert(asprintf(&huge, "GET /hello.txt HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", body) > 0);
	const char *const reqs[] = {
		get_hello,
		"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /hello.txt HTTP/1.0\r\n\r\n",
		"GET /hello.txt HTTP/1.1\r\n\r\n",
		"BREW /hello.txt HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /hello.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\n\r\n",
		"GET /hello.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GARBAGE\r\n\r\n",
		post,
		huge,
	};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		bool head = strncmp(reqs[i], "HEAD", 4) == 0;
		/* plain, on the unix listener */
		int fd = h_connect_unix(s.admin);
		ck_assert(fd >= 0);
		h_write_all(fd, reqs[i], strlen(reqs[i]));
		struct h_response p1, p2 = { .status = 0 }, t1, t2 = { .status = 0 };
		ck_assert_msg(h_http_read_response(fd, &p1, head), "plain: no answer to request %zu", i);
		char conn[64] = "";
		bool p_open = !(h_http_header(&p1, "Connection", conn, sizeof conn) && strcasecmp(conn, "close") == 0);
		if (p_open) {
			h_write_all(fd, get_hello, strlen(get_hello));
			ck_assert_msg(h_http_read_response(fd, &p2, false), "plain: no answer after request %zu", i);
		}
		close(fd);
		/* TLS */
		struct h_tls_opts o;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, opts_sni(&o, "a.example")), "%s", t.why);
		h_tls_write_all(&t, reqs[i], strlen(reqs[i]));
		ck_assert_msg(h_tls_read_response(&t, &t1, head), "TLS: no answer to request %zu: %s", i, t.why);
		conn[0] = '\0';
		bool t_open = !(h_http_header(&t1, "Connection", conn, sizeof conn) && strcasecmp(conn, "close") == 0);
		if (t_open) {
			h_tls_write_all(&t, get_hello, strlen(get_hello));
			ck_assert_msg(h_tls_read_response(&t, &t2, false), "TLS: no answer after request %zu: %s", i, t.why);
		}
		h_tls_close(&t);
		ck_assert_msg(p1.status == t1.status && p1.body_len == t1.body_len &&
				      (p1.body_len == 0 || memcmp(p1.body, t1.body, p1.body_len) == 0),
			      "request %zu (%.40s): plain %d (%zu bytes), TLS %d (%zu bytes)", i, reqs[i], p1.status,
			      p1.body_len, t1.status, t1.body_len);
		ck_assert_msg(p_open == t_open && p2.status == t2.status,
			      "request %zu (%.40s): plain %s then %d, TLS %s then %d", i, reqs[i], p_open ? "open" : "closed",
			      p2.status, t_open ? "open" : "closed", t2.status);
		h_http_response_free(&p1);
		h_http_response_free(&t1);
		if (p_open)
			h_http_response_free(&p2);
		if (t_open)
			h_http_response_free(&t2);
	}
	free(post);
	free(huge);
	free(body);
	h_site_stop(&s);
}
END_TEST

START_TEST(a_32_mib_download_over_tls_has_every_byte_right)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	size_t len = 32u << 20;
	unsigned char *data = malloc(len);
	ck_assert(data != NULL);
	fill_pattern(data, len, 0x5eed);
	char path[1024];
	h_path_join(path, sizeof path, s.www, "big.bin");
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	ck_assert(fwrite(data, 1, len, f) == len);
	ck_assert(fclose(f) == 0);
	tsite_start(&s, 1, a, NULL, NULL);
	/* twice on one connection: a small receive buffer the first time, so
	 * that the server meets a full socket many times */
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	o.rcvbuf = 16384;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
	for (int i = 0; i < 2; i++) {
		static const char req[] = "GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
		h_tls_write_all(&t, req, sizeof req - 1);
		struct h_response r;
		ck_assert_msg(h_tls_read_response(&t, &r, false), "download %d: %s", i, t.why);
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_len, len);
		size_t bad = 0;
		while (bad < len && r.body[bad] == (char)data[bad])
			bad++;
		ck_assert_msg(bad == len, "download %d: first wrong byte at offset %zu", i, bad);
		h_http_response_free(&r);
	}
	h_tls_close(&t);
	free(data);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ timeouts and half-open handshakes */

/* Whether the server closes fd (EOF or reset) within H_WAIT_MS; what it
 * sends before (an alert) is read and dropped. */
static bool raw_wait_closed(int fd)
{
	struct timeval tv = { .tv_sec = H_WAIT_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	char buf[4096];
	while (h_left_ms(deadline) > 0) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
	return false;
}

/* The first bytes of a TLS ClientHello record: a record header claiming
 * 512 bytes, and the start of the handshake message. */
static const unsigned char partial_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };

START_TEST(a_silent_tls_client_is_closed_at_header_timeout)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, "header_timeout = 1s\n", NULL);
	/* nothing at all */
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	ck_assert_msg(raw_wait_closed(fd), "a silent connection was not closed");
	close(fd);
	/* the start of a ClientHello */
	fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	h_write_all(fd, partial_hello, sizeof partial_hello);
	ck_assert_msg(raw_wait_closed(fd), "a half-sent handshake was not closed");
	close(fd);
	/* a whole handshake, then no request */
	struct h_tls_opts o;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, s.port, opts_sni(&o, "a.example")), "%s", t.why);
	ck_assert_msg(h_tls_wait_closed(&t), "a TLS connection without a request was not closed: %s", t.why);
	h_tls_close(&t);
	hello_ok(s.port, &o, NULL, 0);
	h_site_stop(&s);
}
END_TEST

/* header_timeout runs from the accept: a ClientHello sent one byte at a
 * time, each in time for any per-read timer, is still closed. The trickle
 * would take 100 s; the close must come before it ends. */
START_TEST(a_trickled_client_hello_is_closed_at_header_timeout)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, "header_timeout = 1s\n", NULL);
	int fd = h_connect_tcp(s.port);
	ck_assert(fd >= 0);
	unsigned char hello_bytes[512] = { 0x16, 0x03, 0x01, 0x01, 0xfb, 0x01, 0x00, 0x01, 0xf7, 0x03, 0x03 };
	bool closed = false;
	size_t i;
	for (i = 0; i < sizeof hello_bytes && !closed; i++) {
		if (send(fd, hello_bytes + i, 1, MSG_NOSIGNAL) != 1)
			closed = true;
		/* a poll of the socket is the pause: it ends early if the server closes */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 200) == 1) {
			char c;
			ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
			closed = n == 0 || (n < 0 && errno == ECONNRESET) || n > 0; /* an alert, then the close */
		}
	}
	ck_assert_msg(closed, "a ClientHello trickled over 100 s was never closed");
	/* by the timeout, not by a parse of the whole (bogus) record */
	ck_assert_msg(i < 5 + 0x1fb, "closed only after the whole record (%zu bytes)", i);
	close(fd);
	struct h_tls_opts o;
	hello_ok(s.port, opts_sni(&o, "a.example"), NULL, 0);
	h_site_stop(&s);
}
END_TEST

START_TEST(two_hundred_half_open_handshakes_do_not_stop_another_client)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	/* header_timeout stays long: the half-open ones must still be open
	 * while the other client is served */
	tsite_start(&s, 1, a, "header_timeout = 60s\n", NULL);
	enum { N = 200 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = h_connect_tcp(s.port);
		ck_assert_msg(fds[i] >= 0, "connect %d: %s", i, strerror(-fds[i]));
		if (i % 2)
			h_write_all(fds[i], partial_hello, sizeof partial_hello);
	}
	struct h_tls_opts o;
	for (int i = 0; i < 3; i++)
		hello_ok(s.port, opts_sni(&o, "a.example"), NULL, 0);
	/* and they are still open: nothing was closed to make room */
	int open_ = 0;
	for (int i = 0; i < N; i++) {
		char c;
		ssize_t n = recv(fds[i], &c, 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			open_++;
	}
	ck_assert_int_eq(open_, N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	hello_ok(s.port, &o, NULL, 0);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ echo over TLS */

START_TEST(echo_over_tls)
{
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	char *cfg = h_echo_config(1, NULL, "tls = yes\n", NULL);
	char *full = NULL;
	ck_assert(asprintf(&full, "%s\n%s", cfg, a) > 0);
	free(cfg);
	int port;
	struct h_activation fds[] = { { "main", h_listen_tcp(&port) } };
	struct h_drover *d = h_drover_start(full, &(struct h_opts){ .notify = true, .fds = fds, .n_fds = 1 });
	free(full);
	struct h_tls_opts o;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, opts_sni(&o, "a.example")), "%s", t.why);
	unsigned char out[70000], back[70000];
	fill_pattern(out, sizeof out, 99);
	for (int round = 0; round < 3; round++) {
		size_t len = round == 0 ? 5 : round == 1 ? 20000 : sizeof out;
		if (round == 0)
			memcpy(out, "ping\n", 5);
		/* write what fits, read it back, so neither side's buffers fill */
		size_t sent = 0, got = 0;
		while (got < len) {
			if (sent < len) {
				size_t k = len - sent < 8192 ? len - sent : 8192;
				h_tls_write_all(&t, out + sent, k);
				sent += k;
			}
			while (got < sent) {
				size_t n = 0;
				ck_assert_msg(h_tls_read(&t, back + got, sent - got, &n),
					      "echo round %d: read failed after %zu of %zu bytes", round, got, len);
				got += n;
			}
		}
		ck_assert_msg(memcmp(out, back, len) == 0, "echo round %d: wrong bytes", round);
	}
	h_tls_close(&t);
	h_drover_free(d);
}
END_TEST

/* ------------------------------------------------------------------ drover -t */

/* The config "drover -t" is run on: lines 1-6 fixed, sections from 7. */
static char *check_config(const char *sections)
{
	int port = h_free_port();
	char *cfg = NULL;
	ck_assert(asprintf(&cfg,
			   "[listener web]\n"         /* 1 */
			   "address = 127.0.0.1:%d\n" /* 2 */
			   "protocol = http\n"        /* 3 */
			   "tls = yes\n"              /* 4 */
			   "[http]\n"                 /* 5 */
			   "root = %s\n"              /* 6 */
			   "%s",
			   port, certs, sections) > 0);
	return cfg;
}

/* drover -t on sections: exit code; output in out. */
static int check_run(const char *sections, char *out, size_t cap)
{
	char *cfg = check_config(sections);
	int rc = h_drover_check(cfg, NULL, out, cap);
	free(cfg);
	return rc;
}

static void assert_names(const char *out, unsigned line, const char *what, const char *detail)
{
	char want[128];
	snprintf(want, sizeof want, "drover.ini:%u: %s", line, what);
	const char *p = strstr(out, want);
	ck_assert_msg(p != NULL, "expected '%s' in: %s", want, out);
	if (detail) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char l[1024];
		snprintf(l, sizeof l, "%.*s", (int)n, p);
		ck_assert_msg(strstr(l, detail) != NULL, "expected '%s' on the line: %s", detail, l);
	}
}

START_TEST(drover_t_names_file_and_line_of_every_tls_error)
{
	char out[16384], sec[4096];
	/* a good one passes: leaf and intermediate in order */
	snprintf(sec, sizeof sec, "[certificate il]\ncertificate = %s/il_chain.crt\nprivate_key = %s/il.key\n", certs,
		 certs);
	int rc = check_run(sec, out, sizeof out);
	ck_assert_msg(rc == 0, "a good chain: exit %d: %s", rc, out);

	static const struct {
		const char *cert, *key;
		unsigned line;
		const char *what, *detail;
	} cases[] = {
		{ "missing", "a", 8, "[certificate x] certificate:", "missing.crt" },
		{ "a", "nothere", 9, "[certificate x] private_key:", "nothere.key" },
		{ "a", "garbage", 9, "[certificate x] private_key:", "garbage.key" },
		{ "a", "stray", 9, "[certificate x] private_key:", "does not match" },
		{ "old", "old", 8, "[certificate x] certificate:", "expired" },
		{ "il_badchain", "il", 8, "[certificate x] certificate:", "out of order" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(sec, sizeof sec, "[certificate x]\ncertificate = %s/%s.crt\nprivate_key = %s/%s.key\n", certs,
			 cases[i].cert, certs, cases[i].key);
		rc = check_run(sec, out, sizeof out);
		ck_assert_msg(rc != 0, "case %zu (%s/%s) passed -t: %s", i, cases[i].cert, cases[i].key, out);
		assert_names(out, cases[i].line, cases[i].what, cases[i].detail);
	}
	/* every one at once, each named */
	int n = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		n += snprintf(sec + n, sizeof sec - (size_t)n,
			      "[certificate x%zu]\ncertificate = %s/%s.crt\nprivate_key = %s/%s.key\n", i, certs,
			      cases[i].cert, certs, cases[i].key);
	rc = check_run(sec, out, sizeof out);
	ck_assert(rc != 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "[certificate x%zu] %s", i, cases[i].line == 8 ? "certificate:" : "private_key:");
		assert_names(out, 7 + 3 * (unsigned)i + (cases[i].line - 7), what, cases[i].detail);
	}
	/* two sections sharing a name with the same key type */
	snprintf(sec, sizeof sec,
		 "[certificate x]\ncertificate = %s/a.crt\nprivate_key = %s/a.key\n"
		 "[certificate y]\ncertificate = %s/a_new.crt\nprivate_key = %s/a_new.key\n",
		 certs, certs, certs, certs);
	rc = check_run(sec, out, sizeof out);
	ck_assert_msg(rc != 0, "two RSA sections for a.example passed -t: %s", out);
	assert_names(out, 10, "[certificate y] names:", "same key type");
	/* a TLS listener without any [certificate] */
	rc = check_run("", out, sizeof out);
	ck_assert_msg(rc != 0, "no certificate passed -t: %s", out);
	assert_names(out, 4, "[listener web] tls:", "certificate");
}
END_TEST

/* ------------------------------------------------------------------ TLS load */

/* K forked clients, each on a keep-alive TLS connection verifying every
 * response to GET /hello.txt (status and body) and the chain against the
 * test CA. A request that got no byte of answer before the connection
 * closed (a draining worker) is sent again on a new connection (retried);
 * anything else wrong is failed. */
struct tload_shared {
	uint64_t ok, failed, retried, connects;
	int stop;
	char first_problem[256];
};

struct tload {
	struct tload_shared *sh;
	pid_t kids[8];
	unsigned n;
};

static void tload_problem(struct tload_shared *sh, const char *what, const char *detail)
{
	/* the first kid to fail writes first_problem */
	if (__atomic_fetch_add(&sh->failed, 1, __ATOMIC_SEQ_CST) == 0)
		snprintf(sh->first_problem, sizeof sh->first_problem, "%s: %.200s", what, detail);
}

static void tload_kid(struct tload_shared *sh, int port)
{
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	struct h_tls t;
	bool up = false;
	while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		if (!up) {
			if (!h_tls_connect(&t, port, &o)) {
				tload_problem(sh, "handshake", t.why);
				h_tls_close(&t);
				continue;
			}
			__atomic_add_fetch(&sh->connects, 1, __ATOMIC_SEQ_CST);
			up = true;
		}
		uint64_t before = t.in_total;
		size_t n = 0;
		if (!h_tls_write(&t, get_hello, strlen(get_hello), &n)) {
			/* the server closed an idle connection: allowed */
			__atomic_add_fetch(&sh->retried, 1, __ATOMIC_SEQ_CST);
			h_tls_close(&t);
			up = false;
			continue;
		}
		struct h_response r;
		if (!h_tls_read_response(&t, &r, false)) {
			if (t.in_total == before)
				__atomic_add_fetch(&sh->retried, 1, __ATOMIC_SEQ_CST);
			else
				tload_problem(sh, "a response cut short", t.why);
			h_tls_close(&t);
			up = false;
			continue;
		}
		if (r.status != 200 || strcmp(r.body, hello) != 0)
			tload_problem(sh, "a wrong response", r.body ? r.body : "");
		else
			__atomic_add_fetch(&sh->ok, 1, __ATOMIC_SEQ_CST);
		char c[32];
		if (h_http_header(&r, "Connection", c, sizeof c) && strcasecmp(c, "close") == 0) {
			h_tls_close(&t);
			up = false;
		}
		h_http_response_free(&r);
	}
	if (up)
		h_tls_close(&t);
}

static void tload_start(struct tload *l, int port, unsigned n)
{
	l->sh = mmap(NULL, sizeof *l->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(l->sh != MAP_FAILED);
	memset(l->sh, 0, sizeof *l->sh);
	l->n = n;
	for (unsigned i = 0; i < n; i++) {
		pid_t p = fork();
		ck_assert(p >= 0);
		if (p == 0) {
			tload_kid(l->sh, port);
			_exit(0);
		}
		l->kids[i] = p;
	}
}

/* Wait until at least more responses were right (asserts no failure). */
static void tload_wait_ok(struct tload *l, uint64_t more, struct h_drover *d)
{
	uint64_t want = __atomic_load_n(&l->sh->ok, __ATOMIC_SEQ_CST) + more;
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (__atomic_load_n(&l->sh->ok, __ATOMIC_SEQ_CST) < want) {
		ck_assert_msg(h_left_ms(deadline) > 0, "the TLS load stalled (%" PRIu64 " ok, %" PRIu64 " failed: %s)\n%s",
			      l->sh->ok, l->sh->failed, l->sh->first_problem, h_log_end(d));
		h_pause_ms(10);
	}
}

static void tload_stop(struct tload *l)
{
	__atomic_store_n(&l->sh->stop, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < l->n; i++) {
		int st;
		ck_assert(waitpid(l->kids[i], &st, 0) == l->kids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "load client %u ended with status %d", i, st);
	}
}

static void tload_free(struct tload *l)
{
	munmap(l->sh, sizeof *l->sh);
}

/* ------------------------------------------------------------------ reload */

static const char *droverctl_bin(void)
{
	const char *b = getenv("DROVERCTL_BIN");
	return b && *b ? b : "./src/droverctl";
}

/* Reload by the control socket's "reload" (or SIGHUP), then wait until
 * every worker of the old generation has exited: "reload" answers once
 * the old workers were told to drain, and until one has read that it may
 * still accept a connection and serve it with the old certificate. */
static void reload_how(struct h_drover *d, bool sighup)
{
	pid_t old[16];
	size_t n_old = h_worker_pids(d, old, 16);
	char out[4096];
	if (sighup)
		h_drover_kill(d, SIGHUP);
	else
		h_ctl_ok(d, "reload", out, sizeof out);
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		pid_t now[16];
		size_t n = h_worker_pids(d, now, 16), left = 0;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n_old; j++)
				left += now[i] == old[j];
		if (left == 0 && n > 0)
			return;
		ck_assert_msg(h_left_ms(deadline) > 0, "the old generation did not exit after a reload\n%s",
			      h_log_end(d));
		h_pause_ms(10);
	}
}

static void reload_ok(struct h_drover *d)
{
	reload_how(d, false);
}

/* Copy certs/FROM.crt and .key to DIR/live.crt and live.key (each replaced
 * in one step, as certbot's deploy does). */
static void install_live(const char *dir, const char *crt_from, const char *key_from)
{
	char src[600], tmp[600], dst[600];
	snprintf(src, sizeof src, "%s/%s.crt", certs, crt_from);
	snprintf(tmp, sizeof tmp, "%s/live.crt.new", dir);
	snprintf(dst, sizeof dst, "%s/live.crt", dir);
	h_tls_cat(tmp, (const char *const[]){ src, NULL });
	ck_assert(rename(tmp, dst) == 0);
	snprintf(src, sizeof src, "%s/%s.key", certs, key_from);
	snprintf(tmp, sizeof tmp, "%s/live.key.new", dir);
	snprintf(dst, sizeof dst, "%s/live.key", dir);
	h_tls_cat(tmp, (const char *const[]){ src, NULL });
	ck_assert(chmod(tmp, 0600) == 0);
	ck_assert(rename(tmp, dst) == 0);
}

START_TEST(a_renewed_certificate_by_reload_under_tls_load_loses_nothing)
{
	struct h_site s;
	h_site_init(&s);
	install_live(s.tmp, "a", "a");
	char sec[1024];
	snprintf(sec, sizeof sec, "[certificate live]\ncertificate = %s/live.crt\nprivate_key = %s/live.key\n", s.tmp,
		 s.tmp);
	tsite_start(&s, 2, sec, NULL, NULL);
	struct h_tls_opts o;
	char serial[80];
	served_serial(s.port, opts_sni(&o, "a.example"), serial, sizeof serial);
	ck_assert_str_eq(serial, SERIAL_A);

	struct tload l;
	char out[4096];
	tload_start(&l, s.port, 4);
	tload_wait_ok(&l, 200, s.d);
	install_live(s.tmp, "a_new", "a_new");
	reload_ok(s.d);
	tload_wait_ok(&l, 200, s.d);
	/* twice more, back and forth, under the same load */
	install_live(s.tmp, "a", "a");
	reload_how(s.d, true); /* SIGHUP, as systemctl reload sends */
	tload_wait_ok(&l, 200, s.d);
	served_serial(s.port, &o, serial, sizeof serial);
	ck_assert_msg(strcmp(serial, SERIAL_A) == 0, "after SIGHUP: serial %s, expected %s", serial, SERIAL_A);
	install_live(s.tmp, "a_new", "a_new");
	reload_ok(s.d);
	tload_wait_ok(&l, 200, s.d);
	/* and a binary upgrade under the same load */
	h_ctl_ok(s.d, "upgrade", out, sizeof out);
	tload_wait_ok(&l, 200, s.d);
	tload_stop(&l);
	ck_assert_msg(l.sh->failed == 0, "%" PRIu64 " failed request(s) of %" PRIu64 ": %s", l.sh->failed,
		      l.sh->ok + l.sh->failed, l.sh->first_problem);
	ck_assert_msg(l.sh->connects >= 4, "connects %" PRIu64, l.sh->connects);
	tload_free(&l);
	served_serial(s.port, &o, serial, sizeof serial);
	ck_assert_msg(strcmp(serial, SERIAL_A_NEW) == 0, "after the reload: serial %s, expected %s", serial,
		      SERIAL_A_NEW);
	/* and the status JSON lists the renewed one */
	struct h_tls st;
	ck_assert_msg(h_tls_connect(&st, s.port, &o), "%s", st.why);
	char *json = status_on(&st);
	h_tls_close(&st);
	ck_assert_msg(strstr(json, "\"serial\":\"" SERIAL_A_NEW "\"") && !strstr(json, "\"serial\":\"" SERIAL_A "\""),
		      "status after the reload: %s", json);
	free(json);

	/* a key that matches no certificate: droverctl reload fails, naming
	 * the file and the line, and the renewed certificate is still served */
	install_live(s.tmp, "a", "stray");
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "'%s' -s '%s/control.sock' reload 2>&1", droverctl_bin(), s.d->dir);
	int rc = h_run(cmd, out, sizeof out);
	char want[400];
	snprintf(want, sizeof want, "%s:", s.d->config_path);
	ck_assert_msg(rc == 1, "droverctl reload with a stray key exited %d: %s", rc, out);
	ck_assert_msg(strstr(out, want) && strstr(out, "private_key") && strstr(out, "does not match"),
		      "droverctl's output does not name %s and the key: %s", want, out);
	ck_assert(h_log_wait(s.d, "reload failed"));
	for (int i = 0; i < 4; i++) {
		served_serial(s.port, &o, serial, sizeof serial);
		ck_assert_msg(strcmp(serial, SERIAL_A_NEW) == 0, "after a failed reload: serial %s, expected %s", serial,
			      SERIAL_A_NEW);
	}
	hello_ok(s.port, &o, NULL, 0);
	h_site_stop(&s);
}
END_TEST

/* A download in flight (the client not reading, the server's socket full)
 * while the generation is replaced: it finishes, every byte right, on the
 * old generation (a TLS session cannot move to another process). */
START_TEST(tls_downloads_in_flight_finish_across_a_reload_and_an_upgrade)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	size_t len = 8u << 20;
	unsigned char *data = malloc(len);
	ck_assert(data != NULL);
	fill_pattern(data, len, 0xd0);
	char path[1024];
	h_path_join(path, sizeof path, s.www, "big.bin");
	FILE *f = fopen(path, "w");
	ck_assert(f != NULL);
	ck_assert(fwrite(data, 1, len, f) == len);
	ck_assert(fclose(f) == 0);
	tsite_start(&s, 2, a, NULL, NULL);
	static const char *const how[] = { "reload", "upgrade" };
	for (int i = 0; i < 2; i++) {
		struct h_tls_opts o;
		opts_sni(&o, "a.example");
		o.rcvbuf = 16384;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		static const char req[] = "GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
		h_tls_write_all(&t, req, sizeof req - 1);
		char out[4096];
		h_ctl_ok(s.d, how[i], out, sizeof out);
		/* new connections are served meanwhile */
		struct h_tls_opts o2;
		hello_ok(s.port, opts_sni(&o2, "a.example"), NULL, 0);
		struct h_response r;
		ck_assert_msg(h_tls_read_response(&t, &r, false), "%s: the download broke: %s\n%s", how[i], t.why,
			      h_log_end(s.d));
		ck_assert_int_eq(r.status, 200);
		ck_assert_uint_eq(r.body_len, len);
		size_t bad = 0;
		while (bad < len && r.body[bad] == (char)data[bad])
			bad++;
		ck_assert_msg(bad == len, "%s: first wrong byte at offset %zu", how[i], bad);
		h_http_response_free(&r);
		h_tls_close(&t);
		ck_assert(h_wait_workers(s.d, 2));
	}
	free(data);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ resumption */

/* The per-worker numbers of the status JSON: pid, accepted, and the TLS
 * handshake counters (-1 when the JSON has no such key). */
struct wstat {
	long pid;
	long long accepted, tls_full, tls_resumed, tls_failed;
};

static long long json_num(const char *obj, const char *end, const char *key)
{
	char k[64];
	snprintf(k, sizeof k, "\"%s\":", key);
	const char *p = strstr(obj, k);
	if (!p || (end && p > end))
		return -1;
	return strtoll(p + strlen(k), NULL, 10);
}

static size_t parse_workers(const char *json, struct wstat *w, size_t max)
{
	size_t n = 0;
	const char *p = strstr(json, "\"workers\":[");
	ck_assert_msg(p != NULL, "no workers in %s", json);
	while (n < max && (p = strstr(p, "{\"pid\":"))) {
		const char *end = strchr(p, '}');
		w[n].pid = (long)json_num(p, end, "pid");
		w[n].accepted = json_num(p, end, "accepted");
		w[n].tls_full = json_num(p, end, "tls_full");
		w[n].tls_resumed = json_num(p, end, "tls_resumed");
		w[n].tls_failed = json_num(p, end, "tls_failed");
		n++;
		p = end ? end : p + 1;
	}
	return n;
}

/* GET /status on t; the JSON (malloc'd). */
static char *status_on(struct h_tls *t)
{
	static const char req[] = "GET /status HTTP/1.1\r\nHost: a\r\n\r\n";
	h_tls_write_all(t, req, sizeof req - 1);
	struct h_response r;
	ck_assert_msg(h_tls_read_response(t, &r, false), "status: %s", t->why);
	ck_assert_int_eq(r.status, 200);
	return r.body;
}

/* A fresh session from a full handshake on port, with TLS version v. */
static void *new_session_v(int port, int v)
{
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	o.max_version = v;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, &o), "%s", t.why);
	ck_assert_int_eq(h_tls_version(&t), v);
	ck_assert(!h_tls_reused(&t));
	h_tls_write_all(&t, get_hello, strlen(get_hello));
	struct h_response r;
	ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
	h_http_response_free(&r);
	void *sess = h_tls_session(&t);
	h_tls_close(&t);
	return sess;
}

/* GET /hello.txt on t: 200 and the body. */
static void hello_ok_on(struct h_tls *t)
{
	h_tls_write_all(t, get_hello, strlen(get_hello));
	struct h_response r;
	ck_assert_msg(h_tls_read_response(t, &r, false), "%s", t->why);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, hello);
	h_http_response_free(&r);
}

static void *new_session(int port)
{
	return new_session_v(port, TLS1_3_VERSION);
}

/* Connect with sess; whether it was resumed with TLS version v. The
 * status JSON read on that connection in json (may be NULL). */
static bool resume_v(int port, void *sess, char **json, int v)
{
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	o.session = sess;
	o.max_version = v;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, &o), "%s", t.why);
	bool reused = h_tls_reused(&t) && h_tls_version(&t) == v;
	if (json)
		*json = status_on(&t);
	else
		hello_ok_on(&t);
	h_tls_close(&t);
	return reused;
}

static bool resume(int port, void *sess, char **json)
{
	return resume_v(port, sess, json, TLS1_3_VERSION);
}

START_TEST(sessions_resume_on_both_workers_after_a_reload_and_a_binary_upgrade)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 2, a, NULL, NULL);
	void *sess = new_session(s.port);
	for (int phase = 0; phase < 3; phase++) {
		static const char *const names[] = { "start", "reload", "upgrade" };
		char out[4096];
		if (phase == 1)
			h_ctl_ok(s.d, "reload", out, sizeof out);
		else if (phase == 2)
			h_ctl_ok(s.d, "upgrade", out, sizeof out);
		if (phase)
			ck_assert(h_wait_workers(s.d, 2));
		/* resume until both workers took at least one resumed
		 * connection, and 4 times at least: each connection's worker is
		 * the one whose "accepted" grew since the previous one */
		struct wstat prev[8], cur[8];
		size_t n_prev = 0;
		long seen[2] = { 0, 0 };
		int resumed = 0;
		for (int i = 0; i < 200 && (resumed < 4 || !seen[0] || !seen[1]); i++) {
			char *json;
			ck_assert_msg(resume(s.port, sess, &json), "%s: attempt %d was not resumed with TLS 1.3",
				      names[phase], i + 1);
			resumed++;
			size_t n = parse_workers(json, cur, 8);
			free(json);
			for (size_t k = 0; k < n && n_prev; k++) {
				for (size_t j = 0; j < n_prev; j++) {
					if (prev[j].pid != cur[k].pid || cur[k].accepted <= prev[j].accepted)
						continue;
					if (!seen[0] || seen[0] == cur[k].pid)
						seen[0] = cur[k].pid;
					else
						seen[1] = cur[k].pid;
				}
			}
			memcpy(prev, cur, sizeof cur);
			n_prev = n;
		}
		ck_assert_msg(resumed >= 4 && seen[0] && seen[1],
			      "%s: %d resumed, but not seen on two workers (%ld, %ld)", names[phase], resumed, seen[0],
			      seen[1]);
	}
	h_tls_session_free(sess);
	h_site_stop(&s);
}
END_TEST

/* The issue's own words: openssl s_client -sess_out, then -sess_in. */
static void s_client(int port, const char *sess, bool in, char *out, size_t cap)
{
	char cmd[1600];
	snprintf(cmd, sizeof cmd,
		 "printf 'GET /hello.txt HTTP/1.1\\r\\nHost: a.example\\r\\nConnection: close\\r\\n\\r\\n' | "
		 "openssl s_client -connect 127.0.0.1:%d -servername a.example -CAfile '%s' -verify_return_error "
		 "-ign_eof -%s '%s' 2>&1",
		 port, cafile, in ? "sess_in" : "sess_out", sess);
	/* exit 0 too: "Connection: close" ends with close_notify */
	int rc = h_run(cmd, out, cap);
	ck_assert_msg(rc == 0 && strstr(out, hello), "s_client exited %d: %s", rc, out);
}

START_TEST(openssl_s_client_sess_out_then_sess_in_is_reused_tls13)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 2, a, NULL, NULL);
	char sess[700], out[16384];
	snprintf(sess, sizeof sess, "%s/sess.pem", s.tmp);
	s_client(s.port, sess, false, out, sizeof out);
	ck_assert_msg(strstr(out, "New, TLSv1.3"), "%s", out);
	for (int phase = 0; phase < 3; phase++) {
		if (phase == 1)
			reload_ok(s.d);
		if (phase == 2) {
			h_ctl_ok(s.d, "upgrade", out, sizeof out);
			ck_assert(h_wait_workers(s.d, 2));
		}
		for (int i = 0; i < 4; i++) {
			s_client(s.port, sess, true, out, sizeof out);
			ck_assert_msg(strstr(out, "Reused, TLSv1.3"), "phase %d, -sess_in %d: %s", phase, i + 1, out);
		}
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(tls12_sessions_resume_on_every_worker_and_after_a_reload)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 2, a, NULL, NULL);
	void *sess = new_session_v(s.port, TLS1_2_VERSION);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(resume_v(s.port, sess, NULL, TLS1_2_VERSION), "TLS 1.2 resumption %d failed", i + 1);
	reload_ok(s.d);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(resume_v(s.port, sess, NULL, TLS1_2_VERSION), "TLS 1.2 resumption %d after a reload failed",
			      i + 1);
	h_tls_session_free(sess);
	h_site_stop(&s);
}
END_TEST

START_TEST(a_shared_ticket_key_file_resumes_across_instances_and_none_does_not)
{
	char keys[600];
	snprintf(keys, sizeof keys, "%s/tickets.%d", certs, (int)getpid());
	char cmd[800];
	snprintf(cmd, sizeof cmd, "openssl rand -out '%s' 80", keys);
	ck_assert_int_eq(h_run(cmd, NULL, 0), 0);
	char a[512], http[1024];
	cert_section(a, sizeof a, "a", "a");
	snprintf(http, sizeof http, "[tls]\nticket_key_file = %s\n", keys);
	char sec[1536];
	snprintf(sec, sizeof sec, "%s%s", http, a);
	struct h_site s1, s2, s3;
	h_site_init(&s1);
	h_site_init(&s2);
	h_site_init(&s3);
	tsite_start(&s1, 1, sec, NULL, NULL);
	tsite_start(&s2, 1, sec, NULL, NULL);
	tsite_start(&s3, 1, a, NULL, NULL); /* its own keys */
	void *sess = new_session(s1.port);
	for (int i = 0; i < 2; i++) {
		ck_assert_msg(resume(s2.port, sess, NULL), "a session from one instance did not resume on the other");
		ck_assert_msg(resume(s1.port, sess, NULL), "a session did not resume on its own instance");
	}
	ck_assert_msg(!resume(s3.port, sess, NULL), "resumed on an instance without the shared key file");
	h_tls_session_free(sess);
	/* and two instances without the file share nothing */
	sess = new_session(s3.port);
	ck_assert(resume(s3.port, sess, NULL));
	ck_assert_msg(!resume(s1.port, sess, NULL), "a session of generated keys resumed elsewhere");
	h_tls_session_free(sess);
	h_site_stop(&s1);
	h_site_stop(&s2);
	h_site_stop(&s3);
	unlink(keys);
}
END_TEST

/* DIR/NAME: the concatenation of 80-byte keys k1 (and k2). */
static void key_file(const char *path, const char *k1, const char *k2)
{
	h_tls_cat(path, (const char *const[]){ k1, k2, NULL });
}

START_TEST(ticket_key_file_first_key_encrypts_all_decrypt_reload_rereads_and_t_checks)
{
	char k1[600], k2[600], fa[600], fb[600];
	snprintf(k1, sizeof k1, "%s/k1.%d", certs, (int)getpid());
	snprintf(k2, sizeof k2, "%s/k2.%d", certs, (int)getpid());
	snprintf(fa, sizeof fa, "%s/fa.%d", certs, (int)getpid());
	snprintf(fb, sizeof fb, "%s/fb.%d", certs, (int)getpid());
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "openssl rand -out '%s' 80 && openssl rand -out '%s' 80", k1, k2);
	ck_assert_int_eq(h_run(cmd, NULL, 0), 0);
	key_file(fa, k1, NULL); /* A: K1 */
	key_file(fb, k2, k1);   /* B: K2 encrypts, K1 decrypts too */
	char a[512], sa[1536], sb[1536];
	cert_section(a, sizeof a, "a", "a");
	snprintf(sa, sizeof sa, "[tls]\nticket_key_file = %s\n%s", fa, a);
	snprintf(sb, sizeof sb, "[tls]\nticket_key_file = %s\n%s", fb, a);
	struct h_site A, B;
	h_site_init(&A);
	h_site_init(&B);
	tsite_start(&A, 1, sa, NULL, NULL);
	tsite_start(&B, 1, sb, NULL, NULL);
	void *from_a = new_session(A.port), *from_b = new_session(B.port);
	ck_assert_msg(resume(B.port, from_a, NULL), "B does not decrypt with its second key");
	ck_assert_msg(!resume(A.port, from_b, NULL), "A decrypted a ticket of a key it does not have");
	ck_assert(resume(B.port, from_b, NULL));
	/* A's file replaced by B's and A reloaded: re-read, K2 now decrypts there */
	key_file(fa, k2, NULL);
	reload_ok(A.d);
	ck_assert_msg(resume(A.port, from_b, NULL), "a reload did not re-read ticket_key_file");
	ck_assert_msg(!resume(A.port, from_a, NULL), "a key removed from ticket_key_file still decrypts after a reload");
	h_tls_session_free(from_a);
	h_tls_session_free(from_b);
	h_site_stop(&A);
	h_site_stop(&B);
	/* drover -t: a file that is not whole 80-byte keys, and one missing */
	h_write_file(fa, "short\n");
	char sec[2048], out[8192];
	for (int i = 0; i < 2; i++) {
		snprintf(sec, sizeof sec, "[tls]\nticket_key_file = %s%s\n%s", fa, i ? ".missing" : "", a);
		int rc = check_run(sec, out, sizeof out);
		ck_assert_msg(rc != 0, "a bad ticket_key_file passed -t: %s", out);
		assert_names(out, 8, "[tls] ticket_key_file:", NULL);
	}
	unlink(k1);
	unlink(k2);
	unlink(fa);
	unlink(fb);
}
END_TEST

/* ------------------------------------------------------------------ privileges */

START_TEST(a_root_only_private_key_serves_with_workers_as_nobody)
{
	if (geteuid() != 0) {
		h_skip("not root: cannot make a root-only key and drop to nobody");
		return;
	}
	struct h_site s;
	h_site_init(&s);
	install_live(s.tmp, "a", "a"); /* live.key: 0600, owned by root */
	char key[600];
	snprintf(key, sizeof key, "%s/live.key", s.tmp);
	struct stat st;
	ck_assert(stat(key, &st) == 0);
	ck_assert(st.st_uid == 0 && (st.st_mode & 0777) == 0600);
	char sec[1024];
	snprintf(sec, sizeof sec, "[certificate live]\ncertificate = %s/live.crt\nprivate_key = %s\n", s.tmp, key);
	tsite_start(&s, 2, sec, NULL, "user = nobody\ngroup = nogroup\n");
	pid_t w[8];
	size_t n = h_worker_pids(s.d, w, 8);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		char p[64];
		snprintf(p, sizeof p, "/proc/%ld", (long)w[i]);
		struct stat ps;
		ck_assert(stat(p, &ps) == 0);
		ck_assert_msg(ps.st_uid == 65534, "worker %ld runs as uid %u", (long)w[i], (unsigned)ps.st_uid);
	}
	struct h_tls_opts o;
	char serial[80];
	for (int i = 0; i < 4; i++) {
		hello_ok(s.port, opts_sni(&o, "a.example"), serial, sizeof serial);
		ck_assert_str_eq(serial, SERIAL_A);
	}
	/* and a reload re-reads it (the supervisor is still root) */
	install_live(s.tmp, "a_new", "a_new");
	reload_ok(s.d);
	served_serial(s.port, &o, serial, sizeof serial);
	ck_assert_str_eq(serial, SERIAL_A_NEW);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ the read path */

static void same_workers(struct h_drover *d, const pid_t *before, size_t n)
{
	pid_t now[8];
	size_t k = h_worker_pids(d, now, 8);
	ck_assert_uint_eq(k, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(now[i] == before[i], "worker %ld is gone (crashed?)\n%s", (long)before[i], h_log_end(d));
}

START_TEST(garbage_a_truncated_record_and_renegotiation_close_the_connection_only)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, NULL, NULL);
	pid_t w[8];
	size_t nw = h_worker_pids(s.d, w, 8);
	ck_assert_uint_eq(nw, 1);
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	for (int v = 0; v < 2; v++) {
		o.max_version = v ? TLS1_2_VERSION : 0;
		/* garbage after the handshake */
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		static const char junk[] = "\x00\x01GET / HTTP/1.1\r\n\r\n garbage that is no TLS record \xff\xfe";
		h_write_all(t.fd, junk, sizeof junk - 1);
		ck_assert_msg(h_tls_wait_closed(&t), "garbage: not closed");
		h_tls_close(&t);
		hello_ok(s.port, &o, NULL, 0);
		/* a record header promising more than comes, then a close */
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		unsigned char rec[5 + 100] = { 0x17, 0x03, 0x03, 0x10, 0x00 };
		fill_pattern(rec + 5, 100, 3);
		h_write_all(t.fd, rec, sizeof rec);
		ck_assert(shutdown(t.fd, SHUT_WR) == 0);
		ck_assert_msg(raw_wait_closed(t.fd), "truncated record: not closed");
		h_tls_close(&t);
		hello_ok(s.port, &o, NULL, 0);
		/* a truncated record in the middle of a request's records */
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		h_tls_write_all(&t, "GET /hello.txt HTTP/1.1\r\n", 25);
		h_write_all(t.fd, rec, 20);
		ck_assert(shutdown(t.fd, SHUT_WR) == 0);
		ck_assert_msg(raw_wait_closed(t.fd), "truncated record mid-request: not closed");
		h_tls_close(&t);
		hello_ok(s.port, &o, NULL, 0);
	}
	/* renegotiation on a TLS 1.2 connection: refused */
	{
		o.max_version = TLS1_2_VERSION;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		ck_assert_int_eq(h_tls_version(&t), TLS1_2_VERSION);
		ck_assert(SSL_renegotiate(t.ssl) == 1);
		ERR_clear_error();
		/* a blocking client runs the whole second handshake here; the
		 * server answers its ClientHello with a no_renegotiation alert */
		sigset_t old;
		h_tls_sigpipe_block(&old);
		int r = SSL_do_handshake(t.ssl);
		h_tls_sigpipe_restore(&old);
		unsigned long e = ERR_peek_error();
		char why[256] = "";
		ERR_error_string_n(e, why, sizeof why);
		ERR_clear_error();
		ck_assert_msg(r != 1, "a renegotiation was accepted");
		ck_assert_msg(ERR_GET_REASON(e) == SSL_R_NO_RENEGOTIATION, "renegotiation failed otherwise: %s", why);
		h_tls_close(&t);
		hello_ok(s.port, &o, NULL, 0);
	}
	same_workers(s.d, w, nw);
	/* none of it is an error worth a line at the default level: peers
	 * that break TLS or close without close_notify are logged at debug */
	ck_assert_msg(!h_log_contains(s.d, "tls") && !h_log_contains(s.d, "error") && !h_log_contains(s.d, "warning"),
		      "logged at the default level:\n%s", h_log_end(s.d));
	h_site_stop(&s);
}
END_TEST

START_TEST(a_close_without_close_notify_is_logged_at_debug)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, NULL, "log_level = debug\n");
	struct h_tls_opts o;
	/* h_tls_request closes its socket without close_notify */
	hello_ok(s.port, opts_sni(&o, "a.example"), NULL, 0);
	ck_assert_msg(h_log_wait(s.d, "without close_notify"), "not logged at debug:\n%s", h_log_end(s.d));
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ HSTS and the access log */

/* Wait until the file holds a line containing a and ending in end. */
static bool log_line_wait(const char *path, const char *a, const char *end)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	for (;;) {
		char *all = h_slurp(path, NULL);
		bool found = false;
		for (char *line = all, *nl; line && *line && !found; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				break;
			*nl = '\0';
			size_t len = strlen(line), el = strlen(end);
			found = strstr(line, a) && len >= el && strcmp(line + len - el, end) == 0;
		}
		free(all);
		if (found)
			return true;
		if (h_left_ms(deadline) == 0)
			return false;
		h_pause_ms(10);
	}
}

START_TEST(hsts_on_tls_responses_only_and_the_tls_version_in_the_extended_access_log)
{
	struct h_site s;
	h_site_init(&s);
	h_site_file(&s, "hello.txt", hello);
	char a[512], http[1536];
	cert_section(a, sizeof a, "a", "a");
	snprintf(http, sizeof http,
		 "mime_types = /etc/mime.types\nhsts = 1d\nhsts_include_subdomains = yes\n"
		 "access_log_format = extended\naccess_log = %s/access.log\n%s",
		 s.tmp, a);
	h_site_start(&s, &(struct h_site_opts){ .web = "tls = yes\n", .http = http, .admin = true });
	struct h_tls_opts o;
	opts_sni(&o, "a.example");
	static const char *const paths[] = { "/hello.txt?tls", "/missing-over-tls" };
	static const int status[] = { 200, 404 };
	for (int i = 0; i < 2; i++) {
		char req[256];
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n", paths[i]);
		struct h_response r;
		h_tls_request(s.port, &o, req, &r, NULL, 0);
		ck_assert_int_eq(r.status, status[i]);
		char sts[128];
		ck_assert_msg(h_http_header(&r, "Strict-Transport-Security", sts, sizeof sts), "%s: no HSTS over TLS: %s",
			      paths[i], r.headers);
		ck_assert_str_eq(sts, "max-age=86400; includeSubDomains");
		h_http_response_free(&r);
	}
	/* the same site over a plain listener: no HSTS */
	int fd = h_connect_unix(s.admin);
	ck_assert(fd >= 0);
	static const char plain[] = "GET /hello.txt?plain HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
	h_write_all(fd, plain, sizeof plain - 1);
	struct h_response r;
	ck_assert(h_http_read_response(fd, &r, false));
	close(fd);
	ck_assert_int_eq(r.status, 200);
	char sts[128];
	ck_assert_msg(!h_http_header(&r, "Strict-Transport-Security", sts, sizeof sts), "HSTS over plain HTTP: %s",
		      r.headers);
	h_http_response_free(&r);
	char log[600];
	snprintf(log, sizeof log, "%s/access.log", s.tmp);
	ck_assert_msg(log_line_wait(log, "GET /hello.txt?tls HTTP/1.1\" 200", " TLSv1.3"),
		      "no access log line with the TLS version");
	ck_assert_msg(log_line_wait(log, "GET /missing-over-tls HTTP/1.1\" 404", " TLSv1.3"),
		      "no access log line with the TLS version for the 404");
	ck_assert_msg(log_line_wait(log, "GET /hello.txt?plain HTTP/1.1\" 200", " -"),
		      "no access log line with '-' for plain HTTP");
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ close_notify */

START_TEST(an_idle_keepalive_close_sends_close_notify)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, "keepalive_timeout = 1s\n", NULL);
	for (int v = 0; v < 2; v++) {
		struct h_tls_opts o;
		opts_sni(&o, "a.example");
		o.max_version = v ? TLS1_2_VERSION : 0;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		hello_ok_on(&t);
		int end = h_tls_read_end(&t);
		ck_assert_msg(end == 1, "version %s: the idle close ended with %d (%s), not close_notify",
			      v ? "1.2" : "1.3", end, t.why);
		h_tls_close(&t);
	}
	h_site_stop(&s);
}
END_TEST

/* An idle keep-alive TLS connection of a generation that a reload drains
 * is ended with close_notify. */
START_TEST(a_draining_worker_ends_idle_tls_connections_with_close_notify)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, NULL, NULL);
	struct h_tls_opts o;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, s.port, opts_sni(&o, "a.example")), "%s", t.why);
	hello_ok_on(&t);
	char out[4096];
	h_ctl_ok(s.d, "reload", out, sizeof out);
	int end = h_tls_read_end(&t);
	ck_assert_msg(end == 1, "drained with %d (%s), not close_notify", end, t.why);
	h_tls_close(&t);
	h_site_stop(&s);
}
END_TEST

/* After the response to "Connection: close", http_response_done() closes
 * without a lingering shutdown(): close_notify must come all the same
 * (without it OpenSSL clients report "unexpected eof while reading" and
 * openssl s_client exits 1; fixed in main by cf8a10e). */
START_TEST(the_server_sends_close_notify_after_connection_close)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 1, a, NULL, NULL);
	for (int v = 0; v < 2; v++) {
		struct h_tls_opts o;
		opts_sni(&o, "a.example");
		o.max_version = v ? TLS1_2_VERSION : 0;
		struct h_tls t;
		ck_assert_msg(h_tls_connect(&t, s.port, &o), "%s", t.why);
		static const char req[] = "GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
		h_tls_write_all(&t, req, sizeof req - 1);
		struct h_response r;
		ck_assert_msg(h_tls_read_response(&t, &r, false), "%s", t.why);
		ck_assert_int_eq(r.status, 200);
		h_http_response_free(&r);
		int end = h_tls_read_end(&t);
		ck_assert_msg(end == 1, "version %s: Connection: close ended with %d (%s), not close_notify",
			      v ? "1.2" : "1.3", end, t.why);
		h_tls_close(&t);
	}
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ status */

START_TEST(the_status_json_counts_full_and_resumed_handshakes)
{
	struct h_site s;
	h_site_init(&s);
	char a[512];
	cert_section(a, sizeof a, "a", "a");
	tsite_start(&s, 2, a, NULL, NULL);
	enum { N = 5, M = 6 };
	void *sess = NULL;
	for (int i = 0; i < N; i++) {
		void *x = new_session(s.port);
		if (sess)
			h_tls_session_free(x);
		else
			sess = x;
	}
	for (int i = 0; i < M; i++)
		ck_assert(resume(s.port, sess, NULL));
	h_tls_session_free(sess);
	/* a handshake that fails (TLS 1.0, refused) */
	struct h_tls bad;
	struct h_tls_opts old = { .min_version = TLS1_VERSION, .max_version = TLS1_VERSION };
	ck_assert(!h_tls_connect(&bad, s.port, &old));
	h_tls_close(&bad);
	/* read on one more full handshake (counted too) */
	struct h_tls_opts o;
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, s.port, opts_sni(&o, "a.example")), "%s", t.why);
	char *json = status_on(&t);
	h_tls_close(&t);
	struct wstat w[8];
	size_t n = parse_workers(json, w, 8);
	ck_assert_uint_eq(n, 2);
	long long full = 0, resumed = 0;
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(w[i].tls_full >= 0 && w[i].tls_resumed >= 0,
			      "the status JSON has no per-worker tls_full / tls_resumed: %s", json);
		full += w[i].tls_full;
		resumed += w[i].tls_resumed;
	}
	ck_assert_msg(full >= N + 1 && resumed >= M, "status counts %lld full and %lld resumed handshakes: %s", full,
		      resumed, json);
	long long failed = 0;
	for (size_t i = 0; i < n; i++)
		failed += w[i].tls_failed;
	ck_assert_msg(failed >= 1, "a refused TLS 1.0 handshake is not counted in tls_failed: %s", json);
	/* the loaded certificate: names, serial and notAfter (as the file says) */
	const char *c = strstr(json, "\"certificates\":[");
	ck_assert_msg(c != NULL, "the status JSON lists no certificates: %s", json);
	char want[256], path[600];
	snprintf(path, sizeof path, "%s/a.crt", certs);
	FILE *f = fopen(path, "r");
	ck_assert(f != NULL);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert(x != NULL);
	struct tm tm;
	ck_assert(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1);
	X509_free(x);
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	static const char *const parts[] = { "\"names\":[\"a.example\",\"www.a.example\"]",
					     "\"serial\":\"" SERIAL_A "\"", "\"key_type\":\"RSA\"", NULL };
	for (size_t i = 0; parts[i]; i++)
		ck_assert_msg(strstr(c, parts[i]), "certificates: no %s in %s", parts[i], c);
	snprintf(want, sizeof want, "\"not_after\":\"%s\"", when);
	ck_assert_msg(strstr(c, want), "certificates: no %s in %s", want, c);
	free(json);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ main */

int main(void)
{
	SSL_library_init();
	Suite *s = suite_create("tls");
	TCase *hs = tcase_create("handshake");
	tcase_add_test(hs, tls13_and_tls12_handshakes_sni_wildcard_default_and_alpn);
	tcase_add_test(hs, a_tls10_client_is_refused_by_the_server);
	tcase_add_test(hs, curl_over_tls13_and_tls12);
	tcase_add_test(hs, rsa_and_ecdsa_sections_sharing_names_are_chosen_by_signature_algorithms);
	tcase_add_test(hs, tls_section_protocols_suites_ciphers_groups_tickets_and_alpn);
	tcase_add_test(hs, names_override_the_subject_alt_names_and_a_reload_rereads_them);
	tcase_add_unchecked_fixture(hs, make_certs, NULL);
	suite_add_tcase(s, hs);
	TCase *http = tcase_create("http");
	tcase_add_test(http, keepalive_pipelining_range_and_304_over_tls);
	tcase_add_test(http, pipelined_requests_in_separate_records_of_one_segment_are_all_answered);
	tcase_add_test(http, the_same_answers_over_tls_as_over_plain_http);
	tcase_add_test(http, a_32_mib_download_over_tls_has_every_byte_right);
	tcase_add_test(http, a_silent_tls_client_is_closed_at_header_timeout);
	tcase_add_test(http, a_trickled_client_hello_is_closed_at_header_timeout);
	tcase_add_test(http, two_hundred_half_open_handshakes_do_not_stop_another_client);
	tcase_add_test(http, echo_over_tls);
	tcase_add_test(http, hsts_on_tls_responses_only_and_the_tls_version_in_the_extended_access_log);
	tcase_add_test(http, garbage_a_truncated_record_and_renegotiation_close_the_connection_only);
	tcase_add_test(http, a_close_without_close_notify_is_logged_at_debug);
	tcase_add_test(http, an_idle_keepalive_close_sends_close_notify);
	tcase_add_test(http, a_draining_worker_ends_idle_tls_connections_with_close_notify);
	tcase_add_test(http, the_server_sends_close_notify_after_connection_close);
	tcase_add_unchecked_fixture(http, make_certs, NULL);
	suite_add_tcase(s, http);
	TCase *ops = tcase_create("ops");
	tcase_add_test(ops, drover_t_names_file_and_line_of_every_tls_error);
	tcase_add_test(ops, a_renewed_certificate_by_reload_under_tls_load_loses_nothing);
	tcase_add_test(ops, tls_downloads_in_flight_finish_across_a_reload_and_an_upgrade);
	tcase_add_test(ops, sessions_resume_on_both_workers_after_a_reload_and_a_binary_upgrade);
	tcase_add_test(ops, openssl_s_client_sess_out_then_sess_in_is_reused_tls13);
	tcase_add_test(ops, tls12_sessions_resume_on_every_worker_and_after_a_reload);
	tcase_add_test(ops, a_shared_ticket_key_file_resumes_across_instances_and_none_does_not);
	tcase_add_test(ops, ticket_key_file_first_key_encrypts_all_decrypt_reload_rereads_and_t_checks);
	tcase_add_test(ops, a_root_only_private_key_serves_with_workers_as_nobody);
	tcase_add_test(ops, the_status_json_counts_full_and_resumed_handshakes);
	tcase_add_unchecked_fixture(ops, make_certs, NULL);
	suite_add_tcase(s, ops);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
