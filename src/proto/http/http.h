/* http: the HTTP/1.1 protocol of a worker: connection state machine,
 * keep-alive and pipelining, responses, built-in endpoints, access log. */
#ifndef DROVER_PROTO_HTTP_H
#define DROVER_PROTO_HTTP_H

#include "worker/proto.h"

extern const struct proto proto_http;

#endif
