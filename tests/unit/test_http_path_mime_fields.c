/* test_http_path_mime_fields: path normalisation and safe opening
 * (path.c), MIME (mime.c), validators, dates and Range (fields.c)
 * against a real temporary tree (symlinks in and out, FIFO, socket). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "proto/http/coding.h"
#include "proto/http/fields.h"
#include "proto/http/mime.h"
#include "proto/http/parse.h"
#include "proto/http/path.h"

/* ------------------------------------------------------- normalisation */

struct norm_case {
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	int rc;
	const char *out;
};

static const struct norm_case norm_cases[] = {
	{ "/", 0, 0, "/" },
	{ "/a/b", 0, 0, "/a/b" },
	{ "//a///b", 0, 0, "/a/b" },
	{ "/a/./b", 0, 0, "/a/b" },
	{ "/a/../b", 0, 0, "/b" },
	{ "/..", 0, -EINVAL, NULL },
	{ "/../", 0, -EINVAL, NULL },
	{ "/../etc/passwd", 0, -EINVAL, NULL },
	{ "/%2e%2e/x", 0, -EINVAL, NULL },
	{ "/%2E%2e/", 0, -EINVAL, NULL },
	{ "/.%2e/x", 0, -EINVAL, NULL },
	{ "/a/%2e%2e/%2e%2e/x", 0, -EINVAL, NULL },
	{ "/a/b/../../../c", 0, -EINVAL, NULL },
	{ "/a%2fb", 0, -EINVAL, NULL },
	{ "/a%2Fb", 0, -EINVAL, NULL },
	{ "/%2e%2e%2fetc", 0, -EINVAL, NULL },
	{ "/a%00b", 0, -EINVAL, NULL },
	{ "/a\0b", 4, -EINVAL, NULL },
	{ "/%zz", 0, -EINVAL, NULL },
	{ "/%g0", 0, -EINVAL, NULL },
	{ "/%4", 0, -EINVAL, NULL },
	{ "/%", 0, -EINVAL, NULL },
	{ "/ab%", 0, -EINVAL, NULL },
	{ "/a%2", 0, -EINVAL, NULL },
	{ "/a/b/", 0, 0, "/a/b/" },
	{ "/a/b/.", 0, 0, "/a/b/" },
	{ "/a/b/%2e", 0, 0, "/a/b/" },
	{ "/a/..", 0, 0, "/" },
	{ "/a/b/..", 0, 0, "/a/" },
	{ "/a/b/../..", 0, 0, "/" },
	{ "/a/b/../../c", 0, 0, "/c" },
	{ "/a/./../b/./c/", 0, 0, "/b/c/" },
	{ "/a/b//../c", 0, 0, "/a/c" },
	{ "/a/.%2e/b", 0, 0, "/b" },
	{ "no-leading-slash", 0, -EINVAL, NULL },
	{ "a/b", 0, -EINVAL, NULL },
	{ "", 0, -EINVAL, NULL },
	{ "*", 0, -EINVAL, NULL },
	{ "/hello%20world.txt", 0, 0, "/hello world.txt" },
	{ "/caf%C3%A9", 0, 0, "/caf\xc3\xa9" },
	{ "/caf%c3%a9/", 0, 0, "/caf\xc3\xa9/" },
	{ "/%ff", 0, 0, "/\xff" },
	{ "/%41%42c", 0, 0, "/ABc" },
	{ "/a%0Ab", 0, -EINVAL, NULL },
	{ "/a%0d%0aSet-Cookie:x", 0, -EINVAL, NULL },
	{ "/a%1fb", 0, -EINVAL, NULL },
	{ "/a%7Fb", 0, -EINVAL, NULL },
	{ "/a\tb", 0, -EINVAL, NULL },
	{ "/a\x7f", 0, -EINVAL, NULL },
	{ "/a%5cb", 0, -EINVAL, NULL },
	{ "/a\\b", 0, -EINVAL, NULL },
	{ "/..%5c..%5cetc", 0, -EINVAL, NULL },
	{ "/.", 0, 0, "/" },
	{ "/./", 0, 0, "/" },
	{ "//", 0, 0, "/" },
	{ "///", 0, 0, "/" },
	{ "/a//", 0, 0, "/a/" },
	{ "/%2e", 0, 0, "/" },
	{ "/...", 0, 0, "/..." },
	{ "/a..b", 0, 0, "/a..b" },
	{ "/..a", 0, 0, "/..a" },
	{ "/.hidden", 0, 0, "/.hidden" },
	{ "/a/b?c", 0, 0, "/a/b?c" }, /* the query was already split off */
};

START_TEST(test_normalize_table)
{
	const struct norm_case *c = &norm_cases[_i];
	size_t len = c->in_len ? c->in_len : strlen(c->in);
	char out[PATH_MAX];
	int rc;

	memset(out, 'X', sizeof(out));
	rc = http_path_normalize(c->in, len, out, sizeof(out));
	ck_assert_msg(rc == c->rc, "normalize(\"%s\") = %d, want %d", c->in, rc, c->rc);
	if (c->out != NULL)
		ck_assert_msg(strcmp(out, c->out) == 0, "normalize(\"%s\") = \"%s\", want \"%s\"",
			      c->in, out, c->out);
}
END_TEST

START_TEST(test_normalize_bounds)
{
	char out[16];
	char *big;
	size_t n = 5000;

	/* Exactly fitting, and one byte short (the NUL counts). */
	ck_assert_int_eq(http_path_normalize("/abc", 4, out, 5), 0);
	ck_assert_str_eq(out, "/abc");
	ck_assert_int_eq(http_path_normalize("/abc", 4, out, 4), -ENAMETOOLONG);
	ck_assert_int_eq(http_path_normalize("/abc/", 5, out, 6), 0);
	ck_assert_str_eq(out, "/abc/");
	ck_assert_int_eq(http_path_normalize("/abc/", 5, out, 5), -ENAMETOOLONG);
	ck_assert_int_eq(http_path_normalize("/", 1, out, 2), 0);
	ck_assert_str_eq(out, "/");
	ck_assert_int_eq(http_path_normalize("/", 1, out, 1), -ENAMETOOLONG);
	ck_assert_int_eq(http_path_normalize("/", 1, out, 0), -ENAMETOOLONG);
	/* Decoding shrinks: "%41" is one byte of output. */
	ck_assert_int_eq(http_path_normalize("/%41%42%43", 10, out, 5), 0);
	ck_assert_str_eq(out, "/ABC");
	/* A path that would be long is refused even if ".." would shorten it. */
	ck_assert_int_eq(http_path_normalize("/aaaaaaaaaaaaaaaaaaaa/..", 24, out, sizeof(out)),
			 -ENAMETOOLONG);

	big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	big[0] = '/';
	memset(big + 1, 'a', n - 1);
	big[n] = '\0';
	{
		char path[PATH_MAX];

		ck_assert_int_eq(http_path_normalize(big, n, path, sizeof(path)), -ENAMETOOLONG);
	}
	free(big);
	/* in_len bounds the input: bytes after it are never read. */
	ck_assert_int_eq(http_path_normalize("/ab/../../x", 3, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/ab");
}
END_TEST

START_TEST(test_dotfile)
{
	ck_assert(http_path_has_dotfile("/.git/config"));
	ck_assert(http_path_has_dotfile("/a/.env"));
	ck_assert(http_path_has_dotfile("/a/.hidden/"));
	ck_assert(http_path_has_dotfile("/..."));
	ck_assert(!http_path_has_dotfile("/"));
	ck_assert(!http_path_has_dotfile("/a/b"));
	ck_assert(!http_path_has_dotfile("/a.b/c.d"));
	ck_assert(!http_path_has_dotfile("/a/b/"));
}
END_TEST

/* ------------------------------------------------------------------- MIME */

static char *tmp_write(const char *content)
{
	char *path = strdup("/tmp/drover-test-mime-XXXXXX");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

START_TEST(test_mime_file)
{
	char *path = tmp_write("# a comment line\n"
			       "\n"
			       "text/html\t\thtml htm\n"
			       "application/x-custom  CUS foo   # trailing comment\r\n"
			       "image/png png\n"
			       "application/json json\n"
			       "application/x-javascript js\n"
			       "application/x-first dup\n"
			       "application/x-second dup\n"
			       "no-slash-here abc\n"
			       "   \t  \n"
			       "text/x-noext\n"
			       "image/svg+xml svg");
	struct http_mime *m = http_mime_load(path, "utf-8");
	const char *fb = "application/octet-stream";
	const char *p1, *p2;

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(http_mime_lookup(m, "index.html", fb), "text/html; charset=utf-8");
	ck_assert_str_eq(http_mime_lookup(m, "INDEX.HTML", fb), "text/html; charset=utf-8");
	ck_assert_str_eq(http_mime_lookup(m, "a.htm", fb), "text/html; charset=utf-8");
	ck_assert_str_eq(http_mime_lookup(m, "a.cus", fb), "application/x-custom");
	ck_assert_str_eq(http_mime_lookup(m, "a.Foo", fb), "application/x-custom");
	ck_assert_str_eq(http_mime_lookup(m, "a.json", fb), "application/json; charset=utf-8");
	ck_assert_str_eq(http_mime_lookup(m, "logo.png", fb), "image/png");
	ck_assert_str_eq(http_mime_lookup(m, "pic.svg", fb), "image/svg+xml; charset=utf-8");
	/* The file overrides the built-in table. */
	ck_assert_str_eq(http_mime_lookup(m, "app.js", fb), "application/x-javascript");
	/* First definition of an extension wins. */
	ck_assert_str_eq(http_mime_lookup(m, "x.dup", fb), "application/x-first");
	/* A line without a type is ignored. */
	ck_assert_str_eq(http_mime_lookup(m, "x.abc", fb), fb);
	/* Not in the file: the built-in table answers. */
	ck_assert_str_eq(http_mime_lookup(m, "style.css", fb), "text/css; charset=utf-8");
	ck_assert_str_eq(http_mime_lookup(m, "a.tar.gz", fb), "application/gzip");
	ck_assert_str_eq(http_mime_lookup(m, "f.woff2", fb), "font/woff2");
	/* No extension, dotfile, empty extension, dot in a directory name. */
	ck_assert_str_eq(http_mime_lookup(m, "README", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, ".bashrc", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, "a.", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, "dir.html/file", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, "", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, "a.unknownextension", fb), fb);
	ck_assert_str_eq(http_mime_lookup(m, "a.averyveryveryveryveryveryveryveryverylongext", fb), fb);
	/* The returned string is the table's, stable across lookups. */
	p1 = http_mime_lookup(m, "a.html", fb);
	p2 = http_mime_lookup(m, "b.HTM", fb);
	ck_assert_ptr_eq(p1, p2);
	http_mime_free(m);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_mime_builtin)
{
	const char *fb = "application/octet-stream";
	struct http_mime *m = http_mime_load("/nonexistent/mime.types", "utf-8");
	static const char *const want[][2] = {
		{ "a.html", "text/html; charset=utf-8" },
		{ "a.htm", "text/html; charset=utf-8" },
		{ "a.css", "text/css; charset=utf-8" },
		{ "a.js", "text/javascript; charset=utf-8" },
		{ "a.mjs", "text/javascript; charset=utf-8" },
		{ "a.json", "application/json; charset=utf-8" },
		{ "a.txt", "text/plain; charset=utf-8" },
		{ "a.xml", "application/xml; charset=utf-8" },
		{ "a.svg", "image/svg+xml; charset=utf-8" },
		{ "a.png", "image/png" },
		{ "a.jpg", "image/jpeg" },
		{ "a.JPEG", "image/jpeg" },
		{ "a.gif", "image/gif" },
		{ "a.webp", "image/webp" },
		{ "a.avif", "image/avif" },
		{ "a.ico", "image/vnd.microsoft.icon" },
		{ "a.pdf", "application/pdf" },
		{ "a.wasm", "application/wasm" },
		{ "a.woff", "font/woff" },
		{ "a.woff2", "font/woff2" },
		{ "a.mp4", "video/mp4" },
		{ "a.webm", "video/webm" },
		{ "a.mp3", "audio/mpeg" },
		{ "a.zip", "application/zip" },
		{ "a.gz", "application/gzip" },
		{ "a.tar", "application/x-tar" },
		{ "a.csv", "text/csv; charset=utf-8" },
		{ "a.md", "text/markdown; charset=utf-8" },
		{ "a.bin", NULL },
		{ "Makefile", NULL },
	};

	ck_assert_ptr_nonnull(m);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *got = http_mime_lookup(m, want[i][0], fb);

		ck_assert_msg(strcmp(got, want[i][1] ? want[i][1] : fb) == 0, "%s -> %s", want[i][0], got);
	}
	http_mime_free(m);

	/* NULL path: the built-in table alone. */
	m = http_mime_load(NULL, "utf-8");
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(http_mime_lookup(m, "x.png", fb), "image/png");
	http_mime_free(m);
	/* A NULL table answers the fallback (the caller may have failed to load). */
	ck_assert_str_eq(http_mime_lookup(NULL, "x.png", fb), fb);
	http_mime_free(NULL);
}
END_TEST

START_TEST(test_mime_many_and_system)
{
	/* Enough extensions to make the table grow several times. */
	size_t cap = 3000 * 24 + 64, len = 0;
	char *text = malloc(cap);
	char *path, name[32];
	struct http_mime *m;

	ck_assert_ptr_nonnull(text);
	for (int i = 0; i < 3000; i++)
		len += (size_t)snprintf(text + len, cap - len, "application/x-t%d e%d\n", i % 7, i);
	path = tmp_write(text);
	m = http_mime_load(path, "utf-8");
	ck_assert_ptr_nonnull(m);
	for (int i = 0; i < 3000; i++) {
		char want[32];

		snprintf(name, sizeof(name), "f.E%d", i);
		snprintf(want, sizeof(want), "application/x-t%d", i % 7);
		ck_assert_str_eq(http_mime_lookup(m, name, "?"), want);
	}
	ck_assert_str_eq(http_mime_lookup(m, "f.html", "?"), "text/html; charset=utf-8");
	http_mime_free(m);
	unlink(path);
	free(path);
	free(text);

	/* The system file, when present, must at least know HTML. */
	if (access("/etc/mime.types", R_OK) == 0) {
		m = http_mime_load("/etc/mime.types", "utf-8");
		ck_assert_ptr_nonnull(m);
		ck_assert_str_eq(http_mime_lookup(m, "i.html", "?"), "text/html; charset=utf-8");
		ck_assert_str_eq(http_mime_lookup(m, "i.png", "?"), "image/png");
		http_mime_free(m);
	}
}
END_TEST

/* ------------------------------------------------------------ validators */

START_TEST(test_etag)
{
	struct stat st;
	char out[64], small[6];

	memset(&st, 0, sizeof(st));
	st.st_size = 1234;
	st.st_mtim.tv_sec = 1;
	st.st_mtim.tv_nsec = 2;
	http_etag_format(&st, out, sizeof(out));
	ck_assert_str_eq(out, "\"4d2-3b9aca02\"");

	st.st_size = 0;
	st.st_mtim.tv_sec = 1700000000;
	st.st_mtim.tv_nsec = 123456789;
	http_etag_format(&st, out, sizeof(out));
	ck_assert_str_eq(out, "\"0-17979cfe3d85cd15\"");

	/* Truncates, never overruns. */
	memset(small, 'X', sizeof(small));
	http_etag_format(&st, small, sizeof(small));
	ck_assert_int_eq(small[sizeof(small) - 1], '\0');
	/* Different mtime nanoseconds, different tag. */
	{
		char other[64];

		st.st_mtim.tv_nsec++;
		http_etag_format(&st, other, sizeof(other));
		ck_assert_str_ne(out, other);
	}
}
END_TEST

START_TEST(test_http_date_format)
{
	char out[64];

	http_date_format(784111777, out, sizeof(out));
	ck_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date_format(0, out, sizeof(out));
	ck_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date_format(951782400, out, sizeof(out));
	ck_assert_str_eq(out, "Tue, 29 Feb 2000 00:00:00 GMT");
	http_date_format(4102444800, out, sizeof(out)); /* past 2038 */
	ck_assert_str_eq(out, "Fri, 01 Jan 2100 00:00:00 GMT");
	ck_assert_uint_eq(strlen(out), 29);
}
END_TEST

struct date_case {
	const char *in;
	int rc;
	time_t t;
};

static const struct date_case date_cases[] = {
	{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },
	{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777 },
	{ "Sun Nov  6 08:49:37 1994", 0, 784111777 },
	{ "Sun Nov 16 08:49:37 1994", 0, 784111777 + 10 * 86400 },
	{ "  Sun, 06 Nov 1994 08:49:37 GMT\t", 0, 784111777 },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
	{ "Wed, 31 Dec 1969 23:59:59 GMT", 0, -1 },
	{ "Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400 },
	{ "Fri, 01 Jan 2100 00:00:00 GMT", 0, 4102444800 },
	{ "Thursday, 01-Jan-98 00:00:00 GMT", 0, 883612800 },
	/* the day name is not cross-checked against the date */
	{ "Mon, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },
	{ "", -EINVAL, 0 },
	{ "garbage", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 UTC", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37", -EINVAL, 0 },
	{ "Sun, 6 Nov 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 94 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT junk", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 8:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 31 Feb 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Mon, 29 Feb 1900 00:00:00 GMT", -EINVAL, 0 },
	{ "Sun, 00 Nov 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 24:00:00 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:60:00 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nox 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "sun, 06 nov 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Xyz, 06 Nov 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun,06 Nov 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sunday, 06-Nov-1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sunday, 06 Nov 94 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun Nov 6 08:49:37 1994", -EINVAL, 0 },
	{ "Sun Nov  6 08:49:37 94", -EINVAL, 0 },
	{ "Sun Nov  6 08:49:37 1994 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT\r\n", -EINVAL, 0 },
};

START_TEST(test_http_date_parse_table)
{
	const struct date_case *c = &date_cases[_i];
	time_t t = 12345;
	int rc = http_date_parse(c->in, strlen(c->in), &t);

	ck_assert_msg(rc == c->rc, "parse(\"%s\") = %d, want %d", c->in, rc, c->rc);
	if (rc == 0)
		ck_assert_msg(t == c->t, "parse(\"%s\") = %lld, want %lld", c->in, (long long)t,
			      (long long)c->t);
	else
		ck_assert_int_eq(t, 12345); /* untouched on failure */
}
END_TEST

START_TEST(test_http_date_roundtrip)
{
	static const time_t ts[] = { 0, 1, 59, 86399, 784111777, 951782400, 1700000000,
				     2147483647, 2147483648LL, 4102444800LL, 253402300799LL };
	char buf[64];

	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		time_t back = -2;

		http_date_format(ts[i], buf, sizeof(buf));
		ck_assert_int_eq(http_date_parse(buf, strlen(buf), &back), 0);
		ck_assert_msg(back == ts[i], "%s -> %lld", buf, (long long)back);
	}
	/* len bounds the input: a longer string is not read past len. */
	{
		const char *s = "Sun, 06 Nov 1994 08:49:37 GMTxxxx";
		time_t t;

		ck_assert_int_eq(http_date_parse(s, 29, &t), 0);
		ck_assert_int_eq(t, 784111777);
	}
}
END_TEST

/* A two-digit RFC 850 year more than 50 years ahead is in the past century. */
START_TEST(test_http_date_rfc850_century)
{
	time_t now = time(NULL), t;
	struct tm tm;
	char buf[64];
	int yy;

	int cur;

	gmtime_r(&now, &tm);
	cur = tm.tm_year + 1900;
	/* Next year's two digits: next year. */
	yy = (cur + 1) % 100;
	snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", yy);
	ck_assert_int_eq(http_date_parse(buf, strlen(buf), &t), 0);
	gmtime_r(&t, &tm);
	ck_assert_int_eq(tm.tm_year + 1900, cur + 1);
	/* 60 years ahead reads as 40 years ago. */
	yy = (cur + 60) % 100;
	snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", yy);
	ck_assert_int_eq(http_date_parse(buf, strlen(buf), &t), 0);
	gmtime_r(&t, &tm);
	ck_assert_int_eq(tm.tm_year + 1900, cur - 40);
}
END_TEST

struct inm_case {
	const char *header;
	const char *etag;
	bool match;
};

static const struct inm_case inm_cases[] = {
	{ "*", "\"abc\"", true },
	{ "  *\t", "\"abc\"", true },
	{ "\"abc\"", "\"abc\"", true },
	{ "W/\"abc\"", "\"abc\"", true },
	{ "\"abc\"", "W/\"abc\"", true },
	{ "W/\"abc\"", "W/\"abc\"", true },
	{ "\"x\", \"abc\"", "\"abc\"", true },
	{ "\"x\",W/\"abc\"", "\"abc\"", true },
	{ "\"x\" ,\t\"abc\" ", "\"abc\"", true },
	{ ", ,\"abc\",", "\"abc\"", true },
	{ "\"\"", "\"\"", true },
	{ "\"abcd\"", "\"abc\"", false },
	{ "\"ab\"", "\"abc\"", false },
	{ "\"ABC\"", "\"abc\"", false },
	{ "abc", "\"abc\"", false },
	{ "", "\"abc\"", false },
	{ "\"x\" \"abc\"", "\"abc\"", false },
	{ "\"abc", "\"abc\"", false },
	{ "w/\"abc\"", "\"abc\"", false },
	{ "*, \"x\"", "\"abc\"", false },
	{ "\"x\", garbage, \"abc\"", "\"abc\"", false },
	{ "\"4d2-3b9aca02\"", "\"4d2-3b9aca02\"", true },
};

START_TEST(test_etag_matches_table)
{
	const struct inm_case *c = &inm_cases[_i];

	ck_assert_msg(http_etag_matches(c->header, strlen(c->header), c->etag, HTTP_ETAG_WEAK) == c->match,
		      "If-None-Match: %s vs %s: want %d", c->header, c->etag, c->match);
}
END_TEST

/* If-Match compares strongly (RFC 9110 §8.8.3.2): a weak tag on either
 * side never matches; "*" still does. */
START_TEST(test_etag_strong_comparison_refuses_weak_tags)
{
	static const struct inm_case cases[] = {
		{ "\"abc\"", "\"abc\"", true },
		{ "*", "\"abc\"", true },
		{ "\"x\", \"abc\"", "\"abc\"", true },
		{ "W/\"abc\"", "\"abc\"", false },
		{ "\"abc\"", "W/\"abc\"", false },
		{ "W/\"abc\", \"abc\"", "\"abc\"", true },
		{ "\"nope\"", "\"abc\"", false },
		{ "W/\"nope\"", "\"abc\"", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(http_etag_matches(cases[i].header, strlen(cases[i].header), cases[i].etag,
						HTTP_ETAG_STRONG) == cases[i].match,
			      "If-Match: %s vs %s: want %d", cases[i].header, cases[i].etag, cases[i].match);
}
END_TEST

/* ------------------------------------------------------------------ Range */

struct range_case {
	const char *header;
	uint64_t size;
	enum http_range_result r;
	uint64_t first, last;
};

static const struct range_case range_cases[] = {
	{ "bytes=0-499", 1000, RANGE_OK, 0, 499 },
	{ "bytes=500-999", 1000, RANGE_OK, 500, 999 },
	{ "bytes=500-", 1000, RANGE_OK, 500, 999 },
	{ "bytes=-500", 1000, RANGE_OK, 500, 999 },
	{ "bytes=-1", 1000, RANGE_OK, 999, 999 },
	{ "bytes=-1000", 1000, RANGE_OK, 0, 999 },
	{ "bytes=-2000", 1000, RANGE_OK, 0, 999 },
	{ "bytes=-0", 1000, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-0", 1000, RANGE_OK, 0, 0 },
	{ "bytes=999-999", 1000, RANGE_OK, 999, 999 },
	{ "bytes=999-", 1000, RANGE_OK, 999, 999 },
	{ "bytes=1000-", 1000, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=1000-2000", 1000, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-5000", 1000, RANGE_OK, 0, 999 },
	{ "bytes=0-", 1, RANGE_OK, 0, 0 },
	{ "bytes=5-3", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=5-3", 0, RANGE_NONE, 0, 0 },
	{ "bytes=0-1,", 1000, RANGE_OK, 0, 1 },
	{ "bytes=, 0-1", 1000, RANGE_OK, 0, 1 },
	{ "BYTES=0-1", 1000, RANGE_OK, 0, 1 },
	{ "Bytes=2-3", 1000, RANGE_OK, 2, 3 },
	{ " bytes=0-1 ", 1000, RANGE_OK, 0, 1 },
	{ "bytes= 0-1", 1000, RANGE_OK, 0, 1 },
	{ "items=0-1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=,", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=-", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=a-b", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=1-2-3", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=+1-2", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=0x1-2", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=0 -1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=0- 1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=--1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes 0-1", 1000, RANGE_NONE, 0, 0 },
	{ "bytes =0-1", 1000, RANGE_NONE, 0, 0 },
	{ "", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=99999999999999999999-", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=0-99999999999999999999", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=-99999999999999999999", 1000, RANGE_NONE, 0, 0 },
	{ "bytes=18446744073709551615-", 1000, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-18446744073709551615", 1000, RANGE_OK, 0, 999 },
	{ "bytes=0-", 0, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-0", 0, RANGE_UNSATISFIABLE, 0, 0 },
	/* A suffix of an empty file is all of it: 200 (RFC 9110 §14.1.2). */
	{ "bytes=-5", 0, RANGE_NONE, 0, 0 },
	{ "bytes=100-199", UINT64_C(5000000000), RANGE_OK, 100, 199 },
	{ "bytes=4999999999-", UINT64_C(5000000000), RANGE_OK, UINT64_C(4999999999),
	  UINT64_C(4999999999) },
};

START_TEST(test_range_table)
{
	const struct range_case *c = &range_cases[_i];
	struct http_ranges rs;
	enum http_range_result r = http_range_parse(c->header, strlen(c->header), c->size, 16, &rs);
	uint64_t first = rs.n ? rs.r[0].first : 77, last = rs.n ? rs.r[0].last : 77;

	ck_assert_msg(r == c->r, "Range: %s (size %ju) = %d, want %d", c->header, (uintmax_t)c->size,
		      (int)r, (int)c->r);
	if (r == RANGE_OK) {
		ck_assert_msg(rs.n == 1, "Range: %s: %zu ranges", c->header, rs.n);
		ck_assert_msg(first == c->first && last == c->last, "Range: %s = %ju-%ju, want %ju-%ju",
			      c->header, (uintmax_t)first, (uintmax_t)last, (uintmax_t)c->first,
			      (uintmax_t)c->last);
	}
}
END_TEST

START_TEST(test_range_len_bounds)
{
	struct http_ranges rs;

	/* Only len bytes are the header: "bytes=0-1" of "bytes=0-1,2-3". */
	ck_assert_int_eq(http_range_parse("bytes=0-1,2-3", 9, 100, 16, &rs), RANGE_OK);
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_uint_eq(rs.r[0].first, 0);
	ck_assert_uint_eq(rs.r[0].last, 1);
}
END_TEST

/* Expect header on a file of size to give the ranges want ("a-b,c-d"). */
static void expect_ranges(const char *header, uint64_t size, unsigned max, const char *want)
{
	struct http_ranges rs;
	char got[256] = "";
	size_t pos = 0;

	ck_assert_msg(http_range_parse(header, strlen(header), size, max, &rs) == RANGE_OK,
		      "Range: %s not OK", header);
	for (size_t i = 0; i < rs.n; i++)
		pos += (size_t)snprintf(got + pos, sizeof(got) - pos, "%s%ju-%ju", i ? "," : "",
					(uintmax_t)rs.r[i].first, (uintmax_t)rs.r[i].last);
	ck_assert_msg(strcmp(got, want) == 0, "Range: %s = %s, want %s", header, got, want);
}

START_TEST(test_multiple_ranges_sorted_and_coalesced)
{
	struct http_ranges rs;
	char many[512];
	size_t pos;

	expect_ranges("bytes=0-1,5-6", 1000, 16, "0-1,5-6");
	expect_ranges("bytes=0-1, 5-6", 1000, 16, "0-1,5-6");
	expect_ranges("bytes=5-6,0-1", 1000, 16, "0-1,5-6");
	/* Adjacent and overlapping ranges are merged (RFC 9110 §14.6). */
	expect_ranges("bytes=0-1,2-3", 1000, 16, "0-3");
	expect_ranges("bytes=0-10,5-15,-3", 1000, 16, "0-15,997-999");
	/* An unsatisfiable member is dropped when another is satisfiable. */
	expect_ranges("bytes=0-1,2000-3000", 1000, 16, "0-1");
	ck_assert_int_eq(http_range_parse("bytes=2000-,3000-", 17, 1000, 16, &rs), RANGE_UNSATISFIABLE);
	/* One bad member: the header is ignored. */
	ck_assert_int_eq(http_range_parse("bytes=0-1,x", 11, 1000, 16, &rs), RANGE_NONE);
	/* More than the file in total: the whole file, as nginx. */
	ck_assert_int_eq(http_range_parse("bytes=0-999,0-999", 17, 1000, 16, &rs), RANGE_NONE);
	/* max_ranges members are fine, one more is the whole file. */
	pos = (size_t)snprintf(many, sizeof(many), "bytes=");
	for (int i = 0; i < 17; i++)
		pos += (size_t)snprintf(many + pos, sizeof(many) - pos, "%s%d-%d", i ? "," : "", 3 * i, 3 * i);
	ck_assert_int_eq(http_range_parse(many, strlen(many), 1000, 16, &rs), RANGE_NONE);
	ck_assert_int_eq(http_range_parse(many, strlen(many), 1000, 17, &rs), RANGE_OK);
	ck_assert_uint_eq(rs.n, 17);
}
END_TEST

/* ------------------------------------------------------------------- open */

static char tree_parent[256]; /* holds outside.txt and root/ */
static char tree_root[PATH_MAX];
static int root_fd = -1;

static void tree_file(const char *rel, const char *content, mode_t mode)
{
	char p[PATH_MAX * 2];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", tree_root, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void tree_dir(const char *rel)
{
	ck_assert_int_eq(mkdirat(root_fd, rel, 0755), 0);
}

static void tree_link(const char *target, const char *rel)
{
	ck_assert_int_eq(symlinkat(target, root_fd, rel), 0);
}

static void tree_setup(void)
{
	char p[PATH_MAX * 2];
	int fd;
	struct sockaddr_un sa;

	snprintf(tree_parent, sizeof(tree_parent), "/tmp/drover-test-static-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tree_parent));
	snprintf(tree_root, sizeof(tree_root), "%s/root", tree_parent);
	ck_assert_int_eq(mkdir(tree_root, 0755), 0);
	root_fd = open(tree_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);

	snprintf(p, sizeof(p), "%s/outside.txt", tree_parent);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "secret", 6), 6);
	close(fd);

	tree_file("file.txt", "hello", 0644);
	tree_file("noread.txt", "x", 0000);
	tree_file(".secret", "s", 0644);
	tree_dir(".git");
	tree_file(".git/config", "c", 0644);
	tree_dir("withindex");
	tree_file("withindex/index.html", "<p>hi</p>", 0644);
	tree_dir("withindex/sub");
	tree_dir("noindex");
	tree_file("noindex/a.txt", "a", 0644);
	tree_dir("indexisdir");
	tree_dir("indexisdir/index.html");
	tree_dir("indexisfifo");
	ck_assert_int_eq(mkfifoat(root_fd, "indexisfifo/index.html", 0644), 0);
	tree_dir("indexlinkout");
	snprintf(p, sizeof(p), "%s/outside.txt", tree_parent);
	tree_link(p, "indexlinkout/index.html");
	tree_dir("indexlinkin");
	tree_link("../file.txt", "indexlinkin/index.html");
	ck_assert_int_eq(mkfifoat(root_fd, "fifo", 0644), 0);

	tree_link("file.txt", "link-in");
	tree_link("withindex", "dirlink-in");
	tree_link("withindex/../file.txt", "link-dotdot-in");
	tree_link(p, "link-out-abs");
	tree_link("../outside.txt", "link-out-rel");
	tree_link("/etc/passwd", "link-passwd");
	tree_link("/proc/self/root/etc/passwd", "link-magic");
	tree_link("loop-b", "loop-a");
	tree_link("loop-a", "loop-b");
	tree_link("nowhere", "dangling");

	/* A unix socket in the root: never served. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(p, sizeof(p), "%s/sock", tree_root);
	if (strlen(p) < sizeof(sa.sun_path)) {
		memcpy(sa.sun_path, p, strlen(p) + 1);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	close(fd);
}

static int tree_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static void tree_teardown(void)
{
	/* A test may have made directories unreadable; nftw must get in. */
	if (root_fd >= 0) {
		fchmodat(root_fd, "withindex", 0755, 0);
		fchmodat(root_fd, "noindex", 0755, 0);
		close(root_fd);
	}
	root_fd = -1;
	nftw(tree_parent, tree_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* http_path_open() and its convention: 0 exactly when it answers 200 (an
 * open fd), else -errno; the HTTP status is f->status, returned here. */
static int open_status(int root, const char *path, const struct http_path_options *o,
		       struct http_path_file *f)
{
	int rc = http_path_open(root, path, o, f);

	ck_assert_msg(rc <= 0 && (rc == 0) == (f->status == 200),
		      "http_path_open(%s) = %d with status %d", path, rc, f->status);
	return f->status;
}

static const struct http_path_options opts_default = { "index.html", false, false, false };

/* Open path and check status, that fd is open exactly on 200, and name. */
static void expect_open(const struct http_path_options *o, const char *path, int status, const char *name)
{
	struct http_path_file f;
	int rc;

	memset(&f, 0x5a, sizeof(f));
	rc = open_status(root_fd, path, o, &f);
	ck_assert_msg(rc == status && f.status == status, "open_status(%s) = %d (f.status %d), want %d",
		      path, rc, f.status, status);
	if (status == 200) {
		ck_assert_msg(f.fd >= 0, "%s: no fd", path);
		ck_assert_msg(fcntl(f.fd, F_GETFD) & FD_CLOEXEC, "%s: fd not O_CLOEXEC", path);
		if (name != NULL)
			ck_assert_msg(strcmp(f.type_name, name) == 0, "%s: type_name \"%s\", want \"%s\"",
				      path, f.type_name, name);
		close(f.fd);
	} else {
		ck_assert_msg(f.fd == -1, "%s: status %d with fd %d", path, status, f.fd);
		ck_assert(f.kind != HTTP_PATH_LISTING);
	}
}

START_TEST(test_open_basic)
{
	struct http_path_file f;
	char buf[16];

	ck_assert_int_eq(open_status(root_fd, "/file.txt", &opts_default, &f), 200);
	ck_assert(S_ISREG(f.st.st_mode));
	ck_assert_int_eq(f.st.st_size, 5);
	ck_assert(f.kind != HTTP_PATH_LISTING);
	ck_assert_str_eq(f.type_name, "file.txt");
	ck_assert_int_eq(pread(f.fd, buf, sizeof(buf), 0), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	/* Read-only. */
	ck_assert_int_eq(fcntl(f.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	close(f.fd);

	expect_open(&opts_default, "/missing", 404, NULL);
	expect_open(&opts_default, "/missing/", 404, NULL);
	expect_open(&opts_default, "/missing/deeper/x.txt", 404, NULL);
	expect_open(&opts_default, "/file.txt/", 404, NULL);      /* a file is not a directory */
	expect_open(&opts_default, "/file.txt/x", 404, NULL);     /* ENOTDIR */
	expect_open(&opts_default, "/dangling", 404, NULL);
	expect_open(&opts_default, "/loop-a", 404, NULL);
	/* Not normalised: refused, whatever the caller forgot. */
	expect_open(&opts_default, "file.txt", 400, NULL);
	expect_open(&opts_default, "", 400, NULL);
	expect_open(&opts_default, "/../outside.txt", 400, NULL);
	expect_open(&opts_default, "/withindex/../file.txt", 400, NULL);
	{
		char longp[PATH_MAX + 10];

		longp[0] = '/';
		memset(longp + 1, 'a', sizeof(longp) - 2);
		longp[sizeof(longp) - 1] = '\0';
		expect_open(&opts_default, longp, 404, NULL);
		memset(longp + 1, 'a', 300); /* one component longer than NAME_MAX */
		longp[301] = '\0';
		expect_open(&opts_default, longp, 404, NULL);
	}
}
END_TEST

START_TEST(test_open_directories)
{
	struct http_path_options o = opts_default;
	struct http_path_file f;

	expect_open(&o, "/withindex", 301, NULL);
	expect_open(&o, "/withindex/", 200, "index.html");
	ck_assert_int_eq(open_status(root_fd, "/withindex/", &o, &f), 200);
	ck_assert(S_ISREG(f.st.st_mode));
	ck_assert_int_eq(f.st.st_size, 9);
	ck_assert(f.kind != HTTP_PATH_LISTING);
	close(f.fd);

	/* No index: 403 like nginx, unless autoindex. */
	expect_open(&o, "/noindex/", 403, NULL);
	expect_open(&o, "/withindex/sub/", 403, NULL);
	expect_open(&o, "/", 403, NULL);
	expect_open(&o, "/indexisdir/", 403, NULL);
	expect_open(&o, "/indexisfifo/", 403, NULL);
	expect_open(&o, "/indexlinkout/", 403, NULL); /* index leaves the root: no index */
	expect_open(&o, "/indexlinkin/", 200, "index.html");

	o.autoindex = true;
	ck_assert_int_eq(open_status(root_fd, "/noindex/", &o, &f), 200);
	ck_assert(f.kind == HTTP_PATH_LISTING);
	ck_assert(S_ISDIR(f.st.st_mode));
	{
		/* The fd is readable as a directory. */
		DIR *d = fdopendir(f.fd);
		struct dirent *e;
		bool seen = false;

		ck_assert_ptr_nonnull(d);
		while ((e = readdir(d)) != NULL)
			seen |= strcmp(e->d_name, "a.txt") == 0;
		ck_assert(seen);
		closedir(d);
	}
	ck_assert_int_eq(open_status(root_fd, "/", &o, &f), 200);
	ck_assert(f.kind == HTTP_PATH_LISTING);
	close(f.fd);
	expect_open(&o, "/noindex", 301, NULL);
	/* An index still wins over the listing. */
	ck_assert_int_eq(open_status(root_fd, "/withindex/", &o, &f), 200);
	ck_assert(f.kind != HTTP_PATH_LISTING);
	close(f.fd);

	/* No index configured. */
	o.autoindex = false;
	o.index = NULL;
	expect_open(&o, "/withindex/", 403, NULL);
	o.index = "";
	expect_open(&o, "/withindex/", 403, NULL);
	/* Another index name. */
	o.index = "a.txt";
	expect_open(&o, "/noindex/", 200, "a.txt");
}
END_TEST

START_TEST(test_open_dotfiles)
{
	struct http_path_options o = opts_default;

	expect_open(&o, "/.secret", 404, NULL);
	expect_open(&o, "/.git/config", 404, NULL);
	expect_open(&o, "/.git/", 404, NULL);
	expect_open(&o, "/.git", 404, NULL);
	o.dotfiles = true;
	expect_open(&o, "/.secret", 200, ".secret");
	expect_open(&o, "/.git/config", 200, "config");
	expect_open(&o, "/.git", 301, NULL);
}
END_TEST

START_TEST(test_open_symlinks)
{
	struct http_path_options o = opts_default;
	struct http_path_file f;
	char buf[16];

	/* Inside the root: fine. */
	expect_open(&o, "/link-in", 200, "link-in");
	expect_open(&o, "/link-dotdot-in", 200, "link-dotdot-in");
	expect_open(&o, "/dirlink-in", 301, NULL);
	expect_open(&o, "/dirlink-in/", 200, "index.html");
	expect_open(&o, "/dirlink-in/index.html", 200, "index.html");
	/* Leaving the root: looks like nothing is there. */
	expect_open(&o, "/link-out-abs", 404, NULL);
	expect_open(&o, "/link-out-rel", 404, NULL);
	expect_open(&o, "/link-passwd", 404, NULL);
	expect_open(&o, "/link-magic", 404, NULL);

	o.follow_symlinks = true;
	expect_open(&o, "/link-in", 200, "link-in");
	ck_assert_int_eq(open_status(root_fd, "/link-out-rel", &o, &f), 200);
	ck_assert_int_eq(pread(f.fd, buf, sizeof(buf), 0), 6);
	ck_assert_int_eq(memcmp(buf, "secret", 6), 0);
	close(f.fd);
	expect_open(&o, "/link-out-abs", 200, "link-out-abs");
	if (access("/etc/passwd", R_OK) == 0)
		expect_open(&o, "/link-passwd", 200, "link-passwd");
	expect_open(&o, "/indexlinkout/", 200, "index.html");
	expect_open(&o, "/loop-a", 404, NULL);
}
END_TEST

START_TEST(test_open_special_files)
{
	/* A FIFO must not block open(2) (check's timeout would fire). */
	alarm(10);
	expect_open(&opts_default, "/fifo", 403, NULL);
	expect_open(&opts_default, "/fifo/", 403, NULL);
	alarm(0);
	if (faccessat(root_fd, "sock", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		expect_open(&opts_default, "/sock", 403, NULL);
	/* Permissions: root reads everything, so only check as a user. */
	if (geteuid() != 0) {
		struct http_path_options o = opts_default;

		expect_open(&opts_default, "/noread.txt", 403, NULL);
		/* Searchable but unreadable directory: its index is served,
		 * a listing cannot be. */
		ck_assert_int_eq(fchmodat(root_fd, "withindex", 0311, 0), 0);
		ck_assert_int_eq(fchmodat(root_fd, "noindex", 0311, 0), 0);
		o.autoindex = true;
		expect_open(&o, "/withindex/", 200, "index.html");
		expect_open(&o, "/withindex", 301, NULL);
		expect_open(&o, "/noindex/", 403, NULL);
		expect_open(&o, "/noindex/a.txt", 200, "a.txt");
	} else {
		expect_open(&opts_default, "/noread.txt", 200, "noread.txt");
	}
}
END_TEST

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

START_TEST(test_open_no_fd_leak)
{
	static const char *const paths[] = {
		"/missing", "/file.txt/", "/withindex", "/noindex/", "/indexisdir/", "/indexisfifo/",
		"/indexlinkout/", "/.secret", "/fifo", "/link-out-abs", "/loop-a", "/sock", "x",
		"/dirlink-in",
	};
	struct http_path_options o = opts_default;
	size_t before = count_fds();

	for (int round = 0; round < 2; round++) {
		o.follow_symlinks = round == 1;
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			struct http_path_file f;

			/* follow_symlinks serves the links leaving the root. */
			if (open_status(root_fd, paths[i], &o, &f) == 200)
				close(f.fd);
			else
				ck_assert_int_eq(f.fd, -1);
		}
	}
	ck_assert_uint_eq(count_fds(), before);
}
END_TEST

/* The fallback for kernels without openat2(2): make it fail with ENOSYS
 * through seccomp, in a child so the filter stays there. The child reports
 * the first failing check as its exit code. */
static int fallback_child(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
	static const struct {
		const char *path;
		bool follow;
		int status;
	} cases[] = {
		{ "/file.txt", false, 200 },
		{ "/missing", false, 404 },
		{ "/withindex", false, 301 },
		{ "/withindex/", false, 200 },
		{ "/noindex/", false, 403 },
		{ "/file.txt/", false, 404 },
		{ "/.secret", false, 404 },
		{ "/fifo", false, 403 },
		{ "/indexisfifo/", false, 403 },
		/* The walk follows no symlink at all, even inside the root. */
		{ "/link-in", false, 404 },
		{ "/dirlink-in/", false, 404 },
		{ "/dirlink-in/index.html", false, 404 },
		{ "/link-out-abs", false, 404 },
		{ "/link-out-rel", false, 404 },
		{ "/link-magic", false, 404 },
		{ "/indexlinkout/", false, 403 },
		/* follow_symlinks never used openat2. */
		{ "/link-out-rel", true, 200 },
	};
	struct http_path_options o = opts_default;
	struct http_path_file f;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return 100; /* no seccomp here: skipped */
	if (syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0) >= 0 || errno != ENOSYS)
		return 101;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o.follow_symlinks = cases[i].follow;
		if (open_status(root_fd, cases[i].path, &o, &f) != cases[i].status)
			return (int)i + 1;
		if ((f.status == 200) != (f.fd >= 0))
			return (int)i + 1;
		if (f.fd >= 0)
			close(f.fd);
	}
	return 0;
}

START_TEST(test_open_fallback_without_openat2)
{
	pid_t pid;
	int status;

	alarm(10);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fallback_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	alarm(0);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 100)
		return; /* seccomp unavailable */
	ck_assert_msg(WEXITSTATUS(status) == 0, "fallback case %d failed", WEXITSTATUS(status));
}
END_TEST

/* ------------------------------------------------------------------- main */

/* ------------------------------------------------------------ codings */

/* A request whose only fields are Accept-Encoding lines (NULL-ended). */
static void accept_lines(struct http_request *req, const char *const *lines)
{
	memset(req, 0, sizeof(*req));
	for (; *lines; lines++) {
		struct http_header *h = &req->headers[req->n_headers++];
		h->name = (struct http_str){ "Accept-Encoding", 15 };
		h->value = (struct http_str){ *lines, strlen(*lines) };
	}
}

static const struct {
	const char *ae;
	int want; /* with br gzip zstd, all three present */
} coding_cases[] = {
	{ "gzip, br, zstd", HTTP_CODING_BR },
	{ "gzip;q=0.5, zstd;q=0.5", HTTP_CODING_GZIP },
	{ "gzip;q=0.5, zstd;q=0.501", HTTP_CODING_ZSTD },
	{ "gzip;q=0., br;q=0.0, zstd;q=0.000", HTTP_CODING_IDENTITY },
	{ "gzip;q=1.000", HTTP_CODING_GZIP },
	{ "br;q=1.001, gzip", HTTP_CODING_GZIP },       /* not a qvalue: br skipped */
	{ "br;q=0.1234, gzip;q=0.1", HTTP_CODING_GZIP },
	{ "br;q=, gzip;q=0.1", HTTP_CODING_GZIP },
	{ "br;q=x, gzip;q=0.1", HTTP_CODING_GZIP },
	{ "br;level=5;q=0.9, gzip;q=0.5", HTTP_CODING_BR }, /* other parameters ignored */
	{ "br;q=0.4, br;q=0.9, gzip;q=0.5", HTTP_CODING_BR }, /* twice: the better */
	{ ",, gzip ,", HTTP_CODING_GZIP },
	{ "*;q=0.2, identity;q=0.3", HTTP_CODING_IDENTITY },
	{ "*;q=0.3, identity;q=0.3", HTTP_CODING_BR },   /* equal: the variant */
	{ "identity;q=0, gzip;q=0", HTTP_CODING_IDENTITY }, /* nothing acceptable: the file anyway */
	{ "br-ish, gzipx", HTTP_CODING_IDENTITY },
	{ "", HTTP_CODING_IDENTITY },
};

START_TEST(test_coding_choose_table)
{
	static const struct http_precompressed all = { 3, { HTTP_CODING_BR, HTTP_CODING_GZIP, HTTP_CODING_ZSTD } };
	const unsigned present = 7;
	struct http_request req;
	const char *lines[] = { coding_cases[_i].ae, NULL };
	accept_lines(&req, lines);
	int got = http_coding_choose(&req, &all, present);
	ck_assert_msg(got == coding_cases[_i].want, "'%s': %s, wanted %s", coding_cases[_i].ae,
		      http_coding_name(got), http_coding_name(coding_cases[_i].want));
}
END_TEST

START_TEST(test_coding_choose_present_and_order)
{
	static const struct http_precompressed zg = { 2, { HTTP_CODING_ZSTD, HTTP_CODING_GZIP } };
	struct http_request req;
	const char *both[] = { "gzip, zstd, br", NULL };
	accept_lines(&req, both);
	ck_assert_int_eq(http_coding_choose(&req, &zg, 7), HTTP_CODING_ZSTD);
	ck_assert_int_eq(http_coding_choose(&req, &zg, 1u << HTTP_CODING_GZIP), HTTP_CODING_GZIP);
	/* br is there but not configured. */
	ck_assert_int_eq(http_coding_choose(&req, &zg, 1u << HTTP_CODING_BR), HTTP_CODING_IDENTITY);
	ck_assert_int_eq(http_coding_choose(&req, &zg, 0), HTTP_CODING_IDENTITY);
	const char *none[] = { NULL };
	accept_lines(&req, none);
	ck_assert_int_eq(http_coding_choose(&req, &zg, 7), HTTP_CODING_IDENTITY);
	const char *two[] = { "zstd;q=0", "gzip", NULL };
	accept_lines(&req, two);
	ck_assert_int_eq(http_coding_choose(&req, &zg, 7), HTTP_CODING_GZIP);
}
END_TEST

START_TEST(test_coding_etag_and_list)
{
	char etag[96] = "\"1f-5a\"";
	http_coding_etag(etag, sizeof etag, HTTP_CODING_GZIP);
	ck_assert_str_eq(etag, "\"1f-5a-gz\"");
	char small[10] = "\"1f-5a\"";
	http_coding_etag(small, sizeof small, HTTP_CODING_ZSTD); /* would not fit: left as it is */
	ck_assert_str_eq(small, "\"1f-5a\"");
	ck_assert_str_eq(http_coding_suffix(HTTP_CODING_BR), ".br");
	ck_assert_str_eq(http_coding_suffix(HTTP_CODING_ZSTD), ".zst");

	struct http_precompressed p;
	char why[128];
	ck_assert_int_eq(http_precompressed_parse("br, gzip\tzstd", &p, why, sizeof why), 0);
	ck_assert_uint_eq(p.n, 3);
	ck_assert_int_eq(http_precompressed_parse("off", &p, why, sizeof why), 0);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_int_eq(http_precompressed_parse("gzip br gzip", &p, why, sizeof why), -EINVAL);
	ck_assert_int_eq(http_precompressed_parse("identity", &p, why, sizeof why), -EINVAL);
	ck_assert_int_eq(http_precompressed_parse(" , ", &p, why, sizeof why), -EINVAL);
}
END_TEST

static Suite *static_suite(void)
{
	Suite *s = suite_create("static");
	TCase *tc;

	tc = tcase_create("normalize");
	tcase_add_loop_test(tc, test_normalize_table, 0, (int)(sizeof(norm_cases) / sizeof(norm_cases[0])));
	tcase_add_test(tc, test_normalize_bounds);
	tcase_add_test(tc, test_dotfile);
	suite_add_tcase(s, tc);

	tc = tcase_create("mime");
	tcase_add_test(tc, test_mime_file);
	tcase_add_test(tc, test_mime_builtin);
	tcase_add_test(tc, test_mime_many_and_system);
	suite_add_tcase(s, tc);

	tc = tcase_create("validators");
	tcase_add_test(tc, test_etag);
	tcase_add_test(tc, test_http_date_format);
	tcase_add_loop_test(tc, test_http_date_parse_table, 0, (int)(sizeof(date_cases) / sizeof(date_cases[0])));
	tcase_add_test(tc, test_http_date_roundtrip);
	tcase_add_test(tc, test_http_date_rfc850_century);
	tcase_add_loop_test(tc, test_etag_matches_table, 0, (int)(sizeof(inm_cases) / sizeof(inm_cases[0])));
	tcase_add_test(tc, test_etag_strong_comparison_refuses_weak_tags);
	suite_add_tcase(s, tc);

	tc = tcase_create("codings");
	tcase_add_loop_test(tc, test_coding_choose_table, 0, (int)(sizeof(coding_cases) / sizeof(coding_cases[0])));
	tcase_add_test(tc, test_coding_choose_present_and_order);
	tcase_add_test(tc, test_coding_etag_and_list);
	suite_add_tcase(s, tc);

	tc = tcase_create("range");
	tcase_add_loop_test(tc, test_range_table, 0, (int)(sizeof(range_cases) / sizeof(range_cases[0])));
	tcase_add_test(tc, test_range_len_bounds);
	tcase_add_test(tc, test_multiple_ranges_sorted_and_coalesced);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
	tcase_add_test(tc, test_open_basic);
	tcase_add_test(tc, test_open_directories);
	tcase_add_test(tc, test_open_dotfiles);
	tcase_add_test(tc, test_open_symlinks);
	tcase_add_test(tc, test_open_special_files);
	tcase_add_test(tc, test_open_no_fd_leak);
	tcase_add_test(tc, test_open_fallback_without_openat2);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(static_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
