/* tls_config: the storage of what TLS adds to the file, for the rest of
 * the tls module (tls.h has the public part). */
#ifndef DROVER_TLS_CONFIG_H
#define DROVER_TLS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* [tls] protocols */
enum {
	TLS_PROTO_12 = 1u << 0,
	TLS_PROTO_13 = 1u << 1,
};

/* Mozilla's "intermediate" profile, version 5.7: ECDHE and DHE with
 * AES-GCM and ChaCha20-Poly1305, forward secrecy only. */
#define TLS_DEFAULT_CIPHERS                                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"  \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"    \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:prime256v1:secp384r1"

struct tls_runtime; /* tls_context.c: the loaded contexts */

struct tls_config {
	unsigned protocols;        /* TLS_PROTO_* */
	char *ciphers;             /* TLS 1.2 cipher list */
	char *ciphersuites;        /* TLS 1.3; NULL: OpenSSL's */
	char *groups;
	bool session_tickets;
	uint64_t session_timeout_ms;
	char *ticket_key_file;     /* NULL: keys generated and rotated by drover */
	/* What tls_load() built from this config, and how to free it. */
	struct tls_runtime *rt;
	void (*rt_free)(struct tls_runtime *rt);
};

struct tls_cert_config {
	char *certificate;  /* PEM chain, leaf first */
	char *private_key;  /* PEM */
	char *names;        /* space-separated; NULL: the certificate's DNS subjectAltNames */
};

struct tls_listener_config {
	bool tls;
};

/* [tls] of cfg (its defaults when the file has none). */
struct tls_config *tls_cfg(const struct config *cfg);
/* The i-th [certificate NAME] in file order, its part (for lines and its
 * NAME); NULL past the last. */
const struct config_part *tls_cert_part(const struct config *cfg, size_t i);

#endif
