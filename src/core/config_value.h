/* config_value: the grammar of configuration values (durations, sizes,
 * booleans, addresses, paths, user and group names), and the key parsers
 * that section tables point at (config.c's and every protocol's or
 * transport's). No knowledge of sections, files or struct config: a key
 * parser gets its destination and the load's context, nothing else. */
#ifndef DROVER_CONFIG_VALUE_H
#define DROVER_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define CONFIG_WORKERS_MAX 256u
/* One connection is at least one fd, and 2^20 is the kernel's default
 * ceiling for RLIMIT_NOFILE (fs.nr_open). */
#define CONFIG_CONNECTIONS_MAX 1048576u
/* Timers are handed to epoll_wait()/timerfd by other modules; a week is far
 * beyond any sensible timeout and far below any int overflow there. */
#define CONFIG_DURATION_MAX_MS (7ull * 24 * 3600 * 1000)

/* Where a listener's socket comes from. */
enum config_address_kind {
	ADDR_NONE = 0, /* only from systemd (FileDescriptorName= = the name) */
	ADDR_INET,     /* IPv4 or IPv6 host:port */
	ADDR_UNIX,     /* unix:/path */
};

struct config_address {
	enum config_address_kind kind;
	struct sockaddr_storage sa; /* ADDR_INET: sockaddr_in/_in6; ADDR_UNIX: sockaddr_un */
	socklen_t sa_len;
	char text[160]; /* as written in the file, for messages and reload comparison */
};

/* "500ms", "30s", "2m", "1h", "1d", bare number = seconds; 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *ms);
/* "512", "64k", "1m", "1g" (powers of 1024); 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *bytes);
/* "yes/no/true/false/on/off/1/0"; 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *out);
/* "HOST:PORT", "[v6]:PORT", "*:PORT", "unix:/path"; 0 or -EINVAL. */
int config_parse_address(const char *s, struct config_address *out);
/* Same socket, however it was spelled ("localhost:80" is "127.0.0.1:80"). */
bool config_address_equal(const struct config_address *a, const struct config_address *b);
/* Online CPUs, from 1 to CONFIG_WORKERS_MAX ("workers = auto"). */
unsigned config_workers_auto(void);

/* A user and group resolved: uid/gid to run as (the current ones where
 * unset); name is the user's (for initgroups) or "" without a user. */
struct config_identity {
	uid_t uid;
	gid_t gid;
	char name[64];
};
/* Look user and group up (either may be NULL: unset). 0, or -ESRCH with
 * *missing = "user" or "group" (the one that does not exist). */
int config_identity_lookup(const char *user, const char *group, struct config_identity *id,
			   const char **missing);

/* ------------------------------------------------ for the section tables */

/* What a key parser may need of the load in progress. */
struct config_ctx {
	char *dir; /* absolute directory of the file, for relative paths */
	bool oom;  /* an allocation failed: reported once at the end */
};

struct config_key;

/* Parse value into field (inside the section's struct). 0, or -EINVAL with
 * why filled in as "expected ..." for the message. */
typedef int (*config_key_parser)(struct config_ctx *ctx, const struct config_key *key,
				 void *field, const char *value, char *why, size_t why_len);

/* One key of one section: how to parse it, where it goes, its range. */
struct config_key {
	const char *name;
	config_key_parser parse;
	size_t offset;
	size_t size;
	uint64_t min, max;
};

/* The offset and size fields of a struct config_key for type's member. */
#define CONFIG_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

#define CONFIG_KEY_PARSER(fn)                                                               \
	int fn(struct config_ctx *ctx, const struct config_key *key, void *field, const char *value, \
	       char *why, size_t why_len)

/* Whole numbers within [min, max]; "auto" too for workers. */
CONFIG_KEY_PARSER(config_key_count);
CONFIG_KEY_PARSER(config_key_workers);
/* Durations and sizes within [min, max]; the message states the range. */
CONFIG_KEY_PARSER(config_key_duration);
CONFIG_KEY_PARSER(config_key_size);
CONFIG_KEY_PARSER(config_key_bool);
CONFIG_KEY_PARSER(config_key_log_level);
/* Octal permission bits up to max. */
CONFIG_KEY_PARSER(config_key_mode);
CONFIG_KEY_PARSER(config_key_address);
/* Strings: user or group name; control socket ("off" or a sun_path);
 * pid file ("off" or a path); any path (relative ones joined to the file's
 * directory). */
CONFIG_KEY_PARSER(config_key_account);
CONFIG_KEY_PARSER(config_key_control_socket);
CONFIG_KEY_PARSER(config_key_pid_file);
CONFIG_KEY_PARSER(config_key_path);

/* Replace a string field with a copy of value (NULL clears it); on
 * allocation failure ctx->oom is set and the field is left alone. */
void config_set_string(struct config_ctx *ctx, char **field, const char *value);
/* Replace a string field with value as a path: as written when absolute,
 * else joined to the file's directory; allocation failure as above. */
void config_set_path(struct config_ctx *ctx, char **field, const char *value);
/* Printable ASCII without spaces: what may go into a header or a URL path
 * without turning into something else (CR/LF would split a response). */
bool config_is_token_text(const char *s);

#endif
