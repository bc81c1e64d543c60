/* protocols: a new protocol is one file and one line here, its
 * configuration included (its entry's .config: sections and listener keys). */
#include "proto/protocols.h"

#include "proto/echo.h"
#include "proto/http/http.h"

const struct proto *const protocols[] = {
	&proto_http, /* the default */
	&proto_echo,
	NULL,
};
