/* handoff_client: the client of bench/handoff.sh, built from the test
 * suite's load client (tests/load.c), which checks every byte of every
 * response and counts the TCP connections it opens.
 *
 *   handoff_client site DIR   write the site (files of known content) into DIR
 *   handoff_client load PORT  16 keep-alive clients and 4 clients pipelining
 *                             8 deep on 127.0.0.1:PORT until stdin closes,
 *                             then one line per kind of client:
 *   RESULT keepalive clients=16 requests=N failed=N retried=N connections=N
 *   RESULT pipelining clients=4 ...
 *
 * A request whose connection closed before any byte of its answer is
 * re-sent on a new connection (retried), up to 5 times, as a browser or a
 * load balancer would; one answered wrong, cut short, or never answered
 * counts as failed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "load.h"

static const struct {
	const char *name;
	size_t size;
	unsigned weight;
} files[] = {
	{ "empty.txt", 0, 10 }, { "tiny.txt", 17, 40 }, { "page.txt", 4099, 25 },
	{ "medium.txt", 65537, 20 }, { "large.txt", 300007, 5 },
};
#define N_FILES (sizeof files / sizeof files[0])
static char *data[N_FILES];

static void make_data(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
	for (size_t f = 0; f < N_FILES; f++) {
		data[f] = malloc(files[f].size + 1);
		if (!data[f])
			exit(1);
		for (size_t i = 0; i < files[f].size; i++) {
			uint32_t x = (uint32_t)i * 2654435761u ^ (uint32_t)(f + 1) * 40503u;
			x ^= x >> 15;
			data[f][i] = i % 64 == 63 ? '\n' : alphabet[x % 64];
		}
		data[f][files[f].size] = '\0';
	}
}

static void print(const char *kind, unsigned clients, const struct h_load_stats *s)
{
	printf("RESULT %s clients=%u requests=%" PRIu64 " failed=%" PRIu64 " retried=%" PRIu64
	       " connections=%" PRIu64 "\n",
	       kind, clients, s->ok, h_load_failed(s), s->retried, s->connects);
	fflush(stdout);
}

static int g_argc;
static char **g_argv;
static int g_rc;

/* The whole run is one check test (not forked): the load client asserts
 * with check, which needs a test running. */
START_TEST(run)
{
	int argc = g_argc;
	char **argv = g_argv;
	make_data();
	if (strcmp(argv[1], "site") == 0) {
		for (size_t f = 0; f < N_FILES; f++) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", argv[2], files[f].name);
			h_write_file(path, data[f]);
		}
		return;
	}
	(void)argc;
	struct h_load_file lf[N_FILES];
	for (size_t f = 0; f < N_FILES; f++)
		lf[f] = (struct h_load_file){ .name = files[f].name, .data = data[f], .size = files[f].size,
					      .weight = files[f].weight };
	int port = atoi(argv[2]);
	struct h_load_opts ka = { .port = port, .mode = H_LOAD_HTTP, .conns = 16, .files = lf, .n_files = N_FILES,
				  .agent = "handoff-bench-keepalive" };
	struct h_load_opts pl = ka;
	pl.conns = 4;
	pl.pipeline = true;
	pl.agent = "handoff-bench-pipelining";
	struct h_load *a = h_load_start(&ka);
	struct h_load *b = h_load_start(&pl);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	struct h_load_stats sa = h_load_stop(a, "keepalive");
	struct h_load_stats sb = h_load_stop(b, "pipelining");
	print("keepalive", 16, &sa);
	print("pipelining", 4, &sb);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "site") && strcmp(argv[1], "load"))) {
		fprintf(stderr, "usage: %s site DIR | load PORT\n", argv[0]);
		return 2;
	}
	g_argc = argc;
	g_argv = argv;
	Suite *s = suite_create("handoff_client");
	TCase *tc = tcase_create("run");
	tcase_add_test(tc, run);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	g_rc = srunner_ntests_failed(sr);
	srunner_free(sr);
	return g_rc ? 1 : 0;
}
