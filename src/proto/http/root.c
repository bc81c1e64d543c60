/* http root: keep the document root fd current without a reload. A
 * deploy that swaps a symlink (`ln -sfn releases/42 current.tmp && mv -T
 * current.tmp current`) or recreates the directory changes what the path
 * names, not what an open fd names; so every valid_ms the path is stat()ed
 * and, when its device and inode differ from the open directory's, opened
 * again. One stat per worker per valid_ms: nothing on the per-request path
 * in between. Traversal and symlink rules are path.c's and apply to the new
 * tree exactly as to the old, since they are relative to whatever fd this
 * returns. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include "proto/http/root.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static struct {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t valid_ms;
	uint64_t checked_ms; /* loop time of the last look-up */
	uint64_t generation; /* one more for each directory opened */
} http_root = { .fd = -1 };

/* Open the path now; replace the fd on success. 0 or -errno. */
static int http_root_reopen(void)
{
	int fd = open(http_root.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (http_root.fd >= 0)
		close(http_root.fd);
	http_root.fd = fd;
	http_root.dev = st.st_dev;
	http_root.ino = st.st_ino;
	http_root.generation++; /* what was found under the old one is stale */
	return 0;
}

void http_root_open(const char *path, uint64_t valid_ms, uint64_t now_ms)
{
	http_root_close();
	http_root.valid_ms = valid_ms;
	http_root.checked_ms = now_ms;
	if (!path)
		return;
	http_root.path = strdup(path);
	if (!http_root.path) {
		log_errno(LOG_ERR, -ENOMEM, "http: root directory %s", path);
		return;
	}
	/* A root that cannot be opened is logged and answered with 500, so the
	 * health and status endpoints keep working and the worker does not
	 * crash-loop; it is tried again every valid_ms. */
	int r = http_root_reopen();
	if (r < 0)
		log_errno(LOG_ERR, r, "http: cannot open root directory %s", path);
}

/* What http_root_fd() returns: the fd, or -ENOENT while none is open. */
static int http_root_current(void)
{
	return http_root.fd >= 0 ? http_root.fd : -ENOENT;
}

int http_root_fd(uint64_t now_ms)
{
	if (!http_root.path)
		return -ENOENT;
	if (http_root.valid_ms && now_ms - http_root.checked_ms < http_root.valid_ms)
		return http_root_current();
	http_root.checked_ms = now_ms;
	struct stat st;
	/* Gone for now (mid-deploy): keep what is open; its files answer 404. */
	if (stat(http_root.path, &st) < 0 || !S_ISDIR(st.st_mode))
		return http_root_current();
	if (http_root.fd >= 0 && st.st_dev == http_root.dev && st.st_ino == http_root.ino)
		return http_root.fd;
	bool had = http_root.fd >= 0;
	int r = http_root_reopen();
	if (r < 0)
		log_errno(LOG_WARNING, r, "http: cannot open root directory %s", http_root.path);
	else if (had)
		log_info("http: root %s names another directory now; serving it", http_root.path);
	return http_root_current();
}

void http_root_close(void)
{
	if (http_root.fd >= 0)
		close(http_root.fd);
	http_root.fd = -1;
	free(http_root.path);
	http_root.path = NULL;
}

uint64_t http_root_generation(void)
{
	return http_root.generation;
}
