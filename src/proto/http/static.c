/* static: map a request path to a file under the root, safely, and compute
 * what a response needs (type, validators, range).
 *
 * Everything here except static_mime_load() runs on the per-request hot path:
 * no allocation, bounded buffers, at most a handful of syscalls per request. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH, timegm; autoconf defines it in the real build */
#endif
#include "proto/http/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

/* ------------------------------------------------------------------ paths */

/* ASCII only: tolower(3)/strncasecmp(3) follow the locale, and protocol
 * tokens and extensions must not (think of the Turkish dotless i). */
static char static_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether the n bytes at a and b are equal ignoring ASCII case. */
static bool static_ascii_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (static_ascii_lower(a[i]) != static_ascii_lower(b[i]))
			return false;
	return true;
}

static int static_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Bytes a path may never contain once decoded: NUL and control bytes (they
 * end up in file names, logs and headers), '/' when it came from %2f (it
 * must not become a separator, RFC 3986 §2.2: encoded reserved characters
 * are data), and '\\' (a separator to other systems and a classic bypass). */
static bool static_path_byte_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '\\';
}

/* The output is built as "" (the root) or "/seg/seg": every segment is
 * appended as '/' + its decoded bytes, ".." truncates back to the previous
 * '/'. Decoding happens in place in out, so nothing is copied twice and a
 * segment that does not fit is detected while decoding. */
int static_normalize_path(const char *in, size_t in_len, char *out, size_t out_len)
{
	size_t pos = 0; /* length of the normalised path in out */
	size_t i;
	bool trailing = false;

	if (in_len == 0 || in[0] != '/')
		return -EINVAL; /* origin-form starts with '/' (RFC 9112 §3.2.1) */
	if (out_len < 2)
		return -ENAMETOOLONG;

	i = 1;
	for (;;) {
		size_t seg = pos + 1; /* where the decoded segment starts */
		size_t n = 0;

		/* Decode one raw segment (up to the next literal '/'). */
		while (i < in_len && in[i] != '/') {
			unsigned char c = (unsigned char)in[i];

			if (c == '%') {
				int hi, lo;

				if (in_len - i < 3)
					return -EINVAL; /* truncated escape */
				hi = static_hexval((unsigned char)in[i + 1]);
				lo = static_hexval((unsigned char)in[i + 2]);
				if (hi < 0 || lo < 0)
					return -EINVAL;
				c = (unsigned char)(hi << 4 | lo);
				if (c == '/')
					return -EINVAL;
				i += 3;
			} else {
				i++;
			}
			if (!static_path_byte_ok(c))
				return -EINVAL;
			/* Room for this byte and the final NUL. */
			if (seg + n + 1 >= out_len)
				return -ENAMETOOLONG;
			out[seg + n++] = (char)c;
		}

		if (n == 0) {
			/* Empty segment: "//" collapses; a trailing '/' is kept. */
			trailing = true;
		} else if (n == 1 && out[seg] == '.') {
			trailing = true;
		} else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
			/* Never above the root: refuse rather than clamp, a
			 * client asking for it is probing (RFC 3986 §5.2.4
			 * would clamp; we would rather say 400). */
			if (pos == 0)
				return -EINVAL;
			while (pos > 0 && out[pos - 1] != '/')
				pos--;
			pos--; /* drop the '/' that started the popped segment */
			trailing = true;
		} else {
			out[pos] = '/';
			pos = seg + n;
			trailing = false;
		}

		if (i >= in_len)
			break;
		i++; /* skip the literal '/' */
		if (i >= in_len) {
			trailing = true;
			break;
		}
	}

	if (pos == 0) {
		out[0] = '/';
		out[1] = '\0';
		return 0;
	}
	if (trailing) {
		if (pos + 2 > out_len)
			return -ENAMETOOLONG;
		out[pos++] = '/';
	}
	out[pos] = '\0';
	return 0;
}

bool static_path_has_dotfile(const char *path)
{
	const char *p = path;

	if (p[0] == '.')
		return true;
	while ((p = strchr(p, '/')) != NULL) {
		p++;
		if (*p == '.')
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------- MIME */

/* Extensions longer than this are not types anyone registers; a longer
 * one in a file name simply has no type. */
#define STATIC_MIME_EXT_MAX 32
#define STATIC_MIME_TYPE_MAX 128

static const char *const static_mime_builtin[][2] = {
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
struct static_mime_slot {
	uint32_t hash;
	uint32_t ext;  /* offset in arena; 0 = empty slot (offset 0 is a dummy byte) */
	uint32_t type; /* offset in arena of the full Content-Type value */
};

struct static_mime {
	struct static_mime_slot *slots;
	size_t mask;  /* slots - 1, a power of two minus one */
	size_t count;
	char *arena;
	size_t arena_len, arena_cap;
};

/* FNV-1a over the lowercased extension: short keys, good spread. */
static uint32_t static_mime_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)static_ascii_lower(s[i]);
		h *= 16777619u;
	}
	return h;
}

/* Append bytes + NUL to the arena; offset in *off. */
static int static_mime_arena_add(struct static_mime *m, const char *s, size_t len, uint32_t *off)
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

static struct static_mime_slot *static_mime_find(const struct static_mime *m, const char *ext,
						 size_t len, uint32_t hash)
{
	for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
		struct static_mime_slot *s = &m->slots[i];

		if (s->ext == 0)
			return s;
		/* Stored extensions are lowercase and NUL-terminated; the
		 * hash matched, so comparing len bytes cannot run past the
		 * NUL of a shorter one (a NUL never equals a key byte). */
		if (s->hash == hash && static_ascii_caseeq(m->arena + s->ext, ext, len) &&
		    m->arena[s->ext + len] == '\0')
			return s;
	}
}

static int static_mime_grow(struct static_mime *m)
{
	size_t n = (m->mask + 1) * 2;
	struct static_mime_slot *old = m->slots;
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

/* Text types are served as UTF-8: without a charset browsers guess
 * (RFC 9110 §8.3.2 lets us state it; RFC 8259 §11 and RFC 7303 say JSON/XML
 * are UTF-8 anyway, so saying it is harmless and stops the sniffing). */
static bool static_mime_wants_charset(const char *type, size_t len)
{
	static const char *const with[] = {
		"application/javascript", "application/json", "application/xml", "image/svg+xml",
	};

	if (memchr(type, ';', len) != NULL)
		return false; /* the file already gave parameters */
	if (len > 5 && static_ascii_caseeq(type, "text/", 5))
		return true;
	for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++)
		if (strlen(with[i]) == len && static_ascii_caseeq(type, with[i], len))
			return true;
	return false;
}

/* Add ext -> type (type_off already in the arena) unless ext is known:
 * the first definition wins, so the file beats the built-in table. */
static int static_mime_add(struct static_mime *m, const char *ext, size_t len, uint32_t type_off)
{
	struct static_mime_slot *s;
	uint32_t hash, off;
	char lower[STATIC_MIME_EXT_MAX];
	int r;

	if (len == 0 || len > STATIC_MIME_EXT_MAX)
		return 0;
	hash = static_mime_hash(ext, len);
	s = static_mime_find(m, ext, len, hash);
	if (s->ext != 0)
		return 0;
	if ((m->count + 1) * 2 > m->mask + 1) {
		r = static_mime_grow(m);
		if (r < 0)
			return r;
		s = static_mime_find(m, ext, len, hash);
	}
	for (size_t i = 0; i < len; i++)
		lower[i] = static_ascii_lower(ext[i]);
	r = static_mime_arena_add(m, lower, len, &off);
	if (r < 0)
		return r;
	s->hash = hash;
	s->ext = off;
	s->type = type_off;
	m->count++;
	return 0;
}

/* Store "type" or "type; charset=utf-8" in the arena. */
static int static_mime_add_type(struct static_mime *m, const char *type, size_t len, uint32_t *off)
{
	char buf[STATIC_MIME_TYPE_MAX + sizeof("; charset=utf-8")];
	size_t n = len;

	if (len == 0 || len > STATIC_MIME_TYPE_MAX)
		return -EINVAL;
	memcpy(buf, type, len);
	if (static_mime_wants_charset(type, len)) {
		memcpy(buf + n, "; charset=utf-8", sizeof("; charset=utf-8") - 1);
		n += sizeof("; charset=utf-8") - 1;
	}
	return static_mime_arena_add(m, buf, n, off);
}

/* One mime.types line: "type ext ext ...", '#' starts a comment. Lines
 * without a '/' in the first word, or with absurd lengths, are skipped:
 * a bad line must not take the server down. */
static int static_mime_parse_line(struct static_mime *m, char *line)
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
	r = static_mime_add_type(m, tok, strlen(tok), &type_off);
	if (r == -EINVAL)
		return 0;
	if (r < 0)
		return r;
	while ((tok = strtok_r(NULL, ws, &save)) != NULL) {
		r = static_mime_add(m, tok, strlen(tok), type_off);
		if (r < 0)
			return r;
	}
	return 0;
}

struct static_mime *static_mime_load(const char *path)
{
	struct static_mime *m = calloc(1, sizeof(*m));
	uint32_t dummy;
	int r = 0;

	if (m == NULL)
		return NULL;
	m->mask = 255;
	m->slots = calloc(m->mask + 1, sizeof(*m->slots));
	/* Offset 0 marks an empty slot, so spend one byte on it. */
	if (m->slots == NULL || static_mime_arena_add(m, "", 0, &dummy) < 0)
		goto fail;

	if (path != NULL) {
		FILE *fp = fopen(path, "re");

		/* Missing or unreadable: the built-in table alone is a
		 * working configuration, not an error. */
		if (fp != NULL) {
			char *line = NULL;
			size_t cap = 0;

			while (r == 0 && getline(&line, &cap, fp) >= 0)
				r = static_mime_parse_line(m, line);
			free(line);
			fclose(fp);
			if (r < 0)
				goto fail;
		}
	}

	for (size_t i = 0; i < sizeof(static_mime_builtin) / sizeof(static_mime_builtin[0]); i++) {
		const char *ext = static_mime_builtin[i][0];
		const char *type = static_mime_builtin[i][1];
		struct static_mime_slot *s;
		uint32_t off;

		s = static_mime_find(m, ext, strlen(ext), static_mime_hash(ext, strlen(ext)));
		if (s->ext != 0)
			continue;
		if (static_mime_add_type(m, type, strlen(type), &off) < 0 ||
		    static_mime_add(m, ext, strlen(ext), off) < 0)
			goto fail;
	}
	return m;

fail:
	static_mime_free(m);
	return NULL;
}

void static_mime_free(struct static_mime *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m->arena);
	free(m);
}

const char *static_mime_lookup(const struct static_mime *m, const char *filename, const char *fallback)
{
	const char *base, *dot;
	const struct static_mime_slot *s;
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
	if (len == 0 || len > STATIC_MIME_EXT_MAX)
		return fallback;
	s = static_mime_find(m, dot, len, static_mime_hash(dot, len));
	if (s->ext == 0)
		return fallback;
	return m->arena + s->type;
}

/* ------------------------------------------------------------- validators */

void static_etag(const struct stat *st, char *out, size_t out_len)
{
	/* Size and mtime in ns change whenever a file is rewritten in the
	 * common ways; unsigned arithmetic so an odd mtime cannot overflow. */
	uint64_t ns = (uint64_t)st->st_mtim.tv_sec * UINT64_C(1000000000) + (uint64_t)st->st_mtim.tv_nsec;

	if (out_len == 0)
		return;
	snprintf(out, out_len, "\"%jx-%jx\"", (uintmax_t)st->st_size, (uintmax_t)ns);
}

static const char static_day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const static_day_long[7] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char static_month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Our own names, not strftime: the C locale must not matter (RFC 9110
 * §5.6.7 names are case-sensitive English). */
void static_http_date(time_t t, char *out, size_t out_len)
{
	struct tm tm;

	if (out_len == 0)
		return;
	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(out, out_len, "%s, %02d %s %04d %02d:%02d:%02d GMT", static_day_names[tm.tm_wday],
		 tm.tm_mday, static_month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* A tiny cursor over the header value: each step consumes exactly what the
 * grammar says or fails. */
struct static_scan {
	const char *p, *end;
};

static bool static_scan_lit(struct static_scan *sc, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0)
		return false;
	sc->p += n;
	return true;
}

static bool static_scan_digits(struct static_scan *sc, size_t n, int *out)
{
	int v = 0;

	if ((size_t)(sc->end - sc->p) < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (sc->p[i] < '0' || sc->p[i] > '9')
			return false;
		v = v * 10 + (sc->p[i] - '0');
	}
	sc->p += n;
	*out = v;
	return true;
}

static bool static_scan_month(struct static_scan *sc, int *mon)
{
	for (int i = 0; i < 12; i++) {
		if (static_scan_lit(sc, static_month_names[i])) {
			*mon = i;
			return true;
		}
	}
	return false;
}

/* time-of-day = hour ":" minute ":" second */
static bool static_scan_time(struct static_scan *sc, struct tm *tm)
{
	return static_scan_digits(sc, 2, &tm->tm_hour) && static_scan_lit(sc, ":") &&
	       static_scan_digits(sc, 2, &tm->tm_min) && static_scan_lit(sc, ":") &&
	       static_scan_digits(sc, 2, &tm->tm_sec);
}

static bool static_date_valid(const struct tm *tm)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y = tm->tm_year + 1900;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (tm->tm_mday < 1 || tm->tm_mday > mdays[tm->tm_mon])
		return false;
	if (tm->tm_mon == 1 && tm->tm_mday == 29 && !leap)
		return false;
	/* second 60: a leap second is a valid IMF time (RFC 5322 §3.3). */
	return tm->tm_hour <= 23 && tm->tm_min <= 59 && tm->tm_sec <= 60;
}

/* RFC 9110 §5.6.7: two-digit years more than 50 years in the future are
 * in the past century. */
static int static_rfc850_year(int yy)
{
	time_t now = time(NULL);
	struct tm tm;
	int cur, y;

	if (gmtime_r(&now, &tm) == NULL)
		return 1900 + yy;
	cur = tm.tm_year + 1900;
	y = cur - cur % 100 + yy;
	if (y > cur + 50)
		y -= 100;
	return y;
}

int static_parse_http_date(const char *s, size_t len, time_t *out)
{
	struct static_scan sc = { s, s + len };
	struct tm tm;
	int year = 0, wday = -1;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	/* Field values arrive already trimmed by the parser, but OWS around a
	 * field value is never part of it (RFC 9110 §5.5). */
	while (sc.p < sc.end && (*sc.p == ' ' || *sc.p == '\t'))
		sc.p++;
	while (sc.end > sc.p && (sc.end[-1] == ' ' || sc.end[-1] == '\t'))
		sc.end--;

	for (int i = 0; i < 7; i++) {
		/* Long names first: "Sunday" must not match as "Sun" + junk. */
		if (static_scan_lit(&sc, static_day_long[i])) {
			wday = i;
			/* rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT
			 * date2 = day "-" month "-" 2DIGIT */
			if (!static_scan_lit(&sc, ", ") || !static_scan_digits(&sc, 2, &tm.tm_mday) ||
			    !static_scan_lit(&sc, "-") || !static_scan_month(&sc, &tm.tm_mon) ||
			    !static_scan_lit(&sc, "-") || !static_scan_digits(&sc, 2, &year) ||
			    !static_scan_lit(&sc, " ") || !static_scan_time(&sc, &tm) ||
			    !static_scan_lit(&sc, " GMT"))
				return -EINVAL;
			year = static_rfc850_year(year);
			goto done;
		}
	}
	for (int i = 0; i < 7; i++) {
		if (static_scan_lit(&sc, static_day_names[i])) {
			wday = i;
			break;
		}
	}
	if (wday < 0)
		return -EINVAL;
	if (static_scan_lit(&sc, ", ")) {
		/* IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
		 * date1 = day SP month SP year */
		if (!static_scan_digits(&sc, 2, &tm.tm_mday) || !static_scan_lit(&sc, " ") ||
		    !static_scan_month(&sc, &tm.tm_mon) || !static_scan_lit(&sc, " ") ||
		    !static_scan_digits(&sc, 4, &year) || !static_scan_lit(&sc, " ") ||
		    !static_scan_time(&sc, &tm) || !static_scan_lit(&sc, " GMT"))
			return -EINVAL;
	} else if (static_scan_lit(&sc, " ")) {
		/* asctime-date = day-name SP date3 SP time-of-day SP year
		 * date3 = month SP ( 2DIGIT / ( SP DIGIT )) */
		if (!static_scan_month(&sc, &tm.tm_mon) || !static_scan_lit(&sc, " "))
			return -EINVAL;
		if (static_scan_lit(&sc, " ")) {
			if (!static_scan_digits(&sc, 1, &tm.tm_mday))
				return -EINVAL;
		} else if (!static_scan_digits(&sc, 2, &tm.tm_mday)) {
			return -EINVAL;
		}
		if (!static_scan_lit(&sc, " ") || !static_scan_time(&sc, &tm) ||
		    !static_scan_lit(&sc, " ") || !static_scan_digits(&sc, 4, &year))
			return -EINVAL;
	} else {
		return -EINVAL;
	}

done:
	if (sc.p != sc.end)
		return -EINVAL;
	tm.tm_year = year - 1900;
	if (!static_date_valid(&tm))
		return -EINVAL;
	/* The day name is redundant; like other servers we do not insist it
	 * agrees with the date (RFC 9110 §5.6.7 asks recipients to be lenient
	 * with dates). */
	t = timegm(&tm);
	if (t == (time_t)-1 && !(year == 1969 && tm.tm_mon == 11 && tm.tm_mday == 31))
		return -EINVAL;
	*out = t;
	return 0;
}

static bool static_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Skip W/ and return the opaque-tag (with its quotes) of an entity-tag at
 * *p, advancing *p; false if it is not an entity-tag (RFC 9110 §8.8.3). */
static bool static_etag_scan(const char **p, const char *end, const char **tag, size_t *tag_len)
{
	const char *q = *p;

	if (end - q >= 2 && q[0] == 'W' && q[1] == '/')
		q += 2;
	if (q >= end || *q != '"')
		return false;
	*tag = q++;
	/* etagc = %x21 / %x23-7E / obs-text */
	while (q < end && *q != '"') {
		unsigned char c = (unsigned char)*q;

		if (c < 0x21 || c == 0x7f)
			return false;
		q++;
	}
	if (q >= end)
		return false;
	q++;
	*tag_len = (size_t)(q - *tag);
	*p = q;
	return true;
}

bool static_etag_matches(const char *header, size_t len, const char *etag)
{
	const char *p = header, *end = header + len;
	const char *cur = etag, *mine;
	size_t mine_len;

	/* Weak comparison (RFC 9110 §8.8.3.2) is what If-None-Match uses
	 * (§13.1.2): opaque-tags equal, W/ ignored on either side. */
	if (!static_etag_scan(&cur, etag + strlen(etag), &mine, &mine_len))
		return false;

	while (p < end && static_is_ows(*p))
		p++;
	while (end > p && static_is_ows(end[-1]))
		end--;
	if (end - p == 1 && *p == '*')
		return true;

	/* #entity-tag; empty list elements are allowed (RFC 9110 §5.6.1.2). */
	while (p < end) {
		const char *tag;
		size_t tag_len;

		if (*p == ',' || static_is_ows(*p)) {
			p++;
			continue;
		}
		if (!static_etag_scan(&p, end, &tag, &tag_len))
			return false; /* malformed: no match, the full response is safe */
		if (tag_len == mine_len && memcmp(tag, mine, mine_len) == 0)
			return true;
		while (p < end && static_is_ows(*p))
			p++;
		if (p < end && *p != ',')
			return false;
	}
	return false;
}

/* ------------------------------------------------------------------ Range */

/* 1*DIGIT into a uint64_t; false on no digits or overflow. */
static bool static_range_number(const char **p, const char *end, uint64_t *out)
{
	const char *q = *p;
	uint64_t v = 0;

	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		unsigned d = (unsigned)(*q - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		q++;
	}
	*p = q;
	*out = v;
	return true;
}

enum static_range_result static_parse_range(const char *header, size_t len, uint64_t size,
					    uint64_t *first, uint64_t *last)
{
	const char *p = header, *end = header + len;
	const char *spec = NULL, *spec_end = NULL;
	uint64_t a = 0, b = 0;
	bool have_first = false, have_last = false;

	while (p < end && static_is_ows(*p))
		p++;
	while (end > p && static_is_ows(end[-1]))
		end--;
	/* range-unit is case-insensitive (RFC 9110 §14.1); only "bytes" is ours. */
	if (end - p < 6 || !static_ascii_caseeq(p, "bytes=", 6))
		return RANGE_NONE;
	p += 6;

	/* range-set = 1#range-spec. Find the one non-empty element; more than
	 * one is a multipart request we answer with 200 (§14.2 allows
	 * ignoring Range). */
	while (p < end) {
		const char *e;

		if (*p == ',' || static_is_ows(*p)) {
			p++;
			continue;
		}
		if (spec != NULL)
			return RANGE_NONE;
		e = p;
		while (e < end && *e != ',' && !static_is_ows(*e))
			e++;
		spec = p;
		spec_end = e;
		p = e;
	}
	if (spec == NULL)
		return RANGE_NONE;

	p = spec;
	if (p < spec_end && *p != '-') {
		if (!static_range_number(&p, spec_end, &a))
			return RANGE_NONE;
		have_first = true;
	}
	if (p >= spec_end || *p != '-')
		return RANGE_NONE;
	p++;
	if (p < spec_end) {
		if (!static_range_number(&p, spec_end, &b))
			return RANGE_NONE;
		have_last = true;
	}
	if (p != spec_end || (!have_first && !have_last))
		return RANGE_NONE;

	if (have_first) {
		/* int-range: last < first makes the range-spec invalid (§14.1.1). */
		if (have_last && b < a)
			return RANGE_NONE;
		/* §14.1.1: satisfiable iff first-pos < length. */
		if (a >= size)
			return RANGE_UNSATISFIABLE;
		*first = a;
		*last = (!have_last || b >= size) ? size - 1 : b;
		return RANGE_OK;
	}
	/* suffix-range: satisfiable iff suffix-length > 0 and length > 0. */
	if (b == 0 || size == 0)
		return RANGE_UNSATISFIABLE;
	*first = b >= size ? 0 : size - b;
	*last = size - 1;
	return RANGE_OK;
}

/* ------------------------------------------------------------------- open */

/* Every open here: never a controlling tty, never inherited, and
 * O_NONBLOCK so that a FIFO (or a device that waits for a carrier) in the
 * root cannot block the worker in open(2) (nginx does the same). Regular
 * files and directories ignore O_NONBLOCK, so it need not be cleared
 * before read/sendfile. */
#define STATIC_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Whether openat2(2) works here: 0 unknown, 1 yes, -1 no (before Linux 5.6,
 * or a seccomp policy that refuses it). Probed once per process. */
static int static_openat2_state;

static long static_openat2(int dirfd, const char *path, uint64_t flags)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = flags;
	/* BENEATH: no absolute path, ".." or symlink may take the lookup out
	 * of dirfd (EXDEV); NO_MAGICLINKS: /proc/self/fd/N style links are
	 * never followed (ELOOP). Checked atomically by the kernel, so no
	 * rename race can walk us out. */
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static bool static_openat2_usable(void)
{
	if (static_openat2_state == 0) {
		long fd = static_openat2(AT_FDCWD, ".", O_PATH | O_CLOEXEC);

		/* Container runtimes' seccomp policies answer unknown syscalls
		 * with ENOSYS or EPERM; neither can be a real answer for
		 * O_PATH on ".". */
		if (fd >= 0) {
			close((int)fd);
			static_openat2_state = 1;
		} else if (errno == ENOSYS || errno == EPERM) {
			static_openat2_state = -1;
		} else {
			static_openat2_state = 1; /* e.g. cwd gone: openat2 itself works */
		}
	}
	return static_openat2_state > 0;
}

/* Without openat2: walk one component at a time with O_NOFOLLOW, so no
 * symlink is ever followed (stricter than RESOLVE_BENEATH, which allows
 * symlinks that stay inside; a symlink is simply not found). The path has
 * no "..", so the walk can only go down. */
static int static_open_walk(int root_fd, const char *rel, int flags)
{
	int dir = root_fd;
	const char *p = rel;

	for (;;) {
		const char *slash = strchr(p, '/');
		char comp[NAME_MAX + 1];
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		int fd;

		if (n > NAME_MAX) {
			fd = -ENAMETOOLONG;
		} else {
			memcpy(comp, p, n);
			comp[n] = '\0';
			if (slash == NULL)
				fd = openat(dir, comp, flags | O_NOFOLLOW);
			else
				fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				fd = -errno;
		}
		if (dir != root_fd)
			close(dir);
		if (fd < 0 || slash == NULL)
			return fd;
		dir = fd;
		p = slash + 1;
	}
}

/* Open rel (relative, no leading '/', "." for the root) under root_fd with
 * the configured symlink policy; fd or -errno. */
static int static_open_rel(int root_fd, const char *rel, int flags, bool follow_symlinks)
{
	int fd;

	if (follow_symlinks) {
		/* The operator allowed links to leave the root; the path itself
		 * still cannot (normalised, no ".."). */
		fd = openat(root_fd, rel, flags);
		return fd < 0 ? -errno : fd;
	}
	if (!static_openat2_usable())
		return static_open_walk(root_fd, rel, flags);
	for (int tries = 0;; tries++) {
		long r = static_openat2(root_fd, rel, (uint64_t)flags);

		if (r >= 0)
			return (int)r;
		if (errno == ENOSYS) {
			/* Refused after the probe (a seccomp filter installed
			 * later): walk from now on. */
			static_openat2_state = -1;
			return static_open_walk(root_fd, rel, flags);
		}
		/* EAGAIN: a concurrent rename made the kernel unsure a ".."
		 * in a symlink stayed beneath; openat2(2) says retry. */
		if (errno != EAGAIN || tries >= 3)
			return -errno;
	}
}

/* Map an open(2) failure to a status. Leaving the root (EXDEV from
 * RESOLVE_BENEATH) and symlink loops (ELOOP, also O_NOFOLLOW) answer 404,
 * like a missing file, so that probing cannot tell what lies outside. */
static int static_open_status(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -ELOOP:
	case -EXDEV:
	case -ENAMETOOLONG:
		return 404;
	case -EACCES:
	case -EPERM:
	case -ENXIO:  /* a unix socket in the root */
	case -ENODEV: /* a device node without a driver */
		return 403;
	default:
		return 500;
	}
}

static void static_set_name(struct static_file *f, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n >= sizeof(f->type_name))
		n = sizeof(f->type_name) - 1;
	memcpy(f->type_name, base, n);
	f->type_name[n] = '\0';
}

static int static_fail(struct static_file *f, int fd, int status)
{
	if (fd >= 0)
		close(fd);
	f->fd = -1;
	f->directory_listing = false;
	f->status = status;
	return status;
}

/* Whether a normalised path has a ".." component: static_normalize_path()
 * never produces one, but with follow_symlinks a plain openat(2) would
 * honour it, so check again rather than trust the caller. */
static bool static_path_has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

int static_open(int root_fd, const char *norm_path, const struct static_options *o, struct static_file *f)
{
	char rel[PATH_MAX];
	size_t len;
	bool want_dir, readable = true;
	int fd;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (norm_path[0] != '/' || static_path_has_dotdot(norm_path))
		return static_fail(f, -1, 400);
	/* Dotfiles (.git, .env, .htpasswd) are where secrets live. */
	if (!o->dotfiles && static_path_has_dotfile(norm_path))
		return static_fail(f, -1, 404);

	len = strlen(norm_path);
	want_dir = norm_path[len - 1] == '/';
	if (len == 1) {
		memcpy(rel, ".", 2);
		len = 1;
	} else {
		/* Drop the leading '/' and any trailing '/': whether a
		 * directory was asked for is decided after fstat. */
		len -= want_dir ? 2 : 1;
		if (len >= sizeof(rel))
			return static_fail(f, -1, 404);
		memcpy(rel, norm_path + 1, len);
		rel[len] = '\0';
	}

	fd = static_open_rel(root_fd, rel, STATIC_OPEN_FLAGS, o->follow_symlinks);
	if (fd == -EACCES) {
		/* A directory may be searchable (x) but not readable (r):
		 * its index can still be served, only a listing cannot. */
		fd = static_open_rel(root_fd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC, o->follow_symlinks);
		if (fd < 0)
			return static_fail(f, -1, 403);
		readable = false;
	}
	if (fd < 0)
		return static_fail(f, -1, static_open_status(fd));
	if (fstat(fd, &f->st) < 0)
		return static_fail(f, fd, 500);

	if (S_ISREG(f->st.st_mode)) {
		if (want_dir)
			return static_fail(f, fd, 404); /* "/file.txt/" names no directory */
		f->fd = fd;
		f->status = 200;
		static_set_name(f, rel);
		return 200;
	}
	if (!S_ISDIR(f->st.st_mode))
		return static_fail(f, fd, 403); /* FIFO, socket, device: never served */

	/* A directory without its '/': relative links in its index would
	 * resolve against the parent, so redirect (what nginx and Apache do). */
	if (!want_dir)
		return static_fail(f, fd, 301);

	if (o->index != NULL && o->index[0] != '\0') {
		char path[PATH_MAX];
		struct stat st;
		int n, ifd;

		/* Open the index from the root, not from the directory fd, so
		 * that RESOLVE_BENEATH still means "beneath the root": an index
		 * symlink to "../shared/index.html" inside the root is fine. */
		if (len == 1 && rel[0] == '.')
			n = snprintf(path, sizeof(path), "%s", o->index);
		else
			n = snprintf(path, sizeof(path), "%s/%s", rel, o->index);
		if (n < 0 || (size_t)n >= sizeof(path))
			return static_fail(f, fd, 404);
		ifd = static_open_rel(root_fd, path, STATIC_OPEN_FLAGS, o->follow_symlinks);
		if (ifd >= 0) {
			if (fstat(ifd, &st) == 0 && S_ISREG(st.st_mode)) {
				close(fd);
				f->fd = ifd;
				f->st = st;
				f->status = 200;
				static_set_name(f, path);
				return 200;
			}
			close(ifd); /* "index.html" that is a directory or FIFO: no index */
		} else if (ifd != -ENOENT && ifd != -ENOTDIR && ifd != -ELOOP && ifd != -EXDEV) {
			/* An index that exists but cannot be read is an error,
			 * not a reason to list the directory instead. */
			return static_fail(f, fd, static_open_status(ifd));
		}
	}

	/* No index: a listing if enabled, else 403 like nginx (the directory
	 * exists, we just do not show it). An O_PATH fd cannot be read. */
	if (o->autoindex && readable) {
		f->fd = fd;
		f->status = 200;
		f->directory_listing = true;
		f->type_name[0] = '\0'; /* the listing is HTML we generate */
		return 200;
	}
	return static_fail(f, fd, 403);
}
