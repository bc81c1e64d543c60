/* http cache: the per-worker open-file cache (see cache.h).
 *
 * A hash table of entries keyed by the normalised path, and an LRU list
 * that bounds it by [http] file_cache_entries and, counting the held bytes,
 * file_cache_size. Each entry is one allocation: the struct, the key, the
 * header lines and, for a file of at most file_cache_max_file bytes, the
 * file's bytes (then no fd is kept; otherwise one O_RDONLY fd is, which
 * responses sendfile() from directly: each pins the entry, and an entry
 * evicted or replaced while pinned leaves the table at once but keeps its
 * fd until its last download in flight ends).
 *
 * Staleness: an entry checked less than file_cache_valid ago is used as is.
 * An older one is looked up again with http_path_open() exactly as a miss
 * would, which applies the traversal, symlink and dotfile rules to what the
 * path names now; if that is still the same file (device, inode, size,
 * mtime, ctime) the entry is kept, otherwise it is rebuilt or dropped. So
 * no answer comes from a cached file more than file_cache_valid after it
 * was replaced, rewritten, deleted or made unreadable. */
#include "proto/http/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/loop.h"
#include "proto/http/fields.h"
#include "proto/http/file.h"
#include "proto/http/path.h"
#include "proto/http/response.h"

struct cache_entry {
	struct cache_entry *hnext;       /* hash chain */
	struct cache_entry *prev, *next; /* LRU list, most recently used first */
	uint32_t hash;
	int fd;                          /* to sendfile from; -1 when body is held (or empty) */
	unsigned pins;                   /* responses sending from fd now */
	bool gone;                       /* out of the table; freed with its last pin */
	struct stat st;
	uint64_t checked_ms;             /* last looked up (loop time) */
	size_t cost;                     /* bytes counted against file_cache_size */
	size_t key_len, hdr_len;
	char *hdr;                       /* Content-Type ... Content-Length lines */
	char *body;                      /* st.st_size bytes, or NULL */
	char key[];                      /* NUL-terminated normalised path */
};

static struct {
	bool on;
	struct cache_entry **buckets;
	size_t mask;                     /* buckets - 1 (a power of two) */
	struct cache_entry *lru_head, *lru_tail;
	size_t n, bytes;
	size_t max_entries, max_bytes, max_file;
	uint64_t valid_ms;
} cache;

static uint32_t cache_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

int http_cache_init(void)
{
	const struct config_http *h = &http_w.cfg->http;
	memset(&cache, 0, sizeof(cache));
	if (h->file_cache_valid_ms == 0)
		return 0;
	size_t nb = 16;
	while (nb < h->file_cache_entries)
		nb <<= 1;
	cache.buckets = calloc(nb, sizeof(*cache.buckets));
	if (!cache.buckets)
		return -ENOMEM;
	cache.mask = nb - 1;
	cache.max_entries = h->file_cache_entries;
	cache.max_bytes = h->file_cache_size;
	cache.max_file = h->file_cache_max_file;
	cache.valid_ms = h->file_cache_valid_ms;
	cache.on = true;
	return 0;
}

static void cache_unlink_lru(struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		cache.lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		cache.lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void cache_push_lru(struct cache_entry *e)
{
	e->prev = NULL;
	e->next = cache.lru_head;
	if (cache.lru_head)
		cache.lru_head->prev = e;
	cache.lru_head = e;
	if (!cache.lru_tail)
		cache.lru_tail = e;
}

static void cache_remove(struct cache_entry *e)
{
	struct cache_entry **pp = &cache.buckets[e->hash & cache.mask];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	cache_unlink_lru(e);
	cache.n--;
	cache.bytes -= e->cost;
	if (e->pins) {
		e->gone = true; /* http_file_release() frees it */
		return;
	}
	if (e->fd >= 0)
		close(e->fd);
	free(e);
}

void http_file_release(struct http_conn *hc)
{
	struct cache_entry *e = hc->file_pin;
	if (e) {
		hc->file_pin = NULL;
		if (--e->pins == 0 && e->gone) {
			close(e->fd);
			free(e);
		}
	} else if (hc->file_fd >= 0) {
		close(hc->file_fd);
	}
	hc->file_fd = -1;
}

void http_cache_flush(void)
{
	while (cache.lru_head)
		cache_remove(cache.lru_head);
}

void http_cache_done(void)
{
	http_cache_flush();
	free(cache.buckets);
	memset(&cache, 0, sizeof(cache));
}

static struct cache_entry *cache_find(const char *key, size_t len, uint32_t hash)
{
	for (struct cache_entry *e = cache.buckets[hash & cache.mask]; e; e = e->hnext)
		if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* Whether a request may be answered from the cache: no header that makes
 * the answer depend on more than the file (Range, and every If-*: the
 * preconditions of RFC 9110 §13 are file.c's). */
static bool cache_plain(const struct http_request *req)
{
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_str *n = &req->headers[i].name;
		if (n->len >= 3 && (n->p[0] | 0x20) == 'i' && (n->p[1] | 0x20) == 'f' && n->p[2] == '-')
			return false;
		if (n->len == 5 && http_str_eq_ci(*n, "range"))
			return false;
	}
	return true;
}

static bool cache_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read all size bytes of fd into buf; false if the file is shorter now. */
static bool cache_read_all(int fd, char *buf, size_t size)
{
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, buf + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* Make room for one more entry of cost bytes: evict from the LRU tail. */
static void cache_evict_for(size_t cost)
{
	while (cache.lru_tail && (cache.n >= cache.max_entries || cache.bytes + cost > cache.max_bytes))
		cache_remove(cache.lru_tail);
}

/* A new entry for the regular file f found at key (f->fd is taken over or
 * closed). NULL when it cannot be cached. */
static struct cache_entry *cache_build(struct http_path_file *f, const char *key, size_t len,
				       uint32_t hash, uint64_t now)
{
	/* A modification time in the future is sent as the Date of each
	 * response (file.c), which moves: such a file is not cached. */
	time_t date;
	http_date_now(&date);
	if (f->st.st_mtim.tv_sec > date)
		goto fail;
	struct http_validators v;
	http_validators_of(&f->st, date, &v);
	char hdr[512];
	size_t fn = http_file_fields_format(hdr, sizeof(hdr), http_file_type(f), &v);
	int hn = fn ? snprintf(hdr + fn, sizeof(hdr) - fn, "Content-Length: %" PRIu64 "\r\n",
			       (uint64_t)f->st.st_size)
		    : -1;
	if (hn > 0)
		hn += (int)fn;
	uint64_t size = (uint64_t)f->st.st_size;
	bool hold = size <= cache.max_file;
	size_t body_len = hold ? (size_t)size : 0;
	size_t cost = sizeof(struct cache_entry) + len + 1 + (size_t)hn + body_len;
	if (hn < 0 || (size_t)hn >= sizeof(hdr) || cost > cache.max_bytes)
		goto fail;
	cache_evict_for(cost);
	struct cache_entry *e = malloc(cost);
	if (!e)
		goto fail;
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->st = f->st;
	e->checked_ms = now;
	e->cost = cost;
	e->key_len = len;
	memcpy(e->key, key, len + 1);
	e->hdr = e->key + len + 1;
	e->hdr_len = (size_t)hn;
	memcpy(e->hdr, hdr, (size_t)hn);
	e->fd = -1;
	if (hold) {
		e->body = e->hdr + hn;
		if (!cache_read_all(f->fd, e->body, body_len)) {
			free(e);
			goto fail; /* changing under us: serve it uncached */
		}
		close(f->fd);
	} else {
		e->fd = f->fd;
	}
	f->fd = -1;
	struct cache_entry **b = &cache.buckets[hash & cache.mask];
	e->hnext = *b;
	*b = e;
	cache_push_lru(e);
	cache.n++;
	cache.bytes += cost;
	return e;
fail:
	close(f->fd);
	f->fd = -1;
	return NULL;
}

/* Look key up again (a miss, or an entry older than file_cache_valid):
 * the entry to answer from, or NULL (gone, refused, not a regular file,
 * not cacheable) for file.c to answer. */
static struct cache_entry *cache_refresh(int root_fd, struct cache_entry *e, const char *key,
					 size_t len, uint32_t hash, uint64_t now)
{
	struct http_path_file f;
	if (http_path_open(root_fd, key, &http_w.popts, &f) < 0 || f.kind != HTTP_PATH_FILE) {
		if (f.fd >= 0)
			close(f.fd);
		if (e)
			cache_remove(e);
		return NULL;
	}
	if (e && cache_same_file(&e->st, &f.st)) {
		close(f.fd);
		e->checked_ms = now;
		return e;
	}
	if (e)
		cache_remove(e);
	return cache_build(&f, key, len, hash, now);
}

/* Queue the 200 for e. false (nothing queued) if the output buffer cannot
 * take the header block and body now. */
static bool cache_send(struct http_conn *hc, struct cache_entry *e)
{
	bool head = http_has(hc, HC_HEAD_ONLY);
	uint64_t size = (uint64_t)e->st.st_size;
	size_t need = e->hdr_len + 512 + (e->body && !head ? (size_t)size : 0);
	if (conn_buf_room(&hc->out) < need)
		return false;
	http_resp_begin(hc, 200, HTTP_PERSIST);
	http_out_add(hc, e->hdr, e->hdr_len);
	http_resp_end_head(hc, HTTP_NO_LENGTH);
	hc->state = HTTP_SEND;
	if (head || size == 0)
		return true;
	if (e->body) {
		http_out_add(hc, e->body, (size_t)size);
		return true;
	}
	e->pins++;
	hc->file_pin = e;
	hc->file_fd = e->fd;
	hc->file_off = 0;
	hc->file_left = size;
	return true;
}

bool http_cache_respond(struct http_conn *hc, int root_fd, const char *norm)
{
	if (!cache.on || !cache_plain(&hc->req))
		return false;
	size_t len = strlen(norm);
	uint32_t hash = cache_hash(norm, len);
	struct cache_entry *e = cache_find(norm, len, hash);
	uint64_t now = loop_now_ms(hc->base.loop);
	if (!e || now - e->checked_ms >= cache.valid_ms) {
		e = cache_refresh(root_fd, e, norm, len, hash, now);
		if (!e)
			return false;
	}
	if (e != cache.lru_head) {
		cache_unlink_lru(e);
		cache_push_lru(e);
	}
	return cache_send(hc, e);
}
