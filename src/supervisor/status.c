/* status: see status.h. */
#include "supervisor/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/scoreboard.h"
#include "supervisor/generation.h"
#include "supervisor/history.h"
#include "supervisor/pool.h"
#include "worker/tls.h"

/* What is not the normal picture: old workers, back-offs, a failed reload. */
static void status_extra(const struct status_view *v, uint64_t now, char *extra, size_t len)
{
	size_t pos = 0;
	extra[0] = '\0';
	size_t old = gen_count(v->pool->workers, v->gen->current, -1, true);
	if (old)
		pos += (size_t)snprintf(extra + pos, len - pos, "; %zu old worker(s) draining", old);
	for (unsigned i = 0; i < v->cfg->server.workers && pos < len - 48; i++) {
		const struct pool_respawn *rs = &v->pool->respawn[i];
		if (rs->pending && rs->delay_ms) {
			uint64_t wait = rs->not_before_ms > now ? rs->not_before_ms - now : 0;
			pos += (size_t)snprintf(extra + pos, len - pos, "; worker %u backing off %llums", i,
						(unsigned long long)wait);
		}
	}
	if (v->last_result[0] && strncmp(v->last_result, "failed", 6) == 0 && pos < len - 32)
		snprintf(extra + pos, len - pos, "; last reload %.200s", v->last_result);
}

void status_line(const struct status_view *v, uint64_t now, char *out, size_t len)
{
	if (v->stopping && v->failed) {
		snprintf(out, len, "%s; stopping", v->last_result); /* why stays in sight */
		return;
	}
	if (v->stopping) {
		uint64_t left = v->stop_deadline_ms > now ? v->stop_deadline_ms - now : 0;
		snprintf(out, len, "stopping: waiting for %zu worker(s) to drain, %llu connection(s) open, %llu.%llus left",
			 pool_count(v->pool), (unsigned long long)pool_connections(v->pool),
			 (unsigned long long)(left / 1000), (unsigned long long)(left % 1000 / 100));
		return;
	}
	char extra[256];
	status_extra(v, now, extra, sizeof(extra));
	snprintf(out, len, "%s: generation %u, %zu/%u workers ready, %llu connection(s)%s", v->state, v->gen->current,
		 gen_count(v->pool->workers, v->gen->current, PW_READY, false), v->cfg->server.workers,
		 (unsigned long long)pool_connections(v->pool), extra);
}

/* Every reload and upgrade result kept, newest first, with its UTC time. */
static void status_history(FILE *f, const struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		time_t at = (time_t)h->e[i].at;
		struct tm tm;
		char when[32] = "?";
		if (gmtime_r(&at, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(f, "reload history: %s %s\n", when, h->e[i].text);
	}
}

/* Connections handed over and adopted, per generation (workers gone
 * included): one line for each generation alive or counted. */
static void status_handoff(FILE *f, const struct status_view *v)
{
	uint32_t gens[POOL_TALLY_GENS + 64];
	size_t n = 0;
	for (size_t i = 0; i < POOL_TALLY_GENS; i++)
		if (v->pool->tally[i].used)
			gens[n++] = v->pool->tally[i].generation;
	for (const struct pool_worker *w = v->pool->workers; w && n < sizeof(gens) / sizeof(gens[0]); w = w->next)
		gens[n++] = w->generation;
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= gens[k] == gens[i];
		if (seen)
			continue;
		uint64_t out, in;
		pool_handoff_counts(v->pool, gens[i], &out, &in);
		fprintf(f, "generation %u handed-off %llu adopted %llu\n", gens[i], (unsigned long long)out,
			(unsigned long long)in);
	}
}

static void status_workers(FILE *f, const struct status_view *v, uint64_t now)
{
	for (const struct pool_worker *w = v->pool->workers; w; w = w->next) {
		static const struct scoreboard_slot unknown;
		const struct scoreboard_slot *s = pool_slot(v->pool, w) ? pool_slot(v->pool, w) : &unknown;
		uint64_t hb = s == &unknown ? now : sb_load(&s->heartbeat_ms);
		fprintf(f, "worker pid %d generation %u #%u %s connections %llu requests %llu heartbeat %llums",
			(int)w->pid, w->generation, w->index, scoreboard_state_name(w->state),
			(unsigned long long)sb_load(&s->connections), (unsigned long long)sb_load(&s->requests),
			(unsigned long long)(now > hb ? now - hb : 0));
		fprintf(f, " dropped-no-memory %llu", (unsigned long long)sb_load(&s->dropped_nomem));
		fprintf(f, " tls-handshakes full %llu resumed %llu failed %llu",
			(unsigned long long)sb_load(&s->tls_full), (unsigned long long)sb_load(&s->tls_resumed),
			(unsigned long long)sb_load(&s->tls_failed));
		fprintf(f, " handed-off %u adopted %u", sb_load32(&s->handed_off), sb_load32(&s->adopted));
		fprintf(f, " h2 connections %u streams %llu resets %u", sb_load32(&s->h2_connections),
			(unsigned long long)sb_load(&s->h2_streams), sb_load32(&s->h2_resets));
		if (w->state == PW_DRAINING)
			fprintf(f, " drain-left %llums",
				(unsigned long long)(w->drain_deadline_ms > now ? w->drain_deadline_ms - now : 0));
		fprintf(f, "\n");
	}
	status_handoff(f, v);
	for (unsigned i = 0; i < v->cfg->server.workers; i++) {
		const struct pool_respawn *rs = &v->pool->respawn[i];
		if (rs->pending)
			fprintf(f, "worker #%u backing off, next start in %llums\n", i,
				(unsigned long long)(rs->not_before_ms > now ? rs->not_before_ms - now : 0));
	}
}

/* The certificates the config in force loaded, with their expiry. */
static void status_certificates(FILE *f, const struct config *cfg)
{
	struct tls_cert_info ci;
	time_t now = time(NULL);
	for (size_t i = 0; tls_cert_at(cfg, i, &ci); i++) {
		struct tm tm;
		char when[32] = "?";
		if (gmtime_r(&ci.not_after, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		long long days = ((long long)ci.not_after - (long long)now) / 86400;
		fprintf(f, "certificate %s: %s, serial %s, names %s, expires %s (%s%lld days)\n", ci.section,
			ci.key_type, ci.serial, ci.names, when, ci.not_after < now ? "expired " : "in ",
			days < 0 ? -days : days);
	}
}

char *status_report(const struct status_view *v, uint64_t now)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fprintf(f, "supervisor pid %d, generation %u, uptime %llus, %s\n", v->pid, v->gen->current,
		(unsigned long long)((now - v->started_ms) / 1000), v->state);
	fprintf(f, "config %s\n", v->cfg->path);
	fprintf(f, "last reload: %s\n", v->last_result[0] ? v->last_result : "none");
	status_history(f, v->history);
	status_workers(f, v, now);
	status_certificates(f, v->cfg);
	fputs(v->upgrade, f);
	fprintf(f, "OK\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
