/* tls_config: [tls], [certificate NAME] and [listener NAME] tls, as the TLS
 * transport's struct config_module. Values are checked here as far as
 * they can be without OpenSSL or the files; tls_load() (tls_context.c)
 * reads the files and checks the rest. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "worker/tls_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_value.h"
#include "worker/tls.h"

/* ------------------------------------------------------------ values */

static CONFIG_KEY_PARSER(tls_key_protocols)
{
	(void)ctx;
	(void)key;
	unsigned *out = field, bits = 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", value);
	char *save = NULL;
	for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (strcasecmp(t, "TLSv1.2") == 0) {
			bits |= TLS_PROTO_12;
		} else if (strcasecmp(t, "TLSv1.3") == 0) {
			bits |= TLS_PROTO_13;
		} else {
			snprintf(why, why_len, "expected TLSv1.2 and/or TLSv1.3 (older versions are not offered)");
			return -EINVAL;
		}
	}
	if (!bits) {
		snprintf(why, why_len, "expected TLSv1.2 and/or TLSv1.3");
		return -EINVAL;
	}
	*out = bits;
	return 0;
}

/* An OpenSSL list (ciphers, suites, groups): printable, no spaces; OpenSSL
 * itself judges the names when the contexts are built. */
static CONFIG_KEY_PARSER(tls_key_list)
{
	(void)key;
	if (value[0] == '\0' || !config_is_token_text(value)) {
		snprintf(why, why_len, "expected a colon-separated OpenSSL list without spaces");
		return -EINVAL;
	}
	config_set_string(ctx, field, value);
	return 0;
}

static CONFIG_KEY_PARSER(tls_key_names)
{
	(void)key;
	for (const char *c = value; *c; c++) {
		unsigned char u = (unsigned char)*c;
		if (!(u == ' ' || u == '\t' || u == '.' || u == '-' || u == '*' || u == '_' ||
		      (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z'))) {
			snprintf(why, why_len, "expected host names separated by spaces (a leading '*.' for a wildcard)");
			return -EINVAL;
		}
	}
	/* A '*' only as a whole leading label. */
	for (const char *c = strchr(value, '*'); c; c = strchr(c + 1, '*')) {
		bool leading = (c == value || c[-1] == ' ' || c[-1] == '\t') && c[1] == '.';
		if (!leading) {
			snprintf(why, why_len, "expected a wildcard only as a leading '*.' (as in *.example.com)");
			return -EINVAL;
		}
	}
	config_set_string(ctx, field, value[strspn(value, " \t")] ? value : NULL);
	return 0;
}

/* ------------------------------------------------------------ [tls] */

#define TLS_KEY(member) CONFIG_FIELD(struct tls_config, member)

static const struct config_key tls_keys[] = {
	{ "protocols", tls_key_protocols, TLS_KEY(protocols), 0, 0 },
	{ "ciphers", tls_key_list, TLS_KEY(ciphers), 0, 0 },
	{ "ciphersuites", tls_key_list, TLS_KEY(ciphersuites), 0, 0 },
	{ "groups", tls_key_list, TLS_KEY(groups), 0, 0 },
	{ "session_tickets", config_key_bool, TLS_KEY(session_tickets), 0, 0 },
	{ "session_timeout", config_key_duration, TLS_KEY(session_timeout_ms), 1000, CONFIG_DURATION_MAX_MS },
	{ "ticket_key_file", config_key_path, TLS_KEY(ticket_key_file), 0, 0 },
};

static int tls_config_init(void *data)
{
	struct tls_config *t = data;
	t->protocols = TLS_PROTO_12 | TLS_PROTO_13;
	t->ciphers = strdup(TLS_DEFAULT_CIPHERS);
	t->groups = strdup(TLS_DEFAULT_GROUPS);
	t->session_tickets = true;
	t->session_timeout_ms = 3600 * 1000;
	return t->ciphers && t->groups ? 0 : -ENOMEM;
}

static void tls_config_release(void *data)
{
	struct tls_config *t = data;
	if (t->rt && t->rt_free)
		t->rt_free(t->rt);
	free(t->ciphers);
	free(t->ciphersuites);
	free(t->groups);
	free(t->ticket_key_file);
}

/* ------------------------------------------------------------ [certificate NAME] */

#define CERT_KEY(member) CONFIG_FIELD(struct tls_cert_config, member)

static const struct config_key tls_cert_keys[] = {
	{ "certificate", config_key_path, CERT_KEY(certificate), 0, 0 },
	{ "private_key", config_key_path, CERT_KEY(private_key), 0, 0 },
	{ "names", tls_key_names, CERT_KEY(names), 0, 0 },
};

static void tls_cert_release(void *data)
{
	struct tls_cert_config *c = data;
	free(c->certificate);
	free(c->private_key);
	free(c->names);
}

static void tls_cert_check(struct config_check *chk, void *data)
{
	const struct tls_cert_config *c = data;
	if (!c->certificate)
		config_check_error(chk, config_check_section_line(chk),
				   "[%s] certificate: expected a PEM file (the chain, leaf first), got nothing",
				   config_check_label(chk));
	if (!c->private_key)
		config_check_error(chk, config_check_section_line(chk),
				   "[%s] private_key: expected a PEM file, got nothing", config_check_label(chk));
}

/* ------------------------------------------------------------ [listener NAME] */

static const struct config_key tls_listener_keys[] = {
	{ "tls", config_key_bool, CONFIG_FIELD(struct tls_listener_config, tls), 0, 0 },
};

static const struct config_section tls_sections[];

static void tls_listener_check(struct config_check *chk, void *data)
{
	const struct tls_listener_config *lc = data;
	const struct config_listener *l = config_check_listener(chk);
	if (!lc->tls || !l)
		return;
	const char *name;
	if (!config_section_at(config_check_config(chk), &tls_sections[1], 0, &name))
		config_check_error(chk, config_check_line(chk, "tls"),
				   "[listener %s] tls: expected a [certificate NAME] section for it, got none", l->name);
}

/* ------------------------------------------------------------ module */

static const struct config_section tls_sections[] = {
	{
		.name = "tls",
		.keys = tls_keys,
		.n_keys = sizeof(tls_keys) / sizeof(tls_keys[0]),
		.size = sizeof(struct tls_config),
		.init = tls_config_init,
		.release = tls_config_release,
	},
	{
		.name = "certificate",
		.named = true,
		.keys = tls_cert_keys,
		.n_keys = sizeof(tls_cert_keys) / sizeof(tls_cert_keys[0]),
		.size = sizeof(struct tls_cert_config),
		.release = tls_cert_release,
		.check = tls_cert_check,
	},
};

static const struct config_section tls_listener_section = {
	.keys = tls_listener_keys,
	.n_keys = sizeof(tls_listener_keys) / sizeof(tls_listener_keys[0]),
	.size = sizeof(struct tls_listener_config),
	.check = tls_listener_check,
};

const struct config_module tls_config_module = {
	.sections = tls_sections,
	.n_sections = sizeof(tls_sections) / sizeof(tls_sections[0]),
	.listener = &tls_listener_section,
};

void tls_register(void)
{
	static const struct config_module *const transports[] = { &tls_config_module };
	config_set_transports(transports, sizeof(transports) / sizeof(transports[0]));
}

struct tls_config *tls_cfg(const struct config *cfg)
{
	/* The config owns the storage; the tls module alone writes its
	 * runtime there (tls_load), so the const is cast away here only. */
	return (struct tls_config *)config_section(cfg, &tls_sections[0]);
}

const struct config_part *tls_cert_part(const struct config *cfg, size_t i)
{
	for (size_t p = 0; p < cfg->n_parts; p++) {
		if (cfg->parts[p].section != &tls_sections[1])
			continue;
		if (i-- == 0)
			return &cfg->parts[p];
	}
	return NULL;
}

bool tls_listener_on(const struct config_listener *l)
{
	const struct tls_listener_config *lc = config_listener_keys(l, &tls_listener_section);
	return lc && lc->tls;
}

bool tls_in_use(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (tls_listener_on(&cfg->listeners[i]))
			return true;
	return false;
}

uint64_t tls_session_timeout_ms(const struct config *cfg)
{
	const struct tls_config *t = tls_cfg(cfg);
	return t ? t->session_timeout_ms : 0;
}
