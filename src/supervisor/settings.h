/* settings: what the generations run with. The config in force and the
 * files its workers write (opened here, before any worker drops its
 * privileges), and, while a reload may still roll back, the previous ones.
 * The coordinator says when a change begins, is over or is rolled back. */
#ifndef DROVER_SETTINGS_H
#define DROVER_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "worker/proto.h"

struct config;

struct settings {
	struct config *cfg;
	struct config *prev_cfg;         /* the config before a reload; NULL after an upgrade */
	struct proto_fileset files;      /* what cfg's protocols write, opened for new workers */
	struct proto_fileset prev_files; /* prev_cfg's, while a reload may roll back to it */
};

/* A generation of cfg can start here: user/group exist, and without root
 * we are them already. 0 or -errno with a message in err. */
int settings_check_identity(const struct config *cfg, char *err, size_t err_len);
/* cfg is in force (owned from now on); no files are open yet. */
void settings_init(struct settings *s, struct config *cfg);
/* Check the paths the workers of the config in force read, and open the
 * files they write. 0 or -errno, each problem logged, the first in err. */
int settings_open_files(struct settings *s, char *err, size_t err_len);
/* A reload's config: read path again, check that a generation of it can
 * start here (user/group, the paths its workers read) and open its files
 * into *files. 0, or -errno with the reason in err (problems that name
 * file:line each logged, the first in err). */
int settings_load(const char *path, struct config **cfg, struct proto_fileset *files, char *err, size_t err_len);
/* Let go of a config and files settings_load gave that will not be used. */
void settings_discard(struct config *cfg, struct proto_fileset *files);
/* A change begins: cfg and files are in force, the current ones kept as
 * the previous ones (log level follows). */
void settings_begin(struct settings *s, struct config *cfg, const struct proto_fileset *files);
/* The previous config and files are no longer needed (the change is
 * over, or another begins; the old workers have their own copies). */
void settings_forget_previous(struct settings *s);
/* The change failed: the previous config and files are in force again. */
void settings_roll_back(struct settings *s);
/* Open every file again (logrotate); a file that cannot be opened keeps
 * the old one, logged. */
void settings_reopen(struct settings *s);
/* The files a worker of generation writes, as opened now (previous: the
 * generation the previous config is for); none if its config is gone. */
const struct proto_fileset *settings_files_for(const struct settings *s, uint32_t generation, uint32_t current,
					       uint32_t previous);
/* The TLS session ticket keys every worker uses: those a binary upgrade
 * handed over (handed_fd >= 0), or new ones (tls_keys.h). A failure is
 * logged: TLS then works without resumption. The config in force puts
 * its ticket_key_file's keys in force when it comes into force. */
void settings_keys_start(int handed_fd);
/* The metrics counters every worker writes (core/metrics.h): those a
 * binary upgrade handed over (handed_fd >= 0, if of our layout), or new
 * ones. A failure is logged: /metrics then answers 503. */
void settings_metrics_start(int handed_fd);
/* Rotate generated ticket keys every [tls] session_timeout. */
void settings_keys_tick(const struct settings *s, uint64_t now_ms);
/* Write [server] pid_file, if set: our pid, the file replaced whole. */
void settings_write_pid_file(const struct settings *s);
/* Remove it (at exit). */
void settings_remove_pid_file(const struct settings *s);
/* Close and free everything (at exit). */
void settings_free(struct settings *s);

#endif
