/* proxy: the PROXY protocol (HAProxy's, versions 1 and 2) in front of a
 * listener's own protocol ([listener NAME] proxy_protocol = yes).
 *
 * A balancer that connects to us on behalf of a client first sends one
 * header naming the client's address. The worker hands such a listener's
 * freshly accepted connection here instead of to its protocol: it is held
 * (a small struct, its fd in the loop, a timer) until the whole header has
 * been read from the raw socket, then given to the protocol with the
 * header's address as its peer, exactly as if accept4() had returned that
 * address. So the access log, status, hand-off and everything above see the
 * client, and a TLS handshake or HTTP/2 preface that follows the header is
 * the protocol's first byte as always.
 *
 * Only the header's bytes are taken from the socket: a v1 line is peeked
 * for its CRLF (at most 107 bytes) and then read up to it exactly; a v2
 * header's 16 bytes say its length, and exactly that many are read (the
 * TLVs after the addresses are read and dropped). Whatever the client sent
 * after stays in the socket. Nothing blocks: a header may come in pieces.
 * A connection whose first bytes cannot start a header, whose header is
 * malformed, that ends, or that has sent no whole header within its
 * protocol's header_timeout (proto->header_timeout_ms; 10 s for a protocol
 * without one) is closed.
 *
 * The address: v1 TCP4/TCP6 and v2 PROXY over TCP/IPv4 or TCP/IPv6 give
 * the client's; v1 UNKNOWN, v2 LOCAL (the balancer's own health check) and
 * v2 families that are not TCP keep the real peer, as the specification
 * says. */
#ifndef DROVER_WORKER_PROXY_H
#define DROVER_WORKER_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct loop;
struct worker_listener;

/* The longest v1 header, CRLF included (the specification's bound). */
#define PROXY_V1_MAX 107
/* A v2 header's fixed part: signature, version and command, family, length. */
#define PROXY_V2_FIXED 16
/* Most a connection is held without a whole header when its protocol names
 * no header_timeout. */
#define PROXY_TIMEOUT_MS 10000

/* One parsed header. */
struct proxy_header {
	size_t len;   /* the whole header, in bytes (v2: with the TLVs) */
	int version;  /* 1 or 2 */
	bool local;   /* keep the real peer (v1 UNKNOWN, v2 LOCAL, v2 not TCP) */
	/* When !local: the client's address (port included). */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} src;
	socklen_t src_len;
};

/* Parse the first len bytes a connection sent (pure, no I/O).
 * 1: a whole header (h filled; h->len may exceed len for a v2 header whose
 *    TLVs have not all been given: they need not be, only skipped);
 * 0: no header yet, but these bytes may begin one (give more);
 * -EINVAL: these bytes are no PROXY header (or a malformed one). */
int proxy_parse(const void *buf, size_t len, struct proxy_header *h);

/* What the worker lends the module. */
struct proxy_host {
	struct loop *loop;
	const struct config *cfg;
	/* Give fd, its header read, to l's protocol with the address peer:
	 * the worker's own path after accept4() (fd is the worker's from
	 * then, closed there if the protocol refuses it). */
	void (*give)(void *arg, const struct worker_listener *l, int fd, const struct sockaddr *peer,
		     socklen_t peer_len);
	/* A connection held here left (given, or closed): the count of
	 * proxy_held() dropped. */
	void (*left)(void *arg);
	void *arg;
};

/* Set up the module for this worker (once, before the first hold). */
void proxy_init(const struct proxy_host *host);
/* Take fd, accepted on l (a proxy_protocol listener) from peer: read its
 * header now if it has arrived, else hold it until it does. 0: fd is
 * taken (it may have been given already, or closed as invalid); -errno
 * (-ENOMEM): it is not, the caller closes it. */
int proxy_hold(const struct worker_listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* Connections held now (waiting for their header). */
size_t proxy_held(void);
/* Close every held connection without calling left (the worker exits). */
void proxy_close_all(void);

#endif
