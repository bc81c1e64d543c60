/* config_section: the registry of what protocols and transports add to the
 * configuration file, and the storage a config keeps for each of their
 * sections. */
#include "core/config_section.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ registry */

static const struct config_protocol *config_protocols;
static size_t config_n_protocols;
static const struct config_module *const *config_transports;
static size_t config_n_transports;
static const struct config_module config_no_module; /* a protocol that adds nothing */

void config_registry_protocols(const struct config_protocol *list, size_t n)
{
	config_protocols = list;
	config_n_protocols = n;
}

void config_registry_transports(const struct config_module *const *list, size_t n)
{
	config_transports = list;
	config_n_transports = n;
}

const struct config_protocol *config_protocol_at(size_t i)
{
	return i < config_n_protocols ? &config_protocols[i] : NULL;
}

const struct config_protocol *config_protocol_find(const char *name)
{
	for (size_t i = 0; i < config_n_protocols; i++)
		if (strcasecmp(config_protocols[i].name, name) == 0)
			return &config_protocols[i];
	return NULL;
}

const struct config_module *config_module_at(size_t i, const char **owner)
{
	*owner = NULL;
	if (i < config_n_protocols) {
		*owner = config_protocols[i].name;
		return config_protocols[i].module ? config_protocols[i].module : &config_no_module;
	}
	i -= config_n_protocols;
	return i < config_n_transports ? config_transports[i] : NULL;
}

const struct config_section *config_section_named(const char *name, size_t len)
{
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++)
		for (size_t s = 0; s < m->n_sections; s++)
			if (strlen(m->sections[s].name) == len && memcmp(m->sections[s].name, name, len) == 0)
				return &m->sections[s];
	return NULL;
}

const char *config_owner_of(const struct config_section *sec)
{
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++) {
		if (m->listener == sec)
			return owner;
		for (size_t s = 0; s < m->n_sections; s++)
			if (&m->sections[s] == sec)
				return owner;
	}
	return NULL;
}

static bool config_has_key(const struct config_key *keys, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, name) == 0)
			return true;
	return false;
}

/* A module's listener key that core or an earlier module (before index
 * mine) already has. */
static bool config_listener_key_taken(const char *key, size_t mine, const struct config_key *core_keys,
				      size_t n_core_keys)
{
	if (config_has_key(core_keys, n_core_keys, key))
		return true;
	const char *owner;
	const struct config_module *m;
	for (size_t j = 0; j < mine && (m = config_module_at(j, &owner)); j++)
		if (m->listener && config_has_key(m->listener->keys, m->listener->n_keys, key))
			return true;
	return false;
}

void config_registry_check(const struct config_key *core_keys, size_t n_core_keys)
{
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++) {
		for (size_t s = 0; s < m->n_sections; s++) {
			const char *name = m->sections[s].name;
			if (strcmp(name, "server") == 0 || strcmp(name, "listener") == 0 ||
			    config_section_named(name, strlen(name)) != &m->sections[s]) {
				fprintf(stderr, "config: section [%s] is claimed twice\n", name);
				abort();
			}
		}
		for (size_t k = 0; m->listener && k < m->listener->n_keys; k++) {
			const char *key = m->listener->keys[k].name;
			if (config_listener_key_taken(key, i, core_keys, n_core_keys)) {
				fprintf(stderr, "config: listener key '%s' is claimed twice\n", key);
				abort();
			}
		}
	}
}

void config_section_list(char *buf, size_t len)
{
	const char *names[64];
	bool named[64];
	size_t n = 0;
	names[n] = "server";
	named[n++] = false;
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++)
		for (size_t s = 0; s < m->n_sections && n < CONFIG_ARRAY_SIZE(names) - 1; s++) {
			names[n] = m->sections[s].name;
			named[n++] = m->sections[s].named;
		}
	names[n] = "listener";
	named[n++] = true;
	size_t off = 0;
	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		const char *sep = i == 0 ? "" : i + 1 < n ? ", " : " or ";
		int w = snprintf(buf + off, len - off, "%s[%s%s]", sep, names[i], named[i] ? " NAME" : "");
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* ------------------------------------------------------------ storage */

static void config_part_release(struct config_part *part)
{
	if (part->data && part->section->release)
		part->section->release(part->data);
	free(part->data);
	free(part->seen);
	part->data = NULL;
	part->seen = NULL;
}

/* Storage for sec, zeroed, defaults in: 0, or -ENOMEM with nothing kept. */
static int config_part_init(struct config_part *part, const struct config_section *sec)
{
	memset(part, 0, sizeof(*part));
	part->section = sec;
	part->data = calloc(1, sec->size ? sec->size : 1);
	part->seen = calloc(sec->n_keys ? sec->n_keys : 1, sizeof(*part->seen));
	if (!part->data || !part->seen || (sec->init && sec->init(part->data) < 0)) {
		config_part_release(part);
		return -ENOMEM;
	}
	return 0;
}

struct config_part *config_parts_add(struct config_part **parts, size_t *n,
				     const struct config_section *sec)
{
	struct config_part *grown = realloc(*parts, (*n + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	*parts = grown;
	if (config_part_init(&grown[*n], sec) < 0)
		return NULL;
	return &grown[(*n)++];
}

int config_parts_for_listener(struct config_part **parts, size_t *n)
{
	const char *owner;
	const struct config_module *m;
	for (size_t i = 0; (m = config_module_at(i, &owner)); i++)
		if (m->listener && !config_parts_add(parts, n, m->listener))
			return -ENOMEM;
	return 0;
}

void config_parts_free(struct config_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		config_part_release(&parts[i]);
	free(parts);
}

unsigned config_part_line(const struct config_part *part, const char *key)
{
	const struct config_section *sec = part->section;
	for (size_t i = 0; i < sec->n_keys; i++)
		if (strcmp(sec->keys[i].name, key) == 0)
			return part->seen[i];
	abort(); /* a typo in the owner's code, not in the user's file */
}
