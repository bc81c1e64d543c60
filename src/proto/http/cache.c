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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/http/coding.h"
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
	const struct http_config *http;
} cache;

/* What an entry is built as: the file itself, or one of its variants
 * (the file's type and Cache-Control; its own validators, suffixed). */
struct cache_spec {
	int coding;              /* HTTP_CODING_IDENTITY: the file */
	const char *type;        /* a variant: the file's Content-Type */
	const char *cc;          /* a variant: the file's Cache-Control line */
	size_t cc_len;
	unsigned variants;       /* the file: what http_cache_probe() found */
};

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
	cache.http = p->http;
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

/* The field lines of an entry: the file's (Content-Type, validators,
 * Accept-Ranges), Content-Encoding for a variant, Vary when the file has
 * variants, Cache-Control, Content-Length (every answer from an entry
 * sends the whole file, so its length line is built once, not per
 * response). Their length, 0 when they do not fit in cap. */
static size_t cache_fields(char *out, size_t cap, const struct stat *st, time_t date, const char *type,
			   const struct cache_spec *spec, const char *cc, size_t cc_len)
{
	struct http_validators v;
	http_validators_of(st, date, &v);
	if (spec->coding != HTTP_CODING_IDENTITY)
		http_coding_etag(v.etag, sizeof(v.etag), spec->coding);
	size_t n = http_file_fields_format(out, cap, type, &v);
	if (n == 0)
		return 0;
	int k = snprintf(out + n, cap - n, "%s%s%s%s%.*sContent-Length: ",
			 spec->coding != HTTP_CODING_IDENTITY ? "Content-Encoding: " : "",
			 spec->coding != HTTP_CODING_IDENTITY ? http_coding_name(spec->coding) : "",
			 spec->coding != HTTP_CODING_IDENTITY ? "\r\n" : "",
			 spec->variants || spec->coding != HTTP_CODING_IDENTITY ? "Vary: Accept-Encoding\r\n" : "",
			 (int)cc_len, cc ? cc : "");
	if (k < 0 || (size_t)k + 20 + 2 >= cap - n)
		return 0;
	n += (size_t)k;
	n += http_u64_dec((uint64_t)st->st_size, out + n);
	memcpy(out + n, "\r\n", 2);
	return n + 2;
}

/* A new entry for the regular file f found at key (f->fd is taken over or
 * closed), as spec says. NULL when it cannot be cached. */
static struct cache_entry *cache_build(struct http_path_file *f, const char *key, size_t len,
				       uint32_t hash, uint64_t now, const struct cache_spec *spec)
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
	const char *type = spec->type;
	const char *cc = spec->cc;
	size_t cc_len = spec->cc_len;
	if (spec->coding == HTTP_CODING_IDENTITY) {
		type = http_mime_lookup(cache.mime, f->type_name, cache.default_type);
		cc = cache.http ? http_cache_control(cache.http, key, f->type_name, &cc_len) : NULL;
	}
	char fields[1024];
	size_t fields_len = cache_fields(fields, sizeof(fields), &f->st, date, type, spec, cc, cc_len);
	uint64_t size = (uint64_t)f->st.st_size;
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
		.coding = spec->coding,
		.variants = spec->variants,
		.cache_control = cc,
		.cache_control_len = cc_len,
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

int http_variant_open(int root_fd, const char *norm, const struct http_path_options *o, int coding,
		      const struct stat *orig, struct http_path_file *v)
{
	char path[HTTP_PATH_MAX + 8];
	size_t n = strlen(norm);
	const char *index = n && norm[n - 1] == '/' && o->index ? o->index : "";
	int k = snprintf(path, sizeof(path), "%s%s%s", norm, index, http_coding_suffix(coding));
	if (k < 0 || (size_t)k >= sizeof(path)) {
		memset(v, 0, sizeof(*v));
		v->fd = -1;
		return -ENAMETOOLONG;
	}
	int r = http_path_open(root_fd, path, o, v);
	if (r == 0 && (v->kind != HTTP_PATH_FILE || v->st.st_mtim.tv_sec < orig->st_mtim.tv_sec))
		r = -ESTALE;
	if (r < 0 && v->fd >= 0) {
		close(v->fd);
		v->fd = -1;
	}
	return r;
}

/* The variants beside the file at norm (stat orig) that [http]
 * precompressed looks for: a bit per coding found, not older. */
static unsigned cache_probe(int root_fd, const char *norm, const struct stat *orig)
{
	unsigned found = 0;
	const struct http_precompressed *pc = cache.http ? &cache.http->precompressed : NULL;
	for (unsigned i = 0; pc && i < pc->n; i++) {
		struct http_path_file v;
		if (http_variant_open(root_fd, norm, &cache.popts, pc->order[i], orig, &v) == 0) {
			found |= 1u << pc->order[i];
			close(v.fd);
		}
	}
	return found;
}

/* Look key up again (a miss, or an entry older than valid_ms) at
 * open_path: the entry to answer from, or NULL (gone, refused, not a
 * regular file, not cacheable) for the caller to answer from the file
 * system. spec: a variant's; NULL: the file's, whose variants are looked
 * for again too (an entry whose file is the same but whose variants
 * changed is rebuilt). */
static struct cache_entry *cache_refresh(int root_fd, struct cache_entry *e, const char *key, size_t len,
					 uint32_t hash, uint64_t now, const char *open_path,
					 const struct cache_spec *spec)
{
	struct http_path_file f;
	if (http_path_open(root_fd, open_path, &cache.popts, &f) < 0 || f.kind != HTTP_PATH_FILE) {
		if (f.fd >= 0)
			close(f.fd);
		if (e)
			cache_remove(e);
		return NULL;
	}
	struct cache_spec own = { .coding = HTTP_CODING_IDENTITY };
	if (!spec) {
		own.variants = cache_probe(root_fd, key, &f.st);
		spec = &own;
	}
	if (e && cache_same_file(&e->pub.st, &f.st) && e->pub.variants == spec->variants) {
		close(f.fd);
		e->checked_ms = now;
		return e;
	}
	if (e)
		cache_remove(e);
	return cache_build(&f, key, len, hash, now, spec);
}

/* The entry for key, looked up again when missing or older than
 * valid_ms; moved to the front of the LRU list. */
static struct cache_entry *cache_get(int root_fd, const char *key, size_t len, uint64_t now_ms,
				     const char *open_path, const struct cache_spec *spec)
{
	uint32_t hash = cache_hash(key, len);
	struct cache_entry *e = cache_find(key, len, hash);
	if (!e || now_ms - e->checked_ms >= cache.valid_ms) {
		e = cache_refresh(root_fd, e, key, len, hash, now_ms, open_path, spec);
		if (!e)
			return NULL;
	}
	if (e != cache.lru_head) {
		cache_unlink_lru(e);
		cache_push_lru(e);
	}
	return e;
}

const struct http_cached *http_cache_variant(const struct http_cached *file, const char *norm, int coding,
					      int root_fd, uint64_t now_ms)
{
	/* Its key cannot be a request path's (those start with '/'). */
	char key[HTTP_PATH_MAX + 16], open_path[HTTP_PATH_MAX + 16];
	size_t n = strlen(norm);
	const char *index = n && norm[n - 1] == '/' && cache.popts.index ? cache.popts.index : "";
	int kl = snprintf(key, sizeof(key), "%s:%s", http_coding_name(coding), norm);
	int ol = snprintf(open_path, sizeof(open_path), "%s%s%s", norm, index, http_coding_suffix(coding));
	if (kl < 0 || (size_t)kl >= sizeof(key) || ol < 0 || (size_t)ol >= sizeof(open_path))
		return NULL;
	/* file may go while the variant's entry is made: what is needed of
	 * it is copied first. */
	time_t orig_mtime = file->st.st_mtim.tv_sec;
	const struct cache_spec spec = {
		.coding = coding,
		.type = file->type,
		.cc = file->cache_control,
		.cc_len = file->cache_control_len,
	};
	struct cache_entry *e = cache_get(root_fd, key, (size_t)kl, now_ms, open_path, &spec);
	if (!e || e->pub.st.st_mtim.tv_sec < orig_mtime)
		return NULL;
	return &e->pub;
}

const struct http_cached *http_cache_lookup(const char *norm, int root_fd, uint64_t root_gen, uint64_t now_ms)
{
	if (!cache.on)
		return NULL;
	if (root_gen != cache.root_gen) {
		cache_flush(); /* found under another root */
		cache.root_gen = root_gen;
	}
	struct cache_entry *e = cache_get(root_fd, norm, strlen(norm), now_ms, norm, NULL);
	return e ? &e->pub : NULL;
}

bool http_cache_known_variants(const char *norm, uint64_t root_gen, uint64_t now_ms, const struct stat *st,
			       unsigned *variants)
{
	if (!cache.on || root_gen != cache.root_gen)
		return false;
	size_t len = strlen(norm);
	const struct cache_entry *e = cache_find(norm, len, cache_hash(norm, len));
	if (!e || now_ms - e->checked_ms >= cache.valid_ms || !cache_same_file(&e->pub.st, st))
		return false;
	*variants = e->pub.variants;
	return true;
}
