/* tls: HTTPS and any other protocol over TLS (OpenSSL 3). Three parts:
 *  - tls_config.c: what TLS adds to the file ([tls], [certificate NAME],
 *    [listener NAME] tls), as a transport's struct config_module;
 *  - tls_context.c: the certificates and keys, read by the supervisor at
 *    start and on every reload, before anything is forked, into OpenSSL
 *    contexts kept with the config they came from (workers inherit them
 *    and never open a key file); SNI, ALPN, the checks drover -t makes;
 *  - tls_keys.c: the session ticket keys, one set for every worker of every
 *    generation, kept across reloads and binary upgrades (tls_keys.h);
 * and the transport itself, transport_tls.c.
 *
 * HTTP does not know it runs over TLS: it reads and writes through the
 * connection's transport (transport.h) and asks conn_security() only for
 * what TLS alone sends (HSTS) or logs (the version). */
#ifndef DROVER_TLS_H
#define DROVER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/config_section.h"

struct transport_ops;

/* [tls] and [certificate NAME] and the listener key tls. */
extern const struct config_module tls_config_module;
/* The TLS transport (transport_tls.c). */
extern const struct transport_ops transport_tls;

/* Tell config what TLS adds to the file (config_set_transports). Each
 * main calls it once, with proto_register(), before loading a config. */
void tls_register(void);
/* Whether listener l has tls = yes. */
bool tls_listener_on(const struct config_listener *l);
/* Whether any listener of cfg has tls = yes. */
bool tls_in_use(const struct config *cfg);

/* Read every [certificate NAME] of cfg (when a listener uses TLS) and build
 * the contexts its workers will use, kept with cfg (freed with it). Every
 * problem is reported, one line each, "FILE:LINE: [certificate NAME] KEY:
 * ..." (a missing or unreadable file, a key that matches no certificate,
 * an expired certificate, a chain out of order, a TLS listener without a
 * certificate, a bad [tls] value, an unreadable ticket_key_file). 0 or
 * -errno. Called again on a loaded config, it does nothing. */
int tls_load(struct config *cfg, char *err, size_t err_len);
/* The context the connections of listener l accept with (an SSL_CTX), or
 * NULL when l is plain or cfg was not loaded. */
void *tls_listener_context(const struct config *cfg, const struct config_listener *l);

/* What status shows of a loaded certificate. */
struct tls_cert_info {
	const char *section;  /* NAME of [certificate NAME] */
	char names[512];      /* the names SNI matches, space-separated */
	char serial[80];      /* hexadecimal */
	char key_type[16];    /* "RSA", "ECDSA", "Ed25519"... */
	time_t not_after;     /* expiry, seconds since the epoch */
};
/* The i-th loaded certificate of cfg, in file order; false past the last. */
bool tls_cert_at(const struct config *cfg, size_t i, struct tls_cert_info *out);

/* Put the session ticket keys of cfg in force for every worker (its
 * ticket_key_file's, else generated ones: tls_keys.h). Supervisor only,
 * when a config comes into force. */
void tls_publish_keys(const struct config *cfg, uint64_t now_ms);

/* [tls] session_timeout in ms (the ticket key rotation period too) and
 * whether keys come from ticket_key_file (then drover generates none). */
uint64_t tls_session_timeout_ms(const struct config *cfg);

#endif
