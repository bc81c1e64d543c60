/* tls_harness: certificates and a TLS client for the TLS tests (tls_harness.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tls_harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ------------------------------------------------------------ certificates */

static void h_tls_sh(const char *dir, const char *what, const char *script)
{
	char *cmd = NULL;
	ck_assert(asprintf(&cmd, "cd '%s' && { %s ; } 2>&1", dir, script) > 0);
	char out[8192];
	int rc = h_run(cmd, out, sizeof out);
	ck_assert_msg(rc == 0, "%s: exit %d: %s\n%s", what, rc, cmd, out);
	free(cmd);
}

static const char h_tls_rsa[] = "-newkey rsa:2048";
static const char h_tls_ec[] = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";

void h_tls_ca(const char *dir, const char *name)
{
	char script[1024];
	snprintf(script, sizeof script,
		 "openssl req -x509 %s -nodes -keyout %s.key -out %s.crt -days 30 -subj /CN=%s -set_serial 1 "
		 "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
		 h_tls_rsa, name, name, name);
	h_tls_sh(dir, "test CA", script);
}

void h_tls_cert(const char *dir, const char *name, const struct h_tls_cert_opts *o)
{
	char ext[1024];
	int n = snprintf(ext, sizeof ext, "%s%s%s\n",
			 o->ca ? "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
			       : "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
				 "extendedKeyUsage=serverAuth\n",
			 o->sans ? "subjectAltName=" : "", o->sans ? o->sans : "");
	ck_assert(n > 0 && (size_t)n < sizeof ext);
	char p[1024];
	snprintf(p, sizeof p, "%s/%s.ext", dir, name);
	h_write_file(p, ext);
	char script[4096];
	if (!o->expired) {
		n = snprintf(script, sizeof script,
			     "openssl req -new %s -nodes -keyout %s.key -out %s.csr -subj '/CN=%s' && "
			     "openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key -set_serial %lu -days 30 "
			     "-extfile %s.ext -out %s.crt",
			     o->ecdsa ? h_tls_ec : h_tls_rsa, name, name, o->cn ? o->cn : name, name, o->issuer,
			     o->issuer, o->serial, name, name);
	} else {
		/* OpenSSL 3.0's x509 has no -not_before/-not_after; "openssl ca"
		 * takes any start and end date. */
		snprintf(p, sizeof p, "%s/%s.cnf", dir, name);
		char cnf[512];
		snprintf(cnf, sizeof cnf,
			 "[ca]\ndefault_ca = c\n[c]\ndatabase = %s.index\nserial = %s.serial\nnew_certs_dir = .\n"
			 "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
			 name, name);
		h_write_file(p, cnf);
		n = snprintf(script, sizeof script,
			     ": > %s.index && printf '%04lX\\n' > %s.serial && "
			     "openssl req -new %s -nodes -keyout %s.key -out %s.csr -subj '/CN=%s' && "
			     "openssl ca -batch -notext -config %s.cnf -cert %s.crt -keyfile %s.key -in %s.csr "
			     "-out %s.crt -extfile %s.ext -startdate 20200101000000Z -enddate 20200201000000Z",
			     name, o->serial | 0x100, name, o->ecdsa ? h_tls_ec : h_tls_rsa, name, name,
			     o->cn ? o->cn : name, name, o->issuer, o->issuer, name, name, name);
	}
	ck_assert(n > 0 && (size_t)n < sizeof script);
	h_tls_sh(dir, name, script);
}

void h_tls_key(const char *dir, const char *name, bool ecdsa)
{
	char script[512];
	snprintf(script, sizeof script, "openssl genpkey %s -out %s.key",
		 ecdsa ? "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" : "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
		 name);
	h_tls_sh(dir, name, script);
}

void h_tls_cat(const char *out, const char *const *files)
{
	size_t total = 0;
	char *all = NULL;
	for (size_t i = 0; files[i]; i++) {
		size_t len = 0;
		char *f = h_slurp(files[i], &len);
		ck_assert_msg(f != NULL, "cannot read %s", files[i]);
		all = realloc(all, total + len + 1);
		ck_assert(all != NULL);
		memcpy(all + total, f, len);
		total += len;
		all[total] = '\0';
		free(f);
	}
	/* bytes, not a string: ticket keys hold NULs */
	FILE *f = fopen(out, "w");
	ck_assert_msg(f != NULL, "cannot write %s: %s", out, strerror(errno));
	ck_assert(total == 0 || fwrite(all, 1, total, f) == total);
	ck_assert(fclose(f) == 0);
	free(all);
}

/* ------------------------------------------------------------ client */

/* OpenSSL writes to the socket with write(), which raises SIGPIPE once the
 * server has reset the connection, and reads may write too (an alert).
 * Nothing global is changed (harness.c's rule): SIGPIPE is blocked around
 * each call and one it raised is taken before it is unblocked. */
void h_tls_sigpipe_block(sigset_t *old)
{
	sigset_t pipe_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe_set, old);
}

void h_tls_sigpipe_restore(const sigset_t *old)
{
	sigset_t pipe_set;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	struct timespec zero = { 0, 0 };
	int saved = errno;
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	sigprocmask(SIG_SETMASK, old, NULL);
	errno = saved;
}

static void h_tls_why(struct h_tls *t, const char *what)
{
	int saved = errno;
	unsigned long e = ERR_peek_error();
	t->err = e;
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	snprintf(t->why, sizeof t->why, "%s: %s", what, buf[0] ? buf : saved ? strerror(saved) : "end of stream");
	ERR_clear_error();
	errno = saved;
}

bool h_tls_connect(struct h_tls *t, int port, const struct h_tls_opts *o)
{
	static const struct h_tls_opts none;
	if (!o)
		o = &none;
	memset(t, 0, sizeof *t);
	t->fd = -1;
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	ck_assert(ctx != NULL);
	t->ctx = ctx;
	if (o->min_version)
		ck_assert(SSL_CTX_set_min_proto_version(ctx, o->min_version) == 1);
	if (o->max_version)
		ck_assert(SSL_CTX_set_max_proto_version(ctx, o->max_version) == 1);
	if (o->max_version && o->max_version < TLS1_2_VERSION) {
		/* let the client offer what this system's policy forbids, so that
		 * the refusal comes from the server */
		SSL_CTX_set_security_level(ctx, 0);
		ck_assert(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") == 1);
	}
	if (o->groups)
		ck_assert_msg(SSL_CTX_set1_groups_list(ctx, o->groups) == 1, "groups %s", o->groups);
	if (o->ciphersuites)
		ck_assert_msg(SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) == 1, "suites %s", o->ciphersuites);
	if (o->ciphers)
		ck_assert_msg(SSL_CTX_set_cipher_list(ctx, o->ciphers) == 1, "ciphers %s", o->ciphers);
	if (o->sigalgs)
		ck_assert_msg(SSL_CTX_set1_sigalgs_list(ctx, o->sigalgs) == 1, "sigalgs %s", o->sigalgs);
	if (o->cafile) {
		ck_assert_msg(SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) == 1, "CA %s", o->cafile);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	/* sessions are taken by the test (h_tls_session). No client session
	 * cache: with one, OpenSSL marks a TLS 1.3 session not resumable once
	 * it was resumed (single-use tickets), and a test resumes one session
	 * several times. */
	SSL *ssl = SSL_new(ctx);
	ck_assert(ssl != NULL);
	t->ssl = ssl;
	if (o->sni)
		ck_assert(SSL_set_tlsext_host_name(ssl, o->sni) == 1);
	if (o->sni && o->cafile)
		ck_assert(SSL_set1_host(ssl, o->sni) == 1);
	if (o->alpn) {
		unsigned char p[64];
		size_t l = strlen(o->alpn);
		ck_assert(l > 0 && l < sizeof p - 1);
		p[0] = (unsigned char)l;
		memcpy(p + 1, o->alpn, l);
		ck_assert(SSL_set_alpn_protos(ssl, p, (unsigned)l + 1) == 0);
	}
	if (o->session)
		ck_assert(SSL_set_session(ssl, o->session) == 1);
	int fd = o->rcvbuf ? h_connect_tcp_rcvbuf(port, o->rcvbuf) : h_connect_tcp(port);
	if (fd < 0) {
		snprintf(t->why, sizeof t->why, "connect: %s", strerror(-fd));
		return false;
	}
	t->fd = fd;
	struct timeval tv = { .tv_sec = H_WAIT_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (o->prefix_len)
		h_write_all(fd, o->prefix, o->prefix_len);
	ck_assert(SSL_set_fd(ssl, fd) == 1);
	errno = 0;
	sigset_t old;
	h_tls_sigpipe_block(&old);
	int r = SSL_connect(ssl);
	h_tls_sigpipe_restore(&old);
	if (r != 1) {
		h_tls_why(t, "handshake");
		return false;
	}
	return true;
}

void h_tls_close(struct h_tls *t)
{
	if (t->ssl) {
		/* Freed without close_notify, OpenSSL would mark the session
		 * not resumable (ssl_clear_bad_session): say it was shut down,
		 * which sends nothing. */
		SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(t->ssl);
	}
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	t->ssl = t->ctx = NULL;
	t->fd = -1;
	ERR_clear_error();
}

bool h_tls_write(struct h_tls *t, const void *buf, size_t len, size_t *done)
{
	sigset_t old;
	h_tls_sigpipe_block(&old);
	errno = 0;
	int r = SSL_write_ex(t->ssl, buf, len, done);
	h_tls_sigpipe_restore(&old);
	if (r != 1)
		h_tls_why(t, "write");
	return r == 1;
}

bool h_tls_read(struct h_tls *t, void *buf, size_t len, size_t *done)
{
	sigset_t old;
	h_tls_sigpipe_block(&old);
	errno = 0;
	int r = SSL_read_ex(t->ssl, buf, len, done);
	h_tls_sigpipe_restore(&old);
	return r == 1;
}

void h_tls_write_all(struct h_tls *t, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		size_t n = 0;
		errno = 0;
		if (!h_tls_write(t, p, len, &n))
			ck_abort_msg("TLS write failed: %s", t->why);
		p += n;
		len -= n;
	}
}

void h_tls_write_records(struct h_tls *t, const void *const *bufs, const size_t *lens, size_t n)
{
	BIO *mem = BIO_new(BIO_s_mem());
	ck_assert(mem != NULL);
	BIO *sock = SSL_get_wbio(t->ssl);
	ck_assert(BIO_up_ref(sock) == 1);
	SSL_set0_wbio(t->ssl, mem); /* takes mem, drops one reference to sock */
	for (size_t i = 0; i < n; i++) {
		size_t done = 0;
		ck_assert_msg(SSL_write_ex(t->ssl, bufs[i], lens[i], &done) == 1 && done == lens[i], "sealing record %zu",
			      i);
	}
	char *p = NULL;
	long len = BIO_get_mem_data(mem, &p);
	ck_assert(len > 0);
	h_write_all(t->fd, p, (size_t)len);
	SSL_set0_wbio(t->ssl, sock); /* frees mem, takes the reference back */
}

/* More decrypted input into t->in; false on EOF/error. */
static bool h_tls_fill(struct h_tls *t)
{
	if (t->in_pos == t->in_len)
		t->in_pos = t->in_len = 0;
	if (t->in_pos > 0 && t->in_len == sizeof t->in) {
		memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
		t->in_len -= t->in_pos;
		t->in_pos = 0;
	}
	if (t->in_len == sizeof t->in)
		return false;
	size_t n = 0;
	errno = 0;
	if (!h_tls_read(t, t->in + t->in_len, sizeof t->in - t->in_len, &n)) {
		h_tls_why(t, "read");
		return false;
	}
	t->in_len += n;
	t->in_total += n;
	return true;
}

/* Take up to len bytes from the input into dst (NULL: drop them). */
static size_t h_tls_take(struct h_tls *t, char *dst, size_t len)
{
	size_t k = t->in_len - t->in_pos;
	if (k > len)
		k = len;
	if (dst)
		memcpy(dst, t->in + t->in_pos, k);
	t->in_pos += k;
	return k;
}

bool h_tls_read_response(struct h_tls *t, struct h_response *r, bool head_only)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
	/* the head, up to the empty line */
	char head[8192];
	size_t hl = 0;
	for (;;) {
		while (t->in_pos < t->in_len && hl < sizeof head - 1) {
			head[hl++] = t->in[t->in_pos++];
			if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
				goto have_head;
		}
		if (hl >= sizeof head - 1 || !h_tls_fill(t))
			return false;
	}
have_head:
	head[hl] = '\0';
	if (hl < 12 || strncmp(head, "HTTP/1.", 7) != 0)
		return false;
	r->status = atoi(head + 9);
	char *eol = strstr(head, "\r\n");
	snprintf(r->headers, sizeof r->headers, "%s", eol + 2);
	char cl[32];
	size_t len = 0;
	bool has_len = h_http_header(r, "Content-Length", cl, sizeof cl);
	if (has_len)
		len = strtoull(cl, NULL, 10);
	if (head_only || r->status == 304 || r->status == 204 || r->status / 100 == 1)
		len = 0;
	else if (!has_len)
		return false; /* drover always sends a length to these tests */
	r->body = malloc(len + 1);
	ck_assert(r->body != NULL);
	size_t got = 0;
	while (got < len) {
		if (t->in_pos == t->in_len && !h_tls_fill(t)) {
			free(r->body);
			r->body = NULL;
			return false;
		}
		got += h_tls_take(t, r->body + got, len - got);
	}
	r->body[len] = '\0';
	r->body_len = len;
	return true;
}

bool h_tls_wait_closed(struct h_tls *t)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (h_left_ms(deadline) > 0) {
		t->in_pos = t->in_len = 0;
		if (!h_tls_fill(t))
			return errno != EAGAIN && errno != EWOULDBLOCK;
	}
	return false;
}

int h_tls_read_end(struct h_tls *t)
{
	int64_t deadline = h_now_ms() + H_WAIT_MS;
	while (h_left_ms(deadline) > 0) {
		char buf[4096];
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		sigset_t old;
		h_tls_sigpipe_block(&old);
		int r = SSL_read_ex(t->ssl, buf, sizeof buf, &n);
		h_tls_sigpipe_restore(&old);
		if (r == 1)
			continue;
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 1;
		unsigned long err = ERR_peek_error();
		bool eof = e == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
		h_tls_why(t, "end");
		if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue; /* SO_RCVTIMEO: the deadline decides */
		return eof ? 0 : -1;
	}
	snprintf(t->why, sizeof t->why, "end: nothing within %d ms", H_WAIT_MS);
	return -1;
}

bool h_tls_reused(const struct h_tls *t)
{
	return t->ssl && SSL_session_reused(t->ssl);
}

int h_tls_version(const struct h_tls *t)
{
	return t->ssl ? SSL_version(t->ssl) : 0;
}

void h_tls_peer_serial(const struct h_tls *t, char *out, size_t len)
{
	out[0] = '\0';
	X509 *x = t->ssl ? SSL_get1_peer_certificate(t->ssl) : NULL;
	if (!x)
		return;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(out, len, "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
}

void h_tls_peer_cn(const struct h_tls *t, char *out, size_t len)
{
	out[0] = '\0';
	X509 *x = t->ssl ? SSL_get1_peer_certificate(t->ssl) : NULL;
	if (!x)
		return;
	char cn[256];
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0)
		snprintf(out, len, "%s", cn);
	X509_free(x);
}

int h_tls_peer_key_type(const struct h_tls *t)
{
	X509 *x = t->ssl ? SSL_get1_peer_certificate(t->ssl) : NULL;
	if (!x)
		return 0;
	EVP_PKEY *k = X509_get0_pubkey(x);
	int type = k ? EVP_PKEY_get_base_id(k) : 0;
	X509_free(x);
	return type;
}

void h_tls_alpn(const struct h_tls *t, char *out, size_t len)
{
	const unsigned char *p = NULL;
	unsigned l = 0;
	SSL_get0_alpn_selected(t->ssl, &p, &l);
	snprintf(out, len, "%.*s", (int)l, p ? (const char *)p : "");
}

void *h_tls_session(const struct h_tls *t)
{
	SSL_SESSION *s = SSL_get1_session(t->ssl);
	ck_assert(s != NULL);
	ck_assert_msg(SSL_SESSION_is_resumable(s), "the server gave no resumable session (no ticket)");
	return s;
}

void h_tls_session_free(void *session)
{
	SSL_SESSION_free(session);
}

void h_tls_request(int port, const struct h_tls_opts *o, const char *raw, struct h_response *r, char *serial,
		   size_t serial_len)
{
	struct h_tls t;
	ck_assert_msg(h_tls_connect(&t, port, o), "TLS to port %d: %s", port, t.why);
	h_tls_write_all(&t, raw, strlen(raw));
	ck_assert_msg(h_tls_read_response(&t, r, strncmp(raw, "HEAD ", 5) == 0), "no response over TLS: %s", t.why);
	if (serial)
		h_tls_peer_serial(&t, serial, serial_len);
	h_tls_close(&t);
}
