/* http listing: autoindex, the HTML list of a directory without an index. */
#ifndef DROVER_HTTP_LISTING_H
#define DROVER_HTTP_LISTING_H

#include "proto/http/state.h"

/* Answer GET/HEAD of directory norm (open as dir_fd, not taken over) of
 * the root root_fd. */
void http_listing_respond(struct http_conn *hc, const char *norm, int root_fd, int dir_fd);

#endif
