/* tls_context: certificates and keys into OpenSSL contexts (see tls.h).
 *
 * Each [certificate NAME] is read and checked alone (files, key match,
 * expiry, chain order). Certificates that share a name go into one
 * SSL_CTX, one per key type (RSA and ECDSA): OpenSSL then picks by the
 * client's signature algorithms. The first group is the default one, the
 * context every TLS listener starts a handshake with; SNI switches to the
 * group whose names match, exactly or by a leading "*." wildcard.
 *
 * Every context gets the same [tls] settings: protocol versions, TLS 1.2
 * ciphers, TLS 1.3 suites, groups, no renegotiation, no compression, no
 * early data; stateless session tickets only (no per-process session
 * cache, which a session resumed on another worker would miss), sealed
 * with the shared keys of tls_keys.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "worker/conn.h"
#include "worker/tls_config.h"
#include "worker/tls_keys.h"

#define TLS_MAX_CERTS 64
#define TLS_MAX_NAMES 512 /* all certificates together */
#define TLS_NAME_MAX 253

struct tls_cert {
	const char *section;       /* [certificate NAME]'s NAME (the config's) */
	X509 *leaf;
	STACK_OF(X509) *chain;     /* issuers, in file order */
	EVP_PKEY *key;
	int key_type;              /* EVP_PKEY_base_id */
	size_t group;              /* index into tls_runtime.groups */
	size_t first_name, n_names;/* in tls_runtime.names */
};

struct tls_name {
	char name[TLS_NAME_MAX + 1]; /* lower case; "*.example.com" for a wildcard */
	size_t group;
};

struct tls_group {
	SSL_CTX *ctx;
};

struct tls_runtime {
	struct tls_cert certs[TLS_MAX_CERTS];
	size_t n_certs;
	struct tls_name names[TLS_MAX_NAMES];
	size_t n_names;
	struct tls_group groups[TLS_MAX_CERTS];
	size_t n_groups;
	struct tls_ticket_key file_keys[TLS_TICKET_KEYS_MAX]; /* ticket_key_file's */
	size_t n_file_keys;
};

/* Problems found so far: appended to err one per line. */
struct tls_report {
	const struct config *cfg;
	char *err;
	size_t len, used;
	int n;
};

static void tls_report(struct tls_report *rep, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tls_report(struct tls_report *rep, unsigned line, const char *fmt, ...)
{
	rep->n++;
	if (rep->used + 2 >= rep->len)
		return;
	char *p = rep->err + rep->used;
	size_t room = rep->len - rep->used;
	int k = rep->used ? snprintf(p, room, "\n") : 0;
	k += line ? snprintf(p + k, room - (size_t)k, "%s:%u: ", rep->cfg->path, line)
		  : snprintf(p + k, room - (size_t)k, "%s: ", rep->cfg->path);
	if ((size_t)k < room) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p + k, room - (size_t)k, fmt, ap);
		va_end(ap);
	}
	rep->used += strlen(p);
}

/* OpenSSL's reason for the last failure ("no start line"), and the queue cleared. */
static const char *tls_ossl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, len, "%s", r ? r : "unknown error");
	ERR_clear_error();
	return buf;
}

/* ------------------------------------------------------------ reading one certificate */

static const char *tls_key_type_name(int type)
{
	switch (type) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		return "RSA";
	case EVP_PKEY_EC:
		return "ECDSA";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	case EVP_PKEY_ED448:
		return "Ed448";
	default:
		return "other";
	}
}

static void tls_cert_free(struct tls_cert *c)
{
	X509_free(c->leaf);
	sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	memset(c, 0, sizeof(*c));
}

/* Read the chain (leaf first) and the key of one section; false after
 * reporting why. */
static bool tls_cert_read(struct tls_report *rep, const struct config_part *part, struct tls_cert *c)
{
	const struct tls_cert_config *cc = part->data;
	unsigned cl = config_part_line(part, "certificate"), kl = config_part_line(part, "private_key");
	char why[256];
	c->section = part->name;
	BIO *b = BIO_new_file(cc->certificate, "r");
	if (!b) {
		tls_report(rep, cl, "[certificate %s] certificate: cannot read %s: %s", part->name, cc->certificate,
			   strerror(errno ? errno : EIO));
		ERR_clear_error();
		return false;
	}
	c->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
	c->chain = sk_X509_new_null();
	X509 *x;
	while (c->leaf && c->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		sk_X509_push(c->chain, x);
	BIO_free(b);
	ERR_clear_error(); /* the end of the file reads as an error */
	if (!c->leaf || !c->chain) {
		tls_report(rep, cl, "[certificate %s] certificate: expected a PEM certificate in %s, found none",
			   part->name, cc->certificate);
		return false;
	}
	b = BIO_new_file(cc->private_key, "r");
	if (!b) {
		tls_report(rep, kl, "[certificate %s] private_key: cannot read %s: %s", part->name, cc->private_key,
			   strerror(errno ? errno : EIO));
		ERR_clear_error();
		return false;
	}
	c->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!c->key) {
		tls_report(rep, kl, "[certificate %s] private_key: expected an unencrypted PEM private key in %s (%s)",
			   part->name, cc->private_key, tls_ossl_reason(why, sizeof(why)));
		return false;
	}
	c->key_type = EVP_PKEY_get_base_id(c->key);
	bool ok = true;
	if (X509_check_private_key(c->leaf, c->key) != 1) {
		ERR_clear_error();
		tls_report(rep, kl, "[certificate %s] private_key: %s does not match the certificate in %s", part->name,
			   cc->private_key, cc->certificate);
		ok = false;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(c->leaf)) < 0) {
		BIO *m = BIO_new(BIO_s_mem());
		char when[64] = "";
		if (m && ASN1_TIME_print(m, X509_get0_notAfter(c->leaf)) == 1)
			BIO_read(m, when, sizeof(when) - 1);
		BIO_free(m);
		tls_report(rep, cl, "[certificate %s] certificate: %s expired on %s", part->name, cc->certificate,
			   when);
		ok = false;
	}
	X509 *child = c->leaf;
	for (int i = 0; i < sk_X509_num(c->chain); i++) {
		X509 *issuer = sk_X509_value(c->chain, i);
		if (X509_check_issued(issuer, child) != X509_V_OK) {
			tls_report(rep, cl,
				   "[certificate %s] certificate: the chain in %s is out of order: certificate %d does "
				   "not issue certificate %d (expected the leaf first, then each issuer)",
				   part->name, cc->certificate, i + 2, i + 1);
			ok = false;
			break;
		}
		child = issuer;
	}
	ERR_clear_error();
	return ok;
}

/* Add name (lower-cased) for certificate c; false after reporting. */
static bool tls_name_add(struct tls_report *rep, struct tls_runtime *rt, const struct config_part *part,
			 struct tls_cert *c, const char *name, size_t len)
{
	if (len == 0)
		return true;
	if (len > TLS_NAME_MAX || rt->n_names == TLS_MAX_NAMES) {
		tls_report(rep, config_part_line(part, "names"), "[certificate %s] names: expected at most %d names of "
			   "at most %d characters", part->name, TLS_MAX_NAMES, TLS_NAME_MAX);
		return false;
	}
	struct tls_name *n = &rt->names[rt->n_names++];
	for (size_t i = 0; i < len; i++)
		n->name[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	n->name[len] = '\0';
	c->n_names++;
	return true;
}

/* The names SNI matches for c: [certificate] names, else its DNS
 * subjectAltNames, else its subject's common name. */
static bool tls_cert_names(struct tls_report *rep, struct tls_runtime *rt, const struct config_part *part,
			   struct tls_cert *c)
{
	const struct tls_cert_config *cc = part->data;
	c->first_name = rt->n_names;
	if (cc->names) {
		for (const char *p = cc->names; *p;) {
			p += strspn(p, " \t");
			size_t len = strcspn(p, " \t");
			if (!tls_name_add(rep, rt, part, c, p, len))
				return false;
			p += len;
		}
		return true;
	}
	GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type != GEN_DNS)
			continue;
		const char *s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
		size_t len = (size_t)ASN1_STRING_length(g->d.dNSName);
		if (memchr(s, '\0', len))
			continue; /* not a host name anyone can send */
		if (!tls_name_add(rep, rt, part, c, s, len)) {
			GENERAL_NAMES_free(sans);
			return false;
		}
	}
	GENERAL_NAMES_free(sans);
	if (c->n_names == 0) {
		char cn[TLS_NAME_MAX + 1];
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(c->leaf), NID_commonName, cn, sizeof(cn));
		if (len > 0 && !tls_name_add(rep, rt, part, c, cn, (size_t)len))
			return false;
	}
	return true;
}

/* Put c in the group of the first earlier certificate sharing a name with
 * it (which must have another key type), or in a new one. */
static bool tls_cert_group(struct tls_report *rep, struct tls_runtime *rt, const struct config_part *part,
			   struct tls_cert *c)
{
	for (size_t i = 0; i < rt->n_certs; i++) {
		const struct tls_cert *o = &rt->certs[i];
		for (size_t a = c->first_name; a < c->first_name + c->n_names; a++) {
			for (size_t b = o->first_name; b < o->first_name + o->n_names; b++) {
				if (strcmp(rt->names[a].name, rt->names[b].name) != 0)
					continue;
				for (size_t k = 0; k < rt->n_certs; k++) {
					if (rt->certs[k].group == o->group && rt->certs[k].key_type == c->key_type) {
						unsigned line = config_part_line(part, "names");
						tls_report(rep, line ? line : part->line,
							   "[certificate %s] names: %s is also a name of [certificate %s], "
							   "with the same key type (%s); expected another key type "
							   "(RSA and ECDSA may share names) or other names",
							   part->name, rt->names[a].name, rt->certs[k].section,
							   tls_key_type_name(c->key_type));
						return false;
					}
				}
				c->group = o->group;
				return true;
			}
		}
	}
	c->group = rt->n_groups++;
	return true;
}

/* ------------------------------------------------------------ OpenSSL callbacks */

/* Whether name (lower case) matches pattern: exactly, or "*.rest" for one
 * more label in front of rest. */
static bool tls_name_matches(const char *pattern, const char *name)
{
	if (strcmp(pattern, name) == 0)
		return true;
	if (pattern[0] != '*' || pattern[1] != '.')
		return false;
	const char *dot = strchr(name, '.');
	return dot && dot != name && strcmp(dot + 1, pattern + 2) == 0;
}

static int tls_on_servername(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	const struct tls_runtime *rt = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!sni || !rt)
		return SSL_TLSEXT_ERR_NOACK;
	char name[TLS_NAME_MAX + 1];
	size_t len = strlen(sni);
	if (len > TLS_NAME_MAX)
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 0; i <= len; i++)
		name[i] = (char)(sni[i] >= 'A' && sni[i] <= 'Z' ? sni[i] + 32 : sni[i]);
	if (len && name[len - 1] == '.')
		name[len - 1] = '\0';
	/* Exact names first, then wildcards: www.a.example beats *.a.example. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < rt->n_names; i++) {
			const struct tls_name *n = &rt->names[i];
			bool wild = n->name[0] == '*';
			if (wild != (pass == 1) || !tls_name_matches(n->name, name))
				continue;
			if (n->group != 0)
				SSL_set_SSL_CTX(ssl, rt->groups[n->group].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_NOACK; /* the default certificate */
}

static int tls_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	(void)arg;
	const struct conn *c = SSL_get_app_data(ssl);
	const struct proto *p = c && c->listener ? c->listener->proto : NULL;
	if (!p || !p->alpn)
		return SSL_TLSEXT_ERR_NOACK;
	const unsigned char *list = p->alpn;
	unsigned list_len = p->alpn_len;
	if (p->alpn_of)
		list = p->alpn_of(c, &list_len);
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, list, list_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* the client offers nothing we speak: go on without ALPN */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Seal and open session tickets with the shared keys (AES-256-CBC and
 * HMAC-SHA256, nginx's 80-byte key format). */
static int tls_on_ticket(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	(void)ssl;
	struct tls_ticket_key k;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end() };
	int ret;
	if (enc) {
		if (!tls_keys_current(&k))
			return 0; /* no ticket */
		memcpy(key_name, k.name, sizeof(k.name));
		ret = RAND_bytes(iv, 16) == 1 && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
				      EVP_MAC_init(hctx, k.hmac, sizeof(k.hmac), params) == 1
			      ? 1
			      : -1;
	} else {
		int found = tls_keys_find(key_name, &k);
		if (!found)
			return 0; /* unknown or retired key: a full handshake */
		ret = EVP_MAC_init(hctx, k.hmac, sizeof(k.hmac), params) == 1 &&
				      EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1
			      ? (found == 1 ? 1 : 2) /* 2: sealed with an older key, issue a fresh ticket */
			      : -1;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ------------------------------------------------------------ contexts */

/* A context with [tls]'s settings and no certificate; NULL after reporting. */
static SSL_CTX *tls_ctx_new(struct tls_report *rep, const struct config *cfg, struct tls_runtime *rt)
{
	const struct tls_config *t = tls_cfg(cfg);
	const struct config_part *tp = NULL;
	for (size_t i = 0; i < cfg->n_parts && !tp; i++)
		if (cfg->parts[i].data == t)
			tp = &cfg->parts[i];
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_report(rep, 0, "[tls]: cannot make a TLS context: %s", tls_ossl_reason(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, t->protocols & TLS_PROTO_12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, t->protocols & TLS_PROTO_13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	bool ok = true;
	if (SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
		tls_report(rep, tp ? config_part_line(tp, "ciphers") : 0,
			   "[tls] ciphers: expected TLS 1.2 ciphers OpenSSL knows, got '%s' (%s)", t->ciphers,
			   tls_ossl_reason(why, sizeof(why)));
		ok = false;
	}
	if (t->ciphersuites && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
		tls_report(rep, tp ? config_part_line(tp, "ciphersuites") : 0,
			   "[tls] ciphersuites: expected TLS 1.3 suites OpenSSL knows, got '%s' (%s)", t->ciphersuites,
			   tls_ossl_reason(why, sizeof(why)));
		ok = false;
	}
	if (SSL_CTX_set1_groups_list(ctx, t->groups) != 1) {
		tls_report(rep, tp ? config_part_line(tp, "groups") : 0,
			   "[tls] groups: expected key exchange groups OpenSSL knows, got '%s' (%s)", t->groups,
			   tls_ossl_reason(why, sizeof(why)));
		ok = false;
	}
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_dh_auto(ctx, 1);
	/* The server's cipher order (every cipher in the default list is an
	 * AEAD with forward secrecy, so this only makes the choice
	 * predictable, and clears testssl.sh's "no server cipher order"),
	 * except that a client preferring ChaCha20 (no AES hardware) gets it. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_PRIORITIZE_CHACHA | (t->session_tickets ? 0 : SSL_OP_NO_TICKET));
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_max_early_data(ctx, 0);
	SSL_CTX_set_recv_max_early_data(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, t->session_tickets ? 1 : 0);
	SSL_CTX_set_timeout(ctx, (long)(t->session_timeout_ms / 1000));
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"drover", 6);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_on_ticket);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_on_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, rt);
	SSL_CTX_set_alpn_select_cb(ctx, tls_on_alpn, NULL);
	return ctx;
}

static bool tls_ctx_add_cert(struct tls_report *rep, SSL_CTX *ctx, const struct tls_cert *c)
{
	char why[256];
	bool ok = SSL_CTX_use_certificate(ctx, c->leaf) == 1 && SSL_CTX_use_PrivateKey(ctx, c->key) == 1;
	for (int i = 0; ok && i < sk_X509_num(c->chain); i++)
		ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(c->chain, i)) == 1;
	if (!ok)
		tls_report(rep, 0, "[certificate %s]: OpenSSL refuses it: %s", c->section,
			   tls_ossl_reason(why, sizeof(why)));
	return ok;
}

static void tls_runtime_free(struct tls_runtime *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n_certs; i++)
		tls_cert_free(&rt->certs[i]);
	for (size_t i = 0; i < rt->n_groups; i++)
		SSL_CTX_free(rt->groups[i].ctx);
	OPENSSL_cleanse(rt->file_keys, sizeof(rt->file_keys));
	free(rt);
}

/* Every certificate read, named and grouped; false if any failed. */
static bool tls_load_certs(struct tls_report *rep, const struct config *cfg, struct tls_runtime *rt)
{
	bool ok = true;
	const struct config_part *part;
	for (size_t i = 0; (part = tls_cert_part(cfg, i)); i++) {
		if (rt->n_certs == TLS_MAX_CERTS) {
			tls_report(rep, part->line, "[certificate %s]: expected at most %d certificates", part->name,
				   TLS_MAX_CERTS);
			return false;
		}
		const struct tls_cert_config *cc = part->data;
		if (!cc->certificate || !cc->private_key)
			continue; /* config_load reported it */
		struct tls_cert *c = &rt->certs[rt->n_certs];
		c->first_name = rt->n_names; /* a failed one takes back only its own names */
		if (!tls_cert_read(rep, part, c) || !tls_cert_names(rep, rt, part, c) ||
		    !tls_cert_group(rep, rt, part, c)) {
			rt->n_names = c->first_name; /* its names go with it */
			tls_cert_free(c);
			ok = false;
			continue;
		}
		for (size_t k = c->first_name; k < c->first_name + c->n_names; k++)
			rt->names[k].group = c->group;
		rt->n_certs++;
	}
	return ok;
}

int tls_load(struct config *cfg, char *err, size_t err_len)
{
	struct tls_config *t = tls_cfg(cfg);
	if (!t || t->rt || (!tls_in_use(cfg) && !tls_cert_part(cfg, 0) && !t->ticket_key_file))
		return 0;
	struct tls_report rep = { .cfg = cfg, .err = err, .len = err_len, .used = strlen(err) };
	struct tls_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt) {
		tls_report(&rep, 0, "[tls]: out of memory loading certificates");
		return -ENOMEM;
	}
	/* [tls]'s values first, on a context of their own, so that they are
	 * judged even when a certificate fails. */
	SSL_CTX *probe = tls_ctx_new(&rep, cfg, rt);
	bool ok = probe != NULL;
	SSL_CTX_free(probe);
	ok = tls_load_certs(&rep, cfg, rt) && ok;
	for (size_t g = 0; ok && g < rt->n_groups; g++) {
		rt->groups[g].ctx = tls_ctx_new(&rep, cfg, rt);
		ok = rt->groups[g].ctx != NULL;
		for (size_t i = 0; ok && i < rt->n_certs; i++)
			if (rt->certs[i].group == g)
				ok = tls_ctx_add_cert(&rep, rt->groups[g].ctx, &rt->certs[i]);
	}
	if (ok && rt->n_groups == 0 && tls_in_use(cfg))
		ok = false; /* the listener's check reported it */
	if (t->ticket_key_file) {
		char why[512];
		if (tls_keys_read_file(t->ticket_key_file, rt->file_keys, &rt->n_file_keys, why, sizeof(why)) < 0) {
			const struct config_part *tp = NULL;
			for (size_t i = 0; i < cfg->n_parts && !tp; i++)
				if (cfg->parts[i].data == t)
					tp = &cfg->parts[i];
			tls_report(&rep, tp ? config_part_line(tp, "ticket_key_file") : 0, "[tls] ticket_key_file: %s",
				   why);
			ok = false;
		}
	}
	if (!ok || rep.n) {
		tls_runtime_free(rt);
		return -EINVAL;
	}
	t->rt = rt;
	t->rt_free = tls_runtime_free;
	return 0;
}

void *tls_listener_context(const struct config *cfg, const struct config_listener *l)
{
	const struct tls_config *t = tls_cfg(cfg);
	if (!t || !t->rt || !tls_listener_on(l) || t->rt->n_groups == 0)
		return NULL;
	return t->rt->groups[0].ctx;
}

bool tls_cert_at(const struct config *cfg, size_t i, struct tls_cert_info *out)
{
	const struct tls_config *t = tls_cfg(cfg);
	if (!t || !t->rt || i >= t->rt->n_certs)
		return false;
	const struct tls_runtime *rt = t->rt;
	const struct tls_cert *c = &rt->certs[i];
	memset(out, 0, sizeof(*out));
	out->section = c->section;
	size_t pos = 0;
	for (size_t k = c->first_name; k < c->first_name + c->n_names; k++) {
		int w = snprintf(out->names + pos, sizeof(out->names) - pos, "%s%s", pos ? " " : "", rt->names[k].name);
		if (w < 0 || (size_t)w >= sizeof(out->names) - pos)
			break;
		pos += (size_t)w;
	}
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->leaf), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(out->serial, sizeof(out->serial), "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	snprintf(out->key_type, sizeof(out->key_type), "%s", tls_key_type_name(c->key_type));
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(c->leaf), &tm) == 1)
		out->not_after = timegm(&tm);
	return true;
}

void tls_publish_keys(const struct config *cfg, uint64_t now_ms)
{
	const struct tls_config *t = tls_cfg(cfg);
	if (t && t->rt && t->rt->n_file_keys)
		tls_keys_set(t->rt->file_keys, t->rt->n_file_keys, now_ms);
	else
		tls_keys_set(NULL, 0, now_ms);
}
