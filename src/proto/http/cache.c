/* http cache: the per-worker open-file cache (see cache.h).
 *
 * A hash table of entries keyed by the normalised path, and an LRU list
 * that bounds it by [http] file_cache_entries and, counting the held bytes,
 * file_cache_size. Each entry is one allocation: the struct, the key, the
 * header lines and, for a file of at most file_cache_max_file bytes, the
 * file's bytes (then no fd is kept; otherwise one O_RDONLY fd is, which
 * responses sendfile() from directly: each pins the entry, and an entry
 * evicted or replaced while pinned leaves the table at once but keeps its
 * fd and bytes until the last response sent from them ends).
 *
 * Staleness: an entry checked less than file_cache_valid ago is used as is.
 * An older one is looked up again with http_path_open() exactly as a miss
 * would, which applies the traversal, symlink and dotfile rules to what the
 * path names now; if that is still the same file (device, inode, size,
 * mtime, ctime) the entry is kept, otherwise it is rebuilt or dropped. So
 * no answer comes from a cached file more than file_cache_valid after it
 * was replaced, rewritten, deleted or made unreadable. A lookup that sees
 * another generation of the document root (root.c) drops every entry
 * first: they were found under the old one. */
#include "proto/http/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/http/fields.h"
#include "proto/http/mime.h"
#include "proto/http/path.h"

struct cache_entry {
	struct http_cached pub;          /* first: what lookups hand out */
	struct cache_entry *hnext;       /* hash chain */
	struct cache_entry *prev, *next; /* LRU list, most recently used first */
	uint32_t hash;
	unsigned pins;                   /* responses sending from it now */
	bool gone;                       /* out of the table; freed with its last pin */
	uint64_t checked_ms;             /* last looked up (loop time) */
	size_t cost;                     /* bytes counted against max_bytes */
	size_t key_len;
	char key[];                      /* NUL-terminated normalised path, then fields, then body */
};

static struct {
	bool on;
	struct cache_entry **buckets;
	size_t mask;                     /* buckets - 1 (a power of two) */
	struct cache_entry *lru_head, *lru_tail;
	size_t n, bytes;
	size_t max_entries, max_bytes, max_file;
	uint64_t valid_ms;
	uint64_t root_gen;               /* of the root the entries were found under */
	struct http_path_options popts;
	const struct http_mime *mime;
	const char *default_type;
} cache;

static uint32_t cache_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

int http_cache_init(const struct http_cache_params *p)
{
	memset(&cache, 0, sizeof(cache));
	if (p->valid_ms == 0)
		return 0;
	size_t nb = 16;
	while (nb < p->max_entries)
		nb <<= 1;
	cache.buckets = calloc(nb, sizeof(*cache.buckets));
	if (!cache.buckets)
		return -ENOMEM;
	cache.mask = nb - 1;
	cache.max_entries = p->max_entries;
	cache.max_bytes = p->max_bytes;
	cache.max_file = p->max_file;
	cache.valid_ms = p->valid_ms;
	cache.popts = p->popts;
	cache.mime = p->mime;
	cache.default_type = p->default_type;
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
		e->gone = true; /* http_cache_unpin() frees it */
		return;
	}
	if (e->pub.fd >= 0)
		close(e->pub.fd);
	free(e);
}

void http_cache_pin(const struct http_cached *f)
{
	struct cache_entry *e = (struct cache_entry *)f;
	e->pins++;
}

void http_cache_unpin(const struct http_cached *f)
{
	struct cache_entry *e = (struct cache_entry *)f;
	if (--e->pins == 0 && e->gone) {
		if (e->pub.fd >= 0)
			close(e->pub.fd);
		free(e);
	}
}

/* Drop every entry. */
static void cache_flush(void)
{
	while (cache.lru_head)
		cache_remove(cache.lru_head);
}

void http_cache_done(void)
{
	cache_flush();
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
	 * response (fields.c), which moves: such a file is not cached. "Now"
	 * is read from the fine clock: file times can be fine-grained
	 * (multigrain timestamps), and time() lags them by up to a tick, so a
	 * file written just now read as one from the future near the turn of
	 * a second. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t date = ts.tv_sec;
	if (f->st.st_mtim.tv_sec > date)
		goto fail;
	struct http_validators v;
	http_validators_of(&f->st, date, &v);
	const char *type = http_mime_lookup(cache.mime, f->type_name, cache.default_type);
	char fields[512];
	size_t fields_len = http_file_fields_format(fields, sizeof(fields), type, &v);
	uint64_t size = (uint64_t)f->st.st_size;
	/* Content-Length too: every answer from the entry sends the whole
	 * file, so its length line is built once, not per response. */
	static const char cl[] = "Content-Length: ";
	if (fields_len && fields_len + sizeof(cl) - 1 + 20 + 2 <= sizeof(fields)) {
		memcpy(fields + fields_len, cl, sizeof(cl) - 1);
		fields_len += sizeof(cl) - 1;
		fields_len += http_u64_dec(size, fields + fields_len);
		memcpy(fields + fields_len, "\r\n", 2);
		fields_len += 2;
	} else {
		fields_len = 0;
	}
	bool hold = size <= cache.max_file;
	size_t body_len = hold ? (size_t)size : 0;
	size_t cost = sizeof(struct cache_entry) + len + 1 + fields_len + body_len;
	if (fields_len == 0 || cost > cache.max_bytes)
		goto fail;
	cache_evict_for(cost);
	struct cache_entry *e = malloc(cost);
	if (!e)
		goto fail;
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->checked_ms = now;
	e->cost = cost;
	e->key_len = len;
	memcpy(e->key, key, len + 1);
	char *p = e->key + len + 1;
	memcpy(p, fields, fields_len);
	e->pub = (struct http_cached){
		.fd = -1,
		.st = f->st,
		.type = type,
		.fields = p,
		.fields_len = fields_len,
	};
	if (hold) {
		char *body = p + fields_len;
		if (!cache_read_all(f->fd, body, body_len)) {
			free(e);
			goto fail; /* changing under us: serve it uncached */
		}
		e->pub.body = body;
		close(f->fd);
	} else {
		e->pub.fd = f->fd;
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

/* Look key up again (a miss, or an entry older than valid_ms): the entry
 * to answer from, or NULL (gone, refused, not a regular file, not
 * cacheable) for the caller to answer from the file system. */
static struct cache_entry *cache_refresh(int root_fd, struct cache_entry *e, const char *key,
					 size_t len, uint32_t hash, uint64_t now)
{
	struct http_path_file f;
	if (http_path_open(root_fd, key, &cache.popts, &f) < 0 || f.kind != HTTP_PATH_FILE) {
		if (f.fd >= 0)
			close(f.fd);
		if (e)
			cache_remove(e);
		return NULL;
	}
	if (e && cache_same_file(&e->pub.st, &f.st)) {
		close(f.fd);
		e->checked_ms = now;
		return e;
	}
	if (e)
		cache_remove(e);
	return cache_build(&f, key, len, hash, now);
}

const struct http_cached *http_cache_lookup(const char *norm, int root_fd, uint64_t root_gen, uint64_t now_ms)
{
	if (!cache.on)
		return NULL;
	if (root_gen != cache.root_gen) {
		cache_flush(); /* found under another root */
		cache.root_gen = root_gen;
	}
	size_t len = strlen(norm);
	uint32_t hash = cache_hash(norm, len);
	struct cache_entry *e = cache_find(norm, len, hash);
	if (!e || now_ms - e->checked_ms >= cache.valid_ms) {
		e = cache_refresh(root_fd, e, norm, len, hash, now_ms);
		if (!e)
			return NULL;
	}
	if (e != cache.lru_head) {
		cache_unlink_lru(e);
		cache_push_lru(e);
	}
	return &e->pub;
}
