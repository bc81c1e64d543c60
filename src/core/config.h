/* config: the one INI file (inih), parsed into a struct with every default
 * filled in. Errors name file, line, section, key and what was expected. */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/config_value.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/drover/drover.ini"
#define CONFIG_MAX_LISTENERS 64
#define CONFIG_NAME_MAX 63 /* listener names, as systemd's FDNAME= */

#define CONFIG_MAX_PROTOCOLS 8
#define CONFIG_PROTO_NAME_MAX 15

/* A protocol as config sees it: names come from the protocol layer's table
 * (config_set_protocols), so config holds no list of protocols itself. */
struct config_protocol {
	const char *name;
	bool status; /* a listener of it may serve [http] status_path */
};

struct config_listener {
	char name[CONFIG_NAME_MAX + 1];
	struct config_address address;
	char protocol[CONFIG_PROTO_NAME_MAX + 1]; /* a registered protocol name, lower case */
	int backlog;
	mode_t mode;      /* unix sockets: permission bits */
	uint64_t defer_accept_ms; /* TCP_DEFER_ACCEPT; 0 = off */
	bool defer_accept_set;    /* given in the file: applied to sockets from systemd too */
	bool status;      /* serve [http] status_path on this listener */
	unsigned line;    /* where the section starts, for messages */
};

struct config_server {
	unsigned workers;            /* "auto" resolves to online CPUs */
	uint64_t shutdown_timeout_ms;
	int log_level;               /* LOG_* */
	char *user;                  /* NULL: do not change user */
	char *group;                 /* NULL: user's primary group (or none) */
	unsigned max_connections;    /* per worker, all protocols */
	uint64_t worker_timeout_ms;  /* heartbeat older than this: worker is hung */
	uint64_t max_requests;       /* 0: never recycle */
	uint64_t max_requests_jitter;/* extra random 0..jitter per worker */
	uint64_t lingering_timeout_ms;
	unsigned max_generations;    /* generations alive at once (reload/upgrade) */
	char *control_socket;        /* NULL: default under the runtime directory; "" / "off": none */
	char *pid_file;              /* NULL: none */
};

struct config_echo {
	uint64_t idle_timeout_ms;
	size_t buffer_size;          /* per connection; reading pauses when full */
};

/* Upper bound of [http] max_ranges. */
#define CONFIG_HTTP_MAX_RANGES 100

struct config_http {
	char *root;                  /* absolute (relative ones resolved against the file's directory) */
	unsigned root_line;          /* where root is set (0: default), for messages */
	char *index;
	bool autoindex;
	bool follow_symlinks;
	bool dotfiles;
	char *mime_types;
	unsigned mime_types_line;    /* where mime_types is set (0: default, which may be missing) */
	char *default_type;
	char *access_log;            /* path, "stderr" or "off" */
	unsigned access_log_line;    /* where access_log is set (0: default), for messages */
	char *health_path;           /* "" disables */
	char *status_path;
	uint64_t header_timeout_ms;
	uint64_t keepalive_timeout_ms;
	uint64_t send_timeout_ms;
	unsigned keepalive_requests;
	unsigned max_connections;    /* per worker, http only; 0 = [server] max_connections */
	uint64_t max_body_size;
	size_t max_request_line;
	size_t max_header_line;
	size_t max_header_size;
	unsigned max_headers;
	uint64_t file_cache_valid_ms; /* how long a looked-up root (or file) is trusted; 0 = not at all */
	unsigned max_ranges;         /* ranges in one Range header; more: the whole file */
	char *charset;               /* added to text types' Content-Type; NULL = none */
	unsigned file_cache_entries; /* open-file cache: most files per worker */
	size_t file_cache_max_file;  /* largest file whose bytes are cached */
	size_t file_cache_size;      /* cached bytes per worker, all files together */
};

struct config {
	char *path;
	struct config_server server;
	struct config_echo echo;
	struct config_http http;
	struct config_listener listeners[CONFIG_MAX_LISTENERS];
	size_t n_listeners;
};

/* Parse path into a new config; 0, or -errno with every problem found in err
 * (one per line, "FILE:LINE: [section] key: expected ..., got '...'"). */
int config_load(const char *path, struct config **out, char *err, size_t err_len);
/* A config holding only the built-in defaults (no listeners). */
struct config *config_new_default(void);
/* Free a config from config_load()/config_new_default(); NULL is fine. */
void config_free(struct config *cfg);
/* The listener section named name, or NULL. */
const struct config_listener *config_find_listener(const struct config *cfg, const char *name);
/* [server] user and group resolved (config_identity_lookup). */
int config_identity(const struct config *cfg, struct config_identity *id, const char **missing);

/* The protocols a listener may name (the first is the default); the
 * array must outlive every config_load(). */
void config_set_protocols(const struct config_protocol *list, size_t n);

#endif
