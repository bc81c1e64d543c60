/* http: the HTTP/1.1 protocol of a worker: connection state machine,
 * keep-alive and pipelining, responses, built-in endpoints, access log. */
#ifndef DROVER_HTTP_H
#define DROVER_HTTP_H

#include <sys/socket.h>

struct worker;
struct worker_listener;

/* Once per worker before serving: open the access log, load MIME types. 0 or -errno. */
int http_worker_init(struct worker *w);
/* Reopen the access log file (SIGUSR1 / droverctl reopen-logs). */
void http_reopen_logs(struct worker *w);
/* Release what http_worker_init() set up. */
void http_worker_done(struct worker *w);
/* Take a freshly accepted fd; 0, or -errno (the caller closes fd). */
int http_accept(struct worker *w, const struct worker_listener *l, int fd,
		const struct sockaddr *peer, socklen_t peer_len);

#endif
