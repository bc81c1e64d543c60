/* log: stderr lines, with "<N>" priority prefixes for the journal. */
#include "core/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static bool log_journal;
static char log_role[48] = "drover";

void log_init(const char *role)
{
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal;
	 * then the journal parses "<N>" as the priority and adds the time. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
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
	return -1;
}

void log_vmsg(int prio, const char *fmt, va_list ap)
{
	if (prio > log_level)
		return;
	int saved = errno;
	char line[2048];
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
	/* One write() per line so lines from several processes never interleave. */
	ssize_t w = write(STDERR_FILENO, line, used);
	(void)w;
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
