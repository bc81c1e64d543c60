/* log: one place that writes diagnostics to stderr, with syslog priority
 * prefixes ("<3>") when stderr is the journal (JOURNAL_STREAM). */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

/* Decide prefixing from the environment and set the role shown in lines. */
void log_init(const char *role);
/* Change the role shown in each line ("supervisor", "worker 3"). */
void log_set_role(const char *role);
/* Messages less important than this LOG_* level are dropped. */
void log_set_level(int level);
/* Parse "emerg".."debug" (and "warn", "err", "info") into a LOG_* level; -EINVAL if unknown. */
int log_level_from_name(const char *name);

/* Write one line at a LOG_* priority. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The fd log lines go to (2, or stderr's own non-blocking description):
 * code that closes inherited fds in a child must keep it. */
int log_output_fd(void);
/* Write line (len bytes, ending in '\n', at most PIPE_BUF) to stderr as log
 * lines go: whole or not at all, never waiting, counted when dropped. For text that is not
 * a diagnostic but shares stderr (an access log set to "stderr"). */
void log_write_line(const char *line, size_t len);
/* Write one line with ": strerror(-err)" appended; returns err (negative errno) for chaining. */
int log_errno(int prio, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)

#endif
