/* load: the integration tests' one load client. A forked child process (so
 * no threads) keeps connections to 127.0.0.1:port busy until told to stop,
 * checks every byte of every answer, and counts what happened in a shared
 * mapping the test reads while it runs and after h_load_stop().
 *
 * Two modes:
 * - H_LOAD_HTTP: K keep-alive connections, each sending GETs for files of
 *   known content (single, or pipelined batches of 4..H_LOAD_DEPTH half the
 *   time), each response checked in status, Content-Length and every body
 *   byte.
 * - H_LOAD_ECHO: one "hi\n" exchange per new connection (connect, send,
 *   read the 3 bytes back, close), pause_ms apart, on each of K connections.
 *
 * What it allows (RFC 9112 section 9.3.2 and 9.6): a request that got no
 * byte of answer before the server closed the connection is re-sent on a
 * new connection and counted as "retried" (after a response that said
 * "Connection: close", after a plain EOF, or after a reset: each counted
 * separately), up to `attempts` tries. What it does not allow, counted as
 * "failed" (h_load_failed): an answer wrong in any byte, one cut short by
 * EOF or reset, and a request still unanswered after `attempts` tries or
 * when the load stops. Refused connections are counted apart as
 * connect_errors. The load stops by itself (self_stopped) after
 * H_LOAD_MAX_MS, H_LOAD_MAX_SENT requests or 1000 connect errors. */
#ifndef DROVER_TEST_LOAD_H
#define DROVER_TEST_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h_drover;

#define H_LOAD_CONNS 16          /* most (and default) concurrent connections */
#define H_LOAD_DEPTH 8           /* deepest pipelined batch */
#define H_LOAD_ATTEMPTS 5        /* default tries per request */
#define H_LOAD_MAX_MS 150000     /* the load stops by itself after this long */
#define H_LOAD_MAX_SENT 20000000 /* ... or after this many requests */
#define H_LOAD_DRAIN_MS 20000    /* after "stop": time for outstanding answers */

enum h_load_mode { H_LOAD_HTTP, H_LOAD_ECHO };

/* A file the HTTP load asks for: its URL path below "/", its exact content,
 * and how often it is asked for (weights out of 100 over all files). */
struct h_load_file {
	const char *name;
	const char *data;
	size_t size;
	unsigned weight;
};

struct h_load_opts {
	int port;                        /* 127.0.0.1:port */
	enum h_load_mode mode;
	unsigned conns;                  /* concurrent connections (0: H_LOAD_CONNS) */
	unsigned attempts;               /* tries per request (0: H_LOAD_ATTEMPTS; 1: no re-send) */
	/* H_LOAD_HTTP */
	bool pipeline;                   /* batches of 4..H_LOAD_DEPTH half the time */
	const struct h_load_file *files; /* read until h_load_start returns (at most 256) */
	size_t n_files;
	const char *agent;               /* User-Agent: AGENT/CONNECTION-NUMBER */
	/* H_LOAD_ECHO */
	int pause_ms;                    /* between one connection's exchanges */
};

struct h_load_stats {
	uint64_t sent;           /* requests written (re-sends included) */
	uint64_t ok;             /* complete, correct answers */
	uint64_t retried;        /* re-sent: the connection closed before any byte of their answer */
	uint64_t retried_close;  /*   ... after a response that said Connection: close */
	uint64_t retried_eof;    /*   ... after a plain EOF */
	uint64_t retried_reset;  /*   ... after a reset (or a wrong response) */
	uint64_t truncated;      /* failed: answer cut short by EOF or reset */
	uint64_t wrong;          /* failed: answer wrong in status, headers or body */
	uint64_t unanswered;     /* failed: never answered (attempts exhausted or load stopped) */
	uint64_t connect_errors; /* connect() refused/reset/failed */
	uint64_t resets;         /* ECONNRESET/EPIPE on an established connection */
	uint64_t connects;       /* connections established */
	uint64_t server_closes;  /* responses carrying Connection: close */
	uint64_t idle_closes;    /* EOF with nothing outstanding (allowed) */
	uint32_t finished;       /* the child is done, counters final */
	uint32_t self_stopped;   /* it stopped on its own bound, not when told */
	char first_problem[512]; /* the first failure, described */
};

struct h_load;

/* Start the load (asserts). */
struct h_load *h_load_start(const struct h_load_opts *o);
/* Wait until the load has had `more` further correct answers (asserts that
 * it has not stopped by itself and that it progresses within H_WAIT_MS;
 * d's log goes into the failure message). */
void h_load_wait_ok(struct h_load *l, uint64_t more, struct h_drover *d);
/* Tell the load to stop, wait for its outstanding answers (asserts that
 * the child ends cleanly), print "load[label]: ..." with its counters,
 * free l and return the counters. */
struct h_load_stats h_load_stop(struct h_load *l, const char *label);
/* truncated + wrong + unanswered. */
uint64_t h_load_failed(const struct h_load_stats *s);

/* A site whose every byte is known without reading it (h_load_byte), so a
 * client checks each byte it gets: files[f].data is made once (malloc'd,
 * NUL-terminated; kept for the checks) where it is still NULL, and every
 * file is written as DIR/name into a new private directory, returned (the
 * caller removes it: h_rm_rf, free). */
char *h_load_site(struct h_load_file *files, size_t n);
/* Byte off of the file-th file: printable, a newline every 64 bytes. */
char h_load_byte(size_t file, size_t off);

#endif
