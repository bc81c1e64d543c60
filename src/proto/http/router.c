/* http router: see router.h. Methods (RFC 9110 §9): GET and HEAD go to the
 * handlers, OPTIONS answers 200 with Allow (not 204, which must not carry
 * Content-Length, RFC 9110 §8.6), the other registered methods get 405 with
 * Allow, and a method token we do not know gets 501 (RFC 9110 §15.6.2). */
#include "proto/http/router.h"

#include <errno.h>

#include "proto/http/builtin.h"
#include "proto/http/file.h"
#include "proto/http/listing.h"
#include "proto/http/metrics.h"
#include "proto/http/path.h"
#include "proto/http/redirect.h"

/* In order: the first that answers wins. Built-in endpoints come first so
 * that a file of the same name cannot hide them; listings last, as the
 * static handler declines a directory to list. */
static const struct http_handler http_handlers[] = {
	{ "health", http_builtin_health },
	{ "live", http_builtin_live },
	{ "status", http_builtin_status },
	{ "metrics", http_builtin_metrics },
	{ "static", http_file_answer },
	{ "listing", http_listing_answer },
};

void http_router_answer_from(const struct http_handler *table, size_t n, struct http_ask *ask,
			     struct http_response *resp)
{
	/* A listener that redirects to HTTPS does so for every method. */
	if (ask->site->redirect_https && http_redirect_https(ask, resp) == HTTP_ANSWERED)
		return;
	switch (ask->req->method) {
	case HTTP_METHOD_GET:
	case HTTP_METHOD_HEAD:
		break;
	case HTTP_METHOD_OPTIONS:
		resp->status = 200;
		http_field(&resp->fields, "Allow", "GET, HEAD, OPTIONS");
		return;
	case HTTP_METHOD_OTHER:
		http_response_error(resp, 501);
		return;
	default:
		http_response_error(resp, 405);
		return;
	}

	char norm[HTTP_PATH_MAX];
	int r = http_path_normalize(ask->req->path.p, ask->req->path.len, norm, sizeof(norm));
	if (r == -ENAMETOOLONG) {
		http_response_error(resp, 414);
		return;
	}
	if (r < 0) {
		http_response_error(resp, 400);
		resp->how = HTTP_CLOSE;
		return;
	}
	ask->path = norm;
	size_t i = 0;
	while (i < n && table[i].answer(ask, resp) == HTTP_DECLINED)
		i++;
	if (i == n)
		http_response_error(resp, 404); /* nobody's: no handler serves it */
	if (resp->status == 403 || resp->status == 404 || resp->status == 500)
		http_file_error_page(ask, resp); /* [http] error_page_STATUS */
	ask->path = NULL; /* norm ends here */
}

void http_router_answer(struct http_ask *ask, struct http_response *resp)
{
	http_router_answer_from(http_handlers, sizeof(http_handlers) / sizeof(http_handlers[0]), ask, resp);
}
