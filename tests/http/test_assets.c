/* test_assets: precompressed files, Cache-Control by [cache NAME] and
 * custom error pages (issue 21), against the real drover binary over real
 * sockets: which variant Accept-Encoding picks (q-values, the configured
 * order), a variant older than its file never served, Vary on every answer
 * about a file that has a variant, the variants' own ETags with 304 and
 * 412, Range over the encoded bytes, HEAD with GET's head, precompressed =
 * off; the longest prefix, an extension and file order choosing
 * Cache-Control, and no Cache-Control on errors; error pages with their
 * status, and the built-in page when the configured one is missing. Each
 * test starts its own drover with one worker; most run twice, with the
 * open-file cache (the hot path) and without it (file_cache_valid = 0). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Every file is dated this long before the test: a file dated in the
 * future is (rightly) not cached. */
#define AGE 100

/* The variants' bytes: not real compressed data, as drover never looks
 * inside (clients.sh has curl decode real gzip). */
#define IDENT "body { color: black }\n"
#define GZ "GZ-0123456789"
#define BR "BR-0123456789abcdef"
#define ZST "ZST-0123"

static time_t base;

/* Write www/rel, dated older seconds before base. */
static void put(struct h_site *s, const char *rel, const char *content, int older)
{
	h_site_file(s, rel, content);
	char p[1024];
	h_path_join(p, sizeof p, s->www, rel);
	struct timespec ts[2] = { { base - older, 0 }, { base - older, 0 } };
	ck_assert_msg(utimensat(AT_FDCWD, p, ts, 0) == 0, "utimensat %s: %s", p, strerror(errno));
}

static void site_init(struct h_site *s)
{
	base = time(NULL) - AGE;
	h_site_init(s);
}

static void site_start(struct h_site *s, const char *http)
{
	struct h_site_opts o = { .http = http };
	h_site_start(s, &o);
}

/* method path with more header lines (extra: "Name: value\r\n"...). */
static void ask(struct h_site *s, const char *method, const char *path, const char *extra, struct h_response *r)
{
	char raw[4096];
	int n = snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", method, path,
			 extra ? extra : "");
	ck_assert(n > 0 && (size_t)n < sizeof raw);
	int fd = h_connect_tcp(s->port);
	ck_assert(fd >= 0);
	h_write_all(fd, raw, (size_t)n);
	ck_assert_msg(h_http_read_response(fd, r, strcmp(method, "HEAD") == 0), "no answer to %s %s", method, path);
	close(fd);
}

static char *hdr(const struct h_response *r, const char *name)
{
	static char v[8][1024];
	static int i;
	char *out = v[i++ & 7];
	return h_http_header(r, name, out, sizeof v[0]) ? out : NULL;
}

/* GET path with Accept-Encoding ae (NULL: none): status 200, coding
 * (NULL: identity, no Content-Encoding) and body. */
static void expect_coding(struct h_site *s, const char *path, const char *ae, const char *coding, const char *body)
{
	char extra[1024] = "";
	if (ae)
		snprintf(extra, sizeof extra, "Accept-Encoding: %s\r\n", ae);
	struct h_response r;
	ask(s, "GET", path, extra, &r);
	ck_assert_msg(r.status == 200, "%s (%s): %d", path, ae ? ae : "-", r.status);
	const char *ce = hdr(&r, "Content-Encoding");
	if (coding)
		ck_assert_msg(ce && strcmp(ce, coding) == 0, "%s with '%s': Content-Encoding %s, wanted %s", path,
			      ae ? ae : "-", ce ? ce : "(none)", coding);
	else
		ck_assert_msg(!ce, "%s with '%s': Content-Encoding %s, wanted none", path, ae ? ae : "-", ce);
	ck_assert_msg(strcmp(r.body, body) == 0, "%s with '%s': body '%s', wanted '%s'", path, ae ? ae : "-", r.body,
		      body);
	h_http_response_free(&r);
}

/* The open-file cache on (the default) or off: the hot path and the file
 * system path must answer alike. */
static const char *const cache_modes[] = { "", "file_cache_valid = 0\n" };

/* ------------------------------------------------------------ the choice */

/* a.css with all three variants, served with precompressed = br gzip zstd. */
START_TEST(choice_by_q_and_order)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "a.css.br", BR, 0);
	put(&s, "a.css.zst", ZST, 0);
	char http[256];
	snprintf(http, sizeof http, "precompressed = br gzip zstd\n%s", cache_modes[_i]);
	site_start(&s, http);

	static const struct {
		const char *ae, *coding, *body;
	} cases[] = {
		{ "gzip, deflate, br, zstd", "br", BR },   /* equal q: the configured order */
		{ "zstd, gzip", "gzip", GZ },
		{ "gzip", "gzip", GZ },
		{ "GZIP", "gzip", GZ },                     /* codings are case-insensitive */
		{ "x-gzip", "gzip", GZ },
		{ "zstd", "zstd", ZST },
		{ "br;q=0, gzip", "gzip", GZ },             /* q=0 refuses br */
		{ "gzip;q=0, br;q=0, zstd", "zstd", ZST },
		{ "gzip;q=0", NULL, IDENT },
		{ "gzip;q=0.5, zstd;q=0.8", "zstd", ZST },  /* q before order */
		{ "br;q=0.001, gzip;q=0.002", "gzip", GZ },
		{ "br ; q=0.9 , gzip;Q=1.0", "gzip", GZ },  /* whitespace, Q */
		{ "*", "br", BR },                          /* '*' stands for the codings not named */
		{ "*, br;q=0", "gzip", GZ },
		{ "*;q=0.5, zstd", "zstd", ZST },
		{ "*;q=0", NULL, IDENT },
		{ "identity", NULL, IDENT },
		{ "identity, gzip;q=0.5", NULL, IDENT },    /* identity preferred */
		{ "gzip;q=2", NULL, IDENT },                /* not a qvalue: the element is skipped */
		{ "deflate, compress", NULL, IDENT },
		{ "", NULL, IDENT },
		{ NULL, NULL, IDENT },                      /* no Accept-Encoding */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		expect_coding(&s, "/a.css", cases[i].ae, cases[i].coding, cases[i].body);
		expect_coding(&s, "/a.css", cases[i].ae, cases[i].coding, cases[i].body); /* again: cached */
	}
	/* Two Accept-Encoding lines are one list. */
	struct h_response r;
	ask(&s, "GET", "/a.css", "Accept-Encoding: br;q=0\r\nAccept-Encoding: gzip\r\n", &r);
	ck_assert_str_eq(hdr(&r, "Content-Encoding"), "gzip");
	/* The file's type, whatever the coding. */
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/css");
	ck_assert_str_eq(hdr(&r, "Vary"), "Accept-Encoding");
	ck_assert_str_eq(hdr(&r, "Content-Length"), "13");
	h_http_response_free(&r);

	/* A variant asked for by its own name is a file like any other:
	 * no Content-Encoding (its key in the cache is not the variant's). */
	ask(&s, "GET", "/a.css.gz", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(hdr(&r, "Content-Encoding"));
	ck_assert_str_eq(r.body, GZ);
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* The configured order decides between equal q; a coding that is not
 * configured is never served, even if its file is there. */
START_TEST(choice_configured_order)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "a.css.br", BR, 0);
	put(&s, "a.css.zst", ZST, 0);
	char http[256];
	snprintf(http, sizeof http, "precompressed = zstd gzip\n%s", cache_modes[_i]);
	site_start(&s, http);
	expect_coding(&s, "/a.css", "br, gzip, zstd", "zstd", ZST);
	expect_coding(&s, "/a.css", "br, gzip", "gzip", GZ);
	expect_coding(&s, "/a.css", "br", NULL, IDENT);
	h_site_stop(&s);
}
END_TEST

/* The default is gzip alone; a directory's index has variants too. */
START_TEST(choice_default_and_index)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "a.css.br", BR, 0);
	h_site_dir(&s, "docs");
	put(&s, "docs/index.html", "<p>docs</p>\n", 0);
	put(&s, "docs/index.html.gz", GZ, 0);
	site_start(&s, cache_modes[_i]);
	expect_coding(&s, "/a.css", "br, gzip", "gzip", GZ);
	expect_coding(&s, "/a.css", "br", NULL, IDENT);
	expect_coding(&s, "/docs/", "gzip", "gzip", GZ);
	struct h_response r;
	ask(&s, "GET", "/docs/", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/html");
	h_http_response_free(&r);
	expect_coding(&s, "/docs/", NULL, NULL, "<p>docs</p>\n");
	h_site_stop(&s);
}
END_TEST

/* A variant older than its file is stale: not served, and not a variant
 * (no Vary unless another one is fresh). */
START_TEST(older_variant_not_served)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.js", "var a;\n", 0);
	put(&s, "a.js.gz", GZ, 10);  /* older */
	put(&s, "a.js.br", BR, 0);
	put(&s, "b.js", "var b;\n", 0);
	put(&s, "b.js.gz", GZ, 1);   /* older by a second */
	put(&s, "c.js", "var c;\n", 5);
	put(&s, "c.js.gz", GZ, 0);   /* newer: fine */
	char http[256];
	snprintf(http, sizeof http, "precompressed = br gzip\n%s", cache_modes[_i]);
	site_start(&s, http);
	expect_coding(&s, "/a.js", "gzip", NULL, "var a;\n");
	expect_coding(&s, "/a.js", "gzip, br", "br", BR);
	struct h_response r;
	ask(&s, "GET", "/a.js", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_str_eq(hdr(&r, "Vary"), "Accept-Encoding"); /* a.js.br is one */
	h_http_response_free(&r);
	expect_coding(&s, "/b.js", "gzip", NULL, "var b;\n");
	ask(&s, "GET", "/b.js", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_ptr_null(hdr(&r, "Vary"));
	h_http_response_free(&r);
	/* Conditional: the file system path, the same rule. */
	ask(&s, "GET", "/b.js", "Accept-Encoding: gzip\r\nIf-None-Match: \"nope\"\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(hdr(&r, "Content-Encoding"));
	ck_assert_str_eq(r.body, "var b;\n");
	h_http_response_free(&r);
	expect_coding(&s, "/c.js", "gzip", "gzip", GZ);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ Vary, validators */

/* Vary: Accept-Encoding on every answer about a file with a variant:
 * identity, HEAD, 304, 206, 412; none on a file without one. */
START_TEST(vary_everywhere)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "plain.css", IDENT, 0);
	site_start(&s, cache_modes[_i]);
	struct h_response r;
	ask(&s, "GET", "/a.css", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(hdr(&r, "Vary"), "Accept-Encoding");
	char etag[256];
	snprintf(etag, sizeof etag, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);

	static const struct {
		const char *method, *extra;
		int status;
	} cases[] = {
		{ "HEAD", "", 200 },
		{ "GET", "Range: bytes=0-3\r\n", 206 },
		{ "GET", "Accept-Encoding: gzip\r\nRange: bytes=0-3\r\n", 206 },
		{ "GET", "If-None-Match: @\r\n", 304 },
		{ "GET", "If-Match: \"other\"\r\n", 412 },
		{ "GET", "Accept-Encoding: gzip\r\nIf-Match: @\r\n", 412 },
		{ "GET", "Range: bytes=100-200\r\n", 416 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char extra[1024];
		const char *at = strchr(cases[i].extra, '@');
		if (at)
			snprintf(extra, sizeof extra, "%.*s%s%s", (int)(at - cases[i].extra), cases[i].extra, etag, at + 1);
		else
			snprintf(extra, sizeof extra, "%s", cases[i].extra);
		ask(&s, cases[i].method, "/a.css", extra, &r);
		ck_assert_msg(r.status == cases[i].status, "%s %s: %d", cases[i].method, extra, r.status);
		const char *vary = hdr(&r, "Vary");
		ck_assert_msg(vary && strcmp(vary, "Accept-Encoding") == 0, "%s %s: Vary %s", cases[i].method, extra,
			      vary ? vary : "(none)");
		h_http_response_free(&r);
	}
	ask(&s, "GET", "/plain.css", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(hdr(&r, "Vary"));
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* Each representation has its own strong ETag; conditionals compare
 * against the one chosen. */
START_TEST(validators_per_coding)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "a.css.br", BR, 0);
	char http[256];
	snprintf(http, sizeof http, "precompressed = br gzip\n%s", cache_modes[_i]);
	site_start(&s, http);
	struct h_response r;
	char id[256], gz[256], br[256], extra[1024];
	ask(&s, "GET", "/a.css", NULL, &r);
	snprintf(id, sizeof id, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\n", &r);
	snprintf(gz, sizeof gz, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	ask(&s, "GET", "/a.css", "Accept-Encoding: br\r\n", &r);
	snprintf(br, sizeof br, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	ck_assert_msg(id[0] == '"' && gz[0] == '"' && br[0] == '"', "weak or missing: %s %s %s", id, gz, br);
	ck_assert_str_ne(id, gz);
	ck_assert_str_ne(id, br);
	ck_assert_str_ne(gz, br);
	size_t n = strlen(gz);
	ck_assert_msg(n > 4 && strcmp(gz + n - 4, "-gz\"") == 0, "gzip ETag %s", gz);
	n = strlen(br);
	ck_assert_msg(n > 4 && strcmp(br + n - 4, "-br\"") == 0, "br ETag %s", br);

	/* 304 for the variant's own ETag, with it and Vary. */
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", gz);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 304);
	ck_assert_str_eq(hdr(&r, "ETag"), gz);
	ck_assert_str_eq(hdr(&r, "Vary"), "Accept-Encoding");
	h_http_response_free(&r);
	/* The gzip ETag does not match the identity representation... */
	snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", gz);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, IDENT);
	ck_assert_str_eq(hdr(&r, "ETag"), id);
	h_http_response_free(&r);
	/* ...nor the identity ETag the gzip one. */
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", id);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, GZ);
	h_http_response_free(&r);
	/* A list holding the right one. */
	snprintf(extra, sizeof extra, "Accept-Encoding: br\r\nIf-None-Match: %s, %s\r\n", id, br);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 304);
	ck_assert_str_eq(hdr(&r, "ETag"), br);
	h_http_response_free(&r);
	/* If-Match: 412 unless it names the chosen representation. */
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nIf-Match: %s\r\n", id);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 412);
	ck_assert_ptr_null(hdr(&r, "Content-Encoding"));
	h_http_response_free(&r);
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nIf-Match: %s\r\n", gz);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, GZ);
	ck_assert_str_eq(hdr(&r, "Content-Encoding"), "gzip");
	h_http_response_free(&r);
	snprintf(extra, sizeof extra, "If-Match: %s\r\n", gz);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 412);
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* Range is over the encoded bytes; several ranges of a variant get the
 * whole variant (a multipart body would not be gzip itself). */
START_TEST(range_over_encoded_bytes)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	site_start(&s, cache_modes[_i]);
	struct h_response r;
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\nRange: bytes=3-6\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(r.body, "0123");
	ck_assert_str_eq(hdr(&r, "Content-Range"), "bytes 3-6/13");
	ck_assert_str_eq(hdr(&r, "Content-Encoding"), "gzip");
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/css");
	char gz[256], extra[1024];
	snprintf(gz, sizeof gz, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\nRange: bytes=-3\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(r.body, "789");
	ck_assert_str_eq(hdr(&r, "Content-Range"), "bytes 10-12/13");
	h_http_response_free(&r);
	/* If-Range with the variant's ETag: the range. */
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nRange: bytes=0-1\r\nIf-Range: %s\r\n", gz);
	ask(&s, "GET", "/a.css", extra, &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(r.body, "GZ");
	h_http_response_free(&r);
	/* Several ranges of the variant: all of it. */
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\nRange: bytes=0-1,5-6\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, GZ);
	ck_assert_str_eq(hdr(&r, "Content-Encoding"), "gzip");
	h_http_response_free(&r);
	/* Past the variant's end (not the file's): 416 with its size. */
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\nRange: bytes=15-\r\n", &r);
	ck_assert_int_eq(r.status, 416);
	ck_assert_str_eq(hdr(&r, "Content-Range"), "bytes */13");
	h_http_response_free(&r);
	/* The identity file's ranges are its own. */
	ask(&s, "GET", "/a.css", "Range: bytes=0-3\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(r.body, "body");
	ck_assert_ptr_null(hdr(&r, "Content-Encoding"));
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* HEAD gets GET's head, field for field (Date aside). */
START_TEST(head_same_head)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	char http[512];
	snprintf(http, sizeof http, "%s[cache css]\nmatch = *.css\ncache_control = max-age=60\n", cache_modes[_i]);
	site_start(&s, http);
	static const char *const fields[] = {
		"Content-Type", "Content-Encoding", "Content-Length", "ETag", "Last-Modified", "Vary",
		"Cache-Control", "Accept-Ranges",
	};
	static const char *const aes[] = { "Accept-Encoding: gzip\r\n", "" };
	for (size_t a = 0; a < 2; a++) {
		struct h_response g, h;
		ask(&s, "GET", "/a.css", aes[a], &g);
		ask(&s, "HEAD", "/a.css", aes[a], &h);
		ck_assert_int_eq(g.status, 200);
		ck_assert_int_eq(h.status, 200);
		ck_assert_uint_eq(h.body_len, 0);
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			const char *gv = hdr(&g, fields[i]), *hv = hdr(&h, fields[i]);
			ck_assert_msg((!gv && !hv) || (gv && hv && strcmp(gv, hv) == 0), "%s%s: GET %s, HEAD %s",
				      aes[a], fields[i], gv ? gv : "(none)", hv ? hv : "(none)");
		}
		ck_assert_ptr_nonnull(hdr(&h, "Vary"));
		ck_assert_ptr_nonnull(hdr(&h, "Cache-Control"));
		h_http_response_free(&g);
		h_http_response_free(&h);
	}
	h_site_stop(&s);
}
END_TEST

START_TEST(precompressed_off)
{
	struct h_site s;
	site_init(&s);
	put(&s, "a.css", IDENT, 0);
	put(&s, "a.css.gz", GZ, 0);
	put(&s, "a.css.br", BR, 0);
	char http[256];
	snprintf(http, sizeof http, "precompressed = off\n%s", cache_modes[_i]);
	site_start(&s, http);
	expect_coding(&s, "/a.css", "gzip, br, zstd", NULL, IDENT);
	struct h_response r;
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\nIf-None-Match: \"x\"\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(hdr(&r, "Vary"));
	ck_assert_ptr_null(hdr(&r, "Content-Encoding"));
	h_http_response_free(&r);
	ask(&s, "GET", "/a.css", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_ptr_null(hdr(&r, "Vary"));
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ Cache-Control */

START_TEST(cache_control_by_path)
{
	struct h_site s;
	site_init(&s);
	h_site_dir(&s, "assets");
	h_site_dir(&s, "assets/x");
	h_site_dir(&s, "fonts");
	put(&s, "assets/a.css", IDENT, 0);
	put(&s, "assets/x/b.css", IDENT, 0);
	put(&s, "assets/x/f.woff2", "font", 0);
	put(&s, "fonts/f.woff2", "font", 0);
	put(&s, "fonts/g.ttf", "font", 0);
	put(&s, "plain.txt", "plain\n", 0);
	put(&s, "x.css", IDENT, 0);
	put(&s, "x.css.gz", GZ, 0);
	char http[1024];
	snprintf(http, sizeof http,
		 "%sautoindex = yes\n"
		 "[cache immutable]\nmatch = /assets/ *.woff2\ncache_control = public, max-age=31536000, immutable\n"
		 "[cache fonts]\nmatch = *.woff2 *.ttf\ncache_control = max-age=86400\n"
		 "[cache short]\nmatch = /assets/x/\ncache_control = no-cache\n"
		 "[cache other]\nmatch = /assets/x/\ncache_control = no-store\n"
		 "[cache styles]\nmatch = *.css\ncache_control = max-age=600\n",
		 cache_modes[_i]);
	site_start(&s, http);
	static const struct {
		const char *path, *cc;
	} cases[] = {
		{ "/assets/a.css", "public, max-age=31536000, immutable" }, /* prefix before extension */
		{ "/assets/x/b.css", "no-cache" },   /* the longest prefix; equal ones: file order */
		{ "/assets/x/f.woff2", "no-cache" }, /* a prefix beats an extension */
		{ "/fonts/f.woff2", "public, max-age=31536000, immutable" }, /* extensions: file order */
		{ "/fonts/g.ttf", "max-age=86400" },
		{ "/x.css", "max-age=600" },
		{ "/plain.txt", NULL },              /* no match: no header */
	};
	struct h_response r;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ask(&s, "GET", cases[i].path, NULL, &r);
		ck_assert_msg(r.status == 200, "%s: %d", cases[i].path, r.status);
		const char *cc = hdr(&r, "Cache-Control");
		if (cases[i].cc)
			ck_assert_msg(cc && strcmp(cc, cases[i].cc) == 0, "%s: Cache-Control %s, wanted %s", cases[i].path,
				      cc ? cc : "(none)", cases[i].cc);
		else
			ck_assert_msg(!cc, "%s: Cache-Control %s, wanted none", cases[i].path, cc);
		h_http_response_free(&r);
	}
	/* A listing, by its prefix. */
	ask(&s, "GET", "/assets/x/", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "b.css"));
	ck_assert_str_eq(hdr(&r, "Cache-Control"), "no-cache");
	h_http_response_free(&r);
	/* 304 and 206 carry it; a variant has its file's. */
	char etag[256], extra[1024];
	ask(&s, "GET", "/x.css", "Accept-Encoding: gzip\r\n", &r);
	ck_assert_str_eq(hdr(&r, "Cache-Control"), "max-age=600");
	snprintf(etag, sizeof etag, "%s", hdr(&r, "ETag"));
	h_http_response_free(&r);
	snprintf(extra, sizeof extra, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", etag);
	ask(&s, "GET", "/x.css", extra, &r);
	ck_assert_int_eq(r.status, 304);
	ck_assert_str_eq(hdr(&r, "Cache-Control"), "max-age=600");
	h_http_response_free(&r);
	ask(&s, "GET", "/assets/a.css", "Range: bytes=0-1\r\n", &r);
	ck_assert_int_eq(r.status, 206);
	ck_assert_str_eq(hdr(&r, "Cache-Control"), "public, max-age=31536000, immutable");
	h_http_response_free(&r);
	/* Not on errors: 404 under a matching prefix, 412, 416. */
	ask(&s, "GET", "/assets/missing.css", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_null(hdr(&r, "Cache-Control"));
	h_http_response_free(&r);
	ask(&s, "GET", "/assets/a.css", "If-Match: \"nope\"\r\n", &r);
	ck_assert_int_eq(r.status, 412);
	ck_assert_ptr_null(hdr(&r, "Cache-Control"));
	h_http_response_free(&r);
	ask(&s, "GET", "/assets/a.css", "Range: bytes=500-\r\n", &r);
	ck_assert_int_eq(r.status, 416);
	ck_assert_ptr_null(hdr(&r, "Cache-Control"));
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ error pages */

START_TEST(error_pages)
{
	struct h_site s;
	site_init(&s);
	h_site_dir(&s, "errors");
	h_site_dir(&s, "noindex");
	put(&s, "errors/404.html", "<h1>not here</h1>\n", 0);
	put(&s, "errors/403.html", "<h1>not yours</h1>\n", 0);
	put(&s, "index.html", "<p>home</p>\n", 0);
	char http[512];
	snprintf(http, sizeof http,
		 "%serror_page_404 = /errors/404.html\nerror_page_403 = /errors/403.html\n"
		 "error_page_500 = /errors/500.html\n[cache all]\nmatch = /\ncache_control = max-age=60\n",
		 cache_modes[_i]);
	site_start(&s, http);
	struct h_response r;
	ask(&s, "GET", "/missing.html", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "<h1>not here</h1>\n");
	ck_assert_str_eq(hdr(&r, "Content-Type"), "text/html");
	ck_assert_ptr_null(hdr(&r, "Cache-Control"));
	ck_assert_ptr_null(hdr(&r, "ETag"));
	h_http_response_free(&r);
	ask(&s, "HEAD", "/missing.html", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(hdr(&r, "Content-Length"), "18");
	h_http_response_free(&r);
	/* A directory without an index (autoindex off): 403. */
	ask(&s, "GET", "/noindex/", NULL, &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_str_eq(r.body, "<h1>not yours</h1>\n");
	h_http_response_free(&r);
	/* A dotfile is a 404 as well. */
	ask(&s, "GET", "/.env", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "<h1>not here</h1>\n");
	h_http_response_free(&r);
	/* The pages themselves are still plain files. */
	ask(&s, "GET", "/errors/404.html", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	h_http_response_free(&r);
	ask(&s, "GET", "/index.html", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "<p>home</p>\n");
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* A configured page that is missing (or itself an error: a directory,
 * a dotfile) leaves the built-in page, with the status. */
START_TEST(error_page_missing_falls_back)
{
	struct h_site s;
	site_init(&s);
	h_site_dir(&s, "noindex");
	h_site_dir(&s, "dir.html");
	site_start(&s, "error_page_404 = /nothing.html\nerror_page_403 = /dir.html\n");
	struct h_response r;
	ask(&s, "GET", "/missing.html", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(r.body, "404 Not Found\n");
	h_http_response_free(&r);
	ask(&s, "GET", "/noindex/", NULL, &r);
	ck_assert_int_eq(r.status, 403);
	ck_assert_str_eq(r.body, "403 Forbidden\n");
	h_http_response_free(&r);
	h_site_stop(&s);
}
END_TEST

/* ------------------------------------------------------------ config */

/* drover -t names file, line, key and what was expected. */
START_TEST(config_errors_named)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[http]\nprecompressed = gzip deflate\n",
		  ":5: [http] precompressed: expected 'off' or a list of br, gzip, zstd" },
		{ "[http]\nerror_page_404 = 404.html\n",
		  ":5: [http] error_page_404: expected the URL path of a file under the root" },
		{ "[cache a]\nmatch = assets\ncache_control = no-cache\n",
		  ":5: [cache a] match: expected path prefixes starting with '/' or extensions like *.woff2" },
		{ "[cache a]\nmatch = /a/\n",
		  ":4: [cache a] cache_control: expected a Cache-Control value like 'public, max-age=3600', "
		  "got nothing" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char cfg[1024], out[4096];
		snprintf(cfg, sizeof cfg, "[listener web]\naddress = 127.0.0.1:%d\nprotocol = http\n%s", h_free_port(),
			 cases[i].text);
		const char *args[] = { "-t", NULL };
		int rc = h_drover_check(cfg, args, out, sizeof out);
		ck_assert_msg(rc != 0, "accepted:\n%s", cfg);
		ck_assert_msg(strstr(out, cases[i].want), "wanted '%s' in:\n%s", cases[i].want, out);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("assets");
	TCase *tc = tcase_create("precompressed");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, choice_by_q_and_order, 0, 2);
	tcase_add_loop_test(tc, choice_configured_order, 0, 2);
	tcase_add_loop_test(tc, choice_default_and_index, 0, 2);
	tcase_add_loop_test(tc, older_variant_not_served, 0, 2);
	tcase_add_loop_test(tc, vary_everywhere, 0, 2);
	tcase_add_loop_test(tc, validators_per_coding, 0, 2);
	tcase_add_loop_test(tc, range_over_encoded_bytes, 0, 2);
	tcase_add_loop_test(tc, head_same_head, 0, 2);
	tcase_add_loop_test(tc, precompressed_off, 0, 2);
	suite_add_tcase(s, tc);
	TCase *cc = tcase_create("cache_control");
	tcase_set_timeout(cc, 120);
	tcase_add_loop_test(cc, cache_control_by_path, 0, 2);
	suite_add_tcase(s, cc);
	TCase *ep = tcase_create("error_pages");
	tcase_set_timeout(ep, 120);
	tcase_add_loop_test(ep, error_pages, 0, 2);
	tcase_add_test(ep, error_page_missing_falls_back);
	tcase_add_test(ep, config_errors_named);
	suite_add_tcase(s, ep);
	return h_run_suite(s) ? EXIT_FAILURE : EXIT_SUCCESS;
}
