/* history: see history.h. */
#include "supervisor/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void history_push(struct history *h, int64_t at, const char *text)
{
	size_t keep = h->n < HISTORY_MAX ? h->n : HISTORY_MAX - 1;
	memmove(&h->e[1], &h->e[0], keep * sizeof(h->e[0]));
	h->n = keep + 1;
	h->e[0].at = at;
	snprintf(h->e[0].text, sizeof(h->e[0].text), "%s", text);
	for (char *p = h->e[0].text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' '; /* one status line per entry (a config with several errors) */
	history_set_last(h, text);
}

void history_record(struct history *h, const char *fmt, ...)
{
	char text[HISTORY_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	history_push(h, (int64_t)time(NULL), text);
}

void history_set_last(struct history *h, const char *text)
{
	snprintf(h->last, sizeof(h->last), "%s", text);
}
