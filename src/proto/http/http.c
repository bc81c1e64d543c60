/* http: the HTTP/1.1 protocol of a worker (RFC 9110, RFC 9112): its table
 * entry, the per-worker set-up, and the routing of a complete request to
 * the piece that answers it. The files of src/proto/http, by role:
 *
 *   http.c        this: proto_http, worker init/done, request routing
 *   conn.c        the connection state machine, I/O through the transport, timeouts, drain
 *   idle.c        a connection between requests, waiting for memory, accept
 *   response.c    status line, Date, header block, errors, bodies from memory
 *   file.c        files: validators, conditionals, Range, 301, sendfile hand-off
 *   cache.c       the open-file cache: plain GET/HEAD answered without a lookup
 *   pool.c        idle connection structs and in-flight buffers, per worker
 *   listing.c     autoindex pages
 *   builtin.c     health_path and status_path
 *   access_log.c  the combined-format access log
 *   parse.c       request heads; body.c request bodies
 *   fields.c      HTTP-dates, entity-tags, Range grammar
 *   path.c        path decoding and normalisation, safe opening under the root
 *   root.c        the root directory fd, following a swapped symlink
 *   mime.c        Content-Type by extension
 *
 * Methods: GET and HEAD serve files, OPTIONS answers 200 with Allow (not
 * 204, which must not carry Content-Length, RFC 9110 §8.6), the other
 * registered methods get 405 with Allow, and a method token we do not know
 * gets 501 (RFC 9110 §15.6.2).
 *
 * Memory: connection buffers come from a per-worker pool while a request
 * is in flight (pool.c, conn.c); nothing is allocated per request except
 * the bodies of the two non-hot-path responses (directory listings and the
 * status JSON). A connection that finds no memory waits for it (idle.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include "proto/http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "proto/http/access_log.h"
#include "proto/http/builtin.h"
#include "proto/http/cache.h"
#include "proto/http/state.h"
#include "proto/http/file.h"
#include "proto/http/idle.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"
#include "proto/http/response.h"
#include "proto/http/root.h"

#define HTTP_IN_SLACK (16 * 1024) /* room for pipelined bytes beyond max_header_size */

struct http_worker http_w;

/* ------------------------------------------------------------ routing */

void http_route(struct http_conn *hc)
{
	struct http_request *req = &hc->req;
	http_put(hc, HC_HEAD_ONLY, req->method == HTTP_METHOD_HEAD);

	switch (req->method) {
	case HTTP_METHOD_GET:
	case HTTP_METHOD_HEAD:
		break;
	case HTTP_METHOD_OPTIONS:
		/* 200 with an explicit empty body: 204 must not carry
		 * Content-Length (RFC 9110 §8.6), and this is simpler for clients. */
		http_respond_small(hc, 200, HTTP_PERSIST, NULL, "Allow: GET, HEAD, OPTIONS\r\n", "", 0);
		return;
	case HTTP_METHOD_OTHER:
		/* A method token we do not know (RFC 9110 §15.6.2). */
		http_respond_error(hc, 501, HTTP_PERSIST);
		return;
	default:
		http_respond_error(hc, 405, HTTP_PERSIST);
		return;
	}

	char norm[HTTP_PATH_MAX];
	int r = http_path_normalize(req->path.p, req->path.len, norm, sizeof(norm));
	if (r == -ENAMETOOLONG) {
		http_respond_error(hc, 414, HTTP_PERSIST);
		return;
	}
	if (r < 0) {
		http_respond_error(hc, 400, HTTP_CLOSE);
		return;
	}
	if (http_builtin_respond(hc, norm))
		return;
	http_file_respond(hc, norm);
}

/* ------------------------------------------------------------ worker hooks */

static void http_worker_done(void)
{
	http_cache_done();
	http_idle_done();
	http_mime_free(http_w.mime);
	http_w.mime = NULL;
	http_root_close();
	http_log_close();
}

static int http_worker_init(const struct proto_env *env)
{
	http_w.env = env;
	http_w.cfg = env->cfg;
	const struct config_http *h = &env->cfg->http;
	/* sendfile() has no MSG_NOSIGNAL: a peer that vanished must be an
	 * EPIPE, not a dead worker. */
	signal(SIGPIPE, SIG_IGN);

	http_w.lim = (struct http_limits){
		.max_request_line = h->max_request_line,
		.max_header_line = h->max_header_line,
		.max_header_size = h->max_header_size,
		.max_headers = h->max_headers,
		.max_body_size = h->max_body_size,
	};
	http_w.popts = (struct http_path_options){
		.index = h->index,
		.autoindex = h->autoindex,
		.follow_symlinks = h->follow_symlinks,
		.dotfiles = h->dotfiles,
	};
	size_t need = h->max_header_size;
	if (need < h->max_request_line)
		need = h->max_request_line;
	http_w.in_cap = need + HTTP_IN_SLACK;

	http_w.mime = http_mime_load(h->mime_types, h->charset);
	if (!http_w.mime)
		return log_errno(LOG_ERR, -ENOMEM, "http: loading MIME types");

	http_root_open(h->root, h->file_cache_valid_ms, loop_now_ms(env->loop));
	struct http_cache_params cache = {
		.valid_ms = h->file_cache_valid_ms,
		.max_entries = h->file_cache_entries,
		.max_bytes = h->file_cache_size,
		.max_file = h->file_cache_max_file,
		.popts = http_w.popts,
		.mime = http_w.mime,
		.default_type = h->default_type,
	};
	int r = http_cache_init(&cache);
	if (r == 0)
		r = http_log_open(h->access_log, proto_env_file(env, &proto_http, 0));
	if (r < 0) {
		http_worker_done();
		return r;
	}
	r = http_idle_init(env);
	if (r < 0) {
		http_worker_done();
		return log_errno(LOG_ERR, r, "http: connection state");
	}
	return 0;
}

/* The access log when it is a file: the supervisor opens it for us. */
static size_t http_files(const struct config *cfg, struct proto_file *out)
{
	const char *path = cfg->http.access_log;
	if (!path || !*path || strcmp(path, "off") == 0 || strcmp(path, "stderr") == 0)
		return 0;
	out[0] = (struct proto_file){ .path = path, .key = "[http] access_log", .line = cfg->http.access_log_line };
	return 1;
}

static unsigned http_max_connections(const struct config *cfg)
{
	return cfg->http.max_connections;
}

const struct proto proto_http = {
	.name = "http",
	.status_endpoint = true,
	.init = http_worker_init,
	.done = http_worker_done,
	.reserve = http_idle_reserve,
	.accept = http_idle_accept,
	.files = http_files,
	.max_connections = http_max_connections,
};
