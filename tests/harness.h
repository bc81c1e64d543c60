/* harness: what the integration tests share. Starts the real drover binary
 * ($DROVER_BIN) with a config written to a private temp directory, passes
 * listeners by socket activation (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES) or
 * lets it bind, reads sd_notify datagrams from a NOTIFY_SOCKET the test owns,
 * and talks to it over real sockets on 127.0.0.1 or unix sockets.
 * Every wait has a generous upper bound that only turns a hang into a test
 * failure; nothing asserts speed. All helpers ck_assert on failure unless
 * their comment says otherwise. */
#ifndef DROVER_HARNESS_H
#define DROVER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H_WAIT_MS 20000 /* upper bound of any single wait */

/* A listener the test creates and passes to drover by socket activation. */
struct h_activation {
	const char *name; /* FileDescriptorName (NULL: pass no names) */
	int fd;           /* a listening socket made by h_listen_tcp()/h_listen_unix() */
};

struct h_drover {
	pid_t pid;
	char dir[256];         /* private temp dir (config, logs, sockets); removed by h_drover_free */
	char config_path[300];
	char log_path[300];    /* drover's stderr */
	int notify_fd;         /* -1 unless opts.notify */
	char notify_path[300];
	char notify_buf[65536];/* every datagram received so far, '\n'-joined */
	size_t notify_len;
	int exit_status;       /* wait() status once reaped, else -1 */
};

struct h_opts {
	bool notify;                    /* set NOTIFY_SOCKET to a socket the test reads */
	const struct h_activation *fds; /* socket-activated listeners (LISTEN_FDS) */
	size_t n_fds;
	const char *const *extra_args;  /* more argv after "-c CONFIG", NULL-terminated */
	const char *const *extra_env;   /* "K=V" strings, NULL-terminated */
	bool no_wait_ready;             /* do not wait for READY=1 / the listeners */
	int stderr_fd;                  /* > 0: drover's stdout and stderr (else log_path) */
};

/* A fresh private directory under $TMPDIR (or /tmp); caller frees. */
char *h_tmpdir(void);
/* Write content to path (mode 0644). */
void h_write_file(const char *path, const char *content);
/* A free TCP port on 127.0.0.1 (bound to 0 and released). */
int h_free_port(void);
/* A listening TCP socket on 127.0.0.1:0 (backlog 1024); its port in *port. */
int h_listen_tcp(int *port);
/* A listening unix stream socket at path. */
int h_listen_unix(const char *path);

/* Start drover with config text (the string "@DIR@" in it is replaced by the
 * private dir). $DROVER_WRAPPER, if set, is a command line put before the
 * binary (words split on spaces; e.g. "valgrind --trace-children=yes"). Unless opts->no_wait_ready, waits until READY=1 (with notify)
 * or until drover's log says it is ready ("ready" line). */
struct h_drover *h_drover_start(const char *config, const struct h_opts *opts);
/* Run "drover -t -c FILE" (or other args) on config text; returns exit code,
 * output (stdout+stderr) in out. */
int h_drover_check(const char *config, const char *const *args, char *out, size_t out_len);
/* Send a signal to the supervisor. */
void h_drover_kill(struct h_drover *d, int sig);
/* Wait until the supervisor exits; returns its wait status (also in d->exit_status). */
int h_drover_wait(struct h_drover *d);
/* SIGKILL what is left, remove the temp dir, free. */
void h_drover_free(struct h_drover *d);
/* A fork gate: a tracer process seizes the supervisor (ptrace, with
 * PTRACE_O_TRACEFORK), so that every worker it forks from now on is held
 * stopped before it runs its first instruction, until the gate opens. The
 * supervisor itself runs on (its fork events and the signals delivered to
 * it are passed on at once). A worker must not be able to hang at start,
 * so this is how a test keeps a new generation from becoming ready. */
struct h_fork_gate {
	pid_t tracer;
	int open_fd;   /* closing it (EOF) opens the gate */
	char why[160]; /* why it could not be closed */
};
/* Close the gate on supervisor pid sup (returns true once it is seized).
 * False, with the reason in g->why, if this machine does not let a test
 * ptrace drover (EPERM): the caller skips (h_skip). Other failures assert.
 * Workers a gate holds keep copies of every fd the supervisor had at the
 * fork, its ends of the control channels too. */
bool h_fork_gate_close(struct h_fork_gate *g, pid_t sup);
/* Open it: every worker held runs; the supervisor is no longer traced
 * (also when it has died meanwhile). */
void h_fork_gate_open(struct h_fork_gate *g);
/* Replace d's config file with text in one step (written beside it, renamed). */
void h_config_replace(struct h_drover *d, const char *text);
/* Wait for a notify datagram containing needle (searching everything
 * received, starting at *from if from != NULL, which is advanced past it). */
bool h_notify_wait(struct h_drover *d, const char *needle, size_t *from);
/* Whether the log contains needle now. */
bool h_log_contains(struct h_drover *d, const char *needle);
/* Wait until the log contains needle. */
bool h_log_wait(struct h_drover *d, const char *needle);
/* Pids of the supervisor's live children (its workers), from /proc; returns count. */
size_t h_worker_pids(struct h_drover *d, pid_t *out, size_t max);
/* Wait until the supervisor has exactly n children. */
bool h_wait_workers(struct h_drover *d, size_t n);

/* Blocking TCP connect to 127.0.0.1:port (fd, or -errno without asserting). */
int h_connect_tcp(int port);
/* The same with SO_RCVBUF set to rcvbuf first (0: the default), so that a
 * large response stays in flight on the server side. */
int h_connect_tcp_rcvbuf(int port, int rcvbuf);
/* Blocking unix connect (fd, or -errno without asserting). */
int h_connect_unix(const char *path);
/* Write all bytes (asserts). */
void h_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes (false on EOF/error/timeout, no assert). */
bool h_read_exact(int fd, void *buf, size_t len);
/* Read until EOF into buf (NUL-terminated); returns bytes, or -1 on error/timeout. */
ssize_t h_read_all(int fd, char *buf, size_t cap);

/* A parsed HTTP response. */
struct h_response {
	int status;
	char headers[8192];  /* raw header block, NUL-terminated */
	char *body;          /* malloc'd, NUL-terminated */
	size_t body_len;
};
/* Read one response from fd (Content-Length, chunked, or until close;
 * head_only: no body, as for HEAD); false on error/EOF. */
bool h_http_read_response(int fd, struct h_response *r, bool head_only);
/* Value of header name in r (case-insensitive), copied to out; false if absent. */
bool h_http_header(const struct h_response *r, const char *name, char *out, size_t out_len);
/* Free r->body. */
void h_http_response_free(struct h_response *r);
/* One request on a new connection: send raw, read one response. */
bool h_http_request(int port, const char *raw, struct h_response *r);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t h_now_ms(void);
/* Milliseconds until deadline (from h_now_ms), 0 if past. */
int h_left_ms(int64_t deadline);
/* Wait ms milliseconds: only between polls of a condition no event reports. */
void h_pause_ms(int ms);
/* Remove a directory tree (no error if it is gone). */
void h_rm_rf(const char *dir);
/* Whole file into a malloc'd NUL-terminated buffer (NULL if unreadable). */
char *h_slurp(const char *path, size_t *len_out);
/* The state letter of pid from /proc/PID/stat ('R', 'S', 'T', ...), 0 if gone. */
char h_proc_state(pid_t pid);

/* Under AddressSanitizer, whose allocator cannot be made to fail the way an
 * address-space limit makes malloc fail, such faults are not observable. */
#if defined(__SANITIZE_ADDRESS__)
#define H_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_UNDER_ASAN 1
#endif
#endif

/* Allocation failure is the fault a test injects: under AddressSanitizer
 * (ASAN_OPTIONS set by make check), let malloc return NULL as it does
 * without, instead of a report that aborts the process. Affects drover
 * processes started afterwards. */
void h_asan_may_return_null(void);
/* a/b into out (asserts it fits). */
void h_path_join(char *out, size_t cap, const char *a, const char *b);

/* Run every test of s (Check's CK_ENV verbosity: CK_VERBOSITY=verbose lists
 * each test), free the runner; the number of failed tests. If none failed
 * but a test called h_skip(), it exits 77 instead: automake's SKIP. */
struct Suite;
int h_run_suite(struct Suite *s);
/* A test that needs what this machine does not offer (a privilege, a kernel
 * feature) calls this with the reason, cleans up and returns: "SKIP: test:
 * reason" goes to the log and the program ends as SKIP (see h_run_suite).
 * Only for what the machine lacks, never for a failure. */
#define h_skip(...) h_skip_at(__func__, __VA_ARGS__)
void h_skip_at(const char *test, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run a shell command line, wait, return its exit code; output into out if non-NULL. */
int h_run(const char *cmdline, char *out, size_t out_len);

struct loop;
/* Unit tests of loop users: dispatch what is ready now, once. */
void h_loop_once(struct loop *loop);

/* The end of drover's log, for failure messages (a static buffer). */
const char *h_log_end(struct h_drover *d);
/* How often needle occurs in drover's log. */
size_t h_log_count(struct h_drover *d, const char *needle);
/* The sum of N over drover's log lines that hold "KEY N UNIT" (key
 * "out of memory:", unit "connection(s) dropped"), and in *lines (may be
 * NULL) how many such lines there are. */
unsigned long h_log_sum(struct h_drover *d, const char *key, const char *unit, unsigned *lines);
/* Connect to DIR/control.sock (the config's control_socket) and send one
 * command line; the fd, to read the answer from. */
int h_ctl_send(struct h_drover *d, const char *cmd);
/* One command and its whole answer, which must end in a line "OK ..."
 * (asserts, with the answer and the log). */
void h_ctl_ok(struct h_drover *d, const char *cmd, char *out, size_t cap);

/* An echo config: workers, control_socket in the private dir, a listener
 * "main" (protocol echo) and [echo]; server / listener / echo: more lines
 * for each (NULL: none). Caller frees. */
char *h_echo_config(unsigned workers, const char *server, const char *listener, const char *echo);
/* GET path on a fresh connection (Connection: close): a response must
 * come, with this status (0: any) and body (NULL: any). */
void h_get_ok(int port, const char *path, int status, const char *body);

/* The site fixture: a private directory (mode 0755: a worker may run as
 * nobody) with a document root www/ in it, and a drover serving it over
 * HTTP on a socket-activated TCP listener "web". */
struct h_site {
	struct h_drover *d;
	char *tmp;       /* the private directory */
	char www[512];   /* tmp/www */
	char admin[600]; /* tmp/admin.sock, with .admin */
	int port;        /* web's port */
};
struct h_site_opts {
	unsigned workers;   /* 0: 1 */
	const char *server; /* more [server] lines */
	const char *web;    /* more [listener web] lines */
	const char *http;   /* more [http] lines after root */
	const char *root;   /* NULL: www */
	int web_fd;         /* web's socket (port in s->port); 0: a new one; -1: none (.web binds) */
	bool admin;         /* also a unix listener "admin" (status = yes) at s->admin */
};
/* Make s->tmp and s->www, before files are written into them. */
void h_site_init(struct h_site *s);
/* Write content to www/rel. */
void h_site_file(struct h_site *s, const char *rel, const char *content);
/* Make the directory www/rel. */
void h_site_dir(struct h_site *s, const char *rel);
/* Start drover on the site (after h_site_init); waits for READY=1. */
void h_site_start(struct h_site *s, const struct h_site_opts *o);
/* Stop drover and remove the directory. */
void h_site_stop(struct h_site *s);

#endif
