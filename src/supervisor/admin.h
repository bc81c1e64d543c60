/* admin: the administrative control socket shared by the supervisor (server
 * side, in admin.c and sup.h) and droverctl (client side). A client sends
 * one command line; the server answers with text lines and a last line
 * "OK ..." or "ERR ...", then closes. reload and upgrade answer only once
 * the new generation serves (or the attempt failed). The commands are
 * listed once, in admin_commands. */
#ifndef DROVER_ADMIN_H
#define DROVER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#define ADMIN_LINE_MAX 256
#define ADMIN_OUT_MAX (256 * 1024) /* answer bytes held for a client that reads slowly */

enum admin_cmd { ADMIN_STATUS, ADMIN_RELOAD, ADMIN_UPGRADE, ADMIN_REOPEN_LOGS, ADMIN_STOP };

struct admin_command {
	const char *name;
	enum admin_cmd id;
	const char *help;     /* droverctl's usage text (continuation lines indented) */
	bool may_end_unanswered; /* drover stops or re-executes: EOF can be the answer */
};

/* Every command, in the order droverctl lists them. */
extern const struct admin_command admin_commands[];
extern const size_t admin_n_commands;
/* The command called name, or NULL. */
const struct admin_command *admin_command_find(const char *name);

/* The control socket path for a config: [server] control_socket, else
 * $RUNTIME_DIRECTORY/control.sock, else RUNSTATEDIR/drover/control.sock.
 * Writes "" when the socket is disabled. */
void admin_socket_path(const char *configured, char *out, size_t out_len);
/* Connect to the control socket; fd or -errno. */
int admin_connect(const char *path);
/* Bind and listen on the control socket (mode 0600, a stale socket
 * replaced, parent directory created 0755); fd or -errno (-ENOTSOCK when
 * something else than a socket is there: it is left alone). */
int admin_listen(const char *path);

#endif
