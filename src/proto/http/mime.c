/* mime: file extension -> Content-Type, from a mime.types file with a
 * built-in fallback table. Loaded once per worker (not the hot path);
 * lookups are an open-addressing hash probe without allocation. */
#include "proto/http/mime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "proto/http/ascii.h"


/* Extensions longer than this are not types anyone registers; a longer
 * one in a file name simply has no type. */
#define MIME_EXT_MAX 32
#define MIME_TYPE_MAX 128
#define MIME_CHARSET_MAX 40

static const char *const mime_builtin[][2] = {
	{ "html", "text/html" },
	{ "htm", "text/html" },
	{ "css", "text/css" },
	{ "js", "text/javascript" },
	{ "mjs", "text/javascript" },
	{ "json", "application/json" },
	{ "txt", "text/plain" },
	{ "xml", "application/xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/vnd.microsoft.icon" },
	{ "pdf", "application/pdf" },
	{ "wasm", "application/wasm" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "mp3", "audio/mpeg" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "tar", "application/x-tar" },
	{ "csv", "text/csv" },
	{ "md", "text/markdown" },
	{ "map", "application/json" },
	{ "webmanifest", "application/manifest+json" },
};

/* One slot of the open-addressing table. Strings live in one arena and
 * are referred to by offset, so growing the arena never dangles a slot. */
struct mime_slot {
	uint32_t hash;
	uint32_t ext;  /* offset in arena; 0 = empty slot (offset 0 is a dummy byte) */
	uint32_t type; /* offset in arena of the full Content-Type value */
};

struct http_mime {
	struct mime_slot *slots;
	size_t mask;  /* slots - 1, a power of two minus one */
	size_t count;
	char *arena;
	size_t arena_len, arena_cap;
	const char *charset; /* [http] charset for text types, or NULL (only while loading) */
};

/* FNV-1a over the lowercased extension: short keys, good spread. */
static uint32_t mime_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)http_ascii_lower(s[i]);
		h *= 16777619u;
	}
	return h;
}

/* Append bytes + NUL to the arena; offset in *off. */
static int mime_arena_add(struct http_mime *m, const char *s, size_t len, uint32_t *off)
{
	if (len > UINT32_MAX / 2 || m->arena_len > UINT32_MAX / 2)
		return -ENOMEM;
	if (m->arena_len + len + 1 > m->arena_cap) {
		size_t cap = m->arena_cap ? m->arena_cap : 4096;
		char *a;

		while (m->arena_len + len + 1 > cap)
			cap *= 2;
		a = realloc(m->arena, cap);
		if (a == NULL)
			return -ENOMEM;
		m->arena = a;
		m->arena_cap = cap;
	}
	memcpy(m->arena + m->arena_len, s, len);
	m->arena[m->arena_len + len] = '\0';
	*off = (uint32_t)m->arena_len;
	m->arena_len += len + 1;
	return 0;
}

static struct mime_slot *mime_find(const struct http_mime *m, const char *ext,
						 size_t len, uint32_t hash)
{
	for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
		struct mime_slot *s = &m->slots[i];

		if (s->ext == 0)
			return s;
		/* Stored extensions are lowercase and NUL-terminated; the
		 * hash matched, so comparing len bytes cannot run past the
		 * NUL of a shorter one (a NUL never equals a key byte). */
		if (s->hash == hash && http_ascii_caseeq(m->arena + s->ext, ext, len) &&
		    m->arena[s->ext + len] == '\0')
			return s;
	}
}

static int mime_grow(struct http_mime *m)
{
	size_t n = (m->mask + 1) * 2;
	struct mime_slot *old = m->slots;
	size_t old_n = m->mask + 1;

	m->slots = calloc(n, sizeof(*m->slots));
	if (m->slots == NULL) {
		m->slots = old;
		return -ENOMEM;
	}
	m->mask = n - 1;
	for (size_t i = 0; i < old_n; i++) {
		if (old[i].ext == 0)
			continue;
		for (size_t j = old[i].hash & m->mask;; j = (j + 1) & m->mask) {
			if (m->slots[j].ext == 0) {
				m->slots[j] = old[i];
				break;
			}
		}
	}
	free(old);
	return 0;
}

/* Text types get [http] charset when one is set (RFC 9110 §8.3.2 lets us
 * state it). The default is none, as nginx: a charset in the header
 * overrides the document's own <meta>, which would mis-decode a legacy
 * Latin-1 page. */
static bool mime_wants_charset(const char *type, size_t len)
{
	static const char *const with[] = {
		"application/javascript", "application/json", "application/xml", "image/svg+xml",
	};

	if (memchr(type, ';', len) != NULL)
		return false; /* the file already gave parameters */
	if (len > 5 && http_ascii_caseeq(type, "text/", 5))
		return true;
	for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++)
		if (strlen(with[i]) == len && http_ascii_caseeq(type, with[i], len))
			return true;
	return false;
}

/* Add ext -> type (type_off already in the arena) unless ext is known:
 * the first definition wins, so the file beats the built-in table. */
static int mime_add(struct http_mime *m, const char *ext, size_t len, uint32_t type_off)
{
	struct mime_slot *s;
	uint32_t hash, off;
	char lower[MIME_EXT_MAX];
	int r;

	if (len == 0 || len > MIME_EXT_MAX)
		return 0;
	hash = mime_hash(ext, len);
	s = mime_find(m, ext, len, hash);
	if (s->ext != 0)
		return 0;
	if ((m->count + 1) * 2 > m->mask + 1) {
		r = mime_grow(m);
		if (r < 0)
			return r;
		s = mime_find(m, ext, len, hash);
	}
	for (size_t i = 0; i < len; i++)
		lower[i] = http_ascii_lower(ext[i]);
	r = mime_arena_add(m, lower, len, &off);
	if (r < 0)
		return r;
	s->hash = hash;
	s->ext = off;
	s->type = type_off;
	m->count++;
	return 0;
}

/* Store "type" or "type; charset=CHARSET" in the arena. */
static int mime_add_type(struct http_mime *m, const char *type, size_t len, uint32_t *off)
{
	char buf[MIME_TYPE_MAX + sizeof("; charset=") + MIME_CHARSET_MAX];
	int n = (int)len;

	if (len == 0 || len > MIME_TYPE_MAX)
		return -EINVAL;
	if (m->charset && mime_wants_charset(type, len))
		n = snprintf(buf, sizeof(buf), "%.*s; charset=%s", (int)len, type, m->charset);
	else
		memcpy(buf, type, len);
	return mime_arena_add(m, buf, (size_t)n, off);
}

/* The mime.types file at path, opened so that it cannot block the worker
 * (a FIFO there would wait for a writer for ever): non-blocking, and only a
 * regular file is read. NULL when there is nothing to read. */
static FILE *mime_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warning("http: mime_types %s is not a regular file; using the built-in types", path);
		close(fd);
		return NULL;
	}
	FILE *fp = fdopen(fd, "r");
	if (!fp)
		close(fd);
	return fp;
}

/* One mime.types line: "type ext ext ...", '#' starts a comment. Lines
 * without a '/' in the first word, or with absurd lengths, are skipped:
 * a bad line must not take the server down. */
static int mime_parse_line(struct http_mime *m, char *line)
{
	static const char ws[] = " \t\r\n\v\f";
	char *hash = strchr(line, '#');
	char *tok, *save = NULL;
	uint32_t type_off = 0;
	int r;

	if (hash != NULL)
		*hash = '\0';
	tok = strtok_r(line, ws, &save);
	if (tok == NULL || strchr(tok, '/') == NULL)
		return 0;
	r = mime_add_type(m, tok, strlen(tok), &type_off);
	if (r == -EINVAL)
		return 0;
	if (r < 0)
		return r;
	while ((tok = strtok_r(NULL, ws, &save)) != NULL) {
		r = mime_add(m, tok, strlen(tok), type_off);
		if (r < 0)
			return r;
	}
	return 0;
}

struct http_mime *http_mime_load(const char *path, const char *charset)
{
	struct http_mime *m = calloc(1, sizeof(*m));
	uint32_t dummy;
	int r = 0;

	if (m == NULL)
		return NULL;
	if (charset && strlen(charset) > MIME_CHARSET_MAX)
		charset = NULL; /* config allows no such name; never truncate one */
	m->charset = charset;
	m->mask = 255;
	m->slots = calloc(m->mask + 1, sizeof(*m->slots));
	/* Offset 0 marks an empty slot, so spend one byte on it. */
	if (m->slots == NULL || mime_arena_add(m, "", 0, &dummy) < 0)
		goto fail;

	if (path != NULL) {
		FILE *fp = mime_open(path);

		/* Missing or unreadable: the built-in table alone is a
		 * working configuration, not an error. */
		if (fp != NULL) {
			char *line = NULL;
			size_t cap = 0;

			while (r == 0 && getline(&line, &cap, fp) >= 0)
				r = mime_parse_line(m, line);
			free(line);
			fclose(fp);
			if (r < 0)
				goto fail;
		}
	}

	for (size_t i = 0; i < sizeof(mime_builtin) / sizeof(mime_builtin[0]); i++) {
		const char *ext = mime_builtin[i][0];
		const char *type = mime_builtin[i][1];
		struct mime_slot *s;
		uint32_t off;

		s = mime_find(m, ext, strlen(ext), mime_hash(ext, strlen(ext)));
		if (s->ext != 0)
			continue;
		if (mime_add_type(m, type, strlen(type), &off) < 0 ||
		    mime_add(m, ext, strlen(ext), off) < 0)
			goto fail;
	}
	m->charset = NULL;
	return m;

fail:
	http_mime_free(m);
	return NULL;
}

void http_mime_free(struct http_mime *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m->arena);
	free(m);
}

const char *http_mime_lookup(const struct http_mime *m, const char *filename, const char *fallback)
{
	const char *base, *dot;
	const struct mime_slot *s;
	size_t len;

	if (m == NULL || filename == NULL)
		return fallback;
	base = strrchr(filename, '/');
	base = base ? base + 1 : filename;
	dot = strrchr(base, '.');
	/* ".profile" is a name, not an extension (a dotfile has no type). */
	if (dot == NULL || dot == base)
		return fallback;
	dot++;
	len = strlen(dot);
	if (len == 0 || len > MIME_EXT_MAX)
		return fallback;
	s = mime_find(m, dot, len, mime_hash(dot, len));
	if (s->ext == 0)
		return fallback;
	return m->arena + s->type;
}

