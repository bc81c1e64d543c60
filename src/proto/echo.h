/* echo: RFC 862 over TCP (or a unix socket): every byte is sent back. */
#ifndef DROVER_ECHO_H
#define DROVER_ECHO_H

#include <sys/socket.h>

struct worker;
struct worker_listener;

/* Take a freshly accepted fd; 0, or -errno (the caller closes fd). */
int echo_accept(struct worker *w, const struct worker_listener *l, int fd,
		const struct sockaddr *peer, socklen_t peer_len);

#endif
