/* http redirect: see redirect.h.
 *
 * What a production redirector is expected to do, and what this one does:
 *   - every method is answered 301, as nginx's "return 301 https://..."
 *     (a client may re-send a POST as GET: forms belong on the HTTPS side);
 *     a request body is read and discarded by the connection as usual;
 *   - HEAD gets GET's head (h1.c drops the body); the body is the short
 *     text of the other 301s;
 *   - the host is the request's (Host, or the authority of an
 *     absolute-form target, parse.c) without its port; IPv6 literals keep
 *     their brackets;
 *   - a request without a host (HTTP/1.0 without Host, or "Host:" empty)
 *     goes to the host of the listener's address as written in the file
 *     when that names one host ("127.0.0.1:80", "www.example:80"); a
 *     wildcard, unix or socket-activated listener has no such name, and
 *     the request is answered 400: a guessed host would send the client
 *     somewhere else;
 *   - the path is the request's, normalised and percent-encoded as the
 *     directory 301 of file.c writes it, and the query is kept as sent. */
#include "proto/http/redirect.h"

#include <stdio.h>
#include <string.h>

#include "proto/http/path.h"
#include "proto/http/response.h"
#include "worker/proto.h"

bool http_redirect_any(const struct config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->n_listeners; i++) {
		const struct http_listener_config *lc = http_listener_cfg(&cfg->listeners[i]);
		if (lc && lc->redirect_https && strcmp(cfg->listeners[i].protocol, "http") == 0)
			return true;
	}
	return false;
}

static bool http_redirect_is_hex(char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* reg-name / IPv4address (RFC 3986 §3.2.2): unreserved, pct-encoded,
 * sub-delims. */
static bool http_redirect_reg_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n || !http_redirect_is_hex(s[i + 1]) || !http_redirect_is_hex(s[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=", c))
			continue;
		return false;
	}
	return true;
}

/* IP-literal (RFC 3986 §3.2.2): "[" IPv6address "]", checked as its
 * characters (hex digits, ':' and '.' of an embedded IPv4) with at least
 * one ':'; no IPvFuture, no zone. */
static bool http_redirect_ip_literal(const char *s, size_t n)
{
	if (n < 4 || s[0] != '[' || s[n - 1] != ']')
		return false;
	bool colon = false;
	for (size_t i = 1; i + 1 < n; i++) {
		if (s[i] == ':')
			colon = true;
		else if (s[i] != '.' && !http_redirect_is_hex(s[i]))
			return false;
	}
	return colon;
}

size_t http_redirect_host_len(const char *hp, size_t len)
{
	size_t host_len;
	if (len > 0 && hp[0] == '[') {
		const char *close = memchr(hp, ']', len);
		if (!close)
			return 0;
		host_len = (size_t)(close - hp) + 1;
		if (!http_redirect_ip_literal(hp, host_len))
			return 0;
	} else {
		const char *colon = memchr(hp, ':', len);
		host_len = colon ? (size_t)(colon - hp) : len;
		if (!http_redirect_reg_name(hp, host_len))
			return 0;
	}
	/* What follows the host: nothing, or ":" and a port of digits (maybe
	 * empty, RFC 3986 §3.2.3). */
	if (host_len < len) {
		if (hp[host_len] != ':')
			return 0;
		for (size_t i = host_len + 1; i < len; i++)
			if (hp[i] < '0' || hp[i] > '9')
				return 0;
	}
	return host_len;
}

/* The host of the listener's address as written ("HOST:PORT",
 * "[V6]:PORT"), when it names one host: not a wildcard. 0: none. */
static size_t http_redirect_listener_host(const struct config_listener *l, const char **host)
{
	if (!l || l->address.kind != ADDR_INET)
		return 0;
	const char *t = l->address.text;
	const char *colon = strrchr(t, ':');
	if (!colon)
		return 0;
	size_t n = http_redirect_host_len(t, strlen(t));
	if (n == 0 || (n == 1 && t[0] == '*') || (n == 7 && memcmp(t, "0.0.0.0", 7) == 0) ||
	    (n == 4 && memcmp(t, "[::]", 4) == 0))
		return 0; /* a wildcard */
	*host = t;
	return n;
}

/* Whether path is one that is answered, never redirected. */
static bool http_redirect_exempt(const struct http_ask *ask, const struct http_listener_config *lc)
{
	const struct http_config *h = ask->site->http;
	if (h->health_path && h->health_path[0] && strcmp(ask->path, h->health_path) == 0)
		return true;
	if (lc->status && h->status_path && h->status_path[0] && strcmp(ask->path, h->status_path) == 0)
		return true;
	if (h->live_path && h->live_path[0] && strcmp(ask->path, h->live_path) == 0)
		return true;
	if (lc->metrics && h->metrics_path && h->metrics_path[0] && strcmp(ask->path, h->metrics_path) == 0)
		return true;
	return false;
}

static void http_redirect_answer(const struct http_ask *ask, const struct http_listener_config *lc,
				 const char *host, size_t host_len, struct http_response *resp)
{
	char enc[HTTP_PATH_MAX * 3 + 2];
	if (!http_path_encode(ask->path, enc, sizeof(enc))) {
		http_response_error(resp, 414);
		return;
	}
	char port[8] = "";
	if (lc->https_port != 443)
		snprintf(port, sizeof(port), ":%u", (unsigned)lc->https_port);
	static const char body[] = "301 Moved Permanently\n";
	const struct http_str q = ask->req->query;
	resp->status = 301;
	http_fieldf(&resp->fields, "Location", "https://%.*s%s%s%s%.*s", (int)host_len, host, port, enc,
		    q.len ? "?" : "", (int)q.len, q.len ? q.p : "");
	http_field(&resp->fields, "Content-Type", "text/plain; charset=utf-8");
	http_src_mem(&resp->body, body, sizeof(body) - 1, NULL, NULL);
}

enum http_handled http_redirect_https(const struct http_ask *ask, struct http_response *resp)
{
	const struct http_request *req = ask->req;
	if (!ask->listener || req->path.len == 0 || req->path.p[0] != '/')
		return HTTP_DECLINED; /* OPTIONS *, CONNECT: answered as anywhere */
	const struct config_listener *l = config_find_listener(ask->site->env->cfg, ask->listener->name);
	const struct http_listener_config *lc = http_listener_cfg(l);
	if (!lc || !lc->redirect_https)
		return HTTP_DECLINED;

	char norm[HTTP_PATH_MAX];
	if (http_path_normalize(req->path.p, req->path.len, norm, sizeof(norm)) < 0)
		return HTTP_DECLINED; /* the router answers 400 or 414 */
	struct http_ask exempt = *ask;
	exempt.path = norm;
	if (http_redirect_exempt(&exempt, lc))
		return HTTP_DECLINED;

	const char *host = req->host.p;
	size_t host_len = 0;
	if (req->host.len > 0) {
		host_len = http_redirect_host_len(req->host.p, req->host.len);
		if (host_len == 0) {
			http_response_error(resp, 400); /* never put it in Location */
			return HTTP_ANSWERED;
		}
	} else {
		host_len = http_redirect_listener_host(l, &host);
		if (host_len == 0) {
			http_response_error(resp, 400); /* no host to send the client to */
			return HTTP_ANSWERED;
		}
	}
	http_redirect_answer(&exempt, lc, host, host_len, resp);
	return HTTP_ANSWERED;
}
