/* listeners: obtain the listening sockets, from systemd socket activation
 * (or the fd store), from the previous image during a binary upgrade, or by
 * binding them here. */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

/* One listening socket owned by the supervisor. */
struct listener {
	int fd;
	char name[CONFIG_NAME_MAX + 1];
	char address[160];   /* config text; "" for systemd-only listeners */
	bool from_systemd;   /* passed in, not bound here (do not unlink unix paths) */
	bool unix_bound;     /* we created a unix socket file at address */
};

/* Sockets received from outside, by name, not yet given to a listener. */
struct listen_pool {
	int fds[CONFIG_MAX_LISTENERS * 5];
	char names[CONFIG_MAX_LISTENERS * 5][CONFIG_NAME_MAX + 1];
	size_t n;
};

/* Take the sockets systemd passed (LISTEN_FDS/LISTEN_FDNAMES, checked with
 * sd_is_socket), making them CLOEXEC; unsets the variables. 0 or -errno. */
int listen_pool_from_systemd(struct listen_pool *pool, char *err, size_t err_len);
/* Add one inherited fd under a name (binary upgrade hand-over). */
int listen_pool_add(struct listen_pool *pool, int fd, const char *name);
/* Close what nobody took. */
void listen_pool_close(struct listen_pool *pool);

/* Build the listener for cfg: reuse one from old with the same name and
 * address (reload), else take the pool's fd named like it (a single unnamed
 * fd matches a single listener), else bind the address. 0 or -errno with a
 * message naming the listener and address. */
int listen_open(const struct config_listener *cfg, struct listener *old, size_t n_old,
		struct listen_pool *pool, bool single, struct listener *out, char *err, size_t err_len);
/* Close a listener (unlinking a unix socket file we created). */
void listen_close(struct listener *l);

#endif
