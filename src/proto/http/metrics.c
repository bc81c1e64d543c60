/* http metrics: see metrics.h. Names follow Prometheus' conventions:
 * drover_ prefix, _total on counters, seconds and bytes; every label set
 * is bounded (methods, status classes, causes, configured certificates). */
#include "proto/http/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "core/scoreboard.h"
#include "proto/http/config.h"
#include "proto/http/state.h"
#include "worker/proto.h"
#include "worker/tls.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* Methods by enum http_method (OTHER last, as "_other"). */
static const char *const http_metrics_methods[METRICS_METHODS] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH", "_other",
};

static unsigned http_metrics_method_index(enum http_method m)
{
	switch (m) {
	case HTTP_METHOD_GET: return 0;
	case HTTP_METHOD_HEAD: return 1;
	case HTTP_METHOD_POST: return 2;
	case HTTP_METHOD_PUT: return 3;
	case HTTP_METHOD_DELETE: return 4;
	case HTTP_METHOD_OPTIONS: return 5;
	case HTTP_METHOD_TRACE: return 6;
	case HTTP_METHOD_CONNECT: return 7;
	case HTTP_METHOD_PATCH: return 8;
	case HTTP_METHOD_OTHER: break;
	}
	return 9;
}

void http_metrics_count(struct metrics_slot *slot, enum http_method method, int status, uint64_t duration_ms,
			uint64_t bytes)
{
	if (!slot)
		return;
	int cls = status / 100 - 1;
	if (cls < 0)
		cls = 0;
	if (cls >= METRICS_CLASSES)
		cls = METRICS_CLASSES - 1;
	metrics_add(&slot->requests[http_metrics_method_index(method)][cls], 1);
	unsigned b = 0;
	while (b < METRICS_BUCKETS - 1 && duration_ms > metrics_bucket_ms[b])
		b++;
	metrics_add(&slot->duration_bucket[b], 1);
	metrics_add(&slot->duration_sum_us, duration_ms * 1000);
	metrics_add(&slot->response_bytes, bytes);
}

void http_metrics_response(struct http_conn *hc)
{
	const struct proto_env *env = http_w.env;
	uint64_t now = loop_clock_ms();
	uint64_t ms = hc->req_start_ms && now > hc->req_start_ms ? now - hc->req_start_ms : 0;
	http_metrics_count(env ? env->metrics : NULL, hc->req.method, hc->status, ms, hc->body_sent);
	if (!hc->log)
		hc->req_start_ms = 0; /* the access log does it otherwise, after its own use */
}

/* ------------------------------------------------------------ the text */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	family(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void http_metrics_requests(FILE *f, const struct metrics_slot *m)
{
	family(f, "drover_http_requests_total", "counter",
	       "HTTP responses by request method and status class (code).");
	for (unsigned i = 0; i < METRICS_METHODS; i++)
		for (unsigned c = 0; c < METRICS_CLASSES; c++)
			fprintf(f, "drover_http_requests_total{method=\"%s\",code=\"%uxx\"} %" PRIu64 "\n",
				http_metrics_methods[i], c + 1, m->requests[i][c]);
	family(f, "drover_http_request_duration_seconds", "histogram",
	       "Time from a request's first byte to its response's last, in seconds.");
	uint64_t cum = 0;
	for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
		cum += m->duration_bucket[b];
		if (b < METRICS_BUCKETS - 1)
			fprintf(f, "drover_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				metrics_bucket_ms[b] / 1000.0, cum);
		else
			fprintf(f, "drover_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	fprintf(f, "drover_http_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n",
		m->duration_sum_us / 1000000, m->duration_sum_us % 1000000);
	fprintf(f, "drover_http_request_duration_seconds_count %" PRIu64 "\n", cum);
	one(f, "drover_http_response_bytes_total", "counter", "HTTP response body bytes sent (the access log's size).",
	    m->response_bytes);
}

static void http_metrics_connections(FILE *f, const struct metrics_sum *s)
{
	/* By state: HTTP/1.1 waiting for a request in its idle form, HTTP/2,
	 * and the rest (a request or response under way, echo, TLS
	 * handshakes). The gauges are read a moment apart: a clamp at 0. */
	uint64_t idle = s->t.m.conns_idle, h2 = s->t.m.conns_http2;
	uint64_t active = s->connections > idle + h2 ? s->connections - idle - h2 : 0;
	family(f, "drover_connections_open", "gauge", "Client connections open now, all workers, by state.");
	fprintf(f, "drover_connections_open{state=\"active\"} %" PRIu64 "\n", active);
	fprintf(f, "drover_connections_open{state=\"idle\"} %" PRIu64 "\n", idle);
	fprintf(f, "drover_connections_open{state=\"http2\"} %" PRIu64 "\n", h2);
	one(f, "drover_connections_accepted_total", "counter", "Client connections accepted.", s->t.accepted);
	one(f, "drover_connections_handed_off_total", "counter",
	    "Keep-alive connections a draining worker handed to its successor.", s->t.handed_off);
	one(f, "drover_connections_adopted_total", "counter",
	    "Connections a worker adopted from a draining predecessor.", s->t.adopted);
	family(f, "drover_connections_dropped_total", "counter", "Connections closed by drover for a reason.");
	fprintf(f, "drover_connections_dropped_total{reason=\"out_of_memory\"} %" PRIu64 "\n", s->t.dropped_nomem);
	one(f, "drover_received_bytes_total", "counter", "Bytes read from clients, all protocols.", s->t.bytes_in);
	one(f, "drover_sent_bytes_total", "counter", "Bytes written to clients, all protocols.", s->t.bytes_out);
}

static void http_metrics_supervisor(FILE *f, const struct scoreboard *sb, const struct metrics_sum *s)
{
	const struct metrics_header *h = &metrics_region()->hdr;
	family(f, "drover_build_info", "gauge", "The drover build serving, by version.");
	fprintf(f, "drover_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	one(f, "drover_start_time_seconds", "gauge", "When the supervisor first started, seconds since the epoch.",
	    __atomic_load_n(&sb->hdr.started_realtime_s, __ATOMIC_RELAXED));
	one(f, "drover_generation", "gauge", "The current generation (each reload or binary upgrade starts one).",
	    __atomic_load_n(&sb->hdr.generation, __ATOMIC_RELAXED));
	one(f, "drover_lame_duck", "gauge", "1 during the lame duck before a stop (health answers 503).",
	    sb_load32(&h->lame_duck));
	family(f, "drover_workers", "gauge", "Worker processes by state.");
	for (uint32_t st = SLOT_STARTING; st <= SLOT_DRAINING; st++)
		fprintf(f, "drover_workers{state=\"%s\"} %" PRIu64 "\n", scoreboard_state_name(st), s->workers[st]);
	static const char *const results[2] = { "ok", "failed" };
	family(f, "drover_reloads_total", "counter", "Configuration reloads by result.");
	for (int r = 0; r < 2; r++)
		fprintf(f, "drover_reloads_total{result=\"%s\"} %" PRIu64 "\n", results[r],
			sb_load(&h->changes[METRICS_RELOAD][r]));
	family(f, "drover_upgrades_total", "counter", "Binary upgrades by result.");
	for (int r = 0; r < 2; r++)
		fprintf(f, "drover_upgrades_total{result=\"%s\"} %" PRIu64 "\n", results[r],
			sb_load(&h->changes[METRICS_UPGRADE][r]));
	static const char *const causes[METRICS_RESTARTS] = { "crash", "hung", "recycled", "out_of_memory" };
	family(f, "drover_worker_restarts_total", "counter", "Workers replaced, by cause.");
	for (int c = 0; c < METRICS_RESTARTS; c++)
		fprintf(f, "drover_worker_restarts_total{cause=\"%s\"} %" PRIu64 "\n", causes[c],
			sb_load(&h->restarts[c]));
	one(f, "drover_last_reload_timestamp_seconds", "gauge",
	    "When the last reload or binary upgrade ended, seconds since the epoch (0: none yet).",
	    sb_load(&h->last_reload_s));
	one(f, "drover_last_reload_success", "gauge", "1 if the last reload or binary upgrade succeeded, else 0.",
	    sb_load(&h->last_reload_s) ? sb_load32(&h->last_reload_ok) : 1);
}

static void http_metrics_tls(FILE *f, const struct config *cfg, const struct metrics_sum *s)
{
	static const char *const versions[METRICS_TLS_VERSIONS] = { "TLSv1.2", "TLSv1.3", "other" };
	static const char *const kinds[2] = { "full", "resumed" };
	family(f, "drover_tls_handshakes_total", "counter", "TLS handshakes by kind and protocol version.");
	for (int k = 0; k < 2; k++)
		for (int v = 0; v < METRICS_TLS_VERSIONS; v++)
			fprintf(f, "drover_tls_handshakes_total{kind=\"%s\",version=\"%s\"} %" PRIu64 "\n", kinds[k],
				versions[v], s->t.m.tls[k][v]);
	fprintf(f, "drover_tls_handshakes_total{kind=\"failed\",version=\"none\"} %" PRIu64 "\n", s->t.tls_failed);
	family(f, "drover_tls_certificate_expiry_seconds", "gauge",
	       "When each configured certificate expires (notAfter), seconds since the epoch.");
	struct tls_cert_info ci;
	for (size_t i = 0; tls_cert_at(cfg, i, &ci); i++) {
		/* Section names are config names: no quote, backslash or newline. */
		fprintf(f, "drover_tls_certificate_expiry_seconds{certificate=\"%s\"} %lld\n", ci.section,
			(long long)ci.not_after);
	}
	one(f, "drover_http2_connections_total", "counter", "Connections that spoke HTTP/2.", s->t.h2_connections);
	one(f, "drover_http2_streams_total", "counter", "HTTP/2 streams opened.", s->t.h2_streams);
	one(f, "drover_http2_stream_resets_total", "counter", "HTTP/2 streams reset, by either side.", s->t.h2_resets);
}

enum http_handled http_builtin_metrics(const struct http_ask *ask, struct http_response *resp)
{
	const char *path = ask->site->http->metrics_path;
	if (!ask->listener || !path || !*path || strcmp(ask->path, path) != 0)
		return HTTP_DECLINED;
	/* Only where the listener says metrics = yes (looked up here, off the
	 * path of every other request). */
	const struct http_listener_config *lc =
		http_listener_cfg(config_find_listener(ask->site->env->cfg, ask->listener->name));
	if (!lc || !lc->metrics)
		return HTTP_DECLINED;
	const struct scoreboard *sb = ask->site->env->sb;
	if (!sb || !metrics_region()) {
		http_response_error(resp, 503);
		return HTTP_ANSWERED;
	}
	struct metrics_sum *s = malloc(sizeof(*s));
	char *text = NULL;
	size_t len = 0;
	FILE *f = s ? open_memstream(&text, &len) : NULL;
	if (!f) {
		free(s);
		http_response_error(resp, 500);
		return HTTP_ANSWERED;
	}
	metrics_sum(sb, s);
	http_metrics_supervisor(f, sb, s);
	http_metrics_requests(f, &s->t.m);
	http_metrics_connections(f, s);
	http_metrics_tls(f, ask->site->env->cfg, s);
	free(s);
	if (fclose(f) != 0 || !text) {
		free(text);
		http_response_error(resp, 500);
		return HTTP_ANSWERED;
	}
	resp->status = 200;
	http_field(&resp->fields, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	http_field(&resp->fields, "Cache-Control", "no-store");
	http_src_owned(&resp->body, text, len);
	return HTTP_ANSWERED;
}
