/* proto: the registry of protocols, filled from the protocol layer's
 * table, and the files their workers write, opened for them. */
#include "worker/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"

static const struct proto *const *proto_registered;

void proto_register(const struct proto *const *table)
{
	static struct config_protocol names[CONFIG_MAX_PROTOCOLS];
	size_t n = 0;
	proto_registered = table;
	for (size_t i = 0; table[i] && n < CONFIG_MAX_PROTOCOLS; i++, n++)
		names[n] = (struct config_protocol){ .name = table[i]->name, .status = table[i]->status_endpoint };
	config_set_protocols(names, n);
}

const struct proto *proto_find(const char *name)
{
	for (size_t i = 0; proto_registered && proto_registered[i]; i++)
		if (strcasecmp(proto_registered[i]->name, name) == 0)
			return proto_registered[i];
	return NULL;
}

const struct proto *const *proto_table(void) { return proto_registered; }

/* Whether a listener of cfg uses p. */
static bool proto_used(const struct config *cfg, const struct proto *p)
{
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (proto_find(cfg->listeners[i].protocol) == p)
			return true;
	return false;
}

int proto_files_open(const struct config *cfg, struct proto_fileset *set, bool check, char *err,
		     size_t err_len)
{
	set->n = 0;
	for (size_t t = 0; proto_registered && proto_registered[t]; t++) {
		const struct proto *p = proto_registered[t];
		if (!p->files || !proto_used(cfg, p))
			continue;
		struct proto_file files[PROTO_MAX_FILES];
		size_t n = p->files(cfg, files);
		for (size_t i = 0; i < n && i < PROTO_MAX_FILES; i++) {
			int fd = -ENFILE;
			if (set->n < PROTO_FILESET_MAX)
				fd = open(files[i].path,
					  O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0640);
			if (fd < 0 && fd != -ENFILE)
				fd = -errno;
			if (fd == -ENXIO && check)
				continue; /* a FIFO whose reader is not there yet */
			if (fd < 0) {
				snprintf(err, err_len, "%s:%u: %s: cannot open %s: %s", cfg->path, files[i].line,
					 files[i].key, files[i].path, strerror(-fd));
				proto_files_close(set);
				return fd;
			}
			set->f[set->n++] = (struct proto_open_file){ .proto = p, .index = i, .fd = fd };
		}
	}
	if (check)
		proto_files_close(set);
	return 0;
}

void proto_files_close(struct proto_fileset *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->f[i].fd >= 0)
			close(set->f[i].fd);
	set->n = 0;
}

int proto_env_file(const struct proto_env *env, const struct proto *p, size_t index)
{
	const struct proto_fileset *set = env->files;
	for (size_t i = 0; set && i < set->n; i++)
		if (set->f[i].proto == p && set->f[i].index == index)
			return set->f[i].fd;
	return -1;
}
