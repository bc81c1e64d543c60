/* http file: the static-file handler: GET/HEAD of the file tree, from the
 * open-file cache or the file system: validators, conditionals, Range, the
 * trailing-slash 301 (an entry of the router's table). */
#ifndef DROVER_HTTP_FILE_H
#define DROVER_HTTP_FILE_H

#include "proto/http/handler.h"

/* Answer GET/HEAD of ask->path from the document root; declines a
 * directory to list (the listing handler's). */
enum http_handled http_file_answer(const struct http_ask *ask, struct http_response *resp);
/* An answer of 403, 404 or 500 in resp: its body becomes the file [http]
 * error_page_STATUS names, status kept; left as it is when none is set or
 * the page cannot be opened (a missing page: the built-in text). */
void http_file_error_page(const struct http_ask *ask, struct http_response *resp);

#endif
