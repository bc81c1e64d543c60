/* config: the one INI file (inih), parsed into a struct with every default
 * filled in. Errors name file, line, section, key and what was expected.
 *
 * Core owns [server] and the generic keys of every [listener NAME]
 * (address, protocol, backlog, mode, defer_accept, proxy_protocol). Everything else in the
 * file belongs to a protocol or a transport, which describes it in a
 * struct config_module (config_section.h) handed to config through its
 * table entry (proto_register): its own sections, single ([http]) or named
 * and repeatable ([certificate NAME]), each with its key table, defaults
 * and cross-checks; and the keys it adds to every [listener NAME] (status).
 *
 * The config owns the storage of each section (of each instance of a named
 * one) and, per listener, of each module's listener keys: allocated from
 * the size the section declares, filled with its defaults by its init(),
 * checked by its check() once the whole file is read, and freed with the
 * config by its release(). Its owner reads it back through
 * config_section() or config_listener_keys(), wrapped in its own typed
 * accessor (http_cfg(), echo_cfg(), http_listener_cfg()). */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/config_section.h"
#include "core/config_value.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/drover/drover.ini"
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_PROTO_NAME_MAX 15
/* Instances of named sections ([certificate NAME]), all together. */
#define CONFIG_MAX_NAMED 256

struct config_listener {
	char name[CONFIG_NAME_MAX + 1];
	struct config_address address;
	char protocol[CONFIG_PROTO_NAME_MAX + 1]; /* a registered protocol name, lower case */
	int backlog;
	mode_t mode;      /* unix sockets: permission bits */
	uint64_t defer_accept_ms; /* TCP_DEFER_ACCEPT; 0 = off */
	bool defer_accept_set;    /* given in the file: applied to sockets from systemd too */
	bool proxy_protocol;      /* connections start with a PROXY protocol header (v1 or v2) */
	unsigned line;    /* where the section starts, for messages */
	/* The keys each module adds (config_listener_keys), in registration order. */
	struct config_part *ext;
	size_t n_ext;
};

struct config_server {
	unsigned workers;            /* "auto" resolves to online CPUs */
	uint64_t shutdown_timeout_ms;
	uint64_t lame_duck_ms;       /* a stop's lame duck (health 503, all else served); 0: none */
	int log_level;               /* LOG_* */
	char *user;                  /* NULL: do not change user */
	char *group;                 /* NULL: user's primary group (or none) */
	unsigned max_connections;    /* per worker, all protocols */
	uint64_t worker_timeout_ms;  /* heartbeat older than this: worker is hung */
	uint64_t max_requests;       /* 0: never recycle */
	uint64_t max_requests_jitter;/* extra random 0..jitter per worker */
	uint64_t lingering_timeout_ms;
	unsigned max_generations;    /* generations alive at once (reload/upgrade) */
	char *control_socket;        /* NULL: default under the runtime directory; "" / "off": none */
	char *pid_file;              /* NULL: none */
	/* Hand keep-alive connections of a worker that drains because its
	 * successor is ready (reload, upgrade, recycling) to that successor. */
	bool handoff;
};

struct config {
	char *path;
	struct config_server server;
	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	size_t n_listeners;
	/* The modules' sections: every single one (its defaults when the file
	 * does not have it), then each named one in file order. */
	struct config_part *parts;
	size_t n_parts;
};

/* Parse path into a new config; 0, or -errno with every problem found in err
 * (one per line, "FILE:LINE: [section] key: expected ..., got '...'"). */
int config_load(const char *path, struct config **out, char *err, size_t err_len);
/* A config holding only the built-in defaults (no listeners). */
struct config *config_new_default(void);
/* Free a config from config_load()/config_new_default(); NULL is fine. */
void config_free(struct config *cfg);
/* The listener section named name, or NULL. */
const struct config_listener *config_find_listener(const struct config *cfg, const char *name);
/* [server] user and group resolved (config_identity_lookup). */
int config_identity(const struct config *cfg, struct config_identity *id, const char **missing);

/* ------------------------------------------------ modules */

/* The protocols a listener may name (the first is the default) and what
 * each adds to the file; replaces the earlier set. The array must outlive
 * every config made from now on. A section name or a listener key that two
 * parts claim is a bug in a table: it aborts, naming it. */
void config_set_protocols(const struct config_protocol *list, size_t n);
/* What each transport adds to the file (TLS: [tls], [certificate NAME],
 * the listener key tls), listed after the protocols'; the same rules. */
void config_set_transports(const struct config_module *const *list, size_t n);

/* The storage of single section sec, or NULL when sec was not registered
 * when cfg was made. */
const void *config_section(const struct config *cfg, const struct config_section *sec);
/* The storage of the i-th [sec->name NAME] (file order) and, in *name,
 * its NAME; NULL past the last. */
const void *config_section_at(const struct config *cfg, const struct config_section *sec, size_t i,
			      const char **name);
/* The storage of the keys sec adds to listener l, or NULL. */
const void *config_listener_keys(const struct config_listener *l, const struct config_section *sec);

/* ------------------------------------------------ for a section's check() */

/* The config being checked: every key read, the defaults filled in. */
const struct config *config_check_config(const struct config_check *chk);
/* For listener keys: the listener they belong to; else NULL. */
const struct config_listener *config_check_listener(const struct config_check *chk);
/* How messages name the section: "http", "certificate main", "listener web". */
const char *config_check_label(const struct config_check *chk);
/* The line of the section's header ([certificate main], [listener web]);
 * 0: not in the file. */
unsigned config_check_section_line(const struct config_check *chk);
/* The line that set key (one of the section's own keys); 0: not in the file. */
unsigned config_check_line(const struct config_check *chk, const char *key);
/* Report a problem: "FILE:LINE: " (line 0: "FILE: ") and the message. */
void config_check_error(struct config_check *chk, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A listener key that only listeners of the protocol owning it may turn
 * on (on: its value): on any other listener, "[listener L] KEY: expected
 * no, because WHAT needs protocol = OWNER and this listener is P". */
void config_check_own_protocol(struct config_check *chk, const char *key, bool on, const char *what);

#endif
