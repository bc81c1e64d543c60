/* metrics: the counters behind the Prometheus endpoint ([http]
 * metrics_path), in a shared mapping of their own beside the scoreboard.
 *
 * The scoreboard's slot is a fixed 128 bytes that a binary upgrade hands
 * across builds (scoreboard_attach refuses another layout), so the many
 * counters /metrics needs live here instead: one struct metrics_slot per
 * scoreboard slot (same index), written only by that slot's worker with
 * relaxed atomics (sb_add style), and a header the supervisor alone
 * writes: reloads, upgrades and worker restarts, the last reload, the
 * lame-duck flag the health endpoint reads, and the counters of workers
 * already gone (folded in when the supervisor reaps one, so counters never
 * go back when a worker is replaced).
 *
 * Like the TLS ticket keys (worker/tls_keys.c), the mapping is a memfd the
 * supervisor creates at its first start and maps before any fork; workers
 * inherit it, and a binary upgrade hands the memfd to the new image
 * (handover.c, the ",mFD" tail of "sb="), which maps it again. A build
 * with another layout (magic, version, size) starts a fresh one: its
 * counters start again at 0, as a restart's would. */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/scoreboard.h"

/* Request methods counted apart, in this order; the last is every other. */
#define METRICS_METHODS 10
/* Status classes 1xx..5xx. */
#define METRICS_CLASSES 5
/* Request duration buckets: the upper bounds (ms) of the OpenTelemetry
 * advice, 5 ms .. 10 s, then +Inf. */
#define METRICS_BUCKETS 15
extern const uint32_t metrics_bucket_ms[METRICS_BUCKETS - 1];
/* TLS versions counted apart: TLSv1.2, TLSv1.3, any other. */
#define METRICS_TLS_VERSIONS 3
enum metrics_tls_kind { METRICS_TLS_FULL, METRICS_TLS_RESUMED };

/* One worker's counters (totals since its start); its only writer is the
 * worker of the scoreboard slot with the same index. */
struct metrics_slot {
	uint64_t requests[METRICS_METHODS][METRICS_CLASSES];
	uint64_t duration_bucket[METRICS_BUCKETS]; /* per bucket, not cumulative */
	uint64_t duration_sum_us;
	uint64_t response_bytes;                   /* body bytes, as the access log's size */
	uint64_t tls[2][METRICS_TLS_VERSIONS];     /* handshakes by enum metrics_tls_kind, version */
	/* Gauges, not counters (a worker gone leaves none behind): HTTP/1.1
	 * connections waiting between requests in their idle form, and
	 * HTTP/2 connections. The other open connections are active. */
	uint64_t conns_idle;
	uint64_t conns_http2;
	uint64_t spare[5];                         /* room for later counters: 640 bytes in all */
} __attribute__((aligned(SCOREBOARD_SLOT_ALIGN)));

/* What a worker gone leaves behind: its metrics and the scoreboard's
 * counters (the slot itself is reused). */
struct metrics_retired {
	struct metrics_slot m;
	uint64_t accepted, bytes_in, bytes_out, dropped_nomem;
	uint64_t tls_full, tls_resumed, tls_failed;
	uint64_t handed_off, adopted;
	uint64_t h2_streams, h2_connections, h2_resets;
};

enum metrics_result { METRICS_OK, METRICS_FAILED };
enum metrics_change { METRICS_RELOAD, METRICS_UPGRADE };
/* Why a worker was replaced. */
enum metrics_restart { METRICS_CRASH, METRICS_HUNG, METRICS_RECYCLED, METRICS_NOMEM, METRICS_RESTARTS };

struct metrics_header {
	uint32_t magic;
	uint32_t version;
	uint32_t n_slots;
	uint32_t size;
	uint32_t seq;        /* odd while the supervisor folds a worker into retired */
	uint32_t lame_duck;  /* 1: the stop's lame duck, health answers 503 */
	uint64_t changes[2][2];                /* [enum metrics_change][enum metrics_result] */
	uint64_t restarts[METRICS_RESTARTS];   /* [enum metrics_restart] */
	uint64_t last_reload_s;                /* realtime of the last reload or upgrade; 0: none */
	uint32_t last_reload_ok;               /* its result: 1 ok, 0 failed */
	uint32_t spare32;
	uint64_t spare[8];
	struct metrics_retired retired;
} __attribute__((aligned(SCOREBOARD_SLOT_ALIGN)));

struct metrics_region {
	struct metrics_header hdr;
	struct metrics_slot slots[SCOREBOARD_SLOTS];
};

/* Map the previous image's region (fd >= 0, binary upgrade) or, if fd is
 * -1 or the layout is another build's, a new one; it is then in force in
 * this process and the workers it forks. 0 or -errno. Supervisor only. */
int metrics_start(int fd);
/* The region in force, NULL before metrics_start (or if it failed). */
struct metrics_region *metrics_region(void);
/* The memfd of the region in force (CLOEXEC), or -1. */
int metrics_fd(void);
/* The slot of scoreboard slot index, or NULL. */
struct metrics_slot *metrics_slot_at(int index);

/* Supervisor only. A new worker takes scoreboard slot index: zero its
 * counters. */
void metrics_slot_clear(int index);
/* The worker of scoreboard slot index was reaped: fold its counters into
 * the retired ones and free its scoreboard slot (scoreboard_slot_free),
 * both inside the sequence lock readers retry on. */
void metrics_retire(struct scoreboard *sb, int index);
/* A reload or upgrade ended with result (last_reload: time and result). */
void metrics_change(enum metrics_change what, enum metrics_result result);
/* A worker is replaced, for why. */
void metrics_restart(enum metrics_restart why);
/* The stop's lame duck begins (true) or ends. */
void metrics_set_lame_duck(bool on);
/* Whether the lame duck is on (any process). */
bool metrics_lame_duck(void);

/* The sum over every worker, alive and gone, read consistently (retried
 * while the supervisor folds one in). */
struct metrics_sum {
	struct metrics_retired t;  /* counters */
	uint64_t connections;      /* open now */
	uint64_t workers[4];       /* by enum slot_state (FREE unused) */
};
void metrics_sum(const struct scoreboard *sb, struct metrics_sum *out);

/* A gauge of the worker's slot up (d = 1) or down (d = -1); slot NULL: none. */
static inline void metrics_gauge(uint64_t *p, int d) { sb_add(p, (uint64_t)(int64_t)d); }
/* Relaxed add for the slot's one writer. */
static inline void metrics_add(uint64_t *p, uint64_t v) { sb_add(p, v); }

#endif
