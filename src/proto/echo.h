/* echo: RFC 862 over TCP (or a unix socket): every byte is sent back. Its
 * table entry carries its [echo] section too. */
#ifndef DROVER_ECHO_H
#define DROVER_ECHO_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "worker/proto.h"

extern const struct proto proto_echo;

/* [echo] */
struct echo_config {
	uint64_t idle_timeout_ms;
	size_t buffer_size;          /* per connection; reading pauses when full */
};

/* cfg's [echo] (its defaults when the file has none); NULL only for a
 * config made before proto_register(). */
const struct echo_config *echo_cfg(const struct config *cfg);

#endif
