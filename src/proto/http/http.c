/* http: the HTTP protocol of a worker (RFC 9110; HTTP/1.1, RFC 9112; HTTP/2, RFC 9113): its table
 * entry and the per-worker set-up. The files of src/proto/http, by role
 * (each module, a .c with its .h, includes only those below it):
 *
 *   http.c        this: proto_http, worker init/done
 *   config.c      [http] and the listener key status: keys, defaults, checks, http_cfg()
 *   conn.c        the connection state machine, I/O through the transport, timeouts, drain
 *   idle.c        a connection between requests, waiting for memory, accept
 *   pool.c        idle connection structs and in-flight buffers, per worker
 *   h1.c          a request to the router, its response serialised as HTTP/1.1
 *   h2.c          HTTP/2 connections (nghttp2): streams to the router, responses as frames
 *   access_log.c  the combined-format access log
 *   state.h       the data of a connection and of the worker
 *   router.c      methods, path normalising, the table of handlers
 *   builtin.c     handlers: health_path and status_path
 *   file.c        handler: static files (cache, validators, conditionals, Range, 301)
 *   listing.c     handler: autoindex pages
 *   handler.h     what a handler gets (struct http_ask) and answers
 *   response.c    a response as data: status, fields, one body source
 *   cache.c       the open-file cache: path -> fd, stat, type, fields, small body
 *   coding.c      precompressed variants: codings, Accept-Encoding
 *   root.c        the root directory fd, following a swapped symlink, its generation
 *   parse.c       request heads; body.c request bodies
 *   fields.c      HTTP-dates, entity-tags, validators, Range grammar
 *   path.c        path decoding and normalisation, safe opening under the root
 *   mime.c        Content-Type by extension
 *
 * Memory: connection buffers come from a per-worker pool while a request
 * is in flight (pool.c, conn.c); a response is built on the stack (h1.c);
 * nothing is allocated per request except the bodies of the non-hot-path
 * responses (directory listings, the status JSON, multipart state). A
 * connection that finds no memory waits for it (idle.c). */
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
#include "proto/http/cache.h"
#include "proto/http/config.h"
#include "proto/http/h2.h"
#include "proto/http/idle.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"
#include "proto/http/redirect.h"
#include "proto/http/root.h"
#include "proto/http/state.h"

#define HTTP_IN_SLACK (16 * 1024) /* room for pipelined bytes beyond max_header_size */

struct http_worker http_w;

/* ------------------------------------------------------------ worker hooks */

static void http_worker_done(void)
{
	http_cache_done();
	http_idle_done();
	http2_done();
	http_mime_free(http_w.mime);
	http_w.mime = NULL;
	http_root_close();
	http_log_close();
}

static int http_worker_init(const struct proto_env *env)
{
	http_w.env = env;
	http_w.cfg = env->cfg;
	const struct http_config *h = http_cfg(env->cfg);
	http_w.http = h;
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
	size_t need = h->max_header_size;
	if (need < h->max_request_line)
		need = h->max_request_line;
	http_w.in_cap = need + HTTP_IN_SLACK;

	http_w.mime = http_mime_load(h->mime_types, h->charset);
	if (!http_w.mime)
		return log_errno(LOG_ERR, -ENOMEM, "http: loading MIME types");
	http_w.site = (struct http_site){
		.env = env,
		.http = h,
		.mime = http_w.mime,
		.popts = {
			.index = h->index,
			.autoindex = h->autoindex,
			.follow_symlinks = h->follow_symlinks,
			.dotfiles = h->dotfiles,
		},
		.redirect_https = http_redirect_any(env->cfg),
	};

	http_root_open(h->root, h->file_cache_valid_ms, loop_now_ms(env->loop));
	struct http_cache_params cache = {
		.valid_ms = h->file_cache_valid_ms,
		.max_entries = h->file_cache_entries,
		.max_bytes = h->file_cache_size,
		.max_file = h->file_cache_max_file,
		.popts = http_w.site.popts,
		.mime = http_w.mime,
		.default_type = h->default_type,
		.http = h,
	};
	int r = http_cache_init(&cache);
	if (r == 0)
		r = http_log_open(h->access_log, proto_env_file(env, &proto_http, 0));
	if (r < 0) {
		http_worker_done();
		return r;
	}
	r = http_idle_init(env);
	if (r == 0)
		r = http2_init();
	if (r < 0) {
		http_worker_done();
		return log_errno(LOG_ERR, r, "http: connection state");
	}
	return 0;
}

/* The access log when it is a file: the supervisor opens it for us. */
static size_t http_files(const struct config *cfg, struct proto_file *out)
{
	const struct http_config *h = http_cfg(cfg);
	const char *path = h->access_log;
	if (!path || !*path || strcmp(path, "off") == 0 || strcmp(path, "stderr") == 0)
		return 0;
	out[0] = (struct proto_file){ .path = path, .key = "[http] access_log", .line = h->access_log_line };
	return 1;
}

/* What the workers read: the root, and mime_types when the file names it
 * (the default one may be missing: the built-in table is the fallback).
 * Checked when a generation starts; a root that goes away later (a
 * deploy) is root.c's business. */
static size_t http_paths(const struct config *cfg, struct proto_path *out)
{
	const struct http_config *h = http_cfg(cfg);
	size_t n = 0;
	out[n++] = (struct proto_path){ .path = h->root, .key = "[http] root",
					.line = h->root_line, .dir = true };
	if (h->mime_types_line)
		out[n++] = (struct proto_path){ .path = h->mime_types, .key = "[http] mime_types",
						.line = h->mime_types_line, .dir = false };
	return n;
}

static unsigned http_max_connections(const struct config *cfg)
{
	return http_cfg(cfg)->max_connections;
}

static uint64_t http_header_timeout_ms(const struct config *cfg)
{
	return http_cfg(cfg)->header_timeout_ms;
}

const struct proto proto_http = {
	.name = "http",
	.alpn = (const unsigned char *)"\x08http/1.1",
	.alpn_len = 9,
	.alpn_of = http2_alpn_of,
	.config = &http_config_module,
	.init = http_worker_init,
	.done = http_worker_done,
	.reserve = http_idle_reserve,
	.accept = http_idle_accept,
	.adopt = http_idle_adopt,
	.files = http_files,
	.paths = http_paths,
	.max_connections = http_max_connections,
	.header_timeout_ms = http_header_timeout_ms,
};
