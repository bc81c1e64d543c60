/* settings: see settings.h. */
#include "supervisor/settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/loop.h"
#include "worker/tls.h"
#include "worker/tls_keys.h"

/* Problems that each name file:line, one per line in err: log them all,
 * keep the first in err. */
static void settings_log_lines(char *err, size_t err_len, const char *prefix)
{
	char *save = NULL;
	for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_error("%s%s", prefix, line);
	char first[600];
	snprintf(first, sizeof(first), "%.599s", err); /* strtok_r ended it after the first line */
	snprintf(err, err_len, "%s", first);
}

int settings_check_identity(const struct config *cfg, char *err, size_t err_len)
{
	struct config_identity id;
	const char *missing = "";
	int r = config_identity(cfg, &id, &missing);
	if (r < 0) {
		snprintf(err, err_len, "%s: [server] %s: no such %s '%s'", cfg->path, missing, missing,
			 strcmp(missing, "user") == 0 ? cfg->server.user : cfg->server.group);
		return r;
	}
	if (geteuid() != 0 && (id.uid != geteuid() || id.gid != getegid())) {
		snprintf(err, err_len,
			 "%s: [server] user/group: cannot switch to %s/%s without running as root",
			 cfg->path, cfg->server.user ? cfg->server.user : "-",
			 cfg->server.group ? cfg->server.group : "-");
		return -EPERM;
	}
	return 0;
}

void settings_init(struct settings *s, struct config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
}

int settings_open_files(struct settings *s, char *err, size_t err_len)
{
	int r = proto_paths_check(s->cfg, err, err_len);
	if (r >= 0)
		r = tls_load(s->cfg, err, err_len);
	if (r >= 0)
		r = proto_files_open(s->cfg, &s->files, false, err, err_len);
	if (r >= 0)
		tls_publish_keys(s->cfg, loop_clock_ms());
	if (r < 0)
		settings_log_lines(err, err_len, "not starting: ");
	return r;
}

int settings_load(const char *path, struct config **cfg, struct proto_fileset *files, char *err, size_t err_len)
{
	*cfg = NULL;
	files->n = 0;
	int r = config_load(path, cfg, err, err_len);
	if (r < 0) {
		settings_log_lines(err, err_len, "");
		return r;
	}
	/* The paths its workers read must be there for them, and the files
	 * they write are opened here, as root, before the fork: either fails
	 * the reload now, by name. */
	r = settings_check_identity(*cfg, err, err_len);
	if (r >= 0) {
		/* Certificates and keys too: read here, as root if we are, so
		 * that a bad one fails the reload by name and the workers
		 * never open a key file. */
		r = proto_paths_check(*cfg, err, err_len);
		if (r >= 0)
			r = tls_load(*cfg, err, err_len);
		if (r < 0)
			settings_log_lines(err, err_len, "");
	}
	if (r >= 0)
		r = proto_files_open(*cfg, files, false, err, err_len);
	if (r < 0) {
		config_free(*cfg);
		*cfg = NULL;
	}
	return r;
}

void settings_discard(struct config *cfg, struct proto_fileset *files)
{
	proto_files_close(files);
	config_free(cfg);
}

void settings_begin(struct settings *s, struct config *cfg, const struct proto_fileset *files)
{
	log_set_level(cfg->server.log_level);
	s->prev_cfg = s->cfg;
	s->cfg = cfg;
	s->prev_files = s->files;
	s->files = *files;
	tls_publish_keys(cfg, loop_clock_ms());
}

void settings_forget_previous(struct settings *s)
{
	config_free(s->prev_cfg);
	s->prev_cfg = NULL;
	proto_files_close(&s->prev_files);
}

void settings_roll_back(struct settings *s)
{
	if (!s->prev_cfg)
		return;
	config_free(s->cfg);
	s->cfg = s->prev_cfg;
	s->prev_cfg = NULL;
	log_set_level(s->cfg->server.log_level);
	proto_files_close(&s->files);
	s->files = s->prev_files;
	s->prev_files.n = 0;
	tls_publish_keys(s->cfg, loop_clock_ms());
}

void settings_metrics_start(int handed_fd)
{
	int r = metrics_start(handed_fd);
	if (r < 0)
		log_errno(LOG_WARNING, r, "cannot make the metrics counters; /metrics will not answer");
}

void settings_keys_start(int handed_fd)
{
	if (handed_fd >= 0) {
		int r = tls_keys_attach(handed_fd);
		if (r == 0)
			return;
		log_errno(LOG_WARNING, r, "binary upgrade: cannot map the TLS session ticket keys handed over; "
					  "making new ones (sessions from before the upgrade will not resume)");
		close(handed_fd);
	}
	int fd;
	int r = tls_keys_create(&fd);
	if (r < 0)
		log_errno(LOG_ERR, r, "cannot make TLS session ticket keys; TLS clients will not resume sessions");
}

void settings_keys_tick(const struct settings *s, uint64_t now_ms)
{
	if (tls_keys_tick(now_ms, tls_session_timeout_ms(s->cfg)))
		log_info("tls: session ticket keys rotated (the previous key still opens tickets)");
}

/* Open cfg's files again into *set (closing the old ones); the old ones
 * stay if one cannot be opened. */
static void settings_reopen_set(const struct config *cfg, struct proto_fileset *set)
{
	char err[1024] = "";
	struct proto_fileset fresh;
	int r = proto_files_open(cfg, &fresh, false, err, sizeof(err));
	if (r < 0) {
		log_error("reopen-logs: %s; writing on to the old file", err);
		return;
	}
	proto_files_close(set);
	*set = fresh;
}

void settings_reopen(struct settings *s)
{
	settings_reopen_set(s->cfg, &s->files);
	if (s->prev_cfg)
		settings_reopen_set(s->prev_cfg, &s->prev_files);
}

const struct proto_fileset *settings_files_for(const struct settings *s, uint32_t generation, uint32_t current,
					       uint32_t previous)
{
	static const struct proto_fileset none = { .n = 0 };
	if (generation == current)
		return &s->files;
	if (s->prev_cfg && generation == previous)
		return &s->prev_files;
	return &none;
}

void settings_write_pid_file(const struct settings *s)
{
	const char *path = s->cfg->server.pid_file;
	if (!path)
		return;
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		log_errno(LOG_WARNING, -errno, "cannot write pid file %s", path);
}

void settings_remove_pid_file(const struct settings *s)
{
	if (s->cfg->server.pid_file)
		unlink(s->cfg->server.pid_file);
}

void settings_free(struct settings *s)
{
	proto_files_close(&s->files);
	proto_files_close(&s->prev_files);
	config_free(s->prev_cfg);
	config_free(s->cfg);
	memset(s, 0, sizeof(*s));
}
