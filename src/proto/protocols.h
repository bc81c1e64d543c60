/* protocols: the table of every protocol drover serves. It lives in the
 * protocol layer and is handed down as data (proto_register()), so no lower
 * layer includes a protocol. */
#ifndef DROVER_PROTO_PROTOCOLS_H
#define DROVER_PROTO_PROTOCOLS_H

#include "worker/proto.h"

/* NULL-terminated; the first entry is a listener's default protocol. */
extern const struct proto *const protocols[];

#endif
