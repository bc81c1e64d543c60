/* http h2 mem: the memory nghttp2 allocates, from per-size free lists of
 * the worker (see h2_state.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http/h2_state.h"

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
