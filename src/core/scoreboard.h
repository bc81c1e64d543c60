/* scoreboard: one shared mapping (memfd, mapped before fork) with a slot per
 * worker. A worker writes only its own slot; the supervisor reads them all. */
#ifndef DROVER_SCOREBOARD_H
#define DROVER_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#define SCOREBOARD_SLOTS 1024 /* workers (at most 256) x generations alive at once */

enum slot_state {
	SLOT_FREE = 0,
	SLOT_STARTING = 1,
	SLOT_READY = 2,
	SLOT_DRAINING = 3,
};

/* Fields are read and written with relaxed atomics (__atomic builtins).
 * Each slot has one writer at a time (its worker; the supervisor only
 * before the fork and after the reap), so counters are plain relaxed
 * load + store, never a locked read-modify-write. A slot fills whole cache
 * lines of its own: workers on different CPUs never share one. */
#define SCOREBOARD_SLOT_ALIGN 64
struct scoreboard_slot {
	int32_t pid;
	uint32_t generation;
	uint32_t state;          /* enum slot_state */
	uint32_t index;          /* worker number within its generation (0..workers-1) */
	uint64_t started_ms;     /* CLOCK_MONOTONIC */
	uint64_t heartbeat_ms;   /* CLOCK_MONOTONIC, updated by the worker's loop */
	uint64_t connections;    /* open now */
	uint64_t accepted;       /* total */
	uint64_t requests;       /* total */
	uint64_t bytes_in;
	uint64_t bytes_out;
	/* Connections closed for lack of memory (total). Added after the
	 * version-2 fields, inside the slot's padding, so a build without it
	 * reads the same layout and one with it reads 0 from an older one. */
	uint64_t dropped_nomem;
	/* TLS handshakes finished in full and resumed (a session ticket), and
	 * those that failed (total). In the padding too, read as 0 from a
	 * build without TLS. */
	uint64_t tls_full;
	uint64_t tls_resumed;
	uint64_t tls_failed;
	/* Connections handed to a successor worker and adopted from a
	 * predecessor (hand-off, worker/handoff.c): in the padding too, so
	 * older builds read the same layout. */
	uint32_t handed_off;
	uint32_t adopted;
	/* HTTP/2 (proto/http/h2.c): streams opened, connections that spoke
	 * it, and streams reset (by either side), totals. The last bytes of
	 * the slot's padding: the slot is two cache lines either way. */
	uint64_t h2_streams;
	uint32_t h2_connections;
	uint32_t h2_resets;
} __attribute__((aligned(SCOREBOARD_SLOT_ALIGN)));

struct scoreboard_header {
	uint32_t magic;
	uint32_t version;
	uint32_t n_slots;
	int32_t supervisor_pid;
	uint64_t started_realtime_s; /* for uptime */
	uint64_t started_ms;         /* CLOCK_MONOTONIC */
	uint32_t generation;         /* current generation */
	uint32_t reloads;
};

struct scoreboard {
	struct scoreboard_header hdr;
	struct scoreboard_slot slots[SCOREBOARD_SLOTS];
};

/* Create and map a new scoreboard; returns the memfd in *fd (CLOEXEC); 0 or -errno. */
int scoreboard_create(struct scoreboard **sb, int *fd);
/* Map an existing scoreboard memfd (binary upgrade); 0 or -errno (-EPROTO on a foreign layout). */
int scoreboard_attach(int fd, struct scoreboard **sb);
/* Take a free slot for a new worker; index or -ENOSPC. */
int scoreboard_slot_alloc(struct scoreboard *sb, uint32_t generation, uint32_t index);
/* Return a slot after its worker was reaped. */
void scoreboard_slot_free(struct scoreboard *sb, int slot);

/* Relaxed atomic accessors used by both sides: a reader never sees a torn
 * value, and sb_add() is only for the slot's one writer. */
static inline uint64_t sb_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sb_store(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void sb_add(uint64_t *p, uint64_t v) { sb_store(p, sb_load(p) + v); }
static inline uint32_t sb_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sb_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void sb_add32(uint32_t *p, uint32_t v) { sb_store32(p, sb_load32(p) + v); }
/* Name of a slot state for logs and JSON ("ready"). */
const char *scoreboard_state_name(uint32_t state);

#endif
