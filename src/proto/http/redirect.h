/* http redirect: [listener NAME] redirect_https = yes. A plain listener
 * that only sends its clients to HTTPS: every request is answered 301
 * with Location: https://HOST[:https_port]/path?query, except health and
 * status (and a metrics path, when there is one), which are answered as
 * on any listener so that load balancers and scrapers keep working. */
#ifndef DROVER_HTTP_REDIRECT_H
#define DROVER_HTTP_REDIRECT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "proto/http/handler.h"

/* Whether any listener of cfg has redirect_https = yes: when none does
 * (the usual case) the router never looks (http_site.redirect_https). */
bool http_redirect_any(const struct config *cfg);

/* Answer ask with the redirect when its listener redirects and the
 * request is not one of the exempt paths (nor OPTIONS *, nor a path that
 * does not normalise: the router answers those as usual). A Host that is
 * not a valid uri-host[:port] is answered 400, never put in Location. */
enum http_handled http_redirect_https(const struct http_ask *ask, struct http_response *resp);

/* The host of host_port (a Host value, "name", "name:port", "[v6]" or
 * "[v6]:port"), without its port, checked as RFC 3986 §3.2.2 uri-host
 * (IP-literal, IPv4address or reg-name, with no empty name): its length,
 * or 0 when it is empty or invalid. */
size_t http_redirect_host_len(const char *host_port, size_t len);

#endif
