/* tls_harness: what the TLS tests share (part of libharness, which is
 * built with OpenSSL's flags). Certificates made at run time with the
 * openssl command line in a directory the test owns (nothing checked into
 * the tree expires), and a blocking TLS 1.2/1.3 client (OpenSSL) with a
 * small HTTP/1.1 response reader over it. Every socket gets SO_RCVTIMEO and
 * SO_SNDTIMEO of H_WAIT_MS, so a server that stops answering turns into a
 * failure, not a hang. Helpers ck_assert unless their comment says they
 * report. */
#ifndef DROVER_TLS_HARNESS_H
#define DROVER_TLS_HARNESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* ------------------------------------------------------------ certificates */

/* DIR/NAME.crt and DIR/NAME.key: a self-signed RSA 2048 test CA (30 days). */
void h_tls_ca(const char *dir, const char *name);

struct h_tls_cert_opts {
	const char *issuer;  /* DIR/ISSUER.crt and .key sign it */
	const char *cn;      /* subject CN (NULL: NAME) */
	const char *sans;    /* subjectAltName value, e.g. "DNS:a.example,DNS:*.b.example" (NULL: none) */
	bool ecdsa;          /* a P-256 key, else RSA 2048 */
	unsigned long serial;/* the serial number (must differ per issuer) */
	bool ca;             /* an intermediate CA (CA:TRUE), not a leaf */
	bool expired;        /* valid in January 2020 only (openssl ca -startdate/-enddate) */
};
/* DIR/NAME.crt (the certificate alone) and DIR/NAME.key. */
void h_tls_cert(const char *dir, const char *name, const struct h_tls_cert_opts *o);
/* DIR/NAME.key: a fresh key that belongs to no certificate. */
void h_tls_key(const char *dir, const char *name, bool ecdsa);
/* Concatenate files (full paths, NULL-terminated; any bytes) into out (mode 0644 under the umask). */
void h_tls_cat(const char *out, const char *const *files);

/* ------------------------------------------------------------ client */

struct h_tls_opts {
	const char *sni;       /* server name to send (NULL: none) */
	const char *cafile;    /* verify the chain against this CA (NULL: no verification) */
	int min_version;       /* TLS1_2_VERSION... (0: library default) */
	int max_version;
	const char *sigalgs;   /* offered signature algorithms (NULL: default) */
	const char *alpn;      /* one protocol to offer (NULL: none) */
	const char *groups;    /* offered key exchange groups (NULL: default) */
	const char *ciphersuites; /* offered TLS 1.3 suites (NULL: default) */
	const char *ciphers;   /* offered TLS 1.2 ciphers (NULL: default) */
	void *session;         /* an SSL_SESSION to resume (not taken over) */
	int rcvbuf;            /* SO_RCVBUF before connect (0: default) */
	const void *prefix;    /* bytes written on the socket before the handshake
				* (a PROXY protocol header); NULL: none */
	size_t prefix_len;
};

struct h_tls {
	int fd;
	void *ctx;  /* SSL_CTX */
	void *ssl;  /* SSL */
	char in[32768];      /* decrypted input not yet consumed */
	size_t in_pos, in_len;
	uint64_t in_total;   /* decrypted bytes received so far */
	char why[512];       /* why the handshake (or a read) failed */
	unsigned long err;   /* OpenSSL's first error code from the handshake */
};

/* TCP connect to 127.0.0.1:port and handshake. false (t->why, t->err set,
 * nothing asserted, t still to be freed with h_tls_close) if either fails. */
bool h_tls_connect(struct h_tls *t, int port, const struct h_tls_opts *o);
/* Free everything; t->fd closed (no close_notify). */
void h_tls_close(struct h_tls *t);
/* One SSL_write_ex / SSL_read_ex (done: bytes); false on failure (t->why
 * set for writes), nothing asserted. Both, and every call here, keep a
 * reset connection's SIGPIPE from killing the test. */
bool h_tls_write(struct h_tls *t, const void *buf, size_t len, size_t *done);
bool h_tls_read(struct h_tls *t, void *buf, size_t len, size_t *done);
/* Block SIGPIPE around a direct OpenSSL call; restore takes one it raised. */
void h_tls_sigpipe_block(sigset_t *old);
void h_tls_sigpipe_restore(const sigset_t *old);
/* Write all (asserts). */
void h_tls_write_all(struct h_tls *t, const void *buf, size_t len);
/* Seal each of the n buffers as its own TLS record(s), and send them all
 * with one write() of the socket: the server then finds several records
 * in one read (asserts). */
void h_tls_write_records(struct h_tls *t, const void *const *bufs, const size_t *lens, size_t n);
/* Read one response (Content-Length, or no body for 1xx/204/304 and
 * head_only); false on EOF/error/timeout before it is complete. */
bool h_tls_read_response(struct h_tls *t, struct h_response *r, bool head_only);
/* Whether the server ends the connection (EOF, close_notify, alert or
 * reset) within H_WAIT_MS; bytes that arrive meanwhile are discarded. */
bool h_tls_wait_closed(struct h_tls *t);

/* How the server ends the stream, read within H_WAIT_MS (application
 * bytes before it are dropped): 1 close_notify, 0 a TCP close without it
 * (OpenSSL's "unexpected eof"), -1 anything else (an alert, a reset, a
 * timeout: t->why says which). */
int h_tls_read_end(struct h_tls *t);

/* What the handshake gave. */
bool h_tls_reused(const struct h_tls *t);
int h_tls_version(const struct h_tls *t);           /* TLS1_3_VERSION... */
void h_tls_peer_serial(const struct h_tls *t, char *out, size_t len); /* hex, upper case ("" if none) */
void h_tls_peer_cn(const struct h_tls *t, char *out, size_t len);
int h_tls_peer_key_type(const struct h_tls *t);     /* EVP_PKEY_RSA, EVP_PKEY_EC, 0 */
void h_tls_alpn(const struct h_tls *t, char *out, size_t len); /* "" if none */
/* The session to resume later (SSL_SESSION *, free with h_tls_session_free);
 * read a response first so that a TLS 1.3 ticket has arrived. */
void *h_tls_session(const struct h_tls *t);
void h_tls_session_free(void *session);

/* One request on a new connection: connect (asserts), send raw, read one
 * response (asserts); the server's serial in serial (may be NULL). */
void h_tls_request(int port, const struct h_tls_opts *o, const char *raw, struct h_response *r, char *serial,
		   size_t serial_len);

#endif
