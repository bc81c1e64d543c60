/* fuzz_tls: libFuzzer target for the TLS read path (transport_tls.c over
 * the contexts tls_context.c builds from a real config). Each input is a
 * mode byte and bytes that reach the server's socket (a socketpair, both
 * ends non-blocking) in one of four ways:
 *   0  as the client's first flight: a ClientHello, or garbage;
 *   1  raw, after a finished TLS 1.3 handshake: garbage after the
 *      handshake, a truncated or forged record;
 *   2  as application data of a TLS 1.2 session, then a renegotiation
 *      attempt, then the rest raw;
 *   3  as application data of a TLS 1.3 session, then close_notify, then
 *      the rest raw.
 * The server reads through the transport until it has nothing more, and
 * answers what it read through writev (so sealing runs too). Invariants,
 * any broken one aborts: a read returns at most what was asked, 0 only at
 * the end of the stream, and otherwise -EAGAIN or a -errno; a finished
 * handshake names its version, and a correct client's handshake always
 * finishes. ASan catches the rest. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/loop.h"
#include "fuzz_check.h"
#include "proto/protocols.h"
#include "worker/conn.h"
#include "worker/proto.h"
#include "worker/tls.h"
#include "worker/tls_keys.h"
#include "worker/transport.h"

static struct loop *fz_loop;
static struct config *fz_cfg;
static struct worker_listener fz_listener;
static SSL_CTX *fz_client13, *fz_client12;

/* A self-signed ECDSA certificate and its key, as files. */
static void fz_make_cert(const char *dir)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FUZZ_CHECK(pk && x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.example", -1, -1, 0);
	X509_set_issuer_name(x, n);
	FUZZ_CHECK(X509_sign(x, pk, EVP_sha256()) > 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f && PEM_write_X509(f, x) == 1);
	fclose(f);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	f = fopen(path, "w");
	FUZZ_CHECK(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	proto_register(protocols);
	tls_register();
	FUZZ_CHECK(loop_new(&fz_loop) == 0);
	int keys_fd;
	FUZZ_CHECK(tls_keys_create(&keys_fd) == 0);
	char dir[] = "/tmp/fuzz_tls.XXXXXX";
	FUZZ_CHECK(mkdtemp(dir));
	fz_make_cert(dir);
	char path[512], ini[1024];
	snprintf(path, sizeof(path), "%s/drover.ini", dir);
	snprintf(ini, sizeof(ini),
		 "[listener web]\naddress = 127.0.0.1:1\ntls = yes\n"
		 "[certificate main]\ncertificate = cert.pem\nprivate_key = key.pem\n");
	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f && fputs(ini, f) >= 0);
	fclose(f);
	char err[4096] = "";
	FUZZ_CHECK(config_load(path, &fz_cfg, err, sizeof(err)) == 0);
	FUZZ_CHECK(tls_load(fz_cfg, err, sizeof(err)) == 0);
	fz_listener.fd = -1;
	fz_listener.proto = proto_find("http");
	fz_listener.transport = &transport_tls;
	fz_listener.transport_ctx = tls_listener_context(fz_cfg, &fz_cfg->listeners[0]);
	FUZZ_CHECK(fz_listener.transport_ctx);
	fz_client13 = SSL_CTX_new(TLS_client_method());
	fz_client12 = SSL_CTX_new(TLS_client_method());
	FUZZ_CHECK(fz_client13 && fz_client12);
	SSL_CTX_set_min_proto_version(fz_client13, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(fz_client12, TLS1_2_VERSION);
	SSL_CTX_set_verify(fz_client13, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_verify(fz_client12, SSL_VERIFY_NONE, NULL);
	return 0;
}

/* One read of the server, checked: what it returned. */
static ssize_t fz_server_read(struct conn *c)
{
	char buf[4096];
	ssize_t r = transport_tls.read(c, buf, sizeof(buf));
	FUZZ_CHECK(r <= (ssize_t)sizeof(buf));
	FUZZ_CHECK(r >= 0 || r == -EAGAIN || r < -0);
	if (r > 0) {
		/* Answer it, sealed like a response. */
		struct iovec iov[2] = { { .iov_base = "echo: ", .iov_len = 6 }, { .iov_base = buf, .iov_len = (size_t)r } };
		ssize_t w = transport_tls.writev(c, iov, 2, 0);
		FUZZ_CHECK(w <= (ssize_t)r + 6);
	}
	return r;
}

/* Let the client take what the server sent (tickets, answers). */
static void fz_client_drain(SSL *cl)
{
	char buf[4096];
	size_t n;
	for (int i = 0; i < 16 && SSL_read_ex(cl, buf, sizeof(buf), &n) == 1; i++)
		;
	ERR_clear_error();
}

/* Drive both ends until the handshake is over or stuck; whether it finished. */
static bool fz_handshake(struct conn *c, SSL *cl)
{
	for (int i = 0; i < 32; i++) {
		int cr = SSL_do_handshake(cl);
		ssize_t sr = fz_server_read(c);
		if (sr != -EAGAIN && sr <= 0 && !transport_tls.security(c))
			return false;
		if (cr == 1 && transport_tls.security(c))
			return true;
		if (cr <= 0) {
			int e = SSL_get_error(cl, cr);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return false;
		}
	}
	return false;
}

/* Read until the server has nothing more (or the stream ended). */
static void fz_server_drain(struct conn *c, SSL *cl)
{
	for (int i = 0; i < 64; i++) {
		ssize_t r = fz_server_read(c);
		if (cl)
			fz_client_drain(cl);
		if (r <= 0)
			break;
	}
}

static void fz_raw(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t w = write(fd, data, size);
		if (w <= 0)
			break; /* the socketpair is full: the rest is dropped */
		data += w;
		size -= (size_t)w;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0] & 3;
	bool eof = data[0] & 4;
	data++;
	size--;
	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	struct conn c;
	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.loop = fz_loop;
	c.listener = &fz_listener;
	c.transport.ops = &transport_tls;
	FUZZ_CHECK(transport_tls.open(&c) == 0);
	SSL *cl = NULL;
	if (mode == 0) {
		fz_raw(sv[1], data, size);
		if (eof)
			shutdown(sv[1], SHUT_WR);
		fz_server_drain(&c, NULL);
	} else {
		cl = SSL_new(mode == 2 ? fz_client12 : fz_client13);
		FUZZ_CHECK(cl && SSL_set_fd(cl, sv[1]) == 1);
		SSL_set_connect_state(cl);
		SSL_set_tlsext_host_name(cl, "fuzz.example");
		/* The client is a correct one: its handshake always finishes. */
		FUZZ_CHECK(fz_handshake(&c, cl));
		{
			FUZZ_CHECK(transport_tls.security(&c) != NULL);
			size_t half = size / 2;
			size_t n;
			if (mode == 1) {
				fz_raw(sv[1], data, size);
			} else if (mode == 2) {
				if (half)
					SSL_write_ex(cl, data, half, &n);
				if (SSL_renegotiate(cl) == 1)
					SSL_do_handshake(cl);
				ERR_clear_error();
				fz_server_drain(&c, cl);
				fz_raw(sv[1], data + half, size - half);
			} else {
				if (half)
					SSL_write_ex(cl, data, half, &n);
				SSL_shutdown(cl);
				ERR_clear_error();
				fz_raw(sv[1], data + half, size - half);
			}
			if (eof)
				shutdown(sv[1], SHUT_WR);
			fz_server_drain(&c, cl);
		}
	}
	transport_tls.shutdown(&c);
	transport_tls.close(&c);
	SSL_free(cl);
	close(sv[1]);
	ERR_clear_error();
	return 0;
}
