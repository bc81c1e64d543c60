/* echo: RFC 862 over TCP (or a unix socket): every byte is sent back. */
#ifndef DROVER_ECHO_H
#define DROVER_ECHO_H

#include "worker/proto.h"

extern const struct proto proto_echo;

#endif
