/* http listing: autoindex, the HTML list of a directory without an index
 * (an entry of the router's table, after the static files). */
#ifndef DROVER_HTTP_LISTING_H
#define DROVER_HTTP_LISTING_H

#include "proto/http/handler.h"

/* GET/HEAD of a directory to list ([http] autoindex, no index file);
 * declines everything else. */
enum http_handled http_listing_answer(const struct http_ask *ask, struct http_response *resp);

#endif
