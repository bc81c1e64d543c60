/* http builtin: health_path (200 "ok", 503 while draining) and status_path
 * (the scoreboard as JSON, on listeners with status = yes). */
#include "proto/http/builtin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/loop.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/scoreboard.h"
#include "proto/http/config.h"
#include "worker/proto.h"
#include "worker/tls.h"

/* health_path (readiness): 200 "ok", 503 while this worker drains or in
 * the lame duck before a stop ([server] lame_duck, a flag the supervisor
 * sets in the shared metrics header), so a load balancer stops sending
 * traffic before the stop. */
enum http_handled http_builtin_health(const struct http_ask *ask, struct http_response *resp)
{
	const char *health = ask->site->http->health_path;
	if (!health || !*health || strcmp(ask->path, health) != 0)
		return HTTP_DECLINED;
	if (proto_env_draining(ask->site->env)) {
		http_response_text(resp, 503, "text/plain; charset=utf-8", "draining\n", 9);
		resp->how = HTTP_CLOSE;
	} else if (metrics_lame_duck()) {
		http_response_text(resp, 503, "text/plain; charset=utf-8", "lame duck\n", 10);
	} else {
		http_response_text(resp, 200, "text/plain; charset=utf-8", "ok\n", 3);
	}
	http_field(&resp->fields, "Cache-Control", "no-store");
	return HTTP_ANSWERED;
}

/* live_path (liveness): 200 while the worker runs at all, so a liveness
 * probe never kills a node that drains. */
enum http_handled http_builtin_live(const struct http_ask *ask, struct http_response *resp)
{
	const char *live = ask->site->http->live_path;
	if (!live || !*live || strcmp(ask->path, live) != 0)
		return HTTP_DECLINED;
	http_response_text(resp, 200, "text/plain; charset=utf-8", "ok\n", 3);
	http_field(&resp->fields, "Cache-Control", "no-store");
	return HTTP_ANSWERED;
}

/* Close the workers' list and list the loaded certificates (names, key
 * type, serial, expiry), leaving the list open for the caller to close:
 * the new end of the text in buf. Names are host names (config and
 * tls_context.c keep them so); a byte that is not is left out. */
static size_t http_status_certificates(const struct config *cfg, char *buf, size_t pos, size_t cap)
{
	int n = snprintf(buf + pos, cap - pos, "],\"certificates\":[");
	if (n < 0 || (size_t)n >= cap - pos)
		return pos;
	pos += (size_t)n;
	struct tls_cert_info ci;
	for (size_t i = 0; tls_cert_at(cfg, i, &ci) && pos + 1024 < cap; i++) {
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s{\"section\":\"%s\",\"names\":[", i ? "," : "",
					ci.section);
		bool open = false;
		for (const char *c = ci.names; *c && pos + 8 < cap; c++) {
			if (*c == ' ') {
				buf[pos++] = '"';
				open = false;
				continue;
			}
			if (!open) {
				pos += (size_t)snprintf(buf + pos, cap - pos, "%s\"", c > ci.names ? "," : "");
				open = true;
			}
			if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr(".-*_", *c))
				buf[pos++] = *c;
		}
		if (open)
			buf[pos++] = '"';
		char when[32] = "";
		struct tm tm;
		if (gmtime_r(&ci.not_after, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		n = snprintf(buf + pos, cap - pos,
			     "],\"key_type\":\"%s\",\"serial\":\"%s\",\"not_after\":\"%s\",\"not_after_s\":%lld}",
			     ci.key_type, ci.serial, when, (long long)ci.not_after);
		if (n < 0 || (size_t)n >= cap - pos)
			break;
		pos += (size_t)n;
	}
	return pos;
}

/* The JSON's "generations": hand-off per generation, over the workers
 * alive (droverctl status also counts those gone). Closes "workers" first;
 * the new end of the text. */
static size_t http_status_generations(const struct scoreboard *sb, char *buf, size_t pos, size_t cap)
{
	int n;
	struct { uint32_t gen; uint64_t out, in; } g[64];
	size_t n_g = 0;
	for (size_t i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct scoreboard_slot *s = &sb->slots[i];
		if (sb_load32(&s->state) == SLOT_FREE)
			continue;
		size_t k = 0;
		while (k < n_g && g[k].gen != sb_load32(&s->generation))
			k++;
		if (k == n_g) {
			if (n_g == 64)
				continue;
			g[n_g++] = (__typeof__(g[0])){ .gen = sb_load32(&s->generation) };
		}
		g[k].out += sb_load32(&s->handed_off);
		g[k].in += sb_load32(&s->adopted);
	}
	n = snprintf(buf + pos, cap - pos, "],\"generations\":[");
	if (n > 0 && (size_t)n < cap - pos)
		pos += (size_t)n;
	for (size_t k = 0; k < n_g; k++) {
		n = snprintf(buf + pos, cap - pos,
			     "%s{\"generation\":%" PRIu32 ",\"handed_off\":%" PRIu64 ",\"adopted\":%" PRIu64 "}",
			     k ? "," : "", g[k].gen, g[k].out, g[k].in);
		if (n < 0 || (size_t)n >= cap - pos)
			break;
		pos += (size_t)n;
	}
	return pos;
}

/* status_path: the scoreboard as JSON. */
enum http_handled http_builtin_status(const struct http_ask *ask, struct http_response *resp)
{
	const char *status = ask->site->http->status_path;
	if (!ask->listener || !status || !*status || strcmp(ask->path, status) != 0)
		return HTTP_DECLINED;
	/* Only where the listener says status = yes (looked up here, off the
	 * path of every other request). */
	const struct http_listener_config *lc =
		http_listener_cfg(config_find_listener(ask->site->env->cfg, ask->listener->name));
	if (!lc || !lc->status)
		return HTTP_DECLINED;
	const struct scoreboard *sb = ask->site->env->sb;
	size_t cap = 512 + (size_t)SCOREBOARD_SLOTS * 320;
	char *buf = malloc(cap);
	if (!buf || !sb) {
		free(buf);
		http_response_error(resp, 500);
		return HTTP_ANSWERED;
	}
	time_t now = time(NULL);
	uint64_t started = __atomic_load_n(&sb->hdr.started_realtime_s, __ATOMIC_RELAXED);
	uint64_t uptime = (uint64_t)now > started ? (uint64_t)now - started : 0;
	uint64_t mono = loop_clock_ms();
	size_t pos = 0;
	int n = snprintf(buf, cap,
			 "{\"supervisor_pid\":%" PRId32 ",\"generation\":%" PRIu32
			 ",\"uptime_s\":%" PRIu64 ",\"workers\":[",
			 __atomic_load_n(&sb->hdr.supervisor_pid, __ATOMIC_RELAXED),
			 __atomic_load_n(&sb->hdr.generation, __ATOMIC_RELAXED), uptime);
	pos = (size_t)n;
	bool first = true;
	for (size_t i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct scoreboard_slot *s = &sb->slots[i];
		uint32_t state = sb_load32(&s->state);
		if (state == SLOT_FREE)
			continue;
		uint64_t hb = sb_load(&s->heartbeat_ms);
		n = snprintf(buf + pos, cap - pos,
			     "%s{\"pid\":%" PRId32 ",\"generation\":%" PRIu32 ",\"index\":%" PRIu32
			     ",\"state\":\"%s\",\"connections\":%" PRIu64 ",\"accepted\":%" PRIu64
			     ",\"requests\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
			     ",\"dropped_no_memory\":%" PRIu64 ",\"tls_full\":%" PRIu64 ",\"tls_resumed\":%" PRIu64
			     ",\"tls_failed\":%" PRIu64 ",\"handed_off\":%" PRIu32 ",\"adopted\":%" PRIu32
			     ",\"h2_connections\":%" PRIu32 ",\"h2_streams\":%" PRIu64 ",\"h2_resets\":%" PRIu32
			     ",\"heartbeat_age_ms\":%" PRIu64 "}",
			     first ? "" : ",", __atomic_load_n(&s->pid, __ATOMIC_RELAXED),
			     sb_load32(&s->generation), sb_load32(&s->index),
			     scoreboard_state_name(state), sb_load(&s->connections),
			     sb_load(&s->accepted), sb_load(&s->requests), sb_load(&s->bytes_in),
			     sb_load(&s->bytes_out), sb_load(&s->dropped_nomem), sb_load(&s->tls_full),
			     sb_load(&s->tls_resumed), sb_load(&s->tls_failed), sb_load32(&s->handed_off),
			     sb_load32(&s->adopted), sb_load32(&s->h2_connections), sb_load(&s->h2_streams),
			     sb_load32(&s->h2_resets), mono > hb ? mono - hb : 0);
		if (n < 0 || (size_t)n >= cap - pos)
			break;
		pos += (size_t)n;
		first = false;
	}
	pos = http_status_certificates(ask->site->env->cfg, buf, pos, cap);
	pos = http_status_generations(sb, buf, pos, cap); /* closes the certificates' list */
	if (pos + 3 < cap) {
		memcpy(buf + pos, "]}\n", 3);
		pos += 3;
	}
	resp->status = 200;
	http_field(&resp->fields, "Content-Type", "application/json");
	http_src_owned(&resp->body, buf, pos);
	return HTTP_ANSWERED;
}
