/* ctl: the administrative control socket shared by the supervisor (server
 * side) and droverctl (client side). A client sends one command line; the
 * server answers with text lines and a last line "OK ..." or "ERR ...",
 * then closes. reload and upgrade answer only once the new generation serves
 * (or the attempt failed). */
#ifndef DROVER_ADMIN_H
#define DROVER_ADMIN_H

#include <stddef.h>

#define ADMIN_LINE_MAX 256

/* The control socket path for a config: [server] control_socket, else
 * $RUNTIME_DIRECTORY/control.sock, else RUNSTATEDIR/drover/control.sock.
 * Writes "" when the socket is disabled. */
void admin_socket_path(const char *configured, char *out, size_t out_len);
/* Connect to the control socket; fd or -errno. */
int admin_connect(const char *path);
/* Bind and listen on the control socket (mode 0600, stale file replaced,
 * parent directory created 0755); fd or -errno. */
int admin_listen(const char *path);

#endif
