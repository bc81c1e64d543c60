/* proto: the registry of protocols, filled from the protocol layer's table. */
#include "worker/proto.h"

#include <strings.h>

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
