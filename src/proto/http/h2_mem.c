/* http h2 mem: an HTTP/2 connection's memory and budget: the memory
 * nghttp2 allocates, from per-size free lists of the worker; the output
 * buffer, borrowed from the HTTP/1.1 pool while there is output; and the
 * credit that control frames spend (see h2_state.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proto/http/h2_state.h"
#include "proto/http/pool.h"

/* nghttp2 allocates a few small blocks per stream (the stream, its
 * queued frames, the copied response fields); with 100 streams in flight
 * that is more than glibc's per-thread cache keeps, and every stream paid
 * malloc's slow path. Small blocks come from per-size free lists of the
 * worker instead, larger ones from malloc. Each block carries its size
 * class (or its size) in a 16-byte header, which keeps malloc's alignment. */
#define H2_MEM_CLASSES 5
#define H2_MEM_SPARE 512 /* blocks kept per class */
static const size_t h2_mem_size[H2_MEM_CLASSES] = { 64, 128, 256, 512, 1024 };
static struct {
	void *v[H2_MEM_SPARE];
	unsigned n;
} h2_mem_spare[H2_MEM_CLASSES];

struct h2_mem_hdr {
	size_t cls;  /* index into h2_mem_size, or H2_MEM_CLASSES: malloc'd at size */
	size_t size;
};

static void *h2_mem_malloc(size_t size, void *ud)
{
	(void)ud;
	size_t cls = 0;
	while (cls < H2_MEM_CLASSES && size > h2_mem_size[cls])
		cls++;
	struct h2_mem_hdr *b;
	if (cls < H2_MEM_CLASSES && h2_mem_spare[cls].n)
		b = h2_mem_spare[cls].v[--h2_mem_spare[cls].n];
	else if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	else
		b = malloc(sizeof(*b) + (cls < H2_MEM_CLASSES ? h2_mem_size[cls] : size));
	if (!b)
		return NULL;
	b->cls = cls;
	b->size = cls < H2_MEM_CLASSES ? h2_mem_size[cls] : size;
	return b + 1;
}

static void h2_mem_free(void *ptr, void *ud)
{
	(void)ud;
	if (!ptr)
		return;
	struct h2_mem_hdr *b = (struct h2_mem_hdr *)ptr - 1;
	if (b->cls < H2_MEM_CLASSES && h2_mem_spare[b->cls].n < H2_MEM_SPARE)
		h2_mem_spare[b->cls].v[h2_mem_spare[b->cls].n++] = b;
	else
		free(b);
}

static void *h2_mem_calloc(size_t n, size_t size, void *ud)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	void *p = h2_mem_malloc(n * size, ud);
	if (p)
		memset(p, 0, n * size);
	return p;
}

static void *h2_mem_realloc(void *ptr, size_t size, void *ud)
{
	if (!ptr)
		return h2_mem_malloc(size, ud);
	if (size == 0) {
		h2_mem_free(ptr, ud);
		return NULL;
	}
	struct h2_mem_hdr *b = (struct h2_mem_hdr *)ptr - 1;
	if (size <= b->size)
		return ptr;
	void *p = h2_mem_malloc(size, ud);
	if (!p)
		return NULL;
	memcpy(p, ptr, b->size);
	h2_mem_free(ptr, ud);
	return p;
}

nghttp2_mem h2_mem = {
	.malloc = h2_mem_malloc,
	.free = h2_mem_free,
	.calloc = h2_mem_calloc,
	.realloc = h2_mem_realloc,
};

void h2_mem_done(void)
{
	for (size_t k = 0; k < H2_MEM_CLASSES; k++)
		while (h2_mem_spare[k].n)
			free(h2_mem_spare[k].v[--h2_mem_spare[k].n]);
}

/* ------------------------------------------------------------ output buffer */

/* The output buffer is an HTTP/1.1 connection's, from the same pool
 * (pool.c): taken while there is something to write, given back when
 * the connection is idle, so both versions draw on one budget. When none
 * can be had, the frames wait in nghttp2 and h2_write tries again on a
 * timer (H2_NOMEM_RETRY_MS). */
static int h2_out_take(struct h2_conn *h)
{
	if (h->io)
		return 0;
	struct http_conn *hc = http_pool_take();
	if (!hc)
		return -ENOMEM;
	h->io = hc;
	h->out = hc->out;
	h->out.start = h->out.end = 0;
	return 0;
}

void h2_out_give(struct h2_conn *h)
{
	if (!h->io)
		return;
	h->io->out = h->out;
	http_pool_give(h->io);
	h->io = NULL;
	h->out = (struct conn_buf){ 0 };
}

/* Room at the end of the output buffer (compacting when that helps). */
size_t h2_out_room(struct h2_conn *h)
{
	if (h2_out_take(h) < 0)
		return 0;
	if (conn_buf_len(&h->out) == 0)
		h->out.start = h->out.end = 0;
	else if (h->out.cap - h->out.end < conn_buf_room(&h->out) && h->out.start > h->out.cap / 2)
		conn_buf_compact(&h->out);
	return h->out.cap - h->out.end;
}

/* ------------------------------------------------------------ credit */

void h2_spend(struct h2_conn *h, int cost)
{
	h->credit -= cost;
	if (h->credit < 0 && !h->calm) {
		h->calm = true;
		char peer[64];
		conn_peer_str(&h->base, peer, sizeof(peer));
		log_info("http2: %s sends more control frames than requests justify: GOAWAY ENHANCE_YOUR_CALM",
			 peer);
	}
}

void h2_earn(struct h2_conn *h, int n)
{
	h->credit += n;
	if (h->credit > H2_CREDIT_MAX)
		h->credit = H2_CREDIT_MAX;
}

void h2_nomem_dropped(int err)
{
	if (err && err != NGHTTP2_ERR_NOMEM) {
		log_warning("http2: cannot set up a session: %s", nghttp2_strerror(err));
		return;
	}
	/* As HTTP/1.1's shortages: counted, logged at most once a while,
	 * accepting paused, and a worker short for long replaced. */
	if (http_w.env && http_w.env->out_of_memory)
		http_w.env->out_of_memory(http_w.env, PROTO_NOMEM_DROPPED);
	else
		log_warning("http2: no memory for a connection, closing it");
}
