/* http file: GET/HEAD of the file tree: validators, conditionals, Range,
 * the trailing-slash 301, and the hand-off to a listing. */
#ifndef DROVER_HTTP_FILE_H
#define DROVER_HTTP_FILE_H

#include "proto/http/conn.h"

/* Answer GET/HEAD of norm (a normalised path) from the document root. */
void http_file_respond(struct http_conn *hc, const char *norm);

#endif
