/* http handler: what a handler gets and gives, whichever protocol version
 * carried the request. A handler looks at a request (struct http_ask) and
 * either answers it, filling in a struct http_response (response.h), or
 * declines, and the router (router.c) asks the next one. A handler never
 * sees a connection: HTTP/1.1 (h1.c) builds the ask from its connection and
 * sends the response, and HTTP/2 will do the same from a stream. */
#ifndef DROVER_HTTP_HANDLER_H
#define DROVER_HTTP_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/http/config.h"
#include "proto/http/parse.h"
#include "proto/http/path.h"
#include "proto/http/response.h"

struct http_mime;
struct proto_env;
struct worker_listener;

/* What every handler may use of its worker, set up once per worker. */
struct http_site {
	const struct proto_env *env;    /* draining?, the scoreboard */
	const struct http_config *http; /* [http] */
	const struct http_mime *mime;
	struct http_path_options popts; /* index, autoindex, symlinks, dotfiles */
	/* Some listener has redirect_https = yes (redirect.c); when none has,
	 * the router spends nothing on it. */
	bool redirect_https;
};

/* A request as a handler sees it. */
struct http_ask {
	const struct http_request *req; /* method, target, query, version, keep-alive, fields */
	const char *path;               /* normalised (router.c), NUL-terminated */
	bool head_only;                 /* HEAD: answer as for GET; the body is not sent */
	const struct worker_listener *listener; /* where it came in (status = yes?) */
	uint64_t now_ms;                /* the loop's clock */
	const struct http_site *site;
};

/* Did a handler answer? */
enum http_handled {
	HTTP_DECLINED = 0, /* not its request: resp untouched, the next handler is asked */
	HTTP_ANSWERED,     /* resp holds the answer */
};

/* A handler: answer ask in resp (status, fields, body source), or decline. */
typedef enum http_handled (*http_handler_fn)(const struct http_ask *ask, struct http_response *resp);

/* An entry of a routing table (router.c). */
struct http_handler {
	const char *name;
	http_handler_fn answer;
};

#endif
