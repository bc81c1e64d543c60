/* fields: the grammar of the HTTP fields a file response reads and writes:
 * HTTP-dates (RFC 9110 §5.6.7), entity-tags (§8.8.3) and byte ranges
 * (§14.1). Pure functions, no allocation; unit-tested in
 * tests/unit/test_http_path_mime_fields.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timegm; autoconf defines it in the real build */
#endif
#include "proto/http/fields.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http/ascii.h"

/* ------------------------------------------------------------- validators */

void http_etag_format(const struct stat *st, char *out, size_t out_len)
{
	/* Size and mtime in ns change whenever a file is rewritten in the
	 * common ways; unsigned arithmetic so an odd mtime cannot overflow. */
	uint64_t ns = (uint64_t)st->st_mtim.tv_sec * UINT64_C(1000000000) + (uint64_t)st->st_mtim.tv_nsec;

	if (out_len == 0)
		return;
	snprintf(out, out_len, "\"%jx-%jx\"", (uintmax_t)st->st_size, (uintmax_t)ns);
}

static const char fields_day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const fields_day_long[7] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char fields_month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Our own names, not strftime: the C locale must not matter (RFC 9110
 * §5.6.7 names are case-sensitive English). */
void http_date_format(time_t t, char *out, size_t out_len)
{
	struct tm tm;

	if (out_len == 0)
		return;
	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(out, out_len, "%s, %02d %s %04d %02d:%02d:%02d GMT", fields_day_names[tm.tm_wday],
		 tm.tm_mday, fields_month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* A modification time in the future is sent as now (RFC 9110 §8.8.2.1), so
 * a file dated ahead cannot make a client keep a copy that is later
 * rewritten. */
void http_validators_of(const struct stat *st, time_t now, struct http_validators *v)
{
	struct stat clamped = *st;
	if (clamped.st_mtim.tv_sec > now) {
		clamped.st_mtim.tv_sec = now;
		clamped.st_mtim.tv_nsec = 0;
	}
	v->mtime = clamped.st_mtim.tv_sec;
	http_etag_format(&clamped, v->etag, sizeof(v->etag));
	http_date_format(v->mtime, v->lastmod, sizeof(v->lastmod));
}

size_t http_file_fields_format(char *out, size_t cap, const char *type, const struct http_validators *v)
{
	int n = snprintf(out, cap, "Content-Type: %s\r\nETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
			 type, v->etag, v->lastmod);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A tiny cursor over the header value: each step consumes exactly what the
 * grammar says or fails. */
struct fields_scan {
	const char *p, *end;
};

static bool fields_scan_lit(struct fields_scan *sc, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0)
		return false;
	sc->p += n;
	return true;
}

static bool fields_scan_digits(struct fields_scan *sc, size_t n, int *out)
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

static bool fields_scan_month(struct fields_scan *sc, int *mon)
{
	for (int i = 0; i < 12; i++) {
		if (fields_scan_lit(sc, fields_month_names[i])) {
			*mon = i;
			return true;
		}
	}
	return false;
}

/* time-of-day = hour ":" minute ":" second */
static bool fields_scan_time(struct fields_scan *sc, struct tm *tm)
{
	return fields_scan_digits(sc, 2, &tm->tm_hour) && fields_scan_lit(sc, ":") &&
	       fields_scan_digits(sc, 2, &tm->tm_min) && fields_scan_lit(sc, ":") &&
	       fields_scan_digits(sc, 2, &tm->tm_sec);
}

static bool fields_date_valid(const struct tm *tm)
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
static int fields_rfc850_year(int yy)
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

/* The three HTTP-date forms of RFC 9110 §5.6.7, told apart by what follows
 * the day name; one piece so the grammar of each reads as a single chain. */
int http_date_parse(const char *s, size_t len, time_t *out)
{
	struct fields_scan sc = { s, s + len };
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
		if (fields_scan_lit(&sc, fields_day_long[i])) {
			wday = i;
			/* rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT
			 * date2 = day "-" month "-" 2DIGIT */
			if (!fields_scan_lit(&sc, ", ") || !fields_scan_digits(&sc, 2, &tm.tm_mday) ||
			    !fields_scan_lit(&sc, "-") || !fields_scan_month(&sc, &tm.tm_mon) ||
			    !fields_scan_lit(&sc, "-") || !fields_scan_digits(&sc, 2, &year) ||
			    !fields_scan_lit(&sc, " ") || !fields_scan_time(&sc, &tm) ||
			    !fields_scan_lit(&sc, " GMT"))
				return -EINVAL;
			year = fields_rfc850_year(year);
			goto done;
		}
	}
	for (int i = 0; i < 7; i++) {
		if (fields_scan_lit(&sc, fields_day_names[i])) {
			wday = i;
			break;
		}
	}
	if (wday < 0)
		return -EINVAL;
	if (fields_scan_lit(&sc, ", ")) {
		/* IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
		 * date1 = day SP month SP year */
		if (!fields_scan_digits(&sc, 2, &tm.tm_mday) || !fields_scan_lit(&sc, " ") ||
		    !fields_scan_month(&sc, &tm.tm_mon) || !fields_scan_lit(&sc, " ") ||
		    !fields_scan_digits(&sc, 4, &year) || !fields_scan_lit(&sc, " ") ||
		    !fields_scan_time(&sc, &tm) || !fields_scan_lit(&sc, " GMT"))
			return -EINVAL;
	} else if (fields_scan_lit(&sc, " ")) {
		/* asctime-date = day-name SP date3 SP time-of-day SP year
		 * date3 = month SP ( 2DIGIT / ( SP DIGIT )) */
		if (!fields_scan_month(&sc, &tm.tm_mon) || !fields_scan_lit(&sc, " "))
			return -EINVAL;
		if (fields_scan_lit(&sc, " ")) {
			if (!fields_scan_digits(&sc, 1, &tm.tm_mday))
				return -EINVAL;
		} else if (!fields_scan_digits(&sc, 2, &tm.tm_mday)) {
			return -EINVAL;
		}
		if (!fields_scan_lit(&sc, " ") || !fields_scan_time(&sc, &tm) ||
		    !fields_scan_lit(&sc, " ") || !fields_scan_digits(&sc, 4, &year))
			return -EINVAL;
	} else {
		return -EINVAL;
	}

done:
	if (sc.p != sc.end)
		return -EINVAL;
	tm.tm_year = year - 1900;
	if (!fields_date_valid(&tm))
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

static bool fields_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Skip W/ and return the opaque-tag (with its quotes) of an entity-tag at
 * *p, advancing *p; false if it is not an entity-tag (RFC 9110 §8.8.3). */
static bool fields_etag_scan(const char **p, const char *end, const char **tag, size_t *tag_len)
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

bool http_etag_matches(const char *header, size_t len, const char *etag, enum http_etag_cmp cmp)
{
	const char *p = header, *end = header + len;
	const char *cur = etag, *mine;
	size_t mine_len;

	/* Weak comparison (RFC 9110 §8.8.3.2, for If-None-Match, §13.1.2):
	 * opaque-tags equal, W/ ignored on either side. Strong (If-Match,
	 * §13.1.1): both must also be strong. */
	bool mine_weak = etag[0] == 'W';
	if (!fields_etag_scan(&cur, etag + strlen(etag), &mine, &mine_len))
		return false;

	while (p < end && fields_is_ows(*p))
		p++;
	while (end > p && fields_is_ows(end[-1]))
		end--;
	if (end - p == 1 && *p == '*')
		return true;

	/* #entity-tag; empty list elements are allowed (RFC 9110 §5.6.1.2). */
	while (p < end) {
		const char *tag;
		size_t tag_len;

		if (*p == ',' || fields_is_ows(*p)) {
			p++;
			continue;
		}
		bool weak = *p == 'W';
		if (!fields_etag_scan(&p, end, &tag, &tag_len))
			return false; /* malformed: no match, the full response is safe */
		if (cmp == HTTP_ETAG_STRONG && (weak || mine_weak))
			continue;
		if (tag_len == mine_len && memcmp(tag, mine, mine_len) == 0)
			return true;
		while (p < end && fields_is_ows(*p))
			p++;
		if (p < end && *p != ',')
			return false;
	}
	return false;
}

/* ------------------------------------------------------------------ Range */

/* One range-spec as written. */
struct http_range_spec {
	uint64_t first, last;
	bool have_first, have_last;
};

/* 1*DIGIT into a uint64_t; false on no digits or overflow. */
static bool fields_range_number(const char **p, const char *end, uint64_t *out)
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

/* One range-spec (RFC 9110 §14.1.1) in spec[0, n): int-range "a-[b]" or
 * suffix-range "-b". Syntax only; false if it is not one. */
static bool fields_range_spec(const char *spec, size_t n, struct http_range_spec *out)
{
	const char *p = spec, *end = spec + n;

	out->have_first = out->have_last = false;
	if (p < end && *p != '-') {
		if (!fields_range_number(&p, end, &out->first))
			return false;
		out->have_first = true;
	}
	if (p >= end || *p != '-')
		return false;
	p++;
	if (p < end) {
		if (!fields_range_number(&p, end, &out->last))
			return false;
		out->have_last = true;
	}
	if (p != end || (!out->have_first && !out->have_last))
		return false;
	/* int-range: last < first makes the range-spec invalid (§14.1.1). */
	return !(out->have_first && out->have_last && out->last < out->first);
}

static int fields_range_cmp(const void *a, const void *b)
{
	const struct http_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Sort and merge overlapping or adjacent ranges (§14.6 lets a server
 * coalesce; a client asking 0-1,1-2 gets one part). */
static void fields_range_coalesce(struct http_ranges *rs)
{
	size_t n = 0;

	qsort(rs->r, rs->n, sizeof(rs->r[0]), fields_range_cmp);
	for (size_t i = 0; i < rs->n; i++) {
		if (n > 0 && rs->r[i].first <= rs->r[n - 1].last + 1) {
			if (rs->r[i].last > rs->r[n - 1].last)
				rs->r[n - 1].last = rs->r[i].last;
			continue;
		}
		rs->r[n++] = rs->r[i];
	}
	rs->n = n;
}

enum http_range_result http_range_parse(const char *header, size_t len, uint64_t size,
					unsigned max_ranges, struct http_ranges *out)
{
	const char *p = header, *end = header + len;
	uint64_t total = 0;
	unsigned specs = 0;
	bool empty_whole = false;

	out->n = 0;
	while (p < end && fields_is_ows(*p))
		p++;
	while (end > p && fields_is_ows(end[-1]))
		end--;
	/* range-unit is case-insensitive (RFC 9110 §14.1); only "bytes" is ours. */
	if (end - p < 6 || !http_ascii_caseeq(p, "bytes=", 6))
		return RANGE_NONE;
	p += 6;

	/* range-set = 1#range-spec; empty list elements are allowed. Any
	 * invalid element makes the whole header one we ignore (§14.2). */
	while (p < end) {
		struct http_range_spec sp;
		const char *e;

		if (*p == ',' || fields_is_ows(*p)) {
			p++;
			continue;
		}
		e = p;
		while (e < end && *e != ',' && !fields_is_ows(*e))
			e++;
		if (!fields_range_spec(p, (size_t)(e - p), &sp))
			return RANGE_NONE;
		p = e;
		if (++specs > max_ranges || specs > HTTP_RANGES_MAX)
			return RANGE_NONE; /* as nginx: as if there were no Range */
		if (sp.have_first) {
			/* §14.1.1: satisfiable iff first-pos < length. */
			if (sp.first >= size)
				continue;
			out->r[out->n].first = sp.first;
			out->r[out->n].last = (!sp.have_last || sp.last >= size) ? size - 1 : sp.last;
		} else {
			/* suffix-range: satisfiable iff suffix-length > 0; of an
			 * empty representation the answer is all of it, which is
			 * nothing (§14.1.2; nginx answers 200 too). */
			if (sp.last == 0)
				continue;
			if (size == 0) {
				empty_whole = true;
				continue;
			}
			out->r[out->n].first = sp.last >= size ? 0 : size - sp.last;
			out->r[out->n].last = size - 1;
		}
		total += out->r[out->n].last - out->r[out->n].first + 1;
		out->n++;
	}
	if (specs == 0 || empty_whole)
		return RANGE_NONE;
	if (out->n == 0)
		return RANGE_UNSATISFIABLE;
	/* Ranges that add up to more than the file are cheaper as the file
	 * (and how a client asks for the same bytes many times over). */
	if (total > size)
		return RANGE_NONE;
	fields_range_coalesce(out);
	return RANGE_OK;
}

size_t http_u64_dec(uint64_t v, char out[static 20])
{
	/* Every response's Content-Length goes through here: count the
	 * digits, then write them from the end, two at a time. */
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";
	size_t n = 1;
	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	size_t i = n;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		out[--i] = pairs[d + 1];
		out[--i] = pairs[d];
	}
	if (v >= 10) {
		out[--i] = pairs[v * 2 + 1];
		out[--i] = pairs[v * 2];
	} else {
		out[--i] = (char)('0' + v);
	}
	return n;
}
