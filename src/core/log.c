/* log: stderr lines, with "<N>" priority prefixes for the journal.
 *
 * Logging never blocks: a reader that stops reading (a full pipe, a journal
 * stream nobody drains) must not stop the supervisor or a worker. Lines that
 * cannot be written now are dropped whole and counted, and once writing
 * works again "drover: N log lines dropped" goes out before the next line.
 *
 * O_NONBLOCK is a flag of the open file description, which stderr shares
 * with whoever started us (a shell, systemd, a test): setting it on fd 2
 * would change their file too. So each kind of stderr gets its own way:
 *  - a socket (the journal's stream): send(MSG_DONTWAIT), per call;
 *  - a pipe, FIFO or terminal: a description of our own, opened through
 *    /proc/self/fd/2 with O_NONBLOCK (it reaches the same pipe); a pipe
 *    write of at most PIPE_BUF bytes is all or nothing, so no line tears;
 *  - a regular file (or no /proc): write() to fd 2 as before; a file does
 *    not block on a reader, and a full disk drops the line (ENOSPC).
 * Where a stream socket or terminal takes part of a line, the rest is kept
 * and written before anything else, so our lines never interleave. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048 /* <= PIPE_BUF: one pipe write is atomic */

_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must fit one atomic pipe write");

static int log_level = LOG_INFO;
static bool log_journal;
static char log_role[48] = "drover";

static int log_fd = STDERR_FILENO; /* where lines go */
static bool log_fd_socket;         /* send() with MSG_DONTWAIT */
static pid_t log_owner;            /* the process the counters below belong to */
static unsigned long log_dropped;  /* lines dropped since the last one written */
static char log_rest[PIPE_BUF];   /* the unwritten end of a line taken in part */
static size_t log_rest_len;

/* Pick how lines reach stderr (see the top of this file). */
static void log_open_stderr(void)
{
	struct stat st;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = STDERR_FILENO;
	log_fd_socket = false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		log_fd_socket = true;
	} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0)
			log_fd = fd;
	}
}

void log_init(const char *role)
{
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal;
	 * then the journal parses "<N>" as the priority and adds the time. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	log_open_stderr();
	log_set_role(role);
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_set_level(int level)
{
	log_level = level;
}

int log_level_from_name(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "emerg", LOG_EMERG },   { "alert", LOG_ALERT },     { "crit", LOG_CRIT },
		{ "err", LOG_ERR },       { "error", LOG_ERR },       { "warning", LOG_WARNING },
		{ "warn", LOG_WARNING },  { "notice", LOG_NOTICE },   { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -EINVAL;
}

/* One attempt, never waiting: bytes taken, or -errno (-EAGAIN: full). */
static ssize_t log_try_write(const char *buf, size_t len)
{
	for (;;) {
		ssize_t n = log_fd_socket ? send(log_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
					  : write(log_fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* Write a whole line, or nothing of it: true if it went out (or its start
 * did and the rest waits in log_rest). */
static bool log_put(const char *line, size_t len)
{
	ssize_t n = log_try_write(line, len);
	if (n <= 0)
		return false;
	if ((size_t)n < len) {
		log_rest_len = len - (size_t)n;
		memcpy(log_rest, line + n, log_rest_len);
	}
	return true;
}

/* The end of a line taken in part goes first; true once nothing waits. */
static bool log_flush_rest(void)
{
	while (log_rest_len > 0) {
		ssize_t n = log_try_write(log_rest, log_rest_len);
		if (n <= 0)
			return false;
		memmove(log_rest, log_rest + n, log_rest_len - (size_t)n);
		log_rest_len -= (size_t)n;
	}
	return true;
}

/* Write line (NULL: one that cannot be written), or count it dropped; say how many were dropped as soon as
 * writing works again. */
static void log_emit(const char *line, size_t len)
{
	pid_t self = getpid();
	if (log_owner != self) {
		/* A forked child starts with its own count (and no parent's rest). */
		log_owner = self;
		log_dropped = 0;
		log_rest_len = 0;
	}
	if (!log_flush_rest()) {
		log_dropped++;
		return;
	}
	if (log_dropped > 0) {
		char note[80];
		int n = snprintf(note, sizeof(note), "%sdrover: %lu log lines dropped\n",
				 log_journal ? "<4>" : "", log_dropped);
		if (!log_put(note, (size_t)n)) {
			log_dropped++;
			return;
		}
		/* The note is out; if only in part, this line cannot follow it. */
		log_dropped = log_rest_len > 0 ? 1 : 0;
		if (log_dropped)
			return;
	}
	if (!line || !log_put(line, len))
		log_dropped++;
}

int log_output_fd(void)
{
	return log_fd;
}

void log_write_line(const char *line, size_t len)
{
	if (len > PIPE_BUF) { /* could not be written whole: count it */
		log_emit(NULL, 0);
		return;
	}
	log_emit(line, len);
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	if (prio > log_level)
		return;
	int saved = errno;
	char line[LOG_LINE_MAX];
	int n;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", prio, log_role);
	else
		n = snprintf(line, sizeof(line), "drover[%d]: %s: ", (int)getpid(), log_role);
	if (n < 0)
		n = 0;
	size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	if (m > 0)
		used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
	if (used >= sizeof(line) - 1)
		used = sizeof(line) - 2;
	line[used++] = '\n';
	/* One write per line so lines from several processes never interleave. */
	log_emit(line, used);
	errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

int log_errno(int prio, int err, const char *fmt, ...)
{
	char buf[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(prio, "%s: %s", buf, strerror(err < 0 ? -err : err));
	return err;
}
