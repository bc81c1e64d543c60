/* metrics: the shared counters of the Prometheus endpoint (see metrics.h). */
#include "core/metrics.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define METRICS_MAGIC 0x4452564du /* "DRVM" */
#define METRICS_VERSION 1u

_Static_assert(sizeof(struct metrics_slot) == 640, "metrics slot layout changed: bump METRICS_VERSION");

const uint32_t metrics_bucket_ms[METRICS_BUCKETS - 1] = { 5,   10,  25,   50,   75,   100,  250,
							   500, 750, 1000, 2500, 5000, 7500, 10000 };

static struct metrics_region *metrics_map;
static int metrics_memfd = -1;

static int metrics_create(void)
{
	int fd = memfd_create("drover-metrics", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, sizeof(struct metrics_region)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct metrics_region *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* A fresh memfd reads as zeros: only the header is written. */
	m->hdr.magic = METRICS_MAGIC;
	m->hdr.version = METRICS_VERSION;
	m->hdr.n_slots = SCOREBOARD_SLOTS;
	m->hdr.size = (uint32_t)sizeof(*m);
	metrics_map = m;
	metrics_memfd = fd;
	return 0;
}

/* The region behind fd if it has our layout; 0 or -errno (-EPROTO: not). */
static int metrics_attach(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size != sizeof(struct metrics_region))
		return -EPROTO;
	struct metrics_region *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	if (m->hdr.magic != METRICS_MAGIC || m->hdr.version != METRICS_VERSION || m->hdr.n_slots != SCOREBOARD_SLOTS ||
	    m->hdr.size != sizeof(*m)) {
		munmap(m, sizeof(*m));
		return -EPROTO;
	}
	metrics_map = m;
	metrics_memfd = fd;
	return 0;
}

int metrics_start(int fd)
{
	if (fd >= 0) {
		if (metrics_attach(fd) == 0)
			return 0;
		close(fd); /* another build's: ours starts afresh */
	}
	return metrics_create();
}

struct metrics_region *metrics_region(void)
{
	return metrics_map;
}

int metrics_fd(void)
{
	return metrics_memfd;
}

struct metrics_slot *metrics_slot_at(int index)
{
	return metrics_map && index >= 0 && index < SCOREBOARD_SLOTS ? &metrics_map->slots[index] : NULL;
}

void metrics_slot_clear(int index)
{
	struct metrics_slot *s = metrics_slot_at(index);
	if (s)
		memset(s, 0, sizeof(*s));
}

static void metrics_fold(uint64_t *to, const uint64_t *from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_add(&to[i], sb_load(&from[i]));
}

/* Add scoreboard slot s's counters to t. */
static void metrics_fold_board(struct metrics_retired *t, const struct scoreboard_slot *s)
{
	sb_add(&t->accepted, sb_load(&s->accepted));
	sb_add(&t->bytes_in, sb_load(&s->bytes_in));
	sb_add(&t->bytes_out, sb_load(&s->bytes_out));
	sb_add(&t->dropped_nomem, sb_load(&s->dropped_nomem));
	sb_add(&t->tls_full, sb_load(&s->tls_full));
	sb_add(&t->tls_resumed, sb_load(&s->tls_resumed));
	sb_add(&t->tls_failed, sb_load(&s->tls_failed));
	sb_add(&t->handed_off, sb_load32(&s->handed_off));
	sb_add(&t->adopted, sb_load32(&s->adopted));
	sb_add(&t->h2_streams, sb_load(&s->h2_streams));
	sb_add(&t->h2_connections, sb_load32(&s->h2_connections));
	sb_add(&t->h2_resets, sb_load32(&s->h2_resets));
}

void metrics_retire(struct scoreboard *sb, int index)
{
	struct metrics_slot *m = metrics_slot_at(index);
	if (!m || !sb) {
		if (sb)
			scoreboard_slot_free(sb, index);
		return;
	}
	struct metrics_header *h = &metrics_map->hdr;
	__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (sb_load32(&sb->slots[index].state) != SLOT_FREE) {
		/* Its gauges went with its connections. */
		m->conns_idle = m->conns_http2 = 0;
		metrics_fold((uint64_t *)&h->retired.m, (const uint64_t *)m, sizeof(*m) / sizeof(uint64_t));
		metrics_fold_board(&h->retired, &sb->slots[index]);
	}
	memset(m, 0, sizeof(*m));
	scoreboard_slot_free(sb, index);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELAXED);
}

void metrics_change(enum metrics_change what, enum metrics_result result)
{
	if (!metrics_map)
		return;
	struct metrics_header *h = &metrics_map->hdr;
	sb_add(&h->changes[what][result], 1);
	sb_store32(&h->last_reload_ok, result == METRICS_OK);
	sb_store(&h->last_reload_s, (uint64_t)time(NULL));
}

void metrics_restart(enum metrics_restart why)
{
	if (metrics_map && why < METRICS_RESTARTS)
		sb_add(&metrics_map->hdr.restarts[why], 1);
}

void metrics_set_lame_duck(bool on)
{
	if (metrics_map)
		sb_store32(&metrics_map->hdr.lame_duck, on ? 1 : 0);
}

bool metrics_lame_duck(void)
{
	return metrics_map && sb_load32(&metrics_map->hdr.lame_duck) != 0;
}

/* One pass of metrics_sum, without the lock. */
static void metrics_sum_once(const struct scoreboard *sb, struct metrics_sum *out)
{
	memset(out, 0, sizeof(*out));
	const struct metrics_header *h = &metrics_map->hdr;
	metrics_fold((uint64_t *)&out->t, (const uint64_t *)&h->retired, sizeof(h->retired) / sizeof(uint64_t));
	for (int i = 0; i < SCOREBOARD_SLOTS; i++) {
		const struct scoreboard_slot *s = &sb->slots[i];
		uint32_t state = sb_load32(&s->state);
		if (state == SLOT_FREE)
			continue;
		if (state < 4)
			out->workers[state]++;
		out->connections += sb_load(&s->connections);
		metrics_fold((uint64_t *)&out->t.m, (const uint64_t *)&metrics_map->slots[i],
			     sizeof(struct metrics_slot) / sizeof(uint64_t));
		metrics_fold_board(&out->t, s);
	}
}

void metrics_sum(const struct scoreboard *sb, struct metrics_sum *out)
{
	memset(out, 0, sizeof(*out));
	if (!metrics_map || !sb)
		return;
	const struct metrics_header *h = &metrics_map->hdr;
	/* A fold takes microseconds; a few tries, then the last pass as it is. */
	for (int tries = 0; tries < 100; tries++) {
		uint32_t before = __atomic_load_n(&h->seq, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		metrics_sum_once(sb, out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(before & 1) && __atomic_load_n(&h->seq, __ATOMIC_RELAXED) == before)
			return;
		if (before & 1)
			sched_yield();
	}
}
