/* proto: the registry of protocols, filled from the protocol layer's
 * table, and the files their workers write, opened for them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* getgrouplist, setgroups, setresuid; configure passes it too */
#endif
#include "worker/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"

static const struct proto *const *proto_registered;

void proto_register(const struct proto *const *table)
{
	static struct config_protocol names[CONFIG_MAX_PROTOCOLS];
	size_t n = 0;
	proto_registered = table;
	for (size_t i = 0; table[i] && n < CONFIG_MAX_PROTOCOLS; i++, n++)
		names[n] = (struct config_protocol){ .name = table[i]->name, .module = table[i]->config };
	config_set_protocols(names, n);
}

const struct proto *proto_find(const char *name)
{
	for (size_t i = 0; proto_registered && proto_registered[i]; i++)
		if (strcasecmp(proto_registered[i]->name, name) == 0)
			return proto_registered[i];
	return NULL;
}

const struct proto *const *proto_table(void) { return proto_registered; }

/* Whether a listener of cfg uses p. */
static bool proto_used(const struct config *cfg, const struct proto *p)
{
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (proto_find(cfg->listeners[i].protocol) == p)
			return true;
	return false;
}

int proto_files_open(const struct config *cfg, struct proto_fileset *set, bool check, char *err,
		     size_t err_len)
{
	set->n = 0;
	for (size_t t = 0; proto_registered && proto_registered[t]; t++) {
		const struct proto *p = proto_registered[t];
		if (!p->files || !proto_used(cfg, p))
			continue;
		struct proto_file files[PROTO_MAX_FILES];
		size_t n = p->files(cfg, files);
		for (size_t i = 0; i < n && i < PROTO_MAX_FILES; i++) {
			int fd = -ENFILE;
			if (set->n < PROTO_FILESET_MAX)
				fd = open(files[i].path,
					  O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0640);
			if (fd < 0 && fd != -ENFILE)
				fd = -errno;
			if (fd == -ENXIO && check)
				continue; /* a FIFO whose reader is not there yet */
			if (fd < 0) {
				snprintf(err, err_len, "%s:%u: %s: cannot open %s: %s", cfg->path, files[i].line,
					 files[i].key, files[i].path, strerror(-fd));
				proto_files_close(set);
				return fd;
			}
			set->f[set->n++] = (struct proto_open_file){ .proto = p, .index = i, .fd = fd };
		}
	}
	if (check)
		proto_files_close(set);
	return 0;
}

/* Who the workers of a config run as, for proto_paths_check. */
struct proto_who {
	bool other; /* not this process's identity: try in a child that takes it */
	struct config_identity id;
	gid_t *groups; /* the user's supplementary groups, as initgroups() sets them */
	int n_groups;
};

/* The identity worker_drop_privileges() will take: another one only when
 * we are root and [server] user or group is set. 0 or -errno (-ENOMEM,
 * -E2BIG: more groups than anyone has). */
static int proto_who_get(const struct config *cfg, struct proto_who *w)
{
	memset(w, 0, sizeof(*w));
	if ((!cfg->server.user && !cfg->server.group) || geteuid() != 0)
		return 0; /* workers stay who we are (as non-root, a start refuses another user) */
	const char *missing;
	if (config_identity(cfg, &w->id, &missing) < 0)
		return 0; /* a start or reload refuses it with its own message */
	if (w->id.name[0]) {
		int cap = 16;
		for (;;) {
			gid_t *g = realloc(w->groups, (size_t)cap * sizeof(*g));
			if (!g)
				return -ENOMEM;
			w->groups = g;
			int n = cap;
			if (getgrouplist(w->id.name, w->id.gid, g, &n) >= 0) {
				w->n_groups = n;
				break;
			}
			cap = n > cap ? n : cap * 2; /* n: how many there are */
			if (cap > 65536)
				return -E2BIG;
		}
	}
	w->other = true;
	return 0;
}

/* A child exits with this when it cannot take the identity: nothing was tried. */
#define PROTO_WHO_UNTRIED 255

/* access(path, mode) as the workers: 0 or -errno. As root for another
 * identity, a child takes it (supplementary groups, gid, uid, as a worker
 * does, which also drops every capability) and tries; the kernel decides,
 * ACLs and all. */
static int proto_access_as(const struct proto_who *w, const char *path, int mode)
{
	if (!w->other)
		return access(path, mode) < 0 ? -errno : 0;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (setgroups((size_t)w->n_groups, w->groups) < 0 ||
		    setresgid(w->id.gid, w->id.gid, w->id.gid) < 0 ||
		    setresuid(w->id.uid, w->id.uid, w->id.uid) < 0)
			_exit(PROTO_WHO_UNTRIED);
		_exit(access(path, mode) < 0 ? (errno > 0 && errno < PROTO_WHO_UNTRIED ? errno : EACCES) : 0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0; /* not ours to wait for after all: nothing known */
	if (!WIFEXITED(status) || WEXITSTATUS(status) == PROTO_WHO_UNTRIED)
		return 0; /* the worker itself reports an identity it cannot take */
	return -WEXITSTATUS(status);
}

/* One path as its protocol needs it: 0 or -errno. */
static int proto_path_check(const struct proto_path *pp, const struct proto_who *w)
{
	struct stat st;
	if (stat(pp->path, &st) < 0)
		return -errno;
	if (pp->dir && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!pp->dir && S_ISDIR(st.st_mode))
		return -EISDIR;
	/* Search on a directory (and, to get there, on every one above it). */
	return proto_access_as(w, pp->path, pp->dir ? X_OK : R_OK);
}

/* "FILE:LINE: " or, for a key not in the file, "FILE: " (and a note). */
static void proto_path_error(const struct config *cfg, const struct proto_path *pp,
			     const struct proto_who *w, int r, char *err, size_t err_len)
{
	if (!err || err_len == 0)
		return;
	size_t used = strlen(err);
	if (used >= err_len - 1)
		return;
	char where[32] = "";
	if (pp->line)
		snprintf(where, sizeof(where), ":%u", pp->line);
	char as[160] = "";
	if (w->other && r == -EACCES)
		snprintf(as, sizeof(as), " (the workers run as %s%.60s%s%s%s%.60s%s)",
			 cfg->server.user ? "user '" : "", cfg->server.user ? cfg->server.user : "",
			 cfg->server.user ? "'" : "", cfg->server.user && cfg->server.group ? ", " : "",
			 cfg->server.group ? "group '" : "", cfg->server.group ? cfg->server.group : "",
			 cfg->server.group ? "'" : "");
	snprintf(err + used, err_len - used, "%s%s%s: %s: %s: %s%s%s", used ? "\n" : "", cfg->path, where,
		 pp->key, pp->path, strerror(-r), as, pp->line ? "" : " (the built-in default)");
}

int proto_paths_check(const struct config *cfg, char *err, size_t err_len)
{
	if (err && err_len > 0)
		err[0] = '\0';
	struct proto_who who;
	int r = proto_who_get(cfg, &who);
	if (r < 0) {
		free(who.groups);
		if (err && err_len > 0)
			snprintf(err, err_len, "%s: [server] user: cannot list the groups of '%s': %s", cfg->path,
				 cfg->server.user, strerror(-r));
		return r;
	}
	int first = 0;
	for (size_t t = 0; proto_registered && proto_registered[t]; t++) {
		const struct proto *p = proto_registered[t];
		if (!p->paths || !proto_used(cfg, p))
			continue;
		struct proto_path paths[PROTO_MAX_PATHS];
		size_t n = p->paths(cfg, paths);
		for (size_t i = 0; i < n && i < PROTO_MAX_PATHS; i++) {
			r = proto_path_check(&paths[i], &who);
			if (r == 0)
				continue;
			if (!first)
				first = r;
			proto_path_error(cfg, &paths[i], &who, r, err, err_len);
		}
	}
	free(who.groups);
	return first;
}

void proto_files_close(struct proto_fileset *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->f[i].fd >= 0)
			close(set->f[i].fd);
	set->n = 0;
}

int proto_env_file(const struct proto_env *env, const struct proto *p, size_t index)
{
	const struct proto_fileset *set = env->files;
	for (size_t i = 0; set && i < set->n; i++)
		if (set->f[i].proto == p && set->f[i].index == index)
			return set->f[i].fd;
	return -ENOENT;
}
