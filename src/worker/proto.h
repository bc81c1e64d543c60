/* proto: the seam between a worker and the protocols it serves.
 *
 * A protocol is a table entry (struct proto). The table itself lives in the
 * protocol layer (src/proto/protocols.c) and is handed down as data:
 * proto_register() gives the worker layer the table, and config each
 * protocol's name and what it adds to the configuration file (its
 * struct config_module: its own sections, the keys it adds to every
 * [listener NAME]). A worker calls a protocol only through its entry, so it
 * knows no protocol by name, and a new protocol is one file plus one table
 * line, keys included.
 *
 * What a protocol may ask of its worker is struct proto_env: the loop, the
 * configuration, the scoreboard slot, whether the worker is draining, a
 * "request done" hook, the connection set, and the files it writes. No
 * calls into worker.c.
 *
 * Files a protocol's workers write (an access log) are named by its
 * files() operation and opened by the supervisor, before the workers drop
 * privileges (proto_files_open); a worker inherits them and finds them with
 * proto_env_file(). On reopen-logs the supervisor opens them again and the
 * worker puts the new ones in place of the old, under the same fd. */
#ifndef DROVER_WORKER_PROTO_H
#define DROVER_WORKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"

struct conn;
struct conn_set;
struct loop;
struct proto;
struct scoreboard;
struct scoreboard_slot;
struct metrics_slot;
struct transport_ops;

/* A listening socket as a worker sees it. */
struct worker_listener {
	int fd;
	/* Its [listener NAME]: the keys a protocol or transport adds there are
	 * read from config_find_listener(cfg, name). */
	char name[CONFIG_NAME_MAX + 1];
	const struct proto *proto;
	/* TCP_DEFER_ACCEPT is set on fd (defer_accept, or systemd's
	 * DeferAcceptSec=): a connection is accepted only once its first bytes
	 * have arrived, so they can be read at once (loop_add_fd_ready). */
	bool data_first;
	/* What its connections' bytes go through (transport.h); NULL: a
	 * plain socket. */
	const struct transport_ops *transport;
	/* The transport's listener-wide state (TLS: the SSL_CTX its
	 * connections start with), made by the supervisor before the fork. */
	void *transport_ctx;
	/* [listener] proxy_protocol: each connection starts with a PROXY
	 * protocol header (worker/proxy.h), read before the protocol gets it. */
	bool proxy_protocol;
};

/* Files one protocol writes. */
#define PROTO_MAX_FILES 4
/* Files of all protocols together. */
#define PROTO_FILESET_MAX 16

/* A file a protocol's workers write, as its files() operation names it. */
struct proto_file {
	const char *path; /* absolute */
	const char *key;  /* "[http] access_log", for messages */
	unsigned line;    /* of that key in the config file; 0: not set there */
};

/* Paths one protocol's workers read. */
#define PROTO_MAX_PATHS 4

/* A path a protocol's workers read (its files() are those they write),
 * which must be there when a generation starts, as its paths() names it. */
struct proto_path {
	const char *path; /* absolute */
	const char *key;  /* "[http] root", for messages */
	unsigned line;    /* of that key in the config file; 0: not set there */
	bool dir;         /* a directory the workers search; else a file they read */
};

/* The files of every protocol a config's listeners use, opened. */
struct proto_fileset {
	size_t n;
	struct proto_open_file {
		const struct proto *proto;
		size_t index; /* in what proto->files() returned */
		int fd;
	} f[PROTO_FILESET_MAX];
};

/* What a shortage of memory did to one connection (proto_env.out_of_memory). */
enum proto_shortage {
	PROTO_NOMEM_WAITING, /* it waits, unread, for memory (its bytes stay in the kernel) */
	PROTO_NOMEM_DROPPED, /* it was closed: it could not continue */
};

/* Most bytes read but not used yet that a hand-off carries with a
 * connection: a connection holding more is handed over at its next
 * boundary (or drained, as before, at the deadline). */
#define HANDOFF_BYTES_MAX 3072

/* What a connection carries from a draining worker to its successor
 * beside its socket, its listener (by name) and its peer address: its
 * session, in protocol-neutral terms (worker/handoff.c encodes it). */
struct handoff_conn {
	uint32_t requests;     /* answered on this connection so far (keepalive_requests) */
	uint32_t flags;        /* the protocol's own bits, carried as they are */
	uint64_t idle_left_ms; /* until the current (idle or header) deadline; 0: none set */
	const void *bytes;     /* read but not used yet: the start of the next request,
				* echo's bytes not sent back yet */
	size_t len;            /* at most HANDOFF_BYTES_MAX */
	/* On adopt: the peer address carried, and whether the connection
	 * came back refused (it is then drained as before). */
	const struct sockaddr *peer;
	socklen_t peer_len;
	bool returned;
};

/* What a protocol may ask of the worker that runs it. */
struct proto_env {
	struct loop *loop;
	const struct config *cfg;
	struct scoreboard_slot *slot;  /* this worker's counters */
	struct metrics_slot *metrics;  /* ...and its /metrics ones (core/metrics.h); NULL: none */
	const struct scoreboard *sb;   /* everyone's, for the status endpoint */
	struct conn_set *conns;        /* the worker's connections */
	const bool *draining;          /* true once the worker drains */
	const bool *stopping;          /* ...and no newer generation takes over */
	/* Count one finished request (counters, max_requests). */
	void (*request_done)(const struct proto_env *env);
	/* The protocol could not allocate for a connection (what says whether
	 * that connection waits or was closed): the worker stops accepting for
	 * a while, counts and logs what was dropped (within a second), and
	 * asks to be replaced when the shortage outlasts the pause. May be
	 * NULL. */
	void (*out_of_memory)(const struct proto_env *env, enum proto_shortage what);
	/* Hand-off (worker/handoff.h): true while connections go to a
	 * successor; NULL: never. */
	const bool *handing_off;
	/* Give c to the successor with its session h (c is at a request
	 * boundary, conn_may_hand_off(c)): 0, and c is closed and freed here
	 * (its socket lives on in the successor); or -errno, and nothing
	 * changed (drain c as before). */
	int (*hand_off)(const struct proto_env *env, struct conn *c, const struct handoff_conn *h);
	void *worker;                  /* the worker's own, for the hooks */
	const struct proto_fileset *files; /* opened by the supervisor */
};

static inline bool proto_env_draining(const struct proto_env *env) { return *env->draining; }
/* Draining for a successor that adopts connections (hand-off): a plain
 * connection at a request boundary goes to it (env->hand_off) instead of
 * being closed, and responses do not say Connection: close for the drain. */
static inline bool proto_env_handing_off(const struct proto_env *env)
{
	return env->handing_off && *env->handing_off;
}
/* Draining for a stop: nobody serves after us, so an idle keep-alive
 * connection is closed at once (its client re-sends elsewhere, RFC 9112
 * §9.3.1) rather than given a grace for one more request. */
static inline bool proto_env_stopping(const struct proto_env *env) { return *env->stopping; }

struct proto {
	const char *name;        /* as written in [listener] protocol = */
	/* What a TLS listener of this protocol answers in ALPN, in the
	 * protocol-list wire form ("\x08http/1.1"), most preferred first;
	 * NULL: no ALPN (the handshake goes on without it). */
	const unsigned char *alpn;
	unsigned alpn_len;
	/* The list for c's listener when it depends on the listener (HTTP/2
	 * on or off there); NULL: alpn always. */
	const unsigned char *(*alpn_of)(const struct conn *c, unsigned *len);
	/* Its sections and listener keys, with their defaults and checks
	 * (core/config_section.h); the config keeps their storage, and the
	 * protocol reads it back through its own accessor. NULL: none. */
	const struct config_module *config;
	/* Once per worker, before the first accept, when a listener uses this
	 * protocol; 0 or -errno (the worker cannot start). */
	int (*init)(const struct proto_env *env);
	/* Release what init() set up (the worker is exiting). */
	void (*done)(void);
	/* Make sure the next accept() needs no allocation (take what it needs
	 * ahead). 0, or -ENOMEM: the worker leaves the connection in the
	 * kernel's queue, where a shortage costs it delay, not a reset. May
	 * be NULL. */
	int (*reserve)(const struct proto_env *env);
	/* Take a freshly accepted, non-blocking fd. 0: the protocol owns fd
	 * now. -errno: it does not (the caller closes fd). */
	int (*accept)(const struct proto_env *env, const struct worker_listener *l, int fd,
		      const struct sockaddr *peer, socklen_t peer_len);
	/* The files this protocol's workers write under cfg, into out (at most
	 * PROTO_MAX_FILES); returns how many. May be NULL: none. */
	size_t (*files)(const struct config *cfg, struct proto_file *out);
	/* The paths this protocol's workers read under cfg, into out (at most
	 * PROTO_MAX_PATHS); returns how many. Checked by drover -t, a start
	 * and a reload (proto_paths_check); they may go away later. May be
	 * NULL: none. */
	size_t (*paths)(const struct config *cfg, struct proto_path *out);
	/* Take a connection another worker handed over (fd, non-blocking,
	 * at a request boundary, with h) as if it had been accepted now,
	 * under this worker's configuration. 0: the protocol owns fd now;
	 * -errno: it does not. NULL: the protocol's connections are never
	 * handed over. */
	int (*adopt)(const struct proto_env *env, const struct worker_listener *l, int fd,
		     const struct handoff_conn *h);
	/* This protocol's own per-worker connection limit; 0 = only
	 * [server] max_connections applies. May be NULL. */
	unsigned (*max_connections)(const struct config *cfg);
	/* How long a new connection may take to send its first request's
	 * head under cfg (HTTP's header_timeout), in ms: a PROXY protocol
	 * header must have arrived within it. NULL (or 0): PROXY_TIMEOUT_MS. */
	uint64_t (*header_timeout_ms)(const struct config *cfg);
};

/* Make table (NULL-terminated) the protocols this process knows, and tell
 * config their names and modules. Called once by each main before making
 * or loading a config. */
void proto_register(const struct proto *const *table);
/* The registered protocol called name (case-insensitive), or NULL. */
const struct proto *proto_find(const char *name);
/* The registered table (NULL-terminated), or NULL before proto_register(). */
const struct proto *const *proto_table(void);

/* Open (append, create 0640, never blocking) the files of every protocol
 * cfg's listeners use. 0, or -errno with "FILE:LINE: [http] access_log:
 * cannot open PATH: why" in err and nothing left open. check: only see
 * that they can be opened (drover -t), a FIFO nobody reads yet is fine. */
int proto_files_open(const struct config *cfg, struct proto_fileset *set, bool check, char *err,
		     size_t err_len);
/* Check the paths of every protocol cfg's listeners use, as the workers
 * will use them: a directory exists, is one, and the workers' [server]
 * user/group may search it (and every directory above it); a file exists,
 * is not a directory, and they may read it. When drover runs as root and
 * user or group is set, a child process takes that identity to try. 0, or
 * -errno with one "FILE:LINE: [http] root: PATH: why" line per path that
 * fails in err. */
int proto_paths_check(const struct config *cfg, char *err, size_t err_len);
/* Close what proto_files_open() opened; the set is then empty. */
void proto_files_close(struct proto_fileset *set);
/* The fd of p's index-th file (in the order of its files()), or -ENOENT. */
int proto_env_file(const struct proto_env *env, const struct proto *p, size_t index);

#endif
