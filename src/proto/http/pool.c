/* http pool: free lists of struct http_conn (with buffers) and struct
 * http_idle (see pool.h). Spare connection structs are kept up to
 * HTTP_POOL_KEEP, so a burst costs mallocs once and a quiet worker gives
 * the memory back; idle structs come from slabs of HTTP_IDLE_SLAB that live
 * as long as the worker, so their number is the high-water mark of
 * connections. When memory runs out, take returns NULL and the caller makes
 * that connection wait (idle.c); each struct given back then calls the
 * pool's "returned" hook, so a waiting connection gets it. Idle structs
 * are reserved before an accept (http_pool_reserve_idle), so taking one
 * never fails. */
#include "proto/http/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http/access_log.h"

#define HTTP_POOL_KEEP 16 /* spare connection structs kept with their buffers */
#define HTTP_IDLE_SLAB 64 /* idle structs per allocation */

struct http_idle_slab {
	struct http_idle_slab *next;
	struct http_idle items[HTTP_IDLE_SLAB];
};

static struct {
	size_t in_cap, out_cap;
	bool log;
	struct http_conn *spare; /* linked through base.next */
	size_t n_spare;
	struct http_idle *free_idle; /* linked through base.next */
	struct http_idle_slab *slabs;
	void (*returned)(void);
} pool;

void http_pool_init(size_t in_cap, size_t out_cap, bool log, void (*returned)(void))
{
	http_pool_done();
	pool.in_cap = in_cap;
	pool.out_cap = out_cap;
	pool.log = log;
	pool.returned = returned;
}

static void http_pool_free_conn(struct http_conn *hc)
{
	conn_buf_free(&hc->in);
	conn_buf_free(&hc->out);
	free(hc->log);
	free(hc);
}

void http_pool_done(void)
{
	while (pool.spare) {
		struct http_conn *hc = pool.spare;
		pool.spare = (struct http_conn *)hc->base.next;
		http_pool_free_conn(hc);
	}
	while (pool.slabs) {
		struct http_idle_slab *s = pool.slabs;
		pool.slabs = s->next;
		free(s);
	}
	memset(&pool, 0, sizeof(pool));
}

struct http_conn *http_pool_take(void)
{
	struct http_conn *hc = pool.spare;
	if (hc) {
		pool.spare = (struct http_conn *)hc->base.next;
		pool.n_spare--;
		return hc;
	}
	hc = calloc(1, sizeof(*hc));
	if (!hc)
		return NULL;
	if (conn_buf_init(&hc->in, pool.in_cap) < 0 || conn_buf_init(&hc->out, pool.out_cap) < 0 ||
	    (pool.log && !(hc->log = malloc(HTTP_LOG_MAX)))) {
		http_pool_free_conn(hc);
		return NULL;
	}
	return hc;
}

void http_pool_give(struct http_conn *hc)
{
	if (pool.n_spare >= HTTP_POOL_KEEP) {
		http_pool_free_conn(hc);
	} else {
		hc->base.next = (struct conn *)pool.spare;
		pool.spare = hc;
		pool.n_spare++;
	}
	if (pool.returned)
		pool.returned();
}

int http_pool_reserve_idle(void)
{
	if (pool.free_idle)
		return 0;
	struct http_idle_slab *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->next = pool.slabs;
	pool.slabs = s;
	for (size_t i = 0; i < HTTP_IDLE_SLAB; i++)
		http_pool_give_idle(&s->items[i]);
	return 0;
}

struct http_idle *http_pool_take_idle(void)
{
	if (http_pool_reserve_idle() < 0)
		return NULL;
	struct http_idle *idle = pool.free_idle;
	pool.free_idle = (struct http_idle *)idle->base.next;
	return idle;
}

void http_pool_give_idle(struct http_idle *idle)
{
	idle->base.next = (struct conn *)pool.free_idle;
	pool.free_idle = idle;
}
