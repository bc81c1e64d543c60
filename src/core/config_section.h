/* config_section: what a protocol or a transport adds to the configuration
 * file, and the storage a config keeps for it.
 *
 * A module (struct config_module) is its owner's sections, single ([http])
 * or named and repeatable ([certificate NAME]), each a key table with the
 * size of its storage, a function filling in the defaults, one freeing what
 * the keys allocated and one checking the section once the whole file is
 * read; and the keys it adds to every [listener NAME] (status), described
 * the same way. The protocol layer registers the protocols' modules with
 * their names (config_set_protocols, from proto_register), and a transport
 * table will register the transports' the same way (config_set_transports).
 *
 * This module keeps that registry and makes and frees the storage (struct
 * config_part); it knows no section by name and nothing of struct config
 * or of files: config.c reads the file into the storage, and each owner
 * reads its own back (config_section(), config_listener_keys()). */
#ifndef DROVER_CONFIG_SECTION_H
#define DROVER_CONFIG_SECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config_value.h"

#define CONFIG_NAME_MAX 63 /* listener and named-section names, as systemd's FDNAME= */
#define CONFIG_MAX_PROTOCOLS 8
#define CONFIG_MAX_TRANSPORTS 8

/* A section's check() reports through this (config.h: config_check_*). */
struct config_check;

/* A section a module adds to the file, or (as its struct config_module's
 * listener) the keys it adds to every [listener NAME]. */
struct config_section {
	const char *name;              /* [name]; unused for listener keys */
	bool named;                    /* [name NAME]: repeatable, one storage per NAME */
	const struct config_key *keys; /* offsets into the storage */
	size_t n_keys;
	size_t size;                   /* of the storage: zeroed, then init() */
	/* Fill in the defaults; 0 or -ENOMEM. NULL: all zero. */
	int (*init)(void *data);
	/* Free what init() and the key parsers allocated (not data itself).
	 * NULL: nothing to free. */
	void (*release)(void *data);
	/* Once the whole file is read without running out of memory:
	 * cross-checks, reported with config_check_error(), and defaults that
	 * depend on other keys. NULL: none. */
	void (*check)(struct config_check *chk, void *data);
};

/* What one protocol or transport adds to the file. */
struct config_module {
	const struct config_section *sections; /* its own, in the order messages list them */
	size_t n_sections;
	const struct config_section *listener; /* keys it adds to every [listener NAME]; NULL: none */
};

/* A protocol as config sees it: names come from the protocol layer's table
 * (proto_register), so config holds no list of protocols itself. */
struct config_protocol {
	const char *name;                   /* as written in [listener] protocol =, lower case */
	const struct config_module *module; /* what it adds to the file; NULL: nothing */
};

/* The storage of one module section (or of one module's listener keys). */
struct config_part {
	const struct config_section *section;
	char name[CONFIG_NAME_MAX + 1]; /* a named section's NAME; else "" */
	unsigned line;                  /* of its header; 0: not in the file (defaults) */
	void *data;                     /* section->size bytes */
	unsigned *seen;                 /* per key of section->keys: the line that set it, 0: none */
};

/* ------------------------------------------------ the registry */

/* The registry's contents (config.h: config_set_protocols and
 * config_set_transports, which check them with config_registry_check). */
void config_registry_protocols(const struct config_protocol *list, size_t n);
void config_registry_transports(const struct config_module *const *list, size_t n);
/* A section name or a listener key that two modules claim, or that core
 * claims ("server", "listener", core_keys of [listener NAME]), is a bug in
 * a table: it aborts, naming it. */
void config_registry_check(const struct config_key *core_keys, size_t n_core_keys);

/* The i-th registered protocol, or NULL past the last. */
const struct config_protocol *config_protocol_at(size_t i);
/* The registered protocol called name (case-insensitive), or NULL. */
const struct config_protocol *config_protocol_find(const char *name);
/* Every registered module, the protocols' in table order, then the
 * transports': the i-th, or NULL past the last; *owner is its protocol's
 * name (NULL: a transport's). */
const struct config_module *config_module_at(size_t i, const char **owner);
/* The registered section called name (its first len bytes), or NULL. */
const struct config_section *config_section_named(const char *name, size_t len);
/* The protocol whose module registered sec; NULL: a transport's. */
const char *config_owner_of(const struct config_section *sec);
/* "[server], [http], [echo] or [listener NAME]": where a key may go. */
void config_section_list(char *buf, size_t len);

/* ------------------------------------------------ storage */

/* Append storage for sec to *parts (*n of them), zeroed, defaults in: the
 * new part, or NULL (no memory; nothing changed but *parts' room). */
struct config_part *config_parts_add(struct config_part **parts, size_t *n,
				     const struct config_section *sec);
/* The storage of every module's listener keys, in registration order, for
 * a new listener: 0, or -ENOMEM keeping those it could make. */
int config_parts_for_listener(struct config_part **parts, size_t *n);
/* Free n parts (their storage, and the array). */
void config_parts_free(struct config_part *parts, size_t n);
/* The line that set key in part (one of its section's keys); 0: none. */
unsigned config_part_line(const struct config_part *part, const char *key);

#endif
