/* http builtin: the endpoints drover answers itself, before the file tree. */
#ifndef DROVER_HTTP_BUILTIN_H
#define DROVER_HTTP_BUILTIN_H

#include <stdbool.h>

#include "proto/http/state.h"

/* If norm (a normalised path) is [http] health_path, or status_path on a
 * listener with status = yes, answer it and return true. */
bool http_builtin_respond(struct http_conn *hc, const char *norm);

#endif
