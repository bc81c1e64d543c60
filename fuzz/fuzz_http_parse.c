/* fuzz_http_parse: libFuzzer target for http_parse. The input is raw bytes
 * as a client would send them (the seeds in fuzz/corpus are plain requests).
 * For a few sets of limits it parses the input whole, then again in pieces
 * whose sizes come from a hash of the input, and checks that every way of
 * splitting gives the same answer and that the request points inside the
 * input; a parsed head's body (and, independently, the whole input as a
 * chunked body) goes through the body reader the same way. Any broken
 * invariant aborts. Prefixes are copied into buffers of exactly their
 * length, so ASan sees any read past len. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/http/parse.h"

static const struct http_limits fuzz_limits[] = {
	{ 8192, 8192, 65536, 100, UINT64_MAX },
	{ 64, 48, 256, 4, 100 },
	{ 16, 16, 40, 1, 0 },
};

static struct http_request fuzz_req_a, fuzz_req_b; /* ~4 KiB each */

/* xorshift over a seed from the input: the rhythm of the pieces. */
static uint64_t fuzz_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ULL;
	return h | 1;
}

static void fuzz_check_slice(struct http_str s, const char *buf, size_t head_len)
{
	if (s.p == NULL) {
		FUZZ_CHECK(s.len == 0);
		return;
	}
	FUZZ_CHECK(s.p >= buf && s.p <= buf + head_len && s.len <= head_len - (size_t)(s.p - buf));
}

static bool fuzz_is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* What a successful parse promises. */
static void fuzz_check_request(const char *buf, size_t len, int r, const struct http_request *req,
			       const struct http_limits *lim)
{
	size_t head_len = (size_t)r;

	FUZZ_CHECK(head_len <= len && head_len == req->head_len);
	FUZZ_CHECK(head_len <= lim->max_header_size);
	FUZZ_CHECK(head_len >= 4 && memcmp(buf + head_len - 4, "\r\n\r\n", 4) == 0);
	FUZZ_CHECK(req->version_minor <= 1);
	FUZZ_CHECK(req->n_headers <= lim->max_headers && req->n_headers <= HTTP_MAX_HEADERS);
	FUZZ_CHECK(req->method_str.len > 0 && req->target.len > 0);
	FUZZ_CHECK(req->method_str.len + 1 + req->target.len + 10 <= head_len);
	for (size_t i = 0; i < req->method_str.len; i++)
		FUZZ_CHECK(fuzz_is_tchar((unsigned char)req->method_str.p[i]));
	if (req->method != HTTP_METHOD_OTHER) {
		const char *name = http_method_name(req->method);
		FUZZ_CHECK(strlen(name) == req->method_str.len &&
			   memcmp(name, req->method_str.p, req->method_str.len) == 0);
	}
	for (size_t i = 0; i < req->target.len; i++) {
		unsigned char c = (unsigned char)req->target.p[i];
		FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#');
	}
	fuzz_check_slice(req->method_str, buf, head_len);
	fuzz_check_slice(req->target, buf, head_len);
	fuzz_check_slice(req->path, buf, head_len);
	fuzz_check_slice(req->query, buf, head_len);
	fuzz_check_slice(req->host, buf, head_len);
	fuzz_check_slice(req->if_none_match, buf, head_len);
	fuzz_check_slice(req->if_modified_since, buf, head_len);
	fuzz_check_slice(req->range, buf, head_len);
	fuzz_check_slice(req->if_range, buf, head_len);
	fuzz_check_slice(req->user_agent, buf, head_len);
	fuzz_check_slice(req->referer, buf, head_len);
	if (req->target.p[0] == '/')
		FUZZ_CHECK(req->path.p == req->target.p && req->path.len <= req->target.len);
	FUZZ_CHECK(req->method == HTTP_METHOD_CONNECT ? req->path.len == 0 : req->path.len > 0);
	if (req->path.p != NULL) /* inside the target, starting with '/' unless "*" */
		FUZZ_CHECK(req->path.p >= req->target.p &&
			   req->path.p + req->path.len <= req->target.p + req->target.len &&
			   (req->path.len == 0 || req->path.p[0] == '/' || req->path.p[0] == '*'));
	if (req->query.p != NULL)
		FUZZ_CHECK(req->query.p[-1] == '?' && req->query.p + req->query.len <= req->target.p + req->target.len);
	if (req->version_minor == 1)
		FUZZ_CHECK(req->host.p != NULL);
	for (unsigned i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		fuzz_check_slice(h->name, buf, head_len);
		fuzz_check_slice(h->value, buf, head_len);
		FUZZ_CHECK(h->name.len > 0 && h->name.p[h->name.len] == ':');
		for (size_t j = 0; j < h->name.len; j++)
			FUZZ_CHECK(fuzz_is_tchar((unsigned char)h->name.p[j]));
		for (size_t j = 0; j < h->value.len; j++) {
			unsigned char c = (unsigned char)h->value.p[j];
			FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		if (h->value.len > 0) {
			FUZZ_CHECK(h->value.p[0] != ' ' && h->value.p[0] != '\t');
			FUZZ_CHECK(h->value.p[h->value.len - 1] != ' ' && h->value.p[h->value.len - 1] != '\t');
		}
	}
	switch (req->body) {
	case HTTP_BODY_NONE:
		FUZZ_CHECK(req->content_length == 0);
		break;
	case HTTP_BODY_LENGTH:
		FUZZ_CHECK(req->content_length > 0 && req->content_length <= lim->max_body_size);
		FUZZ_CHECK(req->content_length <= (uint64_t)INT64_MAX);
		break;
	case HTTP_BODY_CHUNKED:
		FUZZ_CHECK(req->version_minor == 1 && req->content_length == 0);
		break;
	default:
		FUZZ_CHECK(0);
	}
	if (req->version_minor == 0)
		FUZZ_CHECK(!req->expect_continue);
}

static bool fuzz_status_ok(int r)
{
	return r == -400 || r == -413 || r == -414 || r == -417 || r == -431 || r == -505;
}

/* A refusal is -EBADMSG with the status in the parser; as -status here, so
 * that results compare with one ==. */
static int fuzz_parse(struct http_parser *p, const char *b, size_t n, const struct http_limits *lim,
		      struct http_request *req)
{
	int r = http_parse_request(p, b, n, lim, req);
	FUZZ_CHECK(r >= 0 || r == -EBADMSG);
	return r == -EBADMSG ? -p->status : r;
}

static int fuzz_parse_copy(struct http_parser *p, const uint8_t *data, size_t n,
			   const struct http_limits *lim, struct http_request *req, char **keep)
{
	char *b = malloc(n ? n : 1);
	FUZZ_CHECK(b != NULL);
	memcpy(b, data, n);
	int r = fuzz_parse(p, b, n, lim, req);
	if (keep)
		*keep = b;
	else
		free(b);
	return r;
}

/* Same request, both parsed: the same fields, by offset. */
static void fuzz_same_request(const char *a, const struct http_request *ra,
			      const char *b, const struct http_request *rb)
{
	FUZZ_CHECK(ra->head_len == rb->head_len && ra->method == rb->method);
	FUZZ_CHECK(ra->version_minor == rb->version_minor && ra->n_headers == rb->n_headers);
	FUZZ_CHECK(ra->keep_alive == rb->keep_alive && ra->expect_continue == rb->expect_continue);
	FUZZ_CHECK(ra->body == rb->body && ra->content_length == rb->content_length);
	FUZZ_CHECK(ra->target.p - a == rb->target.p - b && ra->target.len == rb->target.len);
	FUZZ_CHECK(ra->path.len == rb->path.len && ra->query.len == rb->query.len);
	FUZZ_CHECK(ra->host.len == rb->host.len);
}

/* Feed len bytes of body to a reader in pieces from the seed (all at once
 * when seed is 0); returns the result and the bytes used. */
static int fuzz_body(const struct http_request *req, uint64_t max, const uint8_t *data, size_t len,
		     uint64_t seed, size_t *used_total)
{
	struct http_body_reader br;
	size_t at = 0;
	int r = 0;

	http_body_init(&br, req, max);
	*used_total = 0;
	do {
		size_t piece = len - at;
		if (seed != 0) {
			uint64_t x = fuzz_next(&seed);
			size_t want = (x & 3) == 0 ? 1 : (size_t)(x >> 8) % 64;
			if (want < piece)
				piece = want;
		}
		char *b = malloc(piece ? piece : 1);
		FUZZ_CHECK(b != NULL);
		memcpy(b, data + at, piece);
		size_t used = (size_t)-1;
		r = http_body_consume(&br, b, piece, &used);
		FUZZ_CHECK(r >= 0 || r == -EBADMSG);
		if (r == -EBADMSG)
			r = -br.status;
		free(b);
		FUZZ_CHECK(used <= piece);
		FUZZ_CHECK(r == 1 || r == 0 || r == -400 || r == -413);
		FUZZ_CHECK(r != 0 || used == piece);
		FUZZ_CHECK(br.total <= max);
		*used_total += used;
		at += used;
		if (r != 0)
			break;
	} while (at < len);
	return r;
}

static void fuzz_body_both_ways(const struct http_request *req, uint64_t max,
				const uint8_t *data, size_t len, uint64_t seed)
{
	size_t used_whole, used_split;
	int whole = fuzz_body(req, max, data, len, 0, &used_whole);
	int split = fuzz_body(req, max, data, len, seed, &used_split);
	FUZZ_CHECK(whole == split && used_whole == used_split);
	if (req->body == HTTP_BODY_LENGTH && whole == 1)
		FUZZ_CHECK(used_whole == req->content_length);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = fuzz_hash(data, size);

	for (size_t l = 0; l < sizeof(fuzz_limits) / sizeof(fuzz_limits[0]); l++) {
		const struct http_limits *lim = &fuzz_limits[l];
		struct http_parser p;
		char *whole_buf;

		/* whole */
		http_parser_init(&p);
		int whole = fuzz_parse_copy(&p, data, size, lim, &fuzz_req_a, &whole_buf);
		FUZZ_CHECK(whole >= 0 || fuzz_status_ok(whole));
		if (whole > 0) {
			fuzz_check_request(whole_buf, size, whole, &fuzz_req_a, lim);
			/* asked again: the same */
			FUZZ_CHECK(fuzz_parse(&p, whole_buf, size, lim, &fuzz_req_b) == whole);
		}

		/* growing, in pieces of 1..32 bytes (sometimes one byte at a time) */
		uint64_t s = seed + l;
		bool bytewise = size <= 512 && (fuzz_next(&s) & 7) == 0;
		size_t n = 0;
		int r = 0;
		http_parser_init(&p);
		while (n < size) {
			size_t step = bytewise ? 1 : 1 + (size_t)(fuzz_next(&s) % 32);
			n = step < size - n ? n + step : size;
			char *b;
			r = fuzz_parse_copy(&p, data, n, lim, &fuzz_req_b, &b);
			if (r > 0) {
				fuzz_check_request(b, n, r, &fuzz_req_b, lim);
				FUZZ_CHECK(whole > 0);
				fuzz_same_request(whole_buf, &fuzz_req_a, b, &fuzz_req_b);
			}
			free(b);
			if (r != 0)
				break;
		}
		/* an answer never comes early, and does not depend on the split */
		FUZZ_CHECK(r == whole);

		/* two pieces */
		if (size > 1) {
			size_t k = 1 + (size_t)(fuzz_next(&s) % (size - 1));
			http_parser_init(&p);
			r = fuzz_parse_copy(&p, data, k, lim, &fuzz_req_b, NULL);
			FUZZ_CHECK(r == 0 || (whole < 0 && r == whole) || (whole > 0 && r == whole && (size_t)whole <= k));
			if (r == 0)
				r = fuzz_parse_copy(&p, data, size, lim, &fuzz_req_b, NULL);
			FUZZ_CHECK(r == whole);
		}

		/* the body after a head */
		if (whole > 0) {
			const uint8_t *rest = data + whole;
			size_t rest_len = size - (size_t)whole;
			fuzz_body_both_ways(&fuzz_req_a, lim->max_body_size, rest, rest_len, s);
		}
		free(whole_buf);
	}

	/* the whole input as a chunked body, whatever it is */
	static const struct http_request chunked = { .body = HTTP_BODY_CHUNKED };
	fuzz_body_both_ways(&chunked, 1u << 20, data, size, seed);
	fuzz_body_both_ways(&chunked, 16, data, size, seed ^ 0x9e3779b97f4a7c15ULL);
	return 0;
}
