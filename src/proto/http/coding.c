/* http coding: see coding.h. Accept-Encoding (RFC 9110 §12.5.3) is read
 * leniently: an element whose q is not a qvalue is skipped (as if not
 * sent), unknown parameters are ignored, and "x-gzip" is gzip (§8.4.1.3). */
#include "proto/http/coding.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/http/ascii.h"
#include "proto/http/parse.h"

static const struct {
	const char *name, *suffix, *etag;
} http_coding_table[HTTP_CODINGS] = {
	[HTTP_CODING_BR] = { "br", ".br", "-br" },
	[HTTP_CODING_GZIP] = { "gzip", ".gz", "-gz" },
	[HTTP_CODING_ZSTD] = { "zstd", ".zst", "-zst" },
};

const char *http_coding_name(int coding)
{
	return coding >= 0 && coding < HTTP_CODINGS ? http_coding_table[coding].name : "identity";
}

const char *http_coding_suffix(int coding)
{
	return coding >= 0 && coding < HTTP_CODINGS ? http_coding_table[coding].suffix : "";
}

/* The coding called name[0, len) (case-insensitive), or -1. */
static int http_coding_find(const char *name, size_t len)
{
	for (int c = 0; c < HTTP_CODINGS; c++) {
		const char *n = http_coding_table[c].name;
		if (strlen(n) == len && http_ascii_caseeq(name, n, len))
			return c;
	}
	if (len == 6 && http_ascii_caseeq(name, "x-gzip", 6))
		return HTTP_CODING_GZIP;
	return -1;
}

int http_precompressed_parse(const char *value, struct http_precompressed *out, char *why, size_t why_len)
{
	static const char expected[] = "expected 'off' or a list of br, gzip, zstd (each once, separated by spaces)";
	struct http_precompressed p = { 0 };
	if (strcmp(value, "off") == 0) {
		*out = p;
		return 0;
	}
	const char *s = value;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		size_t len = strcspn(s, " \t,");
		if (len == 0)
			break;
		int c = len == 6 ? -1 : http_coding_find(s, len); /* not "x-gzip" here */
		bool twice = false;
		for (unsigned i = 0; c >= 0 && i < p.n; i++)
			twice |= p.order[i] == c;
		if (c < 0 || twice) {
			snprintf(why, why_len, "%s", expected);
			return -EINVAL;
		}
		p.order[p.n++] = (unsigned char)c;
		s += len;
	}
	if (p.n == 0) {
		snprintf(why, why_len, "%s", expected);
		return -EINVAL;
	}
	*out = p;
	return 0;
}

void http_coding_etag(char *etag, size_t cap, int coding)
{
	size_t n = strlen(etag);
	const char *suffix = http_coding_table[coding].etag;
	size_t sl = strlen(suffix);
	if (n < 2 || etag[n - 1] != '"' || n + sl + 1 > cap)
		return;
	memcpy(etag + n - 1, suffix, sl);
	memcpy(etag + n - 1 + sl, "\"", 2);
}

/* ------------------------------------------------------------ Accept-Encoding */

/* What the Accept-Encoding lines say: q in thousandths, -1 where a coding
 * is not named. */
struct http_accept {
	int q[HTTP_CODINGS];
	int star;
	int identity;
};

static bool http_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* A qvalue (§12.4.2) in thousandths, or -1. */
static int http_qvalue(const char *p, size_t len)
{
	if (len == 0 || (p[0] != '0' && p[0] != '1') || (len > 1 && p[1] != '.') || len > 5)
		return -1;
	int q = (p[0] - '0') * 1000, scale = 100;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* One element ("gzip;q=0.5") into a. */
static void http_accept_element(const char *p, size_t len, struct http_accept *a)
{
	size_t n = 0;
	while (n < len && p[n] != ';' && !http_ows(p[n]))
		n++;
	if (n == 0)
		return;
	int q = 1000;
	size_t i = n;
	while (i < len) {
		while (i < len && (http_ows(p[i]) || p[i] == ';'))
			i++;
		size_t start = i;
		while (i < len && p[i] != ';')
			i++;
		size_t end = i;
		while (end > start && http_ows(p[end - 1]))
			end--;
		if (end - start >= 2 && (p[start] | 0x20) == 'q' && p[start + 1] == '=') {
			q = http_qvalue(p + start + 2, end - start - 2);
			if (q < 0)
				return; /* not a qvalue: the element is skipped */
		}
	}
	int *slot;
	int c = http_coding_find(p, n);
	if (c >= 0)
		slot = &a->q[c];
	else if (n == 1 && p[0] == '*')
		slot = &a->star;
	else if (n == 8 && http_ascii_caseeq(p, "identity", 8))
		slot = &a->identity;
	else
		return;
	if (q > *slot)
		*slot = q; /* named twice: the better one */
}

/* Every Accept-Encoding line of req into a; false when there is none. */
static bool http_accept_read(const struct http_request *req, struct http_accept *a)
{
	bool any = false;
	for (int c = 0; c < HTTP_CODINGS; c++)
		a->q[c] = -1;
	a->star = a->identity = -1;
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		if (h->name.len != 15 || !http_str_eq_ci(h->name, "accept-encoding"))
			continue;
		any = true;
		const char *p = h->value.p, *end = p + h->value.len;
		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *stop = comma ? comma : end;
			while (p < stop && http_ows(*p))
				p++;
			size_t len = (size_t)(stop - p);
			while (len && http_ows(p[len - 1]))
				len--;
			http_accept_element(p, len, a);
			p = comma ? comma + 1 : end;
		}
	}
	return any;
}

int http_coding_choose(const struct http_request *req, const struct http_precompressed *p, unsigned available)
{
	struct http_accept a;
	if (!available || !http_accept_read(req, &a))
		return HTTP_CODING_IDENTITY;
	int best = HTTP_CODING_IDENTITY, best_q = 0;
	for (unsigned i = 0; i < p->n; i++) {
		int c = p->order[i];
		if (!(available & (1u << c)))
			continue;
		int q = a.q[c] >= 0 ? a.q[c] : a.star;
		if (q > best_q) {
			best = c;
			best_q = q;
		}
	}
	/* Identity only when the request says it prefers it: its own q, or
	 * '*' standing for it; unnamed, it yields to any acceptable variant. */
	int identity_q = a.identity >= 0 ? a.identity : a.star;
	return best_q > 0 && best_q >= identity_q ? best : HTTP_CODING_IDENTITY;
}
