/* http file: the static-file handler: GET/HEAD of the file tree, from the
 * open-file cache or the file system: validators, conditionals, Range, the
 * trailing-slash 301 (an entry of the router's table). */
#ifndef DROVER_HTTP_FILE_H
#define DROVER_HTTP_FILE_H

#include "proto/http/handler.h"

/* Answer GET/HEAD of ask->path from the document root; declines a
 * directory to list (the listing handler's). */
enum http_handled http_file_answer(const struct http_ask *ask, struct http_response *resp);

#endif
