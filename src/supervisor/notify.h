/* notify: the supervisor's side of sd_notify: READY/RELOADING/STOPPING,
 * STATUS= text, the watchdog and the fd store. No-ops without NOTIFY_SOCKET. */
#ifndef DROVER_NOTIFY_H
#define DROVER_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Read NOTIFY_SOCKET and the watchdog settings from the environment. */
void notify_init(void);
/* Whether a notification socket is configured. */
bool notify_enabled(void);
/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC= and a STATUS= line. */
void notify_reloading(const char *status);
/* STOPPING=1 with a STATUS= line. */
void notify_stopping(const char *status);
/* STATUS= only (sent only when it changed). */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval in ms (0 = disabled); ping every half of it. */
uint64_t notify_watchdog_ms(void);
/* WATCHDOG=1. */
void notify_watchdog(void);
/* Push listening fds into systemd's fd store under their names; 0 or -errno. */
int notify_fdstore(const int *fds, const char *const *names, unsigned n);
/* Drop what the fd store holds under name (a listener we no longer use). */
void notify_fdstore_remove(const char *name);
/* MAINPID=pid (after a binary upgrade the PID is unchanged; kept for completeness). */
void notify_mainpid(int pid);

#endif
