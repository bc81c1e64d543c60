/* notify: sd_notify(3) from the supervisor. Everything is a no-op without
 * NOTIFY_SOCKET, so drover runs the same outside systemd. */
#include "supervisor/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static bool notify_on;
static uint64_t notify_wd_ms;
static char notify_last_status[512];

void notify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	notify_on = s && *s;
	uint64_t usec = 0;
	/* unset_environment=0: a binary upgrade re-reads WATCHDOG_* after execve. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		notify_wd_ms = usec / 1000;
	else
		notify_wd_ms = 0;
}

bool notify_enabled(void)
{
	return notify_on;
}

static void notify_send(const char *text)
{
	if (!notify_on)
		return;
	int r = sd_notify(0, text);
	if (r < 0)
		log_errno(LOG_WARNING, r, "sd_notify failed");
}

static void notify_with_status(const char *head, const char *status)
{
	char buf[768];
	snprintf(buf, sizeof(buf), "%s%sSTATUS=%s", head, *head ? "\n" : "", status ? status : "");
	if (status)
		snprintf(notify_last_status, sizeof(notify_last_status), "%s", status);
	notify_send(buf);
}

void notify_ready(const char *status)
{
	notify_with_status("READY=1", status);
}

void notify_reloading(const char *status)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char head[96];
	/* systemd >= 253 needs MONOTONIC_USEC= to pair RELOADING=1 with the
	 * following READY=1; older ones ignore it. */
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
	notify_with_status(head, status);
}

void notify_stopping(const char *status)
{
	notify_with_status("STOPPING=1", status);
}

void notify_status(const char *fmt, ...)
{
	char status[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	if (strcmp(status, notify_last_status) == 0)
		return;
	notify_with_status("", status);
}

uint64_t notify_watchdog_ms(void)
{
	return notify_on ? notify_wd_ms : 0;
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

int notify_fdstore(const int *fds, const char *const *names, unsigned n)
{
	if (!notify_on)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		char msg[128];
		/* FDSTORE=1 keeps a copy in systemd, FDNAME= is how it comes back in
		 * LISTEN_FDNAMES on the next start (systemd ignores a socket it
		 * already holds). */
		snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", names[i]);
		int r = sd_pid_notify_with_fds(0, 0, msg, &fds[i], 1);
		if (r < 0)
			return log_errno(LOG_WARNING, r, "could not store listener '%s' in systemd's fd store", names[i]);
	}
	return 0;
}

void notify_fdstore_remove(const char *name)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	notify_send(msg);
}

void notify_mainpid(int pid)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "MAINPID=%d", pid);
	notify_send(msg);
}
