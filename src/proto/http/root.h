/* http root: the document root as an O_PATH directory fd that follows
 * [http] root when it comes to name another directory (a symlink swapped
 * by a deploy, a directory deleted and created again), and a generation
 * number that says when it did: the open-file cache checks it, so root.c
 * calls nobody. */
#ifndef DROVER_HTTP_ROOT_H
#define DROVER_HTTP_ROOT_H

#include <stdint.h>

/* Open path as the root (NULL: none); a failure is logged and the root
 * stays unavailable (answered 500) until path can be opened. now_ms is
 * the loop's clock. */
void http_root_open(const char *path, uint64_t valid_ms, uint64_t now_ms);
/* The root fd for a request at now_ms, or -ENOENT (none open). Looks path up again at
 * most every valid_ms (0: every time) and reopens it when it names another
 * directory; the old fd is closed, which requests in flight do not need
 * (they hold their own file fds). */
int http_root_fd(uint64_t now_ms);
/* Counts the directories opened as the root: what was found under an
 * older generation was found under another directory. */
uint64_t http_root_generation(void);
/* Close the root (the worker is exiting). */
void http_root_close(void);

#endif
