/* notify: the supervisor's side of the sd_notify protocol: READY, RELOADING,
 * STOPPING, STATUS= text, the watchdog and the fd store. Never blocks: what
 * the socket cannot take now is queued and sent, in order, when it has
 * room. No-ops without NOTIFY_SOCKET. */
#ifndef DROVER_NOTIFY_H
#define DROVER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct loop;

/* Read NOTIFY_SOCKET and the watchdog settings from the environment; a
 * full socket is waited for through loop. */
void notify_init(struct loop *loop);
/* Send what the socket takes now, drop the rest, close (at exit). */
void notify_done(void);
/* Send what the socket takes now, without waiting (before an execve);
 * how many messages are still queued. */
size_t notify_flush(void);
/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC= and a STATUS= line. */
void notify_reloading(const char *status);
/* Before an execve: RELOADING=1 with status, and whatever the socket
 * takes now; what it does not is dropped with this image, and logged. */
void notify_before_exec(const char *status);
/* STOPPING=1 with a STATUS= line. */
void notify_stopping(const char *status);
/* STATUS= only (sent only when it changed; an unsent one is replaced). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval in ms (0 = disabled); ping every half of it. */
uint64_t notify_watchdog_ms(void);
/* WATCHDOG=1. */
void notify_watchdog(void);
/* Push listening fds into systemd's fd store under their names; 0 or -errno. */
int notify_fdstore(const int *fds, const char *const *names, unsigned n);
/* Drop what the fd store holds under name (a listener we no longer use). */
void notify_fdstore_remove(const char *name);

#endif
